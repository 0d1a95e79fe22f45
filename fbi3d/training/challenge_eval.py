"""Evaluation of a trained run the way the challenge did it (`python -m fbi3d.evaluate`).

From the phases in --model_dir, on one split:
  - Table 1: MPJPE per action A1..A15 and Avg for Base, Final and every trained
    ablation of Final; the same layout for PA-MPJPE; MPJPE per joint;
  - the 2D estimator's error and PCK; the coarse-3D branch before and after adversarial
    fine-tuning; FBI accuracy per bone of the FBI branch, of always predicting each
    bone's most frequent training class, and implied by each regressor's 3D output;
  - error against pose difficulty (distance of the true pose from the mean training
    pose), and a gallery of examples from the best to the worst of Final;
  - for a split without 3D ground truth (the challenge's Test), or with
    write_submission, Final's predictions in the evaluation server's form.
Everything is written to <model_dir>/eval/<split>/: CSV and JSON of each table,
report.md, the figures and, when written, submission/ and submission.zip.

The regressors read the features phase's cache of that split; the image models run over
the split once each. For another data set (`data_dir`), the features are first cached
from it into <out_dir>/features_cache/ (output <model_dir>/eval/<data set>-<split>/ by
default), and nothing in the run changes. Settings come from the phases' own
results.json, never from flags repeated by hand; a run whose phases disagree (crop size)
is refused.
"""

import dataclasses
import os
import time

import numpy as np
import pandas as pd

from fbi3d import fbi as fbi_lib
from fbi3d import geometry
from fbi3d import metrics as metrics_lib
from fbi3d import report
from fbi3d import skeleton
from fbi3d import submission
from fbi3d import viz
from fbi3d.data import pipeline
from fbi3d.training import features as features_phase
from fbi3d.training import generator as generator_phase
from fbi3d.training import phases
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib
from fbi3d.training import runtime
from fbi3d.training import trainer

REPORT = 'report.md'
RESULTS = 'results.json'
# Phases whose networks read the crops: they must agree on the crop size.
IMAGE_PHASES = ('pose2d', 'generator', 'adversarial')
# The series of the per-bone FBI figure (the table has every regressor).
FBI_FIGURE_SERIES = ('FBI branch', 'most frequent class', 'implied by Base',
                     'implied by Final')


CROPS_TEXT = {
    'estimated': 'Crops: found by the system. The 2D estimator runs on each converted crop '
                 '(cut around the ground-truth 2D with the converter\'s margin, standing '
                 'in for a person detector\'s box), and every model below reads the '
                 'square around the joints it found, as `predict` crops a picture; 2D '
                 'errors are measured in that crop.',
    'gt': 'Crops: the converted crops, cut around the ground-truth 2D joints (an '
          'optimistic protocol: no estimate decides where the models look).',
}


def load_config(model_dir):
  """The settings a run was trained with (from its last finished phase's results.json),
  pointed at `model_dir`. PhaseError when no phase has finished."""
  return run_lib.Run.of(model_dir).latest_config(
      ('refine', 'base', 'features', 'generator', 'pose2d'))


def _run(cfg):
  """The run store of cfg's run folder and features caches."""
  return run_lib.Run.of(cfg.model_dir, cfg.features_root)


def _refuse_stale(cfg, name):
  """Whether the regressor phase `name` has finished in cfg.model_dir; PhaseError when
  it has, on another features cache than the one there now."""
  trained = _run(cfg).results(name)
  if not (trained and trained.get('finished')):
    return False
  reason = phases.make_task(name, cfg).stale_reason(trained)
  if reason:
    raise run_lib.PhaseError(reason)
  return True


def check_run(cfg):
  """Refuses a run that cannot be evaluated: a phase missing or unfinished, a
  regressor trained on another features cache than the one there now, or phases that
  ran with other crop sizes."""
  needed = ['pose2d', 'generator', cfg.features.generator, 'features', 'base', 'refine']
  results = {p: _run(cfg).results(p) for p in dict.fromkeys(needed)}
  missing = [p for p, r in results.items() if not (r and r.get('finished'))]
  if missing:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: phase(s) {", ".join(missing)} not finished; run python -m '
        f'fbi3d.train --phase=all with the flags of this run and --model_dir='
        f'{cfg.model_dir} first.')
  for name in phases.REGRESSOR_ROWS:
    _refuse_stale(cfg, name)
  sizes = {p: r['config']['image_size'] for p, r in results.items()
           if p in IMAGE_PHASES}
  sizes['features'] = results['features']['made_from']['image_size']
  if len(set(sizes.values())) > 1:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: the phases were trained on crops of different sizes ('
        + ', '.join(f'{p} {s} px' for p, s in sizes.items())
        + '); their checkpoints cannot be evaluated together. Train the run again with '
        'one --image_size.')


def _regressor_predictions(cfg, split, log):
  """{phase: [N, 17, 3]} of every finished regressor phase over the whole split, and the
  features cache of the split."""
  out, cache = {}, None
  for name in phases.REGRESSOR_ROWS:
    if not (_run(cfg).results(name) or {}).get('finished'):
      continue
    task = phases.make_task(name, cfg)
    network = task.build_network()
    _run(cfg).restore(network, name)
    inputs, _, arrays = task.arrays(split, labelled_only=False)
    if cache is None:
      cache = arrays
    elif not np.array_equal(arrays['source_id'], cache['source_id']):
      raise run_lib.PhaseError(
          f'{name} reads a features cache whose {split} examples differ from those of '
          'base; run its features phase again.')
    out[name] = task.predict(network, inputs, arrays)
    log(f'evaluate: {name} over {len(inputs)} {split} examples')
  return out, cache


def _row_label(cfg, name):
  label = phases.REGRESSOR_ROWS[name]
  if name in ('base', 'refine') and cfg.regressor.loss == 'l2':
    label += ', L2 loss'
  return label


def _boxes(cfg, cache):
  """The crops the image models read (the features cache's boxes), or None for the
  converted crops."""
  return cache['box'] if cfg.crops == 'estimated' else None


def _cached_outputs(cfg, split, cache):
  """{generator phase: its features cache of `split`} for every features cache whose
  outputs are those of the run's current weights on the crops `cache` was made on: the
  image models need not run again to be measured."""
  out = {}
  for name in ('features', 'features_noadv'):
    results = _run(cfg).results(name)
    if not (results and results.get('finished')):
      continue
    made = results['made_from']
    current = (made.get('pose2d') == _run(cfg).checkpoint_record('pose2d') and
               made.get('generator') == _run(cfg).checkpoint_record(made['generator_phase'])
               and made.get('crops', 'gt') == cfg.crops and 'visible' in cache)
    if not current:
      continue
    arrays = cache if name == 'features' else features_phase.load(cfg, split, name)
    if np.array_equal(arrays['source_id'], cache['source_id']):
      out[made['generator_phase']] = arrays
  return out


def _image_metrics(cfg, split, manifest, boxes, log, cache=None):
  """The 2D estimator and the coarse-3D / FBI branches measured on the split, on the
  crops `boxes` (None: the converted crops). Outputs held in a current features cache
  (`_cached_outputs`; `cache` is the split's features cache) are measured from there
  instead of running the networks again: the same numbers."""
  split_cfg = dataclasses.replace(cfg, eval_split=split)
  cached = _cached_outputs(cfg, split, cache) if cache is not None else {}
  out = {}
  task = pose2d_phase.Pose2DTask(split_cfg)
  if cached:
    arrays = next(iter(cached.values()))
    gt = dict(pose2d=arrays['gt2d'], visible=arrays['visible'],
              pose2d_valid=arrays['pose2d_valid'])
    out['pose2d'] = task.metrics_of(arrays['detected2d'], gt, manifest, boxes)
  else:
    network = task.build_network()
    _run(cfg).restore(network, 'pose2d')
    log(f'evaluate: 2D estimator over {split}')
    out['pose2d'] = task.evaluate(network, manifest, boxes)
  task = generator_phase.GeneratorTask(split_cfg)
  for phase in ('generator', 'adversarial'):
    if not (_run(cfg).results(phase) or {}).get('finished'):
      continue
    if phase in cached:
      a = cached[phase]
      gt = dict(pose3d_valid=a['pose3d_valid'], pose2d=a['gt2d'], pose3d=a['pose3d'],
                fbi=a['fbi'], crop_box=a['crop_box'], intrinsics=a['intrinsics'])
      out[phase] = task.metrics_of(dict(coarse3d=a['coarse3d'], fbi=a['fbi_probs']), gt,
                                   manifest, boxes)
      continue
    network = task.build_network()
    _run(cfg).restore(network, phase)
    log(f'evaluate: coarse-3D and FBI branches ({phase} weights) over {split}')
    out[phase] = task.evaluate(network, manifest, boxes)
  return out


def _gallery(cfg, split, manifest, cache, predictions, labelled, errors, count):
  """Examples spread from Final's best to its worst, with their crops."""
  if count <= 0 or not labelled.any():
    return []
  order = np.argsort(errors, kind='stable')
  picks = order[np.unique(np.linspace(0, len(order) - 1, count).round().astype(int))]
  positions = np.flatnonzero(labelled)[picks]
  crop = manifest['crop_size']
  wanted = set(positions.tolist())
  images = {}
  ds = pipeline.make_dataset(cfg.data_dir, split, 64, image_size=crop, deterministic=True,
                             boxes=_boxes(cfg, cache))
  start = 0
  for batch in ds:
    size = int(batch['image'].shape[0])
    for p in range(start, start + size):
      if p in wanted:
        images[p] = (batch['image'][p - start].numpy() * 255).round().astype(np.uint8)
    start += size
    if start > positions.max():
      break
  examples = []
  for rank, p in zip(picks, positions):
    examples.append(dict(
        image=images[int(p)],
        pose2d=geometry.resize_points(cache['detected2d'][p], cfg.image_size, crop),
        fbi=np.argmax(cache['fbi_probs'][p], axis=-1),
        truth=cache['pose3d'][p], prediction=predictions['refine'][p],
        caption=f'{cache["source_id"][p]}: Final {errors[rank]:.0f} mm'))
  return examples


def seed_config(run_cfg, k):
  """The settings of the run's regressors trained again under its seed + k, in
  <model_dir>/seeds/<seed + k>/, reading the run's features caches."""
  seed = run_cfg.seed + k
  return dataclasses.replace(
      run_cfg, seed=seed, model_dir=os.path.join(run_cfg.model_dir, 'seeds', str(seed)),
      features_root=run_cfg.model_dir)


def _train_seeds(run_cfg, names, seeds, log):
  for k in range(1, seeds):
    scfg = seed_config(run_cfg, k)
    for name in names:
      if not _refuse_stale(scfg, name):
        log(f'evaluate: training {name} under seed {scfg.seed}')
        trainer.run_phase(phases.make_task(name, scfg), log=log)


def _seed_spread(run_cfg, cfg, split, names, seeds, predictions, labelled, truth, log):
  """MPJPE against `truth` (the labelled examples' 3D) of every regressor row under
  each of `seeds` seeds (the run's own first), their mean and standard deviation, and
  each row's difference from Final paired by seed: [dict(row, mpjpe_mm: [per seed],
  mean_mm, std_mm, minus_final_mean_mm, minus_final_std_mm)]."""
  per_seed = {n: [predictions[n]] for n in names}
  for k in range(1, seeds):
    scfg = seed_config(run_cfg, k)
    read = dataclasses.replace(scfg, features_root=cfg.features_root or run_cfg.model_dir)
    for name in names:
      task = phases.make_task(name, read)
      network = task.build_network()
      _run(scfg).restore(network, name)
      inputs, _, arrays = task.arrays(split, labelled_only=False)
      per_seed[name].append(task.predict(network, inputs, arrays))
    log(f'evaluate: the regressors of seed {scfg.seed} over {split}')
  errors = {n: np.array([metrics_lib.mpjpe(p[labelled], truth) for p in per_seed[n]])
            for n in names}
  rows = []
  for name in names:
    e, change = errors[name], errors[name] - errors['refine']
    rows.append(dict(row=phases.REGRESSOR_ROWS[name], mpjpe_mm=e.tolist(),
                     mean_mm=float(e.mean()), std_mm=float(e.std(ddof=1)),
                     minus_final_mean_mm=float(change.mean()),
                     minus_final_std_mm=float(change.std(ddof=1))))
  return rows


def evaluate(model_dir, split, data_dir=None, ablations=False, out_dir=None,
             write_submission=False, gallery=8, seeds=1, log=print):
  """Evaluates the run in `model_dir` on `split`; returns the results dict (also
  written to <out_dir>/results.json, default <model_dir>/eval/<split>/). seeds > 1:
  every regressor row is also trained under seeds + 1 .. + seeds - 1 (seed_config) and
  the report gives each row's mean and spread over the seeds."""
  if not (isinstance(seeds, int) and seeds >= 1):
    raise ValueError(f'seeds must be a whole number from 1 up, got {seeds!r}.')
  start = time.time()
  run_cfg = load_config(model_dir)
  check_run(run_cfg)
  made_from = _run(run_cfg).results('features')['made_from']
  # The crops the run's regressors were trained on (caches made before the choice
  # existed read the converted crops).
  run_cfg = dataclasses.replace(run_cfg, crops=made_from.get('crops', 'gt'))
  cfg = run_cfg
  own_data = made_from['data_dir']
  other_data = data_dir and os.path.abspath(data_dir) != own_data
  if other_data:
    cfg = dataclasses.replace(run_cfg, data_dir=data_dir)
  manifest = pipeline.load_manifest(cfg.data_dir)
  split = split.lower()
  if split not in manifest['splits']:
    raise pipeline.DataError(f'{cfg.data_dir} has no split {split!r}; it has '
                             f'{", ".join(sorted(manifest["splits"]))}.')
  runtime.set_precision(cfg.mixed_precision)
  if ablations:
    for name in phases.ABLATIONS:
      if not (_run(run_cfg).results(name) or {}).get('finished'):
        log(f'evaluate: training the ablation {name}')
        trainer.run_phase(phases.make_task(name, run_cfg), log=log)
  regressors = [n for n in phases.REGRESSOR_ROWS
                if (_run(run_cfg).results(n) or {}).get('finished')]
  _train_seeds(run_cfg, regressors, seeds, log)
  default_dir = split if not other_data else (
      f'{os.path.basename(os.path.normpath(data_dir))}-{split}')
  out_dir = out_dir or os.path.join(model_dir, 'eval', default_dir)
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise run_lib.PhaseError(f'--out_dir={out_dir} is a file; give a folder (it is made '
                             'if missing).')
  os.makedirs(out_dir, exist_ok=True)
  if other_data:
    # The image models run over the other data set once, into the output folder; the
    # run itself is not touched.
    cfg = dataclasses.replace(cfg, features_root=os.path.join(out_dir, 'features_cache'))
    caches = {phases.make_task(n, run_cfg).features for n in phases.REGRESSOR_ROWS
              if (_run(run_cfg).results(n) or {}).get('finished')}
    for name in sorted(caches):
      phases.make_task(name, cfg).produce(manifest, log)

  predictions, cache = _regressor_predictions(cfg, split, log)
  labelled = cache['pose3d_valid'] > 0
  used = ['pose2d'] + [p for p in ('generator', 'adversarial')
                       if (_run(run_cfg).results(p) or {}).get('finished')]
  results = dict(split=split, model_dir=os.path.abspath(model_dir),
                 data_dir=os.path.abspath(cfg.data_dir), num_examples=int(len(labelled)),
                 num_labelled=int(labelled.sum()), crops=cfg.crops,
                 rows={_row_label(cfg, n): n for n in predictions}, files={},
                 checkpoints={p: _run(run_cfg).checkpoint_record(p)
                              for p in used + list(predictions)})

  if write_submission or not labelled.all():
    folder, zip_path = submission.write_submission(
        os.path.join(out_dir, 'submission'), cache['source_id'], predictions['refine'])
    results['files']['submission'] = os.path.relpath(folder, out_dir)
    results['files']['submission_zip'] = os.path.relpath(zip_path, out_dir)
    log(f'evaluate: Final\'s predictions for {len(labelled)} {split} images in {folder} '
        f'and {zip_path}')

  if labelled.any():
    _measure(cfg, split, manifest, cache, predictions, labelled, results, out_dir,
             gallery, log)
    if seeds > 1:
      results['seed_spread'] = _seed_spread(
          run_cfg, cfg, split, regressors, seeds, predictions, labelled,
          cache['pose3d'][labelled].astype(np.float64), log)
      results['seeds'] = [run_cfg.seed + k for k in range(seeds)]
  else:
    results['note'] = f'the {split} split has no 3D ground truth: predictions only'
  results['seconds'] = round(time.time() - start, 1)
  report.write_json(results, os.path.join(out_dir, RESULTS))
  _write_markdown(results, os.path.join(out_dir, REPORT))
  results['report'] = os.path.join(out_dir, REPORT)
  return results


def _measure(cfg, split, manifest, cache, predictions, labelled, results, out_dir,
             gallery, log):
  """Every table and figure of the labelled examples, into `results` and `out_dir`."""
  labels = {n: _row_label(cfg, n) for n in predictions}
  preds = {labels[n]: p[labelled] for n, p in predictions.items()}
  truth = cache['pose3d'][labelled].astype(np.float64)
  actions = cache['action'][labelled]
  tables = report.regressor_tables(preds, truth, actions)
  threshold = manifest.get('fbi_threshold_deg', fbi_lib.DEFAULT_THRESHOLD_DEG)
  implied, implied_per_bone = report.implied_fbi(preds, cache['fbi'][labelled],
                                                 threshold)
  image = _image_metrics(cfg, split, manifest, _boxes(cfg, cache), log, cache)
  coarse = image.get(cfg.features.generator, image['generator'])

  fbi_table = implied_per_bone.rename(columns=lambda c: f'implied by {c}')
  if 'fbi_per_bone' in coarse:
    per_bone = coarse['fbi_per_bone']
    fbi_table.insert(0, 'most frequent class',
                     [per_bone[b]['majority_accuracy'] for b in fbi_table.index])
    fbi_table.insert(0, 'FBI branch', [per_bone[b]['accuracy'] for b in fbi_table.index])
  fbi_table = fbi_table * 100.0

  # The mean pose of the data the run was trained on.
  train = features_phase.load(dataclasses.replace(cfg, features_root=''), 'train')
  mean_pose = train['pose3d'][train['pose3d_valid'] > 0].mean(axis=0)
  difficulty = report.pose_difficulty(truth, mean_pose)
  shown = {k: v for k, v in tables['per_example'].items() if k in ('Base', 'Final')}
  shown = shown or tables['per_example']
  by_difficulty = report.error_by_difficulty(difficulty, shown)

  csvs = dict(table1_mpjpe=tables['mpjpe'], table1_pa_mpjpe=tables['pa_mpjpe'],
              per_joint_mpjpe=tables['per_joint'], fbi_per_bone=fbi_table,
              error_by_difficulty=by_difficulty)
  for name, frame in csvs.items():
    report.write_csv(frame, os.path.join(out_dir, name + '.csv'))
    results['files'][name] = name + '.csv'

  final = tables['per_example'][labels['refine']]
  figures = dict(
      per_action=viz.per_action_bars(tables['mpjpe'], os.path.join(out_dir, 'per_action.png'),
                                     title=f'MPJPE per action, {split} split'),
      fbi_per_bone=viz.fbi_accuracy_bars(
          fbi_table[[c for c in fbi_table.columns if c in FBI_FIGURE_SERIES]],
          os.path.join(out_dir, 'fbi_per_bone.png')),
      difficulty=viz.error_vs_difficulty(difficulty, shown, by_difficulty,
                                         os.path.join(out_dir, 'error_vs_difficulty.png')))
  examples = _gallery(cfg, split, manifest, cache, predictions, labelled, final, gallery)
  if examples:
    figures['gallery'] = viz.pose_gallery(examples, os.path.join(out_dir, 'gallery.png'))
  results['files'].update({f'{k}_figure': os.path.basename(v) for k, v in figures.items()})

  ablation_rows = [labels[n] for n in predictions if n.startswith('refine_')]
  results.update(
      table1_mpjpe=tables['mpjpe'], table1_pa_mpjpe=tables['pa_mpjpe'],
      per_joint_mpjpe=tables['per_joint'],
      implied_fbi_accuracy=implied, fbi_per_bone_pct=fbi_table,
      error_by_difficulty=by_difficulty.to_dict(orient='records'),
      ablations=[dict(row=r, mpjpe_mm=float(tables['mpjpe'].loc[r, 'Avg']),
                      pa_mpjpe_mm=float(tables['pa_mpjpe'].loc[r, 'Avg']),
                      change_vs_final_mm=float(tables['mpjpe'].loc[r, 'Avg']
                                               - tables['mpjpe'].loc['Final', 'Avg']))
                 for r in ablation_rows],
      oracles=[dict(row=labels[n], mpjpe_mm=float(tables['mpjpe'].loc[labels[n], 'Avg']),
                    pa_mpjpe_mm=float(tables['pa_mpjpe'].loc[labels[n], 'Avg']),
                    final_minus_oracle_mm=float(tables['mpjpe'].loc['Final', 'Avg']
                                                - tables['mpjpe'].loc[labels[n], 'Avg']))
               for n in predictions if n in phases.ORACLES],
      pose2d=image['pose2d'], coarse3d={k: v for k, v in image.items() if k != 'pose2d'},
      per_action_counts={c: int((actions == i).sum())
                         for i, c in enumerate(skeleton.ACTION_COLUMNS)})


def _pct(value):
  return '' if value is None else f'{100 * value:.1f}%'


def _write_markdown(r, path):
  """report.md: every table of `r` laid out, with the figures."""
  lines = [f'# Evaluation on the {r["split"]} split', '',
           f'Run `{r["model_dir"]}`, data `{r["data_dir"]}`: {r["num_examples"]} examples, '
           f'{r["num_labelled"]} with 3D ground truth. Millimetres throughout.', '',
           CROPS_TEXT[r.get('crops', 'gt')], '']
  if 'submission' in r['files']:
    lines += [f'Final\'s predictions, one CSV per image as the evaluation server reads '
              f'them: `{r["files"]["submission"]}/` and `{r["files"]["submission_zip"]}`.',
              '']
  lines += ['Checkpoints read (relative to the run folder; sha256 of each index file): '
            + ', '.join(f'{p} `{c["path"]}` ({c["sha256"]})'
                        for p, c in r['checkpoints'].items()) + '.', '']
  if 'table1_mpjpe' not in r:
    lines.append(r.get('note', ''))
    _write_text(path, lines)
    return
  counts = r['per_action_counts']
  lines += ['## Table 1: MPJPE per action (protocol 1)', '',
            metrics_lib.format_table(r['table1_mpjpe']), '',
            'Examples per action: ' + ', '.join(f'{k} {v}' for k, v in counts.items())
            + '. An empty cell: no example of that action.', '',
            '![MPJPE per action](per_action.png)', '',
            '## PA-MPJPE per action (protocol 2)', '',
            metrics_lib.format_table(r['table1_pa_mpjpe']), '']
  if r['ablations']:
    lines += ['## Ablations of Final', '', '| variant | MPJPE | PA-MPJPE | MPJPE - Final |',
              '|---|---|---|---|']
    final = r['table1_mpjpe'].loc['Final']
    lines.append(f'| Final | {final["Avg"]:.1f} | '
                 f'{r["table1_pa_mpjpe"].loc["Final", "Avg"]:.1f} | |')
    for a in r['ablations']:
      lines.append(f'| {a["row"]} | {a["mpjpe_mm"]:.1f} | {a["pa_mpjpe_mm"]:.1f} | '
                   f'{a["change_vs_final_mm"]:+.1f} |')
    lines.append('')
  if r.get('seed_spread'):
    lines += [f'## Over {len(r["seeds"])} seeds', '', f'Every regressor row trained under '
              f'seeds {", ".join(map(str, r["seeds"]))} (the first is the run\'s own; the '
              'others in `seeds/<seed>/`), on the same features: MPJPE mean and standard '
              'deviation, and the row minus Final paired by seed.', '',
              '| row | MPJPE per seed | mean +- sd | row - Final, mean +- sd |',
              '|---|---|---|---|']
    for row in r['seed_spread']:
      lines.append(f'| {row["row"]} | {", ".join(f"{v:.1f}" for v in row["mpjpe_mm"])} | '
                   f'{row["mean_mm"]:.1f} +- {row["std_mm"]:.1f} | '
                   f'{row["minus_final_mean_mm"]:+.1f} +- {row["minus_final_std_mm"]:.1f} |')
    lines.append('')
  if r.get('oracles'):
    lines += ['## Oracle bounds', '', 'The regressor fed ground truth in place of what the '
              'image models estimate: how far Final is from what its inputs allow.', '',
              '| oracle | MPJPE | PA-MPJPE | Final - oracle |', '|---|---|---|---|']
    for o in r['oracles']:
      lines.append(f'| {o["row"]} | {o["mpjpe_mm"]:.1f} | {o["pa_mpjpe_mm"]:.1f} | '
                   f'{o["final_minus_oracle_mm"]:+.1f} |')
    lines.append('')
  lines += ['## MPJPE per joint', '',
            metrics_lib.format_table(r['per_joint_mpjpe'], index_name='joint'), '']
  p2 = r['pose2d']
  lines += ['## 2D estimator', '',
            f'2D error {p2["error_px"]:.2f} px on {p2["image_size"]}-px crops '
            f'({p2["error_px_at_record_crop"]:.2f} px at the converted crop size); '
            f'PCK@{p2["pck_threshold_px"]:.1f} px {_pct(p2["pck"])}, '
            f'PCK@{p2["pck_threshold_px"] / 2:.1f} px {_pct(p2["pck_half"])}.', '']
  lines += ['## Coarse-3D branch before and after adversarial fine-tuning', '',
            '| weights | MPJPE | PA-MPJPE | depth error | 2D error (px) | bone asymmetry |',
            '|---|---|---|---|---|---|']
  for phase, m in r['coarse3d'].items():
    if 'coarse3d_mpjpe_mm' in m:
      asym = m.get('coarse3d_bone_asymmetry_mm')
      lines.append(f'| {phase} | {m["coarse3d_mpjpe_mm"]:.1f} | '
                   f'{m["coarse3d_pa_mpjpe_mm"]:.1f} | {m["depth_error_mm"]:.1f} | '
                   f'{m["xy_error_px"]:.2f} | '
                   f'{"" if asym is None else f"{asym:.1f}"} |')
  truth = next((m['true_bone_asymmetry_mm'] for m in r['coarse3d'].values()
                if 'true_bone_asymmetry_mm' in m), None)
  lines += ['', 'The 2.5D output is turned into millimetres with the ground-truth root '
            'position (as integral-regression evaluations do). Bone asymmetry: the mean '
            '|left - right| length of the six paired bones (mm), a plausibility measure'
            + ('' if truth is None else f'; the ground truth\'s own: {truth:.1f} mm')
            + '.', '']
  coarse = next(iter(r['coarse3d'].values()))
  lines += ['## FBI accuracy (%)', '',
            f'FBI branch {_pct(coarse.get("fbi_accuracy"))}; always each bone\'s most '
            f'frequent training class {_pct(coarse.get("fbi_majority_accuracy"))}; implied '
            'by the 3D output: '
            + ', '.join(f'{k} {_pct(v)}' for k, v in r['implied_fbi_accuracy'].items())
            + '.', '', metrics_lib.format_table(r['fbi_per_bone_pct'], index_name='bone'),
            '', '![FBI accuracy per bone](fbi_per_bone.png)', '',
            '## Error against pose difficulty', '',
            'Difficulty: MPJPE between the true pose and the mean training pose. '
            'Equal-count bins:', '',
            metrics_lib.format_table(
                _difficulty_frame(r['error_by_difficulty']), index_name='bin'), '',
            '![Error against pose difficulty](error_vs_difficulty.png)', '']
  if 'gallery_figure' in r['files']:
    lines += ['## Gallery', '', 'From Final\'s best to its worst example: the crop with the '
              'detected 2D joints (bones coloured by the predicted FBI), the true 3D pose '
              'and Final\'s.', '', '![Gallery](gallery.png)', '']
  _write_text(path, lines)


def _difficulty_frame(records):
  frame = pd.DataFrame.from_records(records)
  frame.index = [f'{a:.0f}-{b:.0f} mm' for a, b in zip(frame['low'], frame['high'])]
  return frame.drop(columns=['low', 'high'])


def _write_text(path, lines):
  with open(path + '.tmp', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  os.replace(path + '.tmp', path)

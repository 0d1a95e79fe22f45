"""Evaluation of a trained run the way the challenge did it (`python -m fbi3d.evaluate`).

From the phases in --model_dir, on one split:
  - Table 1: MPJPE per action A1..A15 and Avg for Base, Final and every ablation of
    Final that `python -m fbi3d.train --phase=ablations` trained; the same layout for
    PA-MPJPE; MPJPE per joint;
  - the 2D estimator's error and PCK; the coarse-3D branch before and after adversarial
    fine-tuning; FBI accuracy per bone of the FBI branch, of always predicting each
    bone's most frequent training class, and implied by each regressor's 3D output;
  - error against pose difficulty (distance of the true pose from the mean training
    pose), and a gallery of examples from the best to the worst of Final;
  - with seeds > 1, each row's mean and spread over the run's seed and the next ones,
    which `python -m fbi3d.train --phase=seeds` trained (fbi3d/training/seeds.py);
  - for a split without 3D ground truth (the challenge's Test), or with
    write_submission, Final's predictions in the evaluation server's form.
Everything is written to <model_dir>/eval/<split>/: CSV and JSON of each table,
report.md, the figures and, when written, submission/ and submission.zip.

The regressors read the features phase's cache of that split; the image models run over
the split once each. For another data set (`data_dir`), the features are first cached
from it into <out_dir>/features_cache/ (output <model_dir>/eval/<data set>-<split>/ by
default), and nothing in the run changes. Settings come from the phases' own
results.json, never from flags repeated by hand; a run whose phases disagree (crop size)
is refused. This module reads the run and drives the measurement; the tables and
report.md are `report`'s, the figures `figures`', the image models' measures
`image_models`'.
"""

import dataclasses
import os
import shlex
import time

import numpy as np

from fbi3d import fbi as fbi_lib
from fbi3d import flip_test
from fbi3d import keys
from fbi3d import metrics as metrics_lib
from fbi3d import skeleton
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import pipeline
from fbi3d.evaluation import figures as figures_lib
from fbi3d.evaluation import image_models
from fbi3d.evaluation import report
from fbi3d.evaluation import submission
from fbi3d.training import config as config_lib
from fbi3d.training import crops as crops_lib
from fbi3d.training import features as features_phase
from fbi3d.training import phases
from fbi3d.training import run as run_lib
from fbi3d.training import runtime
from fbi3d.training import seeds as seeds_lib

REPORT = 'report.md'
RESULTS = 'results.json'
# Phases whose networks read the crops: they must agree on the crop size.
IMAGE_PHASES = ('pose2d', 'generator', 'adversarial')
# The series of the per-bone FBI figure (the table has every regressor).
FBI_FIGURE_SERIES = ('FBI branch', 'most frequent class', 'implied by Base',
                     'implied by Final')


def load_config(model_dir):
  """The settings a run was trained with (from its last finished phase's results.json),
  pointed at `model_dir`. PhaseError when no phase has finished."""
  return run_lib.Run.of(model_dir).latest_config(
      ('refine', 'base', 'features', 'generator', 'pose2d'))


def check_run(cfg):
  """Refuses a run that cannot be evaluated: a phase missing or unfinished, a
  regressor trained on another features cache than the one there now, or phases that
  ran with other crop sizes."""
  needed = ['pose2d', 'generator', cfg.features.generator, 'features', 'base', 'refine']
  results = {p: run_lib.Run.of_config(cfg).results(p) for p in dict.fromkeys(needed)}
  missing = [p for p, r in results.items() if not (r and r.get('finished'))]
  if missing:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: phase(s) {", ".join(missing)} not finished; run python -m '
        f'fbi3d.train --phase=all with the flags of this run and --model_dir='
        f'{cfg.model_dir} first.')
  reason = phases.make_task('features', cfg).stale_images_reason(
      results['features']['made_from'])
  if reason:
    raise run_lib.PhaseError(f'{cfg.model_dir}: {reason}')
  run = run_lib.Run.of_config(cfg)
  for name in phases.REGRESSOR_ROWS:
    if phases.trained(name, cfg) and name not in ('base', 'refine'):
      # An ablation row is one of Final's (or Base's) settings but for what it leaves out.
      reference = phases.reference_row(name)
      diffs = phases.settings_diff(run.config(name), run.config(reference), reference)
      if diffs:
        raise run_lib.PhaseError(
            f'{cfg.model_dir}: {name} was trained with other settings than '
            f'{phases.REGRESSOR_ROWS[reference]} ({"; ".join(diffs)}), so its row would not '
            f'compare with it. Remove {run.phase_dir(name)} and run python -m fbi3d.train '
            '--phase=ablations with the run\'s flags.')
  noadv = run.results('features_noadv')
  if noadv and noadv.get('finished'):
    # What a cache made before a setting was recorded read: converted crops, once.
    before = dict(crops='gt', flip_test=False, flip_swaps_red_blue=False, image_size=None)
    made, own = noadv.get('made_from') or {}, results['features']['made_from']
    differ = [k for k in before if made.get(k, before[k]) != own.get(k, before[k])]
    stale = phases.make_task('features_noadv', cfg).stale_images_reason(made)
    if stale:
      raise run_lib.PhaseError(f'{cfg.model_dir}: {stale} (Final without adversarial '
                               'fine-tuning reads it.)')
    if differ:
      raise run_lib.PhaseError(
          f'{cfg.model_dir}: features_noadv was made with other '
          + ', '.join(f'{k} ({made.get(k)} against {own.get(k)})' for k in differ)
          + ' than features, so Final without adversarial fine-tuning would be measured '
          'on other inputs than Final. Remove its folders features_noadv and '
          'refine_noadv and run python -m fbi3d.train --phase=ablations with the run\'s '
          'flags.')
  sizes = {p: r['config']['image_size'] for p, r in results.items()
           if p in IMAGE_PHASES}
  sizes['features'] = results['features']['made_from']['image_size']
  if len(set(sizes.values())) > 1:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: the phases were trained on crops of different sizes ('
        + ', '.join(f'{p} {s} px' for p, s in sizes.items())
        + '); their checkpoints cannot be evaluated together. Train the run again with '
        'one --image_size.')
  _check_settings_agree(cfg, run)


# What decides how the evaluation reads each phase's network or cache, which it builds
# with Final's settings: the networks, the 2D decoding, the depth scale, the crops, and
# the regressors' inputs, frame and mirror average.
_READ_WITH = {
    'pose2d': config_lib.ARCHITECTURE['pose2d'] + ('pose2d_loss',),
    'generator': config_lib.ARCHITECTURE['generator'],
    'adversarial': config_lib.ARCHITECTURE['generator'],
}
# The features cache records what it was made with (its made_from), not a config; flip
# averaging and the red-blue swap as flip_test's pair (the swap counts only with it).
_FEATURES_MADE_WITH = {'image_size': 'image_size', 'crops': 'crops',
                       'generator_phase': 'features_generator'}
_REGRESSOR_READ_WITH = ('regressor_2d', 'regressor_units', 'regressor_frame',
                        'regressor_mirror_average')


def _check_settings_agree(cfg, run):
  """Refuses a run whose phases were trained with other settings than Final's where
  those settings decide how the evaluation, which builds every network with Final's
  settings, reads them (a Base trained in the camera frame turned back from a ray frame,
  a 2D estimator decoded with another loss's rule): it would measure them wrongly."""
  phases_read = dict(_READ_WITH)
  phases_read[cfg.features.generator] = _READ_WITH['generator']
  phases_read.update({name: _REGRESSOR_READ_WITH for name in phases.REGRESSOR_ROWS
                      if name != 'refine'})
  for phase, names in phases_read.items():
    if not (run.results(phase) or {}).get('finished'):
      continue
    own = run.config(phase)
    diffs = [f'{n}: {own.flat(n)} against {cfg.flat(n)}' for n in names
             if own.flat(n) != cfg.flat(n)]
    _refuse_other_settings(cfg, run, phase, diffs)
  made = (run.results('features') or {}).get('made_from') or {}
  diffs = [f'{flag}: {made[key]} against {cfg.flat(flag)}'
           for key, flag in _FEATURES_MADE_WITH.items()
           if key in made and made[key] != cfg.flat(flag)]
  if made and not made.get('records'):
    cached, wanted = flip_test.cached_setting(made), flip_test.flags_setting(cfg)
    diffs += [f'{flag}: {c} against {w}' for flag, c, w in
              zip(('flip_test', 'flip_swaps_red_blue'), cached, wanted) if c != w]
  _refuse_other_settings(cfg, run, 'features', diffs)


def _refuse_other_settings(cfg, run, phase, diffs):
  if diffs:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: {phase} was trained with other settings than Final ('
        f'{"; ".join(diffs)}), and the evaluation reads every phase with Final\'s, so '
        f'{phase} would be measured wrongly. Train the phases with one set of flags: '
        f'remove {run.phase_dir(phase)} and the phases after it and run python -m '
        'fbi3d.train with the flags Final was trained with.')


def trained_fbi_threshold(run, own_dir):
  """(threshold in degrees, where it was read) of the FBI labels a run learned from: as
  its generator phase recorded it (results 'data_fbi_threshold_deg'; pose2d and, in a
  lifting-only run, base record it too), else as its data set's manifest names it (a run
  trained before the record), else (None, None) when that data set has moved as well."""
  for phase in ('generator', 'pose2d', 'base'):
    recorded = (run.results(phase) or {}).get('data_fbi_threshold_deg')
    if recorded is not None:
      return float(recorded), os.path.join(run.phase_dir(phase), 'results.json')
  try:
    own = pipeline.load_manifest(own_dir).get('fbi_threshold_deg')
  except pipeline.DataError:
    return None, None
  return (None, None) if own is None else (float(own), own_dir)


def _check_fbi_threshold(run, own_dir, data_dir, manifest):
  """Refuses another data set whose FBI labels were drawn at another threshold than those
  the run learned from: the FBI accuracies would score a different question."""
  own, source = trained_fbi_threshold(run, own_dir)
  other = manifest.get('fbi_threshold_deg')
  if own is not None and other is not None and own != float(other):
    raise run_lib.PhaseError(
        f'{data_dir} labels FBI at {other:g} degrees, but the run learned from labels at '
        f'{own:g} ({source}); convert it again with --fbi_threshold_deg={own:g}.')


def _check_margin(run_cfg, data_dir, manifest):
  """Refuses another data set whose crops were cut with another margin than the run's:
  its people are drawn at another scale than the image models and the regressors' 2D
  learned, and every figure would measure that mismatch, not the method."""
  own = crops_lib.trained_margin(run_lib.Run.of_config(run_cfg), run_cfg.data_dir)
  other = float(manifest.get('margin', crops_lib.DEFAULT_MARGIN))
  if other != own:
    raise run_lib.PhaseError(
        f'{data_dir} was converted with --margin={other:g}, but the run learned from crops '
        f'with --margin={own:g}: its people would be drawn at another scale. Convert it '
        f'again with --margin={own:g}.')


def _check_same_data(out_dir, data_dir):
  """Refuses to write the default output folder when it holds the evaluation of another
  data set (two data folders of one name share the default name)."""
  before = manifest_lib.json_field(os.path.join(out_dir, RESULTS), 'data_dir')
  if before and os.path.realpath(before) != os.path.realpath(data_dir):
    raise run_lib.PhaseError(
        f'{out_dir} holds the evaluation of {before}, not of {data_dir}; give '
        '--out_dir=FOLDER for this one, so that neither replaces the other.')


def train_command(cfg, phase, seeds=None):
  """The command line that trains `phase` (under `seeds` seeds in all, when given) with
  the settings of `cfg`: every flag whose value differs from its default, so that
  nothing has to be repeated by hand."""
  default = config_lib.make()
  words = ['python', '-m', 'fbi3d.train', f'--phase={phase}']
  if seeds is not None:
    words.append(f'--seeds={seeds}')
  for name in config_lib.FLAG_NAMES:
    value = cfg.flat(name)
    if name in config_lib.NOT_FLAGS or (
        name not in ('data_dir', 'model_dir') and value == default.flat(name)):
      continue
    if isinstance(value, bool):
      words.append(f'--{"" if value else "no"}{name}')
    else:
      text = ','.join(map(str, value)) if isinstance(value, tuple) else str(value)
      words.append(f'--{name}={shlex.quote(text)}')
  return ' '.join(words)


def _require_ablations(cfg):
  """PhaseError naming the ablation phases that have not finished in cfg.model_dir, with
  the command that trains them; evaluation only reads what training wrote."""
  missing = [n for n in phases.ABLATIONS
             if not (run_lib.Run.of_config(cfg).results(n) or {}).get('finished')]
  if missing:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: the ablation phase(s) {", ".join(missing)} have not finished; '
        f'train them first (finished ones are kept):\n  '
        f'{train_command(cfg, phases.ALL_ABLATIONS)}')


def _require_seeds(run_cfg, names, seeds):
  """PhaseError naming, seed by seed, the regressor rows `names` not yet trained under
  the run's further seeds up to `seeds` in all, with the command that trains them;
  evaluation only reads what training wrote."""
  absent = seeds_lib.missing(run_cfg, names, seeds)
  if absent:
    raise run_lib.PhaseError(
        f'{run_cfg.model_dir}: not every regressor row has been trained under the '
        f'{seeds} seeds (' + '; '.join(f'seed {seed}: {", ".join(rows)}'
                                       for seed, rows in absent.items())
        + '); train them first (finished ones are kept):\n  '
        f'{train_command(run_cfg, phases.SEEDS, seeds=seeds)}')


def _finite(poses, name, split):
  """`poses` [N, 17, 3] of the row `name`; PhaseError when some are not finite (a NaN
  MPJPE would print as an empty cell, like an action without examples)."""
  bad = ~np.isfinite(poses).all(axis=(1, 2))
  if bad.any():
    raise run_lib.PhaseError(
        f'{name}: {int(bad.sum())} of the {len(bad)} {split} examples get a non-finite 3D '
        f'pose (the first {int(np.flatnonzero(bad)[0])}); its inputs from the features '
        'cache or its weights hold NaN or infinity. Make the features cache again and '
        'train the regressors again.')
  return poses


def _regressor_predictions(cfg, split, log):
  """{phase: [N, 17, 3]} of every finished regressor phase over the whole split, and the
  features cache of the split."""
  out, cache = {}, None
  for name in phases.REGRESSOR_ROWS:
    if not (run_lib.Run.of_config(cfg).results(name) or {}).get('finished'):
      continue
    task = phases.make_task(name, cfg)
    network = task.build_network()
    run_lib.Run.of_config(cfg).restore(network, name)
    inputs, _, arrays = task.arrays(split, labelled_only=False)
    if cache is None:
      cache = arrays
    elif not np.array_equal(arrays[keys.SOURCE_ID], cache[keys.SOURCE_ID]):
      raise run_lib.PhaseError(
          f'{name} reads a features cache whose {split} examples differ from those of '
          'base; run its features phase again.')
    out[name] = _finite(task.predict(network, inputs, arrays), name, split)
    log(f'evaluate: {name} over {len(inputs)} {split} examples')
  return out, cache


def _row_label(cfg, name):
  label = phases.REGRESSOR_ROWS[name]
  if name in ('base', 'refine') and cfg.regressor.loss != 'weighted':
    label += {'l2': ', L2 loss', 'joint': ', joint-distance loss'}[cfg.regressor.loss]
  elif name == 'refine_l2' and cfg.regressor.loss == 'l2':
    label += ' (ablation)'      # not the same row as Final's own L2 label
  if cfg.regressor.two_d == 'gt' and name not in phases.ORACLES:
    label += ', true 2D input'  # --regressor_2d=gt: not the method's detected 2D
  return label


def _seed_spread(run_cfg, cfg, split, names, seeds, predictions, labelled, truth, log):
  """MPJPE against `truth` (the labelled examples' 3D) of every regressor row under
  each of `seeds` seeds (the run's own first, the others as --phase=seeds trained
  them), their mean and standard deviation, and each row's difference from Final paired
  by seed: [dict(row, mpjpe_mm: [per seed], mean_mm, std_mm, minus_final_mean_mm,
  minus_final_std_mm)]."""
  per_seed = {n: [predictions[n]] for n in names}
  run = run_lib.Run.of_config(run_cfg)
  for k in range(1, seeds):
    scfg = seeds_lib.seed_config(run_cfg, k)
    for name in names:
      # Each row as it was trained under that seed, which must be the run's row but for
      # the seed.
      own = run_lib.Run.of_config(scfg).config(name)
      diffs = phases.settings_diff(own, run.config(name), phases.reference_row(name))
      if diffs:
        raise run_lib.PhaseError(
            f'{run_cfg.model_dir}: {name} under seed {scfg.seed} was trained with other '
            f'settings than the run\'s {name} ({"; ".join(diffs)}), so the spread would mix '
            f'runs of other settings. Remove {run_lib.Run.of_config(scfg).phase_dir(name)} '
            'and run python -m fbi3d.train --phase=seeds with the run\'s flags.')
      read = dataclasses.replace(own, features_root=cfg.features_root or run_cfg.model_dir)
      task = phases.make_task(name, read)
      network = task.build_network()
      run_lib.Run.of_config(scfg).restore(network, name)
      inputs, _, arrays = task.arrays(split, labelled_only=False)
      per_seed[name].append(_finite(task.predict(network, inputs, arrays),
                                    f'{name} under seed {scfg.seed}', split))
    log(f'evaluate: the regressors of seed {scfg.seed} over {split}')
  errors = {n: np.array([metrics_lib.mpjpe(p[labelled], truth) for p in per_seed[n]])
            for n in names}
  rows = []
  for name in names:
    e, change = errors[name], errors[name] - errors['refine']
    rows.append(dict(row=_row_label(cfg, name), mpjpe_mm=e.tolist(),
                     mean_mm=float(e.mean()), std_mm=float(e.std(ddof=1)),
                     minus_final_mean_mm=float(change.mean()),
                     minus_final_std_mm=float(change.std(ddof=1))))
  return rows


def _remove_earlier_outputs(out_dir, written, log):
  """Removes what an earlier evaluation in out_dir wrote (its results.json lists it under
  'files') and this one, whose files are `written`, did not: another model's submission,
  or tables and figures of rows or measures this evaluation has not, must not lie beside
  its results. Only names directly in out_dir are touched; files it does not list never."""
  files = manifest_lib.json_field(os.path.join(out_dir, RESULTS), 'files') or {}
  if not isinstance(files, dict):
    return
  gone = []
  for key, name in files.items():
    if (not isinstance(name, str) or name in written or key == 'submission_zip'
        or name in ('', '.', '..') or os.path.basename(name) != name):
      continue
    path = os.path.join(out_dir, name)
    if key == 'submission' and name == 'submission':
      # The folder and its .zip.
      if os.path.exists(path) or os.path.exists(path + '.zip'):
        submission.remove_submission(path)
        gone.append(f'{path} and its .zip')
    elif os.path.isfile(path):
      os.remove(path)
      gone.append(name)
  if gone:
    log(f'evaluate: removed {", ".join(gone)}, written by an earlier evaluation in this '
        'folder and not by this one')


def evaluate(model_dir, split, data_dir=None, ablations=False, out_dir=None,
             write_submission=False, gallery=8, seeds=1, log=print):
  """Evaluates the run in `model_dir` on `split`; returns the results dict (also
  written to <out_dir>/results.json, default <model_dir>/eval/<split>/). Every finished
  regressor row is in the tables; ablations=True refuses, with the command that trains
  them, a run whose ablation phases have not all finished. seeds > 1: the report also
  gives each row's mean and spread over the run's seed and the next seeds - 1, as
  python -m fbi3d.train --phase=seeds trained them (training/seeds.py); a row not
  trained under one of them is refused, with the command that trains it."""
  if not (isinstance(seeds, int) and seeds >= 1):
    raise ValueError(f'seeds must be a whole number from 1 up, got {seeds!r}.')
  start = time.time()
  run_cfg = load_config(model_dir)
  check_run(run_cfg)
  made_from = run_lib.Run.of_config(run_cfg).results('features')['made_from']
  # The crops the run's regressors were trained on (caches made before the choice
  # existed read the converted crops), and whether each crop was read with its mirror
  # image (caches made before flip averaging existed were not).
  flip, swap = flip_test.cached_setting(made_from)
  run_cfg = dataclasses.replace(
      run_cfg, crops=made_from.get('crops', 'gt'), flip_test=flip,
      flip_swaps_red_blue=swap if flip else run_cfg.flip_swaps_red_blue)
  cfg = run_cfg
  own_data = made_from['data_dir']
  other_data = data_dir and os.path.abspath(data_dir) != own_data
  if other_data:
    cfg = dataclasses.replace(run_cfg, data_dir=data_dir)
  else:
    # Tables from the caches, figures from the records: both must be of one data set.
    for name in ('features', 'features_noadv'):
      done = run_lib.Run.of_config(run_cfg).results(name) or {}
      reason = done.get('finished') and phases.make_task(name, run_cfg).data_changed_reason(
          done.get('made_from'))
      if reason:
        raise run_lib.PhaseError(f'{model_dir}: {reason}')
  manifest = pipeline.load_manifest(cfg.data_dir)
  split = split.lower()
  if split not in manifest['splits']:
    raise pipeline.DataError(f'{cfg.data_dir} has no split {split!r}; it has '
                             f'{", ".join(sorted(manifest["splits"]))}.')
  if other_data:
    if pipeline.is_lifting_only(manifest):
      raise pipeline.DataError(
          f'{cfg.data_dir} holds lifting-only records (no pictures), and this run\'s Final '
          'reads the image models\' coarse 3D and FBI from the pictures: evaluate it on a '
          'data set converted with its pictures, or evaluate a run trained on lifting-only '
          'records (python -m fbi3d.train --phase=all on them) here.')
    _check_fbi_threshold(run_lib.Run.of_config(run_cfg), run_cfg.data_dir, cfg.data_dir,
                         manifest)
    _check_margin(run_cfg, cfg.data_dir, manifest)
  if ablations:
    _require_ablations(run_cfg)
  runtime.set_precision(cfg.mixed_precision)
  regressors = seeds_lib.rows(run_cfg)
  if seeds > 1:
    _require_seeds(run_cfg, regressors, seeds)
  default_dir = split if not other_data else (
      f'{os.path.basename(os.path.normpath(data_dir))}-{split}')
  given_out_dir = out_dir is not None
  out_dir = out_dir or os.path.join(model_dir, 'eval', default_dir)
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise run_lib.PhaseError(f'--out_dir={out_dir} is a file; give a folder (it is made '
                             'if missing).')
  if not given_out_dir:
    _check_same_data(out_dir, cfg.data_dir)
  os.makedirs(out_dir, exist_ok=True)
  if other_data:
    # The image models run over the other data set once, into the output folder; the
    # run itself is not touched.
    cfg = dataclasses.replace(cfg, features_root=os.path.join(out_dir, 'features_cache'))
    caches = {phases.make_task(n, run_cfg).features for n in regressors}
    for name in sorted(caches):
      phases.make_task(name, cfg).produce(manifest, log)

  predictions, cache = _regressor_predictions(cfg, split, log)
  labelled = cache[keys.POSE3D_VALID] > 0
  used = ['pose2d'] + [p for p in ('generator', 'adversarial')
                       if (run_lib.Run.of_config(run_cfg).results(p) or {}).get('finished')]
  results = dict(split=split, model_dir=os.path.abspath(model_dir),
                 data_dir=os.path.abspath(cfg.data_dir), num_examples=int(len(labelled)),
                 num_labelled=int(labelled.sum()), crops=cfg.crops,
                 flip_test=bool(cfg.flip_test),
                 regressor_2d=cfg.regressor.two_d,
                 rows={_row_label(cfg, n): n for n in predictions}, files={},
                 checkpoints={p: run_lib.Run.of_config(run_cfg).checkpoint_record(p)
                              for p in used + list(predictions)})

  if write_submission or not labelled.all():
    folder, zip_path = submission.write_submission(
        os.path.join(out_dir, 'submission'), cache[keys.SOURCE_ID], predictions['refine'])
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
          cache[keys.POSE3D][labelled].astype(np.float64), log)
      results['seeds'] = [run_cfg.seed + k for k in range(seeds)]
  else:
    results['note'] = f'the {split} split has no 3D ground truth: predictions only'
  results['seconds'] = round(time.time() - start, 1)
  _remove_earlier_outputs(out_dir, set(results['files'].values()), log)
  report.write_json(results, os.path.join(out_dir, RESULTS))
  report.write_markdown(results, os.path.join(out_dir, REPORT))
  results['report'] = os.path.join(out_dir, REPORT)
  return results


def _measure(cfg, split, manifest, cache, predictions, labelled, results, out_dir,
             gallery, log):
  """Every table and figure of the labelled examples, into `results` and `out_dir`."""
  labels = {n: _row_label(cfg, n) for n in predictions}
  preds = {labels[n]: p[labelled] for n, p in predictions.items()}
  truth = cache[keys.POSE3D][labelled].astype(np.float64)
  actions = cache[keys.ACTION][labelled]
  tables = report.regressor_tables(preds, truth, actions)
  threshold = manifest.get('fbi_threshold_deg', fbi_lib.DEFAULT_THRESHOLD_DEG)
  implied, implied_per_bone = report.implied_fbi(preds, cache[keys.FBI][labelled],
                                                 threshold)
  image = image_models.measure(cfg, split, manifest, image_models.crop_boxes(cfg, cache),
                               log, cache)
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
  mean_pose = train[keys.POSE3D][train[keys.POSE3D_VALID] > 0].mean(axis=0)
  difficulty = report.pose_difficulty(truth, mean_pose)
  final_row = labels['refine']
  shown = {k: v for k, v in tables['per_example'].items() if k in (labels['base'], final_row)}
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
      per_action=figures_lib.per_action_bars(
          tables['mpjpe'], os.path.join(out_dir, 'per_action.png'),
          title=f'MPJPE per action, {split} split'),
      fbi_per_bone=figures_lib.fbi_accuracy_bars(
          fbi_table[[c for c in fbi_table.columns
                     if c in FBI_FIGURE_SERIES or c in (f'implied by {labels["base"]}',
                                                        f'implied by {final_row}')]],
          os.path.join(out_dir, 'fbi_per_bone.png')),
      difficulty=figures_lib.error_vs_difficulty(
          difficulty, shown, by_difficulty,
          os.path.join(out_dir, 'error_vs_difficulty.png')))
  examples = figures_lib.gallery_examples(cfg, split, manifest, cache, predictions,
                                          labelled, final, gallery,
                                          image_models.crop_boxes(cfg, cache))
  if examples:
    figures['gallery'] = figures_lib.pose_gallery(examples,
                                                  os.path.join(out_dir, 'gallery.png'))
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
                                               - tables['mpjpe'].loc[final_row, 'Avg']))
                 for r in ablation_rows],
      oracles=[dict(row=labels[n], mpjpe_mm=float(tables['mpjpe'].loc[labels[n], 'Avg']),
                    pa_mpjpe_mm=float(tables['pa_mpjpe'].loc[labels[n], 'Avg']),
                    final_minus_oracle_mm=float(tables['mpjpe'].loc[final_row, 'Avg']
                                                - tables['mpjpe'].loc[labels[n], 'Avg']))
               for n in predictions if n in phases.ORACLES],
      final_row=final_row, fbi_branch_phase=cfg.features.generator,
      fbi_threshold_deg=float(threshold),
      pose2d=image['pose2d'], coarse3d={k: v for k, v in image.items() if k != 'pose2d'},
      per_action_counts={c: int((actions == i).sum())
                         for i, c in enumerate(skeleton.ACTION_COLUMNS)})


"""Evaluation of a run trained on lifting-only records (Human3.6M's lifting archives,
motion capture): the regressors that read 2D alone, per action in the layout of Table 1
of the papers, protocol 1 (MPJPE after the root joints are aligned) and protocol 2
(PA-MPJPE: after a similarity transform).

Two averages are given: `Avg`, the mean over the examples (the challenge's score), and
`Mean of actions`, the mean of the action columns that have examples (all 15 on
Human3.6M's S9 and S11, how Martinez et al. 2017 and later lifting papers average; the
report says how many when fewer).
"""

import json
import os
import time

from fbi3d import keys
from fbi3d import metrics as metrics_lib
from fbi3d import skeleton
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import pipeline
from fbi3d.training import phases
from fbi3d.training import run as run_lib

ROWS = ('base', 'oracle_gt2d')


def is_lifting_run(model_dir):
  """Whether the run's features cache was read from lifting-only records."""
  results = run_lib.Run.of(model_dir).results('features')
  return bool(results and results.get('lifting_only'))


def action_table(errors, actions):
  """per_action_table with the actions' names as columns, its Avg (over examples) and
  the mean of the action columns that have examples (an empty one is left out)."""
  table = metrics_lib.per_action_table(errors, actions)
  table.columns = list(skeleton.ACTIONS) + ['Avg']
  table['Mean of actions'] = table[list(skeleton.ACTIONS)].mean(axis=1, skipna=True)
  return table


def evaluate(model_dir, split, out_dir=None, log=print):
  """Measures every finished row of ROWS on `split`; writes table1_p1.csv,
  table1_p2.csv, results.json and report.md to out_dir (default
  <model_dir>/eval/<split>) and returns the results dict."""
  start = time.time()
  cfg = run_lib.Run.of(model_dir).config('base')
  manifest = pipeline.load_manifest(cfg.data_dir)
  split = split.lower()
  if split not in manifest['splits']:
    raise pipeline.DataError(f'{cfg.data_dir} has no split {split!r}; it has '
                             f'{", ".join(sorted(manifest["splits"]))}.')
  features = phases.make_task('features', cfg)
  reason = features.data_changed_reason((features.run.results('features') or {}).get(
      'made_from'))
  if reason:
    raise run_lib.PhaseError(f'{model_dir}: {reason}')
  p1, p2, sizes = {}, {}, {}
  actions = None
  for name in ROWS:
    task = phases.make_task(name, cfg)
    results = task.run.results(name)
    if not (results and results.get('finished')):
      continue
    reason = task.stale_reason(results)
    if reason:
      raise run_lib.PhaseError(reason)
    network = task.build_network()
    task.run.restore(network, name)
    inputs, targets, cache = task.arrays(split)
    pred = task.predict(network, inputs, cache)
    label = phases.REGRESSOR_ROWS[name]
    p1[label] = metrics_lib.mpjpe_per_example(pred, targets)
    p2[label] = metrics_lib.pa_mpjpe_per_example(pred, targets)
    actions, sizes[label] = cache[keys.ACTION], int(len(targets))
  if not p1:
    raise run_lib.PhaseError(f'{model_dir}: no finished base phase to evaluate; run '
                             f'python -m fbi3d.train --phase=all --model_dir={model_dir}')
  out_dir = out_dir or os.path.join(model_dir, 'eval', split)
  os.makedirs(out_dir, exist_ok=True)
  t1, t2 = action_table(p1, actions), action_table(p2, actions)
  t1.to_csv(os.path.join(out_dir, 'table1_p1.csv'))
  t2.to_csv(os.path.join(out_dir, 'table1_p2.csv'))
  protocol = manifest.get('protocol', {})
  present = int(t1[list(skeleton.ACTIONS)].notna().any(axis=0).sum())
  results = dict(actions_with_examples=present,
      split=split, num_examples=sizes, data_dir=os.path.abspath(cfg.data_dir),
      source=manifest.get('source'), protocol=protocol,
      table1_p1=json.loads(t1.to_json(orient='index')),
      table1_p2=json.loads(t2.to_json(orient='index')),
      seconds=round(time.time() - start, 1))
  manifest_lib.write_json_atomic(os.path.join(out_dir, 'results.json'), results)
  lines = [f'# Lifting evaluation: {split} split of {cfg.data_dir}', '',
           f'Source {manifest.get("source")}; 2D {protocol.get("pose2d", "?")}; every '
           f'{protocol.get("every_nth", "?")}. frame; test subjects '
           f'{protocol.get("test_subjects", "?")}; {max(sizes.values())} examples.', '',
           f'Avg: the mean over the examples. Mean of actions: the mean of the '
           f'{present} action(s) with examples'
           + ('' if present == len(skeleton.ACTIONS) else
              f' (of {len(skeleton.ACTIONS)}: not comparable with a mean of all 15)')
           + '.', '',
           '## Protocol 1: MPJPE (mm)', '', metrics_lib.format_table(t1), '',
           '## Protocol 2: PA-MPJPE (mm)', '', metrics_lib.format_table(t2), '']
  report = os.path.join(out_dir, 'report.md')
  with open(report, 'w') as f:
    f.write('\n'.join(lines))
  results['report'] = report
  results['tables'] = (t1, t2)
  log(f'evaluate: {split} measured in {time.time() - start:.1f} s')
  return results

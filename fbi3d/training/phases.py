"""The phases `python -m fbi3d.train --phase=...` knows, in the order they run, and the
ablations of Final, which `--phase=ablations` trains in order (or each by its name) and
`python -m fbi3d.evaluate` adds to its tables when they have finished. `--phase=seeds`
trains the regressor rows again under other seeds (fbi3d/training/seeds.py).

Each ablation is a phase in a folder of its own under --model_dir, of kind refine (it
reads --refine_epochs and the refine settings) except for features_noadv, which caches
the generator's outputs from before adversarial fine-tuning:
  refine_nofbi       Final without FBI: 2D joints and coarse 3D
  refine_nocoarse3d  Final without coarse 3D: 2D joints and FBI
  refine_noadv       Final without adversarial fine-tuning (reads features_noadv)
  refine_l2          Final trained with plain L2 instead of the weighted loss
and two oracle rows that bound the method, each reading ground truth:
  oracle_gt2d        Base on the ground-truth 2D joints (kind base)
  oracle_gt2d_fbi    the ground-truth 2D joints and the true FBI classes (kind refine)
"""

import functools
import os

from fbi3d import keys
from fbi3d.training import adversarial
from fbi3d.training import config as config_lib
from fbi3d.training import features
from fbi3d.training import generator
from fbi3d.training import phase_names
from fbi3d.training import pose2d
from fbi3d.training import regressor
from fbi3d.training import run as run_lib

PHASES = {
    'pose2d': pose2d.Pose2DTask,
    'generator': generator.GeneratorTask,
    'adversarial': adversarial.AdversarialTask,
    'features': features.FeaturesTask,
    'base': functools.partial(regressor.RegressorTask, name='base'),
    'refine': functools.partial(regressor.RegressorTask, name='refine'),
}
ALL = phase_names.ALL
# What `all` trains from lifting-only records (no pictures).
LIFTING_PHASES = ('features', 'base')
# What `ablations` trains from lifting-only records: the rows that read 2D alone.
LIFTING_ABLATIONS = ('oracle_gt2d',)


# `--phase=ablations` trains every phase of ABLATIONS in this order.
ALL_ABLATIONS = phase_names.ALL_ABLATIONS
ABLATIONS = {
    'features_noadv': functools.partial(features.FeaturesTask, name='features_noadv',
                                        source='generator'),
    'refine_nofbi': functools.partial(
        regressor.RegressorTask, name='refine_nofbi', kind='refine',
        inputs=(keys.INPUT_2D, keys.INPUT_COARSE3D)),
    'refine_nocoarse3d': functools.partial(
        regressor.RegressorTask, name='refine_nocoarse3d', kind='refine',
        inputs=(keys.INPUT_2D, keys.INPUT_FBI)),
    'refine_noadv': functools.partial(regressor.RegressorTask, name='refine_noadv',
                                      kind='refine', features='features_noadv'),
    'refine_l2': functools.partial(regressor.RegressorTask, name='refine_l2', kind='refine',
                                   loss='l2'),
    'oracle_gt2d': functools.partial(regressor.RegressorTask, name='oracle_gt2d',
                                     kind='base', inputs=(keys.INPUT_GT2D,)),
    'oracle_gt2d_fbi': functools.partial(
        regressor.RegressorTask, name='oracle_gt2d_fbi', kind='refine',
        inputs=(keys.INPUT_GT2D, keys.INPUT_GT_FBI)),
}

# What each regressor phase is called in the tables, in the order of the rows.
REGRESSOR_ROWS = {
    'base': 'Base',
    'refine': 'Final',
    'refine_nofbi': 'Final without FBI',
    'refine_nocoarse3d': 'Final without coarse 3D',
    'refine_noadv': 'Final without adversarial',
    'refine_l2': 'Final, L2 loss',
    'oracle_gt2d': 'Oracle: Base on true 2D',
    'oracle_gt2d_fbi': 'Oracle: true 2D and FBI',
}
ORACLES = ('oracle_gt2d', 'oracle_gt2d_fbi')

# `--phase=seeds` trains every finished regressor row again under other seeds.
SEEDS = phase_names.SEEDS

# The names the command line takes before it loads the tasks.
assert tuple(PHASES) == phase_names.PHASES and tuple(ABLATIONS) == phase_names.ABLATIONS


def make_task(name, cfg):
  if name in PHASES:
    return PHASES[name](cfg)
  if name in ABLATIONS:
    return ABLATIONS[name](cfg)
  raise ValueError(f'unknown phase {name!r}; phases: {", ".join(PHASES)}, {ALL}; '
                   f'ablations: {", ".join(ABLATIONS)}, {ALL_ABLATIONS}')


def check_run_settings(cfg, what, hint):
  """PhaseError naming the settings in which `cfg` (from the flags) differs from those
  the run's Final was trained with (Base's in a run without Final): `what` (e.g. the
  ablations) is trained with the run's settings, so that its rows compare with Final's;
  `hint` says where the right flags are. Nothing to compare before Base has finished."""
  run = run_lib.Run.of(cfg.model_dir)
  reference = next((p for p in ('refine', 'base') if run.finished(p)), None)
  if reference is None:
    return
  run_cfg = run.config(reference)
  same_place = ('model_dir', 'data_dir')
  diffs = [f'--{name}={cfg.flat(name)} ({REGRESSOR_ROWS[reference]}: {run_cfg.flat(name)})'
           for name in config_lib.FLAG_NAMES
           if name not in config_lib.NOT_FLAGS + same_place
           and cfg.flat(name) != run_cfg.flat(name)]
  if os.path.realpath(cfg.data_dir) != os.path.realpath(run_cfg.data_dir):
    diffs.insert(0, f'--data_dir={cfg.data_dir} ({REGRESSOR_ROWS[reference]}: '
                    f'{run_cfg.data_dir})')
  if diffs:
    raise run_lib.PhaseError(
        f'{cfg.model_dir}: {what} are trained with the settings of the run, but the flags '
        f'differ from {REGRESSOR_ROWS[reference]}\'s: {"; ".join(diffs)}. Give the flags '
        f'of the run ({hint}).')


def settings_diff(row_cfg, reference_cfg, kind):
  """The settings of a regressor phase of `kind` (its network, config.ARCHITECTURE, and
  its training, config.schedule_settings, but for the seed) in which `row_cfg` differs
  from `reference_cfg`, as texts 'name: value against value'."""
  names = dict.fromkeys(config_lib.ARCHITECTURE[kind] + config_lib.schedule_settings(kind))
  return [f'{n}: {row_cfg.flat(n)} against {reference_cfg.flat(n)}' for n in names
          if n != 'seed' and row_cfg.flat(n) != reference_cfg.flat(n)]


def reference_row(name):
  """The run's own row a regressor row is compared with, its kind's: Base for the rows of
  kind base (the oracle on true 2D), Final ('refine') for those of kind refine."""
  factory = PHASES.get(name) or ABLATIONS[name]
  return factory.keywords.get('kind', name)


def trained(name, cfg):
  """Whether the regressor phase `name` has finished in cfg.model_dir; PhaseError when
  it has, on another features cache than the one there now (its predictions would be
  measured on inputs unlike those it learned from)."""
  task = make_task(name, cfg)
  results = task.run.results(name)
  if not (results and results.get('finished')):
    return False
  reason = task.stale_reason(results)
  if reason:
    raise run_lib.PhaseError(reason)
  return True

"""The regressor rows of a run trained again under other seeds, to tell a difference
between rows from the spread of training itself.

  python -m fbi3d.train --phase=seeds --seeds=N    (with the flags of the run)

trains every regressor row that has finished in the run (Base, Final, and the ablations
and oracles that --phase=ablations trained) under the run's seed + 1 .. + N - 1; then
`python -m fbi3d.evaluate --seeds=N` measures them beside the run's own rows. Seed
seed + k (Final's seed; a row trained with another seed gets its own + k) lives in
<model_dir>/seeds/<seed + k>/, one folder per phase as in the run, and
reads the run's own features caches, so only initialisation, shuffling and dropout
differ: each row is trained with the settings its row in the run was trained with, and
`fbi3d.evaluate --seeds` refuses one that differs in more than the seed. Rows already
trained there are kept. The flags must give the settings Final was
trained with (`python -m fbi3d.evaluate --seeds=N` prints them when rows are missing):
a row under another seed differs from the run's in the seed alone.
"""

import dataclasses
import os

from fbi3d.training import phase_names
from fbi3d.training import phases
from fbi3d.training import run as run_lib
from fbi3d.training import trainer

# Under --phase=seeds: the run's own seed and at least one more.
MIN_SEEDS = phase_names.MIN_SEEDS
# The folder under --model_dir that holds one run folder per further seed.
SEEDS_DIR = 'seeds'


def seed_config(run_cfg, k):
  """The settings of the run's regressors trained again under its seed + k, in
  <model_dir>/seeds/<seed + k>/, reading the run's features caches."""
  seed = run_cfg.seed + k
  return dataclasses.replace(
      run_cfg, seed=seed, model_dir=os.path.join(run_cfg.model_dir, SEEDS_DIR, str(seed)),
      features_root=run_cfg.model_dir)


def rows(run_cfg):
  """The regressor phases that have finished in the run, in the order of the tables:
  the rows trained again under other seeds. PhaseError when one was trained on another
  features cache than the one there now."""
  return [name for name in phases.REGRESSOR_ROWS if phases.trained(name, run_cfg)]


def missing(run_cfg, names, seeds):
  """{seed: [phase]} of the phases `names` not yet trained under each of the run's
  further seeds up to `seeds` in all (empty when every one is)."""
  out = {}
  for k in range(1, seeds):
    scfg = seed_config(run_cfg, k)
    absent = [name for name in names if not phases.trained(name, scfg)]
    if absent:
      out[scfg.seed] = absent
  return out


def train(run_cfg, seeds, log=print):
  """Trains every finished regressor row of the run in run_cfg.model_dir under its
  seed + 1 .. + seeds - 1, seed by seed, each in the order of the tables; rows already
  trained under a seed are kept. PhaseError when Base or Final has not finished, or
  when run_cfg (the flags) differs from the settings Final was trained with."""
  if not (isinstance(seeds, int) and seeds >= MIN_SEEDS):
    raise ValueError(f'--seeds must be a whole number from {MIN_SEEDS} up (the run\'s own '
                     f'seed and the further ones), got {seeds!r}.')
  names = rows(run_cfg)
  absent = [name for name in ('base', 'refine') if name not in names]
  if absent:
    raise run_lib.PhaseError(
        f'{run_cfg.model_dir}: phase(s) {", ".join(absent)} not finished; run python -m '
        'fbi3d.train --phase=all with the flags of this run first, then --phase=seeds (a '
        'run on lifting-only records has no Final, which reads the image models: its '
        'rows under other seeds cannot be trained).')
  phases.check_run_settings(run_cfg, 'the rows under other seeds',
                            'python -m fbi3d.evaluate --seeds=N prints the command')
  run = run_lib.Run.of_config(run_cfg)
  for k in range(1, seeds):
    for name in names:
      # Each row under the settings it was trained with in the run (Base's may differ
      # from Final's), reading the data set the flags name.
      row = dataclasses.replace(run.config(name), data_dir=run_cfg.data_dir)
      # Its own seed + k, in the folder of Final's seed + k, where the evaluation looks
      # for every row under that seed (a Base trained with another seed than Final's
      # would otherwise land in a folder nothing reads).
      scfg = dataclasses.replace(seed_config(row, k),
                                 model_dir=seed_config(run_cfg, k).model_dir)
      if not phases.trained(name, scfg):
        log(f'{phases.SEEDS}: training {name} under seed {scfg.seed}')
        trainer.run_phase(phases.make_task(name, scfg), log=log)

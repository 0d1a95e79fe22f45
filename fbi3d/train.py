r"""Trains one phase of fbi3d.

  python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=pose2d \
      --data_dir=data/synthetic_records --model_dir=runs/quickstart/model

Phases, in order: pose2d (2D estimator), generator (coarse-3D + FBI branches),
adversarial (coarse-3D fine-tuned with a conditional discriminator), features (cache of
the regressor's inputs), base (regressor on 2D) and refine (on 2D, coarse 3D and FBI);
all runs them in order (from lifting-only records, which have no pictures, only features
and base). The ablations of Final (features_noadv, refine_nofbi, refine_nocoarse3d,
refine_noadv, refine_l2) and the oracle rows (oracle_gt2d, oracle_gt2d_fbi) run the same
way, one at a time or all in order with --phase=ablations, on a run whose phases have
finished, with the flags it was trained with:

  python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=ablations \
      --data_dir=data/synthetic_records --model_dir=runs/quickstart/model

--phase=seeds --seeds=N trains every regressor row that has finished in the run (Base,
Final and the trained ablations and oracles) again under the run's next N - 1 seeds,
into <model_dir>/seeds/<seed>/, for python -m fbi3d.evaluate --seeds=N to report each
row's mean and spread (fbi3d/training/seeds.py):

  python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=seeds --seeds=3 \
      --data_dir=data/synthetic_records --model_dir=runs/quickstart/model

Each writes to <model_dir>/<phase>/ and resumes from its last checkpoint when started
again.
"""

import sys

from absl import app
from absl import flags

from fbi3d.training import config
from fbi3d.training import phase_names as names

# TensorFlow and the tasks load in main, once the flags are known to make sense: a wrong
# flag is answered in a fraction of a second, not after TensorFlow's start-up.
flags.DEFINE_enum('phase', None,
                  list(names.PHASES) + [names.ALL] + list(names.ABLATIONS)
                  + [names.ALL_ABLATIONS, names.SEEDS],
                  'The phase to train; all runs every phase in order, skipping finished '
                  'ones. The others are ablations of Final (fbi3d/training/phases.py); '
                  'ablations runs them all in order; seeds trains the finished regressor '
                  'rows again under other seeds (--seeds).')
flags.DEFINE_integer('seeds', None, 'With --phase=seeds only: the number of seeds in all, '
                     f'from {names.MIN_SEEDS} up (the run\'s own and the next ones). '
                     'Every regressor row that has finished in the run (Base, Final, the '
                     'trained ablations and oracles) is trained again under seed + 1 .. '
                     'seed + N - 1 into <model_dir>/seeds/<seed>/, rows already there '
                     'kept; python -m fbi3d.evaluate --seeds=N then reports each row\'s '
                     'mean and spread.')
flags.mark_flag_as_required('phase')
config.define_flags()


@flags.multi_flags_validator(['phase', 'seeds'])
def _check_seeds(values):
  """--seeds goes with --phase=seeds alone, and that phase needs two seeds or more."""
  phase, seeds = values['phase'], values['seeds']
  if phase == names.SEEDS and (seeds is None or seeds < names.MIN_SEEDS):
    raise flags.ValidationError(
        f'--phase=seeds needs --seeds=N with N from {names.MIN_SEEDS} up (the run\'s '
        f'own seed and the further ones), got '
        f'{"none" if seeds is None else f"--seeds={seeds}"}.')
  if phase != names.SEEDS and seeds is not None:
    raise flags.ValidationError(f'--seeds is for --phase=seeds only, not --phase={phase}.')
  return True


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    cfg = config.from_flags()
  except ValueError as e:
    print(f'fbi3d.train: error: {e}', file=sys.stderr)
    sys.exit(1)
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf

  from fbi3d.data import pipeline
  from fbi3d.training import phases
  from fbi3d.training import run as run_lib
  from fbi3d.training import seeds as seeds_lib
  from fbi3d.training import trainer
  # pylint: enable=import-outside-toplevel
  try:
    if flags.FLAGS.phase == phases.SEEDS:
      seeds_lib.train(cfg, flags.FLAGS.seeds)
      return
    todo = {phases.ALL: list(phases.PHASES),
            phases.ALL_ABLATIONS: list(phases.ABLATIONS)}.get(flags.FLAGS.phase,
                                                            [flags.FLAGS.phase])
    lifting_only = {phases.ALL: phases.LIFTING_PHASES,
                    phases.ALL_ABLATIONS: phases.LIFTING_ABLATIONS}.get(flags.FLAGS.phase)
    if lifting_only and pipeline.data_is_lifting_only(cfg.data_dir):
      todo = list(lifting_only)
      print(f'{cfg.data_dir} holds lifting-only records: training {", ".join(todo)}')
    if any(name in phases.ABLATIONS for name in todo):
      phases.check_run_settings(cfg, 'the ablations', 'python -m fbi3d.evaluate '
                                '--ablations prints the command')
    for name in todo:
      trainer.run_phase(phases.make_task(name, cfg))
  except tf.errors.DataLossError as e:
    print(f'fbi3d.train: error: {pipeline.explain_data_loss(cfg.data_dir, e)}',
          file=sys.stderr)
    sys.exit(1)
  except (run_lib.PhaseError, ValueError, OSError) as e:
    print(f'fbi3d.train: error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

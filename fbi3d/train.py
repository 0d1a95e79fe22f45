"""Trains one phase of fbi3d.

  python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=pose2d \
      --data_dir=data/synthetic_records --model_dir=runs/quickstart/model

Phases: pose2d (2D estimator), generator (coarse-3D + FBI branches). Each writes to
<model_dir>/<phase>/ and resumes from its last checkpoint when started again.
"""

import sys

from absl import app
from absl import flags

from fbi3d.training import config
from fbi3d.training import phases
from fbi3d.training import trainer

flags.DEFINE_enum('phase', None, list(phases.PHASES), 'The phase to train.')
flags.mark_flag_as_required('phase')
config.define_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    cfg = config.from_flags()
    trainer.run_phase(phases.make_task(flags.FLAGS.phase, cfg), cfg)
  except (trainer.PhaseError, ValueError, FileNotFoundError) as e:
    print(f'fbi3d.train: error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

r"""Exports a trained run as one SavedModel for serving.

  python -m fbi3d.export --model_dir=runs/quickstart/model \
      --export_dir=runs/quickstart/export

writes <export_dir>/<version>/ (TensorFlow Serving's layout; the next free version unless
--version) with the signatures serving_default (uint8 person crops), serving_jpeg
(encoded images) and lift (2D joints to 3D with the Base regressor, or with the
pose-bank lifter of tools/train_lifter.py given by --lifter); see fbi3d/inference.py.
The SavedModel runs with TensorFlow alone.

  python -m fbi3d.export --model_dir=runs/quickstart/model \
      --export_dir=runs/quickstart/export --lifter=runs/lifter
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from fbi3d import inference
from fbi3d.training import run as run_lib

flags.DEFINE_string('model_dir', None, 'Run folder of python -m fbi3d.train, with the '
                    'finished phases pose2d, the generator, base and refine.')
flags.DEFINE_string('export_dir', None, 'Folder of the SavedModel versions.')
flags.DEFINE_string('lifter', None, 'Folder of a lifter trained by tools/train_lifter.py '
                    '(lifter.json and lifter.weights.h5): the lift signature then runs it '
                    'instead of the run\'s Base regressor.')
flags.DEFINE_integer('version', None, 'Version folder to write (default: the next free '
                     'integer).', lower_bound=1)
flags.mark_flags_as_required(['model_dir', 'export_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  f = flags.FLAGS
  logging.set_verbosity(logging.WARNING)   # TensorFlow's notes while saving
  try:
    if f.lifter is not None and not os.path.isdir(f.lifter):
      raise ValueError(f'--lifter={f.lifter}: no such folder; give the --out folder of '
                       'tools/train_lifter.py.')
    model = inference.PoseModel(f.model_dir, lifter_dir=f.lifter)
    path = inference.export(model, f.export_dir, f.version)
  except (run_lib.PhaseError, ValueError, OSError) as e:
    print(f'fbi3d.export: error: {e}', file=sys.stderr)
    sys.exit(1)
  used = ', '.join(f'{k} {v["path"]} ({v["sha256"]})' for k, v in model.checkpoints.items())
  lift = f'; lift: the lifter in {f.lifter}' if f.lifter else ''
  print(f'exported {f.model_dir} (checkpoints {used}; crops {model.image_size} px{lift}) to '
        f'{path}; {path}/assets.extra/{inference.CHECKPOINTS_FILE} names them')


if __name__ == '__main__':
  app.run(main)

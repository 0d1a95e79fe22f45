"""Lifting on real motion capture: the Base regressor trained on captured poses or on the
synthetic pose sampler, tested on a held-out captured subject (see tools/mocap_lifting.py).

  python tools/lift_mocap.py
  python tools/lift_mocap.py --epochs=10 --retarget --out=runs/lifting/retarget.json

Training poses: CMU subjects 01 and 131; test poses: subject 11; every 4th frame (30 fps).
Cameras like Human3.6M's; 2D in crop pixels; 3D root-relative in the camera frame.
Prints a table (MPJPE and PA-MPJPE with ground-truth 2D and with noisy 2D) and writes JSON.
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import bench
import mocap_lifting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string('mocap_dir', os.path.join(ROOT, '..', 'shared', 'data', 'mocap'),
                    'Folder (searched recursively) of CMU .asf/.amc and .bvh files.')
flags.DEFINE_list('train_subjects', [str(s) for s in mocap_lifting.TRAIN_SUBJECTS],
                  'Subject ids of the training poses.')
flags.DEFINE_list('test_subjects', [str(s) for s in mocap_lifting.TEST_SUBJECTS],
                  'Subject ids of the test poses.')
flags.DEFINE_integer('every_nth', 4, 'Keep every n-th frame (4: 120 fps -> 30 fps).',
                     lower_bound=1)
flags.DEFINE_boolean('retarget', False, 'Give every captured bone Human3.6M\'s mean '
                     'length, keeping its direction (training and test poses).')
flags.DEFINE_integer('train_cameras', 4, 'Cameras per training pose.', lower_bound=1)
flags.DEFINE_integer('epochs', 25, 'Training epochs of each regressor.', lower_bound=1)
flags.DEFINE_integer('batch_size', 64, 'Training batch size.', lower_bound=1)
flags.DEFINE_float('learning_rate', 1e-3, 'Initial Adam learning rate.')
flags.DEFINE_enum('loss', 'weighted', ['weighted', 'l2'], 'Regression loss.')
flags.DEFINE_float('noise_px', mocap_lifting.NOISE_PX,
                   'Std (image pixels) of the Gaussian 2D noise of the noisy test column.')
flags.DEFINE_integer('seed', 0, 'Seed of cameras, synthetic poses, noise and training '
                     '(>= 0).', lower_bound=0)
flags.DEFINE_string('out', os.path.join('runs', 'lifting', 'mocap.json'),
                    'Where to write the JSON.')


def subject_list(values, flag):
  """The subject numbers of a comma-separated flag; ValueError saying what to give when
  it is empty or holds something else."""
  if not values:
    raise ValueError(f'--{flag} is empty: give CMU subject numbers separated by commas '
                     '(e.g. 1,131).')
  try:
    return [int(v) for v in values]
  except ValueError:
    raise ValueError(f'--{flag} takes CMU subject numbers separated by commas, got '
                     f'{",".join(values)!r}.') from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  # Found now, not after the training: an --out that cannot be written as a file.
  if not bench.writable_file(FLAGS.out):
    print(f'lift_mocap: error: --out={FLAGS.out} is the JSON file to write: give a file '
          'path (not a folder, nor a path under a file).', file=sys.stderr)
    sys.exit(1)
  if not os.path.isdir(FLAGS.mocap_dir):
    print(f'lift_mocap: error: motion capture folder not found: {FLAGS.mocap_dir} '
          '(set --mocap_dir)', file=sys.stderr)
    sys.exit(1)
  try:
    train = subject_list(FLAGS.train_subjects, 'train_subjects')
    test = subject_list(FLAGS.test_subjects, 'test_subjects')
    result = mocap_lifting.run(
        FLAGS.mocap_dir, train_subjects=train, test_subjects=test, every_nth=FLAGS.every_nth,
        retarget_bones=FLAGS.retarget, train_cameras=FLAGS.train_cameras,
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, loss=FLAGS.loss, noise_px=FLAGS.noise_px,
        seed=FLAGS.seed, log=lambda line: print(line, flush=True))
  except (ValueError, OSError) as e:
    print(f'lift_mocap: error: {e}', file=sys.stderr)
    sys.exit(1)
  print()
  print(mocap_lifting.format_table(result))
  bench.write_json(FLAGS.out, result)
  print(f'({result["total_seconds"]:.0f} s in all).')


if __name__ == '__main__':
  app.run(main)

r"""Writes a synthetic data set in the ECCV 2018 challenge layout, plus META.csv.

  python tools/make_synthetic.py --out_dir=/data/synthetic --num_train=2000
  python tools/make_synthetic.py --out_dir=/data/synthetic_mocap \
      --poses_from=/data/mocap_poses
"""

import sys

from absl import app
from absl import flags
from absl import logging

from fbi3d.data import synthetic
from fbi3d.data import worker_pool

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', None, 'Folder for {Train,Val,Test}/{IMG,POSE,META.csv}.')
flags.DEFINE_integer('seed', 0, 'Seed, >= 0; every image depends only on (seed, split, '
                     'index).', lower_bound=0)
flags.DEFINE_integer('num_train', 2000, 'Images in Train.', lower_bound=0)
flags.DEFINE_integer('num_val', 300, 'Images in Val.', lower_bound=0)
flags.DEFINE_integer('num_test', 300, 'Images in Test.', lower_bound=0)
flags.DEFINE_integer('image_size', 384, 'Side of the square images, in pixels.',
                     lower_bound=64)
flags.DEFINE_integer('workers', 2, 'Worker processes (the output does not depend on it).',
                     lower_bound=1)
flags.DEFINE_boolean('test_labels', True,
                     'Write Test/POSE too; with --notest_labels Test has IMG and META only, '
                     'like the challenge.')
flags.DEFINE_integer('jpeg_quality', 90, 'JPEG quality of the images (1..100).',
                     lower_bound=1, upper_bound=100)
flags.DEFINE_string('poses_from', None,
                    'Folder of motion files (.bvh, .asf/.amc) or tools/convert_mocap.py '
                    '.npz files: render people in these captured poses (action unknown) '
                    'instead of sampled ones.')
flags.mark_flag_as_required('out_dir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.INFO)
  counts = {'Train': FLAGS.num_train, 'Val': FLAGS.num_val, 'Test': FLAGS.num_test}
  try:
    settings, reused = synthetic.write_dataset(
        FLAGS.out_dir, seed=FLAGS.seed, counts=counts, image_size=FLAGS.image_size,
        workers=FLAGS.workers, test_labels=FLAGS.test_labels,
        jpeg_quality=FLAGS.jpeg_quality, poses_from=FLAGS.poses_from)
  except (ValueError, OSError, worker_pool.WorkerError) as e:
    print(f'make_synthetic: error: {e}', file=sys.stderr)
    sys.exit(1)
  total = sum(settings['counts'].values())
  if reused:
    print(f'{FLAGS.out_dir} already holds this data set ({total} images); nothing to do.')
  else:
    print(f'Wrote {total} images to {FLAGS.out_dir} ({settings["counts"]}).')


if __name__ == '__main__':
  app.run(main)

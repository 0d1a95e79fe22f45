r"""Converts motion capture files (.asf/.amc, .bvh) into 17-joint poses and records.

  python tools/convert_mocap.py --input_dir=/data/mocap --output_dir=/data/mocap_poses \
      --tfrecords

Writes <clip>.npz per motion file (17-joint world poses in mm, z up; frame rate; source)
and, with --tfrecords, lifting-only TFRecords with the image schema plus manifest.json.
An .amc file is read with its subject's .asf in the same folder (01_01.amc -> 01.asf).
For one de-duplicated, subject-split bank of every clip (the lifter's training poses),
use tools/pose_bank.py.
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import fbi
from fbi3d.data import mocap_records

FLAGS = flags.FLAGS
flags.DEFINE_string('input_dir', None, 'Folder (searched recursively) of .asf/.amc/.bvh.')
flags.DEFINE_string('output_dir', None, 'Folder for the .npz files, shards and manifest.')
flags.DEFINE_integer('every_nth', 4, 'Keep every n-th frame (4: 120 fps -> 30 fps).',
                     lower_bound=1)
flags.DEFINE_boolean('retarget', False,
                     'Give every bone Human3.6M\'s mean length, keeping its direction.')
flags.DEFINE_boolean('tfrecords', False, 'Also write lifting-only TFRecords and a manifest.')
flags.DEFINE_integer('crop_size', 256, 'Nominal crop side for the 2D joints, in pixels.',
                     lower_bound=1)
flags.DEFINE_integer('image_size', 1000, 'Nominal image side for the sampled cameras.',
                     lower_bound=16)
flags.DEFINE_float('margin', 0.2, 'Fraction of the joints\' box side added on each side.')
flags.DEFINE_integer('seed', 0, 'Seed of the cameras and turns (per clip and frame), >= 0.',
                     lower_bound=0)
flags.DEFINE_list('val_subjects', [], 'Subject ids whose clips go to the val split.')
flags.DEFINE_integer('shard_size', 5000, 'Records per shard.', lower_bound=1)
flags.DEFINE_float('unit_mm', None, 'Millimetres per file length unit (default: the ASF '
                   'header\'s; for BVH, the unit its skeleton map declares). '
                   'Checked against an adult femur.')
flags.DEFINE_float('fbi_threshold_deg', fbi.DEFAULT_THRESHOLD_DEG,
                   'Degrees out of the image plane below which a bone is parallel.')
flags.DEFINE_boolean('strict', False, 'Stop at the first bad file instead of skipping it.')
flags.mark_flags_as_required(['input_dir', 'output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    try:
      val_subjects = [int(s) for s in FLAGS.val_subjects]
    except ValueError:
      raise ValueError(f'--val_subjects takes subject numbers separated by commas (e.g. '
                       f'2,8), not {",".join(FLAGS.val_subjects)!r}.') from None
    summary = mocap_records.convert_folder(
        FLAGS.input_dir, FLAGS.output_dir, every_nth=FLAGS.every_nth,
        retarget_bones=FLAGS.retarget, tfrecords=FLAGS.tfrecords,
        crop_size=FLAGS.crop_size, image_size=FLAGS.image_size, margin=FLAGS.margin,
        seed=FLAGS.seed, val_subjects=val_subjects,
        shard_size=FLAGS.shard_size, unit_mm=FLAGS.unit_mm,
        fbi_threshold_deg=FLAGS.fbi_threshold_deg, strict=FLAGS.strict,
        log=lambda line: print(line, flush=True))
  except (ValueError, OSError) as e:
    print(f'convert_mocap: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'Wrote {len(summary["clips"])} clips ({summary["frames"]} poses) to '
        f'{FLAGS.output_dir}; {len(summary["skipped"])} bad file(s) skipped.')
  if not summary['clips']:
    # Every file bad: an empty folder is no conversion, whatever the skips say.
    print(f'convert_mocap: error: no clip of {FLAGS.input_dir} was converted (the '
          'skipped files and their reasons are above); mend them, or give a folder of '
          'readable ASF/AMC or BVH files.', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

r"""Converts Human3.6M, in any of the three forms researchers hold it, into TFRecord shards
and a manifest (the schema of fbi3d/data/schema.py), split by the standard protocol.

  # the original release (poses and videos; crops for the image phases)
  python tools/convert_h36m.py --source=original --input=/data/h36m --output_dir=/data/h36m_records
  # VideoPose3D's archives (lifting only): ground-truth 2D, or CPN detections
  python tools/convert_h36m.py --source=videopose3d --input=/data/videopose3d \
      --output_dir=/data/h36m_gt
  python tools/convert_h36m.py --source=videopose3d --input=/data/videopose3d \
      --pose2d=cpn_ft_h36m_dbb --output_dir=/data/h36m_cpn
  # Martinez et al.'s h5 files (lifting only): ground-truth 2D, or stacked hourglass
  python tools/convert_h36m.py --source=martinez --input=/data/h36m_h5 --pose2d=sh \
      --output_dir=/data/h36m_sh

Train on S1, S5, S6, S7 and S8, test on S9 and S11 (--train_subjects, --test_subjects;
--val_subjects moves some to a val split). A bad item (missing camera, video shorter than
its pose file, cut-short CDF or h5, unknown action, empty subject folder) is skipped and
counted in the manifest, or stops the conversion with --strict. A failed conversion
leaves the previous one in --output_dir as it was.
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import fbi   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_martinez   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_original   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_records   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_videopose3d   # pylint: disable=g-import-not-at-top
from fbi3d.data import layout   # pylint: disable=g-import-not-at-top
from fbi3d.data import manifest as manifest_lib   # pylint: disable=g-import-not-at-top
from fbi3d.data import summary   # pylint: disable=g-import-not-at-top

READERS = {'original': h36m_original, 'videopose3d': h36m_videopose3d,
           'martinez': h36m_martinez}

FLAGS = flags.FLAGS
flags.DEFINE_enum('source', None, list(READERS), 'Which form of Human3.6M --input holds: '
                  'original (S*/MyPoseFeatures, S*/Videos), videopose3d (data_3d_h36m.npz '
                  'and data_2d_h36m_*.npz) or martinez (cameras.h5, S*/MyPoses, '
                  'S*/StackedHourglass).')
flags.DEFINE_string('input', None, 'The folder that holds the source\'s files.')
flags.DEFINE_string('output_dir', None, 'Folder for the shards and manifest.json.')
flags.DEFINE_string('pose2d', 'gt', 'The 2D joints the records hold: gt (every source; '
                    'projected through the cameras where the source has no 2D), or the '
                    'detections: the name of a data_2d_h36m_<name>.npz for videopose3d '
                    '(e.g. cpn_ft_h36m_dbb), sh for martinez.')
flags.DEFINE_boolean('images', True, 'Crop the videos (the original release; the other '
                     'sources have none and write lifting-only records); --noimages writes '
                     'lifting-only records of the original too (base trains from them, no '
                     'image phase).')
flags.DEFINE_integer('every_nth', 1, 'Keep every n-th frame (1: all 50 fps; 5: 10 fps).',
                     lower_bound=1)
flags.DEFINE_list('train_subjects', [str(s) for s in h36m.TRAIN_SUBJECTS],
                  'Subjects of the train split.')
flags.DEFINE_list('val_subjects', [], 'Subjects of a val split (none in the protocol).')
flags.DEFINE_list('test_subjects', [str(s) for s in h36m.TEST_SUBJECTS],
                  'Subjects of the test split.')
flags.DEFINE_integer('crop_size', 256, 'Side of the square crop (2D joints are stored in its '
                     'pixels, also without pictures).', lower_bound=16)
flags.DEFINE_float('margin', 0.2, 'Fraction of the joints\' box side added on each side.',
                   lower_bound=0.0, upper_bound=1.99)
flags.DEFINE_integer('shard_size', 5000, 'Records per shard.', lower_bound=1)
flags.DEFINE_integer('jpeg_quality', 90, 'JPEG quality of the crops.', lower_bound=1,
                     upper_bound=100)
flags.DEFINE_float('fbi_threshold_deg', fbi.DEFAULT_THRESHOLD_DEG,
                   'Bones within this angle of the image plane are labelled parallel.')
flags.DEFINE_boolean('strict', False, 'Stop at the first bad item instead of skipping it.')
flags.DEFINE_boolean('overwrite', False, 'Replace a conversion of another source or input '
                     'folder in --output_dir (one of the same source and input is replaced '
                     'without it).')
flags.mark_flags_as_required(['source', 'input', 'output_dir'])


def _subjects(values, flag):
  out = []
  for v in values:
    try:
      out.append(int(str(v).lstrip('Ss')))
    except ValueError:
      raise ValueError(f'--{flag}: {v!r} is not a subject number (e.g. 1 or S1)') from None
  return tuple(out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    train = _subjects(FLAGS.train_subjects, 'train_subjects')
    val = _subjects(FLAGS.val_subjects, 'val_subjects')
    test = _subjects(FLAGS.test_subjects, 'test_subjects')
    h36m.check_subjects(train, val, test)
    if os.path.exists(os.path.join(FLAGS.input, layout.WRITING_FILE)):
      raise ValueError(f'--input={FLAGS.input} was being written when its writer stopped '
                       f'({layout.WRITING_FILE} is there), so takes or videos may be missing '
                       'or cut short. Make the layout again in a new folder.')
    reader = READERS[FLAGS.source]
    # Only the original release has pictures; --images given for another source is an
    # error (the reader says so), its default is not.
    images = FLAGS.images if (FLAGS.source == 'original' or FLAGS['images'].present) else False
    items = reader.sequences(FLAGS.input, subjects=set(train + val + test),
                             pose2d=FLAGS.pose2d, images=images)
    manifest = h36m_records.write_records(
        items, FLAGS.output_dir, source=FLAGS.source, input_dir=FLAGS.input,
        every_nth=FLAGS.every_nth, crop_size=FLAGS.crop_size, margin=FLAGS.margin,
        jpeg_quality=FLAGS.jpeg_quality, shard_size=FLAGS.shard_size,
        pose2d_source=FLAGS.pose2d, train_subjects=train, val_subjects=val,
        test_subjects=test, fbi_threshold_deg=FLAGS.fbi_threshold_deg,
        strict=FLAGS.strict, overwrite=FLAGS.overwrite,
        log=lambda line: print(line, flush=True))
  except (ValueError, OSError) as e:
    print(f'convert_h36m: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(summary.format_manifest(manifest))
  if manifest['skipped']:
    print(f'skipped: {manifest["skipped_by_reason"]} (reasons in the manifest)')
  print(f'wrote {manifest_lib.path_in(FLAGS.output_dir)}')


if __name__ == '__main__':
  app.run(main)

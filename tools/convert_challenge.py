r"""Converts a folder in the ECCV 2018 challenge layout into TFRecord shards.

  python tools/convert_challenge.py --input_dir=/data/h36m_challenge \
      --output_dir=/data/records --keypoints2d=/data/keypoints2d.csv
"""

import os
import sys

from absl import app
from absl import flags

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import fbi
from fbi3d.data import convert
from fbi3d.data import convert_plan
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import summary

FLAGS = flags.FLAGS
flags.DEFINE_string('input_dir', None, 'Folder in the challenge layout ({Train,Val,Test}/IMG).')
flags.DEFINE_string('output_dir', None, 'Folder for the shards and manifest.json.')
flags.DEFINE_list('splits', ['Train', 'Val', 'Test'], 'Splits to convert.')
flags.DEFINE_integer('crop_size', 256, 'Side of the square person crop, in pixels.')
flags.DEFINE_float('margin', 0.2, 'Fraction of the joints\' box side added on each side.')
flags.DEFINE_integer('shard_size', 500, 'Planned items per shard.')
flags.DEFINE_integer('workers', 2, 'Processes preparing crops (1: in this process); this process writes.')
flags.DEFINE_boolean('strict', False, 'Stop at the first bad input item.')
flags.DEFINE_boolean('overwrite', False, 'Replace an earlier conversion in --output_dir '
                     '(of other settings or inputs). The new one is made in '
                     '<output_dir>/.overwrite/ and replaces it only once it has succeeded; '
                     'the same command resumes one that failed or was stopped.')
flags.DEFINE_string('keypoints2d', None, 'CSV split,id,x0,y0,...,x16,y16 (image pixels).')
flags.DEFINE_string('boxes', None, 'CSV split,id,x,y,w,h: person boxes (image pixels).')
flags.DEFINE_string('actions', None, 'CSV split,id,action with names from skeleton.ACTIONS.')
flags.DEFINE_float('fbi_threshold_deg', fbi.DEFAULT_THRESHOLD_DEG,
                   'Bones within this angle of the image plane are labelled parallel.')
flags.DEFINE_integer('jpeg_quality', 90, 'JPEG quality of the stored crops (1..100).')
flags.mark_flags_as_required(['input_dir', 'output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    manifest = convert.convert(
        FLAGS.input_dir, FLAGS.output_dir, splits=FLAGS.splits, crop_size=FLAGS.crop_size,
        margin=FLAGS.margin, shard_size=FLAGS.shard_size, workers=FLAGS.workers,
        strict=FLAGS.strict, overwrite=FLAGS.overwrite, keypoints2d=FLAGS.keypoints2d,
        boxes=FLAGS.boxes, actions=FLAGS.actions,
        fbi_threshold_deg=FLAGS.fbi_threshold_deg, jpeg_quality=FLAGS.jpeg_quality)
  except convert_plan.ConversionError as e:
    print(f'convert_challenge: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(summary.format_manifest(manifest))
  print(f'wrote {os.path.join(FLAGS.output_dir, manifest_lib.MANIFEST)}')


if __name__ == '__main__':
  app.run(main)

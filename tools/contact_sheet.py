r"""Draws N examples of a converted split with their 2D skeleton and FBI labels into a PNG.

  python tools/contact_sheet.py --data_dir=data/synthetic_records --split=train \
      --num=24 --out=docs/contact_sheet.png
"""

import os
import sys

from absl import app
from absl import flags
import cv2
import numpy as np
import tensorflow as tf

from fbi3d import skeleton
from fbi3d import viz
from fbi3d.data import pipeline
from fbi3d.data import schema

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Converted data set (folder with manifest.json).')
flags.DEFINE_string('split', 'train', 'Split to draw from: train, val or test.')
flags.DEFINE_integer('num', 24, 'Number of examples to draw (the first N of the split).',
                     lower_bound=1)
flags.DEFINE_integer('columns', 6, 'Tiles per row.', lower_bound=1)
flags.DEFINE_string('out', 'contact_sheet.png', 'Output PNG path.')
flags.register_validator('out', lambda v: v.lower().endswith('.png'),
                         message='--out is the PNG file to write: give a path ending in .png.')
flags.mark_flag_as_required('data_dir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])} (the output is '
                         '--out=PATH).')
  try:
    if pipeline.data_is_lifting_only(FLAGS.data_dir):
      raise pipeline.DataError(f'{FLAGS.data_dir} holds lifting-only records (no '
                               'pictures): nothing to draw.')
    records = pipeline.read_examples(FLAGS.data_dir, FLAGS.split, FLAGS.num)
  except (pipeline.DataError, tf.errors.OpError) as e:
    sys.exit(f'contact_sheet: {getattr(e, "message", None) or e}')
  tiles = []
  for r in records:
    image = cv2.imdecode(np.frombuffer(r[schema.IMAGE], np.uint8), cv2.IMREAD_COLOR)
    if image is None:
      sys.exit(f'contact_sheet: {FLAGS.data_dir} {FLAGS.split} example '
               f'{r[schema.SOURCE_ID].decode()}: its picture is not a readable image; '
               'convert the data set again.')
    action = int(r[schema.ACTION])
    name = skeleton.ACTIONS[action] if action >= 0 else 'unknown'
    tiles.append(dict(
        image=cv2.cvtColor(image, cv2.COLOR_BGR2RGB), pose2d=r[schema.POSE2D],
        fbi=r[schema.FBI] if r[schema.POSE3D_VALID] else None,
        caption=f'{r[schema.SOURCE_ID].decode()} {name}'))
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  viz.contact_sheet(tiles, FLAGS.out, columns=FLAGS.columns,
                    title=f'{os.path.basename(os.path.normpath(FLAGS.data_dir))} / {FLAGS.split}: '
                    f'first {len(tiles)} examples')
  print(f'wrote {FLAGS.out} ({len(tiles)} examples)')


if __name__ == '__main__':
  app.run(main)

r"""What "no person" means: the 2D estimator's mean joint confidence on whole pictures with
and without a person, measured with an export, to set predict's --min_confidence.

Pictures, each cropped as predict does without a box (the centred square of the whole
picture, fbi3d/prediction.py):
  person      the synthetic test split's whole pictures (data/synthetic/Test/IMG);
  photo       the shared photographs (../shared/data/photos: a skier, an astronaut);
  blank       black, grey and white pictures;
  noise       uniform and smoothed random noise;
  scenery     the shared photographs with every labelled person painted over by the
              picture's median colour (the skier's snow and sky; the COCO keypoints give
              the person's box), and pieces of them away from the person;
  tiny        1x1, 8x8 and 31x31 pictures (predict refuses pictures under 32 pixels on a
              side; their confidence is shown for what the network would say).
Prints, per group, the lowest, median and highest mean confidence, and the share at or
above --threshold; writes JSON.

  python tools/measure_confidence.py --export_dir=runs/quickstart/export \
      --out=runs/quickstart/confidence.json
"""

import glob
import json
import math
import os
import sys

from absl import app
from absl import flags
import cv2
import numpy as np

from fbi3d import pictures
from fbi3d import prediction
import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_string('export_dir', os.path.join(ROOT, 'runs', 'quickstart', 'export'),
                    'SavedModel of python -m fbi3d.export (or its folder of versions).')
flags.DEFINE_string('synthetic_dir', os.path.join(ROOT, 'data', 'synthetic', 'Test', 'IMG'),
                    'Folder of whole pictures with one person each.')
flags.DEFINE_integer('num_person', 60, 'Pictures with a person to measure.', lower_bound=1)
flags.DEFINE_string('photos_dir', os.path.join(ROOT, '..', 'shared', 'data', 'photos'),
                    'Folder of the shared photographs (skipped when absent).')
flags.DEFINE_float('threshold', None, 'Threshold whose pass rate is shown (default: '
                   'predict\'s, prediction.person_threshold: '
                   f'{prediction.BLANK_FACTOR:g} times the estimator\'s confidence on blank '
                   'pictures).')
flags.DEFINE_string('out', None, 'JSON file of the measurements (default: none).')
bench.require_file_out()
flags.register_validator('threshold',
                         lambda v: v is None or (math.isfinite(v) and 0.0 <= v <= 1.0),
                         message='--threshold must be a finite number from 0 to 1 (a mean '
                                 'joint confidence).')


def _rng_pictures():
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)
  return {'uniform noise': noise,
          'smoothed noise': cv2.GaussianBlur(noise, (0, 0), 8),
          'coarse noise': cv2.resize(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8),
                                     (384, 384), interpolation=cv2.INTER_CUBIC)}


def _people_boxes(photos_dir, name):
  """Boxes (x, y, w, h) of the people a COCO keypoint file beside a photo labels."""
  stem = os.path.splitext(name)[0]
  path = os.path.join(photos_dir, stem + '_keypoints.json')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    data = json.load(f)
  return [a['bbox'] for a in data.get('annotations', []) if 'bbox' in a]


def collect(photos_dir, synthetic_dir, num_person):
  """{group: [(name, RGB picture)]}."""
  groups = {'person': [], 'photo': [], 'blank': [], 'noise': [], 'scenery': [], 'tiny': []}
  people = pictures.list_images([synthetic_dir]) if os.path.isdir(synthetic_dir) else []
  for path in people[:num_person]:
    groups['person'].append((os.path.basename(path), pictures.read_image(path)))
  for value, name in ((0, 'black'), (128, 'grey'), (255, 'white')):
    groups['blank'].append((name, np.full((384, 384, 3), value, np.uint8)))
  groups['noise'] = list(_rng_pictures().items())
  for size in (1, 8, 31):
    groups['tiny'].append((f'{size}x{size}', np.full((size, size, 3), 90, np.uint8)))
  if os.path.isdir(photos_dir):
    for path in sorted(glob.glob(os.path.join(photos_dir, '*'))):
      name = os.path.basename(path)
      if not name.lower().endswith(('.jpg', '.png')):
        continue
      image = pictures.read_image(path)
      groups['photo'].append((name, image))
      boxes = _people_boxes(photos_dir, name)
      if not boxes:
        continue
      empty = image.copy()
      median = np.median(image.reshape(-1, 3), axis=0).astype(np.uint8)
      h, w = image.shape[:2]
      for x, y, bw, bh in boxes:
        x0, y0 = max(0, int(x - 0.1 * bw)), max(0, int(y - 0.1 * bh))
        x1, y1 = min(w, int(x + 1.1 * bw)), min(h, int(y + 1.1 * bh))
        empty[y0:y1, x0:x1] = median
      groups['scenery'].append((f'{name} without its people', empty))
      # The picture's four quarters that do not meet a person's box.
      for qy in (0, h // 2):
        for qx in (0, w // 2):
          meets = any(x < qx + w // 2 and qx < x + bw and y < qy + h // 2 and qy < y + bh
                      for x, y, bw, bh in boxes)
          if not meets:
            groups['scenery'].append((f'{name} quarter at {qx},{qy}',
                                      image[qy:qy + h // 2, qx:qx + w // 2]))
  return groups


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    model = prediction.ExportedModel(FLAGS.export_dir)
  except ValueError as e:
    print(f'measure_confidence: error: {e}', file=sys.stderr)
    sys.exit(1)
  try:
    groups = collect(FLAGS.photos_dir, FLAGS.synthetic_dir, FLAGS.num_person)
  except pictures.PredictError as e:
    print(f'measure_confidence: error: {e}', file=sys.stderr)
    sys.exit(1)
  if not groups['person']:
    # The threshold is judged against them: without them there is nothing to measure.
    print(f'measure_confidence: error: no pictures in {FLAGS.synthetic_dir}; run bash '
          'quickstart.sh first for the pictures with a person, or give --synthetic_dir.',
          file=sys.stderr)
    sys.exit(1)
  results = {group: prediction.whole_picture_confidence(model, items)
             for group, items in groups.items() if items}
  threshold, how = prediction.person_threshold(model, FLAGS.threshold)
  print(f'mean joint confidence on whole pictures ({model.path}); threshold '
        f'{threshold:.3f} ({how})')
  print(f'{"group":<10} {"n":>4} {"lowest":>8} {"median":>8} {"highest":>8} {">= thr":>8}')
  summary = {}
  for group, values in results.items():
    v = np.array(list(values.values()))
    summary[group] = dict(n=int(len(v)), lowest=float(v.min()), median=float(np.median(v)),
                          highest=float(v.max()),
                          at_or_above=float((v >= threshold).mean()))
    row = summary[group]
    print(f'{group:<10} {row["n"]:>4} {row["lowest"]:>8.3f} {row["median"]:>8.3f} '
          f'{row["highest"]:>8.3f} {row["at_or_above"]:>8.0%}')
  for group in ('photo', 'scenery', 'blank', 'noise', 'tiny'):
    for name, value in results.get(group, {}).items():
      print(f'  {group}: {name}: {value:.3f}')
  if FLAGS.out:
    bench.write_json(FLAGS.out, dict(export=model.path, threshold=threshold,
                                     threshold_from=how, summary=summary, pictures=results))


if __name__ == '__main__':
  app.run(main)

"""3D pose of the person in a picture, with an exported model.

  python -m fbi3d.predict photo.jpg --export_dir=runs/quickstart/export --out=predictions
  python -m fbi3d.predict photo.jpg --bbox=280,44,218,346 --export_dir=... --out=...
  python -m fbi3d.predict photos/ --keypoints2d=keypoints.json --export_dir=... --out=...

Per picture it writes <out>/<name>.json (3D joints with names, 2D joints in image pixels,
FBI per bone with its probability, the crop box) and <out>/<name>.png (the picture with
the 2D skeleton, the 3D skeleton from two viewpoints and the FBI of each bone). The person
crop comes from --bbox, else from --keypoints2d, else from --detector. With 2D from
--keypoints2d or --detector=mediapipe the main pose is the lift of that 2D (the export's
lift signature: the pose-bank lifter when exported with --lifter) and the image-based
Final is reported beside it; otherwise the main pose is the Final. The JSON names both
(pose3d_model, final_pose3d_mm) and where the 2D came from (pose2d_source). A picture that is
not a readable image, or in which no person is found, is reported and gets no output; the
command then exits with status 1.
"""

import math
import os
import sys

from absl import app
from absl import flags

from fbi3d import keypoints
from fbi3d import pictures
from fbi3d import prediction

flags.DEFINE_string('export_dir', None, 'SavedModel of python -m fbi3d.export (a version '
                    'folder, or the folder of versions: the largest is used).')
flags.DEFINE_string('out', None, 'Folder for the JSON and figure of each picture.')
flags.DEFINE_list('bbox', None, 'Person box x,y,w,h in image pixels (every picture).')
flags.DEFINE_string('keypoints2d', None, '2D keypoints per picture: a COCO annotation JSON '
                    'or a CSV image,x0,y0,... (fbi3d/keypoints.py).')
flags.DEFINE_enum('keypoints_layout', 'coco17', list(keypoints.LAYOUTS),
                  'Layout of the --keypoints2d values. Left out, a CSV is read as coco17 '
                  'and a row whose points do not look like COCO\'s (eyes and ears far '
                  'from the nose: the 17 joints\' order, pelvis first) is refused.')
flags.DEFINE_enum('detector', 'estimator', ['estimator', 'mediapipe'],
                  'Without --bbox or --keypoints2d: the model\'s own 2D estimator on the '
                  'centred square of the picture (the main pose is then the image-based '
                  'Final), or MediaPipe (pip install fbi3d[mediapipe]; its 2D is lifted and '
                  'the lift is the main pose).')
flags.DEFINE_float('min_confidence', None, 'With the estimator: the mean joint confidence '
                   '(fbi3d/prediction.py says what it is) below which no person is found. '
                   f'Default: {prediction.BLANK_FACTOR:g} times what the estimator says of a '
                   'black, a grey and a white picture.')
flags.DEFINE_integer('batch_size', 16, 'Pictures per batch.', lower_bound=1)
flags.mark_flags_as_required(['export_dir', 'out'])


@flags.multi_flags_validator(['bbox', 'keypoints2d', 'detector'],
                             message='--bbox, --keypoints2d and --detector=mediapipe each '
                             'say where the person is (and the last two give the 2D that '
                             'is lifted); give one of them.')
def _one_source_of_the_person(values):
  """At most one of --bbox, --keypoints2d and --detector=mediapipe: with two, one of them
  would be dropped without a word."""
  given = [values['bbox'] is not None, values['keypoints2d'] is not None,
           values['detector'] == 'mediapipe']
  return sum(given) <= 1


flags.register_validator('min_confidence',
                         lambda v: v is None or (math.isfinite(v) and 0.0 <= v <= 1.0),
                         message='--min_confidence must be a finite number from 0 to 1.')


def _check_writable(out):
  """ValueError unless `out` is, or could be made as, a folder this process can write
  to: checked before the model loads and the pictures are predicted, not after; nothing
  is made here."""
  existing = os.path.abspath(out)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f'--out={out}: {existing} is a file, so the folder cannot be made; '
                     'give a folder.')
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(f'--out={out}: {existing} is not writable; give a folder you can '
                     'write to.')


def main(argv):
  f = flags.FLAGS
  if len(argv) < 2:
    raise app.UsageError('give one or more pictures or folders.')
  try:
    # An empty value (--out=$UNSET) is no folder or file: refused, not read as the
    # current folder or as no keypoints.
    for name in ('out', 'export_dir', 'keypoints2d'):
      if f[name].value is not None and not f[name].value.strip():
        raise ValueError(f'--{name} is empty; give a path (or leave the flag out).')
    bbox = pictures.parse_bbox(f.bbox) if f.bbox is not None else None
    if os.path.exists(f.out) and not os.path.isdir(f.out):
      raise ValueError(f'--out={f.out} is a file; give a folder (it is made if missing).')
    _check_writable(f.out)
    if f['keypoints_layout'].present and not f.keypoints2d:
      raise ValueError('--keypoints_layout says how to read --keypoints2d, which is not '
                       'given: give both, or neither.')
    if f['min_confidence'].present and (bbox is not None or f.keypoints2d
                                        or f.detector == 'mediapipe'):
      # The threshold is of the estimator's confidence on the whole picture, which only
      # the estimator's own search reads.
      raise ValueError('--min_confidence turns away pictures in which the 2D estimator '
                       'finds no person; with --bbox, --keypoints2d or --detector=mediapipe '
                       'the person is given, and it would be ignored: leave it out.')
    layout = f.keypoints_layout if f['keypoints_layout'].present else None
    kp = keypoints.KeypointFile(f.keypoints2d, layout) if f.keypoints2d is not None else None
    model = prediction.ExportedModel(f.export_dir)
    written, failed = prediction.predict_files(
        model, argv[1:], f.out, batch_size=f.batch_size, bbox=bbox, keypoint_file=kp,
        detector=f.detector, min_confidence=f.min_confidence)
  except ValueError as e:
    print(f'fbi3d.predict: error: {e}', file=sys.stderr)
    sys.exit(1)
  for path, (json_path, png_path) in written:
    print(f'{path}: {json_path}, {png_path}')
  if failed:
    print(f'fbi3d.predict: {len(failed)} picture(s) failed: '
          + '; '.join(m for _, m in failed), file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

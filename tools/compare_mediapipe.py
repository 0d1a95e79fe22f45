r"""fbi3d beside MediaPipe on pictures: both 3D skeletons in one figure per picture, and
the distance between them after the best similarity transform.

Per picture:
  - MediaPipe's pose landmarker (mediapipe==0.10.21, model complexity 1, the model in its
    wheel) gives 33 image landmarks and 33 world landmarks (metres, centred between the
    hips; x right, y down, z away from the camera, as the camera frame). Both go to the
    17 joints through their COCO subset (`keypoints.from_mediapipe`).
  - fbi3d runs as `python -m fbi3d.predict --detector=mediapipe` does: the crop around
    MediaPipe's 2D joints, and its main pose the `lift` of that 2D (the Base regressor,
    or the pose-bank lifter of an export made with --lifter).
  - The distance: MediaPipe's 17 joints (mm) aligned to fbi3d's by rotation, scale and
    translation (`geometry.procrustes_align`), then the mean joint distance in mm (as
    PA-MPJPE); and the same over the joints MediaPipe sees in the picture only (where it
    does not see one, both models invent it).
Writes <out>/<name>.png (the picture with MediaPipe's 2D; both 3D skeletons from the
camera and from the side, fbi3d in colour, MediaPipe grey) and <out>/compare.json;
prints a table.

  pip install "fbi3d[mediapipe]"
  python tools/compare_mediapipe.py ../shared/data/photos \
      --export_dir=runs/quickstart/export_lifter --out=runs/compare_mediapipe
"""

import json
import os
import sys

from absl import app
from absl import flags
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from fbi3d import geometry
from fbi3d import keypoints
from fbi3d import pictures
from fbi3d import prediction
from fbi3d import viz

FLAGS = flags.FLAGS
flags.DEFINE_string('export_dir', None, 'SavedModel of python -m fbi3d.export (with '
                    '--lifter for pictures of real people).')
flags.DEFINE_string('out', None, 'Folder for the figures and compare.json.')
flags.DEFINE_boolean('show_picture', True, 'Draw the picture with MediaPipe\'s 2D beside the '
                     '3D views (--noshow_picture: the 3D views alone, e.g. for pictures '
                     'that may not be redistributed).')
flags.mark_flags_as_required(['export_dir', 'out'])


def mediapipe_pose(image):
  """(joints2d [17, 2] px, valid [17], joints3d [17, 3] mm) from MediaPipe, or None when
  it finds no person. ValueError when mediapipe is not installed."""
  found = pictures.mediapipe_landmarks(image)
  if found is None:
    return None
  points, visibility, world = found
  joints2d, valid = keypoints.from_mediapipe(points, visibility)
  joints3d, _ = keypoints.from_mediapipe(1000.0 * world)
  return joints2d, valid, joints3d


def aligned_distance(ours, theirs, joints=None):
  """(theirs [17, 3] aligned to ours by a similarity transform, their mean joint distance
  in mm), over every joint or over `joints` (a [17] mask). Both poses are complete: the
  lift fills the joints MediaPipe's 2D lacks, and the world landmarks have every joint."""
  joints = np.ones(len(ours), bool) if joints is None else np.asarray(joints, bool)
  aligned = geometry.procrustes_align(theirs[joints][None], ours[joints][None])[0]
  return aligned, float(np.linalg.norm(aligned - ours[joints], axis=1).mean())


def figure(image, joints2d, ours, theirs, title, path, show_picture=True):
  panels = 3 if show_picture else 2
  fig = plt.figure(figsize=(4 * panels, 4.2))
  if show_picture:
    ax = fig.add_subplot(1, 3, 1)
    ax.imshow(image)
    viz.draw_skeleton(ax, joints2d)      # joints MediaPipe does not see are NaN: not drawn
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.set_axis_off()
    ax.set_title('MediaPipe 2D', fontsize=9)
  for k, (elev, azim, name) in enumerate(((10, -90, 'from the camera'),
                                           (10, 0, 'from the side'))):
    ax = fig.add_subplot(1, panels, panels - 1 + k, projection='3d')
    viz.draw_skeleton_3d(ax, ours)
    viz.draw_skeleton_3d(ax, theirs, colour='0.55', linewidth=1.5, alpha=0.9)
    viz.set_3d_view(ax, [ours, theirs], elev, azim, f'fbi3d (colour), MediaPipe (grey), '
                    f'{name}')
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('give one or more pictures or folders.')
  try:
    model = prediction.ExportedModel(FLAGS.export_dir)
    files = pictures.list_images(
        argv[1:], log=lambda line: print(f'compare_mediapipe: {line}'))
    if not files:
      raise ValueError(f'no image files in {", ".join(argv[1:])}.')
    os.makedirs(FLAGS.out, exist_ok=True)
    rows, failed, taken = [], [], set()
    # With --out the pictures' own folder, the figures of an earlier comparison (listed in
    # its compare.json) are no pictures, and a PNG picture there keeps its file: a figure
    # of its name takes _2.
    earlier = set()
    try:
      with open(os.path.join(FLAGS.out, 'compare.json')) as f:
        earlier = {os.path.realpath(r['figure']) for r in json.load(f)['pictures']}
    except (OSError, ValueError, KeyError, TypeError):
      pass
    files = [p for p in files if os.path.realpath(p) not in earlier]
    out_real = os.path.realpath(FLAGS.out)
    taken.update(os.path.splitext(os.path.basename(p))[0] for p in files
                 if os.path.dirname(os.path.realpath(p)) == out_real
                 and p.lower().endswith('.png'))
    for path in files:
      # a.jpg and a.png (or x/a.jpg and y/a.jpg) get figures of their own.
      name = prediction.unique_stem(path, taken)
      try:
        image = pictures.read_image(path)
      except pictures.PredictError as e:
        failed.append(path)
        print(f'skipped: {e}')      # the message starts with the path
        continue
      found = mediapipe_pose(image)
      if found is None:
        failed.append(path)
        print(f'{path}: skipped: MediaPipe finds no person')
        continue
      joints2d, valid, theirs = found
      result = prediction.predict_pictures(model, [(path, image)], detector='mediapipe')[0]
      if isinstance(result, pictures.PredictError):
        failed.append(path)
        print(f'{path}: skipped: {result}')
        continue
      ours = np.asarray(result['pose3d'], np.float64)
      aligned, distance = aligned_distance(ours, theirs)
      # Where MediaPipe does not see a joint, both invent it: the joints it sees alone.
      # Under 4 joints there is no alignment to measure them by: None (null in JSON).
      _, seen = (aligned_distance(ours, theirs, valid) if valid.sum() >= 4
                 else (None, None))
      seen_text = (f'{seen:.0f} mm over the {int(valid.sum())} joints MediaPipe sees'
                   if seen is not None else
                   f'MediaPipe sees {int(valid.sum())} joints, too few to align')
      figure(image, joints2d, ours, aligned,
             f'{os.path.basename(path)}: fbi3d ({model.lift_model} on MediaPipe\'s 2D) '
             f'and MediaPipe, aligned:\n{distance:.0f} mm apart ({seen_text})',
             os.path.join(FLAGS.out, name + '.png'), FLAGS.show_picture)
      rows.append(dict(picture=path, figure=os.path.join(FLAGS.out, name + '.png'),
                       distance_mm=distance, distance_seen_mm=seen,
                       joints_seen=int(valid.sum()),
                       fbi3d_pose3d_mm=ours.tolist(),
                       mediapipe_pose3d_mm=theirs.tolist()))
    if not rows:
      raise ValueError(f'none of the {len(files)} picture(s) could be compared (above); '
                       'nothing written.')
  except (ValueError, OSError) as e:
    print(f'compare_mediapipe: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'{"picture":<28} {"joints seen":>11} {"distance, all 17":>17} '
        f'{"distance, seen":>15}   (mm, after alignment)')
  for r in rows:
    print(f'{os.path.basename(r["picture"]):<28} {r["joints_seen"]:>11} '
          f'{r["distance_mm"]:>17.1f} '
          + (f'{r["distance_seen_mm"]:>15.1f}' if r['distance_seen_mm'] is not None
             else f'{"-":>15}'))
  with open(os.path.join(FLAGS.out, 'compare.json'), 'w') as f:
    json.dump(dict(export=model.path, lift_model=model.lift_model, pictures=rows), f,
              indent=2, allow_nan=False)
  print(f'wrote {FLAGS.out}/compare.json and one figure per picture')
  if failed:
    print(f'compare_mediapipe: {len(failed)} of {len(files)} picture(s) skipped: '
          + ', '.join(failed), file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)

"""Reader of Martinez et al.'s Human3.6M h5 files (lifting only: no pictures).

  S<n>/MyPoses/3D_positions/<Take>.h5     '3D_positions' [96, F]: 32 joints, world mm
  cameras.h5                              subject<n>/camera<c>/{R, T, f, c, k, p}, c = 1..4
                                          in h36m.CAMERAS order; R world->camera, T the
                                          camera centre (mm), f and c [2, 1], k [3, 1],
                                          p [2, 1]
  S<n>/StackedHourglass/<Take>.<camera>.h5   'poses' [F, 16, 2]: the stacked-hourglass
                                          detections, MPII joint order (optional)

The 16 detected joints are placed as Martinez et al. place them: MPII's thorax at Spine,
its upper neck at Thorax, its head top at Head, and Neck (which MPII lacks) on Thorax.
Take names may use '_' for ' ' (Directions_1).
"""

import os

import numpy as np

from fbi3d.data import h36m

POSE3D_DIR = os.path.join('MyPoses', '3D_positions')
DETECTIONS_DIR = 'StackedHourglass'
CAMERAS_FILE = 'cameras.h5'

# fbi3d joint <- MPII index (r ankle 0, r knee 1, r hip 2, l hip 3, l knee 4, l ankle 5,
# pelvis 6, thorax 7, upper neck 8, head top 9, r wrist 10, r elbow 11, r shoulder 12,
# l shoulder 13, l elbow 14, l wrist 15).
MPII_TO_17 = (6, 2, 1, 0, 3, 4, 5, 7, 8, 8, 9, 13, 14, 15, 12, 11, 10)


def _h5(path):
  import h5py   # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise h36m.H36MError(f'{path}: no such file')
  try:
    return h5py.File(path, 'r')
  except OSError as e:
    raise h36m.H36MError(f'{path}: not a readable h5 file ({e})') from None


def _dataset(path, key):
  with _h5(path) as f:
    if key not in f:
      raise h36m.H36MError(f'{path}: no {key!r} dataset (it has {", ".join(f.keys())})')
    try:
      return np.asarray(f[key], np.float64)
    except OSError as e:
      raise h36m.H36MError(f'{path}: {key!r} cannot be read: the file is cut short or '
                           f'damaged ({e})') from None


def read_cameras(path):
  """{(subject, camera id): camera dict as h36m.camera_parameters} of cameras.h5."""
  out = {}
  with _h5(path) as f:
    for group in f:
      if not group.startswith('subject'):
        continue
      subject = int(group[len('subject'):])
      for c, camera in enumerate(h36m.CAMERAS, 1):
        key = f'{group}/camera{c}'
        if key not in f:
          continue
        g = f[key]
        try:
          v = {k: np.asarray(g[k], np.float64).reshape(-1) for k in 'RTfckp'}
        except (KeyError, OSError) as e:
          raise h36m.H36MError(f'{path}: {key} is incomplete ({e})') from None
        intr = dict(focal=tuple(v['f']), centre=tuple(v['c']), radial=tuple(v['k']),
                    tangential=tuple(v['p']), size=h36m.INTRINSICS[camera]['size'])
        # The file holds the world-to-camera rotation transposed (its authors' loader
        # transposes R after reading it): read as stored, the cameras would look away from
        # the person (depths of about -4.8 m for two of the four).
        out[(subject, camera)] = h36m.camera_from(intr, v['R'].reshape(3, 3).T, v['T'])
  if not out:
    raise h36m.H36MError(f'{path}: no subject<n>/camera<c> groups')
  return out


def read_detections(path):
  """The stacked-hourglass 2D of one take and camera as [F, 17, 2] (MPII_TO_17)."""
  poses = _dataset(path, 'poses')
  if poses.ndim != 3 or poses.shape[1:] != (16, 2):
    raise h36m.H36MError(f'{path}: poses has shape {poses.shape}, expected [frames, 16, 2]')
  return poses[:, list(MPII_TO_17)]


def _detection_path(folder, take, camera):
  for name in (take, take.replace(' ', '_')):
    path = os.path.join(folder, DETECTIONS_DIR, f'{name}.{camera}.h5')
    if os.path.exists(path):
      return path
  return os.path.join(folder, DETECTIONS_DIR, f'{take.replace(" ", "_")}.{camera}.h5')


def sequences(root, subjects=None, pose2d='gt', images=False):
  """Sequences under `root`. pose2d: 'gt' projects the 3D through cameras.h5; 'sh' reads
  the stacked-hourglass detections."""
  if images:
    raise ValueError('Martinez et al.\'s h5 files hold no pictures: leave out --images')
  if pose2d not in ('gt', 'sh'):
    raise ValueError(f'pose2d must be gt or sh for this source, got {pose2d!r}')
  cameras = read_cameras(os.path.join(root, CAMERAS_FILE))
  for item in h36m.pose_files(root, POSE3D_DIR, '.h5', subjects):
    if isinstance(item, h36m.Skip):
      yield item
      continue
    subject, folder, path = item
    filename = os.path.basename(path)
    try:
      _, take = h36m.parse_action(os.path.splitext(filename)[0])
      flat = _dataset(path, '3D_positions')
      if flat.ndim != 2 or flat.shape[0] != 96:
        raise h36m.H36MError(f'{path}: 3D_positions has shape {flat.shape}, expected '
                             '[96, frames]')
      world = h36m.select_joints(flat.T.reshape(-1, 32, 3))
    except h36m.H36MError as e:
      yield h36m.Skip(e.kind, f'{path}: {e}' if not str(e).startswith(path) else str(e))
      continue
    for camera in h36m.CAMERAS:
      cam = cameras.get((subject, camera))
      if cam is None:
        yield h36m.Skip('missing_camera', f'{root}/{CAMERAS_FILE}: no camera {camera} '
                        f'for subject {subject} ({path})')
        continue
      two_d = None
      if pose2d == 'sh':
        try:
          two_d = read_detections(_detection_path(folder, take, camera))
        except h36m.H36MError as e:
          yield h36m.Skip('bad_file', str(e))
          continue
      yield h36m.Sequence(subject=subject, take=take, camera=camera,
                          pose3d=h36m.to_camera(world, cam), pose2d=two_d,
                          source=f'{path} camera {camera}', cam=cam)

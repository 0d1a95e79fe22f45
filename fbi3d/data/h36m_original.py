"""Reader of the original Human3.6M release.

  S<n>/MyPoseFeatures/D3_Positions_mono/<Take>.<camera>.cdf   'Pose' [1, F, 96]: 32 joints,
                                                               camera frame, mm
  S<n>/MyPoseFeatures/D2_Positions/<Take>.<camera>.cdf        'Pose' [1, F, 64]: 32 joints,
                                                               picture pixels
  S<n>/Videos/<Take>.<camera>.mp4                             the pictures (optional)

`sequences` yields one h36m.Sequence per subject, take and camera with a 3D file, or an
h36m.Skip that says what is missing or unreadable. The known quirks of the release are
handled by h36m.parse_action (S1's TakingPhoto and WalkingDog) and by skipping what
cannot be read (S11's broken Directions video in the original release: a video shorter
than its pose file is skipped whole and counted).
"""

import os

import numpy as np

from fbi3d.data import h36m

POSE3D_DIR = os.path.join('MyPoseFeatures', 'D3_Positions_mono')
POSE2D_DIR = os.path.join('MyPoseFeatures', 'D2_Positions')
VIDEO_DIR = 'Videos'


def read_cdf_pose(path, dims):
  """The 'Pose' variable of a Human3.6M CDF file as [F, 32, dims]; H36MError naming the
  file when it is missing, cut short or of another shape."""
  import cdflib   # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise h36m.H36MError(f'{path}: no such file')
  try:
    data = np.asarray(cdflib.CDF(path).varget('Pose'))
  except Exception as e:   # cdflib raises many kinds on a damaged file.
    raise h36m.H36MError(f'{path}: not a readable CDF file with a Pose variable '
                         f'({type(e).__name__}: {e})') from None
  if data.ndim == 3 and data.shape[0] == 1:
    data = data[0]
  if data.ndim != 2 or data.shape[1] != h36m.NUM_SOURCE_JOINTS * dims:
    raise h36m.H36MError(f'{path}: Pose has shape {data.shape}, expected [1, frames, '
                         f'{h36m.NUM_SOURCE_JOINTS * dims}]')
  return data.reshape(len(data), h36m.NUM_SOURCE_JOINTS, dims).astype(np.float64)


def _split_name(filename):
  """('Directions 1', '54138969') of 'Directions 1.54138969.cdf'."""
  stem = os.path.splitext(filename)[0]
  take, _, camera = stem.rpartition('.')
  return take, camera


def sequences(root, subjects=None, pose2d='gt', images=True):
  """Sequences of the release under `root` (subjects: only these numbers). pose2d='gt'
  reads D2_Positions; images reads the videos (crops from every kept frame)."""
  if pose2d != 'gt':
    raise ValueError(f'the original release has ground-truth 2D only (pose2d={pose2d!r})')
  for item in h36m.pose_files(root, POSE3D_DIR, '.cdf', subjects):
    if isinstance(item, h36m.Skip):
      yield item
      continue
    subject, folder, path = item
    filename = os.path.basename(path)
    take, camera = _split_name(filename)
    if camera not in h36m.CAMERAS:
      yield h36m.Skip('missing_camera', f'{path}: unknown camera {camera!r}')
      continue
    try:
      _, take_name = h36m.parse_action(take)
      pose3d = h36m.select_joints(read_cdf_pose(path, 3))
      pose2d = h36m.select_joints(read_cdf_pose(
          os.path.join(folder, POSE2D_DIR, filename), 2))
    except h36m.H36MError as e:
      yield h36m.Skip(e.kind, f'{path}: {e}' if not str(e).startswith(folder) else str(e))
      continue
    video = None
    if images:
      video = os.path.join(folder, VIDEO_DIR, f'{take}.{camera}.mp4')
      if not os.path.exists(video):
        yield h36m.Skip('bad_file', f'{video}: no such video (convert with --noimages '
                        'for lifting-only records)')
        continue
    yield h36m.Sequence(subject=subject, take=take_name, camera=camera,
                        pose3d=pose3d, pose2d=pose2d, video=video, source=path,
                        cam=h36m.camera_from(h36m.INTRINSICS[camera], np.eye(3),
                                             np.zeros(3)))

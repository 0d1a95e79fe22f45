"""Writers of the three Human3.6M layouts that fbi3d reads (h36m_original,
h36m_videopose3d, h36m_martinez), from world poses: for tests, and to try the readers and
the lifting path end to end on motion capture or synthetic poses laid out as Human3.6M.

`takes` is {(subject number, take name): world poses [F, 17, 3] mm, z up}. The 32-joint
files hold the 17 joints at their places (h36m.JOINTS_32_TO_17); each of the other 15
joints copies the pelvis. Every take is seen by the four cameras of its subject
(h36m.camera_parameters), with the lens distortion.
"""

import os

import numpy as np

from fbi3d import skeleton
from fbi3d.data import h36m
from fbi3d.data import h36m_martinez


def to_32(poses17):
  poses17 = np.asarray(poses17, np.float64)
  out = np.repeat(poses17[..., :1, :], h36m.NUM_SOURCE_JOINTS, axis=-2)
  out[..., list(h36m.JOINTS_32_TO_17), :] = poses17
  return out


def views(subject, poses_world):
  """{camera: (camera-frame poses [F, 17, 3], picture 2D [F, 17, 2])}."""
  out = {}
  for camera in h36m.CAMERAS:
    cam = h36m.camera_parameters(subject, camera)
    mono = h36m.to_camera(poses_world, cam)
    out[camera] = (mono, h36m.to_image(mono, cam))
  return out


def _write_cdf(path, array):
  from cdflib import cdfwrite   # pylint: disable=g-import-not-at-top
  array = np.asarray(array, np.float32)[None]
  if os.path.exists(path):
    os.remove(path)
  cdf = cdfwrite.CDF(path, cdf_spec={'Majority': 'row_major'})
  cdf.write_var({'Variable': 'Pose', 'Data_Type': cdfwrite.CDF.CDF_FLOAT,
                 'Num_Elements': 1, 'Rec_Vary': True, 'Dim_Sizes': list(array.shape[1:])},
                var_data=array)
  cdf.close()


def _write_video(path, joints2d, size, frames=None):
  """An mp4 of a picture of `size` (w, h) per pose: the skeleton's bones drawn on grey."""
  import cv2   # pylint: disable=g-import-not-at-top
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), h36m.FRAME_RATE, size)
  if not writer.isOpened():
    raise OSError(f'{path}: OpenCV cannot write mp4 video here')
  count = len(joints2d) if frames is None else frames
  for pose in joints2d[:count]:
    picture = np.full((size[1], size[0], 3), 96, np.uint8)
    for parent, child in skeleton.BONES:
      a, b = pose[parent].round().astype(int), pose[child].round().astype(int)
      cv2.line(picture, tuple(map(int, a)), tuple(map(int, b)), (40, 200, 240), 12)
    writer.write(picture)
  writer.release()


def write_original(root, takes, videos=True, video_frames=None):
  """S<n>/MyPoseFeatures/D3_Positions_mono and D2_Positions (.cdf) and, with `videos`,
  S<n>/Videos (.mp4; `video_frames` caps their length, to make a short video)."""
  for (subject, take), poses in takes.items():
    folder = os.path.join(root, f'S{subject}')
    for sub in ('MyPoseFeatures/D3_Positions_mono', 'MyPoseFeatures/D2_Positions',
                'Videos'):
      os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for camera, (mono, two_d) in views(subject, poses).items():
      name = f'{take}.{camera}'
      _write_cdf(os.path.join(folder, 'MyPoseFeatures/D3_Positions_mono', name + '.cdf'),
                 to_32(mono).reshape(len(mono), -1))
      _write_cdf(os.path.join(folder, 'MyPoseFeatures/D2_Positions', name + '.cdf'),
                 to_32(two_d).reshape(len(two_d), -1))
      if videos:
        _write_video(os.path.join(folder, 'Videos', name + '.mp4'), two_d,
                     h36m.INTRINSICS[camera]['size'], video_frames)


def write_videopose3d(root, takes, pose2d_names=('gt',)):
  """data_3d_h36m.npz and data_2d_h36m_<name>.npz for each of pose2d_names (each the
  projected 2D: the archives' structure, not a detector)."""
  os.makedirs(root, exist_ok=True)
  positions_3d, positions_2d = {}, {}
  for (subject, take), poses in takes.items():
    positions_3d.setdefault(f'S{subject}', {})[take] = (to_32(poses) / 1000.0).astype(
        np.float32)
    positions_2d.setdefault(f'S{subject}', {})[take] = [
        two_d.astype(np.float32) for _, two_d in views(subject, poses).values()]
  np.savez_compressed(os.path.join(root, 'data_3d_h36m.npz'),
                      positions_3d=np.array(positions_3d, dtype=object))
  metadata = dict(layout_name='h36m', num_joints=17,
                  keypoints_symmetry=[[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]])
  for name in pose2d_names:
    np.savez_compressed(os.path.join(root, f'data_2d_h36m_{name}.npz'),
                        positions_2d=np.array(positions_2d, dtype=object),
                        metadata=np.array(metadata, dtype=object))


def write_martinez(root, takes, detections=True):
  """cameras.h5, S<n>/MyPoses/3D_positions/<Take>.h5 and, with `detections`,
  S<n>/StackedHourglass/<Take_with_underscores>.<camera>.h5 (the projected 2D in MPII
  order, Neck dropped)."""
  import h5py   # pylint: disable=g-import-not-at-top
  os.makedirs(root, exist_ok=True)
  subjects = sorted({s for s, _ in takes})
  with h5py.File(os.path.join(root, 'cameras.h5'), 'w') as f:
    for subject in subjects:
      for c, camera in enumerate(h36m.CAMERAS, 1):
        cam = h36m.camera_parameters(subject, camera)
        intr = h36m.INTRINSICS[camera]
        g = f.create_group(f'subject{subject}/camera{c}')
        g['R'] = cam['rotation'].T         # stored transposed, as the real file is
        g['T'] = cam['centre'].reshape(3, 1)
        g['f'] = np.reshape(intr['focal'], (2, 1))
        g['c'] = np.reshape(intr['centre'], (2, 1))
        g['k'] = np.reshape(intr['radial'], (3, 1))
        g['p'] = np.reshape(intr['tangential'], (2, 1))
        g['Name'] = camera
  mpii = [h36m_martinez.MPII_TO_17.index(m) for m in range(16)]
  for (subject, take), poses in takes.items():
    folder = os.path.join(root, f'S{subject}')
    os.makedirs(os.path.join(folder, 'MyPoses/3D_positions'), exist_ok=True)
    with h5py.File(os.path.join(folder, 'MyPoses/3D_positions', take + '.h5'), 'w') as f:
      f['3D_positions'] = to_32(poses).reshape(len(poses), -1).T
    if detections:
      os.makedirs(os.path.join(folder, 'StackedHourglass'), exist_ok=True)
      for camera, (_, two_d) in views(subject, poses).items():
        name = f'{take.replace(" ", "_")}.{camera}.h5'
        with h5py.File(os.path.join(folder, 'StackedHourglass', name), 'w') as f:
          f['poses'] = two_d[:, mpii].astype(np.float32)

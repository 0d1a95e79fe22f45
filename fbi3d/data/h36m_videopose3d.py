"""Reader of VideoPose3D's Human3.6M archives (lifting only: no pictures).

  data_3d_h36m.npz   'positions_3d': {subject 'S1': {take 'Directions 1': [F, 32, 3]}},
                     metres, world frame
  data_2d_h36m_gt.npz, data_2d_h36m_cpn_ft_h36m_dbb.npz (or any data_2d_h36m_<name>.npz)
                     'positions_2d': {subject: {take: [4 cameras of [F, 17, 2]]}}, picture
                     pixels, the 17 joints in fbi3d's order; 'metadata'

The archives hold no cameras: the published ones (h36m.EXTRINSICS) turn world poses into
each camera's frame. 2D longer than its 3D is cut to it; shorter is skipped and counted.
"""

import os

import numpy as np

from fbi3d.data import h36m

POSES_3D = 'data_3d_h36m.npz'


def pose2d_file(name):
  return f'data_2d_h36m_{name}.npz'


def _load_dict(path, key):
  if not os.path.exists(path):
    raise h36m.H36MError(f'{path}: no such file')
  try:
    with np.load(path, allow_pickle=True) as data:
      if key not in data.files:
        raise h36m.H36MError(f'{path}: no {key!r} array (it has {", ".join(data.files)})')
      value = data[key]
      metadata = data['metadata'].item() if 'metadata' in data.files else None
  except (OSError, ValueError, EOFError) as e:
    raise h36m.H36MError(f'{path}: not a readable .npz archive ({e})') from None
  # A 2D archive says its joints' layout: only Human3.6M's 17 are the 17 joints here (a
  # COCO-ordered archive such as detectron_pt_coco would pass the shape check with every
  # joint mislabelled).
  if isinstance(metadata, dict):
    layout, joints = metadata.get('layout_name'), metadata.get('num_joints')
    if layout not in (None, 'h36m') or joints not in (None, 17):
      raise h36m.H36MError(f'{path}: its metadata gives layout {layout!r} with {joints} '
                           'joints; only the h36m layout of 17 joints is read (e.g. '
                           'cpn_ft_h36m_dbb or gt).')
  value = value.item() if value.dtype == object and value.shape == () else value
  if not isinstance(value, dict):
    raise h36m.H36MError(f'{path}: {key!r} is not a dictionary of subjects')
  return value


def sequences(root, subjects=None, pose2d='gt', images=False):
  """Sequences of the archives in folder `root`. pose2d: 'gt' projects the 3D through the
  published cameras unless data_2d_h36m_gt.npz is there (then it is read); any other name
  reads data_2d_h36m_<pose2d>.npz (e.g. cpn_ft_h36m_dbb)."""
  if images:
    raise ValueError('VideoPose3D\'s archives hold no pictures: leave out --images')
  poses3d = _load_dict(os.path.join(root, POSES_3D), 'positions_3d')
  path2d = os.path.join(root, pose2d_file(pose2d))
  poses2d = None
  if pose2d != 'gt' or os.path.exists(path2d):
    poses2d = _load_dict(path2d, 'positions_2d')
  for subject_name in sorted(poses3d, key=lambda s: (len(str(s)), str(s))):
    where = f'{root}/{POSES_3D}[{subject_name}]'
    try:
      subject = h36m.subject_number(subject_name)
    except h36m.H36MError as e:
      yield h36m.Skip(e.kind, f'{where}: {e}')
      continue
    if subjects is not None and subject not in subjects:
      continue
    takes = poses3d[subject_name]
    if not takes:
      yield h36m.Skip('empty_subject', f'{where}: no takes')
      continue
    if subject not in h36m.EXTRINSICS:
      yield h36m.Skip('unknown_subject', f'{where}: no published cameras for S{subject}')
      continue
    for take in sorted(takes):
      try:
        _, take_name = h36m.parse_action(take)
        world = h36m.select_joints(np.asarray(takes[take], np.float64)) * 1000.0
      except h36m.H36MError as e:
        yield h36m.Skip(e.kind, f'{where}[{take}]: {e}')
        continue
      views = None
      if poses2d is not None:
        views = poses2d.get(subject_name, {}).get(take)
        if views is None or len(views) != len(h36m.CAMERAS):
          yield h36m.Skip('missing_camera', f'{path2d}[{subject_name}][{take}]: '
                          f'{"no 2D" if views is None else f"{len(views)} cameras of 2D"}, '
                          f'expected {len(h36m.CAMERAS)}')
          continue
      for c, camera in enumerate(h36m.CAMERAS):
        cam = h36m.camera_parameters(subject, camera)
        two_d = None
        if views is not None:
          two_d = np.asarray(views[c], np.float64)
          if two_d.ndim != 3 or two_d.shape[1:] != (17, 2):
            yield h36m.Skip('bad_file', f'{path2d}[{subject_name}][{take}][{c}]: shape '
                            f'{two_d.shape}, expected [frames, 17, 2]')
            continue
        yield h36m.Sequence(subject=subject, take=take_name, camera=camera,
                            pose3d=h36m.to_camera(world, cam), pose2d=two_d,
                            source=f'{where}[{take}] camera {camera}')

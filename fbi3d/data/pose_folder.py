"""Captured poses for the synthetic renderer: every 17-joint pose of a folder of motion
files (or of `tools/convert_mocap.py` .npz files), each with its subject id, read once per
process and placed on the ground like a sampled body's (`body.place_on_ground`).
"""

import os

import numpy as np

from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import joint_maps
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import mocap


class PoseBank:
  """17-joint world poses [N, 17, 3] (mm, z up) with a subject id each, and where they
  came from."""

  def __init__(self, poses, subjects, sources):
    self.poses = np.asarray(poses, np.float64)
    self.subjects = np.asarray(subjects, np.int64)
    self.sources = tuple(sources)

  def place(self, index, yaw):
    """Pose `index` turned by `yaw` about the vertical and placed like `body.sample_pose`'s:
    the pelvis above the origin and the lower ankle 80 mm (scaled) above the ground."""
    return body.place_on_ground(self.poses[index], yaw)


_pose_bank_cache = {}

# What tools/convert_mocap.py records in each clip's .npz of how it was converted.
CONVERSION_FIELDS = ('every_nth', 'retargeted')


def conversion_settings(fields):
  """(every_nth, retargeted) of a converted clip's arrays, or None for an .npz that
  does not record them (a pose bank, or another program's poses)."""
  if not all(k in fields for k in CONVERSION_FIELDS):
    return None
  return int(fields['every_nth']), bool(fields['retargeted'])


def describe_settings(settings):
  every_nth, retargeted = settings
  return f'every_nth {every_nth}, {"retargeted" if retargeted else "captured"} bones'


def check_one_conversion(found, where, remedy):
  """Raises ValueError when the converted clips of `found` ({path: settings}) were made
  with more than one conversion's settings; `where` names the folder, `remedy` what to
  do."""
  kinds = {}
  for path, settings in sorted(found.items()):
    kinds.setdefault(settings, []).append(os.path.basename(path))
  if len(kinds) > 1:
    parts = [f'{len(names)} with {describe_settings(k)} ({names[0]}'
             + (', ...' if len(names) > 1 else '') + ')' for k, names in kinds.items()]
    raise ValueError(f'{where} holds clips of different conversions: '
                     + '; '.join(parts) + f'. {remedy}')


def load_pose_bank(folder, every_nth=4):
  """The poses of every motion file under `folder`: .npz files written by
  tools/convert_mocap.py (their `poses` as stored) and .bvh / .amc files (read with
  `fbi3d.data.mocap.load_clip`, every `every_nth` frame). Files are taken in sorted order, so the
  bank is the same on every run. Raises ValueError when nothing usable is found."""
  if not os.path.isdir(folder):
    raise ValueError(f'load_pose_bank: {folder} is not a folder.')
  paths = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    # A .partial.npz is a clip that tools/convert_mocap.py was still writing.
    paths.extend(os.path.join(root, f) for f in files
                 if os.path.splitext(f)[1].lower() in ('.npz', '.bvh', '.amc')
                 and not f.lower().endswith('.partial.npz'))
  paths.sort(key=lambda p: os.path.relpath(p, folder))
  # Read again when a file was converted again since (another size or time).
  stats = tuple((p, st.st_size, st.st_mtime_ns) for p, st in ((p, os.stat(p)) for p in paths))
  key = (os.path.abspath(folder), int(every_nth), stats)
  if key in _pose_bank_cache:
    return _pose_bank_cache[key]
  poses, subjects, sources, converted = [], [], [], {}
  for path in paths:
    if path.lower().endswith('.npz'):
      try:
        data = manifest_lib.read_npz(path, ('poses',), ('subject',) + CONVERSION_FIELDS)
      except ValueError as e:
        raise ValueError(f'load_pose_bank: {path}: not a readable .npz of poses ({e}); '
                         'convert the clip again or remove it from the folder.') from None
      clip_poses = np.asarray(data['poses'], np.float64)
      if conversion_settings(data) is not None:
        converted[path] = conversion_settings(data)
      subject = np.asarray(data['subject']) if 'subject' in data else None
      # One subject for the clip, one per pose (a pose bank of tools/pose_bank.py), or
      # the one its file name gives.
      if subject is None:
        subject = mocap.subject_of(path)
      elif subject.ndim == 0 or subject.shape == (len(clip_poses),):
        subject = subject.astype(np.int64)
      else:
        raise ValueError(f'load_pose_bank: {path}: "subject" holds {subject.shape} values '
                         f'for {len(clip_poses)} poses: give one for the clip or one per '
                         'pose.')
    else:
      clip_poses = joint_maps.to_h36m(mocap.load_clip(path))[::every_nth]
      subject = mocap.subject_of(path)
    if clip_poses.ndim != 3 or clip_poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
      raise ValueError(f'load_pose_bank: {path}: poses must be [N, 17, 3], got '
                       f'{clip_poses.shape}.')
    bad = np.flatnonzero(~np.isfinite(clip_poses).all(axis=(1, 2)))
    if len(bad):
      raise ValueError(f'load_pose_bank: {path}: {len(bad)} pose(s) hold NaN or infinite '
                       f'coordinates, the first pose {int(bad[0])}; convert the clip again '
                       'or remove it from the folder.')
    if len(clip_poses):
      # Poses in metres or centimetres, or collapsed to a point, would be drawn as a speck
      # or a giant: the same femur check as the motion files get.
      femurs = [i for i, bone in enumerate(skeleton.BONES) if bone in ((1, 2), (4, 5))]
      femur = joint_maps.bone_lengths(clip_poses)[:, femurs].mean()
      low, high = joint_maps.FEMUR_RANGE_MM
      if not low <= femur <= high:
        raise ValueError(f'load_pose_bank: {path}: the mean femur is {femur:.3g} long, '
                         f'outside {low:.0f} to {high:.0f} mm: the poses must be in '
                         'millimetres (convert the clip again with tools/convert_mocap.py, '
                         'or remove the file from the folder).')
    short = joint_maps.first_short_bone(clip_poses) if len(clip_poses) else None
    if short is not None:
      # A zeroed or collapsed pose would be drawn as a speck or a folded limb.
      raise ValueError(f'load_pose_bank: {path}: pose {short[0]} has the bone {short[1]} '
                       f'{short[2]:.3g} mm long, under {joint_maps.MIN_BONE_MM:g} mm: two '
                       'joints in one place; convert the clip again or remove it from the '
                       'folder.')
    poses.append(clip_poses)
    subjects.append(np.broadcast_to(subject, (len(clip_poses),)))
    sources.append(path)
  # Clips at other frame steps or bone lengths would be mixed into one bank unnoticed.
  check_one_conversion(converted, f'load_pose_bank: {folder}',
                       'Convert the motion files again into an empty folder with one '
                       'setting (tools/convert_mocap.py), or keep each kind in a folder of '
                       'its own.')
  if not poses or not sum(len(p) for p in poses):
    raise ValueError(f'load_pose_bank: no poses in {folder} (expected .npz from '
                     'tools/convert_mocap.py, or .bvh / .amc files).')
  bank = PoseBank(np.concatenate(poses), np.concatenate(subjects), sources)
  _pose_bank_cache[key] = bank
  return bank

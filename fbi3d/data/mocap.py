"""Motion capture files and folders: finding them, and reading one into a `motion.Clip`
with the reader its extension calls for (`asf_amc`, `bvh`), in the length unit its
skeleton's 17-joint map declares (`joint_maps`).

An .amc file is read with its subject's .asf in the same folder (01_01.amc -> 01.asf);
a file's subject is the number its name starts with (CMU's naming).
"""

import os
import re

from fbi3d.data import asf_amc
from fbi3d.data import bvh
from fbi3d.data import joint_maps
from fbi3d.data import motion


def subject_of(path):
  """The subject id in a CMU-style file name ('01_01.amc' -> 1, '131_02.bvh' -> 131);
  -1 when the name does not start with a number."""
  match = re.match(r'(\d+)', os.path.basename(path))
  return int(match.group(1)) if match else -1


def asf_for_amc(amc_path):
  """The ASF of an AMC's subject in the same folder ('01_01.amc' -> '01.asf'); None
  when absent."""
  folder, name = os.path.split(amc_path)
  stem = os.path.splitext(name)[0]
  candidates = [stem.split('_')[0] + '.asf', stem + '.asf']
  for candidate in candidates:
    for entry in (candidate, candidate.upper()):
      path = os.path.join(folder, entry)
      if os.path.isfile(path):
        return path
  return None


def load_clip(path, unit_mm=None, frame_rate=None, source_up='y'):
  """Reads one .bvh or .amc file (the .amc with its subject's .asf) into a Clip.

  unit_mm: millimetres per file unit (default: the ASF header's, or for BVH the unit
  `joint_maps.BVH_UNITS_MM` declares for the skeleton's map, CMU's when no map fits);
  frame_rate: for AMC, which carries none (default CMU's 120 fps); BVH takes its Frame
  Time. A clip that a 17-joint map fits has its unit checked (`joint_maps.check_units`).
  """
  ext = os.path.splitext(path)[1].lower()
  if ext == '.bvh':
    clip = bvh.read_bvh(path, 1.0 if unit_mm is None else unit_mm, source_up)
  elif ext == '.amc':
    asf_path = asf_for_amc(path)
    if asf_path is None:
      raise motion.MocapError(f'{path}: no ASF skeleton of its subject beside it (expected '
                              f'{os.path.basename(path).split("_")[0]}.asf)')
    clip = asf_amc.asf_amc_clip(asf_path, path, unit_mm,
                                frame_rate or motion.CMU_FRAME_RATE, source_up)
  else:
    raise motion.MocapError(f'{path}: not a motion file (expected .bvh or .amc)')
  if not clip.num_frames:
    # Nothing to read: the unit check's mean femur of no frames was NaN.
    raise motion.MocapError(f'{path}: the clip holds no frames'
                            + (' ("Frames: 0")' if ext == '.bvh' else '')
                            + ': there is no pose in it to read')
  try:
    key = joint_maps.find_joint_map(clip.joint_names, joint_maps.clip_format(clip))
  except motion.MocapError:
    key = None   # to_h36m says so; the clip itself is still readable
  if ext == '.bvh' and unit_mm is None:
    clip.positions *= joint_maps.BVH_UNITS_MM.get(key, motion.CMU_UNIT_MM)
  if key is not None:
    joint_maps.check_units(clip, joint_maps.to_h36m(clip, key))
  return clip


def find_motion_files(folder):
  """Motion files (.bvh, .amc) under a folder, recursively, sorted by relative path."""
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      if os.path.splitext(name)[1].lower() in ('.bvh', '.amc'):
        found.append(os.path.join(root, name))
  return sorted(found, key=lambda p: os.path.relpath(p, folder))

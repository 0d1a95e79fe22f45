"""Predictions in the ECCV 2018 challenge's submission form.

One CSV per image, named like the image (00001.jpg -> 00001.csv), 17 lines "x,y,z":
millimetres, camera frame, root-relative, joints in the order of `fbi3d.skeleton`:
the same form as the layout's POSE files, written and read by `fbi3d.data.layout`.
The folder is written under a temporary name and renamed when complete, and a zip of
the CSVs (at the zip's top level) is written beside it, so neither is ever half there.
"""

import os
import shutil
import zipfile

import numpy as np

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import layout


def write_submission(folder, ids, poses):
  """Writes `folder`/<id>.csv for every example and `folder`.zip.

  Args:
    folder: the output folder (replaced if it exists).
    ids: image ids [N] (str, as in the image file names without extension).
    poses: [N, 17, 3] predicted 3D in millimetres, camera frame; the root is subtracted.

  Returns:
    (folder, zip path).
  Raises ValueError for a wrong shape, a NaN, or an empty or repeated id.
  """
  poses = np.asarray(poses, dtype=np.float64)
  ids = [str(i) for i in ids]
  if poses.ndim != 3 or poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'write_submission: poses must be [N, {skeleton.NUM_JOINTS}, 3], '
                     f'got {list(poses.shape)}.')
  if len(ids) != len(poses):
    raise ValueError(f'write_submission: {len(ids)} ids for {len(poses)} poses.')
  if not np.all(np.isfinite(poses)):
    bad = ids[int(np.argwhere(~np.isfinite(poses))[0][0])]
    raise ValueError(f'write_submission: the prediction for {bad} has NaN or infinity.')
  seen = set()
  for rid in ids:
    if not rid or os.sep in rid or rid in seen:
      raise ValueError(f'write_submission: empty, repeated or path-like id {rid!r}.')
    seen.add(rid)
  folder = os.path.abspath(folder)
  tmp = folder + '.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for rid, pose in zip(ids, geometry.root_relative(poses)):
    layout.write_pose_csv(os.path.join(tmp, rid + '.csv'), pose)
  zip_path = folder + '.zip'
  with zipfile.ZipFile(zip_path + '.tmp', 'w', zipfile.ZIP_DEFLATED) as z:
    for rid in ids:
      z.write(os.path.join(tmp, rid + '.csv'), rid + '.csv')
  shutil.rmtree(folder, ignore_errors=True)
  os.replace(tmp, folder)
  os.replace(zip_path + '.tmp', zip_path)
  return folder, zip_path


def remove_submission(folder):
  """Removes `folder` and `folder`.zip of an earlier write_submission, if there: an
  evaluation that writes none must not leave another model's predictions beside its
  results."""
  folder = os.path.abspath(folder)
  shutil.rmtree(folder, ignore_errors=True)
  if os.path.exists(folder + '.zip'):
    os.remove(folder + '.zip')


def read_submission(folder):
  """Reads a submission folder back: {id: [17, 3] float32}, through the layout reader."""
  out = {}
  for name in sorted(os.listdir(folder)):
    if name.endswith('.csv'):
      out[name[:-4]] = layout.read_pose_csv(os.path.join(folder, name))
  return out

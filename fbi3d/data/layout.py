"""The ECCV 2018 3D pose challenge layout and its side files.

    <root>/Train/IMG/%05d.jpg   <root>/Train/POSE/%05d.csv
    <root>/Val/IMG/%05d.jpg     <root>/Val/POSE/%05d.csv
    <root>/Test/IMG/%05d.jpg    (no POSE in the challenge)

A POSE file holds 17 lines "x,y,z": millimetres, camera frame, root-relative, joints in
the order of `fbi3d.skeleton`. The synthetic source adds `<root>/<split>/META.csv` with
one row per image:

    id,action,subject,x0,y0,...,x16,y16,fx,fy,cx,cy

id as in the file names (e.g. 00001), action a name from `skeleton.ACTIONS` (or empty),
subject an integer, 2D joints in image pixels, intrinsics in pixels.
"""

import csv
import os

import numpy as np

from fbi3d import skeleton

SPLITS = ('Train', 'Val', 'Test')
IMG_DIR = 'IMG'
POSE_DIR = 'POSE'
META_FILE = 'META.csv'
# Lies at the root of a layout while a writer (tools/make_synthetic.py) is writing it: a
# folder that holds it was stopped half way, new pictures beside old ones and labels.
WRITING_FILE = '.writing'
ID_FORMAT = '{:05d}'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
# The least focal length (pixels) a META.csv row may give: under a pixel it is no camera.
MIN_FOCAL_PX = 1.0

META_COLUMNS = (
    ['id', 'action', 'subject']
    + [f'{axis}{j}' for j in range(skeleton.NUM_JOINTS) for axis in ('x', 'y')]
    + ['fx', 'fy', 'cx', 'cy'])


class LayoutError(ValueError):
  """A file of the layout is missing or malformed; the message names it and says why."""


def write_pose_csv(path, pose3d):
  pose3d = np.asarray(pose3d, dtype=np.float64)
  if pose3d.shape != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'write_pose_csv: expected [17, 3], got {pose3d.shape}.')
  with open(path, 'w') as f:
    f.write('\n'.join(f'{x:.3f},{y:.3f},{z:.3f}' for x, y, z in pose3d) + '\n')


def read_pose_csv(path):
  """Reads a POSE file into [17, 3] float32; LayoutError names the file and the fault."""
  try:
    with open(path) as f:
      lines = [ln.strip() for ln in f if ln.strip()]
  except OSError as e:
    raise LayoutError(f'{path}: cannot read pose: {e.strerror}') from e
  if len(lines) != skeleton.NUM_JOINTS:
    raise LayoutError(
        f'{path}: expected {skeleton.NUM_JOINTS} lines "x,y,z", found {len(lines)}')
  rows = []
  for i, line in enumerate(lines):
    parts = line.split(',')
    if len(parts) != 3:
      raise LayoutError(f'{path}: line {i + 1}: expected 3 values "x,y,z", got {line!r}')
    try:
      row = [float(v) for v in parts]
    except ValueError as e:
      raise LayoutError(f'{path}: line {i + 1}: not a number in {line!r}') from e
    if not all(np.isfinite(row)):
      raise LayoutError(f'{path}: line {i + 1}: NaN or infinity in {line!r}')
    rows.append(row)
  return np.array(rows, dtype=np.float32)


def write_meta(path, records):
  """Writes META.csv; records are dicts with id, action, subject, joints2d [17, 2],
  intrinsics (fx, fy, cx, cy)."""
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(META_COLUMNS)
    for r in records:
      action = r['action']
      if isinstance(action, (int, np.integer)):
        action = skeleton.ACTIONS[action] if action >= 0 else ''
      joints = np.asarray(r['joints2d'], np.float64).reshape(-1)
      writer.writerow(
          [r['id'], action, int(r['subject'])]
          + [f'{v:.3f}' for v in joints]
          + [f'{v:.3f}' for v in r['intrinsics']])


def read_meta(path):
  """Reads META.csv.

  Returns (records, problems): records maps id -> dict(action index, subject,
  joints2d [17, 2] float32, intrinsics [4] float32); problems maps id -> reason for rows
  that were malformed or duplicated (those ids are left out of records).
  Raises LayoutError when the header is wrong.
  """
  records, problems, seen = {}, {}, set()
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(META_COLUMNS):
      raise LayoutError(
          f'{path}: header must be {",".join(META_COLUMNS[:4])},...,fx,fy,cx,cy '
          f'({len(META_COLUMNS)} columns); got {len(header or [])} columns')
    for line_no, row in enumerate(reader, start=2):
      if not row:
        continue
      rid = row[0].strip()
      if rid in seen:
        problems[rid] = f'duplicate id: {path} has more than one row for {rid}'
        records.pop(rid, None)
        continue
      seen.add(rid)
      if len(row) != len(META_COLUMNS):
        problems[rid] = (f'{path}: line {line_no}: expected {len(META_COLUMNS)} values, '
                         f'got {len(row)}')
        continue
      try:
        values = np.array([float(v) for v in row[3:]], dtype=np.float64)
        subject = int(row[2]) if row[2].strip() else -1
      except ValueError:
        problems[rid] = f'{path}: line {line_no}: a value is not a number'
        continue
      if not np.all(np.isfinite(values)):
        problems[rid] = f'{path}: line {line_no}: NaN or infinity'
        continue
      action_name = row[1].strip()
      if action_name and skeleton.action_index(action_name) == skeleton.UNKNOWN_ACTION:
        problems[rid] = (f'{path}: line {line_no}: unknown action {action_name!r} (the '
                         f'actions: {", ".join(skeleton.ACTIONS)}; empty for none)')
        continue
      focal = values[2 * skeleton.NUM_JOINTS:2 * skeleton.NUM_JOINTS + 2]
      if np.any(values[2 * skeleton.NUM_JOINTS:]) and not np.all(focal >= MIN_FOCAL_PX):
        # A focal length under a pixel is no camera (a value in metres, or normalised).
        problems[rid] = (f'{path}: line {line_no}: focal lengths fx, fy must be at least '
                         f'{MIN_FOCAL_PX:g} px (got {focal[0]:g}, {focal[1]:g}); all four '
                         'intrinsics 0 when unknown')
        continue
      records[rid] = dict(
          action=skeleton.action_index(action_name) if action_name else -1,
          subject=subject,
          joints2d=values[:2 * skeleton.NUM_JOINTS].reshape(skeleton.NUM_JOINTS, 2)
          .astype(np.float32),
          intrinsics=values[2 * skeleton.NUM_JOINTS:].astype(np.float32))
  return records, problems


def split_dir(root, split):
  return os.path.join(root, split)

"""The BVH reader: a hierarchy and its motion, through forward kinematics, into a
`motion.Clip`.

BVH has no unit field: `read_bvh(..., unit_mm=motion.CMU_UNIT_MM)` defaults to the CMU
unit (the cgspeed BVH releases keep CMU's numbers, but for the Daz-friendly skeleton, in
centimetres); `mocap.load_clip` takes the unit its skeleton's map declares. The rotation
channels of a joint, in their listed order c1 c2 c3, give M = R(c1) R(c2) R(c3) (column
vectors, v_parent = M v_child; so "Zrotation Yrotation Xrotation" is Rz Ry Rx). A joint
lies at its parent's position plus the parent's world rotation applied to its OFFSET
plus its position channels (when it has any). A clip's joints are every ROOT/JOINT at
its origin and every End Site, named '<parent>_end'.
"""

import math
import re

import numpy as np

from fbi3d.data import motion

_BVH_CHANNELS = ('xposition', 'yposition', 'zposition', 'xrotation', 'yrotation',
                 'zrotation')


def _bvh_tokens(lines, start, stop):
  for line_no in range(start, stop):
    for token in lines[line_no].split():
      yield token, line_no + 1


def read_bvh(path, unit_mm=motion.CMU_UNIT_MM, source_up='y'):
  """Reads a BVH file and runs forward kinematics: a motion.Clip.

  Any hierarchy, any channel list per joint (position and rotation channels in any
  order), End Sites; `unit_mm` is the length of one file unit in millimetres (default
  the CMU unit, right for the cgspeed CMU release).
  """
  lines = motion.read_lines(path)
  motion_line = None
  for i, raw in enumerate(lines):
    if raw.strip().upper() == 'MOTION':
      motion_line = i
      break
  if motion_line is None:
    motion.fail(path, len(lines), 'expected a MOTION section (file truncated?)')
  tokens = list(_bvh_tokens(lines, 0, motion_line))
  pos = 0

  def take(what, literal=False):
    nonlocal pos
    if pos >= len(tokens):
      motion.fail(path, motion_line + 1, f'expected {what}, found MOTION (hierarchy '
                  'truncated?)')
    token, line_no = tokens[pos]
    pos += 1
    if literal and token.upper() != what.upper():
      motion.fail(path, line_no, f'expected {what!r}, got {token!r}')
    return token, line_no

  def take_numbers(count, what):
    values = []
    for _ in range(count):
      token, line_no = take(what)
      values.append(motion.numbers(path, line_no, [token], what)[0])
    return np.array(values)

  names, parents, offsets, channels = [], [], [], []

  def joint(parent, name):
    index = len(names)
    names.append(name)
    parents.append(parent)
    take('{', literal=True)
    token, line_no = take('OFFSET', literal=True)
    offsets.append(take_numbers(3, 'three OFFSET numbers'))
    token, line_no = take('CHANNELS', literal=True)
    count_token, line_no = take('a channel count')
    if not re.fullmatch(r'\d+', count_token):
      motion.fail(path, line_no, f'expected a channel count, got {count_token!r}')
    joint_channels = []
    for _ in range(int(count_token)):
      token, line_no = take('a channel name')
      if token.lower() not in _BVH_CHANNELS:
        motion.fail(path, line_no, f'expected a channel name (Xposition ... Zrotation), '
                    f'got {token!r}')
      if token.lower() in joint_channels:
        # Read as given, the second would overwrite the first's value unseen.
        motion.fail(path, line_no, f'joint {name!r}: channel {token!r} given twice')
      joint_channels.append(token.lower())
    channels.append(tuple(joint_channels))
    while True:
      token, line_no = take('JOINT, End Site or }')
      key = token.upper()
      if key == '}':
        return
      if key == 'JOINT':
        child, _ = take('a joint name')
        if child in names:
          motion.fail(path, line_no, f'joint name {child!r} used twice')
        joint(index, child)
      elif key == 'END':
        take('Site', literal=True)
        end_name = f'{name}_end'
        if end_name in names:
          # The end site's name is taken: joint() looks names up, and would find the other.
          motion.fail(path, line_no, f'the End Site of {name!r} would be named {end_name!r}, '
                      'a name the file already uses (a joint of that name, or a second End '
                      'Site of the joint): rename the joint, or keep one End Site')
        names.append(end_name)
        parents.append(index)
        channels.append(())
        take('{', literal=True)
        take('OFFSET', literal=True)
        offsets.append(take_numbers(3, 'three End Site OFFSET numbers'))
        take('}', literal=True)
      else:
        motion.fail(path, line_no, f'expected JOINT, End Site or }}, got {token!r}')

  take('HIERARCHY', literal=True)
  take('ROOT', literal=True)
  root_name, _ = take('a root name')
  joint(-1, root_name)
  if pos != len(tokens):
    token, line_no = tokens[pos]
    motion.fail(path, line_no, f'expected MOTION after the root joint, got {token!r}')

  # MOTION: "Frames: N", "Frame Time: t", then N lines of values.
  header = [(i, lines[i].strip()) for i in range(motion_line + 1, len(lines))
            if lines[i].strip()]
  if len(header) < 2:
    motion.fail(path, len(lines), 'expected "Frames:" and "Frame Time:" after MOTION')
  (i_frames, text_frames), (i_time, text_time) = header[0], header[1]
  match = re.fullmatch(r'Frames:\s*(\d+)', text_frames, re.IGNORECASE)
  if not match:
    motion.fail(path, i_frames + 1, f'expected "Frames: <count>", got {text_frames!r}')
  num_frames = int(match.group(1))
  match = re.fullmatch(r'Frame\s+Time:\s*(\S+)', text_time, re.IGNORECASE)
  frame_time = None
  if match:
    try:
      frame_time = float(match.group(1))
    except ValueError:
      pass
  if frame_time is None or not math.isfinite(frame_time) or frame_time <= 0:
    motion.fail(path, i_time + 1, f'expected "Frame Time: <seconds > 0>", got {text_time!r}')
  num_channels = sum(len(c) for c in channels)
  rows = header[2:]
  if num_frames > len(rows):
    # Before the array is made: a damaged count (Frames: 10**14) would ask for petabytes.
    motion.fail(path, len(lines), f'expected {num_frames} frames (Frames: line {i_frames + 1}), '
                f'found {len(rows)}: file truncated')
  data = np.zeros((num_frames, num_channels))
  for f in range(num_frames):
    line_no, text = rows[f][0] + 1, rows[f][1]
    values = text.split()
    if len(values) != num_channels:
      motion.fail(path, line_no, f'frame {f + 1}: expected {num_channels} values, got '
                  f'{len(values)}')
    data[f] = motion.numbers(path, line_no, values, f'{num_channels} channel values')
  if len(rows) > num_frames:
    motion.fail(path, rows[num_frames][0] + 1, f'expected {num_frames} frames (Frames: line '
                f'{i_frames + 1}), found more')

  deg = np.pi / 180.0
  world_rot, world_pos = [], []
  column = 0
  for j, joint_channels in enumerate(channels):
    translation = np.broadcast_to(offsets[j], (num_frames, 3)).copy()
    rot_axes, rot_columns = [], []
    for k, channel in enumerate(joint_channels):
      if channel.endswith('position'):
        translation[:, 'xyz'.index(channel[0])] += data[:, column + k]
      else:
        rot_axes.append(channel[0])
        rot_columns.append(column + k)
    column += len(joint_channels)
    local = motion.chain_rotations(rot_axes, data[:, rot_columns] * deg)
    p = parents[j]
    if p < 0:
      world_rot.append(local)
      world_pos.append(translation)
    else:
      world_rot.append(world_rot[p] @ local)
      world_pos.append(world_pos[p] + (world_rot[p] @ translation[..., None])[..., 0])
  positions = np.stack(world_pos, axis=1) * unit_mm
  positions = positions @ motion.source_to_world(source_up).T
  return motion.Clip(joint_names=tuple(names), parents=tuple(parents), positions=positions,
                     frame_rate=_rate(frame_time), source=str(path))


def _rate(frame_time):
  rate = 1.0 / frame_time
  return float(round(rate)) if abs(rate - round(rate)) < 1e-3 else float(rate)

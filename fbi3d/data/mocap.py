"""Motion capture: ASF/AMC and BVH readers, forward kinematics, the 17-joint mapping.

Readers return a `Clip`: every joint of the source skeleton at every frame, in a world
frame of millimetres with z UP (x and y horizontal), the frame of the synthetic renderer
(`fbi3d.data.synthetic`). The CMU files are y up; their points are turned into the world
by (x, y, z) -> (x, -z, y), a rotation of +90 degrees about x (no mirroring, so left
stays left).

Units. CMU's ASF header says `:units length 0.45`: a length unit is 1/0.45 inch, that is
25.4 / 0.45 = 56.444 mm; in general an ASF's unit is 25.4 / `length` mm unless a unit is
passed. BVH has no unit field: `read_bvh(..., unit_mm=CMU_UNIT_MM)` defaults to the CMU
unit (the cgspeed BVH releases keep CMU's numbers, but for the Daz-friendly skeleton,
in centimetres); `load_clip` takes the unit its skeleton's map declares.

Rotation conventions (column vectors, v_parent = M v_child):
- BVH: the rotation channels of a joint, in their listed order c1 c2 c3, give
  M = R(c1) R(c2) R(c3) (so "Zrotation Yrotation Xrotation" is Rz Ry Rx). A joint lies
  at its parent's position plus the parent's world rotation applied to its OFFSET plus
  its position channels (when it has any).
- ASF/AMC (Acclaim): a rotation order "XYZ" (root `axis`, a bone's `axis ... XYZ`, the
  `dof rx ry rz` list) rotates about X first, then Y, then Z, about fixed axes:
  M = Rz Ry Rx. A bone's `axis` angles give C, its local frame in the rest pose; a
  frame's dof values give M in that local frame; the bone's world rotation is
  W = W_parent C M C^-1 and its end lies at its start + W (length * direction). The root
  lies at the header `position` plus the AMC translation; its rotation is
  C_root M_root C_root^-1, C_root from the header `orientation` in the root `axis` order.
  Angles are degrees or radians as the ASF header (`angle deg|rad`) and the AMC header
  (`:DEGREES` / `:RADIANS`) say.

Joints of a clip: for ASF/AMC, 'root' and then one joint per bone, named after the bone
and placed at the bone's END (so 'lfemur' is the left knee); for BVH, every ROOT/JOINT at
its origin and every End Site, named '<parent>_end'.

`to_h36m` maps a clip to Human3.6M's 17 joints (`skeleton.JOINT_NAMES`) through the
tables of `JOINT_MAPS` (one per skeleton variant: CMU's ASF, and the cgspeed BVH
releases "3dsMax", "MotionBuilder" and "Daz" friendly), which list the approximations.
A BVH file's length unit is declared per skeleton (`BVH_UNITS_MM`) and checked on load
against an adult femur's length (`FEMUR_RANGE_MM`).
`world_to_camera` turns world poses into the camera frame of a camera dict like
`synthetic.sample_camera`'s (x right, y down, z away from the camera: Human3.6M's
convention). `convert_folder` writes per-clip .npz files and, optionally, lifting-only
TFRecords with the image schema (`tools/convert_mocap.py`).
"""

import dataclasses
import json
import os
import re
import time
import zlib

import numpy as np

from fbi3d import fbi
from fbi3d import geometry
from fbi3d import skeleton

CMU_UNIT_MM = 25.4 / 0.45     # one CMU length unit: 1/0.45 inch = 56.444 mm
CMU_FRAME_RATE = 120.0        # AMC files carry no frame rate; CMU captured at 120 fps
INCH_MM = 25.4
ANKLE_HEIGHT_MM = 80.0        # ankle joint above the ground, as in the synthetic poses

# Source (y up) -> world (z up): (x, y, z) -> (x, -z, y).
Y_UP_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

MOTION_EXTENSIONS = ('.asf', '.amc', '.bvh')


class MocapError(ValueError):
  """A motion file that cannot be read; the message names the file and line."""


@dataclasses.dataclass
class Clip:
  """One motion clip.

  joint_names: K names; parents: K parent indices (-1 for the root; a parent comes
  before its children); positions: float64 [F, K, 3], millimetres, world frame (z up);
  frame_rate: frames per second; source: the motion file's path.
  """
  joint_names: tuple
  parents: tuple
  positions: np.ndarray
  frame_rate: float
  source: str

  @property
  def num_frames(self):
    return int(self.positions.shape[0])

  def joint(self, name):
    """Positions [F, 3] of a joint by name."""
    return self.positions[:, self.joint_names.index(name)]


def _source_to_world(source_up):
  if source_up == 'y':
    return Y_UP_TO_WORLD
  if source_up == 'z':
    return np.eye(3)
  raise ValueError(f"source_up must be 'y' or 'z', got {source_up!r}.")


# ---------------------------------------------------------------------------------------
# Rotations, batched over frames.


def axis_rotations(axis, angles):
  """Rotations [..., 3, 3] about a coordinate axis ('x', 'y' or 'z') by angles [...]
  in radians (right-handed)."""
  angles = np.asarray(angles, np.float64)
  c, s = np.cos(angles), np.sin(angles)
  one, zero = np.ones_like(c), np.zeros_like(c)
  axis = axis.lower()
  if axis == 'x':
    rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
  elif axis == 'y':
    rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
  elif axis == 'z':
    rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
  else:
    raise ValueError(f'axis_rotations: axis must be x, y or z, got {axis!r}.')
  return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def chain_rotations(axes, angles):
  """The product R(axes[0], angles[..., 0]) @ R(axes[1], ...) @ ... [..., 3, 3]."""
  angles = np.asarray(angles, np.float64)
  out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
  for i, axis in enumerate(axes):
    out = out @ axis_rotations(axis, angles[..., i])
  return out


def acclaim_rotations(axes, angles):
  """ASF/AMC rotation for an order such as 'xyz' (x first, about fixed axes):
  R(axes[-1]) ... R(axes[0])."""
  angles = np.asarray(angles, np.float64)
  return chain_rotations(axes[::-1], angles[..., ::-1])


# ---------------------------------------------------------------------------------------
# Text helpers with file and line in every error.


def _fail(path, line_no, message):
  where = f'{path}:{line_no}' if line_no else f'{path}'
  raise MocapError(f'{where}: {message}')


def _numbers(path, line_no, tokens, what):
  try:
    return [float(t) for t in tokens]
  except ValueError:
    _fail(path, line_no, f'expected {what} (numbers), got {" ".join(tokens)!r}')


def _read_lines(path):
  try:
    with open(path, 'r', encoding='utf-8', errors='replace') as f:
      return f.read().splitlines()
  except OSError as e:
    raise MocapError(f'{path}: cannot read: {e}') from e


# ---------------------------------------------------------------------------------------
# ASF / AMC.


@dataclasses.dataclass
class _Bone:
  name: str
  direction: np.ndarray
  length: float
  axis_angles: np.ndarray
  axis_order: str
  dof: tuple
  line_no: int
  parent: str = None


@dataclasses.dataclass
class AsfSkeleton:
  """A parsed ASF file: root settings and bones (lengths still in file units)."""
  path: str
  length_scale: float
  degrees: bool
  root_order: tuple
  root_axis: str
  root_position: np.ndarray
  root_orientation: np.ndarray
  bones: dict
  order: tuple   # bone names, every parent before its children


def read_asf(path):
  """Parses an ASF skeleton file; raises MocapError on malformed input."""
  lines = _read_lines(path)
  section = None
  length_scale, degrees = 1.0, True
  root = dict(order=None, axis='XYZ', position=np.zeros(3), orientation=np.zeros(3))
  bones, current, hierarchy = {}, None, []
  hierarchy_open = hierarchy_closed = False
  for line_no, raw in enumerate(lines, 1):
    text = raw.split('#', 1)[0].strip()
    if not text:
      continue
    tokens = text.split()
    key = tokens[0].lower()
    if key.startswith(':'):
      if current is not None:
        _fail(path, line_no, f'expected "end" of bone {current.get("name")!r} '
              f'begun on line {current["line_no"]}, got {tokens[0]!r}')
      section = key[1:]
      if section in ('version', 'name', 'documentation'):
        section = 'skip' if section == 'documentation' else None
      elif section == 'hierarchy':
        hierarchy_open = hierarchy_closed = False
      elif section not in ('units', 'root', 'bonedata'):
        section = 'skip'
      continue
    if section == 'units':
      if key == 'length':
        length_scale = _numbers(path, line_no, tokens[1:2], 'a length unit')[0]
        if len(tokens) != 2 or length_scale <= 0:
          _fail(path, line_no, 'expected "length <positive number>"')
      elif key == 'angle':
        if len(tokens) != 2 or tokens[1].lower() not in ('deg', 'rad'):
          _fail(path, line_no, 'expected "angle deg" or "angle rad"')
        degrees = tokens[1].lower() == 'deg'
    elif section == 'root':
      if key == 'order':
        order = tuple(t.lower() for t in tokens[1:])
        if not order or any(t not in ('tx', 'ty', 'tz', 'rx', 'ry', 'rz') for t in order):
          _fail(path, line_no, 'expected "order" followed by TX TY TZ RX RY RZ tokens')
        root['order'] = order
      elif key == 'axis':
        if len(tokens) != 2 or sorted(tokens[1].upper()) != ['X', 'Y', 'Z']:
          _fail(path, line_no, 'expected "axis" and a rotation order such as XYZ')
        root['axis'] = tokens[1].upper()
      elif key in ('position', 'orientation'):
        if len(tokens) != 4:
          _fail(path, line_no, f'expected "{key}" and 3 numbers')
        root[key] = np.array(_numbers(path, line_no, tokens[1:], f'the root {key}'))
    elif section == 'bonedata':
      if key == 'begin':
        if current is not None:
          _fail(path, line_no, f'expected "end" of the bone begun on line '
                f'{current["line_no"]}, got "begin"')
        current = dict(line_no=line_no, dof=(), axis=(np.zeros(3), 'XYZ'))
      elif key == 'end':
        if current is None:
          _fail(path, line_no, 'expected "begin" before "end"')
        for field in ('name', 'direction', 'length'):
          if field not in current:
            _fail(path, line_no, f'expected a "{field}" in the bone begun on line '
                  f'{current["line_no"]}')
        if current['name'] in bones or current['name'] == 'root':
          _fail(path, line_no, f'bone name {current["name"]!r} used twice')
        bones[current['name']] = _Bone(
            name=current['name'], direction=current['direction'], length=current['length'],
            axis_angles=current['axis'][0], axis_order=current['axis'][1],
            dof=current['dof'], line_no=current['line_no'])
        current = None
      elif current is None:
        _fail(path, line_no, f'expected "begin" of a bone, got {tokens[0]!r}')
      elif key == 'name':
        if len(tokens) != 2:
          _fail(path, line_no, 'expected "name <bone name>"')
        current['name'] = tokens[1]
      elif key == 'direction':
        values = _numbers(path, line_no, tokens[1:], 'a direction')
        norm = np.linalg.norm(values) if len(values) == 3 else 0.0
        if norm <= 0:
          _fail(path, line_no, 'expected "direction" and 3 numbers, not all zero')
        current['direction'] = np.array(values) / norm
      elif key == 'length':
        values = _numbers(path, line_no, tokens[1:], 'a length')
        if len(values) != 1 or values[0] < 0:
          _fail(path, line_no, 'expected "length" and one number >= 0')
        current['length'] = values[0]
      elif key == 'axis':
        if len(tokens) != 5 or sorted(tokens[4].upper()) != ['X', 'Y', 'Z']:
          _fail(path, line_no, 'expected "axis", 3 angles and an order such as XYZ')
        current['axis'] = (np.array(_numbers(path, line_no, tokens[1:4], 'axis angles')),
                           tokens[4].upper())
      elif key == 'dof':
        dof = tuple(t.lower() for t in tokens[1:])
        bad = [t for t in dof if t not in ('rx', 'ry', 'rz')]
        if bad or not dof:
          _fail(path, line_no, f'expected "dof" followed by rx, ry, rz (translation and '
                f'length dofs are not supported), got {" ".join(tokens[1:])!r}')
        current['dof'] = dof
    elif section == 'hierarchy':
      if key == 'begin':
        hierarchy_open = True
      elif key == 'end':
        hierarchy_closed = True
      elif not hierarchy_open or hierarchy_closed:
        _fail(path, line_no, f'expected "begin" or "end" of the hierarchy, got {tokens[0]!r}')
      else:
        hierarchy.append((line_no, tokens))
  if current is not None:
    _fail(path, len(lines), f'expected "end" of the bone begun on line {current["line_no"]}, '
          'found the end of the file')
  if root['order'] is None:
    _fail(path, len(lines), 'expected a :root section with an "order" line')
  if not hierarchy_closed:
    _fail(path, len(lines), 'expected a :hierarchy section closed by "end" (file truncated?)')
  for line_no, tokens in hierarchy:
    parent = tokens[0]
    if parent != 'root' and parent not in bones:
      _fail(path, line_no, f'hierarchy names an unknown bone {parent!r}')
    for child in tokens[1:]:
      if child not in bones:
        _fail(path, line_no, f'hierarchy names an unknown bone {child!r}')
      if bones[child].parent is not None:
        _fail(path, line_no, f'bone {child!r} has two parents')
      bones[child].parent = parent
  order, placed = [], {'root'}
  pending = [b for b in bones.values()]
  while pending:
    ready = [b for b in pending if b.parent in placed]
    if not ready:
      orphan = pending[0]
      _fail(path, orphan.line_no, f'bone {orphan.name!r} is not connected to the root '
            'in the hierarchy')
    for b in ready:
      order.append(b.name)
      placed.add(b.name)
    pending = [b for b in pending if b.name not in placed]
  return AsfSkeleton(path=path, length_scale=length_scale, degrees=degrees,
                     root_order=root['order'], root_axis=root['axis'],
                     root_position=root['position'], root_orientation=root['orientation'],
                     bones=bones, order=tuple(order))


def read_amc(path, asf):
  """Parses an AMC motion file for an ASF skeleton.

  Returns (root values [F, len(root order)], {bone: values [F, len(dof)]}, degrees).
  Every frame must hold the root and every bone with dofs.
  """
  lines = _read_lines(path)
  degrees = asf.degrees
  needed = {name: len(b.dof) for name, b in asf.bones.items() if b.dof}
  needed['root'] = len(asf.root_order)
  frames, frame, frame_line, last_number = [], None, 0, None

  def close(line_no):
    missing = [n for n in needed if n not in frame]
    if missing:
      _fail(path, line_no, f'frame {last_number} (line {frame_line}) is missing '
            f'{", ".join(repr(m) for m in missing[:4])}'
            f'{" ..." if len(missing) > 4 else ""}: expected every bone with a dof '
            '(file truncated?)')
    frames.append(frame)

  for line_no, raw in enumerate(lines, 1):
    text = raw.split('#', 1)[0].strip()
    if not text:
      continue
    if text.startswith(':'):
      key = text[1:].split()[0].upper() if len(text) > 1 else ''
      if key == 'DEGREES':
        degrees = True
      elif key == 'RADIANS':
        degrees = False
      continue
    tokens = text.split()
    if len(tokens) == 1 and re.fullmatch(r'\d+', tokens[0]):
      if frame is not None:
        close(line_no)
      number = int(tokens[0])
      if last_number is not None and number != last_number + 1:
        _fail(path, line_no, f'expected frame {last_number + 1}, got frame {number}')
      frame, frame_line, last_number = {}, line_no, number
      continue
    if frame is None:
      _fail(path, line_no, f'expected a frame number before {tokens[0]!r}')
    name = tokens[0]
    if name not in needed:
      _fail(path, line_no, f'unknown bone {name!r} (or a bone with no dof) in frame '
            f'{last_number}')
    if len(tokens) - 1 != needed[name]:
      _fail(path, line_no, f'bone {name!r}: expected {needed[name]} values, got '
            f'{len(tokens) - 1}')
    frame[name] = _numbers(path, line_no, tokens[1:], f'values of bone {name!r}')
  if frame is None:
    _fail(path, len(lines), 'expected at least one frame (a frame number, then values)')
  close(len(lines))
  values = {n: np.array([f[n] for f in frames], np.float64) for n in needed}
  root = values.pop('root')
  return root, values, degrees


def asf_amc_clip(asf, amc_path, unit_mm=None, frame_rate=CMU_FRAME_RATE, source_up='y'):
  """Forward kinematics of an AMC motion on an ASF skeleton: a Clip."""
  if not isinstance(asf, AsfSkeleton):
    asf = read_asf(asf)
  root_values, bone_values, amc_degrees = read_amc(amc_path, asf)
  if unit_mm is None:
    unit_mm = INCH_MM / asf.length_scale
  asf_angle = np.pi / 180.0 if asf.degrees else 1.0
  amc_angle = np.pi / 180.0 if amc_degrees else 1.0
  num_frames = root_values.shape[0]

  order = asf.root_order
  translation = np.zeros((num_frames, 3))
  rot_axes, rot_index = [], []
  for i, token in enumerate(order):
    if token[0] == 't':
      translation[:, 'xyz'.index(token[1])] = root_values[:, i]
    else:
      rot_axes.append(token[1])
      rot_index.append(i)
  c_root = acclaim_rotations(asf.root_axis.lower(), asf.root_orientation * asf_angle)
  m_root = acclaim_rotations(''.join(rot_axes), root_values[:, rot_index] * amc_angle)
  rotations = {'root': c_root @ m_root @ c_root.T}
  positions = {'root': asf.root_position + translation}

  for name in asf.order:
    bone = asf.bones[name]
    c = acclaim_rotations(bone.axis_order.lower(), bone.axis_angles * asf_angle)
    if bone.dof:
      m = acclaim_rotations(''.join(t[1] for t in bone.dof), bone_values[name] * amc_angle)
      world = rotations[bone.parent] @ (c @ m @ c.T)
    else:
      world = np.broadcast_to(rotations[bone.parent], (num_frames, 3, 3))
    rotations[name] = world
    positions[name] = positions[bone.parent] + world @ (bone.length * bone.direction)
  names = ('root',) + asf.order
  parents = (-1,) + tuple(names.index(asf.bones[n].parent) for n in asf.order)
  stacked = np.stack([positions[n] for n in names], axis=1) * unit_mm
  stacked = stacked @ _source_to_world(source_up).T
  return Clip(joint_names=names, parents=parents, positions=stacked,
              frame_rate=float(frame_rate), source=str(amc_path))


# ---------------------------------------------------------------------------------------
# BVH.

_BVH_CHANNELS = ('xposition', 'yposition', 'zposition', 'xrotation', 'yrotation',
                 'zrotation')


def _bvh_tokens(lines, start, stop):
  for line_no in range(start, stop):
    for token in lines[line_no].split():
      yield token, line_no + 1


def read_bvh(path, unit_mm=CMU_UNIT_MM, source_up='y'):
  """Reads a BVH file and runs forward kinematics: a Clip.

  Any hierarchy, any channel list per joint (position and rotation channels in any
  order), End Sites; `unit_mm` is the length of one file unit in millimetres (default
  the CMU unit, right for the cgspeed CMU release).
  """
  lines = _read_lines(path)
  motion_line = None
  for i, raw in enumerate(lines):
    if raw.strip().upper() == 'MOTION':
      motion_line = i
      break
  if motion_line is None:
    _fail(path, len(lines), 'expected a MOTION section (file truncated?)')
  tokens = list(_bvh_tokens(lines, 0, motion_line))
  pos = 0

  def take(what, literal=False):
    nonlocal pos
    if pos >= len(tokens):
      _fail(path, motion_line + 1, f'expected {what}, found MOTION (hierarchy '
            'truncated?)')
    token, line_no = tokens[pos]
    pos += 1
    if literal and token.upper() != what.upper():
      _fail(path, line_no, f'expected {what!r}, got {token!r}')
    return token, line_no

  def take_numbers(count, what):
    values = []
    for _ in range(count):
      token, line_no = take(what)
      values.append(_numbers(path, line_no, [token], what)[0])
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
      _fail(path, line_no, f'expected a channel count, got {count_token!r}')
    joint_channels = []
    for _ in range(int(count_token)):
      token, line_no = take('a channel name')
      if token.lower() not in _BVH_CHANNELS:
        _fail(path, line_no, f'expected a channel name (Xposition ... Zrotation), '
              f'got {token!r}')
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
          _fail(path, line_no, f'joint name {child!r} used twice')
        joint(index, child)
      elif key == 'END':
        take('Site', literal=True)
        end_name = f'{name}_end'
        names.append(end_name)
        parents.append(index)
        channels.append(())
        take('{', literal=True)
        take('OFFSET', literal=True)
        offsets.append(take_numbers(3, 'three End Site OFFSET numbers'))
        take('}', literal=True)
      else:
        _fail(path, line_no, f'expected JOINT, End Site or }}, got {token!r}')

  take('HIERARCHY', literal=True)
  take('ROOT', literal=True)
  root_name, _ = take('a root name')
  joint(-1, root_name)
  if pos != len(tokens):
    token, line_no = tokens[pos]
    _fail(path, line_no, f'expected MOTION after the root joint, got {token!r}')

  # MOTION: "Frames: N", "Frame Time: t", then N lines of values.
  header = [(i, lines[i].strip()) for i in range(motion_line + 1, len(lines))
            if lines[i].strip()]
  if len(header) < 2:
    _fail(path, len(lines), 'expected "Frames:" and "Frame Time:" after MOTION')
  (i_frames, text_frames), (i_time, text_time) = header[0], header[1]
  match = re.fullmatch(r'Frames:\s*(\d+)', text_frames, re.IGNORECASE)
  if not match:
    _fail(path, i_frames + 1, f'expected "Frames: <count>", got {text_frames!r}')
  num_frames = int(match.group(1))
  match = re.fullmatch(r'Frame\s+Time:\s*(\S+)', text_time, re.IGNORECASE)
  frame_time = None
  if match:
    try:
      frame_time = float(match.group(1))
    except ValueError:
      pass
  if frame_time is None or frame_time <= 0:
    _fail(path, i_time + 1, f'expected "Frame Time: <seconds > 0>", got {text_time!r}')
  num_channels = sum(len(c) for c in channels)
  data = np.zeros((num_frames, num_channels))
  rows = header[2:]
  for f in range(num_frames):
    if f >= len(rows):
      _fail(path, len(lines), f'expected {num_frames} frames (Frames: line {i_frames + 1}), '
            f'found {f}: file truncated')
    line_no, text = rows[f][0] + 1, rows[f][1]
    values = text.split()
    if len(values) != num_channels:
      _fail(path, line_no, f'frame {f + 1}: expected {num_channels} values, got '
            f'{len(values)}')
    data[f] = _numbers(path, line_no, values, f'{num_channels} channel values')
  if len(rows) > num_frames:
    _fail(path, rows[num_frames][0] + 1, f'expected {num_frames} frames (Frames: line '
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
    local = chain_rotations(rot_axes, data[:, rot_columns] * deg)
    p = parents[j]
    if p < 0:
      world_rot.append(local)
      world_pos.append(translation)
    else:
      world_rot.append(world_rot[p] @ local)
      world_pos.append(world_pos[p] + (world_rot[p] @ translation[..., None])[..., 0])
  positions = np.stack(world_pos, axis=1) * unit_mm
  positions = positions @ _source_to_world(source_up).T
  return Clip(joint_names=tuple(names), parents=tuple(parents), positions=positions,
              frame_rate=_rate(frame_time), source=str(path))


def _rate(frame_time):
  rate = 1.0 / frame_time
  return float(round(rate)) if abs(rate - round(rate)) < 1e-3 else float(rate)


# ---------------------------------------------------------------------------------------
# Files and folders.


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
  BVH_UNITS_MM declares for the skeleton's map, CMU's when no map fits); frame_rate: for
  AMC, which carries none (default CMU's 120 fps); BVH takes its Frame Time. A clip that
  a 17-joint map fits has its unit checked (`check_units`).
  """
  ext = os.path.splitext(path)[1].lower()
  if ext == '.bvh':
    clip = read_bvh(path, 1.0 if unit_mm is None else unit_mm, source_up)
  elif ext == '.amc':
    asf_path = asf_for_amc(path)
    if asf_path is None:
      raise MocapError(f'{path}: no ASF skeleton of its subject beside it (expected '
                       f'{os.path.basename(path).split("_")[0]}.asf)')
    clip = asf_amc_clip(asf_path, path, unit_mm, frame_rate or CMU_FRAME_RATE, source_up)
  else:
    raise MocapError(f'{path}: not a motion file (expected .bvh or .amc)')
  try:
    key = find_joint_map(clip.joint_names, clip_format(clip))
  except MocapError:
    key = None   # to_h36m says so; the clip itself is still readable
  if ext == '.bvh' and unit_mm is None:
    clip.positions *= BVH_UNITS_MM.get(key, CMU_UNIT_MM)
  if key is not None:
    check_units(clip, to_h36m(clip, key))
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


# ---------------------------------------------------------------------------------------
# The 17-joint mapping.

# CMU ASF/AMC (joint = END of the named bone):
#   Hip (pelvis) = midpoint of the hips, as in Human3.6M; CMU's root lies about 100 mm
#     above it, so the root is not used.
#   RHip / LHip = rhipjoint / lhipjoint ends (the femur starts).
#   RKnee / LKnee = rfemur / lfemur ends; RAnkle / LAnkle = rtibia / ltibia ends.
#   Spine = lowerback end (about 215 mm above the pelvis; Human3.6M: 234 mm).
#   Thorax = thorax end: the base of the neck, where the clavicles start.
#   Neck (Neck/Nose) = upperneck end: the base of the skull, near the height of the nose.
#   Head = head end (the top of the head).
#   LShoulder / RShoulder = lclavicle / rclavicle ends (the humerus starts).
#   LElbow / RElbow = lhumerus / rhumerus ends; LWrist / RWrist = lradius / rradius ends.
CMU_ASF_MAP = {
    'Hip': ('lhipjoint', 'rhipjoint'),
    'RHip': ('rhipjoint',), 'RKnee': ('rfemur',), 'RAnkle': ('rtibia',),
    'LHip': ('lhipjoint',), 'LKnee': ('lfemur',), 'LAnkle': ('ltibia',),
    'Spine': ('lowerback',), 'Thorax': ('thorax',), 'Neck': ('upperneck',),
    'Head': ('head',),
    'LShoulder': ('lclavicle',), 'LElbow': ('lhumerus',), 'LWrist': ('lradius',),
    'RShoulder': ('rclavicle',), 'RElbow': ('rhumerus',), 'RWrist': ('rradius',),
}

# The cgspeed CMU BVH release (joint = origin of the named joint):
#   Hip = midpoint of LeftHip and RightHip (the femur starts; Hips is CMU's root).
#   RHip / RKnee / RAnkle = RightHip / RightKnee / RightAnkle, and likewise on the left.
#   Spine = Chest (the lowerback end).
#   Thorax = Chest2 (the upperback end). The release drops CMU's thorax bone (about
#     116 mm), so this sits at the base of the neck but about 117 mm lower than in the
#     ASF/AMC originals, and the spine-thorax bone is short by that much.
#   Neck = Head (the upperneck end); Head = Head_end (the End Site above it).
#   LShoulder / LElbow / LWrist = LeftShoulder / LeftElbow / LeftWrist (clavicle,
#     humerus and radius ends), and likewise on the right.
CGSPEED_BVH_MAP = {
    'Hip': ('LeftHip', 'RightHip'),
    'RHip': ('RightHip',), 'RKnee': ('RightKnee',), 'RAnkle': ('RightAnkle',),
    'LHip': ('LeftHip',), 'LKnee': ('LeftKnee',), 'LAnkle': ('LeftAnkle',),
    'Spine': ('Chest',), 'Thorax': ('Chest2',), 'Neck': ('Head',), 'Head': ('Head_end',),
    'LShoulder': ('LeftShoulder',), 'LElbow': ('LeftElbow',), 'LWrist': ('LeftWrist',),
    'RShoulder': ('RightShoulder',), 'RElbow': ('RightElbow',), 'RWrist': ('RightWrist',),
}

# The cgspeed "MotionBuilder-friendly" CMU BVH release (joint = origin of the named
# joint; CMU's length unit):
#   Hip = midpoint of LeftUpLeg and RightUpLeg (the femur starts; Hips is CMU's root).
#   RHip / RKnee / RAnkle = RightUpLeg / RightLeg / RightFoot, and likewise on the left.
#   Spine = Spine (the lowerback end). Thorax = Spine1 (the upperback end): this release
#     too drops CMU's thorax bone, so Thorax sits about 117 mm low, as in CGSPEED_BVH_MAP.
#   Neck = Head (the upperneck end); Head = Head_end.
#   LShoulder / LElbow / LWrist = LeftArm / LeftForeArm / LeftHand, likewise on the right.
CGSPEED_MB_BVH_MAP = {
    'Hip': ('LeftUpLeg', 'RightUpLeg'),
    'RHip': ('RightUpLeg',), 'RKnee': ('RightLeg',), 'RAnkle': ('RightFoot',),
    'LHip': ('LeftUpLeg',), 'LKnee': ('LeftLeg',), 'LAnkle': ('LeftFoot',),
    'Spine': ('Spine',), 'Thorax': ('Spine1',), 'Neck': ('Head',), 'Head': ('Head_end',),
    'LShoulder': ('LeftArm',), 'LElbow': ('LeftForeArm',), 'LWrist': ('LeftHand',),
    'RShoulder': ('RightArm',), 'RElbow': ('RightForeArm',), 'RWrist': ('RightHand',),
}

# The cgspeed "Daz-friendly" CMU BVH release (joint = origin of the named joint; lengths
# in centimetres, not CMU units):
#   Hip = midpoint of lThigh and rThigh (the femur starts; the root 'hip' lies about
#     26 mm below them).
#   RHip / RKnee / RAnkle = rThigh / rShin / rFoot, and likewise on the left.
#   Spine = abdomen (the lowerback end, about 180 mm above the hips).
#   Thorax = neck (the base of the neck, on the spine's axis; the collars start about
#     30 mm lower and 30 mm further back).
#   Neck = head (the base of the skull).
#   Head = midpoint of leftEye and rightEye: the release has no joint at the top of the
#     head, so this head bone ends about 80 mm above and 80 mm in front of the base of
#     the skull, leaning forward by about 45 degrees where Human3.6M's points up.
#   LShoulder / LElbow / LWrist = lShldr / lForeArm / lHand, likewise on the right.
DAZ_BVH_MAP = {
    'Hip': ('lThigh', 'rThigh'),
    'RHip': ('rThigh',), 'RKnee': ('rShin',), 'RAnkle': ('rFoot',),
    'LHip': ('lThigh',), 'LKnee': ('lShin',), 'LAnkle': ('lFoot',),
    'Spine': ('abdomen',), 'Thorax': ('neck',), 'Neck': ('head',),
    'Head': ('leftEye', 'rightEye'),
    'LShoulder': ('lShldr',), 'LElbow': ('lForeArm',), 'LWrist': ('lHand',),
    'RShoulder': ('rShldr',), 'RElbow': ('rForeArm',), 'RWrist': ('rHand',),
}

# CMU's ASF bone names written as BVH joints (the clips 16_01 and 16_02 of the Daz
# folder, 30 fps; joint = origin of the named joint, that is the END of the bone before
# it; CMU units):
#   Hip = midpoint of lfemur and rfemur (the femur starts). RHip / RKnee / RAnkle =
#     rfemur / rtibia / rfoot, likewise on the left.
#   Spine = upperback (the lowerback end). Thorax = lowerneck, which sits on the
#     upperback end: this release too drops the thorax bone (lowerneck's OFFSET is 0),
#     so Thorax is about 117 mm low, as in CGSPEED_BVH_MAP.
#   Neck = head (the upperneck end); Head = head_end.
#   LShoulder / LElbow / LWrist = lhumerus / lradius / lwrist, likewise on the right.
CMU_BVH_MAP = {
    'Hip': ('lfemur', 'rfemur'),
    'RHip': ('rfemur',), 'RKnee': ('rtibia',), 'RAnkle': ('rfoot',),
    'LHip': ('lfemur',), 'LKnee': ('ltibia',), 'LAnkle': ('lfoot',),
    'Spine': ('upperback',), 'Thorax': ('lowerneck',), 'Neck': ('head',),
    'Head': ('head_end',),
    'LShoulder': ('lhumerus',), 'LElbow': ('lradius',), 'LWrist': ('lwrist',),
    'RShoulder': ('rhumerus',), 'RElbow': ('rradius',), 'RWrist': ('rwrist',),
}

JOINT_MAPS = {'cmu_asf': CMU_ASF_MAP, 'cgspeed_bvh': CGSPEED_BVH_MAP,
              'cgspeed_mb_bvh': CGSPEED_MB_BVH_MAP, 'daz_bvh': DAZ_BVH_MAP,
              'cmu_bvh': CMU_BVH_MAP}

# The file format each map is for: an ASF clip's joints are bone ENDS, a BVH clip's are
# joint ORIGINS, so the same names mean other points (CMU_ASF_MAP and CMU_BVH_MAP).
MAP_FORMATS = {'cmu_asf': 'asf', 'cgspeed_bvh': 'bvh', 'cgspeed_mb_bvh': 'bvh',
               'daz_bvh': 'bvh', 'cmu_bvh': 'bvh'}

# Millimetres per BVH file unit, declared per skeleton (BVH has no unit field; ASF says
# its own in the header). Checked on every loaded clip by FEMUR_RANGE_MM.
BVH_UNITS_MM = {'cgspeed_bvh': CMU_UNIT_MM, 'cgspeed_mb_bvh': CMU_UNIT_MM,
                'daz_bvh': 10.0, 'cmu_bvh': CMU_UNIT_MM}

# An adult femur (hip to knee) is 350 to 550 mm long: a mean outside this range means a
# wrong length unit.
FEMUR_RANGE_MM = (350.0, 550.0)


def clip_format(clip):
  """'asf' for a clip read from ASF/AMC, 'bvh' from BVH, None when the source says
  neither."""
  ext = os.path.splitext(clip.source)[1].lower()
  return {'.amc': 'asf', '.asf': 'asf', '.bvh': 'bvh'}.get(ext)


def find_joint_map(joint_names, fmt=None):
  """The name of the first map in JOINT_MAPS whose source joints a skeleton has (of the
  maps for `fmt`, 'asf' or 'bvh', when given)."""
  names = set(joint_names)
  for key, table in JOINT_MAPS.items():
    if fmt is not None and MAP_FORMATS[key] != fmt:
      continue
    if all(src in names for sources in table.values() for src in sources):
      return key
  raise MocapError('no 17-joint mapping fits this skeleton (joints: '
                   f'{", ".join(list(joint_names)[:8])} ...); known: {", ".join(JOINT_MAPS)}')


def check_units(clip, poses):
  """Raises MocapError when the mean femur of 17-joint `poses` [F, 17, 3] (mm) is outside
  FEMUR_RANGE_MM: the file's length unit is not the one assumed."""
  femurs = [i for i, bone in enumerate(skeleton.BONES) if bone in ((1, 2), (4, 5))]
  femur = bone_lengths(poses)[:, femurs].mean()
  low, high = FEMUR_RANGE_MM
  if not low <= femur <= high:
    raise MocapError(f'{clip.source}: the femur is {femur:.0f} mm long, outside '
                     f'{low:.0f} to {high:.0f} mm: the length unit is wrong; pass the '
                     'millimetres per file unit (unit_mm, --unit_mm)')


def to_h36m(clip, joint_map=None):
  """Human3.6M's 17 joints [F, 17, 3] (world frame, mm) of a clip.

  joint_map: a key of JOINT_MAPS, a table {h36m name: source joint names whose mean is
  taken}, or None to pick the map that fits the clip's joint names.
  """
  if joint_map is None:
    joint_map = find_joint_map(clip.joint_names, clip_format(clip))
  table = JOINT_MAPS[joint_map] if isinstance(joint_map, str) else joint_map
  out = np.zeros((clip.num_frames, skeleton.NUM_JOINTS, 3))
  for j, name in enumerate(skeleton.JOINT_NAMES):
    sources = table[name]
    missing = [s for s in sources if s not in clip.joint_names]
    if missing:
      raise MocapError(f'{clip.source}: joint map needs {missing[0]!r}, which the '
                       'skeleton lacks')
    out[:, j] = np.mean([clip.joint(s) for s in sources], axis=0)
  return out


def bone_lengths(poses):
  """Lengths of skeleton.BONES: [..., 17, 3] -> [..., 16] (in BONES order)."""
  poses = np.asarray(poses, np.float64)
  parents = [p for p, _ in skeleton.BONES]
  children = [c for _, c in skeleton.BONES]
  return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


def retarget(poses, lengths=None):
  """Gives every bone of 17-joint poses [..., 17, 3] the length lengths[child]
  (default skeleton.MEAN_BONE_LENGTHS_MM), keeping every bone's direction and the root
  position; the tree is walked from the root."""
  lengths = skeleton.MEAN_BONE_LENGTHS_MM if lengths is None else lengths
  poses = np.asarray(poses, np.float64)
  out = np.empty_like(poses)
  out[..., skeleton.ROOT, :] = poses[..., skeleton.ROOT, :]
  for child, parent in enumerate(skeleton.PARENTS):
    if parent < 0:
      continue
    vec = poses[..., child, :] - poses[..., parent, :]
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    if np.any(norm <= 0):
      raise ValueError(f'retarget: bone {skeleton.JOINT_NAMES[child]} has zero length.')
    out[..., child, :] = out[..., parent, :] + lengths[child] * vec / norm
  return out


def place_on_ground(pose, yaw=0.0, ankle_height_mm=None):
  """A 17-joint world pose [17, 3] (z up) turned by `yaw` radians about the vertical,
  its pelvis above the origin and its lower ankle `ankle_height_mm` above z = 0
  (default 80 mm times the thigh length over Human3.6M's mean, as in the synthetic
  poses)."""
  pose = np.asarray(pose, np.float64)
  if ankle_height_mm is None:
    thigh = 0.5 * (np.linalg.norm(pose[2] - pose[1]) + np.linalg.norm(pose[5] - pose[4]))
    ankle_height_mm = ANKLE_HEIGHT_MM * thigh / skeleton.MEAN_BONE_LENGTHS_MM[2]
  c, s = np.cos(yaw), np.sin(yaw)
  turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
  out = (pose - pose[skeleton.ROOT]) @ turn.T
  out[:, 2] += ankle_height_mm - min(out[3, 2], out[6, 2])
  return out


def world_to_camera(poses_world, camera):
  """Camera-frame poses [..., J, 3] (mm; x right, y down, z away from the camera, as in
  Human3.6M) of world poses through a camera dict (rotation, centre) such as
  `synthetic.sample_camera` returns."""
  return geometry.world_to_camera(poses_world, camera['rotation'], camera['centre'])


# ---------------------------------------------------------------------------------------
# Conversion of a folder: .npz per clip and lifting-only TFRecords.

MANIFEST = 'manifest.json'


def _stable_id(text):
  return zlib.crc32(text.encode('utf-8'))


def project_example(pose_world, rng, image_size=1000, crop_size=256, margin=0.2,
                    fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG):
  """A lifting-only example of a world pose [17, 3]: turned at random about the vertical,
  placed on the ground, seen through a camera from `synthetic.sample_camera` for a
  nominal image of `image_size` pixels. Returns dict(pose2d [17, 2] crop px, pose3d
  [17, 3] root-relative camera mm, fbi [14], crop_box [3], intrinsics [4])."""
  from fbi3d.data import synthetic   # pylint: disable=g-import-not-at-top
  world = place_on_ground(pose_world, rng.uniform(0.0, 2.0 * np.pi))
  for _ in range(50):
    camera = synthetic.sample_camera(rng, image_size)
    cam = world_to_camera(world, camera)
    if np.all(cam[:, 2] > 100.0):
      break
  else:
    raise ValueError('project_example: no camera sees every joint in front of it.')
  joints2d = geometry.project(cam, camera['intrinsics'])
  box = geometry.square_box(joints2d, margin)
  pose3d = geometry.root_relative(cam)
  return dict(pose2d=geometry.image_to_crop(joints2d, box, crop_size), pose3d=pose3d,
              fbi=fbi.fbi_labels(pose3d, fbi_threshold_deg), crop_box=box,
              intrinsics=np.asarray(camera['intrinsics'], np.float64))


def _write_json_atomic(path, obj):
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2)
    f.write('\n')
  os.replace(tmp, path)


def _stats(total, total_sq, count, dims):
  if not count:
    return None, None
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
  return mean.reshape(-1, dims).tolist(), std.reshape(-1, dims).tolist()


def _write_records(output_dir, items, settings, log):
  """Writes TFRecord shards and the manifest. items: (split, clip name, subject,
  frame numbers, poses [F, 17, 3])."""
  import tensorflow as tf   # pylint: disable=g-import-not-at-top
  from fbi3d.data import schema   # pylint: disable=g-import-not-at-top
  splits = {}
  for split in ('Train', 'Val'):
    chosen = [it for it in items if it[0] == split]
    total = sum(len(it[3]) for it in chosen)
    if not total:
      continue
    shard_size = settings['shard_size']
    num_shards = max(1, -(-total // shard_size))
    key = split.lower()
    shards = [f'{key}-{k:05d}-of-{num_shards:05d}.tfrecord' for k in range(num_shards)]
    sums = dict(p2=np.zeros(34), p2sq=np.zeros(34), p3=np.zeros(51), p3sq=np.zeros(51))
    fbi_counts = np.zeros((skeleton.NUM_FBI_BONES, fbi.NUM_CLASSES))
    written, shard_index, writer = 0, -1, None
    start = time.time()
    try:
      for _, name, subject, frames, poses in chosen:
        for frame, pose in zip(frames, poses):
          if written // shard_size != shard_index:
            if writer is not None:
              writer.close()
            shard_index = written // shard_size
            writer = tf.io.TFRecordWriter(os.path.join(output_dir, shards[shard_index]))
          rng = np.random.default_rng([settings['seed'], _stable_id(name), int(frame)])
          ex = project_example(pose, rng, settings['image_size'], settings['crop_size'],
                               settings['margin'], settings['fbi_threshold_deg'])
          writer.write(schema.serialize_example(
              image_jpeg=b'', image_size=0, pose2d=ex['pose2d'], pose3d=ex['pose3d'],
              fbi=ex['fbi'], action=skeleton.UNKNOWN_ACTION, subject=subject,
              source_id=f'{name}:{int(frame):06d}', split=split, crop_box=ex['crop_box'],
              intrinsics=ex['intrinsics']))
          p2 = ex['pose2d'].reshape(-1).astype(np.float32).astype(np.float64)
          p3 = ex['pose3d'].reshape(-1).astype(np.float32).astype(np.float64)
          sums['p2'] += p2
          sums['p2sq'] += p2 ** 2
          sums['p3'] += p3
          sums['p3sq'] += p3 ** 2
          fbi_counts[np.arange(skeleton.NUM_FBI_BONES), ex['fbi']] += 1
          written += 1
        log(f'{key}: {written}/{total} records ({time.time() - start:.1f} s)')
    finally:
      if writer is not None:
        writer.close()
    histogram = {a: 0 for a in skeleton.ACTIONS}
    histogram['unknown'] = written
    splits[key] = dict(
        shards=shards, num_examples=written, num_skipped=0, has_pose3d=True,
        crop_modes={'joints2d': written, 'box': 0, 'whole_image': 0},
        action_histogram=histogram, fbi_class_balance=(fbi_counts / written).tolist(),
        subjects=sorted({it[2] for it in chosen}), sums=sums)
  return splits


def convert_folder(input_dir, output_dir, *, every_nth=4, retarget_bones=False,
                   tfrecords=False, crop_size=256, image_size=1000, margin=0.2, seed=0,
                   val_subjects=(), shard_size=5000, unit_mm=None,
                   fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG, strict=False, log=print):
  """Converts every motion file under `input_dir` (see `find_motion_files`).

  Writes <output_dir>/<clip>.npz (poses [F, 17, 3] float32 world mm, z up; frame_rate;
  source; subject; joint_names; every_nth; retargeted) and, with `tfrecords`, shards of
  lifting-only examples (train, and val for `val_subjects`) plus manifest.json.
  A bad file is reported and skipped, or raises MocapError when `strict`.
  Returns a summary dict (clips, skipped, frames, manifest when written).
  """
  if every_nth < 1:
    raise ValueError(f'every_nth must be >= 1, got {every_nth}.')
  if crop_size < 1 or image_size < 16 or shard_size < 1:
    raise ValueError('crop_size, image_size and shard_size must be positive '
                     f'(got {crop_size}, {image_size}, {shard_size}).')
  if not os.path.isdir(input_dir):
    raise MocapError(f'{input_dir}: not a folder')
  files = find_motion_files(input_dir)
  if not files:
    raise MocapError(f'{input_dir}: no .bvh or .amc files found')
  os.makedirs(output_dir, exist_ok=True)
  val_subjects = {int(s) for s in val_subjects}
  clips, skipped, items, used = [], [], [], set()
  for i, path in enumerate(files, 1):
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem
    while name in used:
      name += '_'
    try:
      clip = load_clip(path, unit_mm=unit_mm)
      poses = to_h36m(clip)
    except (MocapError, OSError) as e:
      if strict:
        raise
      skipped.append(dict(path=path, reason=str(e)))
      log(f'[{i}/{len(files)}] skipped: {e}')
      continue
    used.add(name)
    frames = np.arange(0, clip.num_frames, every_nth)
    poses = poses[frames]
    if retarget_bones:
      poses = retarget(poses)
    subject = subject_of(path)
    rate = clip.frame_rate / every_nth
    np.savez(os.path.join(output_dir, name + '.npz'), poses=poses.astype(np.float32),
             frames=frames, frame_rate=rate, source=os.path.abspath(path), subject=subject,
             joint_names=np.array(skeleton.JOINT_NAMES), every_nth=every_nth,
             retargeted=bool(retarget_bones))
    clips.append(dict(name=name, source=os.path.abspath(path), subject=subject,
                      frames=int(len(frames)), frame_rate=rate))
    items.append(('Val' if subject in val_subjects else 'Train', name, subject, frames,
                  poses))
    log(f'[{i}/{len(files)}] {os.path.relpath(path, input_dir)}: {clip.num_frames} frames '
        f'at {clip.frame_rate:g} fps -> {len(frames)} poses')
  summary = dict(clips=clips, skipped=skipped, frames=sum(c['frames'] for c in clips))
  if not tfrecords:
    return summary
  if not items:
    raise MocapError(f'{input_dir}: no motion file could be read; no records written')
  settings = dict(seed=int(seed), image_size=int(image_size), crop_size=int(crop_size),
                  margin=float(margin), fbi_threshold_deg=float(fbi_threshold_deg),
                  shard_size=int(shard_size))
  splits = _write_records(output_dir, items, settings, log)
  notes = ['lifting-only records from motion capture: no images (image/size 0), action -1',
           f'2D from cameras like synthetic.sample_camera for a {image_size} px image']
  if 'train' not in splits:
    notes.append('no train split: normalisation statistics are empty')
  sums = splits.get('train', {}).get('sums')
  n = splits.get('train', {}).get('num_examples', 0)
  mean2d, std2d = _stats(sums['p2'], sums['p2sq'], n, 2) if sums else (None, None)
  mean3d, std3d = _stats(sums['p3'], sums['p3sq'], n, 3) if sums else (None, None)
  for split in splits.values():
    split.pop('sums')
  from fbi3d.data import schema   # pylint: disable=g-import-not-at-top
  manifest = dict(
      schema_version=schema.SCHEMA_VERSION, crop_size=int(crop_size), margin=float(margin),
      fbi_threshold_deg=float(fbi_threshold_deg), jpeg_quality=None,
      input_dir=os.path.abspath(input_dir), source='mocap', lifting_only=True,
      nominal_image_size=int(image_size), seed=int(seed), every_nth=int(every_nth),
      retargeted=bool(retarget_bones), clips=clips, notes=notes, splits=splits,
      skipped=skipped, skipped_by_reason={'bad_file': len(skipped)} if skipped else {},
      normalisation=dict(split='train', num_examples=n, num_pose2d=n, num_pose3d=n,
                         pose2d_mean=mean2d, pose2d_std=std2d, pose3d_mean=mean3d,
                         pose3d_std=std3d))
  _write_json_atomic(os.path.join(output_dir, MANIFEST), manifest)
  summary['manifest'] = manifest
  return summary

"""The ASF/AMC (Acclaim) reader: an ASF skeleton, an AMC motion on it, and their forward
kinematics into a `motion.Clip`.

An ASF's length unit is 25.4 / `length` mm (the header's `:units length`) unless a unit
is passed. A rotation order "XYZ" (root `axis`, a bone's `axis ... XYZ`, the `dof rx ry
rz` list) rotates about X first, then Y, then Z, about fixed axes: M = Rz Ry Rx. A bone's
`axis` angles give C, its local frame in the rest pose; a frame's dof values give M in
that local frame; the bone's world rotation is W = W_parent C M C^-1 and its end lies at
its start + W (length * direction). The root lies at the header `position` plus the AMC
translation; its rotation is C_root M_root C_root^-1, C_root from the header
`orientation` in the root `axis` order. Angles are degrees or radians as the ASF header
(`angle deg|rad`) and the AMC header (`:DEGREES` / `:RADIANS`) say.

A clip's joints are 'root' and then one joint per bone, named after the bone and placed
at the bone's END (so 'lfemur' is the left knee).
"""

import dataclasses
import re

import numpy as np

from fbi3d.data import motion

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
  """Parses an ASF skeleton file; raises motion.MocapError on malformed input."""
  lines = motion.read_lines(path)
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
        motion.fail(path, line_no, f'expected "end" of bone {current.get("name")!r} '
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
        if len(tokens) != 2:
          motion.fail(path, line_no, 'expected "length <positive number>"')
        length_scale = motion.numbers(path, line_no, tokens[1:2], 'a length unit')[0]
        if length_scale <= 0:
          motion.fail(path, line_no, 'expected "length <positive number>"')
      elif key == 'angle':
        if len(tokens) != 2 or tokens[1].lower() not in ('deg', 'rad'):
          motion.fail(path, line_no, 'expected "angle deg" or "angle rad"')
        degrees = tokens[1].lower() == 'deg'
    elif section == 'root':
      if key == 'order':
        order = tuple(t.lower() for t in tokens[1:])
        if (not order or any(t not in ('tx', 'ty', 'tz', 'rx', 'ry', 'rz') for t in order)
            or len(set(order)) != len(order)):
          motion.fail(path, line_no, 'expected "order" followed by TX TY TZ RX RY RZ tokens, '
                      'each once')
        root['order'] = order
      elif key == 'axis':
        if len(tokens) != 2 or sorted(tokens[1].upper()) != ['X', 'Y', 'Z']:
          motion.fail(path, line_no, 'expected "axis" and a rotation order such as XYZ')
        root['axis'] = tokens[1].upper()
      elif key in ('position', 'orientation'):
        if len(tokens) != 4:
          motion.fail(path, line_no, f'expected "{key}" and 3 numbers')
        root[key] = np.array(motion.numbers(path, line_no, tokens[1:], f'the root {key}'))
    elif section == 'bonedata':
      if key == 'begin':
        if current is not None:
          motion.fail(path, line_no, f'expected "end" of the bone begun on line '
                      f'{current["line_no"]}, got "begin"')
        current = dict(line_no=line_no, dof=(), axis=(np.zeros(3), 'XYZ'))
      elif key == 'end':
        if current is None:
          motion.fail(path, line_no, 'expected "begin" before "end"')
        for field in ('name', 'direction', 'length'):
          if field not in current:
            motion.fail(path, line_no, f'expected a "{field}" in the bone begun on line '
                        f'{current["line_no"]}')
        if current['name'] in bones or current['name'] == 'root':
          motion.fail(path, line_no, f'bone name {current["name"]!r} used twice')
        bones[current['name']] = _Bone(
            name=current['name'], direction=current['direction'], length=current['length'],
            axis_angles=current['axis'][0], axis_order=current['axis'][1],
            dof=current['dof'], line_no=current['line_no'])
        current = None
      elif current is None:
        motion.fail(path, line_no, f'expected "begin" of a bone, got {tokens[0]!r}')
      elif key == 'name':
        if len(tokens) != 2:
          motion.fail(path, line_no, 'expected "name <bone name>"')
        current['name'] = tokens[1]
      elif key == 'direction':
        values = motion.numbers(path, line_no, tokens[1:], 'a direction')
        norm = np.linalg.norm(values) if len(values) == 3 else 0.0
        if norm <= 0:
          motion.fail(path, line_no, 'expected "direction" and 3 numbers, not all zero')
        current['direction'] = np.array(values) / norm
      elif key == 'length':
        values = motion.numbers(path, line_no, tokens[1:], 'a length')
        if len(values) != 1 or values[0] < 0:
          motion.fail(path, line_no, 'expected "length" and one number >= 0')
        current['length'] = values[0]
      elif key == 'axis':
        if len(tokens) != 5 or sorted(tokens[4].upper()) != ['X', 'Y', 'Z']:
          motion.fail(path, line_no, 'expected "axis", 3 angles and an order such as XYZ')
        current['axis'] = (np.array(motion.numbers(path, line_no, tokens[1:4], 'axis angles')),
                           tokens[4].upper())
      elif key == 'dof':
        dof = tuple(t.lower() for t in tokens[1:])
        bad = [t for t in dof if t not in ('rx', 'ry', 'rz')]
        if bad or not dof:
          motion.fail(path, line_no, f'expected "dof" followed by rx, ry, rz (translation and '
                      f'length dofs are not supported), got {" ".join(tokens[1:])!r}')
        current['dof'] = dof
    elif section == 'hierarchy':
      if key == 'begin':
        hierarchy_open = True
      elif key == 'end':
        hierarchy_closed = True
      elif not hierarchy_open or hierarchy_closed:
        motion.fail(path, line_no, f'expected "begin" or "end" of the hierarchy, got {tokens[0]!r}')
      else:
        hierarchy.append((line_no, tokens))
  if current is not None:
    motion.fail(path, len(lines), f'expected "end" of the bone begun on line {current["line_no"]}, '
                'found the end of the file')
  if root['order'] is None:
    motion.fail(path, len(lines), 'expected a :root section with an "order" line')
  if not hierarchy_closed:
    motion.fail(path, len(lines), 'expected a :hierarchy section closed by "end" (file truncated?)')
  for line_no, tokens in hierarchy:
    parent = tokens[0]
    if parent != 'root' and parent not in bones:
      motion.fail(path, line_no, f'hierarchy names an unknown bone {parent!r}')
    for child in tokens[1:]:
      if child not in bones:
        motion.fail(path, line_no, f'hierarchy names an unknown bone {child!r}')
      if bones[child].parent is not None:
        motion.fail(path, line_no, f'bone {child!r} has two parents')
      bones[child].parent = parent
  order, placed = [], {'root'}
  pending = [b for b in bones.values()]
  while pending:
    ready = [b for b in pending if b.parent in placed]
    if not ready:
      orphan = pending[0]
      motion.fail(path, orphan.line_no, f'bone {orphan.name!r} is not connected to the root '
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
  lines = motion.read_lines(path)
  degrees = asf.degrees
  needed = {name: len(b.dof) for name, b in asf.bones.items() if b.dof}
  needed['root'] = len(asf.root_order)
  frames, frame, frame_line, last_number = [], None, 0, None

  def close(line_no):
    missing = [n for n in needed if n not in frame]
    if missing:
      motion.fail(path, line_no, f'frame {last_number} (line {frame_line}) is missing '
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
        motion.fail(path, line_no, f'expected frame {last_number + 1}, got frame {number}')
      frame, frame_line, last_number = {}, line_no, number
      continue
    if frame is None:
      motion.fail(path, line_no, f'expected a frame number before {tokens[0]!r}')
    name = tokens[0]
    if name not in needed:
      motion.fail(path, line_no, f'unknown bone {name!r} (or a bone with no dof) in frame '
                  f'{last_number}')
    if len(tokens) - 1 != needed[name]:
      motion.fail(path, line_no, f'bone {name!r}: expected {needed[name]} values, got '
                  f'{len(tokens) - 1}')
    if name in frame:
      # A second line of one bone (or a lost frame number on the last frame) would
      # replace the first without a word.
      motion.fail(path, line_no, f'bone {name!r} given twice in frame {last_number}')
    frame[name] = motion.numbers(path, line_no, tokens[1:], f'values of bone {name!r}')
  if frame is None:
    motion.fail(path, len(lines), 'expected at least one frame (a frame number, then values)')
  close(len(lines))
  values = {n: np.array([f[n] for f in frames], np.float64) for n in needed}
  root = values.pop('root')
  return root, values, degrees


def asf_amc_clip(asf, amc_path, unit_mm=None, frame_rate=motion.CMU_FRAME_RATE, source_up='y'):
  """Forward kinematics of an AMC motion on an ASF skeleton: a motion.Clip."""
  if not isinstance(asf, AsfSkeleton):
    asf = read_asf(asf)
  root_values, bone_values, amc_degrees = read_amc(amc_path, asf)
  if unit_mm is None:
    unit_mm = motion.INCH_MM / asf.length_scale
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
  c_root = motion.acclaim_rotations(asf.root_axis.lower(), asf.root_orientation * asf_angle)
  m_root = motion.acclaim_rotations(''.join(rot_axes), root_values[:, rot_index] * amc_angle)
  rotations = {'root': c_root @ m_root @ c_root.T}
  positions = {'root': asf.root_position + translation}

  for name in asf.order:
    bone = asf.bones[name]
    c = motion.acclaim_rotations(bone.axis_order.lower(), bone.axis_angles * asf_angle)
    if bone.dof:
      m = motion.acclaim_rotations(''.join(t[1] for t in bone.dof), bone_values[name] * amc_angle)
      world = rotations[bone.parent] @ (c @ m @ c.T)
    else:
      world = np.broadcast_to(rotations[bone.parent], (num_frames, 3, 3))
    rotations[name] = world
    positions[name] = positions[bone.parent] + world @ (bone.length * bone.direction)
  names = ('root',) + asf.order
  parents = (-1,) + tuple(names.index(asf.bones[n].parent) for n in asf.order)
  stacked = np.stack([positions[n] for n in names], axis=1) * unit_mm
  stacked = stacked @ motion.source_to_world(source_up).T
  return motion.Clip(joint_names=names, parents=parents, positions=stacked,
                     frame_rate=float(frame_rate), source=str(amc_path))

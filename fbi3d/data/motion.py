"""Motion capture clips: the `Clip` every reader returns, the error the readers raise,
and the rotations and text helpers the ASF/AMC and BVH readers share.

A clip holds every joint of the source skeleton at every frame, in a world frame of
millimetres with z UP (x and y horizontal), the frame of the synthetic body
(`fbi3d.data.body`). The CMU files are y up; their points are turned into the world by
(x, y, z) -> (x, -z, y), a rotation of +90 degrees about x (no mirroring, so left stays
left).

Units. CMU's ASF header says `:units length 0.45`: a length unit is 1/0.45 inch, that is
25.4 / 0.45 = 56.444 mm.
"""

import dataclasses
import math

import numpy as np

CMU_UNIT_MM = 25.4 / 0.45     # one CMU length unit: 1/0.45 inch = 56.444 mm
CMU_FRAME_RATE = 120.0        # AMC files carry no frame rate; CMU captured at 120 fps
INCH_MM = 25.4

# Source (y up) -> world (z up): (x, y, z) -> (x, -z, y).
Y_UP_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


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


def source_to_world(source_up):
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


def fail(path, line_no, message):
  where = f'{path}:{line_no}' if line_no else f'{path}'
  raise MocapError(f'{where}: {message}')


def numbers(path, line_no, tokens, what):
  """The tokens as floats; MocapError naming the file and line when one is not a number
  or not finite (NaN or infinity)."""
  try:
    values = [float(t) for t in tokens]
  except ValueError:
    fail(path, line_no, f'expected {what} (numbers), got {" ".join(tokens)!r}')
  bad = [t for t, v in zip(tokens, values) if not math.isfinite(v)]
  if bad:
    fail(path, line_no, f'expected {what} (finite numbers), got {bad[0]!r}')
  return values


def read_lines(path):
  try:
    with open(path, 'r', encoding='utf-8', errors='replace') as f:
      return f.read().splitlines()
  except OSError as e:
    raise MocapError(f'{path}: cannot read: {e}') from e

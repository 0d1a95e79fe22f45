"""The pose-bank lifter's inputs and outputs (`fbi3d.lifter`): detector-like 2D noise,
missing joints, the crop the regressor reads and the frame it predicts in.

2D noise (`detector_noise`), in image pixels before the crop transform, so the box moves
with the noise as around a detector's joints:
  - Gaussian on every coordinate, its std drawn per example uniformly in [0, noise_max_px];
  - a left/right swap of each pair of skeleton.LEFT_RIGHT_PAIRS with probability
    swap_prob (a detector confusing the two wrists, knees, ...);
  - each joint missing with probability missing_prob;
  - with probability truncate_prob the picture's lower edge cuts the person: every joint
    below a line drawn uniformly between 30% and 80% of the way down from the topmost
    joint to the lowest one is missing (a portrait cut at the chest or the waist, a
    picture cut at the knees).
Missing joints (`fill_missing`): the regressor always reads 17 joints, so a missing joint
takes the 2D position of its nearest known ancestor (its parent when known, else the
grandparent, ...); a missing pelvis takes the midpoint of the two hips when both are
known, else the mean of the known joints. A missing limb end thus folds onto the joint
before it, a configuration the lifter learns to read as "unknown here" and which real
poses rarely show; `fbi3d.prediction` fills keypoints that a keypoint file or detector
lacks with the same rule before calling the exported `lift`.

Input: `crop_inputs_batch` (square box of the given 2D, margin 0.2, crop of 256 px), so
the `lift` signature of an export takes this lifter's input after a scaling to its own
crop size (`fbi3d.inference`).

Output frame (`frame`). A crop does not show where in the picture the person stood, and
root-relative camera-frame 3D turns with that place (a person off to one side is seen
obliquely). With frame='ray' (the default, chosen on val) the lifter predicts the pose in
its crop's ray-aligned frame (`geometry.ray_rotations` of the square box around the 2D
and the camera's intrinsics: the camera frame turned so the box centre is straight
ahead), which the crop alone determines; `to_camera_frame` turns a prediction back where
the intrinsics are known. frame='camera' predicts in the camera frame itself.
"""

import numpy as np

from fbi3d import geometry
from fbi3d import skeleton

CROP_SIZE = 256
MARGIN = 0.2
INPUT_DIM = skeleton.NUM_JOINTS * 2
MISSING_RULE = 'ancestor'


def _ancestor_order():
  """For every joint, its ancestors nearest first (the root's list is empty)."""
  out = []
  for j in range(skeleton.NUM_JOINTS):
    chain, p = [], skeleton.PARENTS[j]
    while p >= 0:
      chain.append(p)
      p = skeleton.PARENTS[p]
    out.append(chain)
  return out


ANCESTORS = _ancestor_order()


def fill_missing(joints2d, valid):
  """Joints [N, 17, 2] with each missing one (valid [N, 17] false) replaced by the rule of
  the module docstring: the nearest known ancestor; a missing pelvis by the mean of the
  known hips (both needed), else of all known joints. A pose with no known joint is
  refused (ValueError)."""
  joints = np.array(joints2d, np.float64)
  valid = np.asarray(valid, bool)
  single = joints.ndim == 2
  if single:
    joints, valid = joints[None], valid[None]
  if joints.shape[1:] != (skeleton.NUM_JOINTS, 2) or valid.shape != joints.shape[:2]:
    raise ValueError(f'fill_missing: expected joints [N, 17, 2] and valid [N, 17], got '
                     f'{joints.shape} and {valid.shape}.')
  if np.any(~valid.any(axis=1)):
    raise ValueError('fill_missing: a pose has no known joint.')
  root = skeleton.ROOT
  hips = valid[:, 1] & valid[:, 4]
  known_mean = (np.sum(np.where(valid[..., None], joints, 0.0), axis=1)
                / valid.sum(axis=1, keepdims=True))
  root_fill = np.where(hips[:, None], 0.5 * (joints[:, 1] + joints[:, 4]), known_mean)
  joints[:, root] = np.where(valid[:, root, None], joints[:, root], root_fill)
  filled = valid.copy()
  filled[:, root] = True
  # Parents come before children in skeleton order, so one pass sees every ancestor
  # already filled: copying the parent's (filled) position gives the nearest known one.
  for j in range(skeleton.NUM_JOINTS):
    if j == root:
      continue
    parent = skeleton.PARENTS[j]
    joints[:, j] = np.where(valid[:, j, None], joints[:, j], joints[:, parent])
  return joints[0] if single else joints


TRUNCATE_RANGE = (0.3, 0.8)


def truncation(joints2d, rng, truncate_prob):
  """valid [N, 17]: false for the joints that a lower picture edge cuts off, in a fraction
  truncate_prob of the poses (module docstring). Draws nothing when truncate_prob is 0."""
  joints = np.asarray(joints2d, np.float64)
  valid = np.ones(joints.shape[:2], bool)
  if truncate_prob <= 0:
    return valid
  n = len(joints)
  cut = rng.random(n) < truncate_prob
  u = rng.uniform(*TRUNCATE_RANGE, n)
  top, bottom = joints[..., 1].min(axis=1), joints[..., 1].max(axis=1)
  line = top + u * (bottom - top)
  valid[cut] = joints[cut, :, 1] <= line[cut, None]
  return valid


def detector_noise(joints2d, rng, noise_max_px, swap_prob, missing_prob, truncate_prob=0.0):
  """Detector-like noise on image joints [N, 17, 2] (module docstring); missing joints
  are filled by `fill_missing`. Returns the noisy joints [N, 17, 2]."""
  joints = np.array(joints2d, np.float64)
  n = len(joints)
  std = rng.uniform(0.0, noise_max_px, n) if noise_max_px > 0 else np.zeros(n)
  joints += rng.normal(size=joints.shape) * std[:, None, None]
  if swap_prob > 0:
    for left, right in skeleton.LEFT_RIGHT_PAIRS:
      swap = rng.random(n) < swap_prob
      joints[swap, left], joints[swap, right] = (joints[swap, right].copy(),
                                                 joints[swap, left].copy())
  valid = truncation(joints, rng, truncate_prob)
  if missing_prob > 0:
    valid &= rng.random((n, skeleton.NUM_JOINTS)) >= missing_prob
  if not valid.all():
    valid[~valid.any(axis=1), skeleton.ROOT] = True
    joints = fill_missing(joints, valid)
  return joints


def crop_boxes(joints2d, margin=MARGIN, min_size=16.0):
  """The square boxes [N, 3] (x0, y0, size; geometry.square_box, vectorised) around
  joints [N, 17, 2]."""
  joints = np.asarray(joints2d, np.float64)
  lo, hi = joints.min(axis=1), joints.max(axis=1)
  size = np.maximum(np.max(hi - lo, axis=-1) * (1.0 + 2.0 * margin), min_size)
  corner = (lo + hi) / 2.0 - size[:, None] / 2.0
  return np.concatenate([corner, size[:, None]], axis=-1)


def crop_inputs_batch(joints2d, crop_size=CROP_SIZE, margin=MARGIN, min_size=16.0):
  """Joints [N, 17, 2] image px -> [N, 34] float32 in the crop of side `crop_size` of
  each pose's square box (geometry.square_box, vectorised)."""
  joints = np.asarray(joints2d, np.float64)
  box = crop_boxes(joints, margin, min_size)
  crop = (joints - box[:, None, :2]) * (crop_size / box[:, 2])[:, None, None]
  return crop.reshape(len(joints), -1).astype(np.float32)


def frame_rotations(joints2d, intrinsics):
  """The ray-aligned frames [N, 3, 3] of the crops around image joints [N, 17, 2] seen
  with intrinsics [N, 4] (geometry.ray_rotations of crop_boxes)."""
  return geometry.ray_rotations(crop_boxes(joints2d), intrinsics)


def to_output_frame(pose3d, joints2d, intrinsics, frame):
  """Camera-frame poses [N, 17, 3] in the lifter's output `frame` for the crops around
  joints2d [N, 17, 2] (image pixels) seen with intrinsics [N, 4]."""
  if frame == 'camera':
    return np.asarray(pose3d, np.float64)
  return geometry.to_ray_frame(pose3d, frame_rotations(joints2d, intrinsics))


def to_camera_frame(pred, joints2d, intrinsics, frame):
  """A lifter's output [N, 17, 3] in its `frame` back in the camera frame."""
  if frame == 'camera':
    return np.asarray(pred, np.float64)
  return geometry.from_ray_frame(pred, frame_rotations(joints2d, intrinsics))

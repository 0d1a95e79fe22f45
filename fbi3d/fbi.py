"""FBI labels: for each of the 14 FBI bones, is it pointing forward, backward or
parallel to the image plane?

For a bone parent->child with camera-frame 3D joints, s = (z_child - z_parent) / |bone|
is the sine of the bone's angle out of the image plane. |s| < sin(threshold) is class 2
(parallel); otherwise s < 0 is class 0 (forward: the child is nearer the camera) and
s > 0 class 1 (backward).
"""

import numpy as np

from fbi3d import skeleton

FORWARD, BACKWARD, PARALLEL = 0, 1, 2
CLASS_NAMES = ('forward', 'backward', 'parallel')
NUM_CLASSES = 3

# Default threshold, in degrees out of the image plane, below which a bone is "parallel".
# Why 10: across the longest bone (a thigh, about 450 mm) 10 degrees is under 80 mm of
# depth and across a forearm under 45 mm, differences a person labelling a photo cannot
# see reliably; and for bone directions spread evenly over the sphere, s is uniform on
# [-1, 1], so about sin(10 deg) = 17% of bones are parallel: a minority class that is
# still large enough to learn.
DEFAULT_THRESHOLD_DEG = 10.0


def bone_vectors(pose3d, bones=skeleton.FBI_BONES):
  """child - parent for each bone: [..., J, 3] -> [..., B, 3] float64."""
  pose3d = np.asarray(pose3d, dtype=np.float64)
  parents = np.array([p for p, _ in bones])
  children = np.array([c for _, c in bones])
  return pose3d[..., children, :] - pose3d[..., parents, :]


def bone_sines(pose3d, bones=skeleton.FBI_BONES):
  """s = dz / |bone| for each bone: [..., J, 3] -> [..., B]."""
  vec = bone_vectors(pose3d, bones)
  length = np.linalg.norm(vec, axis=-1)
  if np.any(length <= 0):
    raise ValueError('bone_sines: a bone has zero length.')
  return vec[..., 2] / length


def fbi_labels(pose3d, threshold_deg=DEFAULT_THRESHOLD_DEG):
  """FBI classes of the 14 FBI bones: [..., 17, 3] -> int64 [..., 14]."""
  s = bone_sines(pose3d)
  limit = np.sin(np.deg2rad(threshold_deg))
  labels = np.where(s < 0, FORWARD, BACKWARD)
  return np.where(np.abs(s) < limit, PARALLEL, labels).astype(np.int64)


def flip_labels(labels):
  """FBI labels after a horizontal image flip: [..., 14] -> [..., 14]."""
  labels = np.asarray(labels)
  out = np.empty_like(labels)
  out[..., list(skeleton.FBI_FLIP_PERMUTATION)] = labels
  return out


def _labels(pred, target, what):
  """(predicted labels, true labels) of the same shape from labels or probabilities
  [..., 3]; ValueError naming `what` when the shapes differ."""
  pred = np.asarray(pred)
  target = np.asarray(target)
  if pred.ndim == target.ndim + 1:
    pred = np.argmax(pred, axis=-1)
  if pred.shape != target.shape:
    raise ValueError(f'{what}: shapes differ: {pred.shape} vs {target.shape}.')
  return pred, target


def fbi_accuracy(pred, target):
  """Accuracy of FBI predictions (labels [N, 14], or probabilities [N, 14, 3]).

  Returns (overall accuracy, per-bone accuracy array [14]).
  """
  pred, target = _labels(pred, target, 'fbi_accuracy')
  correct = (pred == target).reshape(-1, target.shape[-1])
  return float(correct.mean()), correct.mean(axis=0)


def class_balance(labels):
  """Fraction of each class per bone: int [N, 14] -> [14, 3]."""
  labels = np.asarray(labels).reshape(-1, skeleton.NUM_FBI_BONES)
  return np.stack([(labels == c).mean(axis=0) for c in range(NUM_CLASSES)], axis=-1)


def confusion(pred, target):
  """Counts [3, 3] of (true class, predicted class) over every bone of every example;
  pred: labels [N, 14] or probabilities [N, 14, 3]."""
  pred, target = _labels(pred, target, 'confusion')
  counts = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
  np.add.at(counts, (target.ravel(), pred.ravel()), 1)
  return counts


# Bins of a bone's angle out of the image plane (degrees) for `accuracy_by_angle`.
ANGLE_EDGES_DEG = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 90.0)


def accuracy_by_angle(pred, target, pose3d, edges=ANGLE_EDGES_DEG):
  """FBI accuracy by the bone's true angle out of the image plane: a list of dict(low,
  high, bones: the share of all bones in [low, high) degrees, the last bin closed,
  accuracy: None for an empty bin)."""
  pred, target = _labels(pred, target, 'accuracy_by_angle')
  correct = (pred == target).ravel()
  angle = np.degrees(np.arcsin(np.clip(np.abs(bone_sines(pose3d)), 0.0, 1.0))).ravel()
  if angle.shape != correct.shape:
    raise ValueError(f'accuracy_by_angle: {angle.size} bones in the poses, {correct.size} '
                     'in the labels.')
  rows = []
  for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
    last = i == len(edges) - 2
    inside = (angle >= low) & ((angle <= high) if last else (angle < high))
    rows.append(dict(low=float(low), high=float(high),
                     bones=float(inside.mean()) if inside.size else 0.0,
                     accuracy=float(correct[inside].mean()) if inside.any() else None))
  return rows


def accuracy_under_depth_noise(pose3d, sigma_mm, threshold_deg=DEFAULT_THRESHOLD_DEG):
  """How precisely depth must be known for a given FBI accuracy: the expected accuracy of
  the labels read from camera-frame poses [N, 17, 3] whose every joint's depth carries
  independent Gaussian noise of std `sigma_mm`, against their true labels.

  Exact, no sampling: a bone whose joints differ by dz in depth and by r across the image
  is labelled parallel when |dz| < tan(threshold) r (the same as |s| < sin(threshold)),
  forward below -tan(threshold) r and backward above it; with noise its depth difference
  is dz + N(0, 2 sigma^2), so each class has a normal probability. The mean over bones of
  the true class's probability is returned (noise shared by two bones of one joint moves
  no bone's own probability). sigma_mm 0 gives 1.
  """
  return _expected_accuracy(_depth_noise_terms(pose3d, threshold_deg), sigma_mm)


def _depth_noise_terms(pose3d, threshold_deg):
  """What accuracy_under_depth_noise reads of the poses, whatever the noise: each bone's
  true class, depth difference dz and parallel limit tan(threshold) r, all raveled."""
  vec = bone_vectors(pose3d)
  return (fbi_labels(pose3d, threshold_deg).ravel(), vec[..., 2].ravel(),
          np.tan(np.deg2rad(threshold_deg)) * np.linalg.norm(vec[..., :2], axis=-1).ravel())


def _expected_accuracy(terms, sigma_mm):
  """accuracy_under_depth_noise from _depth_noise_terms."""
  true, dz, limit = terms
  if sigma_mm <= 0:
    return 1.0
  scale = sigma_mm * np.sqrt(2.0)
  below = _normal_cdf((-limit - dz) / scale)          # P(noisy dz < -limit): forward
  above = 1.0 - _normal_cdf((limit - dz) / scale)     # P(noisy dz > limit): backward
  right = np.choose(true, [below, above, 1.0 - below - above])
  return float(right.mean())


def _normal_cdf(x):
  """The standard normal CDF, elementwise in float64 (TensorFlow's erf: vectorised, where
  math.erf would run in Python per element, minutes on a Human3.6M split)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return 0.5 * (1.0 + tf.math.erf(tf.constant(x / np.sqrt(2.0), tf.float64)).numpy())


def depth_equivalent_sigma(pred3d, pose3d, bones=skeleton.FBI_BONES):
  """The per-joint depth noise std that predicted depths carry where FBI reads them: the
  rms error of the bones' depth differences over sqrt 2 (a bone's difference of two
  joints with independent noise of std s has std s sqrt 2), mm. A shift of a whole pose
  in depth changes nothing."""
  error = bone_vectors(pred3d, bones)[..., 2] - bone_vectors(pose3d, bones)[..., 2]
  return float(np.sqrt(np.mean(error ** 2) / 2.0))


def sigma_for_accuracy(pose3d, accuracy, threshold_deg=DEFAULT_THRESHOLD_DEG, high=1000.0):
  """The per-joint depth noise std (mm) at which accuracy_under_depth_noise equals
  `accuracy`, by bisection (the accuracy falls as the noise grows); None when even `high`
  mm leaves the expected accuracy above it (noise alone never falls that low: a branch
  below it does worse than guessing from any depth)."""
  if accuracy >= 1.0:
    return 0.0
  terms = _depth_noise_terms(pose3d, threshold_deg)   # once, not at every step
  if _expected_accuracy(terms, high) > accuracy:
    return None
  low = 0.0
  for _ in range(30):
    mid = (low + high) / 2.0
    if _expected_accuracy(terms, mid) > accuracy:
      low = mid
    else:
      high = mid
  return (low + high) / 2.0

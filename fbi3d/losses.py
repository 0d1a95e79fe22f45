"""Losses of the phases, as TensorFlow functions on batches (float32).

- heatmap_mse: the 2D estimator's intermediate supervision, one term per stack.
- coarse3d_l1: the coarse-3D branch's L1 on normalised coordinates.
- fbi_cross_entropy: the FBI branch's cross-entropy over the 14 bones.
Each averages over the entries its weights mark as known, so missing labels never count.
- weighted_loss: the lifting regressor's weighted regression loss (below), from the
  per-example L2 losses of l0_per_example.
- joint_distance_per_example: the mean Euclidean distance of the joints in mm, per
  example, which the lifting regressor can train on instead ('joint').

The weighted regression loss:

    Loss = L0 + eps * L1,   L1 = (L0 + alpha)^2 * L0 * exp(L0 / (1 - alpha)),

averaged over the batch, with
  - L0 the per-example L2 loss: the mean of the squared differences between prediction
    and target over the J * 3 = 51 coordinates, in the regressor's NORMALISED target
    space (target minus the training mean, divided by the training std), as Martinez et
    al.'s L2 loss is;
  - 1 - alpha the mean of L0 over the training set, taken from the previous epoch (the
    running mean of the L0 values the train steps of that epoch computed); the first
    epoch, which has no previous mean, trains on L0 alone;
  - eps = 0.001.
Examples much harder than the average (L0 well above 1 - alpha) weigh exponentially
more. The formula is our reading of the paper: its typesetting of L1 is garbled in text
extraction, and this is the reading that keeps every term well defined.

exp() overflows float32 near 88 (and bfloat16 likewise), and an outlier example (a bad
label, a failed 2D detection) can have L0 hundreds of times the mean. The exponent
L0 / (1 - alpha) is therefore capped at `max_exponent`. The default, 5, keeps the
emphasis bounded: an example five or more times worse than average gets exp(5) = 148
times the exponential factor of an average one. Measured on the quickstart's cached
features (2000 training examples, dropout 0.5, per-example L0 heavy-tailed), a cap of 20
let single examples swamp the batch gradient and the regressor diverged (Base on
ground-truth 2D: 345 mm MPJPE against 86 mm with L2), while caps of 2 and 5 trained like
L2 (86 mm). The polynomial factor is not capped; it stays finite in float32 for L0 below
about 1e12 (normalised units, where L0 is O(1)). The Keras model that trains a regressor
with it, and keeps alpha across epochs, is `fbi3d.training.regression_model`.
"""

import tensorflow as tf

_EPS = 1e-6


def heatmap_mse(predicted, target, visible):
  """Sum over stacks of the mean squared error over the maps of known joints.

  predicted: list of [B, H, W, J]; target: [B, H, W, J]; visible: [B, J] weights.
  """
  weight = tf.cast(visible, tf.float32)[:, None, None, :]
  cells = tf.cast(tf.shape(target)[1] * tf.shape(target)[2], tf.float32)
  denom = tf.reduce_sum(weight) * cells + _EPS
  return tf.add_n([tf.reduce_sum(weight * tf.square(tf.cast(h, tf.float32) - target)) / denom
                   for h in predicted])


def integral2d_l1(predicted, target, weights, size):
  """Sum over stacks of the mean over known joints of |x - x*| + |y - y*|, in units of
  the crop side `size`.

  predicted: list of [B, J, 2] (crop pixels, e.g. hourglass.soft_argmax_2d of each
  stack); target: [B, J, 2]; weights: [B, J].
  """
  weights = tf.cast(weights, tf.float32)
  denom = tf.reduce_sum(weights) + _EPS
  return tf.add_n([tf.reduce_sum(weights * tf.reduce_sum(tf.abs(p - target), axis=-1))
                   / (denom * size) for p in predicted])


def coarse3d_l1(predicted, target, weights, scale):
  """Mean over known joints of sum_k |predicted_k - target_k| / scale_k.

  predicted, target: [B, J, 3] (x, y crop pixels, z mm); weights: [B, J];
  scale: [3], e.g. (crop size, crop size, depth range in mm).
  """
  scale = tf.cast(tf.convert_to_tensor(scale), tf.float32)
  l1 = tf.reduce_sum(tf.abs(predicted - target) / scale, axis=-1)
  return tf.reduce_sum(weights * l1) / (tf.reduce_sum(weights) + _EPS)


def fbi_cross_entropy(probabilities, labels, valid):
  """Mean cross-entropy over bones of examples with valid labels.

  probabilities: [B, 14, 3]; labels: int [B, 14]; valid: [B] weights.
  """
  probs = tf.clip_by_value(probabilities, 1e-7, 1.0)
  picked = tf.gather(probs, tf.cast(labels, tf.int32), axis=-1, batch_dims=2)
  ce = -tf.math.log(picked)
  valid = tf.cast(valid, tf.float32)[:, None]
  bones = tf.cast(tf.shape(ce)[-1], tf.float32)
  return tf.reduce_sum(ce * valid) / (tf.reduce_sum(valid) * bones + _EPS)


DEFAULT_EPS = 0.001
DEFAULT_MAX_EXPONENT = 5.0
LOSSES = ('weighted', 'l2', 'joint')
# The 'joint' loss is the mean joint distance in units of this many mm, so that it is
# O(1) like L0.
JOINT_LOSS_UNIT_MM = 100.0


def l0_per_example(pred, target):
  """Per-example L2 loss: mean over all non-batch axes of (pred - target)^2. -> [B]."""
  pred = tf.cast(pred, tf.float32)
  target = tf.cast(target, tf.float32)
  sq = tf.square(pred - target)
  batch = tf.shape(sq)[0]
  return tf.reduce_mean(tf.reshape(sq, [batch, -1]), axis=-1)


def joint_distance_per_example(pred, target):
  """Mean over joints of the Euclidean distance between pred and target [B, J * 3] or
  [B, J, 3] (any unit; the result is in it). -> [B].

  Unlike the squared error, its minimiser over an ambiguous depth is a median, not a
  mean: where a limb points forward in most of the poses that share a 2D, the loss keeps
  it forward instead of folding it toward the image plane.
  """
  pred = tf.cast(pred, tf.float32)
  target = tf.cast(target, tf.float32)
  batch = tf.shape(pred)[0]
  diff = tf.reshape(pred - target, [batch, -1, 3])
  # The small constant keeps the gradient finite where a joint is exactly right.
  return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1) + _EPS), axis=-1)


def weighted_loss(l0, mean_l0, eps=DEFAULT_EPS, max_exponent=DEFAULT_MAX_EXPONENT):
  """Batch mean of L0 + eps * L1 (module docstring) from per-example L0 [B].

  Args:
    l0: per-example L2 losses [B].
    mean_l0: 1 - alpha, the previous epoch's mean L0: a Python number, a scalar tensor
      or variable, or None. None or a value <= 0 is the first-epoch case, where the loss
      is mean(L0).
    eps: weight of L1.
    max_exponent: cap on the exponent L0 / (1 - alpha) (module docstring).

  Returns:
    Scalar float32.
  """
  l0 = tf.cast(l0, tf.float32)
  plain = tf.reduce_mean(l0)
  if mean_l0 is None:
    return plain
  mean_l0 = tf.cast(mean_l0, tf.float32)
  warm = mean_l0 > 0.0
  # A safe 1 - alpha in both branches, so the unused one is finite and so is its gradient.
  one_minus_alpha = tf.where(warm, mean_l0, 1.0)
  alpha = 1.0 - one_minus_alpha
  exponent = tf.minimum(l0 / one_minus_alpha, max_exponent)
  l1 = tf.square(l0 + alpha) * l0 * tf.exp(exponent)
  return tf.where(warm, tf.reduce_mean(l0 + eps * l1), plain)

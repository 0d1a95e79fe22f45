"""Losses of the phases, as TensorFlow functions on batches (float32).

- heatmap_mse: the 2D estimator's intermediate supervision, one term per stack.
- coarse3d_l1: the coarse-3D branch's L1 on normalised coordinates.
- fbi_cross_entropy: the FBI branch's cross-entropy over the 14 bones.
Each averages over the entries its weights mark as known, so missing labels never count.
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

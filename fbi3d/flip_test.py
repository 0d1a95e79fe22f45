"""Flip averaging at test time (--flip_test): the image models read each crop and its
mirror image, and every output is the mean of the two, the mirror's answer turned back.

A crop of side S mirrored left/right (columns reversed) puts crop pixel x at S - 1 - x
(pixel centres at integer coordinates, as everywhere in the pipeline). With
--flip_swaps_red_blue the mirror also swaps its red and blue channels, as the training
flip did (the synthetic renderer draws left limbs blue and right limbs red). What the
networks say about the mirror image is turned back per kind of output:
  points  [B, J, 2 or 3] crop pixels x, y (and z, mm): x to S - 1 - x, y and z kept, and
          every left joint exchanged with its right twin (skeleton.JOINT_FLIP_PERMUTATION);
  joints  [B, J] one value per joint (a confidence): left and right exchanged;
  bones   [B, 14, C] per FBI bone (class probabilities): each bone takes its mirror
          twin's answer (skeleton.FBI_FLIP_PERMUTATION); forward and backward stay, as
          a left/right mirror does not change which end is nearer the camera.
Both permutations swap pairs, so each is its own inverse.

The same rules mirror the regressors' inputs (`mirror_regressor_inputs`: the 2D joints
and coarse 3D as points, FBI as bones) and `mirror_pose3d` their 3D output (x to -x,
sides exchanged), for --regressor_mirror (training on both) and
--regressor_mirror_average (the mean of the answers for both, `mirror_averaged`). With
flip averaging the image models' outputs on a mirror image are exactly their outputs on
the crop, mirrored: averaged over a crop and its mirror, the answer for the mirror is the
same two answers in the other order.
"""

import numpy as np
import tensorflow as tf

from fbi3d import keys
from fbi3d import skeleton

POINTS, JOINTS, BONES = 'points', 'joints', 'bones'

# The kind of every output the image models give, by the name the code uses for it.
KINDS = {keys.POSE2D: POINTS, keys.COARSE3D: POINTS, 'pose2d_confidence': JOINTS,
         'fbi': BONES}


def flags_setting(cfg):
  """(flip averaging, red and blue swapped in the mirror image) as a Config's flags say;
  the swap only counts where there is a mirror image."""
  flip = bool(cfg.flip_test)
  return flip, bool(flip and cfg.flip_swaps_red_blue)


def cached_setting(made_from):
  """(flip averaging, red and blue swapped in the mirror image) as a features cache was
  made (its results.json's made_from); a cache made before flip averaging existed read
  every crop once."""
  flip = bool(made_from.get('flip_test', False))
  return flip, bool(flip and made_from.get('flip_swaps_red_blue', False))


def mirror_images(images, swap_red_blue):
  """Crops [B, S, S, 3] mirrored left/right, red and blue swapped when asked."""
  mirrored = tf.reverse(images, axis=[2])
  return tf.reverse(mirrored, axis=[3]) if swap_red_blue else mirrored


def unmirror(kind, values, size):
  """What the networks said about mirrored crops of side `size`, turned back to the
  crops themselves (see the module docstring for each kind)."""
  values = tf.convert_to_tensor(values)
  if kind == POINTS:
    values = tf.gather(values, skeleton.JOINT_FLIP_PERMUTATION, axis=1)
    x = tf.cast(size - 1, values.dtype) - values[..., :1]
    return tf.concat([x, values[..., 1:]], axis=-1)
  if kind == JOINTS:
    return tf.gather(values, skeleton.JOINT_FLIP_PERMUTATION, axis=1)
  if kind == BONES:
    return tf.gather(values, skeleton.FBI_FLIP_PERMUTATION, axis=1)
  raise ValueError(f'flip_test: unknown kind of output {kind!r}; known: {POINTS}, '
                   f'{JOINTS}, {BONES}.')


def average_halves(outputs, size):
  """Outputs of a batch [crops; their mirror images] (dict of [2B, ...]) -> the mean of
  each crop's answer and its mirror's, turned back ([B, ...]). Every key must be one of
  KINDS."""
  unknown = sorted(set(outputs) - set(KINDS))
  if unknown:
    raise ValueError(f'flip_test: no rule to turn back the output(s) {unknown} of a '
                     f'mirrored crop; known: {sorted(KINDS)}.')
  averaged = {}
  for name, values in outputs.items():
    values = tf.convert_to_tensor(values)
    half = tf.shape(values)[0] // 2
    plain, mirrored = values[:half], values[half:]
    averaged[name] = 0.5 * (plain + unmirror(KINDS[name], mirrored, size))
  return averaged


# What mirroring does to each part of the regressor's input (keys.INPUT_SIZES).
PART_KINDS = {keys.INPUT_2D: POINTS, keys.INPUT_GT2D: POINTS, keys.INPUT_COARSE3D: POINTS,
              keys.INPUT_FBI: BONES, keys.INPUT_GT_FBI: BONES}


def mirror_regressor_inputs(inputs, parts, size):
  """Regressor inputs [N, D] made of `parts` (keys.regressor_input's layout) for crops of
  side `size` -> the inputs of the crops' mirror images (a float32 tensor)."""
  inputs = tf.convert_to_tensor(inputs, tf.float32)
  widths = [keys.INPUT_SIZES[part] for part in parts]
  if sum(widths) != inputs.shape[-1]:
    raise ValueError(f'mirror_regressor_inputs: the parts {list(parts)} are {sum(widths)} '
                     f'wide, the inputs {inputs.shape[-1]}.')
  out = []
  for part, values in zip(parts, tf.split(inputs, widths, axis=-1)):
    rows = skeleton.NUM_FBI_BONES if PART_KINDS[part] == BONES else skeleton.NUM_JOINTS
    width = keys.INPUT_SIZES[part]
    values = tf.reshape(values, [-1, rows, width // rows])
    out.append(tf.reshape(unmirror(PART_KINDS[part], values, size), [-1, width]))
  return tf.concat(out, axis=-1)


def mirror_pose3d(pose):
  """3D poses [N, 17, 3] of the mirror image: x to -x, left and right joints exchanged
  (exact in a crop's ray-aligned frame, where the crop's centre lies straight ahead). A
  NumPy array in, one out; a tensor in, one out."""
  if isinstance(pose, np.ndarray):
    pose = pose[:, list(skeleton.JOINT_FLIP_PERMUTATION)]
    return pose * np.array([-1.0, 1.0, 1.0], pose.dtype)
  pose = tf.gather(pose, skeleton.JOINT_FLIP_PERMUTATION, axis=1)
  return pose * tf.constant([-1.0, 1.0, 1.0], pose.dtype)


def mirror_averaged(network, parts, size):
  """A function of regressor inputs [N, D] (made of `parts`, crops of side `size`): the
  mean of `network`'s 3D for the inputs and, mirrored back, for the inputs of the mirror
  images (--regressor_mirror_average)."""
  def averaged(inputs, training=False):
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    direct = network(inputs, training=training)
    mirrored = network(mirror_regressor_inputs(inputs, parts, size), training=training)
    return 0.5 * (direct + mirror_pose3d(mirrored))
  return averaged


def with_mirror(images, swap_red_blue):
  """One batch of the crops followed by their mirror images: [2B, S, S, 3]."""
  return tf.concat([images, mirror_images(images, swap_red_blue)], axis=0)

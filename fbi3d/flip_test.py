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
"""

import tensorflow as tf

from fbi3d import keys
from fbi3d import skeleton

POINTS, JOINTS, BONES = 'points', 'joints', 'bones'

# The kind of every output the image models give, by the name the code uses for it.
KINDS = {keys.POSE2D: POINTS, keys.COARSE3D: POINTS, 'pose2d_confidence': JOINTS,
         'fbi': BONES}


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


def with_mirror(images, swap_red_blue):
  """One batch of the crops followed by their mirror images: [2B, S, S, 3]."""
  return tf.concat([images, mirror_images(images, swap_red_blue)], axis=0)

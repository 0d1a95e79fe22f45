"""Augmentation of the pipeline's batches: one projective warp per crop that rotates,
scales, flips and resizes it (tensorflow-addons), applied alike to the 2D joints and,
for rotation and flip, to the 3D pose (a rotation about the camera's optical axis; a
flip mirrors x and swaps left and right joints and FBI bones); colour jitter; synthetic
occlusion with random-coloured rectangles; and the 2D Gaussian heatmap targets. Random
parameters come from stateless ops seeded by (seed, batch number), so a run is
repeatable. Batch keys: fbi3d/keys.py.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from fbi3d import addons
from fbi3d import keys
from fbi3d import skeleton


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Augmentation settings; the defaults are the training ones."""
  max_rotation_deg: float = 30.0   # uniform in [-max, max]
  max_scale: float = 0.25          # zoom uniform in [1 - max, 1 + max]
  flip_probability: float = 0.5
  brightness: float = 0.2          # additive, uniform in [-b, b]
  contrast: float = 0.3            # factor uniform in [1 - c, 1 + c]
  saturation: float = 0.3          # factor uniform in [1 - s, 1 + s]
  occlusion_probability: float = 0.3
  occlusion_size: tuple = (0.1, 0.3)  # rectangle side as a fraction of the crop
  # A flipped crop also swaps its red and blue channels: the synthetic renderer draws
  # left limbs blue and right limbs red, and a flip swaps the left and right labels.
  flip_swaps_red_blue: bool = True
  # Box jitter: the crop moves by up to this fraction of its side in x and in y (uniform),
  # so that the models meet people off the crop's centre, as in boxes found from
  # estimated 2D joints (the zoom above jitters the box size).
  max_shift: float = 0.0


def geometric_matrices(angle, scale, flip, in_size, out_size, shift=None):
  """Forward (input crop -> output crop) 3x3 matrices [B, 3, 3] for per-example
  rotation `angle` (radians), zoom `scale` and `flip` (0/1), about the crop centre,
  with a resize from in_size to out_size, then a move by `shift` [B, 2] output pixels
  (None: none). Pixel centres at integer coordinates."""
  ratio = tf.cast(out_size, tf.float32) / tf.cast(in_size, tf.float32)
  c_in = (tf.cast(in_size, tf.float32) - 1.0) / 2.0
  c_out = (tf.cast(out_size, tf.float32) - 1.0) / 2.0
  cos, sin = tf.cos(angle), tf.sin(angle)
  mirror = 1.0 - 2.0 * tf.cast(flip, tf.float32)
  k = scale * ratio
  # Linear part: F * k * R, R = [[cos, -sin], [sin, cos]], F = diag(mirror, 1).
  a = mirror * k * cos
  b = -mirror * k * sin
  c = k * sin
  d = k * cos
  tx = c_out - (a * c_in + b * c_in)
  ty = c_out - (c * c_in + d * c_in)
  if shift is not None:
    tx, ty = tx + shift[:, 0], ty + shift[:, 1]
  zeros, ones = tf.zeros_like(a), tf.ones_like(a)
  return tf.stack([tf.stack([a, b, tx], -1), tf.stack([c, d, ty], -1),
                   tf.stack([zeros, zeros, ones], -1)], axis=1)


def box_matrices(boxes, out_size):
  """Forward 3x3 matrices [B, 3, 3] that crop square boxes [B, 3] (x0, y0, size, input
  pixels) out of the input and resize them to out_size, pixel centres at integer
  coordinates: u' = (u - x0 + 0.5) * out_size / size - 0.5. The box (0, 0, S) is the
  plain resize of an S-pixel input."""
  boxes = tf.cast(boxes, tf.float32)
  k = tf.cast(out_size, tf.float32) / boxes[:, 2]
  tx = (0.5 - boxes[:, 0]) * k - 0.5
  ty = (0.5 - boxes[:, 1]) * k - 0.5
  zeros, ones = tf.zeros_like(k), tf.ones_like(k)
  return tf.stack([tf.stack([k, zeros, tx], -1), tf.stack([zeros, k, ty], -1),
                   tf.stack([zeros, zeros, ones], -1)], axis=1)


def boxed_crop_box(crop_box, boxes, in_size):
  """The crop box in image pixels (x0, y0, size, at crop size in_size) of square boxes
  [B, 3] taken out of converted crops whose own crop box is crop_box [B, 3], in the
  convention of box_matrices, so that resizing a point of the new crop to in_size and
  mapping it to the image (geometry.crop_to_image) lands where it did before."""
  unit = crop_box[:, 2] / float(in_size)                  # image pixels per input pixel
  size = boxes[:, 2] * unit
  offset = 0.5 * boxes[:, 2] / float(in_size) - 0.5
  return tf.stack([crop_box[:, 0] + unit * (boxes[:, 0] + offset),
                   crop_box[:, 1] + unit * (boxes[:, 1] + offset), size], axis=-1)


def apply_to_points(matrices, points):
  """Applies [B, 3, 3] affine matrices to points [B, J, 2]."""
  return tf.einsum('bij,bkj->bki', matrices[:, :2, :2], points) + matrices[:, None, :2, 2]


def flip_joints(pose, flip):
  """Swaps left and right joints where flip is 1: [B, J, D]."""
  swapped = tf.gather(pose, skeleton.JOINT_FLIP_PERMUTATION, axis=1)
  return tf.where(tf.cast(flip, tf.bool)[:, None, None], swapped, pose)


def flip_fbi(fbi, flip):
  """FBI labels after a flip: label of bone i moves to FBI_FLIP_PERMUTATION[i]."""
  inverse = np.argsort(skeleton.FBI_FLIP_PERMUTATION)
  swapped = tf.gather(fbi, inverse, axis=1)
  return tf.where(tf.cast(flip, tf.bool)[:, None], swapped, fbi)


def swap_red_blue(images, flip):
  """Images [B, H, W, 3] (RGB) with red and blue swapped where flip is 1."""
  return tf.where(tf.cast(flip, tf.bool)[:, None, None, None], images[..., ::-1], images)


def transform_pose3d(pose3d, angle, flip):
  """Rotates root-relative 3D about the optical axis by `angle` (the image-plane rotation)
  and mirrors x where flip is 1 (then swaps left and right)."""
  cos, sin = tf.cos(angle)[:, None], tf.sin(angle)[:, None]
  x, y, z = pose3d[..., 0], pose3d[..., 1], pose3d[..., 2]
  mirror = (1.0 - 2.0 * tf.cast(flip, tf.float32))[:, None]
  xr = mirror * (cos * x - sin * y)
  yr = sin * x + cos * y
  return flip_joints(tf.stack([xr, yr, z], axis=-1), flip)


def heatmaps(points, valid, size, stride, sigma):
  """Gaussian heatmaps [B, size, size, J] of 2D points [B, J, 2] in crop pixels.

  Heatmap cell (i, j) is centred on crop pixel (j * stride + (stride - 1) / 2, ...);
  sigma in heatmap cells; joints with valid 0 get an empty map.
  """
  u = (points - (stride - 1) / 2.0) / stride                     # [B, J, 2]
  grid = tf.range(size, dtype=tf.float32)
  gx = tf.exp(-tf.square(grid[None, None, :] - u[..., 0:1]) / (2.0 * sigma ** 2))
  gy = tf.exp(-tf.square(grid[None, None, :] - u[..., 1:2]) / (2.0 * sigma ** 2))
  maps = gy[:, :, :, None] * gx[:, :, None, :]                    # [B, J, H, W]
  maps = maps * valid[:, :, None, None]
  return tf.transpose(maps, [0, 2, 3, 1])


def augment_batch(batch, counter, *, aug, seed, in_size, out_size, stride, sigma,
                   augment):
  images = batch[keys.IMAGE]                                # uint8 until warped
  n = tf.shape(images)[0]
  seeds = tf.random.experimental.stateless_split(
      tf.stack([tf.cast(seed, tf.int64), counter]), num=8)

  def uniform(i, low, high):
    return tf.random.stateless_uniform([n], seeds[i], low, high)

  shift = None
  if augment:
    angle = uniform(0, -1.0, 1.0) * math.radians(aug.max_rotation_deg)
    scale = uniform(1, 1.0 - aug.max_scale, 1.0 + aug.max_scale)
    flip = tf.cast(uniform(2, 0.0, 1.0) < aug.flip_probability, tf.int32)
    if aug.max_shift > 0:
      shift = tf.random.stateless_uniform(
          [n, 2], tf.random.experimental.stateless_fold_in(seeds[1], 1),
          -aug.max_shift, aug.max_shift) * out_size
  else:
    angle = tf.zeros([n])
    scale = tf.ones([n])
    flip = tf.zeros([n], tf.int32)

  boxed = keys.BOX in batch
  if boxed:
    # Crop each example to its box first, then augment about the new crop's centre.
    matrices = tf.matmul(
        geometric_matrices(angle, scale, flip, out_size, out_size, shift),
        box_matrices(batch[keys.BOX], out_size))
  else:
    matrices = geometric_matrices(angle, scale, flip, in_size, out_size, shift)
  if augment or boxed or in_size != out_size:
    inverse = tf.linalg.inv(matrices)
    flat = tf.reshape(inverse, [-1, 9])[:, :8] / inverse[:, 2:3, 2]
    images = addons.projective_transform(images, flat, (out_size, out_size))
  images = tf.cast(images, tf.float32) * (1.0 / 255.0)
  if aug.flip_swaps_red_blue:
    images = swap_red_blue(images, flip)
  pose2d = flip_joints(apply_to_points(matrices, batch[keys.POSE2D]), flip)
  pose3d = transform_pose3d(batch[keys.POSE3D], angle, flip)
  fbi = flip_fbi(batch[keys.FBI], flip)

  if augment:
    # Saturation s, contrast c and brightness b in one pass: with g the grey image and m
    # the image mean, c * (g + s (x - g) - m) + m + b = c s x + c (1 - s) g + (1 - c) m + b
    # (the mean is unchanged by the saturation step).
    brightness = uniform(3, -aug.brightness, aug.brightness)[:, None, None, None]
    contrast = uniform(4, 1.0 - aug.contrast, 1.0 + aug.contrast)[:, None, None, None]
    saturation = uniform(5, 1.0 - aug.saturation, 1.0 + aug.saturation)[:, None, None, None]
    grey = tf.reduce_mean(images, axis=-1, keepdims=True)
    mean = tf.reduce_mean(grey, axis=[1, 2, 3], keepdims=True)
    images = (contrast * saturation * images + contrast * (1.0 - saturation) * grey
              + ((1.0 - contrast) * mean + brightness))
    if aug.occlusion_probability > 0:
      lo, hi = aug.occlusion_size
      side = tf.random.stateless_uniform([], seeds[6], lo, hi) * out_size
      side = 2 * tf.cast(side / 2.0, tf.int32)
      centre_seed, colour_seed, apply_seed = tf.unstack(
          tf.random.experimental.stateless_split(seeds[7], num=3))
      centres = tf.random.stateless_uniform([n, 2], centre_seed, 0, out_size, tf.int32)
      masks = addons.rectangle_masks(n, out_size, out_size, tf.stack([side, side]),
                                     centres)
      colour = tf.random.stateless_uniform([n, 1, 1, 3], colour_seed)
      apply = tf.random.stateless_uniform([n], apply_seed) < aug.occlusion_probability
      masks = tf.where(apply[:, None, None, None], masks, tf.ones_like(masks))
      images = images * masks + colour * (1.0 - masks)
    images = tf.clip_by_value(images, 0.0, 1.0)

  inside = tf.reduce_all((pose2d >= 0.0) & (pose2d <= out_size - 1.0), axis=-1)
  visible = tf.cast(inside, tf.float32) * batch[keys.POSE2D_VALID][:, None]
  out = dict(batch)
  if boxed:
    out[keys.CROP_BOX] = boxed_crop_box(batch[keys.CROP_BOX], out.pop(keys.BOX), in_size)
  out.update({keys.IMAGE: images, keys.POSE2D: pose2d, keys.POSE3D: pose3d, keys.FBI: fbi,
              keys.VISIBLE: visible,
              keys.HEATMAPS: heatmaps(pose2d, visible, out_size // stride, stride, sigma)})
  return out

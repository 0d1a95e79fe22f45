"""Every use of tensorflow-addons in the project, in one place.

tensorflow-addons works with TF 2.15 / Keras 2 and does not import under Keras 3; a move
to Keras 3 replaces the functions below (e.g. with keras.ops or tf.raw_ops) and nothing
else.
"""

import warnings

import tensorflow as tf

with warnings.catch_warnings():
  warnings.simplefilter('ignore')
  import tensorflow_addons as tfa


def projective_transform(images, transforms, output_size, fill_value=0.0):
  """Warps a batch of images [B, H, W, C] with per-image projective transforms.

  transforms: [B, 8] rows (a0, a1, a2, b0, b1, b2, c0, c1) mapping an OUTPUT pixel
  (x, y) to the INPUT point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
  k = c0 x + c1 y + 1, pixel centres at integer coordinates. Bilinear sampling; points
  outside the input take fill_value.
  """
  return tfa.image.transform(
      images, transforms, interpolation='bilinear', fill_mode='constant',
      output_shape=list(output_size), fill_value=fill_value)


def rectangle_masks(batch_size, height, width, mask_size, centres):
  """Float masks [B, H, W, 1]: 0 inside a rectangle of `mask_size` (h, w; even)
  centred at `centres` [B, 2] (row, col) of each image, 1 elsewhere."""
  ones = tf.ones([batch_size, height, width, 1], tf.float32)
  return tfa.image.cutout(ones, mask_size, offset=centres, constant_values=0.0)

"""The stacked hourglass (Newell et al., ECCV 2016): 2D joint heatmaps from a crop.

Building blocks, all Keras functional:
  - `residual`: the pre-activation bottleneck module, BN-ReLU-1x1(c/2)-BN-ReLU-3x3(c/2)-
    BN-ReLU-1x1(c), with a 1x1 projection on the skip path when the channels change;
  - `hourglass_module`: recursive to `depth`; at each level a residual on the skip path
    and max-pool, residual(s), nearest 2x up-sampling and an add on the other;
  - `stem`: 7x7 stride-2 conv, residual, max-pool, residuals, to 1/4 resolution;
  - `hourglass_trunk`: stem plus stacks, optionally with a heatmap head per stack that
    feeds back into the next stack (intermediate supervision). The generator's coarse-3D
    branch reuses it without heads.

Heatmaps are at stride 4: cell (i, j) is centred on crop pixel
(j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2), as in the data pipeline.
Every layer name starts with the `name` given to the builder, so two trunks never clash.
"""

import tensorflow as tf

from fbi3d import keys

layers = tf.keras.layers


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class NearestUpsample2x(layers.Layer):
  """Nearest-neighbour 2x up-sampling of [B, H, W, C] by `tf.repeat` on both axes.

  About twice as fast to train as `UpSampling2D` on a CPU, and it compiles with XLA.
  """

  def call(self, inputs):
    return tf.repeat(tf.repeat(inputs, 2, axis=1), 2, axis=2)

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape).as_list()
    for axis in (1, 2):
      if shape[axis] is not None:
        shape[axis] *= 2
    return tf.TensorShape(shape)


def _bn_relu(x, name):
  x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_bn')(x)
  return layers.ReLU(name=f'{name}_relu')(x)


def residual(x, channels, name):
  """Pre-activation bottleneck residual module with `channels` outputs."""
  mid = max(channels // 2, 1)
  y = _bn_relu(x, f'{name}_a')
  y = layers.Conv2D(mid, 1, use_bias=False, name=f'{name}_a_conv')(y)
  y = _bn_relu(y, f'{name}_b')
  y = layers.Conv2D(mid, 3, padding='same', use_bias=False, name=f'{name}_b_conv')(y)
  y = _bn_relu(y, f'{name}_c')
  y = layers.Conv2D(channels, 1, name=f'{name}_c_conv')(y)
  skip = x
  if x.shape[-1] != channels:
    skip = layers.Conv2D(channels, 1, name=f'{name}_skip')(x)
  return layers.Add(name=f'{name}_add')([skip, y])


def hourglass_module(x, depth, channels, name):
  """One hourglass of `depth` down-sampling levels; output has x's spatial size."""
  up = residual(x, channels, f'{name}_up')
  low = layers.MaxPool2D(2, name=f'{name}_pool')(x)
  low = residual(low, channels, f'{name}_low1')
  if depth > 1:
    low = hourglass_module(low, depth - 1, channels, f'{name}_d{depth - 1}')
  else:
    low = residual(low, channels, f'{name}_bottom')
  low = residual(low, channels, f'{name}_low3')
  low = NearestUpsample2x(name=f'{name}_upsample')(low)
  return layers.Add(name=f'{name}_merge')([up, low])


def stem(x, channels, name):
  """Image to 1/4 resolution with `channels` outputs (Newell's 64-128-128-256 at 256)."""
  quarter, half = max(channels // 4, 1), max(channels // 2, 1)
  x = layers.Conv2D(quarter, 7, strides=2, padding='same', name=f'{name}_conv')(x)
  x = _bn_relu(x, name)
  x = residual(x, half, f'{name}_res1')
  x = layers.MaxPool2D(2, name=f'{name}_pool')(x)
  x = residual(x, half, f'{name}_res2')
  return residual(x, channels, f'{name}_res3')


def check_input_size(input_size, depth):
  """Raises ValueError unless input_size is a multiple of the stride * 2**depth."""
  multiple = keys.HEATMAP_STRIDE * 2 ** depth
  if input_size <= 0 or input_size % multiple:
    raise ValueError(
        f'input size {input_size} must be a positive multiple of {keys.HEATMAP_STRIDE} * '
        f'2**depth = {multiple} (stride {keys.HEATMAP_STRIDE} of the stem times {depth} '
        'halvings inside each hourglass).')


def hourglass_trunk(image, *, num_stacks, channels, depth, name, head_channels=None):
  """Centring, stem and `num_stacks` hourglasses on an image tensor in [0, 1].

  Args:
    image: float image tensor [B, S, S, 3] in [0, 1] (a Keras tensor).
    num_stacks: number of hourglasses.
    channels: feature channels of every hourglass.
    depth: down-sampling levels inside each hourglass.
    name: prefix of every layer name.
    head_channels: when set, each stack ends in a 1x1 conv to this many float32
      channels (heatmaps), which feeds back into the next stack by a 1x1 conv.

  Returns:
    (features, heads): lists with one entry per stack; features [B, S/4, S/4, channels]
    in the compute dtype; heads [B, S/4, S/4, head_channels] float32, or [] without a head.
  """
  x = layers.Rescaling(2.0, offset=-1.0, name=f'{name}_centre')(image)
  x = stem(x, channels, f'{name}_stem')
  features, heads = [], []
  for s in range(num_stacks):
    p = f'{name}_s{s}'
    y = hourglass_module(x, depth, channels, f'{p}_hg')
    y = residual(y, channels, f'{p}_out')
    y = layers.Conv2D(channels, 1, use_bias=False, name=f'{p}_lin')(y)
    y = _bn_relu(y, f'{p}_lin')
    features.append(y)
    head = None
    if head_channels:
      head = layers.Conv2D(head_channels, 1, dtype='float32', name=f'{p}_head')(y)
      heads.append(head)
    if s < num_stacks - 1:
      merge = [x, layers.Conv2D(channels, 1, name=f'{p}_feat_back')(y)]
      if head is not None:
        merge.append(layers.Conv2D(channels, 1, name=f'{p}_head_back')(head))
      x = layers.Add(name=f'{p}_next')(merge)
  return features, heads


def build_stacked_hourglass(input_size, num_joints=17, num_stacks=2, channels=64, depth=3,
                            name='hourglass'):
  """The 2D estimator: image [B, S, S, 3] in [0, 1] to a list of heatmaps per stack.

  Returns a Keras model whose output is a list of `num_stacks` float32 tensors
  [B, S/4, S/4, num_joints] (the last is the prediction; all are supervised). The
  model centres its input itself, so an exported model needs no outside preprocessing.
  Raises ValueError unless input_size is a multiple of 4 * 2**depth.
  """
  check_input_size(input_size, depth)
  image = layers.Input((input_size, input_size, 3), dtype=tf.float32, name='image')
  _, heads = hourglass_trunk(image, num_stacks=num_stacks, channels=channels, depth=depth,
                             name=name, head_channels=num_joints)
  return tf.keras.Model(image, heads, name=name)


LOG_FLOOR = 1e-6   # heatmap values below this count as this when decoding


def decode_heatmaps(heatmaps, stride=keys.HEATMAP_STRIDE, return_confidence=False):
  """Joint positions in crop pixels from heatmaps [B, H, W, J].

  Arg-max per joint, then in x and in y a sub-cell shift from the peak p and its two
  neighbours a (before) and b (after): the vertex of the parabola through their
  logarithms, d = (ln b - ln a) / (2 (2 ln p - ln a - ln b)), which is exact for a
  Gaussian peak such as the training targets; values below 1e-6 count as 1e-6, and d is
  kept in [-0.5, 0.5] (no shift on a flat top, or when the peak is on the border in
  that axis). Then x = u * stride + (stride - 1) / 2 (the same for y).

  Returns:
    [B, J, 2] float32 (x, y); with return_confidence also the peak values [B, J].
  """
  heatmaps = tf.cast(heatmaps, tf.float32)
  shape = tf.shape(heatmaps)
  b, h, w = shape[0], shape[1], shape[2]
  j = heatmaps.shape[-1] if heatmaps.shape[-1] is not None else shape[3]
  flat = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [b, j, h * w])   # [B, J, HW]
  index = tf.argmax(flat, axis=-1, output_type=tf.int32)                   # [B, J]
  peak = tf.reduce_max(flat, axis=-1)
  row, col = index // w, index % w

  def value(offset):
    at = tf.clip_by_value(index + offset, 0, h * w - 1)
    return tf.gather(flat, at[..., None], batch_dims=2)[..., 0]

  log_peak = tf.math.log(tf.maximum(peak, LOG_FLOOR))

  def shift(before, after, inside):
    log_a = tf.math.log(tf.maximum(before, LOG_FLOOR))
    log_b = tf.math.log(tf.maximum(after, LOG_FLOOR))
    curvature = 2.0 * log_peak - log_a - log_b
    flat = curvature <= 0.0
    d = (log_b - log_a) / (2.0 * tf.where(flat, 1.0, curvature))
    return tf.where(inside & ~flat, tf.clip_by_value(d, -0.5, 0.5), 0.0)

  dx = shift(value(-1), value(1), (col > 0) & (col < w - 1))
  dy = shift(value(-w), value(w), (row > 0) & (row < h - 1))
  u = tf.cast(col, tf.float32) + dx
  v = tf.cast(row, tf.float32) + dy
  offset = (stride - 1) / 2.0
  coords = tf.stack([u * stride + offset, v * stride + offset], axis=-1)
  if return_confidence:
    return coords, peak
  return coords


def soft_argmax_2d(heatmaps, stride=keys.HEATMAP_STRIDE, return_confidence=False):
  """Integral regression over heatmaps used as logits [B, H, W, J].

  Softmax over the H * W cells of each joint, expected cell (u, v), then
  x = u * stride + (stride - 1) / 2 (y likewise): crop pixels, as decode_heatmaps.
  The confidence of a joint is the largest probability mass in any 3x3 block of cells
  (1: all of it near one point; 9 / (H * W): spread evenly).

  Returns:
    [B, J, 2] float32 (x, y); with return_confidence also the confidences [B, J].
  """
  heatmaps = tf.cast(heatmaps, tf.float32)
  shape = tf.shape(heatmaps)
  b, h, w = shape[0], shape[1], shape[2]
  j = heatmaps.shape[-1]
  flat = tf.reshape(tf.transpose(heatmaps, [0, 3, 1, 2]), [b, j, h * w])   # [B, J, HW]
  probs = tf.reshape(tf.nn.softmax(flat, axis=-1), [b, j, h, w])
  offset = (stride - 1) / 2.0
  cols = tf.range(w, dtype=tf.float32) * stride + offset
  rows = tf.range(h, dtype=tf.float32) * stride + offset
  x = tf.reduce_sum(tf.reduce_sum(probs, axis=2) * cols, axis=-1)
  y = tf.reduce_sum(tf.reduce_sum(probs, axis=3) * rows, axis=-1)
  coords = tf.stack([x, y], axis=-1)
  if not return_confidence:
    return coords
  padded = tf.pad(tf.transpose(probs, [0, 2, 3, 1]), [[0, 0], [1, 1], [1, 1], [0, 0]])
  blocks = tf.nn.avg_pool2d(padded, 3, 1, 'VALID') * 9.0                  # 3x3 sums
  return coords, tf.reduce_max(blocks, axis=[1, 2])

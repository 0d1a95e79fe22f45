"""The multimodal generator: two parallel convnets on the same crop, no shared weights.

  coarse-3D branch (explicit depth): a stacked hourglass of its own, a 1x1 conv to
    J * D channels at 1/4 resolution, read as volumetric heatmaps [B, H, W, J, D], and a
    3D soft-argmax (integral regression) to [B, J, 3]: x, y in crop pixels and z in
    millimetres, root-relative, in [-depth_range_mm, depth_range_mm].
  FBI branch (implicit depth): a ResNet-like convnet (strided pre-activation residual
    stages, global average pool, dense) to [B, 14, 3] probabilities of forward /
    backward / parallel for each FBI bone (fbi_head='convnet'); or, with
    fbi_head='joints', a head on the coarse-3D hourglass that reads joint-level
    features: each joint's feature vector pooled under its own 2D heatmap (the volume's
    softmax summed over depth), and per bone its two joints' vectors and their
    coarse-3D difference, through two dense layers. That head shares the backbone
    that the coarse-3D loss supervises in 2D and depth, as FBI-Pose shares its
    backbone with 2D joint estimation. fbi_head='bones' adds to each bone's inputs
    what lies along it: the crop's colour and the features at BONE_POINTS points of
    its 2D segment (BoneSamples).

One functional model, outputs {'coarse3d': ..., 'fbi': ...}, float32 under any precision
policy. Every layer of the coarse-3D branch is named 'coarse3d' or 'coarse3d_*', every
layer of the FBI branch 'fbi' or 'fbi_*'; the only other layer is the shared input.
To fine-tune only the coarse-3D branch (the adversarial phase), freeze the FBI branch:

    set_branch_trainable(model, 'fbi', False)   # then compile (again)

after which `model.trainable_variables` holds the coarse-3D branch's variables only, and
the FBI branch's BatchNormalization layers run in inference mode. `branch_model(model,
'coarse3d')` gives one branch as its own model sharing the generator's layers.
"""

import numpy as np
import tensorflow as tf

from fbi3d import keys
from fbi3d import skeleton
from fbi3d.models import hourglass

layers = tf.keras.layers

BRANCHES = ('coarse3d', 'fbi')
FBI_HEADS = ('convnet', 'joints', 'bones')
# Points along each bone at which fbi_head='bones' reads the crop and the features.
BONE_POINTS = 8


def depth_bin_centres_mm(depth_bins, depth_range_mm):
  """Root-relative depth in mm of each bin centre d: ((d + 0.5) / D * 2 - 1) * range."""
  d = tf.range(depth_bins, dtype=tf.float32)
  return ((d + 0.5) / depth_bins * 2.0 - 1.0) * depth_range_mm


def volume_probabilities(volume):
  """Volumetric heatmap logits [B, H, W, J, D] (any float dtype) to each joint's
  softmax over all its H * W * D cells, float32 [B, J, H, W, D]."""
  volume = tf.cast(volume, tf.float32)
  shape = tf.shape(volume)
  b, h, w = shape[0], shape[1], shape[2]
  j, depth_bins = volume.shape[3], volume.shape[4]
  if j is None or depth_bins is None:
    raise ValueError('volumetric heatmaps need static joint and depth-bin axes.')
  logits = tf.transpose(volume, [0, 3, 1, 2, 4])                           # [B, J, H, W, D]
  probs = tf.nn.softmax(tf.reshape(logits, [b, j, -1]), axis=-1)
  return tf.reshape(probs, [b, j, h, w, depth_bins])


def soft_argmax_3d(volume, stride, depth_range_mm):
  """Integral regression over volumetric heatmaps.

  Args:
    volume: logits [B, H, W, J, D] (any float dtype; computed in float32).
    stride: crop pixels per heatmap cell.
    depth_range_mm: the volume's depth axis covers [-range, range] mm.

  Returns:
    [B, J, 3] float32: softmax over all H * W * D cells of each joint, expected cell
    coordinates (u, v, d), then x = u * stride + (stride - 1) / 2 (y likewise) in crop
    pixels and z = ((d + 0.5) / D * 2 - 1) * depth_range_mm.
  """
  probs = volume_probabilities(volume)                                    # [B, J, H, W, D]
  h, w = tf.shape(probs)[2], tf.shape(probs)[3]
  depth_bins = probs.shape[4]
  p_y = tf.reduce_sum(probs, axis=[3, 4])                                  # [B, J, H]
  p_x = tf.reduce_sum(probs, axis=[2, 4])                                  # [B, J, W]
  p_z = tf.reduce_sum(probs, axis=[2, 3])                                  # [B, J, D]
  offset = (stride - 1) / 2.0
  cols = tf.range(w, dtype=tf.float32) * stride + offset
  rows = tf.range(h, dtype=tf.float32) * stride + offset
  x = tf.reduce_sum(p_x * cols, axis=-1)
  y = tf.reduce_sum(p_y * rows, axis=-1)
  z = tf.reduce_sum(p_z * depth_bin_centres_mm(depth_bins, depth_range_mm), axis=-1)
  return tf.stack([x, y, z], axis=-1)


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class SoftArgmax3D(layers.Layer):
  """Keras layer for `soft_argmax_3d`; always float32."""

  def __init__(self, stride, depth_range_mm, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.stride = stride
    self.depth_range_mm = float(depth_range_mm)

  def call(self, volume):
    return soft_argmax_3d(volume, self.stride, self.depth_range_mm)

  def get_config(self):
    config = super().get_config()
    config.update(stride=self.stride, depth_range_mm=self.depth_range_mm)
    return config


def _preact_block(x, channels, stride, name):
  """Pre-activation basic residual block (two 3x3 convs), projection skip if needed."""
  y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_a_bn')(x)
  y = layers.ReLU(name=f'{name}_a_relu')(y)
  skip = x
  if stride != 1 or x.shape[-1] != channels:
    skip = layers.Conv2D(channels, 1, strides=stride, use_bias=False,
                         name=f'{name}_skip')(y)
  y = layers.Conv2D(channels, 3, strides=stride, padding='same', use_bias=False,
                    name=f'{name}_a_conv')(y)
  y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_b_bn')(y)
  y = layers.ReLU(name=f'{name}_b_relu')(y)
  y = layers.Conv2D(channels, 3, padding='same', use_bias=False, name=f'{name}_b_conv')(y)
  return layers.Add(name=f'{name}_add')([skip, y])


def fbi_branch(image, channels, blocks_per_stage=2, name='fbi'):
  """The FBI convnet: image in [0, 1] to [B, 14, 3] float32 probabilities.

  A 7x7 stride-2 conv and a max-pool to 1/4 resolution, one stage per entry of
  `channels` (each halving the resolution but the first), global average pool, dense to
  14 * 3 logits, softmax over the 3 classes. The output layer is named `name`.
  """
  x = layers.Rescaling(2.0, offset=-1.0, name=f'{name}_centre')(image)
  x = layers.Conv2D(channels[0], 7, strides=2, padding='same', use_bias=False,
                    name=f'{name}_stem_conv')(x)
  x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_stem_bn')(x)
  x = layers.ReLU(name=f'{name}_stem_relu')(x)
  x = layers.MaxPool2D(3, strides=2, padding='same', name=f'{name}_stem_pool')(x)
  for i, c in enumerate(channels):
    for k in range(blocks_per_stage):
      stride = 2 if (i > 0 and k == 0) else 1
      x = _preact_block(x, c, stride, f'{name}_stage{i}_block{k}')
  x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_final_bn')(x)
  x = layers.ReLU(name=f'{name}_final_relu')(x)
  x = layers.GlobalAveragePooling2D(name=f'{name}_pool')(x)
  logits = layers.Dense(skeleton.NUM_FBI_BONES * 3, dtype='float32', name=f'{name}_logits')(x)
  logits = layers.Reshape((skeleton.NUM_FBI_BONES, 3), dtype='float32',
                          name=f'{name}_reshape')(logits)
  return layers.Softmax(axis=-1, dtype='float32', name=name)(logits)


def joint_pooling(volume, features):
  """Each joint's feature vector under its own 2D heatmap.

  volume: logits [B, H, W, J, D]; features: [B, H, W, C]. The softmax over all H * W * D
  cells of each joint, summed over depth, weighs the features: [B, J, C] float32.
  """
  weights = tf.reduce_sum(volume_probabilities(volume), axis=-1)           # [B, J, H, W]
  return tf.einsum('bjhw,bhwc->bjc', weights, tf.cast(features, tf.float32))


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class BoneFeatures(layers.Layer):
  """Per FBI bone (parent, child): [f_child, f_parent, p_child - p_parent], from joint
  features [B, J, C] (joint_pooling of the volume) and the coarse pose [B, J, 3]
  normalised by `scale` (S, S, depth range): [B, 14, 2C + 3], float32."""

  def __init__(self, scale, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.scale = tuple(float(v) for v in scale)

  def call(self, volume, features, pose):
    joints = joint_pooling(volume, features)
    parents = [p for p, _ in skeleton.FBI_BONES]
    children = [c for _, c in skeleton.FBI_BONES]
    pose = tf.cast(pose, tf.float32) / tf.constant(self.scale)
    return tf.concat([tf.gather(joints, children, axis=1), tf.gather(joints, parents, axis=1),
                      tf.gather(pose, children, axis=1) - tf.gather(pose, parents, axis=1)],
                     axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update(scale=self.scale)
    return config


def bilinear_sample(grid, points):
  """grid [B, H, W, C] read at points [B, N, 2] (x, y in cell units, cell centres at
  integers) by bilinear interpolation, points beyond the edge clamped to it: [B, N, C]
  float32."""
  grid = tf.cast(grid, tf.float32)
  shape = tf.shape(grid)
  h, w = shape[1], shape[2]
  x = tf.clip_by_value(points[..., 0], 0.0, tf.cast(w - 1, tf.float32))
  y = tf.clip_by_value(points[..., 1], 0.0, tf.cast(h - 1, tf.float32))
  x0, y0 = tf.floor(x), tf.floor(y)
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
  x1, y1 = tf.minimum(x0 + 1, w - 1), tf.minimum(y0 + 1, h - 1)

  def at(yy, xx):
    return tf.gather_nd(grid, tf.stack([yy, xx], axis=-1), batch_dims=1)

  return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1))
          + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)))


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class BoneSamples(layers.Layer):
  """Per FBI bone (parent, child), what lies along it: at `points` evenly spaced points
  of its 2D segment in the coarse pose (the segment's k-th of `points` equal parts, at
  its middle), the crop's colour (image [B, S, S, 3] in [0, 1], crop pixels) and the
  features' vector (features [B, S/stride, S/stride, C]), bilinear. The positions carry
  no gradient: the FBI loss does not move the 2D. [B, 14, points * (3 + C)] float32."""

  def __init__(self, points, stride, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.points = int(points)
    self.stride = int(stride)

  def call(self, image, features, pose):
    xy = tf.stop_gradient(tf.cast(pose[..., :2], tf.float32))
    parents = tf.gather(xy, [p for p, _ in skeleton.FBI_BONES], axis=1)     # [B, 14, 2]
    children = tf.gather(xy, [c for _, c in skeleton.FBI_BONES], axis=1)
    t = (tf.range(self.points, dtype=tf.float32) + 0.5) / self.points       # [K]
    along = parents[:, :, None] + t[None, None, :, None] * (children - parents)[:, :, None]
    bones = skeleton.NUM_FBI_BONES
    flat = tf.reshape(along, [-1, bones * self.points, 2])                  # crop pixels
    colour = bilinear_sample(image, flat)
    # Cell u's centre is at crop pixel u * stride + (stride - 1) / 2 (soft_argmax_3d).
    cells = (flat - (self.stride - 1) / 2.0) / self.stride
    vectors = bilinear_sample(features, cells)
    samples = tf.concat([colour, vectors], axis=-1)                         # [B, 14K, 3+C]
    return tf.reshape(samples, [-1, bones, self.points * samples.shape[-1]])

  def get_config(self):
    config = super().get_config()
    config.update(points=self.points, stride=self.stride)
    return config


def fbi_joint_head(volume, features, pose, *, input_size, depth_range_mm, units=128,
                   image=None, name='fbi'):
  """The FBI head on joint-level features: BoneFeatures, a dense layer shared by the
  bones with a learned embedding of each bone added, ReLU, a dense layer to 3 logits per
  bone, softmax. [B, 14, 3] float32; the output layer is named `name`."""
  bones = BoneFeatures((input_size, input_size, depth_range_mm), name=f'{name}_bones')(
      volume, features, pose)
  if image is not None:
    # fbi_head='bones': also what lies along each bone, in the crop and in the features.
    along = BoneSamples(BONE_POINTS, keys.HEATMAP_STRIDE, name=f'{name}_bone_samples')(
        image, features, pose)
    bones = layers.Concatenate(axis=-1, dtype='float32', name=f'{name}_bone_inputs')(
        [bones, along])
  x = layers.Dense(units, name=f'{name}_hidden')(bones)
  x = BoneEmbedding(name=f'{name}_bone_embedding')(x)
  x = layers.ReLU(name=f'{name}_relu')(x)
  logits = layers.Dense(3, dtype='float32', name=f'{name}_logits')(x)
  return layers.Softmax(axis=-1, dtype='float32', name=name)(logits)


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class BoneEmbedding(layers.Layer):
  """Adds a learned vector per FBI bone: [B, 14, U] -> [B, 14, U]."""

  def build(self, input_shape):
    self.embedding = self.add_weight(
        name='embedding', shape=(skeleton.NUM_FBI_BONES, int(input_shape[-1])),
        initializer='zeros')

  def call(self, x):
    return x + tf.cast(self.embedding, x.dtype)


def coarse3d_branch(image, *, input_size, num_joints, stacks, channels, depth, depth_bins,
                    depth_range_mm, name='coarse3d'):
  """The coarse-3D branch: image in [0, 1] to (pose [B, J, 3], volume, features).

  pose: float32 (x, y crop pixels, z mm root-relative), output layer named `name`;
  volume: float32 logits [B, S/4, S/4, J, D]; features: the last hourglass's features
  [B, S/4, S/4, channels] in the compute dtype.
  """
  features, _ = hourglass.hourglass_trunk(image, num_stacks=stacks, channels=channels,
                                          depth=depth, name=name)
  size = input_size // keys.HEATMAP_STRIDE
  logits = layers.Conv2D(num_joints * depth_bins, 1, dtype='float32',
                         name=f'{name}_volume_conv')(features[-1])
  volume = layers.Reshape((size, size, num_joints, depth_bins), dtype='float32',
                          name=f'{name}_volume')(logits)
  pose = SoftArgmax3D(keys.HEATMAP_STRIDE, depth_range_mm, name=name)(volume)
  return pose, volume, features[-1]


def build_generator(input_size, *, num_joints=skeleton.NUM_JOINTS, coarse_stacks=1,
                    coarse_channels=64, coarse_depth=3, depth_bins=16, depth_range_mm=1000.0,
                    fbi_channels=(32, 64, 128, 256), fbi_blocks_per_stage=2,
                    fbi_head='convnet', return_features=False, name='generator'):
  """The multimodal generator as one Keras model.

  Input: image [B, S, S, 3] float32 in [0, 1] (the model centres it itself).
  Outputs, a dict of float32 tensors:
    'coarse3d': [B, J, 3] (x, y in crop pixels, z in mm root-relative);
    'fbi': [B, 14, 3] probabilities over (forward, backward, parallel);
  and with return_features also
    'coarse3d_volume': [B, S/4, S/4, J, D] logits of the volumetric heatmaps;
    'coarse3d_features': [B, S/4, S/4, coarse_channels], the coarse-3D hourglass's last
      features (an image condition for a discriminator).
  fbi_head: 'convnet' (the FBI branch reads the image), 'joints' (it reads the
    coarse-3D hourglass's joint-level features; fbi_channels is then unused) or 'bones'
    (joints, and the crop and features along each bone).
  Raises ValueError unless input_size is a multiple of 4 * 2**coarse_depth.
  """
  hourglass.check_input_size(input_size, coarse_depth)
  if fbi_head not in FBI_HEADS:
    raise ValueError(f'unknown fbi_head {fbi_head!r}; expected one of {FBI_HEADS}.')
  image = layers.Input((input_size, input_size, 3), dtype=tf.float32, name='image')
  pose, volume, features = coarse3d_branch(
      image, input_size=input_size, num_joints=num_joints, stacks=coarse_stacks,
      channels=coarse_channels, depth=coarse_depth, depth_bins=depth_bins,
      depth_range_mm=depth_range_mm, name='coarse3d')
  if fbi_head in ('joints', 'bones'):
    probs = fbi_joint_head(volume, features, pose, input_size=input_size,
                           depth_range_mm=depth_range_mm,
                           image=image if fbi_head == 'bones' else None, name='fbi')
  else:
    probs = fbi_branch(image, fbi_channels, fbi_blocks_per_stage, name='fbi')
  outputs = {'coarse3d': pose, 'fbi': probs}
  if return_features:
    outputs['coarse3d_volume'] = volume
    outputs['coarse3d_features'] = layers.Activation(
        'linear', dtype='float32', name='coarse3d_features')(features)
  return tf.keras.Model(image, outputs, name=name)


def init_from_estimator(generator, estimator):
  """Starts a generator's coarse-3D branch from a trained 2D estimator (a model of
  `hourglass.build_stacked_hourglass`). Each coarse-3D layer takes the weights of the
  estimator's layer of the same name (the estimator's prefix read as 'coarse3d') and
  shapes: centring, stem, each stack's hourglass and output layers, batch statistics
  included. The volume's 1x1 conv takes the heatmap head of the estimator's stack that
  feeds it, each joint's kernel and bias repeated over the depth bins. With as many
  stacks on both sides the branch then returns the estimator's soft-argmax 2D exactly,
  every depth bin equally likely (depth 0), and learns depth on top.

  Returns the number of layers set. Raises ValueError, and changes nothing, when a
  coarse-3D layer has no counterpart of the same shapes (other channels or depth, more
  stacks than the estimator, other joints).
  """
  prefix = estimator.name
  theirs = {layer.name: layer for layer in estimator.layers if layer.weights}

  def shapes(layer):
    return [tuple(w.shape) for w in layer.weights]

  pairs, missing = [], []
  for layer in branch_layers(generator, 'coarse3d'):
    if not layer.weights or layer.name == 'coarse3d_volume_conv':
      continue
    source = theirs.get(prefix + layer.name[len('coarse3d'):])
    if source is None or shapes(source) != shapes(layer):
      missing.append(layer.name)
    else:
      pairs.append((layer, source))
  stacks = len([1 for layer, _ in pairs if layer.name.endswith('_lin')])
  head = theirs.get(f'{prefix}_s{stacks - 1}_head')
  volume_conv = generator.get_layer('coarse3d_volume_conv')
  kernel = tuple(volume_conv.weights[0].shape)
  head_kernel = tuple(head.weights[0].shape) if head is not None else None
  if (missing or head_kernel is None or head_kernel[:-1] != kernel[:-1]
      or kernel[-1] % head_kernel[-1]):
    raise ValueError(
        f'the 2D estimator {prefix!r} does not fit the coarse-3D branch (nothing of the '
        f'same shapes for {", ".join(missing[:3]) or "the volume conv"}): the branch needs '
        'as many channels and down-sampling levels as the estimator, no more stacks, '
        'and the same joints.')
  for layer, source in pairs:
    layer.set_weights(source.get_weights())
  bins = kernel[-1] // head_kernel[-1]
  values = head.get_weights()
  volume_conv.set_weights([np.repeat(v, bins, axis=-1) for v in values])
  return len(pairs) + 1


def _in_branch(layer_name, branch):
  return layer_name == branch or layer_name.startswith(branch + '_')


def branch_layers(model, branch):
  """The layers of one branch ('coarse3d' or 'fbi') of a generator model."""
  if branch not in BRANCHES:
    raise ValueError(f'unknown branch {branch!r}; expected one of {BRANCHES}.')
  return [layer for layer in model.layers if _in_branch(layer.name, branch)]


def branch_variables(model, branch, trainable_only=True):
  """The variables of one branch's layers."""
  out = []
  for layer in branch_layers(model, branch):
    out.extend(layer.trainable_weights if trainable_only else layer.weights)
  return out


def set_branch_trainable(model, branch, trainable):
  """Sets `trainable` on every layer of one branch; compile the model afterwards."""
  for layer in branch_layers(model, branch):
    layer.trainable = trainable


def branch_model(model, branch):
  """One branch of a generator as a model of its own, sharing the generator's layers."""
  if branch not in BRANCHES:
    raise ValueError(f'unknown branch {branch!r}; expected one of {BRANCHES}.')
  return tf.keras.Model(model.input, model.get_layer(branch).output,
                        name=f'{model.name}_{branch}')

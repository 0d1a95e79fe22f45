"""The conditional discriminator: is a (3D pose, condition) pair real or generated?

Inputs: pose3d [B, 17, 3] (root-relative, mm) and a condition, either
  - 'pose2d': the 2D joints [B, 17, 2] in crop pixels, mapped inside to [-1, 1] by
    `crop_size` (x / crop_size * 2 - 1) and also taken root-relative
    ((x - x_root) / crop_size * 2); or
  - 'features': an image feature map [B, H, W, C] (e.g. the generator's
    'coarse3d_features'), global-average pooled inside.
Output: one logit [B, 1], float32 under any precision policy (positive means real).

The pose is seen three ways, each through its own two-layer MLP:
  - raw coordinates, in metres (mm / 1000), flattened;
  - the kinematic chain space (KCS, Wandt and Rosenhahn, CVPR 2019): the Gram matrix
    B^T B of the 16 bone vectors of `skeleton.BONES` (the columns of B, child minus
    parent), whose diagonal holds squared bone lengths and whose off-diagonal entries
    the products of lengths and the cosines of the angles between bones; the upper
    triangle (with the diagonal, 136 values) divided by KCS_SCALE_MM^2 (250 mm, a
    typical bone, so entries are O(1));
  - a geometric descriptor, for every pair of joints i < j (`JOINT_PAIRS`, 136 pairs):
    the difference p_j - p_i in metres and the distance |p_j - p_i| divided by the
    pose's own mean bone length (floored at 1 mm). The distances are thus scale-free
    body proportions, while the raw and KCS streams carry the absolute scale.
The three pose embeddings and the condition's embedding are concatenated, then an MLP
gives the logit. No batch normalisation (the two halves of a GAN batch differ in
distribution); LeakyReLU(0.2) throughout. Pose features are computed in float32.
"""

import itertools

import tensorflow as tf

from fbi3d import skeleton

layers = tf.keras.layers

CONDITIONS = ('pose2d', 'features')
COORD_SCALE_MM = 1000.0
KCS_SCALE_MM = 250.0
MIN_BONE_LENGTH_MM = 1.0
JOINT_PAIRS = tuple(itertools.combinations(range(skeleton.NUM_JOINTS), 2))
_BONE_PARENTS = tuple(p for p, _ in skeleton.BONES)
_BONE_CHILDREN = tuple(c for _, c in skeleton.BONES)


def bone_vectors(pose3d):
  """[B, J, 3] -> [B, 16, 3]: child minus parent for each bone of `skeleton.BONES`."""
  pose3d = tf.cast(pose3d, tf.float32)
  return (tf.gather(pose3d, _BONE_CHILDREN, axis=1)
          - tf.gather(pose3d, _BONE_PARENTS, axis=1))


def kinematic_chain_space(pose3d):
  """The KCS Gram matrix [B, 16, 16] = B^T B, in the pose's unit squared (mm^2).

  Entry (k, l) is the dot product of bones k and l (in `skeleton.BONES` order).
  """
  bones = bone_vectors(pose3d)
  return tf.matmul(bones, bones, transpose_b=True)


def geometric_descriptor(pose3d):
  """Pairwise joint geometry [B, 136, 4] over `JOINT_PAIRS` (i, j), i < j.

  Columns: (p_j - p_i) / COORD_SCALE_MM (x, y, z in metres for mm input) and
  |p_j - p_i| / max(mean bone length of the pose, MIN_BONE_LENGTH_MM).
  """
  pose3d = tf.cast(pose3d, tf.float32)
  first = tf.gather(pose3d, [i for i, _ in JOINT_PAIRS], axis=1)
  second = tf.gather(pose3d, [j for _, j in JOINT_PAIRS], axis=1)
  diff = second - first
  distance = tf.norm(diff, axis=-1, keepdims=True)
  mean_bone = tf.reduce_mean(tf.norm(bone_vectors(pose3d), axis=-1), axis=-1)
  mean_bone = tf.maximum(mean_bone, MIN_BONE_LENGTH_MM)[:, None, None]
  return tf.concat([diff / COORD_SCALE_MM, distance / mean_bone], axis=-1)


def _upper_triangle_indices(n):
  return [i * n + j for i in range(n) for j in range(i, n)]


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class PoseFeatures(layers.Layer):
  """One float32 view of a [B, J, 3] pose, flattened: 'coords', 'kcs' or 'geometry'."""

  KINDS = ('coords', 'kcs', 'geometry')

  def __init__(self, kind, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    if kind not in self.KINDS:
      raise ValueError(f'unknown pose feature {kind!r}; expected one of {self.KINDS}.')
    self.kind = kind

  def call(self, pose3d):
    pose3d = tf.cast(pose3d, tf.float32)
    batch = tf.shape(pose3d)[0]
    if self.kind == 'coords':
      return tf.reshape(pose3d / COORD_SCALE_MM, [batch, pose3d.shape[1] * 3])
    if self.kind == 'kcs':
      gram = kinematic_chain_space(pose3d)
      n = len(skeleton.BONES)
      flat = tf.reshape(gram, [batch, n * n])
      return tf.gather(flat, _upper_triangle_indices(n), axis=1) / KCS_SCALE_MM ** 2
    return tf.reshape(geometric_descriptor(pose3d), [batch, len(JOINT_PAIRS) * 4])

  def compute_output_shape(self, input_shape):
    n = len(skeleton.BONES)
    size = {'coords': int(input_shape[1]) * 3, 'kcs': n * (n + 1) // 2,
            'geometry': len(JOINT_PAIRS) * 4}[self.kind]
    return tf.TensorShape([input_shape[0], size])

  def get_config(self):
    config = super().get_config()
    config.update(kind=self.kind)
    return config


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class Pose2DCondition(layers.Layer):
  """[B, J, 2] crop pixels -> [B, J * 4]: x / S * 2 - 1 and (x - x_root) / S * 2; float32."""

  def __init__(self, crop_size, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.crop_size = float(crop_size)

  def call(self, pose2d):
    pose2d = tf.cast(pose2d, tf.float32)
    batch = tf.shape(pose2d)[0]
    centred = pose2d / self.crop_size * 2.0 - 1.0
    relative = (pose2d - pose2d[:, skeleton.ROOT:skeleton.ROOT + 1]) / self.crop_size * 2.0
    return tf.reshape(tf.concat([centred, relative], axis=-1),
                      [batch, pose2d.shape[1] * 4])

  def get_config(self):
    config = super().get_config()
    config.update(crop_size=self.crop_size)
    return config


def _mlp(x, units, name, depth=2):
  for k in range(depth):
    x = layers.Dense(units, name=f'{name}_dense{k}')(x)
    x = layers.LeakyReLU(0.2, name=f'{name}_lrelu{k}')(x)
  return x


def build_discriminator(*, condition='pose2d', crop_size=256, feature_shape=None,
                        units=256, num_joints=skeleton.NUM_JOINTS, name='discriminator'):
  """The conditional discriminator as one Keras functional model.

  Args:
    condition: 'pose2d' (2D joints in crop pixels) or 'features' (image feature map).
    crop_size: crop side in pixels, to normalise a 'pose2d' condition.
    feature_shape: (H, W, C) of a 'features' condition (H and W may be None).
    units: width of every hidden layer (the pose streams and the head).
    num_joints: joints of the poses (the skeleton's 17).
    name: model name; every layer's name starts with it.

  Returns:
    A model called as model([pose3d, condition]) (or with a dict keyed by the input
    names 'pose3d' and 'pose2d' / 'features'), returning float32 logits [B, 1].
  """
  if condition not in CONDITIONS:
    raise ValueError(f'unknown condition {condition!r}; expected one of {CONDITIONS}.')
  pose3d = layers.Input((num_joints, 3), dtype=tf.float32, name='pose3d')
  if condition == 'pose2d':
    cond = layers.Input((num_joints, 2), dtype=tf.float32, name='pose2d')
    cond_x = Pose2DCondition(crop_size, name=f'{name}_pose2d_norm')(cond)
  else:
    if feature_shape is None or len(feature_shape) != 3 or feature_shape[-1] is None:
      raise ValueError('condition="features" needs feature_shape=(H, W, C) with C known.')
    cond = layers.Input(tuple(feature_shape), name='features')
    cond_x = layers.GlobalAveragePooling2D(name=f'{name}_features_pool')(cond)
  streams = [_mlp(cond_x, units, f'{name}_{condition}')]
  for kind in PoseFeatures.KINDS:
    x = PoseFeatures(kind, name=f'{name}_{kind}')(pose3d)
    streams.append(_mlp(x, units, f'{name}_{kind}'))
  x = layers.Concatenate(name=f'{name}_concat')(streams)
  x = _mlp(x, units, f'{name}_head')
  logit = layers.Dense(1, dtype='float32', name=f'{name}_logit')(x)
  return tf.keras.Model([pose3d, cond], logit, name=name)

"""The lifting regressor (Martinez et al., ICCV 2017): a feature vector to a 3D pose.

  raw input [B, D] -> Normalise -> Dense(1024), BN, ReLU, Dropout
    -> `blocks` residual blocks, each x + 2 x [Dense(1024), BN, ReLU, Dropout]
    -> Dense(17 * 3) -> Denormalise -> raw 3D [B, 17, 3] (mm, root-relative).

The first Dense is followed by BN, ReLU and dropout as in Martinez et al.'s code. Every
Dense kernel starts He-normal and is held to max-norm 1 (each unit's incoming weight
vector, i.e. each kernel column, has norm <= 1 after every optimizer step; He
initialisation gives columns of norm about sqrt(2), so the first step rescales them).
`dropout_rate` is the probability of dropping a unit (Keras' meaning), not of keeping it.

The input is whatever the phase feeds, e.g. the 2D joints in crop pixels flattened (34),
or those concatenated with the coarse 3D pose (51) and the FBI probabilities (42). The
normalisation statistics of the training split live in the model itself: the
`Normalise` layer holds the input mean/std and the `Denormalise` layer the target
mean/std, as non-trainable weights, so they are saved and restored with the model's
checkpoint or weights, and the model maps raw inputs to millimetres with no outside file.
Set them once before training with `set_normalisation` (statistics from
`normalisation_stats`). Until then they are the identity (mean 0, std 1).

Standard deviation floor: a feature whose training-split std is below `STD_FLOOR` (1e-4
in the feature's own unit: pixels, mm or probability) is treated as constant; its std is
stored as 1, so it is only centred. Dividing by a tiny std instead would turn any
test-time deviation of that feature (e.g. the root joint, always 0 in training) into a
huge normalised value. The same rule applies to the targets, whose root joint is 0.

The optimizer (`regressor_optimizer`) is Adam (fused, `fbi3d.optimizers`) with an exponentially decaying learning
rate, 1e-3 * 0.96 ** (step / 100000), continuous (not staircase), as in Martinez et al.;
the phases that train the regressor use batches of 64 by default.
"""

import random

import numpy as np
import tensorflow as tf

from fbi3d import optimizers
from fbi3d import skeleton

layers = tf.keras.layers

STD_FLOOR = 1e-4


def safe_std(std, floor=STD_FLOOR):
  """The std a layer stores: `std`, with every entry below `floor` replaced by 1."""
  std = np.asarray(std, dtype=np.float64)
  return np.where(std < floor, 1.0, std)


def _statistics(layer, dim):
  """Non-trainable mean (zeros) and std (ones) weights [dim] of a layer."""
  mean = layer.add_weight(name='mean', shape=(dim,), initializer='zeros', trainable=False)
  std = layer.add_weight(name='std', shape=(dim,), initializer='ones', trainable=False)
  return mean, std


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class Normalise(layers.Layer):
  """(x - mean) / std over the last axis, with non-trainable `mean` and `std` [D].

  Always float32, so raw millimetres and pixels keep their precision under a mixed
  policy; the following Dense layers cast to the compute dtype.
  """

  def __init__(self, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self.mean, self.std = _statistics(self, dim)
    super().build(input_shape)

  def call(self, inputs):
    return (tf.cast(inputs, tf.float32) - self.mean) / self.std


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class Denormalise(layers.Layer):
  """y * std + mean over a flat [B, J * 3] input, reshaped to [B, J, 3]; float32.

  `normalise(target)` is the inverse map, raw [B, J, 3] (or [B, J * 3]) to the flat
  normalised space in which the regression loss is computed.
  """

  def __init__(self, num_joints=skeleton.NUM_JOINTS, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    self.num_joints = num_joints

  def build(self, input_shape):
    dim = int(input_shape[-1])
    if dim != self.num_joints * 3:
      raise ValueError(f'Denormalise expects {self.num_joints * 3} inputs, got {dim}.')
    self.mean, self.std = _statistics(self, dim)
    super().build(input_shape)

  def call(self, inputs):
    raw = tf.cast(inputs, tf.float32) * self.std + self.mean
    return tf.reshape(raw, [-1, self.num_joints, 3])

  def normalise(self, target):
    flat = tf.reshape(tf.cast(target, tf.float32), [-1, self.num_joints * 3])
    return (flat - self.mean) / self.std

  def compute_output_shape(self, input_shape):
    return tf.TensorShape([input_shape[0], self.num_joints, 3])

  def get_config(self):
    config = super().get_config()
    config.update(num_joints=self.num_joints)
    return config


@tf.keras.saving.register_keras_serializable(package='fbi3d')
class CountedDropout(layers.Layer):
  """Dropout (`rate`: probability of dropping a unit) whose masks are drawn by stateless
  ops from (seed, number of training calls so far). The count is a non-trainable weight,
  saved with the network, so a run resumed from a checkpoint draws the masks an
  uninterrupted run would. The seed is drawn from Python's `random` when the layer is
  made, so `tf.keras.utils.set_random_seed` fixes it."""

  def __init__(self, rate, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not 0.0 <= rate < 1.0:
      raise ValueError(f'dropout rate is the drop probability, in [0, 1): {rate}.')
    self.rate = float(rate)
    self.seed = int(random.randrange(2**31) if seed is None else seed)

  def build(self, input_shape):
    self.calls = self.add_weight(
        name='calls', shape=(), dtype=tf.int64, initializer='zeros', trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    super().build(input_shape)

  def call(self, inputs, training=None):
    if not training or self.rate == 0.0:
      return tf.identity(inputs)
    count = self.calls.assign_add(1)
    keep = tf.random.stateless_uniform(
        tf.shape(inputs), tf.stack([tf.constant(self.seed, tf.int64), count])) >= self.rate
    scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
    return tf.where(keep, inputs * scale, tf.zeros_like(inputs))

  def get_config(self):
    config = super().get_config()
    config.update(rate=self.rate, seed=self.seed)
    return config


def _dense(units, max_norm, name, dtype=None):
  return layers.Dense(units, kernel_initializer='he_normal',
                      kernel_constraint=tf.keras.constraints.MaxNorm(max_norm),
                      dtype=dtype, name=name)


def _dense_bn_relu_dropout(x, units, dropout_rate, max_norm, name):
  x = _dense(units, max_norm, f'{name}_dense')(x)
  x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'{name}_bn')(x)
  x = layers.ReLU(name=f'{name}_relu')(x)
  return CountedDropout(dropout_rate, name=f'{name}_dropout')(x)


def build_regressor(input_dim, *, hidden=1024, blocks=2, dropout_rate=0.5, max_norm=1.0,
                    num_joints=skeleton.NUM_JOINTS, name='regressor'):
  """The lifting regressor as one Keras functional model.

  Args:
    input_dim: length of the flat raw input vector.
    hidden: units of every hidden Dense layer.
    blocks: number of residual blocks (two Dense layers each).
    dropout_rate: probability of dropping a unit in training (0 disables dropout).
    max_norm: max-norm bound on every Dense kernel column.
    num_joints: joints of the output pose.
    name: model name; every layer's name starts with it.

  Returns:
    A model from raw [B, input_dim] float32 to raw [B, num_joints, 3] float32 (mm,
    root-relative once trained on root-relative targets). Layers
    `{name}_normalise` (a `Normalise`, the first after the input) and
    `{name}_denormalise` (a `Denormalise`, the last) hold the normalisation statistics.
  """
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError(f'dropout_rate is the drop probability, in [0, 1): {dropout_rate}.')
  inputs = layers.Input((input_dim,), dtype=tf.float32, name=f'{name}_input')
  x = Normalise(name=f'{name}_normalise')(inputs)
  x = _dense_bn_relu_dropout(x, hidden, dropout_rate, max_norm, f'{name}_in')
  for b in range(blocks):
    y = x
    for k in range(2):
      y = _dense_bn_relu_dropout(y, hidden, dropout_rate, max_norm,
                                 f'{name}_block{b}_{k}')
    x = layers.Add(name=f'{name}_block{b}_add')([x, y])
  x = _dense(num_joints * 3, max_norm, f'{name}_out', dtype='float32')(x)
  outputs = Denormalise(num_joints, name=f'{name}_denormalise')(x)
  return tf.keras.Model(inputs, outputs, name=name)


def _find_layer(model, layer_type):
  found = [layer for layer in model.layers if isinstance(layer, layer_type)]
  if len(found) != 1:
    raise ValueError(f'model {model.name} has {len(found)} {layer_type.__name__} layers; '
                     'expected one (build it with build_regressor).')
  return found[0]


def normalise_layer(model):
  """The `Normalise` layer of a regressor."""
  return _find_layer(model, Normalise)


def denormalise_layer(model):
  """The `Denormalise` layer of a regressor."""
  return _find_layer(model, Denormalise)


def normalisation_stats(inputs, targets):
  """Training-split statistics: (input_mean, input_std, target_mean, target_std).

  inputs: [N, D]; targets: [N, J, 3] or [N, J * 3]. Means and (population) standard
  deviations over the N examples, computed in float64, returned as float32 flat arrays.
  """
  inputs = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
  targets = np.asarray(targets, np.float64).reshape(len(targets), -1)
  return tuple(a.astype(np.float32) for a in (
      inputs.mean(0), inputs.std(0), targets.mean(0), targets.std(0)))


def set_normalisation(model, input_mean, input_std, target_mean, target_std,
                      floor=STD_FLOOR):
  """Stores normalisation statistics in a regressor's layers (std floored by `safe_std`).

  Target statistics may be [J, 3] or [J * 3].
  """
  norm, denorm = normalise_layer(model), denormalise_layer(model)
  values = [
      (norm.mean, input_mean), (norm.std, safe_std(input_std, floor)),
      (denorm.mean, target_mean), (denorm.std, safe_std(target_std, floor))]
  for variable, value in values:
    value = np.asarray(value, np.float32).reshape(-1)
    if value.shape != tuple(variable.shape):
      raise ValueError(f'{variable.name}: expected shape {tuple(variable.shape)}, '
                       f'got {value.shape}.')
    variable.assign(value)


def regressor_optimizer(learning_rate=1e-3, decay_steps=100000, decay_rate=0.96,
                        adam=optimizers.FusedAdam):
  """Adam (the class `adam`: fused by default, tf.keras.optimizers.Adam to compare) with
  learning rate `learning_rate * decay_rate ** (step / decay_steps)`."""
  schedule = tf.keras.optimizers.schedules.ExponentialDecay(
      learning_rate, decay_steps=decay_steps, decay_rate=decay_rate, staircase=False)
  return adam(schedule)

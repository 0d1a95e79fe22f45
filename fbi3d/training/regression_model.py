"""A Keras model that trains a lifting regressor with the weighted regression loss
(`fbi3d.losses.weighted_loss`, whose docstring gives the formula), and the callback
that moves its alpha from epoch to epoch.

`WeightedRegressionModel` wraps a regressor from `fbi3d.models.regressor` and trains it
on (raw inputs, raw targets in mm) with that loss (or plain L2). Its alpha state lives
in variables: `mean_l0` (the previous epoch's mean L0, 0 before the first epoch ends)
and the running sum and count of this epoch's L0. The `UpdateAlpha` callback folds the
running mean into `mean_l0` at the end of each epoch. Being variables of the model, they
are saved in its checkpoints, and a resumed run continues with the same alpha.
"""

import tensorflow as tf

from fbi3d import losses as losses_lib
from fbi3d import metrics as metrics_lib
from fbi3d.models import regressor as regressor_lib


class WeightedRegressionModel(tf.keras.Model):
  """Trains a regressor on (raw inputs [B, D], raw targets [B, J, 3] mm) batches.

  L0 is computed in the regressor's normalised target space (its `Denormalise` layer's
  statistics); the loss is the weighted regression loss ('weighted'), mean L0 ('l2') or
  the mean joint distance in the raw output's mm, over `losses.JOINT_LOSS_UNIT_MM`
  ('joint').
  Tracks `loss`, `l0` and `mpjpe_mm` (root-aligned, from the raw output) with
  keras.metrics.Mean; train steps also report the current `mean_l0` (1 - alpha).
  Train steps add their L0 values to the epoch's running sum and count; test steps do
  not. Fit with the `UpdateAlpha` callback. Calling the model calls the regressor.
  """

  def __init__(self, network, loss='weighted', eps=losses_lib.DEFAULT_EPS,
               max_exponent=losses_lib.DEFAULT_MAX_EXPONENT, **kwargs):
    kwargs.setdefault('name', f'{network.name}_training')
    super().__init__(**kwargs)
    if loss not in losses_lib.LOSSES:
      raise ValueError(f'unknown loss {loss!r}; expected one of {losses_lib.LOSSES}.')
    self.network = network
    self.loss_kind = loss
    self.eps = float(eps)
    self.max_exponent = float(max_exponent)
    self._denormalise = regressor_lib.denormalise_layer(network)
    self._normalised_network = tf.keras.Model(
        network.inputs, self._denormalise.input, name=f'{network.name}_normalised')
    self.mean_l0 = self.add_weight(name='mean_l0', shape=(), initializer='zeros',
                                   trainable=False, dtype=tf.float32)
    on_read = dict(trainable=False, dtype=tf.float32, initializer='zeros',
                   synchronization=tf.VariableSynchronization.ON_READ,
                   aggregation=tf.VariableAggregation.SUM)
    self.epoch_l0_sum = self.add_weight(name='epoch_l0_sum', shape=(), **on_read)
    self.epoch_l0_count = self.add_weight(name='epoch_l0_count', shape=(), **on_read)
    self._loss_tracker = tf.keras.metrics.Mean(name='loss')
    self._l0_tracker = tf.keras.metrics.Mean(name='l0')
    self._mpjpe_tracker = tf.keras.metrics.Mean(name='mpjpe_mm')

  @property
  def metrics(self):
    return [self._loss_tracker, self._l0_tracker, self._mpjpe_tracker]

  def call(self, inputs, training=False):
    return self.network(inputs, training=training)

  def _forward(self, inputs, targets, training):
    normalised = self._normalised_network(inputs, training=training)
    l0 = losses_lib.l0_per_example(normalised, self._denormalise.normalise(targets))
    pred = self._denormalise(normalised)
    if self.loss_kind == 'weighted':
      loss = losses_lib.weighted_loss(l0, self.mean_l0, self.eps, self.max_exponent)
    elif self.loss_kind == 'joint':
      loss = tf.reduce_mean(losses_lib.joint_distance_per_example(
          pred, targets)) / losses_lib.JOINT_LOSS_UNIT_MM
    else:
      loss = tf.reduce_mean(l0)
    return pred, l0, loss

  def _record(self, pred, targets, l0, loss):
    targets = tf.reshape(tf.cast(targets, tf.float32), tf.shape(pred))
    self._loss_tracker.update_state(loss)
    self._l0_tracker.update_state(tf.reduce_mean(l0))
    self._mpjpe_tracker.update_state(metrics_lib.mpjpe_tensor(pred, targets))
    return {m.name: m.result() for m in self.metrics}

  def train_step(self, data):
    inputs, targets = data[0], data[1]
    with tf.GradientTape() as tape:
      pred, l0, loss = self._forward(inputs, targets, training=True)
      scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
    variables = self.network.trainable_variables
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    self.epoch_l0_sum.assign_add(tf.reduce_sum(l0))
    self.epoch_l0_count.assign_add(tf.cast(tf.size(l0), tf.float32))
    logs = self._record(pred, targets, l0, loss)
    logs['mean_l0'] = tf.identity(self.mean_l0)
    return logs

  def test_step(self, data):
    inputs, targets = data[0], data[1]
    pred, l0, loss = self._forward(inputs, targets, training=False)
    return self._record(pred, targets, l0, loss)

  def fold_epoch_l0(self):
    """Sets `mean_l0` to this epoch's running mean L0 and resets the running sums.

    Does nothing when no train step ran since the last fold. Returns `mean_l0` (float).
    """
    count = float(self.epoch_l0_count.numpy())
    if count > 0:
      self.mean_l0.assign(float(self.epoch_l0_sum.numpy()) / count)
      self.epoch_l0_sum.assign(0.0)
      self.epoch_l0_count.assign(0.0)
    return float(self.mean_l0.numpy())


class UpdateAlpha(tf.keras.callbacks.Callback):
  """At each epoch end, 1 - alpha := the mean L0 of the epoch's train steps.

  Folds the running sums of a `WeightedRegressionModel` (the model being fit, or the
  one given) into its `mean_l0`, and adds `mean_l0` to the epoch's logs. Put it before
  any callback that saves a checkpoint at epoch end, so the checkpoint holds the new
  alpha. A checkpoint saved before the fold is handled too: the fold then happens at the
  start of the resumed run's first epoch, from the restored running sums.
  """

  def __init__(self, model=None):
    super().__init__()
    self._target = model

  def _weighted_model(self):
    model = self._target if self._target is not None else self.model
    if not isinstance(model, WeightedRegressionModel):
      raise TypeError('UpdateAlpha needs a WeightedRegressionModel, got '
                      f'{type(model).__name__}.')
    return model

  def on_epoch_begin(self, epoch, logs=None):
    self._weighted_model().fold_epoch_l0()

  def on_epoch_end(self, epoch, logs=None):
    value = self._weighted_model().fold_epoch_l0()
    if logs is not None:
      logs['mean_l0'] = value


def compile_on_arrays(network, inputs, targets, loss, optimizer):
  """The training model of a regressor `network` on arrays: the network given the
  normalisation statistics of (inputs [N, D], targets [N, 17, 3]), inside a
  `WeightedRegressionModel` with `loss`, compiled with `optimizer`. The lifter's
  training path (fbi3d.lifter), shared by tools/mocap_lifting.py and the regressor
  benchmark; the base and refine phases make the same steps apart, through the task
  protocol (normalisation in load_predecessors, the model in build_training)."""
  regressor_lib.set_normalisation(network, *regressor_lib.normalisation_stats(inputs,
                                                                              targets))
  model = WeightedRegressionModel(network, loss=loss)
  model.compile(optimizer=optimizer)
  return model

"""The weighted regression loss of the lifting regressor, and a Keras model that trains
with it.

    Loss = L0 + eps * L1,   L1 = (L0 + alpha)^2 * L0 * exp(L0 / (1 - alpha)),

averaged over the batch, with
  - L0 the per-example L2 loss: the mean of the squared differences between prediction
    and target over the J * 3 = 51 coordinates, in the regressor's NORMALISED target
    space (target minus the training mean, divided by the training std), as Martinez et
    al.'s L2 loss is;
  - 1 - alpha the mean of L0 over the training set, taken from the previous epoch (the
    running mean of the L0 values the train steps of that epoch computed); the first
    epoch, which has no previous mean, trains on L0 alone;
  - eps = 0.001.
Examples much harder than the average (L0 well above 1 - alpha) weigh exponentially
more. The formula is our reading of the paper: its typesetting of L1 is garbled in text
extraction, and this is the reading that keeps every term well defined.

exp() overflows float32 near 88 (and bfloat16 likewise), and an outlier example (a bad
label, a failed 2D detection) can have L0 hundreds of times the mean. The exponent
L0 / (1 - alpha) is therefore capped at `max_exponent`. The default, 5, keeps the
emphasis bounded: an example five or more times worse than average gets exp(5) = 148
times the exponential factor of an average one. Measured on the quickstart's cached
features (2000 training examples, dropout 0.5, per-example L0 heavy-tailed), a cap of 20
let single examples swamp the batch gradient and the regressor diverged (Base on
ground-truth 2D: 345 mm MPJPE against 86 mm with L2), while caps of 2 and 5 trained like
L2 (86 mm). The polynomial factor is not capped; it stays finite in float32 for L0 below
about 1e12 (normalised units, where L0 is O(1)).

`WeightedRegressionModel` wraps a regressor from `fbi3d.models.regressor` and trains it
on (raw inputs, raw targets in mm) with this loss (or plain L2). Its alpha state lives in
variables: `mean_l0` (the previous epoch's mean L0, 0 before the first epoch ends) and
the running sum and count of this epoch's L0. The `UpdateAlpha` callback folds the
running mean into `mean_l0` at the end of each epoch. Being variables of the model, they
are saved in its checkpoints, and a resumed run continues with the same alpha.
"""

import tensorflow as tf

from fbi3d.models import regressor as regressor_lib

DEFAULT_EPS = 0.001
DEFAULT_MAX_EXPONENT = 5.0
LOSSES = ('weighted', 'l2')


def l0_per_example(pred, target):
  """Per-example L2 loss: mean over all non-batch axes of (pred - target)^2. -> [B]."""
  pred = tf.cast(pred, tf.float32)
  target = tf.cast(target, tf.float32)
  sq = tf.square(pred - target)
  batch = tf.shape(sq)[0]
  return tf.reduce_mean(tf.reshape(sq, [batch, -1]), axis=-1)


def weighted_loss(l0, mean_l0, eps=DEFAULT_EPS, max_exponent=DEFAULT_MAX_EXPONENT):
  """Batch mean of L0 + eps * L1 (module docstring) from per-example L0 [B].

  Args:
    l0: per-example L2 losses [B].
    mean_l0: 1 - alpha, the previous epoch's mean L0: a Python number, a scalar tensor
      or variable, or None. None or a value <= 0 is the first-epoch case, where the loss
      is mean(L0).
    eps: weight of L1.
    max_exponent: cap on the exponent L0 / (1 - alpha) (module docstring).

  Returns:
    Scalar float32.
  """
  l0 = tf.cast(l0, tf.float32)
  plain = tf.reduce_mean(l0)
  if mean_l0 is None:
    return plain
  mean_l0 = tf.cast(mean_l0, tf.float32)
  warm = mean_l0 > 0.0
  # A safe 1 - alpha in both branches, so the unused one is finite and so is its gradient.
  one_minus_alpha = tf.where(warm, mean_l0, 1.0)
  alpha = 1.0 - one_minus_alpha
  exponent = tf.minimum(l0 / one_minus_alpha, max_exponent)
  l1 = tf.square(l0 + alpha) * l0 * tf.exp(exponent)
  return tf.where(warm, tf.reduce_mean(l0 + eps * l1), plain)


def mpjpe_mm(pred, target):
  """Protocol-1 MPJPE of [B, J, 3] poses (root joints aligned), in their unit. Scalar."""
  pred = tf.cast(pred, tf.float32)
  target = tf.cast(target, tf.float32)
  pred = pred - pred[:, :1]
  target = target - target[:, :1]
  return tf.reduce_mean(tf.norm(pred - target, axis=-1))


class WeightedRegressionModel(tf.keras.Model):
  """Trains a regressor on (raw inputs [B, D], raw targets [B, J, 3] mm) batches.

  L0 is computed in the regressor's normalised target space (its `Denormalise` layer's
  statistics); the loss is the weighted regression loss ('weighted') or mean L0 ('l2').
  Tracks `loss`, `l0` and `mpjpe_mm` (root-aligned, from the raw output) with
  keras.metrics.Mean; train steps also report the current `mean_l0` (1 - alpha).
  Train steps add their L0 values to the epoch's running sum and count; test steps do
  not. Fit with the `UpdateAlpha` callback. Calling the model calls the regressor.
  """

  def __init__(self, network, loss='weighted', eps=DEFAULT_EPS,
               max_exponent=DEFAULT_MAX_EXPONENT, **kwargs):
    kwargs.setdefault('name', f'{network.name}_training')
    super().__init__(**kwargs)
    if loss not in LOSSES:
      raise ValueError(f'unknown loss {loss!r}; expected one of {LOSSES}.')
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
    l0 = l0_per_example(normalised, self._denormalise.normalise(targets))
    if self.loss_kind == 'weighted':
      loss = weighted_loss(l0, self.mean_l0, self.eps, self.max_exponent)
    else:
      loss = tf.reduce_mean(l0)
    return self._denormalise(normalised), l0, loss

  def _record(self, pred, targets, l0, loss):
    targets = tf.reshape(tf.cast(targets, tf.float32), tf.shape(pred))
    self._loss_tracker.update_state(loss)
    self._l0_tracker.update_state(tf.reduce_mean(l0))
    self._mpjpe_tracker.update_state(mpjpe_mm(pred, targets))
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

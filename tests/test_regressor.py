"""Tests of the lifting regressor and the weighted regression loss: exact values."""

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import keys
from fbi3d import losses
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.models import regressor
from fbi3d.training import regression_model

TINY = dict(hidden=16, blocks=2)


def _dense_kernels(model):
  return [layer.kernel for layer in model.layers
          if isinstance(layer, tf.keras.layers.Dense)]


@pytest.mark.parametrize('input_dim', [34, 34 + 51 + 42])
def test_output_shape(input_dim):
  model = regressor.build_regressor(input_dim, **TINY)
  out = model(np.random.rand(3, input_dim).astype(np.float32))
  assert out.shape == (3, skeleton.NUM_JOINTS, 3)
  assert out.dtype == tf.float32
  assert isinstance(model.layers[1], regressor.Normalise)
  assert isinstance(model.layers[-1], regressor.Denormalise)
  # Input, first Dense, 2 blocks x 2 Dense and the output Dense: 6 kernels.
  assert len(_dense_kernels(model)) == 6


def test_dropout_rate_is_the_drop_probability():
  x = np.random.default_rng(0).normal(size=(8, 34)).astype(np.float32)
  model = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  # BatchNormalization differs between modes; compare the modes of the Dropout alone.
  no_drop = model.get_layer('regressor_in_dropout')
  np.testing.assert_array_equal(no_drop(x, training=True).numpy(), x)
  model = regressor.build_regressor(34, dropout_rate=0.5, **TINY)
  drop = model.get_layer('regressor_in_dropout')
  assert drop.rate == 0.5
  ones = np.ones((64, 256), np.float32)
  out = drop(ones, training=True).numpy()
  # Which units drop is random (16384 draws: the fraction is 0.5 +- 0.004); the kept ones
  # are scaled by exactly 1 / (1 - 0.5).
  assert 0.4 < np.mean(out == 0.0) < 0.6
  np.testing.assert_array_equal(np.unique(out), [0.0, 2.0])
  np.testing.assert_array_equal(drop(ones, training=False).numpy(), ones)
  # Whole model, rate 0: with the BN statistics frozen, training and inference agree.
  model = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  for layer in model.layers:
    if isinstance(layer, tf.keras.layers.BatchNormalization):
      layer.trainable = False
  np.testing.assert_allclose(model(x, training=True).numpy(),
                             model(x, training=False).numpy(), rtol=1e-6, atol=1e-6)
  # Rate 0.5, BN frozen likewise: dropout alone changes nearly every output.
  model = regressor.build_regressor(34, dropout_rate=0.5, **TINY)
  for layer in model.layers:
    if isinstance(layer, tf.keras.layers.BatchNormalization):
      layer.trainable = False
  changed = model(x, training=True).numpy() != model(x, training=False).numpy()
  assert changed.mean() > 0.9
  with pytest.raises(ValueError, match='drop probability'):
    regressor.build_regressor(34, dropout_rate=1.0)


def test_max_norm_holds_after_a_large_step():
  model = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  rng = np.random.default_rng(1)
  x = rng.normal(size=(16, 34)).astype(np.float32)
  y = 1000.0 * rng.normal(size=(16, 17, 3)).astype(np.float32)
  optimizer = tf.keras.optimizers.SGD(100.0)
  # He initialisation starts above the bound, so the step must enforce it.
  assert max(np.linalg.norm(k.numpy(), axis=0).max() for k in _dense_kernels(model)) > 1.0
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
  grads = tape.gradient(loss, model.trainable_variables)
  optimizer.apply_gradients(zip(grads, model.trainable_variables))
  for kernel in _dense_kernels(model):
    norms = np.linalg.norm(kernel.numpy(), axis=0)
    assert np.all(norms <= 1.0 + 1e-6), kernel.name


def test_normalisation_exact_and_stored_in_checkpoint(tmp_path):
  rng = np.random.default_rng(2)
  input_mean = rng.normal(size=34).astype(np.float32) * 100.0
  input_std = rng.uniform(1.0, 50.0, size=34).astype(np.float32)
  input_std[0] = 0.0                       # a constant feature: only centred
  target_mean = rng.normal(size=(17, 3)).astype(np.float32) * 100.0
  target_std = rng.uniform(10.0, 300.0, size=(17, 3)).astype(np.float32)
  target_std[0] = 0.0                      # the root joint is always 0
  model = regressor.build_regressor(34, **TINY)
  regressor.set_normalisation(model, input_mean, input_std, target_mean, target_std)

  norm = regressor.normalise_layer(model)
  denorm = regressor.denormalise_layer(model)
  raw = input_mean[None].copy()
  raw[0, 1] += 2.0 * input_std[1]
  raw[0, 0] += 3.0
  expected = np.zeros((1, 34), np.float32)
  expected[0, 1] = 2.0
  expected[0, 0] = 3.0                     # std 0 is stored as 1
  np.testing.assert_allclose(norm(raw).numpy(), expected, atol=1e-5)
  np.testing.assert_array_equal(norm.std.numpy()[0], 1.0)
  # Normalised output 0 is the target mean; 1 is mean + std.
  np.testing.assert_allclose(denorm(np.zeros((1, 51), np.float32)).numpy()[0], target_mean)
  expected_one = target_mean + np.where(target_std == 0.0, 1.0, target_std)
  np.testing.assert_allclose(denorm(np.ones((1, 51), np.float32)).numpy()[0],
                             expected_one, rtol=1e-6)
  np.testing.assert_allclose(denorm.normalise(expected_one[None]).numpy(),
                             np.ones((1, 51)), rtol=1e-5)
  # With every Dense weight 0 but the output bias b, the output is mean + b * std.
  zeroed = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  regressor.set_normalisation(zeroed, input_mean, input_std, target_mean, target_std)
  for layer in zeroed.layers:
    if isinstance(layer, tf.keras.layers.Dense):
      layer.kernel.assign(tf.zeros_like(layer.kernel))
      layer.bias.assign(tf.zeros_like(layer.bias))
  zeroed.get_layer('regressor_out').bias.assign(np.full(51, 0.5, np.float32))
  np.testing.assert_allclose(zeroed(raw).numpy()[0],
                             target_mean + 0.5 * np.where(target_std == 0, 1.0, target_std),
                             rtol=1e-6)

  x = rng.normal(size=(4, 34)).astype(np.float32) * 50.0
  before = model(x).numpy()
  path = tf.train.Checkpoint(network=model).save(str(tmp_path / 'ckpt'))
  fresh = regressor.build_regressor(34, **TINY)
  tf.train.Checkpoint(network=fresh).restore(path).assert_consumed()
  np.testing.assert_array_equal(fresh(x).numpy(), before)
  np.testing.assert_array_equal(regressor.denormalise_layer(fresh).mean.numpy(),
                                target_mean.reshape(-1))


def test_normalisation_stats():
  inputs = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
  targets = np.zeros((2, 17, 3), np.float32)
  targets[1, 2, 0] = 4.0
  in_mean, in_std, t_mean, t_std = regressor.normalisation_stats(inputs, targets)
  np.testing.assert_array_equal(in_mean, [2.0, 5.0])
  np.testing.assert_array_equal(in_std, [1.0, 0.0])
  assert t_mean.shape == (51,) and t_mean[6] == 2.0 and t_std[6] == 2.0


def test_optimizer_decay():
  optimizer = regressor.regressor_optimizer()
  variable = tf.Variable(1.0)
  optimizer.iterations.assign(100000)
  optimizer.apply_gradients([(tf.constant(0.0), variable)])
  # The rate is evaluated at the step's iteration: 1e-3 * 0.96 ** (100000 / 100000).
  assert float(optimizer.learning_rate) == pytest.approx(1e-3 * 0.96, rel=1e-6)


def _diffs_giving(squares):
  """A [17, 3] difference whose squared entries are `squares` followed by zeros."""
  d = np.zeros(51, np.float32)
  d[:len(squares)] = np.sqrt(squares)
  return d.reshape(17, 3)


def test_l0_and_weighted_loss_exact():
  # Squared differences summing to 25.5, 51 and 102 over 51 values: L0 = 0.5, 1, 2.
  diff = np.stack([_diffs_giving([25.0, 0.25, 0.25]), _diffs_giving([49.0, 1.0, 1.0]),
                   _diffs_giving([100.0, 1.0, 1.0])])
  target = np.random.default_rng(3).normal(size=(3, 17, 3)).astype(np.float32)
  l0 = losses.l0_per_example(target + diff, target)
  np.testing.assert_allclose(l0.numpy(), [0.5, 1.0, 2.0], rtol=1e-5)
  l0 = np.array([0.5, 1.0, 2.0], np.float32)
  # mean_l0 = 1, so alpha = 0 and L1 = L0^3 * exp(L0):
  #   0.125 * e^0.5 = 0.2060901588, 1 * e = 2.7182818285, 8 * e^2 = 59.1124487914;
  # loss = (3.5 + 0.001 * 62.0368207787) / 3 = 1.1873456069.
  value = losses.weighted_loss(l0, 1.0)
  assert float(value) == pytest.approx(1.1873456069, rel=1e-6)
  # mean_l0 = 0.5, alpha = 0.5, L0 = 1: L1 = 1.5^2 * 1 * e^2 = 16.6253762,
  # loss = 1 + 0.0166253762 = 1.0166253762.
  value = losses.weighted_loss([1.0], 0.5)
  assert float(value) == pytest.approx(1.0166253762, rel=1e-6)
  # The same with the mean in a variable, as the training model holds it.
  value = losses.weighted_loss([1.0], tf.Variable(0.5))
  assert float(value) == pytest.approx(1.0166253762, rel=1e-6)


def test_first_epoch_is_plain_l0():
  l0 = np.array([0.5, 1.0, 2.0], np.float32)
  for mean_l0 in (None, 0.0, tf.Variable(0.0)):
    assert float(losses.weighted_loss(l0, mean_l0)) == pytest.approx(3.5 / 3)


def test_exponent_is_capped():
  # L0 = 1000 with mean_l0 = 1: exponent 1000 capped at 20, alpha = 0,
  # loss = 1000 + 0.001 * 1000^3 * e^20 = 1000 + 1e6 * 485165195.4097903.
  value = losses.weighted_loss([1000.0], 1.0, max_exponent=20.0)
  assert np.isfinite(float(value))
  assert float(value) == pytest.approx(485165195410790.25, rel=1e-6)
  with tf.GradientTape() as tape:
    l0 = tf.constant([1000.0, 0.5])
    tape.watch(l0)
    value = losses.weighted_loss(l0, 1.0)
  # d/dL0 of the mean over 2 of L0 + 0.001 L0^3 e^min(L0, 5): past the cap the exponent
  # is a constant, (1 + 0.001 * 3 * 1000^2 * e^5) / 2 = 222620.2387; below it
  # (1 + 0.001 * (3 * 0.5^2 + 0.5^3) * e^0.5) / 2 = 0.5007213156.
  np.testing.assert_allclose(
      tape.gradient(value, l0).numpy(),
      [(1 + 0.001 * 3e6 * np.exp(5.0)) / 2, (1 + 0.001 * 0.875 * np.exp(0.5)) / 2], rtol=1e-6)
  # The first-epoch branch never sees 0 / 0 in its gradient either.
  with tf.GradientTape() as tape:
    l0 = tf.constant([0.0, 0.5])
    tape.watch(l0)
    value = losses.weighted_loss(l0, tf.constant(0.0))
  np.testing.assert_allclose(tape.gradient(value, l0).numpy(), [0.5, 0.5])


class _RecordL0(tf.keras.callbacks.Callback):
  """Before every train step, computes the batch's per-example L0 and MPJPE (mm)
  independently."""

  def __init__(self, network, inputs, targets, batch_size, target_mean, target_std):
    super().__init__()
    self.network = network
    self.inputs = inputs
    self.targets = targets.reshape(len(targets), -1).astype(np.float64)
    self.batch_size = batch_size
    self.target_mean = target_mean.astype(np.float64)
    self.target_std = target_std.astype(np.float64)
    self.epochs = []
    self.mpjpe = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append([])
    self.mpjpe.append([])

  def on_train_batch_begin(self, batch, logs=None):
    s = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
    # Dropout 0 and batch statistics in training mode: the train step's forward pass.
    pred = self.network(self.inputs[s], training=True).numpy().reshape(-1, 51)
    pred_n = (pred.astype(np.float64) - self.target_mean) / self.target_std
    target_n = (self.targets[s] - self.target_mean) / self.target_std
    self.epochs[-1].extend(np.mean((pred_n - target_n) ** 2, axis=1))
    pred, target = pred.reshape(-1, 17, 3), self.targets[s].reshape(-1, 17, 3)
    error = (pred - pred[:, :1]) - (target - target[:, :1])
    self.mpjpe[-1].extend(np.linalg.norm(error, axis=-1).mean(axis=1))


@pytest.mark.slow
def test_alpha_updates_from_the_epoch_mean(tmp_path):
  tf.keras.utils.set_random_seed(4)
  rng = np.random.default_rng(4)
  inputs = rng.normal(size=(24, 34)).astype(np.float32) * 20.0
  targets = rng.normal(size=(24, 17, 3)).astype(np.float32) * 200.0
  stats = regressor.normalisation_stats(inputs, targets)
  network = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  regressor.set_normalisation(network, *stats)
  model = regression_model.WeightedRegressionModel(network)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
  record = _RecordL0(network, inputs, targets, 8, stats[2], stats[3])
  history = model.fit(inputs, targets, batch_size=8, epochs=2, shuffle=False, verbose=0,
                      callbacks=[record, regression_model.UpdateAlpha()])
  epoch1, epoch2 = np.array(record.epochs[0]), np.array(record.epochs[1])
  assert len(epoch1) == len(epoch2) == 24
  assert abs(epoch1.mean() - epoch2.mean()) > 1e-2    # the two epochs are told apart
  # Epoch 1 trains on L0 alone; its mean L0 becomes 1 - alpha for epoch 2.
  assert history.history['loss'][0] == pytest.approx(history.history['l0'][0], rel=1e-6)
  assert history.history['mean_l0'][0] == pytest.approx(epoch1.mean(), abs=1e-5)
  batch_losses = [float(losses.weighted_loss(b, epoch1.mean()))
                  for b in epoch2.reshape(3, 8)]
  assert history.history['loss'][1] == pytest.approx(np.mean(batch_losses), rel=1e-5)
  assert float(model.mean_l0) == pytest.approx(epoch2.mean(), abs=1e-5)
  assert float(model.epoch_l0_count) == 0.0 and float(model.epoch_l0_sum) == 0.0
  # Batches of equal size: the epoch's mean of batch MPJPEs is the mean over examples.
  assert history.history['mpjpe_mm'][1] == pytest.approx(np.mean(record.mpjpe[1]), rel=1e-5)

  # The alpha state is in the checkpoint: a resumed run continues with it.
  path = tf.train.Checkpoint(model=model).save(str(tmp_path / 'ckpt'))
  fresh_network = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  fresh = regression_model.WeightedRegressionModel(fresh_network)
  tf.train.Checkpoint(model=fresh).restore(path).expect_partial()
  assert float(fresh.mean_l0) == float(model.mean_l0)
  np.testing.assert_array_equal(fresh(inputs[:2]).numpy(), model(inputs[:2]).numpy())


def test_l2_loss_ignores_alpha():
  network = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  model = regression_model.WeightedRegressionModel(network, loss='l2')
  model.mean_l0.assign(0.01)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  x = np.ones((4, 34), np.float32)
  y = np.full((4, 17, 3), 3.0, np.float32)
  logs = model.evaluate(x, y, verbose=0, return_dict=True)
  assert logs['loss'] == pytest.approx(logs['l0'], rel=1e-6)
  with pytest.raises(ValueError, match='unknown loss'):
    regression_model.WeightedRegressionModel(network, loss='l1')


def test_joint_loss_is_the_mean_joint_distance_in_units_of_100_mm():
  tf.keras.utils.set_random_seed(2)
  network = regressor.build_regressor(34, dropout_rate=0.0, **TINY)
  model = regression_model.WeightedRegressionModel(network, loss='joint')
  model.mean_l0.assign(0.01)          # alpha plays no part
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  x = np.linspace(-1.0, 1.0, 4 * 34, dtype=np.float32).reshape(4, 34)
  y = np.full((4, 17, 3), 30.0, np.float32)
  pred = network(x).numpy().reshape(4, 17, 3)
  expected = np.linalg.norm(pred - y, axis=-1).mean() / 100.0
  logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
  assert logs['loss'] == pytest.approx(expected, rel=1e-5)
  assert logs['loss'] != pytest.approx(logs['l0'], rel=1e-2)


def test_the_regressor_loss_flag_offers_every_loss():
  from fbi3d.training import config  # pylint: disable=g-import-not-at-top
  assert tuple(config.CHOICES['regressor_loss']) == losses.LOSSES


def test_ray_frame_targets_and_predictions_round_trip():
  from fbi3d import geometry  # pylint: disable=g-import-not-at-top
  from fbi3d.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from fbi3d.training import regressor as regressor_phase  # pylint: disable=g-import-not-at-top
  # Two examples: one 0.3 focal lengths right of the principal point, one on it.
  cache = dict(crop_box=np.array([[700.0, 400.0, 200.0], [400.0, 400.0, 200.0]]),
               intrinsics=np.array([[1000.0, 1000.0, 500.0, 500.0]] * 2))
  targets = np.random.default_rng(1).normal(size=(2, 17, 3)).astype(np.float32) * 100.0
  inputs = np.zeros((2, 34), np.float32)
  rotations = geometry.ray_rotations(cache['crop_box'], cache['intrinsics'])
  for frame in ('camera', 'ray'):
    task = regressor_phase.RegressorTask(
        config_lib.make(regressor_frame=frame), 'base')
    task._arrays[('train', True)] = (inputs, targets, cache)  # pylint: disable=protected-access
    _, fitted = task.fit_targets('train')
    expected = targets if frame == 'camera' else geometry.to_ray_frame(targets, rotations)
    np.testing.assert_allclose(fitted, expected, atol=1e-4)
    # A network that outputs exactly the fitted targets predicts the camera-frame truth.
    pred = task.predict(lambda x, training=False: tf.constant(fitted), inputs, cache)
    np.testing.assert_allclose(pred, targets, atol=1e-3)
  # The ray frame differs from the camera frame for the off-axis example only.
  assert np.abs(geometry.to_ray_frame(targets, rotations)[0] - targets[0]).max() > 1.0
  np.testing.assert_allclose(geometry.to_ray_frame(targets, rotations)[1], targets[1])


def test_regressor_mirror_doubles_the_training_examples_with_their_mirror_images():
  from fbi3d import flip_test  # pylint: disable=g-import-not-at-top
  from fbi3d.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from fbi3d.training import regressor as regressor_phase  # pylint: disable=g-import-not-at-top
  cache = dict(crop_box=np.array([[400.0, 400.0, 200.0]] * 3),
               intrinsics=np.array([[1000.0, 1000.0, 500.0, 500.0]] * 3))
  rng = np.random.default_rng(2)
  targets = rng.normal(size=(3, 17, 3)).astype(np.float32) * 100.0
  inputs = rng.uniform(0, 63, (3, 34)).astype(np.float32)
  task = regressor_phase.RegressorTask(
      config_lib.make(regressor_frame='ray', regressor_mirror=True, image_size=64,
                      regressor_batch_size=4), 'base')
  for split in ('train', 'val'):
    task._arrays[(split, True)] = (inputs, targets, cache)  # pylint: disable=protected-access
  fitted_in, fitted_out = task.fit_targets('train')
  assert fitted_in.shape == (6, 34) and fitted_out.shape == (6, 17, 3)
  # The crop centre is on the optical axis: the ray frame is the camera frame.
  np.testing.assert_allclose(fitted_out[:3], targets, atol=1e-4)
  np.testing.assert_allclose(fitted_in[3:], flip_test.mirror_regressor_inputs(
      inputs, ('2d',), 64))
  # Joint 1 (RHip) of a mirror is joint 4 (LHip) of the example with x negated; its 2D x
  # is 63 - that of LHip.
  np.testing.assert_allclose(fitted_out[3:, 1], targets[:, 4] * [-1.0, 1.0, 1.0], atol=1e-4)
  np.testing.assert_allclose(fitted_in[3:, 2], 63.0 - inputs[:, 8])
  assert task.steps_per_epoch(None) == 1 and task.batch_size == 4   # 6 examples
  # Val is measured as it is.
  assert task.fit_targets('val')[0].shape == (3, 34)


def test_regressor_mirror_average_predicts_the_mean_of_both_answers():
  from fbi3d.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from fbi3d.training import regressor as regressor_phase  # pylint: disable=g-import-not-at-top
  # A network whose joint j is (x of the 2D joint j, 0, 0). For the mirror image it says
  # 63 - x of j's twin, which mirrored back (twins exchanged, x negated) is x_j - 63: the
  # mean is x_j - 31.5.
  def network(x, training=False):
    del training
    xs = tf.convert_to_tensor(x)[:, 0::2]
    return tf.stack([xs, tf.zeros_like(xs), tf.zeros_like(xs)], -1)
  inputs = np.random.default_rng(3).uniform(0, 63, (2, 34)).astype(np.float32)
  cache = dict(crop_box=np.zeros((2, 3)), intrinsics=np.zeros((2, 4)))
  for average, shift in ((False, 0.0), (True, -31.5)):
    task = regressor_phase.RegressorTask(
        config_lib.make(image_size=64, regressor_mirror_average=average), 'base')
    pred = task.predict(network, inputs, cache)
    np.testing.assert_allclose(pred[..., 0], inputs[:, 0::2] + shift, atol=1e-4)
    np.testing.assert_array_equal(pred[..., 1:], 0.0)


def test_tracked_mpjpe_is_protocol_1():
  # The training logs' MPJPE (metrics.mpjpe_tensor) is metrics.mpjpe: root-aligned, the
  # mean over joints and poses.
  network = regressor.build_regressor(34, hidden=8, blocks=1)
  model = regression_model.WeightedRegressionModel(network, loss='l2')
  model.compile(optimizer='sgd')
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 34)).astype(np.float32)
  y = rng.normal(size=(4, 17, 3)).astype(np.float32) * 100.0
  logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
  expected = metrics.mpjpe(network(x, training=False).numpy(), y)
  assert logs['mpjpe_mm'] == pytest.approx(expected, rel=1e-6)


def test_regressor_input_layout():
  # Shape = [2, 17, 2], [2, 17, 3], [2, 14, 3]: flattened per example, in the order asked.
  two_d = np.arange(68, dtype=np.float32).reshape(2, 17, 2)
  coarse = 1000 + np.arange(102, dtype=np.float32).reshape(2, 17, 3)
  fbi = 2000 + np.arange(84, dtype=np.float32).reshape(2, 14, 3)
  parts = {keys.INPUT_2D: two_d, keys.INPUT_COARSE3D: coarse, keys.INPUT_FBI: fbi}
  final = keys.regressor_input(parts, keys.FINAL_INPUTS).numpy()
  assert final.shape == (2, keys.input_size(keys.FINAL_INPUTS)) == (2, 34 + 51 + 42)
  np.testing.assert_array_equal(final[1], np.concatenate(
      [two_d[1].ravel(), coarse[1].ravel(), fbi[1].ravel()]))
  base = keys.regressor_input(parts, keys.BASE_INPUTS).numpy()
  np.testing.assert_array_equal(base, two_d.reshape(2, 34))


def test_mpjpe_tensor_equals_mpjpe():
  # Shape = [2, 2, 3]: roots at different places; second joints off by 3 mm and, after root alignment, 4 mm.
  target = np.array([[[0, 0, 0], [0, 0, 100]], [[10, 10, 10], [10, 10, 110]]], np.float32)
  pred = target + np.array([[[0, 0, 0], [3, 0, 0]], [[5, 5, 5], [5, 9, 5]]], np.float32)
  assert float(metrics.mpjpe_tensor(pred, target)) == pytest.approx(1.75)
  assert metrics.mpjpe(pred, target) == pytest.approx(1.75)

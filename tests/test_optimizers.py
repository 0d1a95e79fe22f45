"""FusedAdam: Keras's Adam update, one kernel per variable; exact and equivalence tests."""

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import optimizers
from fbi3d.models import regressor
from fbi3d.training import regression_model


def test_one_step_by_hand():
  w = tf.Variable([1.0, -2.0])
  optimizer = optimizers.FusedAdam(0.1)
  optimizer.apply_gradients([(tf.constant([0.5, 0.0]), w)])
  # Step 1: m = (1 - 0.9) g, v = (1 - 0.999) g^2, alpha = 0.1 sqrt(1 - 0.999) / (1 - 0.9),
  # the kernel's 1 - beta taken in float32 (1 - 0.999 is then 0.00099998713).
  g = 0.5
  m = float(np.float32(1) - np.float32(0.9)) * g
  v = float(np.float32(1) - np.float32(0.999)) * g * g
  alpha = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
  expected = [1.0 - alpha * m / (np.sqrt(v) + 1e-7), -2.0]
  np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
  assert w.numpy()[1] == -2.0  # A zero gradient moves nothing at the first step.
  assert int(optimizer.iterations.numpy()) == 1
  np.testing.assert_allclose(optimizer.variables[1].numpy(), [m, 0.0], rtol=1e-6)
  np.testing.assert_allclose(optimizer.variables[2].numpy(), [v, 0.0], rtol=1e-6)


def _trained_regressor(optimizer, steps=6):
  """A small regressor after `steps` weighted-loss steps from a fixed start."""
  tf.keras.utils.set_random_seed(3)
  network = regressor.build_regressor(34, hidden=32, dropout_rate=0.5)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 34)).astype(np.float32)
  y = rng.normal(scale=100.0, size=(16, 17, 3)).astype(np.float32)
  regressor.set_normalisation(network, *regressor.normalisation_stats(x, y))
  model = regression_model.WeightedRegressionModel(network)
  model.compile(optimizer=optimizer)
  for step in range(steps):
    model.train_on_batch(x[step % 2::2], y[step % 2::2])
  return network, optimizer


@pytest.mark.slow
def test_training_matches_keras_adam():
  fused, fused_opt = _trained_regressor(optimizers.FusedAdam(0.01))
  keras, keras_opt = _trained_regressor(tf.keras.optimizers.Adam(0.01))
  assert [v.name for v in fused.variables] == [v.name for v in keras.variables]
  # A hidden Dense layer's bias feeds batch normalisation, which removes it: its
  # gradient is zero but for rounding, which Adam's division scales up to steps of the
  # learning rate in either optimizer, and the moving means follow those biases. Every
  # other weight agrees to float32 rounding.
  rounding_driven = ('_dense/bias', '/moving_mean')
  compared = 0
  for a, b in zip(fused.variables, keras.variables):
    if not any(part in a.name for part in rounding_driven):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=5e-6, err_msg=a.name)
      compared += 1
  assert compared == 31
  for a, b in zip(fused_opt.variables, keras_opt.variables):
    if not any(part in a.name for part in rounding_driven):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=2e-6, err_msg=a.name)
  x = np.random.default_rng(1).normal(size=(5, 34)).astype(np.float32)
  np.testing.assert_allclose(fused(x).numpy(), keras(x).numpy(), atol=0.2)  # mm
  # The kernels' max-norm constraint still holds after the fused updates.
  for layer in fused.layers:
    if isinstance(layer, tf.keras.layers.Dense):
      assert np.linalg.norm(layer.kernel.numpy(), axis=0).max() <= 1.0 + 1e-6


def test_checkpoints_interchange(tmp_path):
  w = tf.Variable([1.0, 2.0, 3.0])
  keras_opt = tf.keras.optimizers.Adam(0.1)
  for g in ([1.0, 0.5, -1.0], [0.2, 0.1, 0.3]):
    keras_opt.apply_gradients([(tf.constant(g), w)])
  path = tf.train.Checkpoint(w=w, optimizer=keras_opt).save(str(tmp_path / 'ckpt'))
  w2 = tf.Variable([0.0, 0.0, 0.0])
  fused_opt = optimizers.FusedAdam(0.1)
  fused_opt.build([w2])
  tf.train.Checkpoint(w=w2, optimizer=fused_opt).restore(path).assert_consumed()
  for a, b in zip(fused_opt.variables, keras_opt.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # And they go on alike.
  keras_opt.apply_gradients([(tf.constant([0.3, -0.2, 0.1]), w)])
  fused_opt.apply_gradients([(tf.constant([0.3, -0.2, 0.1]), w2)])
  np.testing.assert_allclose(w2.numpy(), w.numpy(), rtol=1e-6)


def test_sparse_gradients_take_keras_path():
  table = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2))
  reference = tf.Variable(table.numpy())
  grad = tf.IndexedSlices(tf.constant([[1.0, -1.0]]), tf.constant([1]), tf.constant([3, 2]))
  optimizers.FusedAdam(0.1).apply_gradients([(grad, table)])
  tf.keras.optimizers.Adam(0.1).apply_gradients([(grad, reference)])
  np.testing.assert_array_equal(table.numpy(), reference.numpy())
  assert table.numpy()[0].tolist() == [0.0, 1.0]  # Rows without a gradient do not move.


def test_the_regressor_uses_it():
  assert isinstance(regressor.regressor_optimizer(), optimizers.FusedAdam)
  keras = regressor.regressor_optimizer(adam=tf.keras.optimizers.Adam)
  assert type(keras) is tf.keras.optimizers.Adam

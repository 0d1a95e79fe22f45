"""Tests of the conditional discriminator: shapes, exact pose features, sensitivity."""

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import skeleton
from fbi3d.models import discriminator

TINY = dict(units=16)


def _axis_pose():
  """Bone k of skeleton.BONES is (k + 1) mm along axis k % 3 (x, y, z, x, ...)."""
  pose = np.zeros((17, 3), np.float32)
  for k, (parent, child) in enumerate(skeleton.BONES):
    pose[child] = pose[parent]
    pose[child, k % 3] += k + 1
  return pose


def _line_pose():
  """Joint j at (100 j, 0, 0) mm, but the head at (900, 300, 400)."""
  pose = np.zeros((17, 3), np.float32)
  pose[:, 0] = 100.0 * np.arange(17)
  pose[10] = [900.0, 300.0, 400.0]
  return pose


def _inputs(condition, batch=3, seed=0):
  rng = np.random.default_rng(seed)
  pose3d = rng.normal(size=(batch, 17, 3)).astype(np.float32) * 200.0
  if condition == 'pose2d':
    cond = rng.uniform(0, 64, size=(batch, 17, 2)).astype(np.float32)
  else:
    cond = rng.normal(size=(batch, 4, 4, 8)).astype(np.float32)
  return pose3d, cond


def _build(condition):
  return discriminator.build_discriminator(condition=condition, crop_size=64,
                                           feature_shape=(4, 4, 8), **TINY)


@pytest.mark.parametrize('condition', ['pose2d', 'features'])
def test_output_shape(condition):
  model = _build(condition)
  pose3d, cond = _inputs(condition)
  out = model([pose3d, cond])
  assert out.shape == (3, 1)
  assert out.dtype == tf.float32
  by_name = model({'pose3d': pose3d, condition: cond})
  np.testing.assert_allclose(by_name.numpy(), out.numpy(), rtol=1e-6)


def test_bad_arguments():
  with pytest.raises(ValueError, match='unknown condition'):
    discriminator.build_discriminator(condition='image')
  with pytest.raises(ValueError, match='feature_shape'):
    discriminator.build_discriminator(condition='features')


def test_kinematic_chain_space_exact():
  gram = discriminator.kinematic_chain_space(_axis_pose()[None]).numpy()[0]
  assert gram.shape == (16, 16)
  # Bones 0 (1 mm along x), 1 (2 mm along y), 2 (3 mm along z), 3 (4 mm along x).
  assert gram[0, 0] == 1.0 and gram[1, 1] == 4.0 and gram[2, 2] == 9.0
  assert gram[0, 1] == 0.0 and gram[1, 2] == 0.0 and gram[0, 2] == 0.0
  assert gram[0, 3] == 4.0 and gram[3, 0] == 4.0          # 1 * 4, both along x
  lengths = np.arange(1, 17, dtype=np.float64)
  axes = np.arange(16) % 3
  expected = np.outer(lengths, lengths) * (axes[:, None] == axes[None, :])
  np.testing.assert_array_equal(gram, expected)
  # The model's KCS stream: the 136 upper-triangle entries over 250^2.
  flat = discriminator.PoseFeatures('kcs')(_axis_pose()[None]).numpy()[0]
  assert flat.shape == (136,)
  np.testing.assert_allclose(flat[:4], np.array([1.0, 0.0, 0.0, 4.0]) / 62500.0)


def test_geometric_descriptor_exact():
  geometry = discriminator.geometric_descriptor(_line_pose()[None]).numpy()[0]
  assert geometry.shape == (136, 4)
  # Bone lengths in units of 100 mm, by child 1..16:
  # 1, 1, 1, 4, 1, 1, 7, 1, 1, 5 (the head, 300-400-500), 3, 1, 1, 6, 1, 1 -> sum 36,
  # so the mean bone length is 3600 / 16 = 225 mm.
  pair = discriminator.JOINT_PAIRS.index
  np.testing.assert_allclose(geometry[pair((9, 10))], [0.0, 0.3, 0.4, 500.0 / 225.0],
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(geometry[pair((0, 16))], [1.6, 0.0, 0.0, 1600.0 / 225.0],
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(geometry[pair((0, 1))], [0.1, 0.0, 0.0, 100.0 / 225.0],
                             rtol=1e-6, atol=1e-7)
  assert pair((0, 1)) == 0 and pair((15, 16)) == 135
  # Distances are scale-free: doubling the pose doubles only the differences.
  doubled = discriminator.geometric_descriptor(2.0 * _line_pose()[None]).numpy()[0]
  np.testing.assert_allclose(doubled[:, 3], geometry[:, 3], rtol=1e-6)
  np.testing.assert_allclose(doubled[:, :3], 2.0 * geometry[:, :3], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('condition', ['pose2d', 'features'])
def test_logit_depends_on_pose_and_condition(condition):
  tf.keras.utils.set_random_seed(5)
  model = _build(condition)
  pose3d, cond = _inputs(condition, batch=1)
  base = model([pose3d, cond]).numpy()
  moved = pose3d.copy()
  moved[0, 13] += [100.0, -50.0, 80.0]                     # bend the left wrist
  other_cond = cond + 1.0
  for changed in (model([moved, cond]), model([1.2 * pose3d, cond]),
                  model([pose3d, other_cond])):
    assert abs(float(changed.numpy()[0, 0] - base[0, 0])) > 1e-6


def test_float32_output_under_bfloat16(bfloat16_policy):
  for condition in ('pose2d', 'features'):
    model = _build(condition)
    assert model.get_layer('discriminator_head_dense0').compute_dtype == 'bfloat16'
    assert model.get_layer('discriminator_kcs').compute_dtype == 'float32'
    out = model(list(_inputs(condition)))
    assert out.dtype == tf.float32 and out.shape == (3, 1)


def test_real_and_fake_of_a_perfect_prediction_are_identical():
  # Shape = [B=1, J=17, ...]. Ground truth: joint j at crop (10 + j, 20 - j) px with
  # 3D x, y = 3 mm per pixel from the root's and depth 5 j mm; the coarse-3D output is
  # that 2.5D exactly, plus 7 mm of depth everywhere (root-relative: no change).
  from fbi3d.training import adversarial   # pylint: disable=g-import-not-at-top
  j = np.arange(17, dtype=np.float32)
  pose2d = np.stack([10.0 + j, 20.0 - j], axis=-1)[None]
  pose3d = np.stack([3.0 * j, -3.0 * j, 5.0 * j], axis=-1)[None]
  coarse3d = np.concatenate([pose2d, pose3d[..., 2:] + 7.0], axis=-1)
  weights = np.ones((1, 17), np.float32)
  real, fake = adversarial.real_and_fake(coarse3d, pose2d, pose3d, weights)
  np.testing.assert_array_equal(real.numpy(), fake.numpy())
  np.testing.assert_allclose(real.numpy(), pose3d, atol=1e-5)
  # A wrong depth of one joint shows in the fake sample only, by exactly that much.
  coarse3d[0, 5, 2] += 40.0
  real, fake = adversarial.real_and_fake(coarse3d, pose2d, pose3d, weights)
  np.testing.assert_allclose((fake - real).numpy()[0, 5], [0.0, 0.0, 40.0], atol=1e-5)


def test_fake_with_the_true_2d_differs_from_real_in_depth_only():
  # The same ground truth as above (3 mm per crop pixel, depth 5 j mm); the coarse-3D
  # output has joint 4 two pixels right of the truth and joint 9 30 mm too deep.
  from fbi3d.training import adversarial   # pylint: disable=g-import-not-at-top
  j = np.arange(17, dtype=np.float32)
  pose2d = np.stack([10.0 + j, 20.0 - j], axis=-1)[None]
  pose3d = np.stack([3.0 * j, -3.0 * j, 5.0 * j], axis=-1)[None]
  coarse3d = np.concatenate([pose2d, pose3d[..., 2:]], axis=-1)
  coarse3d[0, 4, 0] += 2.0
  coarse3d[0, 9, 2] += 30.0
  weights = np.ones((1, 17), np.float32)
  real, fake = adversarial.real_and_fake(coarse3d, pose2d, pose3d, weights, 'truth')
  expected = np.zeros((17, 3), np.float32)
  expected[9, 2] = 30.0
  np.testing.assert_allclose((fake - real).numpy()[0], expected, atol=1e-5)
  # With the prediction's own 2D the x offset shows too: 2 px at 3 mm per pixel.
  real, fake = adversarial.real_and_fake(coarse3d, pose2d, pose3d, weights, 'prediction')
  expected[4, 0] = 6.0
  np.testing.assert_allclose((fake - real).numpy()[0], expected, atol=1e-5)
  with pytest.raises(ValueError, match="'prediction' or 'truth'"):
    adversarial.real_and_fake(coarse3d, pose2d, pose3d, weights, 'both')


def test_freeze_batch_norm_keeps_the_statistics():
  # One BN layer with moving mean 0 and variance 1 (as built): frozen, a training call
  # on a batch of mean 5 normalises by those (x / sqrt(1 + 0.001)), not by the batch's,
  # and leaves them as they were.
  from fbi3d.training import adversarial   # pylint: disable=g-import-not-at-top
  inputs = tf.keras.Input((2,))
  outputs = tf.keras.layers.BatchNormalization(epsilon=0.001)(inputs)
  network = tf.keras.Model(inputs, outputs)
  assert adversarial.freeze_batch_norm(network) == 1
  bn = network.layers[1]
  assert not bn.trainable and not network.trainable_variables
  x = np.array([[4.0, 6.0], [6.0, 4.0]], np.float32)
  np.testing.assert_allclose(network(x, training=True).numpy(), x / np.sqrt(1.001),
                             rtol=1e-6)
  np.testing.assert_array_equal(bn.moving_mean.numpy(), [0.0, 0.0])
  np.testing.assert_array_equal(bn.moving_variance.numpy(), [1.0, 1.0])


def test_examples_without_true_2d_take_no_part_in_the_adversarial_losses():
  # Two examples with 3D, the second without true 2D (pose2d zeros, visible 0). The
  # coarse-3D output is the first one's 2.5D for both. A discriminator that calls a
  # sample real (logit +10) unless its x and y are all zero (-10): the second example's
  # fake, scaled by its pixel scale of 0, is all zero in x and y.
  from fbi3d import keys   # pylint: disable=g-import-not-at-top
  from fbi3d.training import adversarial   # pylint: disable=g-import-not-at-top
  from fbi3d.training import config as config_lib   # pylint: disable=g-import-not-at-top
  j = np.arange(17, dtype=np.float32)
  pose2d = np.stack([10.0 + j, 20.0 - j], axis=-1)
  pose3d = np.stack([3.0 * j, -3.0 * j, 5.0 * j], axis=-1)
  batch = {keys.IMAGE: tf.zeros((2, 32, 32, 3)),
           keys.POSE2D: tf.constant(np.stack([pose2d, 0 * pose2d])),
           keys.POSE3D: tf.constant(np.stack([pose3d, pose3d])),
           keys.VISIBLE: tf.constant([[1.0] * 17, [0.0] * 17]),
           keys.POSE3D_VALID: tf.constant([1.0, 1.0]),
           keys.POSE2D_VALID: tf.constant([1.0, 0.0]),
           keys.FBI: tf.zeros((2, 14), tf.int32)}
  coarse3d = tf.constant(np.stack([np.concatenate([pose2d, pose3d[:, 2:]], -1)] * 2))
  task = adversarial.AdversarialTask(config_lib.make(image_size=32, model_dir='unused'))
  def discriminate(inputs, training=False):
    del training
    flat = tf.abs(inputs[0][..., :2])
    return tf.where(tf.reduce_max(flat, axis=[1, 2]) > 0, 10.0, -10.0)[:, None]
  model = adversarial.AdversarialModel(task, lambda images, training: {'coarse3d': coarse3d},
                                       discriminate)
  logs = model.test_step(batch)
  # Only the first example counts: its fake is called real, log(1 + e^-10) of loss;
  # counted, the second would add about 10 to the sum (5 to the mean).
  assert float(logs['adversarial_loss']) == pytest.approx(np.log1p(np.exp(-10.0)), rel=1e-4)
  # Its real sample called real and its fake called real: half right.
  assert float(logs['d_accuracy']) == pytest.approx(0.5)

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import losses


def test_heatmap_mse_masks_unknown_joints_and_sums_stacks():
  target = np.zeros((1, 2, 2, 2), np.float32)
  target[0, 0, 0, 0] = 1.0
  pred = np.zeros_like(target)
  pred[..., 1] = 5.0                     # joint 1 is wrong everywhere but not visible
  visible = np.array([[1.0, 0.0]], np.float32)
  # Joint 0: squared errors 1, 0, 0, 0 over 4 cells -> 0.25; two identical stacks -> 0.5.
  value = losses.heatmap_mse([pred, pred], target, visible)
  assert float(value) == pytest.approx(0.5, abs=1e-6)


def test_coarse3d_l1_normalises_each_axis():
  pred = np.zeros((1, 2, 3), np.float32)
  target = np.array([[[64.0, 32.0, 500.0], [1.0, 1.0, 1.0]]], np.float32)
  weights = np.array([[1.0, 0.0]], np.float32)
  # 64 / 64 + 32 / 64 + 500 / 1000 = 2.0; the second joint is not counted.
  value = losses.coarse3d_l1(pred, target, weights, (64.0, 64.0, 1000.0))
  assert float(value) == pytest.approx(2.0, abs=1e-5)


def test_fbi_cross_entropy_exact():
  probs = np.full((2, 14, 3), 1.0 / 3.0, np.float32)
  probs[0, :, :] = [0.5, 0.25, 0.25]
  labels = np.zeros((2, 14), np.int32)
  valid = np.array([1.0, 0.0], np.float32)
  # Only example 0 counts: -log(0.5) for every bone.
  value = losses.fbi_cross_entropy(probs, labels, valid)
  assert float(value) == pytest.approx(np.log(2.0), abs=1e-5)
  # A zero probability is clipped to 1e-7: each bone costs -log(1e-7) = 16.118, not inf.
  value = losses.fbi_cross_entropy(np.zeros((1, 14, 3), np.float32), np.zeros((1, 14)), [1.0])
  assert float(value) == pytest.approx(-np.log(1e-7), rel=1e-6)


def test_integral2d_l1_exact():
  # Two stacks; joint 0 off by (3, -4) px in stack 0 and exact in stack 1; joint 1 has
  # weight 0. Crop side 10: (3 + 4) / 10 / 1 known joint = 0.7.
  target = tf.constant([[[5.0, 5.0], [1.0, 1.0]]])          # Shape = [B=1, J=2, 2]
  off = tf.constant([[[8.0, 1.0], [9.0, 9.0]]])
  weights = tf.constant([[1.0, 0.0]])
  value = losses.integral2d_l1([off, target], target, weights, 10.0)
  np.testing.assert_allclose(value.numpy(), 0.7, rtol=1e-6)


def test_joint_distance_per_example_exact():
  # Example 0: joints off by (3, 4, 0) and (0, 0, 12): distances 5 and 12, mean 8.5.
  # Example 1: one joint off by (1, 2, 2), the other exact: distances 3 and 0, mean 1.5
  # (the exact joint counts sqrt(1e-6) = 0.001, which keeps its gradient finite).
  pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 12.0]],
                   [[1.0, 2.0, 2.0], [7.0, 7.0, 7.0]]], np.float32)
  target = np.array([[[0.0] * 3] * 2, [[0.0] * 3, [7.0, 7.0, 7.0]]], np.float32)
  got = losses.joint_distance_per_example(pred, target).numpy()
  np.testing.assert_allclose(got, [8.5, 1.5005], rtol=1e-6)
  # Flat [B, J * 3] inputs give the same.
  flat = losses.joint_distance_per_example(pred.reshape(2, 6), target.reshape(2, 6))
  np.testing.assert_array_equal(flat.numpy(), got)
  with tf.GradientTape() as tape:
    p = tf.constant(target)
    tape.watch(p)
    d = losses.joint_distance_per_example(p, target)
  assert np.all(np.isfinite(tape.gradient(d, p).numpy()))

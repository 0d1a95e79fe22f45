import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d import metrics


def _pose():
  rng = np.random.default_rng(2)
  pose = np.round(rng.normal(size=(17, 3)) * 250)  # integers: exact sums
  return pose - pose[0]


def test_mpjpe_is_root_aligned():
  target = _pose()
  assert metrics.mpjpe(target[None] + [0.0, 0.0, 100.0], target[None]) == 0.0


def test_mpjpe_one_joint_off():
  target = _pose()
  pred = target.copy()
  pred[5] += [3.0, 4.0, 0.0]
  assert metrics.mpjpe(pred[None], target[None]) == pytest.approx(5.0 / 17.0)
  np.testing.assert_allclose(metrics.joint_errors(pred[None], target[None])[0, 5], 5.0)


def test_mpjpe_and_pa_mpjpe_on_rotation_and_scale():
  target = _pose()
  rot = geometry.rotation_matrix((0, 1, 0), np.pi)
  pred = 0.5 * target @ rot.T
  # Rotated half-size pose: protocol 1 error is |0.5 R p - p| per joint; protocol 2 is 0.
  expected = np.linalg.norm(0.5 * target @ rot.T - target, axis=-1).mean()
  assert metrics.mpjpe(pred[None], target[None]) == pytest.approx(expected)
  assert metrics.pa_mpjpe(pred[None], target[None]) == pytest.approx(0.0, abs=1e-9)


def test_pa_mpjpe_hand_case():
  target = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
  pred = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 0, 0], [0, 0, 0]]])
  assert metrics.pa_mpjpe(pred, target) == pytest.approx(0.5)


def test_pck_and_2d_error():
  target = np.zeros((1, 4, 2))
  pred = np.array([[[3.0, 4.0], [0.0, 1.0], [0.0, 10.0], [6.0, 8.0]]])
  np.testing.assert_allclose(metrics.error_2d(pred, target), [[5, 1, 10, 10]])
  assert metrics.pck(pred, target, 5.0) == 0.5


def test_per_action_table_with_empty_action():
  actions = np.array([0, 0, 1, -1])
  table = metrics.per_action_table(
      {'Base': [1.0, 3.0, 5.0, 7.0], 'Final': [1.0, 1.0, 1.0, 1.0]}, actions)
  assert list(table.columns[:2]) == ['A1', 'A2'] and table.columns[-1] == 'Avg'
  assert table.loc['Base', 'A1'] == 2.0
  assert table.loc['Base', 'A2'] == 5.0
  assert np.isnan(table.loc['Base', 'A3'])
  assert table.loc['Base', 'Avg'] == 4.0
  assert table.loc['Final', 'Avg'] == 1.0
  text = metrics.format_table(table)
  assert '| Base | 2.0 | 5.0 |  |' in text


def test_shape_mismatch_is_reported():
  with pytest.raises(ValueError, match='shapes differ'):
    metrics.mpjpe(np.zeros((1, 17, 3)), np.zeros((1, 16, 3)))


def test_bone_asymmetry_exact():
  # Shape = [N=1, 17, 3]. Every joint 100 mm below its parent, except the left knee,
  # 130 mm below the left hip: one of the six pairs differs by 30 mm -> 30 / 6 = 5 mm.
  pose = np.zeros((1, 17, 3))
  for j, parent in enumerate(skeleton.PARENTS):
    if parent >= 0:
      pose[0, j] = pose[0, parent] + [0.0, 100.0, 0.0]
  pose[0, 5:7] += [0.0, 30.0, 0.0]        # LKnee and, with it, LAnkle
  assert metrics.bone_asymmetry(pose) == pytest.approx(5.0, abs=1e-12)

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import joint_maps
from tools import mocap_lifting
from tests.conftest import MOCAP_DIR
from tests.conftest import REPO
from tests.conftest import needs_shared_mocap



def _world_poses(num, seed=0):
  rng = np.random.default_rng(seed)
  return np.stack([body.sample_pose(rng, i % skeleton.NUM_ACTIONS)
                   for i in range(num)])


def test_view_poses_shapes_and_targets():
  poses = _world_poses(3)
  views = mocap_lifting.view_poses(poses, np.random.default_rng(1), cameras_per_pose=2)
  assert len(views) == 6
  # Shape = [6, 17, 2], [6, 17, 3], [6, 17, 3], [6, 4], [6].
  assert views.joints2d.shape == (6, 17, 2)
  assert views.pose3d.shape == (6, 17, 3)
  assert views.pose3d_abs.shape == (6, 17, 3)
  assert views.intrinsics.shape == (6, 4)
  np.testing.assert_array_equal(views.pose_index, [0, 0, 1, 1, 2, 2])
  np.testing.assert_allclose(views.pose3d[:, 0], 0.0, atol=1e-9)
  np.testing.assert_allclose(
      views.pose3d, views.pose3d_abs - views.pose3d_abs[:, :1], atol=1e-9)
  assert np.all(views.pose3d_abs[..., 2] >= mocap_lifting.MIN_DEPTH_MM)
  assert np.all(views.joints2d >= 0) and np.all(views.joints2d <= mocap_lifting.IMAGE_SIZE - 1)
  for i in range(len(views)):
    np.testing.assert_allclose(
        views.joints2d[i], geometry.project(views.pose3d_abs[i], views.intrinsics[i]),
        atol=1e-9)
  # A rigid motion of the world pose: every bone keeps its length.
  np.testing.assert_allclose(joint_maps.bone_lengths(views.pose3d),
                             joint_maps.bone_lengths(poses[views.pose_index]), atol=1e-6)
  # Focal length as cameras.sample_camera gives it for a 1000 px image.
  assert np.all(np.abs(views.intrinsics[:, 0] - 1145.0) <= 0.04 * 1145.0 + 1e-6)


def test_view_poses_deterministic_with_seed():
  poses = _world_poses(2)
  a = mocap_lifting.view_poses(poses, np.random.default_rng(7), 3)
  b = mocap_lifting.view_poses(poses, np.random.default_rng(7), 3)
  c = mocap_lifting.view_poses(poses, np.random.default_rng(8), 3)
  np.testing.assert_array_equal(a.joints2d, b.joints2d)
  np.testing.assert_array_equal(a.pose3d, b.pose3d)
  assert not np.allclose(a.joints2d, c.joints2d)


def test_view_poses_rejects_bad_arguments():
  with pytest.raises(ValueError):
    mocap_lifting.view_poses(_world_poses(1), np.random.default_rng(0), 0)


def test_add_noise_std():
  joints = np.full((2000, 17, 2), 300.0)
  noisy = mocap_lifting.add_noise(joints, 5.0, np.random.default_rng(0))
  diff = noisy - joints
  # 68000 draws: the std of the sample std is about 5 / sqrt(2 * 68000) = 0.014 px.
  assert abs(diff.std() - 5.0) < 0.07
  assert abs(diff.mean()) < 0.07
  assert abs(diff[..., 0].std() - 5.0) < 0.1 and abs(diff[..., 1].std() - 5.0) < 0.1
  np.testing.assert_array_equal(
      noisy, mocap_lifting.add_noise(joints, 5.0, np.random.default_rng(0)))
  np.testing.assert_array_equal(mocap_lifting.add_noise(joints, 0.0, np.random.default_rng(0)),
                                joints)


def test_crop_inputs():
  joints = np.array([[[100.0, 200.0]] * 17])
  joints[0, 1] = [300.0, 600.0]   # bounding box 200 x 400 px
  inputs = mocap_lifting.crop_inputs(joints, crop_size=256, margin=0.2)
  assert inputs.shape == (1, 34) and inputs.dtype == np.float32
  # Box side 400 * 1.4 = 560 px, centred on (200, 400): x0 = -80, y0 = 120.
  np.testing.assert_allclose(inputs[0, :2], [(100 + 80) * 256 / 560, (200 - 120) * 256 / 560],
                             rtol=1e-6)
  box = geometry.square_box(joints[0], 0.2)
  np.testing.assert_allclose(inputs[0].reshape(17, 2),
                             geometry.image_to_crop(joints[0], box, 256), rtol=1e-6)
  # The crop form removes the image position and size.
  moved = mocap_lifting.crop_inputs(joints * 0.5 + np.array([37.0, -11.0]))
  np.testing.assert_allclose(moved, inputs, rtol=1e-5, atol=1e-4)


def test_sample_synthetic_poses():
  poses = mocap_lifting.sample_synthetic_poses(np.random.default_rng(0), 16)
  assert len(poses) == 16 and poses.poses.shape == (16, 17, 3)
  np.testing.assert_array_equal(poses.subjects, -1)
  again = mocap_lifting.sample_synthetic_poses(np.random.default_rng(0), 16)
  np.testing.assert_array_equal(poses.poses, again.poses)
  lengths = mocap_lifting.mean_bone_lengths(poses.poses)
  assert set(lengths) == {skeleton.JOINT_NAMES[c] for _, c in skeleton.BONES}


def test_a_training_whose_loss_is_not_finite_stops_and_says_so():
  inputs = np.zeros((8, 34), np.float32)
  inputs[0, 0] = np.inf
  with pytest.raises(ValueError, match=r'the training loss became NaN or infinite \(epoch 1\); '
                                       'lower --learning_rate'), np.errstate(invalid='ignore'):
    mocap_lifting.train_regressor(inputs, np.zeros((8, 17, 3), np.float32), epochs=3,
                                  batch_size=8, hidden=8)


@pytest.mark.slow
def test_compare_end_to_end_one_epoch():
  train = mocap_lifting.PoseSet(_world_poses(24, seed=1), np.full(24, 1), [dict(file='a')])
  test = mocap_lifting.PoseSet(_world_poses(8, seed=2), np.full(8, 11), [dict(file='b')])
  result = mocap_lifting.compare(train, test, train_cameras=2, epochs=1, batch_size=16,
                           hidden=32, seed=0)
  assert set(result['models']) == {'mocap', 'synthetic'}
  # Errors of networks trained for an epoch have no value known by hand: finite, and
  # above 0 (no test pose is met exactly), is what can be asserted.
  for m in result['models'].values():
    for column in ('gt2d', 'noisy2d'):
      assert m[column]['num_examples'] == 8
      assert math.isfinite(m[column]['mpjpe_mm']) and m[column]['mpjpe_mm'] > 0
      assert math.isfinite(m[column]['pa_mpjpe_mm'])
  assert result['sets']['train_mocap']['examples'] == 48
  assert result['sets']['train_synthetic']['examples'] == 48
  assert result['sets']['test']['examples'] == 8
  table = mocap_lifting.format_table(result)
  assert 'trained on real mocap (1)' in table and 'trained on synthetic sampler' in table


@needs_shared_mocap
def test_load_mocap_poses_subject_11():
  poses = mocap_lifting.load_mocap_poses(MOCAP_DIR, [11], every_nth=40)
  assert poses.poses.shape == (math.ceil(597 / 40), 17, 3)
  np.testing.assert_array_equal(poses.subjects, 11)
  assert [s['file'] for s in poses.sources] == [os.path.join('cmu_asf_amc', '11_01.amc')]
  retargeted = mocap_lifting.load_mocap_poses(MOCAP_DIR, [11], every_nth=40, retarget_bones=True)
  np.testing.assert_allclose(joint_maps.bone_lengths(retargeted.poses)[:, 2],
                             skeleton.MEAN_BONE_LENGTHS_MM[3], rtol=1e-6)
  views = mocap_lifting.view_poses(poses.poses, np.random.default_rng(0), 1)
  assert views.pose3d.shape == (len(poses), 17, 3)


@needs_shared_mocap
def test_load_mocap_poses_missing_subject():
  with pytest.raises(ValueError, match='subject'):
    mocap_lifting.load_mocap_poses(MOCAP_DIR, [999])


def test_run_refuses_overlapping_subjects_and_rates_without_sense(tmp_path):
  # Checked before any motion file is read: the folder need not exist.
  with pytest.raises(ValueError, match=r'subject\(s\) 11 are both training and test '
                                       'subjects: the test would measure poses the lifter '
                                       'trained on'):
    mocap_lifting.run(str(tmp_path), train_subjects=(2, 11), test_subjects=(11,))
  with pytest.raises(ValueError, match='learning_rate must be a finite number above 0, got nan'):
    mocap_lifting.run(str(tmp_path), learning_rate=float('nan'))
  with pytest.raises(ValueError, match='learning_rate must be a finite number above 0, got 0.0'):
    mocap_lifting.run(str(tmp_path), learning_rate=0.0)
  with pytest.raises(ValueError, match='noise_px must be a finite number >= 0, got -1.0'):
    mocap_lifting.run(str(tmp_path), noise_px=-1.0)


@pytest.mark.parametrize('flag,message', [
    ('--train_subjects=', 'lift_mocap: error: --train_subjects is empty: give CMU subject '
                          'numbers separated by commas (e.g. 1,131).'),
    ('--test_subjects=11,x', 'lift_mocap: error: --test_subjects takes CMU subject numbers '
                             'separated by commas, got \'11,x\'.')])
def test_lift_mocap_says_what_is_wrong_with_a_subject_list(tmp_path, flag, message):
  proc = subprocess.run([sys.executable, 'tools/lift_mocap.py', flag, f'--mocap_dir={tmp_path}',
                         f'--out={tmp_path / "out.json"}'], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1] == message
  assert not (tmp_path / 'out.json').exists()

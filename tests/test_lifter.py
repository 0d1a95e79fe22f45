"""Tests of the pose-bank lifter: photographer's cameras, detector-like noise, the
missing-joint rule, the crop inputs, training, saving and loading."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import lifter
from fbi3d import lifter_cameras
from fbi3d import lifter_inputs
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import joint_maps
from fbi3d.data import posebank
from tests.conftest import REPO
from tools import mocap_lifting


def _poses(n, seed=0):
  rng = np.random.default_rng(seed)
  return np.stack([body.sample_pose(rng, i % skeleton.NUM_ACTIONS) for i in range(n)])


def test_fill_missing_takes_the_nearest_known_ancestor():
  joints = np.stack([np.arange(17.0), 100.0 + np.arange(17.0)], axis=-1)   # joint j: (j, 100 + j)
  valid = np.ones(17, bool)
  valid[13] = False                       # LWrist -> LElbow (12)
  got = lifter_inputs.fill_missing(joints, valid)
  np.testing.assert_array_equal(got[13], [12.0, 112.0])
  np.testing.assert_array_equal(np.delete(got, 13, 0), np.delete(joints, 13, 0))
  valid[12] = False                       # LElbow and LWrist -> LShoulder (11)
  valid[10] = False                       # Head -> Neck (9)
  got = lifter_inputs.fill_missing(joints, valid)
  np.testing.assert_array_equal(got[[12, 13, 10]], [[11.0, 111.0]] * 2 + [[9.0, 109.0]])
  # A missing pelvis: the midpoint of the hips (1 and 4) when both are known.
  valid = np.ones(17, bool)
  valid[0] = False
  np.testing.assert_array_equal(lifter_inputs.fill_missing(joints, valid)[0], [2.5, 102.5])
  # ... else the mean of the known joints; the right leg then follows the pelvis.
  valid[1] = False
  known = [j for j in range(17) if j not in (0, 1)]
  mean = joints[known].mean(axis=0)
  got = lifter_inputs.fill_missing(joints, valid)
  np.testing.assert_allclose(got[0], mean)
  np.testing.assert_allclose(got[1], mean)
  # Batched, and refused without any known joint.
  batched = lifter_inputs.fill_missing(np.stack([joints] * 3), np.ones((3, 17), bool))
  assert batched.shape == (3, 17, 2)
  with pytest.raises(ValueError, match='a pose has no known joint'):
    lifter_inputs.fill_missing(joints, np.zeros(17, bool))


def test_detector_noise_parts():
  joints = np.random.default_rng(0).uniform(0, 500, (4, 17, 2))
  rng = np.random.default_rng(1)
  np.testing.assert_array_equal(lifter_inputs.detector_noise(joints, rng, 0.0, 0.0, 0.0), joints)
  # Every pair swapped: the left/right mirror permutation of the joints.
  swapped = lifter_inputs.detector_noise(joints, rng, 0.0, 1.0, 0.0)
  np.testing.assert_array_equal(swapped, joints[:, list(skeleton.JOINT_FLIP_PERMUTATION)])
  # Gaussian: per-example std uniform in [0, 8]: overall std about 8 / sqrt(3).
  many = np.zeros((4000, 17, 2))
  noisy = lifter_inputs.detector_noise(many, np.random.default_rng(2), 8.0, 0.0, 0.0)
  assert noisy.std() == pytest.approx(8.0 / np.sqrt(3.0), rel=0.03)
  # Missing joints sit on an ancestor's position.
  spread = np.random.default_rng(3).uniform(0, 500, (2000, 17, 2))
  out = lifter_inputs.detector_noise(spread, np.random.default_rng(4), 0.0, 0.0, 0.1)
  moved = np.any(out != spread, axis=-1)
  assert 0.07 < moved.mean() < 0.13
  n, j = np.argwhere(moved)[0]
  assert any(np.array_equal(out[n, j], out[n, a]) for a in lifter_inputs.ANCESTORS[j]) or j == 0


def test_crop_inputs_batch_matches_lifting():
  joints = np.random.default_rng(0).uniform(-50, 900, (6, 17, 2))
  np.testing.assert_allclose(lifter_inputs.crop_inputs_batch(joints),
                             mocap_lifting.crop_inputs(joints), atol=1e-4)
  # A pose whose joints span 100 x 50 px: box side 140 centred on it; (lo) -> 256 * 20 / 140.
  pose = np.zeros((1, 17, 2))
  pose[0, 1] = [100.0, 50.0]
  got = lifter_inputs.crop_inputs_batch(pose).reshape(17, 2)
  np.testing.assert_allclose(got[0], [256.0 * 20.0 / 140.0, 256.0 * 45.0 / 140.0], atol=1e-4)


def test_crop_boxes_are_square_boxes():
  joints = np.random.default_rng(1).uniform(-50, 900, (5, 17, 2))
  expected = np.stack([geometry.square_box(j, 0.2) for j in joints])
  np.testing.assert_allclose(lifter_inputs.crop_boxes(joints), expected, rtol=1e-12)


def test_ray_frame_by_hand():
  intrinsics = np.array([[1000.0, 1000.0, 500.0, 400.0]])
  # Joints spanning x 1400..1600, y 300..500: the box is centred on (1500, 400), one
  # focal length right of the principal point, so the crop's ray is (1, 0, 1) / sqrt(2)
  # and the ray frame is the camera frame turned by 45 degrees about y.
  joints = np.full((1, 17, 2), [1500.0, 400.0])
  joints[0, 1], joints[0, 2] = [1400.0, 300.0], [1600.0, 500.0]
  pose = np.zeros((1, 17, 3))
  pose[0, 5] = [1000.0, 0.0, 1000.0]          # along the ray
  pose[0, 6] = [0.0, 250.0, 0.0]              # along y, which the turn keeps
  ray = lifter_inputs.to_output_frame(pose, joints, intrinsics, 'ray')
  np.testing.assert_allclose(ray[0, 5], [0.0, 0.0, 1000.0 * np.sqrt(2.0)], atol=1e-9)
  np.testing.assert_allclose(ray[0, 6], [0.0, 250.0, 0.0], atol=1e-9)
  np.testing.assert_allclose(lifter_inputs.to_camera_frame(ray, joints, intrinsics, 'ray'), pose,
                             atol=1e-9)
  np.testing.assert_array_equal(lifter_inputs.to_output_frame(pose, joints, intrinsics, 'camera'),
                                pose)
  # Centred on the principal point: the two frames are one.
  centred = joints - [1000.0, 0.0]
  np.testing.assert_allclose(lifter_inputs.to_output_frame(pose, centred, intrinsics, 'ray'), pose,
                             atol=1e-12)
  with pytest.raises(ValueError, match="frame must be one of camera, ray \\(got 'side'\\)"):
    lifter.train(_poses(4), frame='side')


def test_cameras_are_a_photographers():
  c = lifter_cameras.sample_cameras(np.random.default_rng(0), 2000)
  horizontal = np.linalg.norm(c['centre'][:, :2], axis=-1)
  assert horizontal.min() >= 2000.0 and horizontal.max() <= 8000.0
  assert c['centre'][:, 2].min() >= 500.0 and c['centre'][:, 2].max() <= 2000.0
  assert c['focal_35mm'].min() >= 24.0 and c['focal_35mm'].max() <= 85.0
  # 24 mm on a 1000 x 750 image: 24 * 1250 / 43.27 = 693 px.
  k = c['intrinsics']
  diag = np.hypot(c['size'][:, 0], c['size'][:, 1])
  np.testing.assert_allclose(k[:, 0], c['focal_35mm'] * diag / np.hypot(36.0, 24.0))
  assert set(map(tuple, c['size'].tolist())) == {(1000.0, 750.0), (750.0, 1000.0)}
  # Rotations are proper and the camera looks about level or down.
  np.testing.assert_allclose(np.linalg.det(c['rotation']), 1.0, atol=1e-9)
  azimuths = np.arctan2(c['centre'][:, 1], c['centre'][:, 0])
  assert np.histogram(azimuths, 4, (-np.pi, np.pi))[0].min() > 400


def test_views_are_whole_large_and_consistent():
  poses = _poses(30)
  v = lifter_cameras.view(poses, np.random.default_rng(0))
  assert v['joints2d'].shape == (30, 17, 2) and v['pose3d'].shape == (30, 17, 3)
  np.testing.assert_allclose(v['pose3d'][:, 0], 0.0)
  extent = np.max(v['joints2d'].max(1) - v['joints2d'].min(1), axis=-1)
  assert extent.min() >= 200.0
  assert np.all(v['joints2d'] >= 10.0)
  assert np.all(v['joints2d'] <= v['size'][:, None] - 11.0)
  # Bones keep their lengths (a rigid move of the world pose).
  np.testing.assert_allclose(joint_maps.bone_lengths(v['pose3d']),
                             joint_maps.bone_lengths(poses), atol=1e-6)
  # The 2D is the pinhole projection of the camera-frame pose, placed where it projects.
  for i in range(30):
    root = geometry.solve_root_translation(v['pose3d'][i], v['joints2d'][i],
                                           v['intrinsics'][i])
    np.testing.assert_allclose(geometry.project(v['pose3d'][i] + root, v['intrinsics'][i]),
                               v['joints2d'][i], atol=1e-6)
  again = lifter_cameras.view(poses, np.random.default_rng(0))
  np.testing.assert_array_equal(again['joints2d'], v['joints2d'])


def test_place_on_ground_and_mirror():
  poses = _poses(3)
  yaw = np.array([0.0, 1.0, -2.0])
  got = lifter_cameras.place_on_ground(poses, yaw)
  for i in range(3):
    np.testing.assert_allclose(got[i], body.place_on_ground(poses[i], yaw[i]), atol=1e-9)
  m = lifter_cameras.mirror(poses)
  np.testing.assert_allclose(lifter_cameras.mirror(m), poses)
  np.testing.assert_allclose(m[:, 4, 0], -poses[:, 1, 0])     # LHip <- mirrored RHip
  np.testing.assert_allclose(m[:, 4, 1:], poses[:, 1, 1:])


def test_scale_bones_keeps_directions_and_symmetry():
  poses = _poses(4)
  np.testing.assert_array_equal(lifter_cameras.scale_bones(poses, np.random.default_rng(0), 0.0),
                                poses)
  got = lifter_cameras.scale_bones(poses, np.random.default_rng(0), 0.1)
  ratio = joint_maps.bone_lengths(got) / joint_maps.bone_lengths(poses)
  bones = [c for _, c in skeleton.BONES]
  for left, right in skeleton.LEFT_RIGHT_PAIRS:   # a bone and its mirror: one factor
    np.testing.assert_allclose(ratio[:, bones.index(left)], ratio[:, bones.index(right)])
  assert np.all(np.abs(np.log(ratio)) < 0.5) and np.std(np.log(ratio)) > 0.03
  np.testing.assert_allclose(got[:, 0], poses[:, 0])
  for parent, child in skeleton.BONES:
    a, b = got[:, child] - got[:, parent], poses[:, child] - poses[:, parent]
    np.testing.assert_allclose(np.cross(a, b), 0.0, atol=1e-6)
    assert np.all(np.sum(a * b, axis=-1) > 0)


def _standing_pose():
  """A pose facing -y, z up: legs and arms hanging straight down."""
  p = np.zeros((17, 3))
  p[[1, 2, 3]] = [[-100, 0, 0], [-100, 0, -400], [-100, 0, -800]]
  p[[4, 5, 6]] = [[100, 0, 0], [100, 0, -400], [100, 0, -800]]
  p[[7, 8, 9, 10]] = [[0, 0, 200], [0, 0, 500], [0, 0, 550], [0, 0, 650]]
  p[[11, 12, 13]] = [[150, 0, 450], [150, 0, 150], [150, 0, -100]]
  p[[14, 15, 16]] = [[-150, 0, 450], [-150, 0, 150], [-150, 0, -100]]
  return p


class _Donors:
  """Stands in for a numpy Generator: every limb is exchanged (random() gives zeros), and
  pose i takes its limbs from pose `donors[i]`."""

  def __init__(self, donors):
    self.donors = np.asarray(donors)

  def random(self, size):
    return np.zeros(size)

  def integers(self, low, high, size):
    assert (low, high, size) == (0, len(self.donors), len(self.donors))
    return self.donors


def test_mix_limbs_carries_the_donor_limb_in_the_torso_frame_by_hand():
  own = _standing_pose()
  # The donor: the same body with its left arm held straight forward (-y) and a forearm
  # of 400 mm, then turned by 90 degrees about z (x -> y, y -> -x).
  donor = own.copy()
  donor[[12, 13]] = [[150, -300, 450], [150, -700, 450]]
  turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  donor = donor @ turn.T
  # Frames: x from right to left, then up, then x cross up (here -y, the way it faces).
  frame = lifter_cameras.torso_frames(own[None], 'chest')[0]
  np.testing.assert_array_equal(frame, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
  np.testing.assert_allclose(lifter_cameras.torso_frames(donor[None], 'chest')[0],
                             turn @ frame, atol=1e-12)
  got = lifter_cameras.mix_limbs(np.stack([own, donor]), _Donors([1, 0]), 1.0)
  # The pose takes the donor's forward arm in its own frame, with its own forearm (250).
  want = own.copy()
  want[[12, 13]] = [[150, -300, 450], [150, -550, 450]]
  np.testing.assert_allclose(got[0], want, atol=1e-9)
  # The donor takes the hanging arm, turned with it, with its own forearm (400): straight
  # down from its left shoulder at (0, 150, 450). Its legs and right arm were the pose's.
  want = donor.copy()
  want[[12, 13]] = [[0, 150, 150], [0, 150, -250]]
  np.testing.assert_allclose(got[1], want, atol=1e-9)
  np.testing.assert_array_equal(lifter_cameras.mix_limbs(np.stack([own, donor]),
                                                         _Donors([1, 0]), 0.0),
                                np.stack([own, donor]))
  # A donor whose left wrist sits on its elbow has no forearm direction to give: the pose
  # keeps its own limbs rather than NaN. The donor still takes the pose's hanging arm,
  # with its own forearm of length 0.
  broken = donor.copy()
  broken[13] = broken[12]
  got = lifter_cameras.mix_limbs(np.stack([own, broken]), _Donors([1, 0]), 1.0)
  np.testing.assert_array_equal(got[0], own)
  want = broken.copy()
  want[[12, 13]] = [[0, 150, 150], [0, 150, 150]]
  np.testing.assert_allclose(got[1], want, atol=1e-9)


class _ScriptedNormals:
  """Stands in for a numpy Generator: normal() hands out the given draws in order (each
  scaled by its `scale` and shifted by `loc`, as numpy's are)."""

  def __init__(self, draws):
    self.draws = [np.asarray(d, np.float64) for d in draws]

  def normal(self, loc=0.0, scale=1.0, size=None):
    draw = self.draws.pop(0)
    assert draw.shape == np.empty(size).shape
    return loc + scale * draw


def test_bend_limbs_turns_a_bone_and_carries_what_hangs_below_by_hand():
  own = _standing_pose()
  # The left upper arm (shoulder to elbow, joint 12) turned by +90 degrees about x: the
  # hanging arm (0, 0, -300) becomes x cross it = (0, 300, 0), and the forearm (0, 0, -250)
  # turns with it to (0, 250, 0). Then the forearm (joint 13) by -90 degrees about y: a
  # vector along y does not move.
  draws = [[[1.0, 0.0, 0.0]], [2.0],     # axis x (any length), angle 2 x 45 degrees
           [[0.0, 3.0, 0.0]], [-2.0]]    # axis y, angle -90 degrees
  got = lifter_cameras.bend_limbs(own[None], _ScriptedNormals(draws), 45.0,
                                  joints=(12, 13))[0]
  want = own.copy()
  want[[12, 13]] = [[150, 300, 450], [150, 550, 450]]
  np.testing.assert_allclose(got, want, atol=1e-9)
  # The right thigh (joint 2) by +90 degrees about y (z -> x, x -> -z): the hanging leg
  # swings out to -x from the right hip at (-100, 0, 0), the shin carried along to
  # (-400, 0, 0); then the shin (joint 3) by +90 degrees about y from the knee: -x -> +z,
  # the ankle folded up to 400 mm above the knee.
  draws = [[[0.0, 1.0, 0.0]], [1.0], [[0.0, 1.0, 0.0]], [1.0]]
  got = lifter_cameras.bend_limbs(own[None], _ScriptedNormals(draws), 90.0,
                                  joints=(2, 3))[0]
  want = own.copy()
  want[[2, 3]] = [[-500, 0, 0], [-500, 0, 400]]
  np.testing.assert_allclose(got, want, atol=1e-9)
  np.testing.assert_array_equal(lifter_cameras.bend_limbs(own[None], None, 0.0), own[None])
  # Random turns keep every bone's length and never move the torso or the head.
  poses = _poses(6)
  got = lifter_cameras.bend_limbs(poses, np.random.default_rng(0), 20.0)
  for parent, child in skeleton.BONES:
    np.testing.assert_allclose(np.linalg.norm(got[:, child] - got[:, parent], axis=-1),
                               np.linalg.norm(poses[:, child] - poses[:, parent], axis=-1))
  still = [0, 1, 4, 7, 8, 9, 10, 11, 14]
  np.testing.assert_array_equal(got[:, still], poses[:, still])
  assert np.all(np.abs(got[:, [3, 6, 13, 16]] - poses[:, [3, 6, 13, 16]]).max(axis=-1) > 0)
  # The trunk's turn: the thorax about the spine joint carries the neck, head and arms
  # rigidly (every distance among them kept); the legs and the spine joint stay.
  got = lifter_cameras.bend_limbs(poses, np.random.default_rng(0), 20.0,
                                  lifter_cameras.TRUNK_BEND_JOINTS)
  np.testing.assert_array_equal(got[:, :8], poses[:, :8])
  upper = [8, 9, 11, 12, 13, 14, 15, 16]       # the head turns again about the neck
  for a in upper:
    np.testing.assert_allclose(np.linalg.norm(got[:, upper] - got[:, a:a + 1], axis=-1),
                               np.linalg.norm(poses[:, upper] - poses[:, a:a + 1], axis=-1))
  np.testing.assert_allclose(np.linalg.norm(got[:, 10] - got[:, 9], axis=-1),
                             np.linalg.norm(poses[:, 10] - poses[:, 9], axis=-1))
  assert np.all(np.abs(got[:, [8, 10]] - poses[:, [8, 10]]).max(axis=-1) > 0)


class _FixedDraws:
  """Stands in for a numpy Generator: random() and normal() give zeros, uniform() its
  interval's middle."""

  def normal(self, size):
    return np.zeros(size)

  def random(self, size):
    return np.zeros(size)

  def uniform(self, low, high, size):
    return np.full(size, 0.5 * (low + high))


def test_truncation_cuts_below_a_line():
  # Joint j at y = 10 j px (0 to 160): the line lies at 0 + 0.55 x 160 = 88 px, so joints
  # 0 to 8 stay and 9 to 16 are cut.
  joints = np.stack([np.full(17, 50.0), 10.0 * np.arange(17)], axis=-1)[None]
  valid = lifter_inputs.truncation(joints, _FixedDraws(), 0.4)
  assert valid[0].tolist() == [True] * 9 + [False] * 8
  # Each cut joint takes its nearest kept ancestor: for the neck, head, shoulders, elbows
  # and wrists (9 to 16) that is the thorax (8).
  out = lifter_inputs.detector_noise(joints, _FixedDraws(), 0.0, 0.0, 0.0, 0.4)
  np.testing.assert_array_equal(out[0, :9], joints[0, :9])
  np.testing.assert_array_equal(out[0, 9:11], joints[0, [8, 8]])
  np.testing.assert_array_equal(out[0, 11:], joints[0, [8] * 6])
  # Probability 0 cuts nothing and draws nothing from the generator.
  rng = np.random.default_rng(7)
  assert lifter_inputs.truncation(joints, rng, 0.0).all()
  assert rng.random() == np.random.default_rng(7).random()


def test_truncation_at_the_waist_folds_the_lower_body_onto_the_rest():
  # An upright person (y down): head 10, neck 30, thorax and shoulders 50, elbows 100,
  # spine 120, wrists 140, pelvis and hips 200, knees 250, ankles 300 px. The line lies
  # at 10 + 0.55 x 290 = 169.5 px: pelvis, hips, knees and ankles are cut. With the hips
  # gone the pelvis takes the mean of the 10 joints kept, and the legs fold onto it.
  y = {0: 200, 1: 200, 2: 250, 3: 300, 4: 200, 5: 250, 6: 300, 7: 120, 8: 50, 9: 30,
       10: 10, 11: 50, 12: 100, 13: 140, 14: 50, 15: 100, 16: 140}
  joints = np.array([[10.0 * j, float(y[j])] for j in range(17)])[None]
  valid = lifter_inputs.truncation(joints, _FixedDraws(), 0.1)
  assert np.flatnonzero(~valid[0]).tolist() == [0, 1, 2, 3, 4, 5, 6]
  out = lifter_inputs.detector_noise(joints, _FixedDraws(), 0.0, 0.0, 0.0, 0.1)
  kept = list(range(7, 17))
  # x: 10 x mean(7..16) = 115; y: mean of 120, 50, 30, 10, 50, 100, 140, 50, 100, 140.
  np.testing.assert_allclose(out[0, :7], [[115.0, 79.0]] * 7)
  np.testing.assert_array_equal(out[0, kept], joints[0, kept])


def test_settings_are_checked():
  with pytest.raises(ValueError, match='unknown hiden'):
    lifter.train(_poses(4), hiden=3)
  with pytest.raises(ValueError, match=r'dropout_rate is a drop probability in \[0, 1\)'):
    lifter.train(_poses(4), dropout_rate=1.0)
  with pytest.raises(ValueError, match='swap_prob must lie in'):
    lifter.train(_poses(4), swap_prob=0.9)
  with pytest.raises(ValueError, match='truncate_prob must lie in'):
    lifter.train(_poses(4), truncate_prob=float('nan'))
  with pytest.raises(ValueError,
                     match=r'limb_mix_prob is a probability in \[0, 1\] \(got 1.5\)'):
    lifter.train(_poses(4), limb_mix_prob=1.5)
  with pytest.raises(ValueError,
                     match=r'bend_std_deg must lie in \[0, 90\] degrees \(got nan\)'):
    lifter.train(_poses(4), bend_std_deg=float('nan'))
  with pytest.raises(ValueError, match=r'learning_rate must be a finite number > 0 \(got inf\)'):
    lifter.train(_poses(4), learning_rate=float('inf'))
  with pytest.raises(ValueError, match=r'noise_max_px must be a finite number >= 0 \(got inf\)'):
    lifter.train(_poses(4), noise_max_px=float('inf'))
  with pytest.raises(ValueError, match=r"loss must be one of weighted, l2, joint \(got 'l1'\)"):
    lifter.train(_poses(4), loss='l1')
  bad = _poses(4)
  bad[2, 13, 1] = np.nan                  # pose 2's left wrist (joint 13)
  bad[3, 0, 0] = np.inf
  with pytest.raises(ValueError, match=r'lifter: training poses: pose 2 \(of 4\) has a NaN '
                     r'or infinite coordinate at LWrist; 2 pose\(s\) in all'):
    lifter.train(bad)
  with pytest.raises(ValueError, match=r'lifter: val poses: pose 2 \(of 4\) .* at LWrist'):
    lifter.train(_poses(4), val_poses=bad)
  with pytest.raises(ValueError, match=r'training poses must be poses \[N, 17, 3\] \(mm\); '
                     r'got shape \(4, 17, 2\)'):
    lifter.train(_poses(4)[..., :2])
  with pytest.raises(ValueError, match=r'poses to measure on: pose 3 \(of 4\) .* at Hip;'):
    lifter.evaluate_split(None, np.delete(bad, 2, 0)[[0, 1, 1, 2]])
  with pytest.raises(ValueError, match=r'lifter: noise_px \(the test 2D noise, image pixels\) '
                                       'must be a finite number >= 0, got nan'):
    lifter.evaluate_split(None, _poses(2), noise_px=float('nan'))
  assert lifter.subsample(np.arange(10), 4).tolist() == [0, 3, 6, 9]
  assert lifter.subsample(np.arange(3), 4).tolist() == [0, 1, 2]


def test_mirror_averaged_by_hand():
  import tensorflow as tf   # pylint: disable=g-import-not-at-top
  # A linear "lifter": pose joint 11's x = crop x of joint 13 (LWrist); constant 30 mm in
  # joint 12's x and 5 mm in joint 14's y.
  inputs = tf.keras.Input((34,))
  dense = tf.keras.layers.Dense(51)
  net = tf.keras.Model(inputs, tf.keras.layers.Reshape((17, 3))(dense(inputs)))
  kernel = np.zeros((34, 51), np.float32)
  kernel[13 * 2, 11 * 3] = 1.0
  bias = np.zeros(51, np.float32)
  bias[12 * 3], bias[14 * 3 + 1] = 30.0, 5.0
  dense.set_weights([kernel, bias])
  x = np.zeros((1, 17, 2), np.float32)
  x[0, 13, 0], x[0, 16, 0] = 100.0, 40.0    # left wrist at x 100, right wrist at x 40
  out = lifter.mirror_averaged(net, crop_size=256).predict(x.reshape(1, 34), verbose=0)[0]
  # Direct: joint 11 x 100, joint 12 x 30, joint 14 y 5. Mirrored 2D: the left wrist is
  # the right one at 256 - 40 = 216, so the net gives joint 11 x 216, joint 12 x 30,
  # joint 14 y 5; mirrored back (x negated, sides swapped): joint 14 x -216, joint 15 x
  # -30, joint 11 y 5. The mean of the two:
  want = np.zeros((17, 3), np.float32)
  want[11] = [50.0, 2.5, 0.0]
  want[14] = [-108.0, 2.5, 0.0]
  want[12, 0], want[15, 0] = 15.0, -15.0
  np.testing.assert_allclose(out, want, atol=1e-4)


@pytest.mark.slow
def test_training_stops_when_the_loss_is_not_finite():
  # Adam's steps are about the rate itself: at 1e30 the first epoch's loss is NaN.
  with pytest.raises(ValueError, match=r'lifter: the training loss is nan after epoch 1; '
                     r'nothing is saved. Lower --learning_rate \(it is 1e\+30\)'):
    lifter.train(_poses(64), epochs=2, batch_size=16, hidden=16, blocks=1,
                 learning_rate=1e30)


@pytest.mark.slow
def test_a_stopped_training_resumes_from_its_last_epoch(tmp_path):
  folder = str(tmp_path / 'checkpoints')
  settings = dict(epochs=3, batch_size=16, hidden=16, blocks=1)

  class Stop(Exception):
    pass

  def stop_after_epoch_2(line):
    if line.startswith('lifter: epoch 2/3'):
      raise Stop

  with pytest.raises(Stop):
    lifter.train(_poses(48), log=stop_after_epoch_2, checkpoint_dir=folder, **settings)
  saved = json.load(open(os.path.join(folder, lifter.RESUME_FILE)))
  assert saved['epoch'] == 2 and len(saved['history']) == 2
  lines = []
  net, info = lifter.train(_poses(48), log=lines.append, checkpoint_dir=folder, **settings)
  assert lines[0].startswith(f'lifter: resuming from {os.path.join(folder, "ckpt-2")} '
                             '(epoch 2 of 3)')
  assert [line[:17] for line in lines[1:]] == ['lifter: epoch 3/3']
  assert info['history'][:2] == saved['history'] and len(info['history']) == 3
  # The optimizer went on from its step after epoch 2 (2 x 3 steps of 16), not from 0:
  # 9 steps in the last checkpoint.
  import tensorflow as tf   # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(os.path.join(folder, 'ckpt-3'))
  steps = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
           if k.startswith('optimizer/') and 'iter' in k]
  assert steps == [9]
  # A folder of another training is refused, whatever it holds.
  with pytest.raises(ValueError, match=r'holds the checkpoints of a lifter trained with '
                     r'other settings or poses; remove the folder'):
    lifter.train(_poses(48), checkpoint_dir=folder, **dict(settings, hidden=8))
  with pytest.raises(ValueError, match='other settings or poses'):
    lifter.train(_poses(40), checkpoint_dir=folder, **settings)


@pytest.mark.slow
def test_a_folder_with_an_unsaved_training_is_refused_until_it_finishes(tmp_path,
                                                                       monkeypatch):
  out = str(tmp_path / 'lifter')
  training = os.path.join(out, lifter.TRAINING_DIR)
  settings = dict(epochs=1, batch_size=16, hidden=16, blocks=1)
  net, info = lifter.train(_poses(48), checkpoint_dir=training, **settings)
  lifter.save(net, dict(info, results={}), out)
  # Stopped after the save, before the checkpoints were removed: the lifter is its own.
  lifter.load(out)

  class Stop(Exception):
    pass

  def stop_after_epoch_1(line):
    if line.startswith('lifter: epoch 1/2'):
      raise Stop

  shutil.rmtree(training)
  with pytest.raises(Stop):
    lifter.train(_poses(48), log=stop_after_epoch_1, checkpoint_dir=training,
                 **dict(settings, epochs=2))
  with pytest.raises(ValueError) as e:
    lifter.load(out)
  assert str(e.value) == (
      f'{out} holds a lifter training that has not saved its lifter (epoch 1 of 2 in '
      f'{training}): the lifter saved there is an earlier one. Run the same '
      'tools/train_lifter.py command again to finish the training, or remove '
      f'{training} to use the earlier lifter.')
  # Stopped in its first epoch, before any checkpoint: refused as well.
  import tensorflow as tf   # pylint: disable=g-import-not-at-top
  shutil.rmtree(training)

  def stop(*args, **kwargs):
    raise Stop

  with monkeypatch.context() as patch:
    patch.setattr(tf.keras.Model, 'fit', stop)
    with pytest.raises(Stop):
      lifter.train(_poses(48), checkpoint_dir=training, **dict(settings, epochs=2))
  with pytest.raises(ValueError, match=r'holds a lifter training that has not saved its '
                     r'lifter \(epoch 0 of 2 in '):
    lifter.load(out)
  resume = os.path.join(training, lifter.RESUME_FILE)
  with open(resume, 'w') as f:
    f.write('{"key": ')
  with pytest.raises(ValueError, match=r'checkpoints/resume.json is not readable \(Expecting'):
    lifter.load(out)
  # A lifter saved before training_sha256 existed, with no training beside it, loads.
  shutil.rmtree(training)
  doc = json.load(open(os.path.join(out, lifter.CONFIG)))
  del doc['training_sha256']
  json.dump(doc, open(os.path.join(out, lifter.CONFIG), 'w'))
  lifter.load(out)


@pytest.mark.slow
@pytest.mark.parametrize('stopped_in', ['history', 'checkpoint'])
def test_a_training_stopped_while_saving_an_epoch_keeps_every_epochs_history(
    tmp_path, monkeypatch, stopped_in):
  import tensorflow as tf   # pylint: disable=g-import-not-at-top
  folder = str(tmp_path / 'checkpoints')
  settings = dict(epochs=3, batch_size=16, hidden=16, blocks=1)

  class Stop(Exception):
    pass

  write_json, save = lifter.manifest_lib.write_json_atomic, tf.train.CheckpointManager.save
  def stop_history(path, doc, **kwargs):
    if doc.get('epoch') == 2:
      raise Stop
    write_json(path, doc, **kwargs)
  def stop_checkpoint(self, checkpoint_number=None, **kwargs):
    if checkpoint_number == 2:
      raise Stop
    return save(self, checkpoint_number=checkpoint_number, **kwargs)
  with monkeypatch.context() as patch:
    if stopped_in == 'history':
      patch.setattr(lifter.manifest_lib, 'write_json_atomic', stop_history)
    else:
      patch.setattr(tf.train.CheckpointManager, 'save', stop_checkpoint)
    with pytest.raises(Stop):
      lifter.train(_poses(48), checkpoint_dir=folder, **settings)
  lines = []
  _, info = lifter.train(_poses(48), log=lines.append, checkpoint_dir=folder, **settings)
  # Whichever of the two writes the stop came in, epoch 2 is trained again from the
  # checkpoint of epoch 1, and the history holds all three epochs.
  assert lines[0].startswith(f'lifter: resuming from {os.path.join(folder, "ckpt-1")} '
                             '(epoch 1 of 3)')
  assert len(info['history']) == 3 and lines[1].startswith('lifter: epoch 2/3')


@pytest.mark.slow
def test_train_save_load_and_command_line(tmp_path):
  net, info = lifter.train(_poses(64), val_poses=_poses(8, 1), epochs=2, batch_size=16,
                           hidden=16, max_train_poses=48)
  assert info['train_poses'] == 32 and len(info['history']) == 2    # every 2nd of 64
  assert set(info['val']) == {'poses', 'noise_px', 'gt2d', 'noisy2d'}
  folder = lifter.save(net, dict(info, results={'val': info['val']}), str(tmp_path / 'l'))
  loaded, config = lifter.load(folder)
  x = lifter.test_inputs(_poses(5, 2))[0]
  np.testing.assert_allclose(loaded.predict(x, verbose=0),
                             lifter.mirror_averaged(net).predict(x, verbose=0), atol=1e-4)
  assert config['mirror_average'] is True
  assert config['crop_size'] == 256 and config['missing_joints'] == 'ancestor'
  assert config['frame'] == 'ray' and 'ray-aligned frame' in config['output']
  assert config['network'] == dict(input_dim=34, hidden=16, blocks=2, dropout_rate=0.1)
  # A lifter saved before the mirror average existed is served as it was measured.
  doc = json.load(open(tmp_path / 'l' / 'lifter.json'))
  del doc['mirror_average']
  json.dump(doc, open(tmp_path / 'l' / 'lifter.json', 'w'))
  old, config = lifter.load(folder)
  np.testing.assert_allclose(old.predict(x, verbose=0), net.predict(x, verbose=0), atol=1e-4)
  assert config['mirror_average'] is False
  with pytest.raises(ValueError, match='is not a saved lifter: lifter.json is missing'):
    lifter.load(str(tmp_path))
  # Saving over a lifter leaves no temporary file; a settings file that is not what
  # `save` writes is refused, naming the file and the key.
  open(os.path.join(folder, 'lifter.json.tmp99'), 'w').close()    # a save interrupted
  lifter.save(net, dict(info, results={}), folder)
  assert sorted(os.listdir(folder)) == ['lifter.json', 'lifter.weights.h5']
  config_path = tmp_path / 'l' / 'lifter.json'
  good = json.load(open(config_path))
  retrain = '; train the lifter again (python tools/train_lifter.py --out=FOLDER).'
  for change, message in [
      (dict(frame='side'), '"frame" must be \'camera\' or \'ray\', not \'side\''),
      (dict(crop_size=None), '"crop_size" must be a number > 0, not None'),
      (dict(missing_joints='zero'), '"missing_joints" must be \'ancestor\', not \'zero\''),
      (dict(network=dict(good['network'], hidden=0)), '"hidden" must be a whole number >= '
       '1, not 0'),
      (dict(network=[1]), 'no "network" settings')]:
    json.dump(dict(good, **change), open(config_path, 'w'))
    with pytest.raises(ValueError) as e:
      lifter.load(folder)
    assert str(e.value) == f'{config_path}: {message}{retrain}'
  config_path.write_text('{"network": ')
  with pytest.raises(ValueError, match=r'lifter.json: not readable as JSON \(Expecting value'):
    lifter.load(folder)
  json.dump(dict(good, network=dict(good['network'], hidden=8)), open(config_path, 'w'))
  with pytest.raises(ValueError, match=r'lifter.weights.h5: not the weights of the network '
                     r'.*lifter.json describes'):
    lifter.load(folder)
  # The command line on a tiny bank.
  bank_poses = _poses(40, 3)
  subject = np.array([1] * 24 + [13] * 8 + [11] * 4 + [131] * 4)
  bank = posebank.PoseBank(bank_poses, subject, np.zeros(40, np.int64), np.arange(40),
                           posebank.split_names(subject, (13,)), [dict(file='x.bvh')])
  summary = posebank.summarise(bank, threshold_mm=20.0, val_subjects=(13,))
  npz, _ = posebank.save(bank, summary, str(tmp_path / 'bank.npz'))
  out = tmp_path / 'cli'
  proc = subprocess.run(
      [sys.executable, 'tools/train_lifter.py', f'--bank={npz}', f'--out={out}',
       '--epochs=1', '--hidden=8', '--batch_size=8'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  doc = json.load(open(out / 'lifter.json'))
  assert list(doc['results']) == ['val', 'test subject 11', 'test subject 131',
                                  'test (11 + 131)']
  assert doc['results']['test (11 + 131)']['poses'] == 8
  assert '| test (11 + 131) | 8 |' in proc.stdout
  assert sorted(os.listdir(out)) == ['lifter.json', 'lifter.weights.h5']  # no checkpoints
  proc = subprocess.run(
      [sys.executable, 'tools/train_lifter.py', f'--bank={tmp_path}/none.npz'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and 'train_lifter: error: ' in proc.stderr
  assert 'pose bank not found' in proc.stderr
  # Refused before any training: a test noise that is not a number, an --out that is a
  # file.
  for flag, message in [('--noise_px=nan', '--noise_px must be a finite number >= 0 (got '
                         'nan).'),
                        (f'--out={npz}', f'--out={npz} is a file; give a folder for the '
                         'lifter.')]:
    proc = subprocess.run([sys.executable, 'tools/train_lifter.py', f'--bank={npz}', flag],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip().endswith(
        f'train_lifter: error: {message}'), proc.stderr[-500:]
  # A bank without subject 131: the test row says whose poses it measured.
  keep = subject != 131
  bank = posebank.PoseBank(bank_poses[keep], subject[keep], np.zeros(36, np.int64),
                           np.arange(36), posebank.split_names(subject[keep], (13,)),
                           [dict(file='x.bvh')])
  npz, _ = posebank.save(bank, summary, str(tmp_path / 'bank11.npz'))
  proc = subprocess.run(
      [sys.executable, 'tools/train_lifter.py', f'--bank={npz}', f'--out={out}',
       '--epochs=1', '--hidden=8', '--batch_size=8'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (f'warning: {npz} has no poses of test subject(s) 131; the test row covers 11 '
          'alone.') in proc.stdout
  doc = json.load(open(out / 'lifter.json'))
  assert list(doc['results']) == ['val', 'test subject 11', 'test (11)']
  # --train_on_test: the test poses join the training ones (24 + 4 of subject 11), and
  # lifter.json and the table say that the test rows are then in-sample.
  proc = subprocess.run(
      [sys.executable, 'tools/train_lifter.py', f'--bank={npz}', f'--out={out}',
       '--epochs=1', '--hidden=8', '--batch_size=8', '--train_on_test'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  doc = json.load(open(out / 'lifter.json'))
  assert (doc['trained_on_test'], doc['train_poses']) == (True, 28)
  assert ('Trained on the test subjects\' poses as well (--train_on_test): the test rows '
          'are in-sample, a bound rather than a held-out measure.') in proc.stdout

import numpy as np
import pytest

from fbi3d import fbi
from fbi3d import skeleton


def pose_from_bones(vectors):
  """Joints from one vector per bone of skeleton.BONES (root at the origin)."""
  pose = np.zeros((17, 3))
  for (parent, child), v in zip(skeleton.BONES, vectors):
    pose[child] = pose[parent] + v
  return pose


def bone_at(angle_deg, length=200.0):
  """A bone in the y-z plane, `angle_deg` out of the image plane (positive: away)."""
  a = np.deg2rad(angle_deg)
  return np.array([0.0, np.cos(a), np.sin(a)]) * length


def test_labels_around_the_threshold():
  vectors = [bone_at(0.0)] * 16
  vectors[1] = bone_at(-9.9)    # RHip->RKnee, FBI bone 0: parallel
  vectors[2] = bone_at(-10.1)   # RKnee->RAnkle, FBI bone 1: forward
  vectors[4] = bone_at(10.1)    # LHip->LKnee, FBI bone 2: backward
  vectors[5] = bone_at(9.9)     # LKnee->LAnkle, FBI bone 3: parallel
  vectors[6] = bone_at(80.0)    # Hip->Spine, FBI bone 4: backward
  vectors[7] = bone_at(-90.0)   # Spine->Thorax, FBI bone 5: forward
  labels = fbi.fbi_labels(pose_from_bones(vectors), threshold_deg=10.0)
  np.testing.assert_array_equal(labels, [2, 0, 1, 2, 1, 0] + [2] * 8)


def test_label_exactly_at_the_threshold_is_not_parallel():
  # Integer bones (0, 12, +-5) have |s| = 5/13 exactly; the threshold is the angle whose
  # sine is 5/13, so |s| < sin(threshold) is false: forward or backward, not parallel.
  threshold = np.rad2deg(np.arcsin(5.0 / 13.0))
  assert np.sin(np.deg2rad(threshold)) == 5.0 / 13.0
  vectors = [np.array([0.0, 13.0, 0.0])] * 16
  vectors[1] = np.array([0.0, 12.0, 5.0])
  vectors[2] = np.array([0.0, 12.0, -5.0])
  vectors[4] = np.array([0.0, 13.0, 4.99])
  labels = fbi.fbi_labels(pose_from_bones(vectors), threshold_deg=threshold)
  assert labels[0] == fbi.BACKWARD
  assert labels[1] == fbi.FORWARD
  assert labels[2] == fbi.PARALLEL


def test_labels_batch_shape_and_zero_bone_error():
  poses = np.stack([pose_from_bones([bone_at(45.0)] * 16)] * 3)
  assert fbi.fbi_labels(poses).shape == (3, 14)
  with pytest.raises(ValueError, match='zero length'):
    fbi.fbi_labels(np.zeros((17, 3)))


def test_flip_consistency():
  rng = np.random.default_rng(1)
  pose = rng.normal(size=(17, 3)) * 200
  mirrored = pose[list(skeleton.JOINT_FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
  np.testing.assert_array_equal(fbi.fbi_labels(mirrored),
                                fbi.flip_labels(fbi.fbi_labels(pose)))


def test_accuracy_overall_and_per_bone():
  target = np.zeros((2, 14), np.int64)
  pred = np.zeros((2, 14), np.int64)
  pred[0, 0] = 1
  pred[:, 13] = 2
  overall, per_bone = fbi.fbi_accuracy(pred, target)
  assert overall == pytest.approx(25 / 28)
  assert per_bone[0] == 0.5 and per_bone[13] == 0.0 and per_bone[5] == 1.0
  probs = np.eye(3)[pred]
  assert fbi.fbi_accuracy(probs, target)[0] == pytest.approx(25 / 28)


def test_class_balance():
  labels = np.array([[0] * 14, [1] * 14, [2] * 14, [2] * 14])
  np.testing.assert_allclose(fbi.class_balance(labels)[3], [0.25, 0.25, 0.5])


def test_confusion_counts_true_against_predicted_class():
  target = np.array([[0] * 5 + [1] * 5 + [2] * 4])
  pred = np.array([[0, 0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 2, 0, 1]])
  expected = [[3, 1, 1], [1, 2, 2], [1, 1, 2]]
  np.testing.assert_array_equal(fbi.confusion(pred, target), expected)
  np.testing.assert_array_equal(fbi.confusion(np.eye(3)[pred], target), expected)
  with pytest.raises(ValueError, match='shapes differ'):
    fbi.confusion(pred[:, :13], target)


def test_accuracy_by_angle_bins_each_bone_by_its_true_angle():
  # The 14 FBI bones at these angles out of the image plane (the hips, not FBI bones, at 0).
  angles = [3, -7, 12, 17, -25, 40, 60, -90, 6, 0, 44.9, 46, -22, 11]
  by_bone = dict(zip(skeleton.FBI_BONES, angles))
  pose = pose_from_bones([bone_at(by_bone.get(b, 0)) for b in skeleton.BONES])
  target = fbi.fbi_labels(pose)[None]
  pred = target.copy()
  pred[0, [1, 4, 7]] = (target[0, [1, 4, 7]] + 1) % 3     # wrong at -7, -25 and -90 degrees
  rows = fbi.accuracy_by_angle(pred, target, pose[None])
  assert [(r['low'], r['high']) for r in rows] == [
      (0, 5), (5, 10), (10, 15), (15, 20), (20, 30), (30, 45), (45, 90)]
  # Bins: [0, 5): 3, 0; [5, 10): -7, 6; [10, 15): 12, 11; [15, 20): 17; [20, 30): -25,
  # -22; [30, 45): 40, 44.9; [45, 90]: 60, -90, 46.
  counts = [2, 2, 2, 1, 2, 2, 3]
  np.testing.assert_allclose([r['bones'] for r in rows], np.array(counts) / 14)
  np.testing.assert_allclose([r['accuracy'] for r in rows], [1, 0.5, 1, 1, 0.5, 1, 2 / 3])
  # An empty bin has no accuracy.
  rows = fbi.accuracy_by_angle(pred, target, pose[None], edges=(0, 1, 2, 90))
  assert rows[1] == dict(low=1.0, high=2.0, bones=0.0, accuracy=None)


def test_accuracy_under_depth_noise_is_the_true_class_probability():
  # 12 FBI bones in the image plane (200 mm across it), FBI bone 0 200 mm across and 400
  # mm away, bone 1 400 mm nearer. At 45 degrees a bone is parallel while |dz| < 200 mm.
  vectors = [np.array([0.0, 200.0, 0.0])] * 16
  vectors[1] = np.array([0.0, 200.0, 400.0])      # FBI bone 0: backward
  vectors[2] = np.array([0.0, 200.0, -400.0])     # FBI bone 1: forward
  pose = pose_from_bones(vectors)[None]
  np.testing.assert_array_equal(fbi.fbi_labels(pose, 45.0)[0], [1, 0] + [2] * 12)
  assert fbi.accuracy_under_depth_noise(pose, 0.0, 45.0) == 1.0
  # Per-joint std 100 sqrt 2: a bone's depth difference carries N(0, 200^2). Parallel
  # stays parallel with P(|N(0, 1)| < 1) = 0.6826894921; the bone 400 mm away stays
  # backward with P(400 + N > 200) = P(N(0, 1) > -1) = 0.8413447461, the near one likewise.
  expected = (12 * 0.6826894921 + 2 * 0.8413447461) / 14
  assert fbi.accuracy_under_depth_noise(pose, 100.0 * np.sqrt(2.0), 45.0) == pytest.approx(
      expected, abs=1e-9)


def test_depth_equivalent_sigma_and_the_noise_for_an_accuracy():
  pose = pose_from_bones([np.array([0.0, 200.0, 0.0])] * 16)[None]
  # Every joint 30 mm deeper: no bone's depth difference changes.
  assert fbi.depth_equivalent_sigma(pose + [0.0, 0.0, 30.0], pose) == 0.0
  # The right ankle (joint 3, the child of FBI bone 1 alone) 40 mm deeper: one of the 14
  # bones is 40 mm off, so sqrt(40^2 / 14 / 2) = 7.5592894602 mm.
  coarse = pose.copy()
  coarse[0, 3, 2] += 40.0
  assert fbi.depth_equivalent_sigma(coarse, pose) == pytest.approx(7.5592894602, abs=1e-9)
  # The noise for an accuracy inverts the expected accuracy (the case above).
  vectors = [np.array([0.0, 200.0, 0.0])] * 16
  vectors[1] = np.array([0.0, 200.0, 400.0])
  pose = pose_from_bones(vectors)[None]
  accuracy = fbi.accuracy_under_depth_noise(pose, 100.0 * np.sqrt(2.0), 45.0)
  assert fbi.sigma_for_accuracy(pose, accuracy, 45.0) == pytest.approx(
      100.0 * np.sqrt(2.0), abs=1e-4)
  assert fbi.sigma_for_accuracy(pose, 1.0, 45.0) == 0.0
  # Noise alone keeps a parallel bone parallel with P(|N(0, 1)| < 200 / (1000 sqrt 2))
  # > 0.11 and the backward one backward with P > 0.5: 0.05 is below any noise up to
  # 1000 mm, which the answer says rather than returning 1000.
  assert fbi.sigma_for_accuracy(pose, 0.05, 45.0) is None

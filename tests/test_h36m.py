# Over 400 lines: three readers checked on the same frames, and the records they all write.
"""Human3.6M readers (original release, VideoPose3D archives, Martinez h5 files), the
records they convert to, and lifting-only training: on files in the exact formats,
written here (2 subjects, 2 takes, the 4 cameras, 3 frames)."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import h36m
from fbi3d.data import h36m_layout
from fbi3d.data import h36m_martinez
from fbi3d.data import h36m_original
from fbi3d.data import h36m_records
from fbi3d.data import h36m_videopose3d
from fbi3d.data import pipeline
from fbi3d.data import summary

ROOT = os.path.join(os.path.dirname(__file__), '..')
FRAMES = 3


def _takes():
  rng = np.random.default_rng(0)
  takes = {}
  for subject in (1, 9):
    for take in ('Directions 1', 'Walking'):
      action = skeleton.action_index(h36m.parse_action(take)[0])
      takes[(subject, take)] = np.stack(
          [body.sample_pose(rng, action) for _ in range(FRAMES)])
  return takes


@pytest.fixture(scope='module')
def layouts(tmp_path_factory):
  root = tmp_path_factory.mktemp('h36m')
  takes = _takes()
  h36m_layout.write_original(str(root / 'original'), takes)
  h36m_layout.write_videopose3d(str(root / 'videopose3d'), takes)
  h36m_layout.write_martinez(str(root / 'martinez'), takes)
  return root, takes


def _by_key(items):
  return {(s.subject, s.take, s.camera): s for s in items}


def _quiet(_):
  pass


# ---------------------------------------------------------------------------------------
# Joints, actions, cameras.


def test_select_joints_takes_the_17_of_32():
  poses = np.arange(32 * 3, dtype=np.float64).reshape(1, 32, 3)
  out = h36m.select_joints(poses)
  # Hip 0, RHip 1, RKnee 2, RAnkle 3, LHip 6, LKnee 7, LAnkle 8, Spine 12, Thorax 13,
  # Neck 14, Head 15, LShoulder 17, LElbow 18, LWrist 19, RShoulder 25, RElbow 26,
  # RWrist 27 of the 32.
  expected = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
  np.testing.assert_array_equal(out[0, :, 0], np.array(expected) * 3.0)
  assert out.shape == (1, 17, 3)
  with pytest.raises(h36m.H36MError, match=r'expected 32 joints.*\(4, 17, 3\)'):
    h36m.select_joints(np.zeros((4, 17, 3)))


@pytest.mark.parametrize('name, expected', [
    ('Directions 1', ('Directions', 'Directions 1')),
    ('Directions_1', ('Directions', 'Directions 1')),
    ('TakingPhoto', ('Photo', 'TakingPhoto')),
    ('WalkingDog 1', ('WalkDog', 'WalkingDog 1')),
    ('SittingDown 2', ('SittingDown', 'SittingDown 2')),
    ('WalkTogether', ('WalkTogether', 'WalkTogether')),
])
def test_parse_action(name, expected):
  assert h36m.parse_action(name) == expected


def test_parse_action_refuses_an_unknown_action():
  with pytest.raises(h36m.H36MError, match=r"unknown action 'Dancing 1'"):
    h36m.parse_action('Dancing 1')


def test_quaternion_matrix():
  np.testing.assert_allclose(h36m.quaternion_matrix((1, 0, 0, 0)), np.eye(3))
  half = np.sqrt(0.5)
  # 90 degrees about z: x -> y, y -> -x.
  np.testing.assert_allclose(h36m.quaternion_matrix((half, 0, 0, half)),
                             [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)


def test_camera_centre_and_axis():
  cam = h36m.camera_parameters(1, '54138969')
  q, centre = h36m.EXTRINSICS[1][0]
  np.testing.assert_allclose(h36m.to_camera(np.array(centre), cam), [0, 0, 0], atol=1e-9)
  axis = h36m.quaternion_matrix(q) @ [0.0, 0.0, 1.0]
  np.testing.assert_allclose(h36m.to_camera(np.array(centre) + 1000.0 * axis, cam),
                             [0, 0, 1000.0], atol=1e-9)
  with pytest.raises(h36m.H36MError, match='no published camera placement for subject S2'):
    h36m.camera_parameters(2, '54138969')
  with pytest.raises(h36m.H36MError, match="unknown camera '123'"):
    h36m.camera_parameters(1, '123')


def test_projection_with_distortion_by_hand():
  cam = h36m.camera_parameters(1, '54138969')
  fx, fy = 1145.0494384765625, 1143.7811279296875
  cx, cy = 512.54150390625, 515.4514770507812
  k1, k2, k3 = -0.20709891617298126, 0.24777518212795258, -0.0030751503072679043
  p1, p2 = -0.0009756988729350269, -0.00142447161488235
  np.testing.assert_allclose(h36m.to_image(np.array([0.0, 0.0, 5000.0]), cam), [cx, cy])
  # u = (0.1, 0), r^2 = 0.01.
  radial = 1 + k1 * 0.01 + k2 * 0.01 ** 2 + k3 * 0.01 ** 3
  u = 0.1 * (radial + p2 * 0.1) + p2 * 0.01
  v = p1 * 0.01
  np.testing.assert_allclose(h36m.to_image(np.array([500.0, 0.0, 5000.0]), cam),
                             [fx * u + cx, fy * v + cy], rtol=1e-12)


def test_subject_split():
  assert [h36m.split_of(s, h36m.TRAIN_SUBJECTS, (), h36m.TEST_SUBJECTS)
          for s in (1, 5, 6, 7, 8, 9, 11, 2)] == ['Train'] * 5 + ['Test', 'Test', None]
  assert h36m.split_of(8, h36m.TRAIN_SUBJECTS, (8,), h36m.TEST_SUBJECTS) == 'Val'
  with pytest.raises(ValueError, match=r'\[9\] are in both the train and the test'):
    h36m.check_subjects((1, 9), (), (9, 11))


# ---------------------------------------------------------------------------------------
# The three readers on files in their formats.


def test_three_sources_give_the_same_camera_frame_poses(layouts):
  root, takes = layouts
  original = _by_key(h36m_original.sequences(str(root / 'original')))
  videopose = _by_key(h36m_videopose3d.sequences(str(root / 'videopose3d')))
  martinez = _by_key(h36m_martinez.sequences(str(root / 'martinez')))
  assert len(original) == 2 * 2 * 4
  assert set(original) == set(videopose) == set(martinez)
  for key, seq in original.items():
    subject, take, camera = key
    cam = h36m.camera_parameters(subject, camera)
    expected = geometry.world_to_camera(takes[(subject, take)], cam['rotation'],
                                        cam['centre'])
    # float32 files: millimetres at about 5 m carry about 0.5 micrometre steps.
    np.testing.assert_allclose(seq.pose3d, expected, atol=2e-3)
    np.testing.assert_allclose(videopose[key].pose3d, seq.pose3d, atol=2e-3)
    np.testing.assert_allclose(martinez[key].pose3d, seq.pose3d, atol=2e-3)
    # The stored 2D is the stored 3D through the stored camera, lens distortion included.
    np.testing.assert_allclose(seq.pose2d, h36m.to_image(seq.pose3d, cam), atol=1e-3)
    assert seq.action == h36m.parse_action(take)[0]


def test_martinez_cameras_are_the_published_ones(layouts):
  root, _ = layouts
  cameras = h36m_martinez.read_cameras(str(root / 'martinez' / 'cameras.h5'))
  assert sorted(cameras) == [(s, c) for s in (1, 9) for c in h36m.CAMERAS]
  for (subject, camera), cam in cameras.items():
    published = h36m.camera_parameters(subject, camera)
    for k in ('rotation', 'centre', 'intrinsics', 'distortion'):
      np.testing.assert_allclose(cam[k], published[k], rtol=1e-12)
  # The file stores the rotation transposed, as the real cameras.h5 does (its authors'
  # loader transposes R after reading): read as stored, two of S1's four cameras would
  # see the middle of the capture volume (1 m up) behind them; read right, all four see
  # it ahead, 4.1 to 5.5 m away.
  import h5py   # pylint: disable=g-import-not-at-top
  middle = np.array([0.0, 0.0, 1000.0])
  with h5py.File(str(root / 'martinez' / 'cameras.h5'), 'r') as f:
    stored = [np.asarray(f[f'subject1/camera{c}/R']) for c in range(1, 5)]
  depths_as_stored = [(r @ (middle - cameras[(1, cam)]['centre']))[2]
                      for r, cam in zip(stored, h36m.CAMERAS)]
  depths = [h36m.to_camera(middle, cameras[(1, cam)])[2] for cam in h36m.CAMERAS]
  assert sum(d < 0 for d in depths_as_stored) == 2
  assert all(4000 < d < 6000 for d in depths), depths


def test_stacked_hourglass_joints_in_mpii_order(tmp_path):
  import h5py   # pylint: disable=g-import-not-at-top
  poses = np.tile(np.arange(16, dtype=np.float64)[None, :, None], (2, 1, 2))
  path = str(tmp_path / 'Walking.54138969.h5')
  with h5py.File(path, 'w') as f:
    f['poses'] = poses
  out = h36m_martinez.read_detections(path)
  # Hip <- pelvis 6, RHip <- 2, RKnee <- 1, RAnkle <- 0, LHip <- 3, LKnee <- 4, LAnkle <- 5,
  # Spine <- thorax 7, Thorax <- upper neck 8, Neck <- upper neck 8, Head <- head top 9,
  # LShoulder 13, LElbow 14, LWrist 15, RShoulder 12, RElbow 11, RWrist 10.
  np.testing.assert_array_equal(
      out[0, :, 0], [6, 2, 1, 0, 3, 4, 5, 7, 8, 8, 9, 13, 14, 15, 12, 11, 10])


def test_stacked_hourglass_reader_matches_the_projection(layouts):
  root, _ = layouts
  gt = _by_key(h36m_martinez.sequences(str(root / 'martinez')))
  sh = _by_key(h36m_martinez.sequences(str(root / 'martinez'), pose2d='sh'))
  for key, seq in sh.items():
    projected = h36m.to_image(gt[key].pose3d, gt[key].camera_dict())
    keep = [j for j in range(17) if j != skeleton.JOINT_NAMES.index('Neck')]
    np.testing.assert_allclose(seq.pose2d[:, keep], projected[:, keep], atol=1e-3)
    np.testing.assert_allclose(seq.pose2d[:, 9], projected[:, 8], atol=1e-3)


# ---------------------------------------------------------------------------------------
# Records.


def test_records_of_the_videopose3d_archives(layouts, tmp_path):
  root, takes = layouts
  out = str(tmp_path / 'records')
  manifest = h36m_records.write_records(
      h36m_videopose3d.sequences(str(root / 'videopose3d')), out, source='videopose3d',
      input_dir=str(root / 'videopose3d'), every_nth=2, crop_size=64, log=_quiet)
  # 2 takes x 4 cameras x frames 0 and 2 per subject.
  assert manifest['splits']['train']['num_examples'] == 16
  assert manifest['splits']['test']['num_examples'] == 16
  assert manifest['splits']['train']['subjects'] == [1]
  assert manifest['splits']['test']['subjects'] == [9]
  assert manifest['lifting_only'] is True
  assert manifest['protocol']['every_nth'] == 2
  assert manifest['protocol']['frame_rate'] == 25.0
  assert manifest['skipped'] == []
  examples = pipeline.read_examples(out, 'train')
  first = examples[0]
  assert first['meta/source_id'] == b'S1/Directions 1.54138969:000000'
  assert [e['meta/source_id'][-6:] for e in examples[:2]] == [b'000000', b'000002']
  assert first['meta/action'] == skeleton.ACTIONS.index('Directions')
  assert first['meta/subject'] == 1 and first['image/size'] == 0
  cam = h36m.camera_parameters(1, '54138969')
  pose = geometry.world_to_camera(takes[(1, 'Directions 1')][0], cam['rotation'],
                                  cam['centre'])
  np.testing.assert_allclose(first['pose3d/camera'], pose - pose[0], atol=2e-3)
  box = first['crop/box']
  np.testing.assert_allclose(geometry.crop_to_image(first['pose2d/crop'], box, 64),
                             h36m.to_image(pose, cam), atol=2e-3)
  np.testing.assert_allclose(first['camera/intrinsics'], cam['intrinsics'], rtol=1e-6)
  arrays = pipeline.read_arrays(out, 'test')
  assert arrays['pose3d/camera'].shape == (16, 17, 3)
  np.testing.assert_array_equal(arrays['meta/subject'], np.full(16, 9))


def test_records_with_video_crops(layouts, tmp_path):
  root, _ = layouts
  out = str(tmp_path / 'records')
  manifest = h36m_records.write_records(
      h36m_original.sequences(str(root / 'original')), out, source='original',
      input_dir=str(root / 'original'), crop_size=64, log=_quiet)
  assert manifest['lifting_only'] is False
  assert manifest['splits']['train']['num_examples'] == 2 * 4 * FRAMES
  ex = pipeline.read_examples(out, 'train', 1)[0]
  assert ex['image/size'] == 64
  import cv2   # pylint: disable=g-import-not-at-top
  crop = cv2.imdecode(np.frombuffer(ex['image/encoded'], np.uint8), cv2.IMREAD_COLOR)
  assert crop.shape == (64, 64, 3)
  # The bones are drawn in (40, 200, 240) on grey 96: the crop centre lies on the body.
  x, y = np.round(ex['pose2d/crop'][skeleton.JOINT_NAMES.index('Spine')]).astype(int)
  assert crop[y, x, 1] > 150


# ---------------------------------------------------------------------------------------
# Bad input.


def _convert(reader, path, out, strict=False, overwrite=False, **kw):
  return h36m_records.write_records(reader.sequences(str(path), **kw), str(out), source='test',
                                    input_dir=str(path), crop_size=64, strict=strict,
                                    overwrite=overwrite, log=_quiet)


def test_missing_camera_is_skipped_and_counted(tmp_path):
  import h5py   # pylint: disable=g-import-not-at-top
  root = tmp_path / 'martinez'
  h36m_layout.write_martinez(str(root), _takes(), detections=False)
  with h5py.File(str(root / 'cameras.h5'), 'a') as f:
    del f['subject9/camera2']
  manifest = _convert(h36m_martinez, root, tmp_path / 'out')
  assert manifest['skipped_by_reason'] == {'missing_camera': 2}
  # The skips are not of one split: the summary's per-split column says so rather than 0.
  lines = summary.format_manifest(manifest).splitlines()
  assert [line.split()[:3] for line in lines[2:4]] == [
      ['train', str(manifest['splits']['train']['num_examples']), '-'],
      ['test', str(manifest['splits']['test']['num_examples']), '-']]
  assert 'skipped: missing_camera 2' in lines
  assert 'no camera 55011271 for subject 9' in manifest['skipped'][0]['reason']
  assert manifest['splits']['test']['num_examples'] == 2 * 3 * FRAMES
  # The takes hold subjects 1 and 9 only: the protocol's others are named in the notes.
  assert [n for n in manifest['notes'] if 'of the protocol' in n] == [
      'train: subject(s) S5, S6, S7, S8 of the protocol have no converted sequence: the '
      'split is not the protocol\'s',
      'test: subject(s) S11 of the protocol have no converted sequence: the split is not '
      'the protocol\'s']
  with pytest.raises(h36m.H36MError, match='no camera 55011271 for subject 9'):
    _convert(h36m_martinez, root, tmp_path / 'strict', strict=True)


def test_3d_of_another_unit_is_skipped_and_counted(tmp_path):
  takes = _takes()
  for key in [k for k in takes if k[0] == 9]:
    takes[key] = takes[key] / 1000.0               # subject 9 in metres
  root = tmp_path / 'martinez'
  h36m_layout.write_martinez(str(root), takes, detections=False)
  manifest = _convert(h36m_martinez, root, tmp_path / 'out')
  assert manifest['skipped_by_reason'] == {'bad_units': 8}       # 2 takes x 4 cameras
  assert manifest['skipped'][0]['reason'].endswith(
      'long (median), not 300 to 650 mm: the 3D is not in the millimetres its reader '
      'expects (a file of another unit or release)')
  assert list(manifest['splits']) == ['train']


def test_short_video_is_skipped_whole(tmp_path):
  root = tmp_path / 'original'
  takes = {(1, 'Walking'): _takes()[(1, 'Walking')]}
  h36m_layout.write_original(str(root), takes, video_frames=FRAMES - 1)
  h36m_layout.write_original(str(tmp_path / 'full'), {(1, 'Eating'): takes[(1, 'Walking')]})
  for camera in h36m.CAMERAS:
    os.replace(tmp_path / 'full' / 'S1' / 'Videos' / f'Eating.{camera}.mp4',
               root / 'S1' / 'Videos' / f'Eating.{camera}.mp4')
  for sub in ('D3_Positions_mono', 'D2_Positions'):
    for camera in h36m.CAMERAS:
      os.replace(tmp_path / 'full' / 'S1' / 'MyPoseFeatures' / sub / f'Eating.{camera}.cdf',
                 root / 'S1' / 'MyPoseFeatures' / sub / f'Eating.{camera}.cdf')
  manifest = _convert(h36m_original, root, tmp_path / 'out')
  assert manifest['skipped_by_reason'] == {'short_video': 4}
  assert 'the video ends after 2 frames, but its pose file has 3' in (
      manifest['skipped'][0]['reason'])
  # Nothing of a skipped sequence is written: only Eating's 4 cameras x 3 frames.
  assert manifest['splits']['train']['num_examples'] == 4 * FRAMES
  assert {s['take'] for s in manifest['sequences']} == {'Eating'}


def test_truncated_files_unknown_actions_and_empty_subjects(tmp_path):
  root = tmp_path / 'original'
  takes = _takes()
  h36m_layout.write_original(str(root), takes, videos=False)
  bad = root / 'S1' / 'MyPoseFeatures' / 'D3_Positions_mono' / 'Walking.54138969.cdf'
  data = bad.read_bytes()
  bad.write_bytes(data[:len(data) // 2])
  for sub in ('D3_Positions_mono', 'D2_Positions'):
    folder = root / 'S1' / 'MyPoseFeatures' / sub
    os.replace(folder / 'Directions 1.58860488.cdf', folder / 'Dancing 1.58860488.cdf')
  os.makedirs(root / 'S5' / 'MyPoseFeatures' / 'D3_Positions_mono')
  manifest = _convert(h36m_original, root, tmp_path / 'out', images=False)
  assert manifest['skipped_by_reason'] == {'bad_file': 1, 'unknown_action': 1,
                                           'empty_subject': 1}
  reasons = ' | '.join(s['reason'] for s in manifest['skipped'])
  assert f'{bad}: not a readable CDF file' in reasons
  assert "unknown action 'Dancing 1'" in reasons
  assert 'S5/MyPoseFeatures/D3_Positions_mono: no 3D pose files' in reasons
  assert manifest['splits']['train']['num_examples'] == (8 - 2) * FRAMES


def test_truncated_h5_is_skipped(tmp_path):
  root = tmp_path / 'martinez'
  h36m_layout.write_martinez(str(root), _takes(), detections=False)
  bad = root / 'S9' / 'MyPoses' / '3D_positions' / 'Walking.h5'
  data = bad.read_bytes()
  bad.write_bytes(data[:len(data) // 3])
  manifest = _convert(h36m_martinez, root, tmp_path / 'out')
  assert manifest['skipped_by_reason'] == {'bad_file': 1}
  assert str(bad) in manifest['skipped'][0]['reason']
  assert manifest['splits']['test']['num_examples'] == 4 * FRAMES


def test_short_2d_is_skipped(tmp_path):
  root = tmp_path / 'videopose3d'
  h36m_layout.write_videopose3d(str(root), _takes())
  path = root / 'data_2d_h36m_gt.npz'
  with np.load(path, allow_pickle=True) as f:
    positions = f['positions_2d'].item()
    metadata = f['metadata']
  positions['S9']['Walking'][3] = positions['S9']['Walking'][3][:FRAMES - 1]
  np.savez(path, positions_2d=np.array(positions, dtype=object), metadata=metadata)
  manifest = _convert(h36m_videopose3d, root, tmp_path / 'out')
  assert manifest['skipped_by_reason'] == {'short_2d': 1}
  assert '2 frames of 2D for 3 of 3D' in manifest['skipped'][0]['reason']


def test_a_2d_archive_of_another_joint_layout_is_refused(tmp_path):
  root = tmp_path / 'videopose3d'
  h36m_layout.write_videopose3d(str(root), _takes())
  path = root / 'data_2d_h36m_gt.npz'
  with np.load(path, allow_pickle=True) as f:
    positions = f['positions_2d']
    metadata = f['metadata'].item()
  # COCO's 17 keypoints have the shape of the 17 joints, in another order.
  np.savez(path, positions_2d=positions,
           metadata=np.array(dict(metadata, layout_name='coco'), dtype=object))
  with pytest.raises(h36m.H36MError) as e:
    list(h36m_videopose3d.sequences(str(root)))
  assert str(e.value) == (f'{path}: its metadata gives layout \'coco\' with 17 joints; only '
                          'the h36m layout of 17 joints is read (e.g. cpn_ft_h36m_dbb or '
                          'gt).')


def test_a_nan_frame_is_skipped_alone(tmp_path):
  takes = _takes()
  takes[(1, 'Walking')][1, 5, 0] = np.nan
  root = tmp_path / 'videopose3d'
  h36m_layout.write_videopose3d(str(root), takes, pose2d_names=())
  manifest = _convert(h36m_videopose3d, root, tmp_path / 'out')
  # Frame 1 of one take, in each of its 4 cameras; the other frames are kept.
  assert manifest['skipped_by_reason'] == {'bad_frame': 4}
  assert manifest['splits']['train']['num_examples'] == 2 * 4 * FRAMES - 4
  assert '1 frame(s) with NaN or a degenerate pose' in manifest['skipped'][0]['reason']


def test_failed_conversion_keeps_the_previous_one(layouts, tmp_path):
  root, _ = layouts
  out = tmp_path / 'out'
  out.mkdir()
  (out / '.train-00000.4242-1700000000000.tmp').write_bytes(b'of a killed conversion')
  first = _convert(h36m_videopose3d, root / 'videopose3d', out)
  assert not [p for p in os.listdir(out) if p.endswith('.tmp')]
  before = {p: (out / p).read_bytes() for p in os.listdir(out)}
  broken = tmp_path / 'broken'
  h36m_layout.write_martinez(str(broken), _takes(), detections=False)
  (broken / 'S9' / 'MyPoses' / '3D_positions' / 'Walking.h5').write_bytes(b'not h5')
  with pytest.raises(h36m.H36MError, match='Walking.h5'):
    _convert(h36m_martinez, broken, out, strict=True, overwrite=True)
  assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before
  assert json.loads((out / 'manifest.json').read_text())['splits'] == json.loads(
      json.dumps(first['splits']))
  # Without --overwrite a conversion of another input is not replaced at all; one of the
  # same input is (converting again).
  with pytest.raises(ValueError) as e:
    _convert(h36m_martinez, broken, out)
  assert str(e.value) == (
      f'{out} holds another conversion (source h36m-test, from {root / "videopose3d"}), '
      f'not one of h36m-test from {broken}: use a new --output_dir, or pass --overwrite to '
      'replace it.')
  assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before
  # A conversion running into the folder (its lock held by a live process): refused.
  (out / '.parts').mkdir(exist_ok=True)
  (out / '.parts' / 'LOCK').write_text(str(os.getpid()))
  with pytest.raises(ValueError, match=re.escape(
      f'{out} is being converted by process {os.getpid()} (lock {out / ".parts" / "LOCK"})')):
    _convert(h36m_videopose3d, root / 'videopose3d', out)
  (out / '.parts' / 'LOCK').unlink()
  again = _convert(h36m_videopose3d, root / 'videopose3d', out)
  assert again['splits'] == first['splits']


def test_nothing_readable_is_an_error(tmp_path):
  os.makedirs(tmp_path / 'S1' / 'MyPoseFeatures' / 'D3_Positions_mono')
  with pytest.raises(h36m.H36MError, match=r'nothing converted \(1 item\(s\) skipped'):
    _convert(h36m_original, tmp_path, tmp_path / 'out')
  with pytest.raises(h36m.H36MError, match='no subject folders'):
    list(h36m_original.sequences(str(tmp_path / 'S1')))
  for threshold in (float('nan'), -1.0, 90.0):
    with pytest.raises(ValueError, match=r'fbi_threshold_deg must be in \[0, 90\), got '
                                         f'{threshold}'):
      h36m_records.write_records([], str(tmp_path / 'out'), source='x', input_dir='x',
                                 fbi_threshold_deg=threshold)


# ---------------------------------------------------------------------------------------
# End to end: the tool, lifting-only training, the protocol tables.


def _run(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True,
                        env=env, timeout=600)


@pytest.mark.slow
def test_lifting_only_training_from_videopose3d_archives(layouts, tmp_path):
  root, _ = layouts
  records, run = str(tmp_path / 'records'), str(tmp_path / 'run')
  done = _run(['tools/convert_h36m.py', '--source=videopose3d',
               f'--input={root / "videopose3d"}', f'--output_dir={records}',
               '--crop_size=64'])
  assert done.returncode == 0, done.stderr
  assert 'wrote' in done.stdout
  refused = _run(['tools/convert_h36m.py', '--source=videopose3d',
                  f'--input={root / "videopose3d"}', f'--output_dir={records}',
                  '--images'])
  assert refused.returncode == 1
  assert 'hold no pictures: leave out --images' in refused.stderr
  # A layout whose writer stopped half way (its .writing mark is there): refused.
  partial = tmp_path / 'partial'
  shutil.copytree(root / 'videopose3d', partial)
  (partial / '.writing').write_text('')
  refused = _run(['tools/convert_h36m.py', '--source=videopose3d', f'--input={partial}',
                  f'--output_dir={tmp_path / "partial_records"}'])
  assert refused.returncode == 1
  assert (f'--input={partial} was being written when its writer stopped (.writing is '
          'there)') in refused.stderr
  assert not (tmp_path / 'partial_records').exists()
  common = [f'--data_dir={records}', f'--model_dir={run}', '--base_epochs=2',
            '--eval_split=test']
  done = _run(['-m', 'fbi3d.train', '--phase=all'] + common)
  assert done.returncode == 0, done.stderr
  assert 'holds lifting-only records: training features, base' in done.stdout
  for phase in ('pose2d', 'refine'):
    refused = _run(['-m', 'fbi3d.train', f'--phase={phase}'] + common)
    assert refused.returncode == 1
    assert 'lifting-only records' in refused.stderr
  done = _run(['-m', 'fbi3d.evaluate', f'--model_dir={run}', '--split=test'])
  assert done.returncode == 0, done.stderr
  assert 'Protocol 1, MPJPE (mm) per action on the test split' in done.stdout
  assert 'Protocol 2, PA-MPJPE' in done.stdout
  with open(os.path.join(run, 'eval', 'test', 'results.json')) as f:
    results = json.load(f)
  assert results['num_examples'] == {'Base': 2 * 4 * FRAMES}
  row = results['table1_p1']['Base']
  assert row['Discussion'] is None
  # Avg over the 24 examples; the mean of the two actions with examples (12 each) is the
  # same number here.
  assert row['Mean of actions'] == pytest.approx(row['Avg'])
  assert row['Avg'] == pytest.approx((row['Directions'] + row['Walking']) / 2)
  assert results['actions_with_examples'] == 2
  report = open(os.path.join(run, 'eval', 'test', 'report.md')).read()
  assert ('Mean of actions: the mean of the 2 action(s) with examples (of 15: not '
          'comparable with a mean of all 15).') in report

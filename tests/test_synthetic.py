import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import cameras
from fbi3d.data import layout
from fbi3d.data import pose_folder
from fbi3d.data import render
from fbi3d.data import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _knee_flexion_deg(pose):
  """Mean over both legs of the angle between thigh and shin directions."""
  out = []
  for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
    thigh = pose[knee] - pose[hip]
    shin = pose[ankle] - pose[knee]
    c = np.dot(thigh, shin) / np.linalg.norm(thigh) / np.linalg.norm(shin)
    out.append(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
  return np.mean(out)


def _bone_lengths(pose):
  return {c: np.linalg.norm(pose[c] - pose[p]) for p, c in skeleton.BONES}


def test_bone_lengths_without_jitter_are_the_scaled_table():
  lengths = body.sample_bone_lengths(np.random.default_rng(0), 1.1, jitter=0.0)
  assert set(lengths) == set(skeleton.MEAN_BONE_LENGTHS_MM)
  for child, mean in skeleton.MEAN_BONE_LENGTHS_MM.items():
    assert lengths[child] == pytest.approx(1.1 * mean, rel=1e-12)


def test_jittered_bone_lengths_are_symmetric_and_bounded():
  lengths = body.sample_bone_lengths(np.random.default_rng(1), 0.9)
  for left, right in skeleton.LEFT_RIGHT_PAIRS:
    assert lengths[left] == lengths[right]
  assert lengths[1] == lengths[4]
  for child, mean in skeleton.MEAN_BONE_LENGTHS_MM.items():
    ratio = lengths[child] / (0.9 * mean)
    assert 1 - body.BONE_JITTER <= ratio <= 1 + body.BONE_JITTER


@pytest.mark.parametrize('action', range(skeleton.NUM_ACTIONS))
def test_sampled_pose_has_the_given_bone_lengths_and_pelvis_at_hip_midpoint(action):
  rng = np.random.default_rng(action)
  for _ in range(20):
    lengths = body.sample_bone_lengths(rng, rng.uniform(0.85, 1.15))
    pose = body.sample_pose(rng, action, lengths)
    assert pose.shape == (17, 3)
    measured = _bone_lengths(pose)
    for child, length in lengths.items():
      assert measured[child] == pytest.approx(length, rel=1e-6)
    np.testing.assert_allclose(pose[0], 0.5 * (pose[1] + pose[4]), atol=1e-9)
    # World frame: z up, the feet near the ground, the pelvis above them.
    assert min(pose[3, 2], pose[6, 2]) == pytest.approx(
        80.0 * lengths[2] / skeleton.MEAN_BONE_LENGTHS_MM[2])
    assert pose[0, 2] > 100.0


def test_sitting_bends_knees_more_than_walking_and_lowers_the_pelvis():
  rng = np.random.default_rng(5)
  lengths = body.sample_bone_lengths(rng, 1.0, jitter=0.0)
  sit = [body.sample_pose(rng, skeleton.action_index('Sitting'), lengths)
         for _ in range(200)]
  walk = [body.sample_pose(rng, skeleton.action_index('Walking'), lengths)
          for _ in range(200)]
  assert np.mean([_knee_flexion_deg(p) for p in sit]) > (
      np.mean([_knee_flexion_deg(p) for p in walk]) + 30.0)
  assert np.mean([p[0, 2] for p in sit]) < np.mean([p[0, 2] for p in walk]) - 150.0


def test_sample_pose_rejects_unknown_action():
  with pytest.raises(ValueError, match='action'):
    body.sample_pose(np.random.default_rng(0), 15)


def test_camera_is_human36m_like():
  rng = np.random.default_rng(2)
  for _ in range(50):
    cam = cameras.sample_camera(rng, 500)
    fx, fy, cx, cy = cam['intrinsics']
    assert 0.95 * 572.5 < fx < 1.05 * 572.5 and abs(fy / fx - 1) < 0.01
    assert abs(cx - 249.5) < 25 and abs(cy - 249.5) < 25
    distance = np.linalg.norm(cam['centre'][:2])
    assert 4000.0 <= distance <= 6000.0
    assert 1000.0 <= cam['centre'][2] <= 2000.0
    np.testing.assert_allclose(cam['rotation'] @ cam['rotation'].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam['rotation']) == pytest.approx(1.0)
    # Looking slightly down: the optical axis (world) has a small negative z.
    assert -0.35 < cam['rotation'][2, 2] < 0.0


def test_examples_cover_all_actions_and_stay_inside_the_image():
  size = 64
  actions, subjects = set(), set()
  for index in range(200):
    rng_image, ex = synthetic.make_example(3, 0, index, size)
    assert rng_image.shape == (size, size, 3) and rng_image.dtype == np.uint8
    actions.add(ex['action'])
    subjects.add(ex['subject'])
    assert np.all(ex['joints2d'] >= 0) and np.all(ex['joints2d'] <= size - 1)
    np.testing.assert_allclose(
        ex['joints2d'], geometry.project(ex['pose3d_abs'], ex['intrinsics']), atol=1e-9)
    np.testing.assert_allclose(ex['pose3d'], geometry.root_relative(ex['pose3d_abs']))
    np.testing.assert_allclose(ex['pose3d'][0], 0.0, atol=0)
    np.testing.assert_allclose(0.5 * (ex['pose3d'][1] + ex['pose3d'][4]), 0.0, atol=1e-6)
  assert actions == set(range(skeleton.NUM_ACTIONS))
  assert subjects == set(range(1, body.NUM_SUBJECTS + 1))


def test_make_example_is_a_function_of_seed_split_index():
  a_img, a = synthetic.make_example(7, 1, 4, 96)
  b_img, b = synthetic.make_example(7, 1, 4, 96)
  c_img, c = synthetic.make_example(7, 2, 4, 96)
  np.testing.assert_array_equal(a_img, b_img)
  np.testing.assert_array_equal(a['pose3d'], b['pose3d'])
  assert not np.array_equal(a['pose3d'], c['pose3d'])
  assert not np.array_equal(a_img, c_img)


def test_render_draws_any_pose_at_any_size():
  rng = np.random.default_rng(4)
  pose = np.zeros((17, 3))
  for parent, child in skeleton.BONES:
    v = rng.normal(size=3)
    pose[child] = pose[parent] + 200.0 * v / np.linalg.norm(v)
  pose += np.array([0.0, 0.0, 4000.0])
  img = render.render(pose, (300.0, 300.0, 60.0, 50.0), (100, 120), rng)
  assert img.shape == (100, 120, 3) and img.dtype == np.uint8
  with pytest.raises(ValueError, match='behind'):
    render.render(pose - np.array([0.0, 0.0, 4000.0]), (300, 300, 60, 50), 96, rng)


def test_depth_shading_makes_nearer_parts_brighter():
  # A forearm pointing at the camera: its near end (the wrist) is brighter than the far
  # end (the elbow). Same pose, background and lighting: only depth differs.
  rng = np.random.default_rng(0)
  lengths = body.sample_bone_lengths(rng, 1.0, jitter=0.0)
  pose = body.sample_pose(rng, skeleton.action_index('Waiting'), lengths)
  pose = pose - pose[0] + np.array([0.0, 0.0, 5000.0])
  near, far = pose.copy(), pose.copy()
  near[:, 2] = 5000.0 - 400.0
  far[:, 2] = 5000.0 + 400.0
  near[0, 2] = far[0, 2] = 5000.0
  intrinsics = (500.0, 500.0, 127.5, 127.5)
  img_near = render.render(near, intrinsics, 256, np.random.default_rng(1))
  img_far = render.render(far, intrinsics, 256, np.random.default_rng(1))
  x, y = np.round(geometry.project(near[8], intrinsics)).astype(int)
  assert img_near[y, x].astype(int).sum() > img_far[y, x].astype(int).sum()


def _files(root):
  out = {}
  for dirpath, _, names in os.walk(root):
    for name in names:
      path = os.path.join(dirpath, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def test_written_dataset_matches_examples(tmp_path):
  out = str(tmp_path / 'ds')
  counts = {'Train': 3, 'Val': 2, 'Test': 2}
  settings, reused = synthetic.write_dataset(out, seed=11, counts=counts, image_size=96,
                                             workers=1)
  assert not reused and settings['counts'] == counts
  for split_no, split in enumerate(layout.SPLITS):
    records, problems = layout.read_meta(os.path.join(out, split, layout.META_FILE))
    assert not problems
    assert sorted(records) == [f'{i + 1:05d}' for i in range(counts[split])]
    for index in range(counts[split]):
      name = layout.ID_FORMAT.format(index + 1)
      _, ex = synthetic.make_example(11, split_no, index, 96)
      pose = layout.read_pose_csv(os.path.join(out, split, 'POSE', name + '.csv'))
      np.testing.assert_allclose(pose, ex['pose3d'], atol=6e-4)
      rec = records[name]
      assert rec['action'] == ex['action'] and rec['subject'] == ex['subject']
      projected = geometry.project(ex['pose3d_abs'], ex['intrinsics'])
      np.testing.assert_allclose(rec['joints2d'], projected, atol=6e-4)
      np.testing.assert_allclose(rec['intrinsics'], ex['intrinsics'], atol=6e-4)
      img = cv2.imread(os.path.join(out, split, 'IMG', name + '.jpg'))
      assert img.shape == (96, 96, 3)
  assert not [n for n in _files(out) if '.tmp' in n]
  # A second run with the same settings finds the data set complete.
  _, reused = synthetic.write_dataset(out, seed=11, counts=counts, image_size=96, workers=1)
  assert reused


def test_output_is_byte_identical_across_workers_and_depends_on_seed(tmp_path):
  counts = {'Train': 4, 'Val': 1, 'Test': 1}
  for name, seed, workers in (('a', 0, 1), ('b', 0, 2), ('c', 1, 1)):
    synthetic.write_dataset(str(tmp_path / name), seed=seed, counts=counts, image_size=96,
                            workers=workers)
  a, b, c = (_files(str(tmp_path / n)) for n in 'abc')
  assert len(a) == 9 + 3 + 3 + 1   # IMG, POSE, META per split; synthetic.json
  assert a == b
  assert set(a) == set(c)
  for name in a:
    if name.endswith(('.jpg', '.csv')):
      assert a[name] != c[name], name


def test_no_test_labels_and_smaller_rerun_remove_stale_files(tmp_path):
  out = str(tmp_path / 'ds')
  synthetic.write_dataset(out, counts={'Train': 3, 'Val': 1, 'Test': 2}, image_size=64,
                          workers=1)
  _, reused = synthetic.write_dataset(out, counts={'Train': 2, 'Val': 1, 'Test': 2},
                                      image_size=64, workers=1, test_labels=False)
  assert not reused
  assert not os.path.exists(os.path.join(out, 'Test', 'POSE'))
  assert sorted(os.listdir(os.path.join(out, 'Test', 'IMG'))) == ['00001.jpg', '00002.jpg']
  assert sorted(os.listdir(os.path.join(out, 'Train', 'POSE'))) == ['00001.csv', '00002.csv']
  assert sorted(os.listdir(os.path.join(out, 'Train', 'IMG'))) == ['00001.jpg', '00002.jpg']
  records, _ = layout.read_meta(os.path.join(out, 'Test', layout.META_FILE))
  assert sorted(records) == ['00001', '00002']


@pytest.mark.parametrize('kwargs, match', [
    (dict(counts={'Train': -1}), 'count'),
    (dict(image_size=32), 'image_size'),
    (dict(jpeg_quality=0), 'jpeg_quality'),
    (dict(workers=0), 'workers'),
    (dict(counts={'Train': 0, 'Val': 0, 'Test': 0}), 'every split count is 0'),
])
def test_bad_settings_are_refused(tmp_path, kwargs, match):
  with pytest.raises(ValueError, match=match):
    synthetic.write_dataset(str(tmp_path / 'ds'), **kwargs)


def test_a_stopped_rewrite_is_marked_and_a_foreign_folder_is_refused(tmp_path, monkeypatch):
  out = str(tmp_path / 'ds')
  counts = {'Train': 2, 'Val': 1, 'Test': 1}
  synthetic.write_dataset(out, seed=0, counts=counts, image_size=64, workers=1)
  assert not os.path.exists(os.path.join(out, layout.WRITING_FILE))
  write_split = synthetic.write_split

  def stop_at_val(out_dir, split, *args, **kwargs):
    if split == 'Val':
      raise KeyboardInterrupt
    return write_split(out_dir, split, *args, **kwargs)

  monkeypatch.setattr(synthetic, 'write_split', stop_at_val)
  with pytest.raises(KeyboardInterrupt):
    synthetic.write_dataset(out, seed=1, counts=counts, image_size=64, workers=1)
  # Train holds the new pictures, Val and Test the old ones: marked as being written.
  assert os.path.exists(os.path.join(out, layout.WRITING_FILE))
  assert not os.path.exists(os.path.join(out, synthetic.SETTINGS_FILE))
  monkeypatch.setattr(synthetic, 'write_split', write_split)
  _, reused = synthetic.write_dataset(out, seed=1, counts=counts, image_size=64, workers=1)
  assert not reused and not os.path.exists(os.path.join(out, layout.WRITING_FILE))
  # A folder of files make_synthetic did not write is not overwritten.
  other = tmp_path / 'challenge'
  (other / 'Train' / 'IMG').mkdir(parents=True)
  (other / 'Train' / 'IMG' / '00005.jpg').write_bytes(b'x')
  with pytest.raises(ValueError) as e:
    synthetic.write_dataset(str(other), seed=0, counts=counts, image_size=64, workers=1)
  assert str(e.value) == (f'{other} holds files that make_synthetic did not write (it has no '
                          'synthetic.json): give an empty or new --out_dir.')
  assert (other / 'Train' / 'IMG' / '00005.jpg').read_bytes() == b'x'


def test_command_line_tool(tmp_path):
  out = str(tmp_path / 'ds')
  cmd = [sys.executable, os.path.join(ROOT, 'tools', 'make_synthetic.py'), f'--out_dir={out}',
         '--num_train=2', '--num_val=1', '--num_test=1', '--image_size=64', '--workers=1',
         '--notest_labels']
  run = subprocess.run(cmd, capture_output=True, text=True, check=False)
  assert run.returncode == 0, run.stderr
  assert os.path.isfile(os.path.join(out, 'Test', 'IMG', '00001.jpg'))
  assert not os.path.exists(os.path.join(out, 'Test', 'POSE'))
  again = subprocess.run(cmd, capture_output=True, text=True, check=False)
  assert again.returncode == 0 and 'already holds' in again.stdout
  bad = subprocess.run(cmd[:3] + ['--image_size=32'], capture_output=True, text=True,
                       check=False)
  assert bad.returncode != 0 and 'image_size' in bad.stderr


def _write_pose_npz(folder, name, poses, subject):
  os.makedirs(folder, exist_ok=True)
  np.savez(os.path.join(folder, name), poses=np.asarray(poses, np.float32), subject=subject)


def _bank_poses(num, seed=0):
  rng = np.random.default_rng(seed)
  lengths = body.sample_bone_lengths(rng, 1.0, jitter=0.0)
  walk = skeleton.action_index('Walking')
  return np.stack([body.sample_pose(rng, walk, lengths) + [1000.0, -500.0, 300.0]
                   for _ in range(num)])


def test_examples_from_a_pose_bank_take_its_poses(tmp_path):
  folder = str(tmp_path / 'poses')
  poses = _bank_poses(5)
  _write_pose_npz(folder, '21_01.npz', poses[:3], 21)
  _write_pose_npz(folder, '22_01.npz', poses[3:], 22)
  bank = pose_folder.load_pose_bank(folder)
  assert bank.poses.shape == (5, 17, 3)
  assert list(bank.subjects) == [21, 21, 21, 22, 22]
  seen = set()
  for index in range(12):
    image, ex = synthetic.make_example(3, 0, index, 128, bank)
    assert image.shape == (128, 128, 3)
    assert ex['action'] == skeleton.UNKNOWN_ACTION and ex['subject'] in (21, 22)
    # The camera-frame pose is a bank pose up to a rotation and a translation.
    distances = np.linalg.norm(ex['pose3d'][:, None] - ex['pose3d'][None], axis=-1)
    match = [k for k in range(5) if np.allclose(
        distances, np.linalg.norm(poses[k][:, None] - poses[k][None], axis=-1), atol=0.05)]
    assert len(match) == 1
    seen.add(match[0])
    again = synthetic.make_example(3, 0, index, 128, bank)[1]
    np.testing.assert_array_equal(again['pose3d_abs'], ex['pose3d_abs'])
  assert len(seen) >= 3


def test_dataset_with_poses_from_marks_actions_unknown(tmp_path):
  folder = str(tmp_path / 'poses')
  _write_pose_npz(folder, '21_01.npz', _bank_poses(4, seed=1), 21)
  out = str(tmp_path / 'ds')
  counts = {'Train': 3, 'Val': 1, 'Test': 0}
  settings, _ = synthetic.write_dataset(out, seed=2, counts=counts, image_size=96,
                                        workers=1, poses_from=folder)
  assert settings['num_poses'] == 4 and settings['pose_sources'] == ['21_01.npz']
  # The same clip converted again with other poses (same name, same count) is another
  # data set, not "already there".
  assert synthetic.write_dataset(out, seed=2, counts=counts, image_size=96, workers=1,
                                 poses_from=folder)[1]
  _write_pose_npz(folder, '21_01.npz', _bank_poses(4, seed=5), 21)
  again, reused = synthetic.write_dataset(out, seed=2, counts=counts, image_size=96,
                                          workers=1, poses_from=folder)
  assert not reused and again['poses_sha256'] != settings['poses_sha256']
  records, problems = layout.read_meta(os.path.join(out, 'Train', layout.META_FILE))
  assert not problems and len(records) == 3
  assert all(r['action'] == -1 and r['subject'] == 21 for r in records.values())
  plain = synthetic.dataset_settings(2, counts, 96, True, 90)
  assert 'poses_from' not in plain
  _, reused = synthetic.write_dataset(out, seed=2, counts=counts, image_size=96, workers=1)
  assert not reused   # sampled poses are a different data set
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ValueError, match='no poses'):
    synthetic.write_dataset(str(tmp_path / 'ds2'), counts=counts, image_size=96,
                            workers=1, poses_from=str(empty))


def test_an_error_in_a_worker_process_is_raised_as_it_was(tmp_path):
  # The folder is read in the worker processes only: their ValueError comes back whole.
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ValueError, match='load_pose_bank: no poses in'):
    synthetic.write_split(str(tmp_path / 'ds'), 'Train', 4, 0, 64, workers=2,
                          poses_from=str(empty))


def test_left_colour_with_red_and_blue_swapped_is_a_right_colour():
  # The side cue of the renderer agrees with a flipped crop (augment.swap_red_blue):
  # the left limbs' blue and red channels, swapped, fall in the right limbs' ranges
  # (BGR: left (215, g, 40) +- 30, right (40, g, 215) +- 30, times a scale in [0.8, 1]).
  for seed in range(200):
    colours = render._colours(np.random.default_rng(seed))
    for bgr in (colours['L'][::-1], colours['R']):
      assert 8.0 <= bgr[0] <= 70.0 and 148.0 <= bgr[2] <= 245.0, seed


def test_a_pose_folder_refuses_non_finite_poses_and_skips_clips_still_being_written(
    tmp_path):
  folder = tmp_path / 'poses'
  folder.mkdir()
  rng = np.random.default_rng(0)
  good = np.stack([body.sample_pose(rng, 0) for _ in range(3)])
  np.savez(str(folder / '21_01.npz'), poses=good, subject=21)
  # A clip tools/convert_mocap.py was still writing is not read.
  np.savez(str(folder / '21_02.partial.npz'), poses=good[:1], subject=21)
  bank = pose_folder.load_pose_bank(str(folder))
  assert len(bank.poses) == 3 and [os.path.basename(s) for s in bank.sources] == ['21_01.npz']
  bad = good.copy()
  bad[2, 7, 1] = np.inf
  (tmp_path / 'bad').mkdir()
  np.savez(str(tmp_path / 'bad' / '22_01.npz'), poses=bad, subject=22)
  with pytest.raises(ValueError, match=r'load_pose_bank: .*22_01.npz: 1 pose\(s\) hold NaN or '
                                       r'infinite coordinates, the first pose 2; convert'):
    pose_folder.load_pose_bank(str(tmp_path / 'bad'))
  def refusal(folder, name, poses, subject):
    """The message load_pose_bank refuses a folder holding one clip of `poses` with."""
    (tmp_path / folder).mkdir()
    np.savez(str(tmp_path / folder / name), poses=poses, subject=subject)
    with pytest.raises(ValueError) as e:
      pose_folder.load_pose_bank(str(tmp_path / folder))
    return str(e.value)
  # Poses in metres: thighs of 0.45 (hips at the origin, knees 0.45 below).
  metres = np.zeros((2, 17, 3))
  metres[:, [2, 5], 2] = -0.45
  assert refusal('metres', '23_01.npz', metres, 23) == (
      f'load_pose_bank: {tmp_path / "metres" / "23_01.npz"}: the mean femur is 0.45 long, '
      'outside 350 to 550 mm: the poses must be in millimetres (convert the clip again '
      'with tools/convert_mocap.py, or remove the file from the folder).')
  # Millimetres, but pose 1 zeroed (it passed: the clip's mean femur stayed in range).
  zeroed = good.copy()
  zeroed[1] = 0.0
  assert refusal('zeroed', '24_01.npz', np.concatenate([good, zeroed]), 24) == (
      f'load_pose_bank: {tmp_path / "zeroed" / "24_01.npz"}: pose 4 has the bone Hip -> '
      'RHip 0 mm long, under 10 mm: two joints in one place; convert the clip again or '
      'remove it from the folder.')


def test_a_pose_folder_reads_a_bank_with_a_subject_per_pose_and_names_unreadable_files(
    tmp_path):
  rng = np.random.default_rng(0)
  good = np.stack([body.sample_pose(rng, 0) for _ in range(3)])
  # tools/pose_bank.py's bank: a subject per pose.
  (tmp_path / 'bank').mkdir()
  np.savez(str(tmp_path / 'bank' / 'bank.npz'), poses=good, subject=np.array([1, 1, 11]))
  bank = pose_folder.load_pose_bank(str(tmp_path / 'bank'))
  assert bank.subjects.tolist() == [1, 1, 11]
  for name, write, why in [
      ('cut', lambda p: p.write_bytes(b'PK\x03\x04' + b'\0' * 20), 'File is not a zip file'),
      ('one', lambda p: np.save(open(p, 'wb'), good),
       'it holds one array, not the arrays of an .npz'),
      ('nameless', lambda p: np.savez(open(p, 'wb'), pose=good), 'no "poses" array')]:
    folder = tmp_path / name
    folder.mkdir()
    write(folder / '21_01.npz')
    with pytest.raises(ValueError) as e:
      pose_folder.load_pose_bank(str(folder))
    assert str(e.value) == (f'load_pose_bank: {folder / "21_01.npz"}: not a readable .npz of '
                            f'poses ({why}); convert the clip again or remove it from the '
                            'folder.')
  (tmp_path / 'odd').mkdir()
  np.savez(str(tmp_path / 'odd' / 'b.npz'), poses=good, subject=np.array([1, 2]))
  with pytest.raises(ValueError, match=r'b.npz: "subject" holds \(2,\) values for 3 poses'):
    pose_folder.load_pose_bank(str(tmp_path / 'odd'))

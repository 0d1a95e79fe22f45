"""Tests of the pose bank: de-duplication, the subject split, joint-angle coverage,
saving and loading, and the command line."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import skeleton
from fbi3d.data import posebank
from tests.conftest import MOCAP_DIR
from tests.conftest import REPO
from tests.conftest import needs_shared_mocap


def _toy_clip():
  """4 frames: frame 1 moves the left wrist 10 mm, frame 2 25 mm (from frame 0), frame 3
  is frame 2 carried 500 mm away with the right wrist moved 15 mm."""
  base = np.arange(17 * 3, dtype=np.float64).reshape(17, 3) * 10.0
  clip = np.stack([base] * 4)
  clip[1, 13] += [10.0, 0.0, 0.0]
  clip[2, 13] += [0.0, 25.0, 0.0]
  clip[3] = clip[2] + [500.0, 0.0, 0.0]
  clip[3, 16] += [0.0, 0.0, 15.0]
  return clip


def test_dedup_keeps_frames_far_from_the_last_kept_one():
  clip = _toy_clip()
  # Frame 1: 10 mm < 20 from frame 0, dropped. Frame 2: 25 mm, kept. Frame 3: the same
  # root-relative pose as frame 2 but for 15 mm at the right wrist, dropped.
  np.testing.assert_array_equal(posebank.dedup_indices(clip, 20.0), [0, 2])
  np.testing.assert_array_equal(posebank.dedup_indices(clip, 10.0), [0, 1, 2, 3])
  np.testing.assert_array_equal(posebank.dedup_indices(clip, 0.0), [0, 1, 2, 3])
  np.testing.assert_array_equal(posebank.dedup_indices(clip, 30.0), [0])
  assert posebank.dedup_indices(clip[:0], 20.0).shape == (0,)


def test_dedup_compares_with_the_last_kept_frame():
  # The left wrist drifts 12 mm a frame: 0, 12, 24, 36, 48 mm from frame 0.
  clip = np.zeros((5, 17, 3))
  clip[:, 13, 0] = 12.0 * np.arange(5)
  # Kept: 0; 24 (24 mm from 0); 48 (24 mm from frame 2).
  np.testing.assert_array_equal(posebank.dedup_indices(clip, 20.0), [0, 2, 4])


def test_dedup_refuses_bad_thresholds_and_shapes():
  for bad in (-1.0, float('nan'), float('inf')):
    with pytest.raises(ValueError, match=f'threshold must be a finite number >= 0 mm, got '
                                         f'{bad}'):
      posebank.dedup_indices(np.zeros((2, 17, 3)), bad)
  with pytest.raises(ValueError, match=r'expected poses \[F, 17, 3\]'):
    posebank.dedup_indices(np.zeros((2, 16, 3)), 1.0)


def test_split_never_trains_on_the_test_subjects():
  got = posebank.split_names([1, 11, 131, 13, 39, 5], val_subjects=(13, 39))
  assert got.tolist() == ['train', 'test', 'test', 'val', 'val', 'train']
  got = posebank.split_names([11, 131, 2], val_subjects=())
  assert got.tolist() == ['test', 'test', 'train']
  assert posebank.split_names([2, 8, 13, 131]).tolist() == ['val', 'val', 'train', 'test']
  with pytest.raises(ValueError, match='val subject.* 11 are test subjects'):
    posebank.split_names([1], val_subjects=(11, 2))


def _pose(direction, yaw=0.0):
  """Hips at (-100, 30, 0) and (100, 30, 0) from the pelvis; every other bone 100 mm in
  `direction`; the whole pose turned by `yaw` about z and moved away from the origin."""
  d = np.asarray(direction, np.float64) / np.linalg.norm(direction)
  pose = np.zeros((17, 3))
  for parent, child in skeleton.BONES:
    if child == 1:
      pose[1] = [-100.0, 30.0, 0.0]
    elif child == 4:
      pose[4] = [100.0, 30.0, 0.0]
    else:
      pose[child] = pose[parent] + 100.0 * d
  c, s = np.cos(yaw), np.sin(yaw)
  turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
  return pose @ turn.T + [300.0, -200.0, 900.0]


def test_coverage_of_a_hand_made_bank():
  r = 0.6 / np.sqrt(2.0)
  up = _pose([r, r, 0.8])        # azimuth 45 deg -> column 1; z 0.8 -> band 5: cell 61
  down = _pose([r, -r, -0.8])    # azimuth 315 deg -> column 10; z -0.8 -> band 0: cell 10
  cells = posebank.direction_cells(np.stack([up, down]))
  # Bones in skeleton.BONES order; the hips (children 1 and 4) are bones 0 and 3. Right
  # hip (-100, 30, 0): azimuth 163 deg, column 5, band 3; left (100, 30): column 0.
  np.testing.assert_array_equal(cells[0], [41, 61, 61, 36] + [61] * 12)
  np.testing.assert_array_equal(cells[1], [41, 10, 10, 36] + [10] * 12)
  assert posebank.coverage([up])['mean'] == pytest.approx(1.0 / 72.0)
  # Two cells for the 14 bones that moved, one for each hip: (14 * 2 + 2) / 16 / 72.
  both = posebank.coverage([up, down])
  assert both['mean'] == pytest.approx(30.0 / 1152.0)
  assert both['per_bone']['LWrist'] == pytest.approx(2.0 / 72.0)
  assert both['per_bone']['RHip'] == pytest.approx(1.0 / 72.0)
  assert both['cells'] == 72
  # The root-aligned frame ignores which way the body faces.
  turned = posebank.coverage([_pose([r, r, 0.8], 1.0), _pose([r, -r, -0.8], -2.5)])
  assert turned['mean'] == pytest.approx(30.0 / 1152.0)
  # min_count: the cell of `down` holds one pose, below 2.
  assert posebank.coverage([up, up, down], min_count=2)['mean'] == pytest.approx(1.0 / 72.0)
  assert posebank.coverage(np.zeros((0, 17, 3)))['mean'] == 0.0


def _tiny_bank():
  poses = np.stack([_toy_clip()[0]] * 5)
  subject = np.array([1, 1, 11, 13, 131])
  return posebank.PoseBank(poses=poses, subject=subject, clip=np.array([0, 0, 1, 2, 3]),
                           frame=np.array([0, 7, 0, 3, 9]),
                           split=posebank.split_names(subject, (13,)),
                           clips=[dict(file=f'c{i}.bvh') for i in range(4)])


def test_save_load_summary_and_table(tmp_path):
  bank = _tiny_bank()
  summary = posebank.summarise(bank, threshold_mm=20.0, val_subjects=(13,))
  assert {k: v['poses'] for k, v in summary['splits'].items()} == {
      'train': 2, 'val': 1, 'test': 2}
  assert summary['splits']['test']['subjects'] == [11, 131]
  summary.update(kept_at_threshold_mm={'0': 9, '20': 5}, frames_read=9)
  npz, json_path = posebank.save(bank, summary, str(tmp_path / 'b' / 'bank.npz'))
  assert os.path.isfile(json_path) and json_path.endswith('bank.json')
  loaded = posebank.load(npz)
  np.testing.assert_allclose(loaded.poses, bank.poses)
  assert loaded.split.tolist() == ['train', 'train', 'test', 'val', 'test']
  np.testing.assert_array_equal(loaded.frame, [0, 7, 0, 3, 9])
  assert loaded.select('test').shape == (2, 17, 3)
  table = posebank.format_table(summary)
  assert '| test | 11, 131 | 2 | 2 |' in table
  with pytest.raises(ValueError, match='give a path ending in .npz'):
    posebank.save(bank, summary, str(tmp_path / 'bank.npy'))
  with pytest.raises(ValueError, match='pose bank not found'):
    posebank.load(str(tmp_path / 'none.npz'))
  with pytest.raises(ValueError, match='unknown split'):
    loaded.select('dev')
  # A bank file with a NaN, with a short field, or with poses of another shape.
  fields = dict(np.load(npz))
  fields['poses'][3, 5, 2] = np.nan
  np.savez(str(tmp_path / 'nan.npz'), **fields)
  with pytest.raises(ValueError, match=r'nan.npz: 1 pose\(s\) hold NaN or infinite '
                     r'coordinates, the first at row 3 \(subject 13, clip 2, frame 3\)'):
    posebank.load(str(tmp_path / 'nan.npz'))
  fields = dict(np.load(npz))
  np.savez(str(tmp_path / 'short.npz'), **dict(fields, frame=fields['frame'][:4]))
  with pytest.raises(ValueError, match='short.npz: frame hold'):
    posebank.load(str(tmp_path / 'short.npz'))
  np.savez(str(tmp_path / 'flat.npz'), **dict(fields, poses=fields['poses'].reshape(5, 51)))
  with pytest.raises(ValueError, match=r'flat.npz: poses have shape \(5, 51\)'):
    posebank.load(str(tmp_path / 'flat.npz'))
  # Rows a reader would take wrongly: a misspelt split, a test subject in training (or
  # another subject among the test ones), a clip beyond the list, a negative frame.
  again = 'make the pose bank again with python tools/pose_bank.py.'
  for name, change, message in [
      ('vall', dict(split=np.array(['train', 'train', 'test', 'vall', 'test'])),
       "1 row(s) name a split other than train, val, test, the first row 3 (subject 13, "
       "split 'vall', clip 2, frame 3)"),
      ('leak', dict(split=np.array(['train', 'train', 'train', 'val', 'test'])),
       "1 row(s) put a test subject (11, 131) outside the test split or another subject "
       "inside it, the first row 2 (subject 11, split 'train', clip 1, frame 0)"),
      ('into_test', dict(split=np.array(['train', 'test', 'test', 'val', 'test'])),
       "1 row(s) put a test subject (11, 131) outside the test split or another subject "
       "inside it, the first row 1 (subject 1, split 'test', clip 0, frame 7)"),
      ('clip9', dict(clip=np.array([0, 0, 1, 9, 3])),
       "1 row(s) name a clip outside the bank's 4 clip files, the first row 3 (subject 13, "
       "split 'val', clip 9, frame 3)"),
      ('negative', dict(frame=np.array([0, -5, 0, 3, 9])),
       "1 row(s) have a negative frame, the first row 1 (subject 1, split 'train', clip 0, "
       "frame -5)")]:
    np.savez(str(tmp_path / f'{name}.npz'), **dict(fields, **change))
    with pytest.raises(ValueError) as e:
      posebank.load(str(tmp_path / f'{name}.npz'))
    assert str(e.value) == f'{tmp_path / name}.npz: {message}; {again}'
  # A cut file, one array saved under an .npz name, and a text file.
  with open(npz, 'rb') as f:
    (tmp_path / 'cut.npz').write_bytes(f.read()[:200])
  np.save(str(tmp_path / 'one'), fields['poses'])
  os.replace(tmp_path / 'one.npy', tmp_path / 'one.npz')
  (tmp_path / 'text.npz').write_text('poses\n')
  for name, why in (('cut', 'File is not a zip file'),
                    ('one', 'it holds one array, not the arrays of an .npz'),
                    ('text', 'Cannot load file containing pickled data')):
    with pytest.raises(ValueError) as e:
      posebank.load(str(tmp_path / f'{name}.npz'))
    assert str(e.value).startswith(f'{tmp_path / name}.npz: not a readable pose bank ({why}')
    assert str(e.value).endswith('make it again with python tools/pose_bank.py --out=PATH.')
  # A compressed bank whose compressed bytes were damaged (zlib's error, not a traceback).
  np.savez_compressed(str(tmp_path / 'damaged.npz'), **fields)
  damaged = bytearray((tmp_path / 'damaged.npz').read_bytes())
  damaged[100:140] = bytes(b ^ 0xFF for b in damaged[100:140])
  (tmp_path / 'damaged.npz').write_bytes(bytes(damaged))
  with pytest.raises(ValueError) as e:
    posebank.load(str(tmp_path / 'damaged.npz'))
  assert str(e.value).startswith(f'{tmp_path / "damaged"}.npz: not a readable pose bank '
                                 '(Error -3 while decompressing data: ')
  assert str(e.value).endswith(' (its compressed data are damaged)); make it again with '
                               'python tools/pose_bank.py --out=PATH.')
  # A summary beside the bank that is not JSON is named, with the two ways out.
  with open(json_path, 'w') as f:
    f.write('{"clips": [')
  with pytest.raises(ValueError, match=r'bank.json: the summary beside the pose bank is not '
                     r'readable \(.*\); make the bank again .* or delete the summary'):
    posebank.load(npz)


@needs_shared_mocap
def test_build_from_shared_clips(tmp_path):
  # Subject 11 (ASF/AMC, test), a Daz clip of subject 13 (val) and one of 12 (train).
  for folder, name in (('cmu_asf_amc', '11.asf'), ('cmu_asf_amc', '11_01.amc'),
                       ('cmu_bvh_daz', '13_10.bvh'), ('cmu_bvh_daz', '12_01.bvh')):
    os.makedirs(tmp_path / folder, exist_ok=True)
    os.symlink(os.path.join(MOCAP_DIR, folder, name), tmp_path / folder / name)
  bank, summary = posebank.build(str(tmp_path), threshold_mm=20.0, val_subjects=(13,))
  assert [c['file'] for c in bank.clips] == [
      os.path.join('cmu_asf_amc', '11_01.amc'), os.path.join('cmu_bvh_daz', '12_01.bvh'),
      os.path.join('cmu_bvh_daz', '13_10.bvh')]
  assert bank.clips[0]['frames'] == 597
  assert sorted(set(bank.subject[bank.split == 'test'].tolist())) == [11]
  assert sorted(set(bank.subject[bank.split == 'train'].tolist())) == [12]
  assert sorted(set(bank.subject[bank.split == 'val'].tolist())) == [13]
  for c, info in enumerate(bank.clips):
    frames = bank.frame[bank.clip == c]
    assert frames[0] == 0 and np.all(np.diff(frames) > 0) and frames[-1] < info['frames']
    assert len(frames) == info['kept'] < info['frames']
    kept = bank.poses[bank.clip == c]
    # Consecutive kept poses differ by at least the threshold somewhere.
    rel = kept - kept[:, :1]
    assert np.all(np.linalg.norm(np.diff(rel, axis=0), axis=-1).max(-1) >= 20.0)
  assert summary['kept_at_threshold_mm']['0'] == summary['frames_read']
  assert summary['kept_at_threshold_mm']['20'] == len(bank)
  assert sum(s['poses'] for s in summary['splits'].values()) == len(bank)
  # Subject 131 (test) has no clip here, nor has 2 (val): the summary says so.
  assert summary['warnings'] == [f'test subject(s) 131 have no clip in {tmp_path}: the test '
                                 'split lacks them']
  _, summary = posebank.build(str(tmp_path), threshold_mm=20.0, val_subjects=(2, 13))
  assert summary['warnings'][1] == (f'val subject(s) 2 have no clip in {tmp_path}: the val '
                                    'split lacks them')
  # One clip name in two folders (CMU's 01_01 is in both its ASF/AMC and a BVH release):
  # kept twice, and said.
  os.makedirs(tmp_path / 'other')
  os.symlink(os.path.join(MOCAP_DIR, 'cmu_bvh_daz', '12_01.bvh'), tmp_path / 'other' / '12_01.bvh')
  _, summary = posebank.build(str(tmp_path), threshold_mm=20.0, val_subjects=(13,))
  assert summary['warnings'][-1] == (
      '1 clip name(s) are read from more than one file, their poses kept once per file '
      '(the same capture in two releases?), e.g. 12_01: '
      f'{os.path.join("cmu_bvh_daz", "12_01.bvh")}, {os.path.join("other", "12_01.bvh")}')
  os.remove(tmp_path / 'other' / '12_01.bvh')
  os.rmdir(tmp_path / 'other')
  # A clip whose name gives no subject could be a test subject's: skipped and listed
  # (strict: refused), never trained on.
  os.symlink(os.path.join(MOCAP_DIR, 'cmu_bvh_daz', '12_01.bvh'),
             tmp_path / 'cmu_bvh_daz' / 'walk.bvh')
  bank, summary = posebank.build(str(tmp_path), threshold_mm=20.0, val_subjects=(13,))
  assert summary['skipped'] == [dict(
      file=os.path.join('cmu_bvh_daz', 'walk.bvh'),
      error=f'{os.path.join("cmu_bvh_daz", "walk.bvh")}: its name does not start with a '
            'subject number; name it as CMU does (SUBJECT_CLIP.bvh or .amc, e.g. '
            '11_01.amc)')]
  assert len(bank.clips) == 3 and -1 not in bank.subject
  with pytest.raises(ValueError, match=r'walk.bvh: its name does not start with a subject '
                     'number'):
    posebank.build(str(tmp_path), threshold_mm=20.0, val_subjects=(13,), strict=True)


def test_command_line_refuses_test_subjects_in_val(tmp_path):
  proc = subprocess.run(
      [sys.executable, 'tools/pose_bank.py', '--val_subjects=13,131',
       f'--mocap_dir={tmp_path}', f'--out={tmp_path / "b.npz"}'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert 'pose_bank: error: val subject(s) 131 are test subjects' in proc.stderr
  proc = subprocess.run(
      [sys.executable, 'tools/pose_bank.py', '--val_subjects=x', f'--out={tmp_path}/b.npz'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1 and '--val_subjects takes subject numbers' in proc.stderr


def test_the_skipped_motion_files_are_reported_without_verbose():
  assert posebank.skipped_report([], 'b.json') == 'pose_bank: every motion file was read.'
  skipped = [dict(file=f'x/{k:02d}_01.bvh', error=f'reason {k}') for k in range(7)]
  assert posebank.skipped_report(skipped, 'b.json', shown=2).splitlines() == [
      'pose_bank: 7 motion file(s) could not be read and are not in the bank (all of them '
      'under "skipped" in b.json; --strict stops at the first):',
      '  x/00_01.bvh: reason 0', '  x/01_01.bvh: reason 1', '  ... and 5 more']

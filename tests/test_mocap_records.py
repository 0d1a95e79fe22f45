"""The motion capture converter (fbi3d/data/mocap_records.py, tools/convert_mocap.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import skeleton
from fbi3d.data import bvh
from fbi3d.data import joint_maps
from fbi3d.data import mocap_records
from fbi3d.data import motion
from fbi3d.data import pipeline
from fbi3d.data import schema
from tests.conftest import REPO


# A full cgspeed-style skeleton, in CMU units.
def _cgspeed_bvh(num_frames, seed=0, truncate=False):
  joints = [  # name, parent, offset
      ('Hips', None, (0, 0, 0)), ('LeftHip', 'Hips', (1.2, -1.6, 0.7)),
      ('LeftKnee', 'LeftHip', (2.5, -6.8, 0)), ('LeftAnkle', 'LeftKnee', (2.4, -6.5, 0)),
      ('RightHip', 'Hips', (-1.2, -1.6, 0.7)), ('RightKnee', 'RightHip', (-2.5, -6.8, 0)),
      ('RightAnkle', 'RightKnee', (-2.4, -6.5, 0)), ('Chest', 'Hips', (0, 2.0, 0)),
      ('Chest2', 'Chest', (0, 2.0, 0)), ('Head', 'Chest2', (0, 3.2, 0.1)),
      ('LeftShoulder', 'Chest2', (3.0, 1.5, 0)), ('LeftElbow', 'LeftShoulder', (0, -4.2, 0)),
      ('LeftWrist', 'LeftElbow', (0, -3.3, 0)), ('RightShoulder', 'Chest2', (-2.8, 1.3, 0)),
      ('RightElbow', 'RightShoulder', (0, -4.4, 0)),
      ('RightWrist', 'RightElbow', (0, -3.4, 0))]
  children = {}
  for name, parent, _ in joints:
    children.setdefault(parent, []).append(name)
  offsets = {name: offset for name, _, offset in joints}
  lines, order = ['HIERARCHY'], []

  def emit(name, depth):
    pad = '  ' * depth
    lines.append(f'{pad}{"ROOT" if depth == 0 else "JOINT"} {name}')
    lines.append(f'{pad}{{')
    lines.append(f'{pad}  OFFSET {" ".join(str(v) for v in offsets[name])}')
    pos = 'Xposition Yposition Zposition ' if depth == 0 else ''
    lines.append(f'{pad}  CHANNELS {6 if depth == 0 else 3} {pos}'
                 'Zrotation Yrotation Xrotation')
    order.append(name)
    for child in children.get(name, []):
      emit(child, depth + 1)
    if name not in children:
      lines.extend([f'{pad}  End Site', f'{pad}  {{', f'{pad}    OFFSET 0 1.6 0',
                    f'{pad}  }}'])
    lines.append(f'{pad}}}')

  emit('Hips', 0)
  rng = np.random.default_rng(seed)
  lines += ['MOTION', f'Frames: {num_frames}', 'Frame Time: .0083333']
  for f in range(num_frames):
    values = [0.0, 17.0, 0.3 * f] + list(rng.uniform(-15, 15, 3 * len(order)))
    lines.append(' '.join(f'{v:.4f}' for v in values))
  if truncate:
    lines = lines[:-2]
  return '\n'.join(lines) + '\n'


def test_converter_writes_npz_and_readable_records(tmp_path):
  src = tmp_path / 'motion'
  src.mkdir()
  (src / '07_01.bvh').write_text(_cgspeed_bvh(9))
  (src / '08_01.bvh').write_text(_cgspeed_bvh(5, seed=1))
  (src / '09_01.bvh').write_text(_cgspeed_bvh(5, truncate=True))
  out = str(tmp_path / 'out')
  summary = mocap_records.convert_folder(str(src), out, every_nth=4, tfrecords=True,
                                         crop_size=64, val_subjects=(8,), log=lambda _: None)
  assert [c['name'] for c in summary['clips']] == ['07_01', '08_01']
  assert len(summary['skipped']) == 1 and '09_01.bvh' in summary['skipped'][0]['reason']
  data = np.load(os.path.join(out, '07_01.npz'))
  assert data['poses'].shape == (3, 17, 3)
  assert float(data['frame_rate']) == 30.0 and int(data['subject']) == 7
  clip = bvh.read_bvh(str(src / '07_01.bvh'))
  np.testing.assert_allclose(data['poses'], joint_maps.to_h36m(clip)[::4], atol=1e-3)

  manifest = pipeline.load_manifest(out)
  assert manifest['splits']['train']['num_examples'] == 3
  assert manifest['splits']['val']['num_examples'] == 2
  assert np.asarray(manifest['normalisation']['pose3d_mean']).shape == (17, 3)
  records = pipeline.read_examples(out, 'train')
  assert len(records) == 3
  for r in records:
    assert r[schema.IMAGE] == b'' and r[schema.IMAGE_SIZE] == 0
    assert r[schema.ACTION] == -1 and r[schema.SUBJECT] == 7
    np.testing.assert_allclose(r[schema.POSE3D][0], 0.0, atol=1e-3)
    assert np.all(r[schema.POSE2D] >= 0) and np.all(r[schema.POSE2D] <= 64)
  lengths = joint_maps.bone_lengths(records[0][schema.POSE3D])
  np.testing.assert_allclose(lengths, joint_maps.bone_lengths(data['poses'][0]), rtol=1e-4)
  with pytest.raises(motion.MocapError, match=r'09_01\.bvh:\d+:'):
    mocap_records.convert_folder(str(src), out, strict=True, log=lambda _: None)


def test_converter_command_line(tmp_path):
  src = tmp_path / 'motion'
  src.mkdir()
  (src / '05_02.bvh').write_text(_cgspeed_bvh(6))
  out = tmp_path / 'out'
  cmd = [sys.executable, os.path.join(REPO, 'tools', 'convert_mocap.py'),
         f'--input_dir={src}', f'--output_dir={out}', '--every_nth=2', '--retarget']
  run = subprocess.run(cmd, capture_output=True, text=True, check=False,
                       env=dict(os.environ, PYTHONPATH=REPO))
  assert run.returncode == 0, run.stderr
  poses = np.load(out / '05_02.npz')['poses']
  assert poses.shape == (3, 17, 3)
  expected = [skeleton.MEAN_BONE_LENGTHS_MM[c] for _, c in skeleton.BONES]
  np.testing.assert_allclose(joint_maps.bone_lengths(poses), np.tile(expected, (3, 1)),
                             atol=1e-2)
  # A folder whose every file is bad: skipped and counted, and then no success.
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / '05_03.bvh').write_text(_cgspeed_bvh(6).rsplit('\n', 2)[0] + '\n')
  cmd = [sys.executable, os.path.join(REPO, 'tools', 'convert_mocap.py'),
         f'--input_dir={bad}', f'--output_dir={tmp_path / "out_bad"}']
  run = subprocess.run(cmd, capture_output=True, text=True, check=False,
                       env=dict(os.environ, PYTHONPATH=REPO))
  assert run.returncode == 1
  assert 'Wrote 0 clips (0 poses)' in run.stdout and '1 bad file(s) skipped.' in run.stdout
  assert run.stderr.strip().endswith(
      f'convert_mocap: error: no clip of {bad} was converted (the skipped files and their '
      'reasons are above); mend them, or give a folder of readable ASF/AMC or BVH files.')


def test_converter_refuses_settings_without_sense(tmp_path):
  src = tmp_path / 'motion'
  src.mkdir()
  (src / '07_01.bvh').write_text(_cgspeed_bvh(4))
  out = str(tmp_path / 'out')
  for kwargs, message in [
      (dict(unit_mm=-56.444), r'unit_mm .* must be a positive number, got -56.444; a '
                              'negative unit would mirror'),
      (dict(unit_mm=float('nan')), 'unit_mm .* got nan'),
      (dict(margin=float('nan')), r'margin must be a number >= 0 and < 2 .* got nan'),
      (dict(margin=-0.1), 'margin must be a number >= 0'),
      (dict(margin=float('inf')), r'margin must be a number >= 0 and < 2 .* got inf'),
      (dict(fbi_threshold_deg=float('nan')), r'fbi_threshold_deg must be in \[0, 90\), '
                                             'got nan'),
      (dict(fbi_threshold_deg=90.0), r'must be in \[0, 90\), got 90.0')]:
    with pytest.raises(ValueError, match=message):
      mocap_records.convert_folder(str(src), out, tfrecords=True, log=lambda _: None,
                                   **kwargs)
  assert not os.path.exists(out)


def _two_clips(tmp_path):
  """tmp_path/motion holding two short clips of subject 07, 07_01.bvh and 07_02.bvh."""
  src = tmp_path / 'motion'
  src.mkdir()
  (src / '07_01.bvh').write_text(_cgspeed_bvh(8))
  (src / '07_02.bvh').write_text(_cgspeed_bvh(8, seed=2))
  return src


def test_converter_skips_clips_with_nan_and_keeps_the_last_conversion_when_stopped(
    tmp_path, monkeypatch):
  src = _two_clips(tmp_path)
  # The BVH reader refuses a non-finite value; a clip of another reader could hold one.
  to_h36m = joint_maps.to_h36m

  def nan_in_07_02(clip, *args):
    poses = to_h36m(clip, *args)
    if clip.positions[0, 1, 0] != to_h36m_first:
      poses[5, 3, 2] = np.nan
    return poses

  to_h36m_first = bvh.read_bvh(str(src / '07_01.bvh')).positions[0, 1, 0]
  monkeypatch.setattr(mocap_records.joint_maps, 'to_h36m', nan_in_07_02)
  out = str(tmp_path / 'out')
  quiet = lambda _: None
  summary = mocap_records.convert_folder(str(src), out, every_nth=1, tfrecords=True,
                                         shard_size=3, log=quiet)
  assert [c['name'] for c in summary['clips']] == ['07_01']
  assert summary['skipped'][0]['reason'].endswith(
      '07_02.bvh: 1 frame(s) hold NaN or infinite coordinates, the first frame 5')
  with pytest.raises(motion.MocapError, match='the first frame 5'):
    mocap_records.convert_folder(str(src), out, every_nth=1, tfrecords=True, strict=True,
                                 log=quiet)
  shards = ['train-00000-of-00003.tfrecord', 'train-00001-of-00003.tfrecord',
            'train-00002-of-00003.tfrecord']
  assert pipeline.load_manifest(out)['splits']['train']['shards'] == shards
  before = {name: open(os.path.join(out, name), 'rb').read() for name in shards}
  # A second conversion (every 2nd frame: 4 records, 2 shards) stopped at its 3rd record.
  calls = []
  real = mocap_records.project_example

  def stop_at_third(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return real(*args, **kwargs)

  monkeypatch.setattr(mocap_records, 'project_example', stop_at_third)
  with pytest.raises(KeyboardInterrupt):
    mocap_records.convert_folder(str(src), out, every_nth=2, tfrecords=True, shard_size=3,
                                 log=quiet)
  assert {name: open(os.path.join(out, name), 'rb').read() for name in shards} == before
  assert not [n for n in os.listdir(out) if n.endswith('.tfrecord.partial')]
  # What a killed conversion leaves under temporary names goes with the next one.
  open(os.path.join(out, 'val-00004-of-00009.tfrecord.partial'), 'wb').close()
  assert pipeline.load_manifest(out)['splits']['train']['num_examples'] == 8
  assert len(pipeline.read_examples(out, 'train')) == 8
  # Run to its end, it replaces the earlier shards and removes the ones it does not list.
  monkeypatch.setattr(mocap_records, 'project_example', real)
  mocap_records.convert_folder(str(src), out, every_nth=2, tfrecords=True, shard_size=3,
                               log=quiet)
  assert sorted(n for n in os.listdir(out) if n.endswith('.tfrecord')) == [
      'train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord']
  assert not [n for n in os.listdir(out) if 'partial' in n]
  assert len(pipeline.read_examples(out, 'train')) == 4


def test_clips_of_two_conversions_in_one_folder_are_named_and_never_mixed(tmp_path):
  from fbi3d.data import pose_folder   # pylint: disable=g-import-not-at-top
  src, one = _two_clips(tmp_path), tmp_path / 'one'
  one.mkdir()
  (one / '07_01.bvh').write_text(_cgspeed_bvh(8))
  out = str(tmp_path / 'out')
  quiet = lambda _: None
  mocap_records.convert_folder(str(src), out, every_nth=1, log=quiet)
  assert len(pose_folder.load_pose_bank(out).poses) == 16
  # 07_01 converted again at every 2nd frame: 07_02 is left at every frame.
  said = []
  summary = mocap_records.convert_folder(str(one), out, every_nth=2, log=said.append)
  assert summary['warnings'] == [
      f'{out} still holds 1 clip(s) of an earlier conversion with other settings '
      '(07_02.npz: every_nth 1, captured bones; this one: every_nth 2, captured bones), '
      'which a pose bank read from the folder refuses to mix: remove them, or convert into '
      'an empty folder']
  assert said[-1] == 'warning: ' + summary['warnings'][0]
  with pytest.raises(ValueError) as e:
    pose_folder.load_pose_bank(out)
  assert str(e.value) == (
      f'load_pose_bank: {out} holds clips of different conversions: 1 with every_nth 2, '
      'captured bones (07_01.npz); 1 with every_nth 1, captured bones (07_02.npz). Convert '
      'the motion files again into an empty folder with one setting '
      '(tools/convert_mocap.py), or keep each kind in a folder of its own.')


def test_a_zero_length_bone_skips_its_clip_when_retargeting_naming_file_and_frame(
    tmp_path, monkeypatch):
  src = _two_clips(tmp_path)
  to_h36m = joint_maps.to_h36m
  first = bvh.read_bvh(str(src / '07_01.bvh')).positions[0, 1, 0]

  def hip_on_pelvis_in_07_02(clip, *args):
    poses = to_h36m(clip, *args)
    if clip.positions[0, 1, 0] != first:
      poses[6, 1] = poses[6, 0]          # frame 6: RHip on the pelvis
    return poses

  monkeypatch.setattr(mocap_records.joint_maps, 'to_h36m', hip_on_pelvis_in_07_02)
  out = str(tmp_path / 'out')
  summary = mocap_records.convert_folder(str(src), out, every_nth=2, retarget_bones=True,
                                         log=lambda _: None)
  assert [c['name'] for c in summary['clips']] == ['07_01']
  assert summary['skipped'][0]['reason'] == (
      f'{src / "07_02.bvh"}: retarget: the bone Hip -> RHip has zero length in frame 6: '
      'no direction to give the mean length.')
  with pytest.raises(motion.MocapError, match='has zero length in frame 6'):
    mocap_records.convert_folder(str(src), out, every_nth=2, retarget_bones=True,
                                 strict=True, log=lambda _: None)


def test_clip_names_never_depend_on_which_files_failed_and_val_subjects_are_checked(
    tmp_path):
  # Two clips of one name in two folders: 01_01 and 01_01_ by their order, whether the
  # first reads or not.
  for folder in ('a', 'b'):
    (tmp_path / 'motion' / folder).mkdir(parents=True)
  (tmp_path / 'motion' / 'a' / '01_01.bvh').write_text(_cgspeed_bvh(4))
  (tmp_path / 'motion' / 'b' / '01_01.bvh').write_text(_cgspeed_bvh(4, seed=1))
  out = str(tmp_path / 'out')
  quiet = lambda _: None
  summary = mocap_records.convert_folder(str(tmp_path / 'motion'), out, log=quiet,
                                         val_subjects=[1])
  assert [c['name'] for c in summary['clips']] == ['01_01', '01_01_']
  assert 'warnings' not in summary
  first = open(os.path.join(out, '01_01.npz'), 'rb').read()
  # a/ breaks: b's clip keeps its own name, and a's earlier conversion stays as it was.
  (tmp_path / 'motion' / 'a' / '01_01.bvh').write_text(_cgspeed_bvh(4, truncate=True))
  lines = []
  summary = mocap_records.convert_folder(str(tmp_path / 'motion'), out, log=lines.append,
                                         val_subjects=[1, 4])
  assert [c['name'] for c in summary['clips']] == ['01_01_']
  assert open(os.path.join(out, '01_01.npz'), 'rb').read() == first
  assert summary['warnings'] == ['val subject(s) 4 match no clip read: the val split '
                                 'lacks them']
  assert 'warning: val subject(s) 4 match no clip read: the val split lacks them' in lines
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tools', 'convert_mocap.py'),
       f'--input_dir={tmp_path / "motion"}', f'--output_dir={out}', '--val_subjects=2,x'],
      capture_output=True, text=True, check=False, env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 1
  assert proc.stderr.strip().endswith(
      'convert_mocap: error: --val_subjects takes subject numbers separated by commas '
      '(e.g. 2,8), not \'2,x\'.')
  # Records split by subject: a clip whose name gives none is skipped (it went into
  # train as subject -1, though it might be a val subject's).
  (tmp_path / 'motion' / 'b' / 'S02_walk.bvh').write_text(_cgspeed_bvh(4))
  summary = mocap_records.convert_folder(str(tmp_path / 'motion' / 'b'), str(tmp_path / 'rec'),
                                         tfrecords=True, val_subjects=[2], log=quiet)
  assert [c['name'] for c in summary['clips']] == ['01_01']
  assert summary['skipped'][0]['reason'] == (
      f'{tmp_path / "motion" / "b" / "S02_walk.bvh"}: its name does not start with a '
      'subject number, so its split (train or val) cannot be told; name it as CMU does '
      '(SUBJECT_CLIP.bvh or .amc, e.g. 02_01.bvh)')

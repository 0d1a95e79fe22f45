# Over 400 lines: one case per kind of bad input, side file and resume path, on one layout builder.
"""Tests of the challenge-layout converter on tiny layouts (tests/challenge_layout.py)."""

import collections
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fbi3d import fbi
from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import convert
from fbi3d.data import convert_output
from fbi3d.data import convert_plan
from fbi3d.data import crop_worker
from fbi3d.data import layout
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import schema
from tests.challenge_layout import CROP
from tests.challenge_layout import corrupt_garbage_image
from tests.challenge_layout import make_layout
from tests.challenge_layout import read_records
from tests.challenge_layout import run
from tests.conftest import REPO

def test_round_trip_is_exact(tmp_path):
  truth = make_layout(str(tmp_path / 'in'), counts=(('Train', 7), ('Test', 2)))
  out = tmp_path / 'out'
  manifest = run(tmp_path / 'in', out)
  train = manifest['splits']['train']
  assert train['shards'] == [f'train-{k:05d}-of-00003.tfrecord' for k in range(3)]
  assert manifest['schema_version'] == schema.SCHEMA_VERSION
  examples = read_records(str(out), manifest, 'train')
  assert [e[schema.SOURCE_ID].decode() for e in examples] == sorted(truth['Train'])
  for ex in examples:
    t = truth['Train'][ex[schema.SOURCE_ID].decode()]
    box = geometry.square_box(t['joints2d'], 0.2)
    np.testing.assert_array_equal(ex[schema.POSE3D], t['pose3d'])
    np.testing.assert_allclose(ex[schema.POSE2D], geometry.image_to_crop(t['joints2d'], box, CROP),
                               atol=1e-4)
    np.testing.assert_array_equal(ex[schema.FBI], fbi.fbi_labels(t['pose3d']))
    np.testing.assert_allclose(ex[schema.CROP_BOX], box, atol=1e-4)
    np.testing.assert_array_equal(ex[schema.INTRINSICS], t['intrinsics'])
    assert ex[schema.ACTION] == t['action'] and ex[schema.SUBJECT] == t['subject']
    assert ex[schema.SPLIT] == b'Train' and ex[schema.IMAGE_SIZE] == CROP
    assert ex[schema.POSE2D_VALID] == 1 and ex[schema.POSE3D_VALID] == 1
    crop = cv2.imdecode(np.frombuffer(ex[schema.IMAGE], np.uint8), cv2.IMREAD_COLOR)
    expected = cv2.warpAffine(cv2.imread(t['image']), geometry.crop_affine(box, CROP),
                              (CROP, CROP), flags=cv2.INTER_LINEAR)
    assert crop.shape == (CROP, CROP, 3)
    assert np.mean(np.abs(crop.astype(float) - expected)) < 12.0


def test_unlabelled_test_split(tmp_path):
  truth = make_layout(str(tmp_path / 'in'), counts=(('Train', 2), ('Test', 4)))
  manifest = run(tmp_path / 'in', tmp_path / 'out')
  test = manifest['splits']['test']
  assert test['has_pose3d'] is False and test['fbi_class_balance'] is None
  assert test['num_examples'] == 4 and manifest['splits']['train']['has_pose3d'] is True
  assert any('test' in n and 'unlabelled' in n for n in manifest['notes'])
  for ex in read_records(str(tmp_path / 'out'), manifest, 'test'):
    t = truth['Test'][ex[schema.SOURCE_ID].decode()]
    assert ex[schema.POSE3D_VALID] == 0 and ex[schema.POSE2D_VALID] == 1
    assert not ex[schema.POSE3D].any() and not ex[schema.FBI].any()
    assert ex[schema.SPLIT] == b'Test' and ex[schema.ACTION] == t['action']


def test_manifest_counts_and_normalisation(tmp_path):
  truth = make_layout(str(tmp_path / 'in'), counts=(('Train', 7), ('Val', 3)))
  manifest = run(tmp_path / 'in', tmp_path / 'out', margin=0.1)
  train = manifest['splits']['train']
  assert train['num_examples'] == 7 and train['num_skipped'] == 0
  assert train['crop_modes'] == {'joints2d': 7, 'box': 0, 'whole_image': 0}
  counts = collections.Counter(t['action'] for t in truth['Train'].values())
  expected = {a: counts.get(i, 0) for i, a in enumerate(skeleton.ACTIONS)}
  expected['unknown'] = counts.get(-1, 0)
  assert train['action_histogram'] == expected
  assert expected['unknown'] == 2
  pose3d = np.stack([t['pose3d'] for t in truth['Train'].values()]).astype(np.float64)
  pose2d = np.stack([
      geometry.image_to_crop(t['joints2d'], geometry.square_box(t['joints2d'], 0.1), CROP)
      .astype(np.float32) for t in truth['Train'].values()]).astype(np.float64)
  np.testing.assert_allclose(train['fbi_class_balance'], fbi.class_balance(
      [fbi.fbi_labels(p) for p in pose3d]), atol=1e-12)
  norm = manifest['normalisation']
  assert norm['split'] == 'train' and norm['num_examples'] == 7
  np.testing.assert_allclose(norm['pose3d_mean'], pose3d.mean(0), atol=1e-6)
  np.testing.assert_allclose(norm['pose3d_std'], pose3d.std(0), atol=1e-6)
  np.testing.assert_allclose(norm['pose2d_mean'], pose2d.mean(0), atol=1e-6)
  np.testing.assert_allclose(norm['pose2d_std'], pose2d.std(0), atol=1e-6)
  assert manifest['splits']['val']['num_examples'] == 3
  assert manifest['skipped'] == [] and manifest['skipped_by_reason'] == {}
  with open(tmp_path / 'out' / 'manifest.json') as f:
    assert json.load(f) == manifest


def _corrupt_empty_image(root):
  open(os.path.join(root, 'Train/IMG/00002.jpg'), 'wb').close()
  return 'Train/IMG/00002.jpg'


def _corrupt_truncated_image(root):
  path = os.path.join(root, 'Train/IMG/00002.jpg')
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])
  return 'Train/IMG/00002.jpg'


def _remove_pose(root):
  os.remove(os.path.join(root, 'Train/POSE/00002.csv'))
  return 'Train/IMG/00002.jpg'


def _remove_image(root):
  os.remove(os.path.join(root, 'Train/IMG/00002.jpg'))
  return 'Train/POSE/00002.csv'


def _edit_lines(relpath, edit):
  """A corruption that rewrites the lines of one input file with `edit`."""
  def corrupt(root):
    path = os.path.join(root, relpath)
    with open(path) as f:
      lines = f.read().splitlines()
    with open(path, 'w') as f:
      f.write('\n'.join(edit(lines)) + '\n')
    return relpath
  return corrupt


def _edit_pose(edit):
  return _edit_lines('Train/POSE/00002.csv', edit)


def _duplicate_image(root):
  image = cv2.imread(os.path.join(root, 'Train/IMG/00002.jpg'))
  cv2.imwrite(os.path.join(root, 'Train/IMG/00002.png'), image)
  return 'Train/IMG/00002.png'


def _edit_meta(edit):
  return _edit_lines('Train/META.csv', edit)


def _row(lines, rid):
  return next(i for i, ln in enumerate(lines) if ln.startswith(rid + ','))


def _meta_duplicate(lines):
  return lines + [lines[_row(lines, '00002')]]


def _meta_short_row(lines):
  i = _row(lines, '00002')
  lines[i] = ','.join(lines[i].split(',')[:-1])
  return lines


def _edit_fields(change):
  """A META corruption: `change` rewrites the fields of row 00002 in place."""
  def edit(lines):
    i = _row(lines, '00002')
    parts = lines[i].split(',')
    change(parts)
    lines[i] = ','.join(parts)
    return lines
  return _edit_meta(edit)


def _not_a_number(parts):
  parts[-1] = 'abc'


def _unknown_action(parts):
  parts[1] = 'Walkng'


def _negative_focal(parts):
  parts[-4:-2] = ['0', '-5']


def _focal_under_a_pixel(parts):
  parts[-4:-2] = ['1e-09', '1e-09']      # a focal length in metres: no camera


def _joints_elsewhere(parts):
  # Every joint 1000 px to the right of the 64-px picture.
  for k in range(3, 3 + 2 * 17, 2):
    parts[k] = f'{float(parts[k]) + 1000:g}'


def _joints_of_another_resolution(parts):
  # The joints of a picture three times the size: their crop still overlaps the picture.
  for k in range(3, 3 + 2 * 17):
    parts[k] = f'{float(parts[k]) * 3:g}'


def _joints_at_one_point(parts):
  for k in range(3, 3 + 2 * 17):
    parts[k] = '20'


def _nan_joint(parts):
  parts[5] = 'nan'


BAD_INPUTS = {
    'missing pose': [_remove_pose],
    'missing image': [_remove_image],
    'corrupt image': [_corrupt_empty_image, corrupt_garbage_image, _corrupt_truncated_image],
    'bad pose': [_edit_pose(lambda ls: ls[:-1]), _edit_pose(lambda ls: ls[:3] + ['1,2'] + ls[4:]),
                 _edit_pose(lambda ls: ls[:3] + ['1,x,2'] + ls[4:]),
                 _edit_pose(lambda ls: ls[:3] + ['1,nan,2'] + ls[4:]),
                 # In metres, in centimetres, and not root-relative.
                 _edit_pose(lambda ls: [','.join(f'{float(v) / 1000:g}' for v in l.split(','))
                                        for l in ls]),
                 _edit_pose(lambda ls: [','.join(f'{float(v) / 10:g}' for v in l.split(','))
                                        for l in ls]),
                 _edit_pose(lambda ls: [','.join([*l.split(',')[:2],
                                                  f'{float(l.split(",")[2]) + 5000:g}'])
                                        for l in ls])],
    'duplicate id': [_duplicate_image, _edit_meta(_meta_duplicate)],
    'bad meta': [_edit_meta(_meta_short_row), _edit_fields(_not_a_number),
                 _edit_fields(_unknown_action), _edit_fields(_negative_focal),
                 _edit_fields(_focal_under_a_pixel),
                 # A lost row (it was cropped whole, with no action or camera).
                 _edit_meta(lambda ls: [ln for ln in ls if not ln.startswith('00002,')])],
    # The right hip on the pelvis: a zero bone outside the FBI bones, which passed.
    'degenerate pose': [_edit_pose(lambda ls: ls[:1] + ls[:1] + ls[2:])],
    'nan 2d joints': [_edit_fields(_nan_joint)],
    # Every joint at one point (was a 16-px crop with its 2D marked valid).
    'degenerate 2d joints': [_edit_fields(_joints_at_one_point)],
    'crop outside picture': [_edit_fields(_joints_elsewhere),
                             _edit_fields(_joints_of_another_resolution)],
}
CASES = [(kind, fn) for kind, fns in BAD_INPUTS.items() for fn in fns]


@pytest.mark.parametrize('kind,corrupt', CASES,
                         ids=[f'{k}-{i}' for i, (k, _) in enumerate(CASES)])
def test_bad_input_is_skipped_and_counted(tmp_path, kind, corrupt):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 5),))
  named = corrupt(root)
  manifest = run(root, tmp_path / 'out')
  assert [(s['split'], s['id']) for s in manifest['skipped']] == [('Train', '00002')]
  assert convert_plan.reason_kind(manifest['skipped'][0]['reason']) == kind
  assert manifest['skipped_by_reason'] == {kind: 1}
  assert manifest['splits']['train']['num_examples'] == 4
  assert manifest['splits']['train']['num_skipped'] == 1
  ids = [e[schema.SOURCE_ID].decode()
         for e in read_records(str(tmp_path / 'out'), manifest, 'train')]
  assert ids == ['00001', '00003', '00004', '00005']
  with pytest.raises(convert_plan.ConversionError) as error:
    run(root, tmp_path / 'strict', strict=True)
  message = str(error.value)
  assert kind in message and os.path.join(root, named) in message
  # Finished shards stay; the shard that met the bad item is not visible.
  assert not os.path.exists(tmp_path / 'strict' / 'train-00000-of-00002.tfrecord')
  if os.path.exists(tmp_path / 'strict'):
    assert not [n for n in os.listdir(tmp_path / 'strict') if n.endswith('.tmp')]


def test_strict_keeps_finished_shards(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 5),))
  corrupt_garbage_image(root)
  os.replace(os.path.join(root, 'Train/IMG/00002.jpg'), os.path.join(root, 'Train/IMG/00005.jpg'))
  cv2.imwrite(os.path.join(root, 'Train/IMG/00002.jpg'), np.zeros((64, 64, 3), np.uint8))
  with pytest.raises(convert_plan.ConversionError, match='Train/00005: corrupt image'):
    run(root, tmp_path / 'out', strict=True)
  assert sorted(os.listdir(tmp_path / 'out')) == ['.parts', 'train-00000-of-00002.tfrecord']


def test_actions_file_reads_take_names_and_strict_stops_on_an_unknown_name(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 3),), meta=False)
  act_path = str(tmp_path / 'act.csv')
  with open(act_path, 'w') as f:
    f.write('split,id,action\nTrain,00001,TakingPhoto\nTrain,00002,Walking 2\n'
            'Train,00003,Dancing\n')
  manifest = run(root, tmp_path / 'out', actions=act_path)
  histogram = manifest['splits']['train']['action_histogram']
  assert (histogram['Photo'], histogram['Walking'], histogram['unknown']) == (1, 1, 1)
  assert any('--strict stops on them): Dancing' in n for n in manifest['notes'])
  with pytest.raises(convert_plan.ConversionError, match="Train/00003: --actions .* 'Dancing'"):
    run(root, tmp_path / 'strict', actions=act_path, strict=True)
  # Stopped while planning: no record was written.
  assert not [n for n in os.listdir(tmp_path / 'strict') if 'tfrecord' in n]
  # An empty cell gives no action, and --strict does not stop on it.
  with open(act_path, 'w') as f:
    f.write('split,id,action\nTrain,00001,Eating\nTrain,00002,\n')
  manifest = run(root, tmp_path / 'strict2', actions=act_path, strict=True)
  histogram = manifest['splits']['train']['action_histogram']
  assert (histogram['Eating'], histogram['unknown']) == (1, 2)


def _shard_stats(out_dir):
  stats = {n: os.stat(os.path.join(out_dir, n)) for n in os.listdir(out_dir)
           if n.endswith('.tfrecord')}
  return {n: (st.st_ino, st.st_mtime_ns) for n, st in stats.items()}


def test_resume_rewrites_only_missing_shards(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 8),))
  first = run(root, out)
  before = _shard_stats(out)
  assert len(before) == 3
  os.remove(os.path.join(out, 'train-00001-of-00003.tfrecord'))
  os.remove(os.path.join(out, '.parts', 'train-00001-of-00003.tfrecord.json'))
  os.remove(os.path.join(out, '.parts', 'train-00002-of-00003.tfrecord.json'))
  with open(os.path.join(out, 'train-00001-of-00003.tfrecord.tmp'), 'wb') as f:
    f.write(b'half a shard')
  lines = []
  second = run(root, out, log=lines.append)
  after = _shard_stats(out)
  assert after['train-00000-of-00003.tfrecord'] == before['train-00000-of-00003.tfrecord']
  assert after['train-00002-of-00003.tfrecord'] != before['train-00002-of-00003.tfrecord']
  assert not [n for n in os.listdir(out) if n.endswith('.tmp')]
  assert any('resuming: 1 of 3' in ln for ln in lines)
  ids = [e[schema.SOURCE_ID].decode() for e in read_records(out, second, 'train')]
  assert ids == [f'{i:05d}' for i in range(1, 9)]
  assert second == first
  third = run(root, out)
  assert _shard_stats(out) == after and third == first


def test_changed_plan_needs_overwrite(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 5),))
  run(root, out)
  for change in (dict(shard_size=2), dict(crop_size=48), dict(fbi_threshold_deg=5.0)):
    with pytest.raises(convert_plan.ConversionError, match='--overwrite'):
      run(root, out, **change)
  layout.write_pose_csv(os.path.join(root, 'Train/POSE/00001.csv'), np.full((17, 3), 1000.0))
  with pytest.raises(convert_plan.ConversionError, match='input files changed'):
    run(root, out)
  # An --overwrite that fails (strict, on the changed pose) leaves the earlier conversion
  # as it was, its manifest, shards and records; what it made waits in .overwrite/.
  def files():
    found = {}
    for folder, _, names in os.walk(out):
      for name in names:
        path = os.path.relpath(os.path.join(folder, name), out)
        if not path.startswith('.overwrite'):
          found[path] = open(os.path.join(out, path), 'rb').read()
    return found

  before = files()
  with pytest.raises(convert_plan.ConversionError, match='00001'):
    run(root, out, shard_size=2, overwrite=True, strict=True)
  assert files() == before
  assert os.path.isdir(os.path.join(out, '.overwrite'))
  # Stray temporaries of the folder go with the next --overwrite, as with a conversion.
  open(os.path.join(out, 'train-00000-of-00002.tfrecord.tmp'), 'w').close()
  manifest = run(root, out, shard_size=2, overwrite=True)
  assert sorted(os.listdir(out)) == ['.parts', 'manifest.json'] + [
      f'train-{k:05d}-of-00003.tfrecord' for k in range(3)]
  assert sorted(n for n in os.listdir(out) if n.endswith('.tfrecord')) == [
      f'train-{k:05d}-of-00003.tfrecord' for k in range(3)]
  assert manifest['skipped_by_reason'] == {'degenerate pose': 1}
  assert json.loads(open(manifest_lib.path_in(out)).read()) == json.loads(json.dumps(manifest))
  assert sorted(os.listdir(os.path.join(out, '.parts'))) == ['input_hashes.json'] + [
      f'train-{k:05d}-of-00003.tfrecord.json' for k in range(3)]


def test_an_edit_that_keeps_the_file_size_is_noticed(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 5),))
  run(root, out)
  path = os.path.join(root, 'Train/POSE/00002.csv')
  with open(path) as f:
    text = f.read()
  first = text.split(',')[0]
  digit = '2' if first[-1] != '2' else '3'
  edited = text.replace(first, first[:-1] + digit, 1)        # one digit: the same size
  assert len(edited) == len(text) and edited != text
  # Touched but unchanged (a copy, a checkout): the same content, nothing to redo.
  os.utime(path, ns=(1, 1))
  lines = []
  run(root, out, log=lines.append)
  assert any('resuming: 2 of 2' in ln for ln in lines)
  with open(path, 'w') as f:
    f.write(edited)
  with pytest.raises(convert_plan.ConversionError, match='train-00000-of-00002.tfrecord from a '
                     'different conversion \\(its input files changed\\); use a new '
                     '--output_dir or pass --overwrite'):
    run(root, out)


def test_shards_of_the_first_sidecar_version_are_kept_with_a_note(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 5),))
  first = run(root, out)
  for name in os.listdir(os.path.join(out, '.parts')):
    if name.endswith('.tfrecord.json'):
      path = os.path.join(out, '.parts', name)
      with open(path) as f:
        sidecar = json.load(f)
      items = convert_plan.plan_split(root, 'Train', convert_plan.SideFiles(), False)[0]
      chunk = [it for it in items if it['id'] in sidecar['planned_ids']]
      sidecar.update(version=1, input_digest=convert_plan.input_digest(chunk))
      with open(path, 'w') as f:
        json.dump(sidecar, f)
  lines = []
  assert run(root, out, log=lines.append) == first
  assert any('2 shards were converted by an earlier version that fingerprinted input names '
             'and sizes only' in ln for ln in lines)


def test_a_second_conversion_into_the_same_folder_is_refused(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 2),))
  os.makedirs(os.path.join(out, '.parts'))
  lock = os.path.join(out, '.parts', convert_output.LOCK)
  other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    with open(lock, 'w') as f:
      f.write(str(other.pid))
    with pytest.raises(convert_plan.ConversionError,
                       match=f'is being converted by process {other.pid} \\(lock '):
      run(root, out)
    assert not os.path.exists(os.path.join(out, manifest_lib.MANIFEST))
  finally:
    other.kill()
    other.wait()
  # Its process gone, the lock is taken over; released at the end.
  lines = []
  run(root, out, log=lines.append)
  assert any(f'taking over the lock {lock} of process {other.pid}' in ln for ln in lines)
  assert not os.path.exists(lock)


def test_ids_that_differ_only_in_padding_are_one_example(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 3),))
  # 00002's image renamed 2.jpg still pairs with POSE/00002.csv and META's row 00002 ...
  os.replace(os.path.join(root, 'Train/IMG/00002.jpg'), os.path.join(root, 'Train/IMG/2.jpg'))
  # ... and a second image 3.png beside 00003.jpg is a duplicate, skipped and counted.
  cv2.imwrite(os.path.join(root, 'Train/IMG/3.png'), np.zeros((64, 64, 3), np.uint8))
  manifest = run(root, out)
  ids = [e[schema.SOURCE_ID].decode() for e in read_records(out, manifest, 'train')]
  assert ids == ['00001', '00002']
  assert manifest['skipped_by_reason'] == {'duplicate id': 1}
  with pytest.raises(convert_plan.ConversionError, match='Train/00003: duplicate id: more than '
                     'one image for 00003: .*00003.jpg, .*3.png'):
    run(root, str(tmp_path / 'strict'), strict=True)


def test_a_png_named_jpg_is_read_by_its_content(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 2),))
  path = os.path.join(root, 'Train/IMG/00001.jpg')
  image = cv2.imread(path)
  cv2.imwrite(path + '.png', image)
  os.replace(path + '.png', path)
  manifest = run(root, out)
  assert manifest['splits']['train']['num_examples'] == 2
  assert manifest['skipped_by_reason'] == {}


def test_whole_image_crop_without_2d(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 3),), meta=False, size=(48, 64))
  manifest = run(root, tmp_path / 'out')
  train = manifest['splits']['train']
  assert train['crop_modes'] == {'joints2d': 0, 'box': 0, 'whole_image': 3}
  assert train['action_histogram']['unknown'] == 3
  assert any('whole image' in n for n in manifest['notes'])
  assert any('no 2D joints' in n for n in manifest['notes'])
  assert manifest['normalisation']['pose2d_mean'] is None
  for ex in read_records(str(tmp_path / 'out'), manifest, 'train'):
    np.testing.assert_array_equal(ex[schema.CROP_BOX], [0.0, -8.0, 64.0])
    assert ex[schema.POSE2D_VALID] == 0 and not ex[schema.POSE2D].any()
    assert ex[schema.ACTION] == -1 and ex[schema.SUBJECT] == -1
    assert not ex[schema.INTRINSICS].any()


def test_side_files(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 4),), meta=False)
  rng = np.random.default_rng(3)
  joints = {rid: rng.uniform(10, 50, size=(17, 2)).round(2) for rid in ('00001', '00002')}
  joints['00004'] = joints['00001'].copy()
  joints['00004'][3, 1] = np.nan
  kp_path, box_path, act_path = (str(tmp_path / n) for n in ('kp.csv', 'box.csv', 'act.csv'))
  with open(kp_path, 'w') as f:
    f.write(','.join(convert_plan.KEYPOINT_COLUMNS) + '\n')
    for rid, j in joints.items():
      f.write(f'Train,{rid},' + ','.join(str(v) for v in j.reshape(-1)) + '\n')
  with open(box_path, 'w') as f:
    f.write('split,id,x,y,w,h\nTrain,00002,1,1,5,5\nTrain,00003,10,20,30,10\n')
  with open(act_path, 'w') as f:
    f.write('split,id,action\nTrain,00001,Walking\ntrain,3,Eating\nVal,00009,Posing\n')
  manifest = run(root, tmp_path / 'out', keypoints2d=kp_path, boxes=box_path,
                 actions=act_path)
  assert manifest['side_files']['boxes'] == box_path
  train = manifest['splits']['train']
  assert train['crop_modes'] == {'joints2d': 2, 'box': 1, 'whole_image': 0}
  assert manifest['skipped_by_reason'] == {'nan 2d joints': 1}
  assert manifest['skipped'][0]['id'] == '00004' and kp_path in manifest['skipped'][0]['reason']
  assert train['action_histogram']['Walking'] == 1 and train['action_histogram']['Eating'] == 1
  assert any('--actions: 1 rows match no image' in n for n in manifest['notes'])
  examples = {e[schema.SOURCE_ID].decode(): e
              for e in read_records(str(tmp_path / 'out'), manifest, 'train')}
  for rid in ('00001', '00002'):
    box = geometry.square_box(joints[rid], 0.2)
    np.testing.assert_allclose(examples[rid][schema.CROP_BOX], box, atol=1e-4)
    np.testing.assert_allclose(examples[rid][schema.POSE2D],
                               geometry.image_to_crop(joints[rid], box, CROP), atol=1e-4)
  np.testing.assert_allclose(examples['00003'][schema.CROP_BOX], [4.0, 4.0, 42.0], atol=1e-5)
  assert examples['00003'][schema.POSE2D_VALID] == 0
  assert examples['00003'][schema.ACTION] == skeleton.action_index('Eating')


def test_fatal_errors(tmp_path):
  with pytest.raises(convert_plan.ConversionError, match='no such folder'):
    run(tmp_path / 'nowhere', tmp_path / 'out')
  os.makedirs(tmp_path / 'empty' / 'Other')
  with pytest.raises(convert_plan.ConversionError, match='no split'):
    run(tmp_path / 'empty', tmp_path / 'out')
  make_layout(str(tmp_path / 'in'), counts=(('Train', 1),))
  lines = []
  manifest = run(tmp_path / 'in', tmp_path / 'out', splits='Train,Val', log=lines.append)
  assert list(manifest['splits']) == ['train']
  assert any('warning: split Val not found' in ln for ln in lines)
  # A misspelt split is a usage error (it only warned: the conversion ended well without
  # it); so is a margin that is not a finite number below 2.
  with pytest.raises(convert_plan.ConversionError) as e:
    run(tmp_path / 'in', tmp_path / 'out2', splits='Train,Vall')
  assert str(e.value) == "--splits: 'Vall' is not a split of the layout; give some of Train, Val, Test"
  for margin in (float('inf'), 2.0, float('nan'), -0.1):
    with pytest.raises(convert_plan.ConversionError) as e:
      run(tmp_path / 'in', tmp_path / 'out2', margin=margin)
    assert str(e.value) == (
        '--margin must be a finite number in [0, 2) (the fraction of the joints\' box side '
        'added on each side; 2 would leave the person a fifth of the crop), got '
        f'{margin}')
  assert not os.path.exists(tmp_path / 'out2')
  (tmp_path / 'a_file').write_text('')
  with pytest.raises(convert_plan.ConversionError, match=r'--output_dir .*a_file is a file; give a '
                     r'folder \(it is made if missing\)\.'):
    run(tmp_path / 'in', tmp_path / 'a_file')
  # Split folders with no pictures: nothing converted is an error, not an empty data set.
  for split in ('Train', 'Val'):
    os.makedirs(tmp_path / 'none' / split / 'IMG')
    os.makedirs(tmp_path / 'none' / split / 'POSE')
  with pytest.raises(convert_plan.ConversionError,
                     match=r'none: nothing converted in Train, Val \(0 item\(s\) skipped: '
                           r'no pictures found\); no manifest written\.'):
    run(tmp_path / 'none', tmp_path / 'out_none')
  assert not os.path.exists(manifest_lib.path_in(str(tmp_path / 'out_none')))


def test_shards_of_another_input_folder_are_not_kept(tmp_path):
  first, second, out = str(tmp_path / 'a'), str(tmp_path / 'b'), str(tmp_path / 'out')
  make_layout(first, counts=(('Val', 3),))
  make_layout(second, counts=(('Train', 4), ('Val', 2)))
  run(first, out, splits='Val')
  with pytest.raises(convert_plan.ConversionError,
                     match=r'holds val-00000-of-00001.tfrecord \(and the rest of its split\) '
                           r'converted from .*/a, not from .*/b; one data set would mix the '
                           r'two\. Use a new --output_dir, or pass --overwrite'):
    run(second, out, splits='Train')
  assert not [n for n in os.listdir(out) if n.startswith('train-')]
  manifest = run(second, out, splits='Train,Val', overwrite=True)
  assert {k: v['num_examples'] for k, v in manifest['splits'].items()} == {'train': 4,
                                                                           'val': 2}
  # A conversion stopped before its manifest: the shards' own records name their input
  # folder (was: kept, and the new manifest named only the second folder).
  out2 = str(tmp_path / 'out2')
  run(first, out2, splits='Val')
  os.remove(manifest_lib.path_in(out2))
  with pytest.raises(convert_plan.ConversionError,
                     match=r'holds val-00000-of-00001.tfrecord \(and the rest of its split\) '
                           r'converted from .*/a, not from .*/b; one data set would mix'):
    run(second, out2, splits='Train')


def test_command_line(tmp_path):
  make_layout(str(tmp_path / 'in'), counts=(('Train', 3),))
  tool = os.path.join(REPO, 'tools', 'convert_challenge.py')
  ok = subprocess.run(
      [sys.executable, tool, f'--input_dir={tmp_path / "in"}', f'--output_dir={tmp_path / "out"}',
       '--crop_size=32', '--workers=1'], capture_output=True, text=True, check=False)
  assert ok.returncode == 0, ok.stderr
  assert re.search(r'^train +3 +0 ', ok.stdout, re.M), ok.stdout
  with open(tmp_path / 'out' / 'manifest.json') as f:
    manifest = json.load(f)
  assert manifest['crop_size'] == 32 and manifest['splits']['train']['num_examples'] == 3
  bad = subprocess.run(
      [sys.executable, tool, f'--input_dir={tmp_path / "nowhere"}',
       f'--output_dir={tmp_path / "out2"}'], capture_output=True, text=True, check=False)
  assert bad.returncode != 0
  assert 'error: --input_dir' in bad.stderr and 'Traceback' not in bad.stderr


def test_publish_shards_names_the_new_and_removes_the_old(tmp_path):
  out = tmp_path / 'out'
  out.mkdir()
  # An earlier conversion: its manifest lists train 0-1 of 2 and a shard of odd name;
  # a val shard of an interrupted conversion that no manifest lists lies beside them.
  for name in ('train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord',
               'old.tfrecord', 'val-00000-of-00003.tfrecord', 'notes.txt'):
    (out / name).write_text('old')
  (out / manifest_lib.MANIFEST).write_text(json.dumps(dict(splits=dict(train=dict(
      shards=['train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord',
              'old.tfrecord'])))))
  (out / '.t0.tmp').write_text('new0')
  (out / '.v0.tmp').write_text('new1')
  manifest = dict(splits=dict(train=dict(shards=['train-00000-of-00001.tfrecord']),
                              val=dict(shards=['val-00000-of-00001.tfrecord'])))
  moves = [(str(out / '.t0.tmp'), 'train-00000-of-00001.tfrecord'),
           (str(out / '.v0.tmp'), 'val-00000-of-00001.tfrecord')]
  manifest_lib.publish_shards(str(out), moves, manifest)
  assert sorted(os.listdir(out)) == [manifest_lib.MANIFEST, 'notes.txt',
                                     'train-00000-of-00001.tfrecord',
                                     'val-00000-of-00001.tfrecord']
  assert (out / 'train-00000-of-00001.tfrecord').read_text() == 'new0'
  assert (out / 'val-00000-of-00001.tfrecord').read_text() == 'new1'
  assert json.loads((out / manifest_lib.MANIFEST).read_text()) == manifest

  # A shard that cannot be named leaves no manifest: never one listing other shards.
  (out / '.t1.tmp').write_text('new2')
  with pytest.raises(FileNotFoundError):
    manifest_lib.publish_shards(str(out), [
        (str(out / '.t1.tmp'), 'train-00000-of-00002.tfrecord'),
        (str(out / '.gone.tmp'), 'train-00001-of-00002.tfrecord')], manifest)
  assert not (out / manifest_lib.MANIFEST).exists()


def test_a_failed_overwrite_is_resumed_by_the_same_command(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 5),))
  run(root, out)
  pose = os.path.join(root, 'Train/POSE/00005.csv')
  good = open(pose).read()
  layout.write_pose_csv(pose, np.full((17, 3), 1000.0))
  # In shards of 2, the bad pose is in the last of three: the first two are finished in
  # .overwrite/ when the strict conversion stops.
  with pytest.raises(convert_plan.ConversionError, match='00005'):
    run(root, out, shard_size=2, overwrite=True, strict=True)
  assert sorted(n for n in os.listdir(os.path.join(out, '.overwrite'))
                if n.endswith('.tfrecord')) == ['train-00000-of-00003.tfrecord',
                                                'train-00001-of-00003.tfrecord']
  open(pose, 'w').write(good)
  lines = []
  manifest = run(root, out, shard_size=2, overwrite=True, log=lines.append)
  assert 'resuming: 2 of 3 shards already converted' in lines
  assert manifest['splits']['train']['num_examples'] == 5
  assert '.overwrite' not in os.listdir(out)
  # What a stopped --overwrite of other settings left is not resumed: it starts afresh.
  layout.write_pose_csv(pose, np.full((17, 3), 1000.0))
  with pytest.raises(convert_plan.ConversionError, match='00005'):
    run(root, out, shard_size=2, overwrite=True, strict=True, crop_size=48)
  open(pose, 'w').write(good)
  lines = []
  manifest = run(root, out, shard_size=2, overwrite=True, log=lines.append)
  assert any(line.startswith('--overwrite: the unfinished conversion in ') and
             line.endswith('was of other settings or inputs; starting it afresh')
             for line in lines)
  assert manifest['crop_size'] == CROP and manifest['splits']['train']['num_examples'] == 5
  assert '.overwrite' not in os.listdir(out)


def test_a_jpeg_is_truncated_only_without_its_end_marker_after_the_scan():
  ok, encoded = cv2.imencode('.jpg', np.full((16, 16, 3), 90, np.uint8))
  data = encoded.tobytes()
  assert ok and not crop_worker.jpeg_is_truncated(data)
  # A camera's trailer or a motion photo's video after the end marker: whole.
  assert not crop_worker.jpeg_is_truncated(data + b'\x00' * 500)
  assert crop_worker.jpeg_is_truncated(data[:len(data) - 2])
  # A truncated picture whose EXIF thumbnail has an end marker of its own: truncated.
  payload = b'Exif\x00\x00' + b'\xff\xd8\x00\xff\xd9'
  app1 = b'\xff\xe1' + (len(payload) + 2).to_bytes(2, 'big') + payload
  with_thumbnail = data[:2] + app1 + data[2:]
  assert not crop_worker.jpeg_is_truncated(with_thumbnail)
  assert crop_worker.jpeg_is_truncated(with_thumbnail[:len(with_thumbnail) // 2])


def test_a_layout_still_being_written_is_refused(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 2),))
  open(os.path.join(root, layout.WRITING_FILE), 'w').close()
  with pytest.raises(convert_plan.ConversionError, match=re.escape(
      f'--input_dir {root} was being written when its writer stopped (.writing is there)')):
    run(root, tmp_path / 'out')
  assert not os.path.exists(tmp_path / 'out')


def test_side_file_rows_that_meta_overrides_are_not_read_and_a_note_says_so(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 3),))             # META.csv gives every 2D joint
  kp_path, act_path = str(tmp_path / 'kp.csv'), str(tmp_path / 'act.csv')
  with open(kp_path, 'w') as f:
    f.write(','.join(convert_plan.KEYPOINT_COLUMNS) + '\n')
    f.write('Train,00002,' + ','.join(['nan'] * 34) + '\n')
  with open(act_path, 'w') as f:   # META names 00002's action (make_layout: i * 4 % 16 - 1)
    f.write('split,id,action\nTrain,00002,Eating\n')
  manifest = run(root, tmp_path / 'out', keypoints2d=kp_path, actions=act_path)
  # The NaN row skipped 00002 though its joints came from META.csv.
  assert manifest['skipped'] == [] and manifest['splits']['train']['num_examples'] == 3
  assert 'Train: --keypoints2d rows of some images were not read: META.csv gives their 2D ' \
         'joints' in manifest['notes']
  assert 'Train: --actions rows of some images were not read: META.csv gives their ' \
         'action' in manifest['notes']


def test_moved_input_folder_and_a_stopped_overwrite_of_another_folder_still_convert(tmp_path):
  # A resume from the moved input folder, then another split: the kept shards' records
  # still name the old folder, but the manifest (rewritten by the resume) decides.
  x, y, out = str(tmp_path / 'x'), str(tmp_path / 'y'), str(tmp_path / 'out')
  make_layout(x, counts=(('Train', 2), ('Val', 2)))
  run(x, out, splits='Train,Val')
  os.rename(x, y)
  run(y, out, splits='Train,Val')
  manifest = run(y, out, splits='Train')                  # val's shards kept
  assert manifest['input_dir'] == os.path.abspath(y)
  assert {k: v['num_examples'] for k, v in manifest['splits'].items()} == {'train': 2,
                                                                           'val': 2}
  make_layout(str(tmp_path / 'val_only'), counts=(('Val', 2),))
  # An --overwrite stopped before its manifest left another folder's shards in its
  # staging folder: the next --overwrite starts that staging afresh instead of refusing.
  out2 = str(tmp_path / 'out2')
  run(y, out2, splits='Train')
  staging = convert_output.make_staging(out2)
  run(str(tmp_path / 'val_only'), staging, splits='Val')
  os.remove(manifest_lib.path_in(staging))
  lines = []
  manifest = run(y, out2, splits='Train', overwrite=True, log=lines.append)
  assert any('starting it afresh' in ln for ln in lines)
  assert {k: v['num_examples'] for k, v in manifest['splits'].items()} == {'train': 2}


def test_a_bad_side_row_for_an_image_without_meta_row_is_named_as_such(tmp_path):
  root = str(tmp_path / 'in')
  make_layout(root, counts=(('Train', 3),))
  meta = os.path.join(root, 'Train', 'META.csv')
  with open(meta) as f:
    lines = [ln for ln in f if not ln.startswith('00002,')]
  with open(meta, 'w') as f:
    f.writelines(lines)
  kp_path = str(tmp_path / 'kp.csv')
  with open(kp_path, 'w') as f:
    f.write(','.join(convert_plan.KEYPOINT_COLUMNS) + '\n')
    f.write('Train,00002,' + ','.join(['nan'] * 34) + '\n')
  manifest = run(root, tmp_path / 'out', keypoints2d=kp_path)
  # Its bad --keypoints2d row, not a missing META row (the side file has one for it).
  assert manifest['skipped_by_reason'] == {'nan 2d joints': 1}
  assert kp_path in manifest['skipped'][0]['reason']

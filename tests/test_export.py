"""Tests of the export: one SavedModel whose signatures match the in-process models in a
process without fbi3d, check their inputs, and refuse runs that cannot be exported."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fbi3d import inference
from fbi3d import keys
from fbi3d.data import pipeline
from fbi3d.training import features as features_phase
from fbi3d.training import run as run_lib
from tests.conftest import REPO


def _crops(n=5, size=32, seed=3):
  rng = np.random.default_rng(seed)
  return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                                    (5, 5), 0) for _ in range(n)])


# Runs in a fresh interpreter: TensorFlow and numpy only.
_FRESH = r'''
import sys
import numpy as np
import tensorflow as tf
assert 'fbi3d' not in sys.modules
path, inputs, outputs = sys.argv[1:4]
data = np.load(inputs)
model = tf.saved_model.load(path)
sig = model.signatures
out = {}
for k, v in sig['serving_default'](images=tf.constant(data['crops'])).items():
  out['default_' + k] = v.numpy()
for k, v in sig['serving_jpeg'](images=tf.constant(list(data['jpegs']))).items():
  out['jpeg_' + k] = v.numpy()
decoded = np.stack([tf.io.decode_jpeg(j).numpy() for j in data['jpegs']])
for k, v in sig['serving_default'](images=tf.constant(decoded)).items():
  out['decoded_' + k] = v.numpy()
out['lift'] = sig['lift'](pose2d=tf.constant(data['pose2d']))['pose3d'].numpy()
out['crop_size'] = model.crop_size.numpy()
out['joint_names'] = np.array([n.decode() for n in model.joint_names.numpy()])
out['fbi3d_imported'] = np.array(any(m.split('.')[0] == 'fbi3d' for m in sys.modules))
np.savez(outputs, **out)
'''


@pytest.mark.slow
def test_fresh_process_without_fbi3d_matches_in_process_models(exported, tmp_path):
  _, model, path = exported
  crops = _crops()
  jpegs = [tf.io.encode_jpeg(c, quality=90).numpy() for c in crops]
  expected = model.predict(crops)
  # 2D that spans its crop, as a person's joints do (the tiny estimator's own 2D is
  # bunched up, and lift refuses 2D that spans under a quarter of the crop).
  pose2d = np.random.default_rng(0).uniform(4, 28, [5, 17, 2]).astype(np.float32)
  lifted = model.lift_2d(pose2d)
  # Base, averaged with its mirror image as the tiny run's flags say.
  assert bool(model.lift_mirror_average.numpy()) is True
  np.savez(tmp_path / 'in.npz', crops=crops, jpegs=np.array(jpegs, dtype=object),
           pose2d=pose2d)
  # Without the project on the path: python -c from an empty folder, PYTHONPATH unset.
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  proc = subprocess.run(
      [sys.executable, '-c', _FRESH.replace("np.load(inputs)", "np.load(inputs, allow_pickle=True)"),
       path, str(tmp_path / 'in.npz'), str(tmp_path / 'out.npz')],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = np.load(tmp_path / 'out.npz')
  assert not got['fbi3d_imported']
  assert int(got['crop_size']) == 32
  assert list(got['joint_names'])[:3] == ['Hip', 'RHip', 'RKnee']
  assert set(expected) == {'pose3d', 'pose2d', 'pose2d_confidence', 'fbi', 'coarse3d'}
  assert expected['pose3d'].shape == (5, 17, 3) and expected['fbi'].shape == (5, 14, 3)
  for key, value in expected.items():
    np.testing.assert_allclose(got['default_' + key], value, rtol=0, atol=1e-4, err_msg=key)
    # serving_jpeg equals serving_default on the JPEG's decoded pixels...
    np.testing.assert_allclose(got['jpeg_' + key], got['decoded_' + key], rtol=0, atol=1e-4,
                               err_msg=key)
  np.testing.assert_allclose(got['lift'], lifted, rtol=0, atol=1e-4)
  np.testing.assert_allclose(expected['fbi'].sum(-1), 1.0, atol=1e-5)
  # ... and is near serving_default on the pixels before JPEG compression.
  assert np.abs(got['jpeg_fbi'] - expected['fbi']).max() < 0.05
  assert np.abs(got['jpeg_coarse3d'][..., :2] - expected['coarse3d'][..., :2]).max() < 1.0


@pytest.mark.slow
def test_export_gives_the_features_cache_on_the_crops_it_was_made_from(exported, trained_run):
  # The run averages over each crop and its mirror (--flip_test): the export's graph and
  # the features phase do it apart, and must agree on the same crops.
  _, model, _ = exported
  assert bool(model.image_flip_average.numpy()) is True
  cache = features_phase.load(trained_run, 'val')
  ds = pipeline.make_dataset(trained_run.data_dir, 'val', 16, image_size=32,
                             deterministic=True, boxes=cache[keys.BOX])
  images = np.concatenate([b[keys.IMAGE].numpy() for b in ds])
  got = tf.function(model._infer)(images)   # pylint: disable=protected-access
  for key, name in ((keys.DETECTED2D, 'pose2d'), (keys.COARSE3D, 'coarse3d'),
                    (keys.FBI_PROBS, 'fbi')):
    np.testing.assert_allclose(got[name].numpy(), cache[key], rtol=0, atol=1e-3,
                               err_msg=name)


@pytest.mark.slow
def test_encoded_images_are_padded_to_a_square_and_resized(exported):
  _, model, _ = exported
  crops = _crops(n=2)
  # A 64 x 32 picture is padded with black rows to 64 x 64, then resized to 32 x 32, as
  # a 64 x 64 picture is (bilinear, antialiased).
  wide = np.repeat(np.repeat(crops[0][8:24], 2, axis=0), 2, axis=1)
  big = np.repeat(np.repeat(crops[1], 2, axis=0), 2, axis=1)
  for picture in (wide, big):
    got = model.predict_encoded([tf.io.encode_png(picture).numpy()])
    half = tf.image.resize_with_pad(picture.astype(np.float32), 32, 32, antialias=True) / 255.0
    want = tf.function(model._infer)(half[None])   # pylint: disable=protected-access
    for key in ('pose2d', 'pose2d_confidence', 'fbi', 'coarse3d'):
      np.testing.assert_allclose(got[key], want[key].numpy(), rtol=0, atol=1e-4, err_msg=key)
    # The two graphs resize with float sums in another order; the barely trained Final
    # regressor (FBI inputs with a tiny spread over six examples) amplifies that noise.
    np.testing.assert_allclose(got['pose3d'], want['pose3d'].numpy(), rtol=0, atol=0.05)
  # The padding is black: the wide picture's crop has black bands above and below.
  padded = tf.image.resize_with_pad(wide.astype(np.float32), 32, 32, antialias=True).numpy()
  assert padded[:7].max() == 0 and padded[-7:].max() == 0 and padded[12:20].max() > 0


@pytest.mark.slow
def test_wrong_dtype_or_shape_at_each_signature_fails_clearly(exported):
  _, _, path = exported
  sig = tf.saved_model.load(path).signatures
  with pytest.raises(tf.errors.InvalidArgumentError, match='expected to be a uint8 tensor'):
    sig['serving_default'](images=tf.zeros([1, 32, 32, 3], tf.float32))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'serving_default: images must be uint8 \[N, 32, 32, 3\]'):
    sig['serving_default'](images=tf.zeros([1, 31, 32, 3], tf.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'serving_default: images must be uint8 \[N, 32, 32, 3\]'):
    sig['serving_default'](images=tf.zeros([1, 32, 32, 1], tf.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError, match='expected to be a string tensor'):
    sig['serving_jpeg'](images=tf.zeros([1], tf.float32))
  good = tf.io.encode_jpeg(tf.zeros([40, 48, 3], tf.uint8)).numpy()
  for bad in (b'', b'not an image'):
    # The element that is wrong is named: i = 1.
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r'serving_jpeg: images\[i\] is not an encoded JPEG, PNG, GIF or '
                             r'BMP image \(empty, or other bytes\); i =\] \[1\]'):
      sig['serving_jpeg'](images=tf.constant([good, bad, good]))
  tiny = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)).numpy()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'serving_jpeg: images\[i\] is too small to hold a person \(at '
                           r'least 32 pixels on a side are needed\); i, height, width =\] '
                           r'\[0\] \[1 1\]'):
    sig['serving_jpeg'](images=tf.constant([tiny]))
  for name, arg, empty in (('serving_default', 'images', tf.zeros([0, 32, 32, 3], tf.uint8)),
                           ('serving_jpeg', 'images', tf.zeros([0], tf.string)),
                           ('lift', 'pose2d', tf.zeros([0, 17, 2]))):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f'{name}: the batch is empty \\(N = 0\\)'):
      sig[name](**{arg: empty})
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'lift: pose2d must be float32 \[N, 17, 2\]'):
    sig['lift'](pose2d=tf.zeros([1, 16, 2]))
  with pytest.raises(tf.errors.InvalidArgumentError, match='expected to be a float tensor'):
    sig['lift'](pose2d=tf.zeros([1, 17, 2], tf.int32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='lift: pose2d contains NaN'):
    sig['lift'](pose2d=tf.fill([1, 17, 2], np.nan))
  # S = 32: joints between -16 and 48 crop pixels are taken, a picture's pixels are not.
  edges = np.full([2, 17, 2], 10.0, np.float32)
  edges[0, 3, 0], edges[1, 5, 1] = -16.0, 48.0
  assert sig['lift'](pose2d=tf.constant(edges))['pose3d'].shape == (2, 17, 3)
  picture = edges.copy()
  picture[1, 16] = (48.25, 7.0)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'lift: pose2d lies outside its crop: every x and y must be within '
                           r'\[-16, 48\], crop pixels of the square box around the person '
                           r'\(margin 0.2 of its side\) resized to S = 32, not pixels of the '
                           r'whole picture; the smallest and largest values sent:\] '
                           r'\[-16\] \[48.25\]'):
    sig['lift'](pose2d=tf.constant(picture))
  # Joints that do not spread over a quarter of the crop (8 pixels) are not crop pixels.
  collapsed = edges.copy()
  collapsed[1] = 10.0
  collapsed[1, 7] = (10.0, 17.75)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'lift: pose2d does not span a crop: .* at least 8 crop pixels '
                           r'.* S = 32 spread over about 23; .* The smallest spread sent '
                           r'and its index:\] \[7.75\] \[1\]'):
    sig['lift'](pose2d=tf.constant(collapsed))
  collapsed[1, 7] = (10.0, 18.0)
  assert sig['lift'](pose2d=tf.constant(collapsed))['pose3d'].shape == (2, 17, 3)
  unit = np.random.default_rng(0).uniform(0, 1, [1, 17, 2]).astype(np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match='does not span a crop'):
    sig['lift'](pose2d=tf.constant(unit))
  below = edges.copy()
  below[0, 0] = (-16.5, 3.0)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'values sent:\] \[-16.5\] \[48\]'):
    sig['lift'](pose2d=tf.constant(below))


def _fake_results(model_dir, phase, finished=True, **config):
  os.makedirs(os.path.join(model_dir, phase), exist_ok=True)
  with open(os.path.join(model_dir, phase, 'results.json'), 'w') as f:
    json.dump(dict(phase=phase, finished=finished, config=config), f)


def test_missing_unfinished_or_incompatible_phases_are_refused(tmp_path):
  model_dir = str(tmp_path / 'model')
  os.makedirs(model_dir)
  with pytest.raises(run_lib.PhaseError,
                     match=r'phase refine has not finished .*--phase=refine'):
    inference.PoseModel(model_dir)
  _fake_results(model_dir, 'refine', features_generator='adversarial', image_size=32)
  with pytest.raises(run_lib.PhaseError, match=r'phase pose2d has not finished'):
    inference.PoseModel(model_dir)
  _fake_results(model_dir, 'pose2d', image_size=32)
  _fake_results(model_dir, 'adversarial', finished=False, image_size=32)
  with pytest.raises(run_lib.PhaseError,
                     match=r'phase adversarial has not finished in .*--phase=adversarial'):
    inference.PoseModel(model_dir)
  for phase in ('adversarial', 'base'):
    _fake_results(model_dir, phase, image_size=64)
  with pytest.raises(run_lib.PhaseError,
                     match=r'pose2d ran at --image_size=32 but adversarial at 64'):
    inference.PoseModel(model_dir)
  with pytest.raises(run_lib.PhaseError, match='is not a folder'):
    inference.PoseModel(str(tmp_path / 'nowhere'))


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_is_refused(exported, tmp_path):
  model_dir, _, _ = exported
  copy = str(tmp_path / 'model')
  shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns('logs', 'features'))
  path = os.path.join(copy, 'pose2d', 'results.json')
  with open(path) as f:
    results = json.load(f)
  results['config']['hg_channels'] = 16
  results['checkpoint'] = os.path.join('elsewhere', os.path.basename(results['checkpoint']))
  with open(path, 'w') as f:
    json.dump(results, f)
  # The checkpoint is found in the moved folder, but its shapes do not fit.
  with pytest.raises(run_lib.PhaseError,
                     match=r'the pose2d checkpoint .*pose2d/checkpoints/ckpt-\d+ does not fit'):
    inference.PoseModel(copy)


@pytest.mark.slow
def test_a_run_whose_regressors_learned_from_another_features_cache_is_refused(exported,
                                                                              tmp_path):
  model_dir, _, _ = exported
  copy = str(tmp_path / 'model')
  shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns('logs'))
  path = os.path.join(copy, 'features', 'results.json')
  with open(path) as f:
    results = json.load(f)
  results['train_sha256'] = '0' * 16         # the cache was made again since
  with open(path, 'w') as f:
    json.dump(results, f)
  with pytest.raises(run_lib.PhaseError) as e:
    inference.PoseModel(copy)
  assert str(e.value).startswith(f'{copy}: base in {os.path.join(copy, "base")} was trained '
                                 'on another features cache than the one there now')
  assert str(e.value).endswith('Export the run once it is whole again.')
  # The cache being made again (or stopped while it was): no results.json over its splits.
  os.remove(path)
  with pytest.raises(run_lib.PhaseError) as e:
    inference.PoseModel(copy)
  assert str(e.value) == (
      f'{copy}: the features cache in {os.path.join(copy, "features")} is being made again, '
      'or was stopped while it was (its split files are there, its results.json is not): '
      'finish it (python -m fbi3d.train --phase=features with the run\'s flags), then '
      'export the run.')


def test_versions(tmp_path):
  base = str(tmp_path / 'export')
  assert inference.next_version(base) == 1
  for name in ('1', '3', 'notes', '.tmp-4-1'):
    os.makedirs(os.path.join(base, name))
  assert inference.next_version(base) == 4
  with pytest.raises(ValueError, match='no SavedModel in'):
    inference.resolve_export(str(tmp_path))
  assert inference.resolve_export(base) == os.path.join(base, '3')
  open(os.path.join(base, '1', 'saved_model.pb'), 'w').close()
  assert inference.resolve_export(os.path.join(base, '1')) == os.path.join(base, '1')


@pytest.mark.slow
def test_export_writes_a_numbered_version(exported, tmp_path):
  model_dir, model, path = exported
  assert os.path.basename(path) == '1'
  assert os.path.exists(os.path.join(path, 'saved_model.pb'))
  assert sorted(os.listdir(os.path.dirname(path))) == ['1']
  # It names the checkpoints whose weights it holds, relative to the run folder.
  with open(os.path.join(path, 'assets.extra', inference.CHECKPOINTS_FILE)) as f:
    named = json.load(f)
  assert named['model_dir'] == os.path.abspath(model_dir)
  assert sorted(named['checkpoints']) == ['adversarial', 'base', 'pose2d', 'refine']
  assert named['checkpoints']['refine'] == dict(
      path=os.path.join('refine', 'checkpoints', 'ckpt-2'),
      sha256=run_lib.checkpoint_sha256(os.path.join(model_dir, 'refine', 'checkpoints',
                                                    'ckpt-2')))
  assert named['checkpoints'] == model.checkpoints
  (tmp_path / 'a_file').write_text('')
  with pytest.raises(ValueError, match='--export_dir=.*a_file is a file; give a folder'):
    inference.export(model, str(tmp_path / 'a_file'))
  # A version folder as --export_dir: the new version would nest where nothing looks.
  with pytest.raises(ValueError) as e:
    inference.export(model, path)
  assert str(e.value) == (
      f'--export_dir={path} holds a SavedModel (it is a version folder); give the folder '
      f'above it, {os.path.dirname(os.path.abspath(path))}, and the next version number '
      'is chosen there.')
  assert sorted(os.listdir(path)) == sorted(['assets', 'assets.extra', 'fingerprint.pb',
                                             'saved_model.pb', 'variables'])


@pytest.mark.slow
def test_command_line_reports_a_run_without_phases(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.export', f'--model_dir={tmp_path}',
       f'--export_dir={tmp_path / "export"}'], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert proc.returncode == 1
  assert 'fbi3d.export: error: phase refine has not finished' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not os.path.exists(tmp_path / 'export')


@pytest.mark.slow
def test_a_lifter_trained_on_the_test_subjects_is_not_served(trained_run, tiny_lifter,
                                                             tmp_path):
  folder = str(tmp_path / 'bound')
  shutil.copytree(tiny_lifter, folder)
  config = json.load(open(os.path.join(folder, 'lifter.json')))
  json.dump(dict(config, trained_on_test=True), open(os.path.join(folder, 'lifter.json'), 'w'))
  with pytest.raises(ValueError) as e:
    inference.PoseModel(trained_run.model_dir, lifter_dir=folder)
  assert str(e.value) == (
      f'{folder}: this lifter was trained on the test subjects\' poses as well '
      '(tools/train_lifter.py --train_on_test), a bound for the held-out figures, not a '
      'lifter to serve: give one trained without that flag.')


@pytest.mark.slow
def test_fbi_depth_noise_sets_the_runs_branches_against_the_table(trained_run, tmp_path):
  out = tmp_path / 'noise.json'
  proc = subprocess.run(
      [sys.executable, 'tools/fbi_depth_noise.py', f'--data_dir={trained_run.data_dir}',
       '--split=val', f'--model_dir={trained_run.model_dir}', '--sigmas=0,25',
       f'--out={out}'], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  doc = json.load(open(out))
  assert [r['sigma_mm'] for r in doc['table']] == [0.0, 25.0]
  assert doc['table'][0]['expected_accuracy'] == 1.0
  # The branch's accuracy and the coarse depth's noise, from the run's own cache.
  from fbi3d import fbi  # pylint: disable=import-outside-toplevel
  cache = features_phase.load(trained_run, 'val')
  labels = fbi.fbi_labels(cache['pose3d'])
  assert doc['run']['branch_accuracy'] == pytest.approx(
      np.mean(np.argmax(cache['fbi_probs'], -1) == labels), abs=1e-12)
  assert doc['run']['coarse3d_equivalent_sigma_mm'] == pytest.approx(
      fbi.depth_equivalent_sigma(cache['coarse3d'], cache['pose3d']), abs=1e-9)
  # A cache of other examples than the data set's split (the train split's cache where
  # val's belongs): refused, not measured against the wrong truth.
  other = tmp_path / 'other' / 'features'
  shutil.copytree(os.path.join(trained_run.model_dir, 'features'), other)
  shutil.copy(other / 'train.npz', other / 'val.npz')
  proc = subprocess.run(
      [sys.executable, 'tools/fbi_depth_noise.py', f'--data_dir={trained_run.data_dir}',
       '--split=val', f'--model_dir={other.parent}'], cwd=REPO,
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and proc.stderr.strip().endswith(
      f'fbi_depth_noise: error: {other / "val.npz"} holds other examples than '
      f'{trained_run.data_dir} val: give the data set the run was trained on (or cached '
      'with).'), proc.stderr[-1000:]


@pytest.mark.slow
def test_lift_runs_the_given_lifter_on_its_own_crop_scale(exported_with_lifter, tiny_lifter):
  # pylint: disable=import-outside-toplevel
  from fbi3d import lifter
  model, path = exported_with_lifter
  network, config = lifter.load(tiny_lifter)
  pose2d = np.random.default_rng(0).uniform(2, 30, (4, 17, 2)).astype(np.float32)
  # The tiny run's crops are 32 px, the lifter's 256: joints scale by 8.
  expected = network.predict((pose2d * 8.0).reshape(4, 34), verbose=0)
  np.testing.assert_allclose(model.lift_2d(pose2d), expected, atol=1e-3)
  loaded = tf.saved_model.load(path)
  got = loaded.signatures['lift'](pose2d=tf.constant(pose2d))['pose3d'].numpy()
  np.testing.assert_allclose(got, expected, atol=1e-3)
  assert loaded.lift_model.numpy() == b'lifter'
  assert loaded.lift_missing_joints.numpy() == config['missing_joints'].encode()
  assert loaded.lift_frame.numpy() == b'ray'
  assert config['mirror_average'] and bool(loaded.lift_mirror_average.numpy()) is True
  # The export names the lifter's weights beside the run's checkpoints.
  with open(os.path.join(path, 'assets.extra', inference.CHECKPOINTS_FILE)) as f:
    named = json.load(f)
  with open(os.path.join(tiny_lifter, lifter.WEIGHTS), 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()[:16]
  assert named['lifter'] == dict(dir=os.path.abspath(tiny_lifter), sha256=digest)
  # The image signatures are those of the run, untouched by the lifter.
  crops = _crops(2)
  np.testing.assert_allclose(
      loaded.signatures['serving_default'](images=tf.constant(crops))['pose3d'].numpy(),
      model.predict(crops)['pose3d'], atol=1e-3)


@pytest.mark.slow
def test_command_line_refuses_a_folder_that_is_not_a_lifter(trained_run, tmp_path):
  for lifter_dir, message in ((tmp_path / 'none', 'no such folder; give the --out folder'),
                              (tmp_path, 'is not a saved lifter: lifter.json is missing')):
    proc = subprocess.run(
        [sys.executable, '-m', 'fbi3d.export', f'--model_dir={trained_run.model_dir}',
         f'--export_dir={tmp_path / "export"}', f'--lifter={lifter_dir}'], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert message in proc.stderr and 'Traceback' not in proc.stderr
  assert not os.path.exists(tmp_path / 'export')

# Over 400 lines: the evaluation end to end on one trained run: tables, refusals, files.
"""Tests of the evaluation: tables on hand-made predictions, the submission writer, and
python -m fbi3d.evaluate on a tiny trained run (tables, ablations and seeds trained apart,
refusals)."""

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from fbi3d import keys
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.data import pipeline
from fbi3d.evaluation import challenge
from fbi3d.evaluation import image_models
from fbi3d.evaluation import report
from fbi3d.evaluation import submission
from fbi3d.models import regressor as regressor_lib
from fbi3d.training import config as config_lib
from fbi3d.training import crops
from fbi3d.training import features as features_phase
from fbi3d.training import phases
from fbi3d.training import run as run_lib
from fbi3d.training import seeds as seeds_lib
from fbi3d.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _backward_pose():
  """Every bone 100 mm long and pointing away from the camera (s = 0.6: backward)."""
  pose = np.zeros((17, 3))
  for k, (parent, child) in enumerate(skeleton.BONES):
    pose[child] = pose[parent] + 100.0 * np.array([0.8 * np.cos(k), 0.8 * np.sin(k), 0.6])
  return pose


def _moved(pose, joint, mm):
  out = pose.copy()
  out[joint, 0] += mm
  return out


def test_tables_on_hand_made_predictions():
  target = _backward_pose()
  targets = np.stack([target] * 4)
  actions = np.array([0, 0, 2, -1])      # A2 has no example; -1 counts in Avg only
  # Moving one joint (RAnkle) by 17 e mm gives a per-example MPJPE of e.
  base = np.stack([_moved(target, 3, 17.0 * e) for e in (1, 3, 5, 7)])
  final = np.stack([_moved(target, 3, 17.0 * e) for e in (1, 1, 2, 2)])
  scaled = 2.0 * targets                 # protocol 1 penalises scale, protocol 2 not
  tables = report.regressor_tables({'Base': base, 'Final': final, 'Scaled': scaled},
                                   targets, actions)
  t1 = tables['mpjpe']
  assert list(t1.index) == ['Base', 'Final', 'Scaled']
  assert list(t1.columns) == list(skeleton.ACTION_COLUMNS) + ['Avg']
  assert t1.loc['Base', 'A1'] == pytest.approx(2.0)
  assert t1.loc['Base', 'A3'] == pytest.approx(5.0)
  assert t1.loc['Base', 'Avg'] == pytest.approx(4.0)
  assert t1.loc['Final', 'A1'] == pytest.approx(1.0)
  assert t1.loc['Final', 'A3'] == pytest.approx(2.0)
  assert t1.loc['Final', 'Avg'] == pytest.approx(1.5)
  assert np.isnan(t1.loc['Base', 'A2']) and np.isnan(t1.loc['Final', 'A15'])
  # |p| summed over joints / 17 for the doubled pose.
  assert t1.loc['Scaled', 'Avg'] == pytest.approx(np.linalg.norm(target, axis=-1).mean())
  np.testing.assert_allclose(tables['pa_mpjpe'].loc['Scaled', ['A1', 'A3', 'Avg']],
                             0.0, atol=1e-9)
  assert np.isnan(tables['pa_mpjpe'].loc['Scaled', 'A2'])
  # Per joint: only RAnkle is wrong, by the mean of 17, 51, 85, 119 mm for Base.
  assert tables['per_joint'].loc['RAnkle', 'Base'] == pytest.approx(68.0)
  assert tables['per_joint'].drop(index='RAnkle')['Base'].abs().max() == 0.0
  text = metrics.format_table(t1)
  assert '| Base | 2.0 |  | 5.0 |' in text            # A2 empty, not 0.0
  assert '| Final | 1.0 |  | 2.0 |' in text
  assert text.splitlines()[2].endswith('| 4.0 |')


def test_implied_fbi_and_error_by_difficulty():
  target = _backward_pose()
  mirrored = target * np.array([1.0, 1.0, -1.0])   # every bone now forward
  overall, per_bone = report.implied_fbi(
      {'same': target[None], 'mirrored': mirrored[None]},
      np.ones((1, 14), np.int64))
  assert overall == {'same': 1.0, 'mirrored': 0.0}
  assert list(per_bone.index) == list(skeleton.FBI_BONE_NAMES)
  binned = report.error_by_difficulty(np.array([4.0, 1.0, 3.0, 2.0]),
                                      {'Final': np.array([40.0, 10.0, 30.0, 20.0])}, bins=2)
  assert binned.to_dict(orient='records') == [
      dict(low=1.0, high=2.0, count=2, Final=15.0),
      dict(low=3.0, high=4.0, count=2, Final=35.0)]
  difficulty = report.pose_difficulty(np.stack([target, 2 * target]), target)
  np.testing.assert_allclose(difficulty, [0.0, np.linalg.norm(target, axis=-1).mean()])


def test_submission_round_trips_through_the_layout_reader(tmp_path):
  rng = np.random.default_rng(1)
  poses = rng.normal(scale=300.0, size=(3, 17, 3))
  ids = ['00001', '00002', '00010']
  folder, zip_path = submission.write_submission(tmp_path / 'sub', ids, poses)
  back = submission.read_submission(folder)
  assert sorted(back) == ids
  for rid, pose in zip(ids, poses):
    np.testing.assert_allclose(back[rid], pose - pose[0], atol=6e-4)
    assert np.all(back[rid][0] == 0.0)
  with zipfile.ZipFile(zip_path) as z:
    assert sorted(z.namelist()) == ['00001.csv', '00002.csv', '00010.csv']
    assert z.read('00002.csv').decode().count('\n') == 17
  assert not os.path.exists(str(folder) + '.tmp')
  bad = poses.copy()
  bad[1, 4, 2] = np.nan
  with pytest.raises(ValueError, match='00002 has NaN'):
    submission.write_submission(tmp_path / 'bad', ids, bad)
  with pytest.raises(ValueError, match='repeated'):
    submission.write_submission(tmp_path / 'bad', ['1', '1', '2'], poses)
  with pytest.raises(ValueError, match=r'\[N, 17, 3\]'):
    submission.write_submission(tmp_path / 'bad', ids, poses[:, :16])
  assert not os.path.exists(tmp_path / 'bad') and not os.path.exists(tmp_path / 'bad.zip')


def _quiet(*args):
  del args


def _train_flags(command):
  """The flags python -m fbi3d.train reads from the command line `command`."""
  values = flags.FlagValues()
  config_lib.define_flags(values)
  flags.DEFINE_string('phase', None, '', flag_values=values)
  flags.DEFINE_integer('seeds', None, '', flag_values=values)
  values(['train'] + shlex.split(command)[3:])
  return values


def test_row_labels_name_the_loss_and_never_repeat():
  weighted = config_lib.make()
  assert [challenge._row_label(weighted, n) for n in ('base', 'refine', 'refine_l2')] == [
      'Base', 'Final', 'Final, L2 loss']
  l2 = config_lib.make(regressor_loss='l2')
  assert [challenge._row_label(l2, n) for n in ('base', 'refine', 'refine_l2')] == [
      'Base, L2 loss', 'Final, L2 loss', 'Final, L2 loss (ablation)']
  joint = config_lib.make(regressor_loss='joint')
  labels = [challenge._row_label(joint, n) for n in phases.REGRESSOR_ROWS]
  assert labels[:2] == ['Base, joint-distance loss', 'Final, joint-distance loss']
  assert len(set(labels)) == len(labels)
  # Regressors fed the true 2D say so; the oracle rows' labels say it already.
  gt2d = config_lib.make(regressor_2d='gt')
  assert [challenge._row_label(gt2d, n) for n in ('base', 'refine', 'oracle_gt2d')] == [
      'Base, true 2D input', 'Final, true 2D input', 'Oracle: Base on true 2D']


def test_the_report_says_when_the_regressors_read_the_true_2d(tmp_path):
  results = {'split': 'test', 'model_dir': 'm', 'data_dir': 'd', 'num_examples': 0,
             'num_labelled': 0, 'crops': 'estimated', 'files': {}, 'checkpoints': {},
             'rows': {}, 'note': 'no 3D'}
  path = str(tmp_path / 'report.md')
  for two_d, says in (('detected', False), ('gt', True)):
    report.write_markdown(dict(results, regressor_2d=two_d), path)
    text = open(path).read()
    assert ('The regressors read the true 2D joints (--regressor_2d=gt), not the 2D '
            'estimator\'s: their rows bound the method, they do not measure it.'
            in text) == says


def test_train_command_gives_back_the_settings(tmp_path):
  cfg = config_lib.make(data_dir=str(tmp_path / 'my records'), model_dir='runs/m',
                        image_size=32, fbi_channels=(8, 8, 8, 8), augment=False,
                        crops='gt')
  command = challenge.train_command(cfg, phases.ALL_ABLATIONS)
  assert command.startswith('python -m fbi3d.train --phase=ablations ')
  assert f"--data_dir='{tmp_path}/my records'" in command
  assert '--image_size=32' in command and '--fbi_channels=8,8,8,8' in command
  assert '--noaugment' in command
  assert '--seed' not in command            # defaults are left out
  assert config_lib.from_flags(_train_flags(command)) == cfg


def test_seeds_command_gives_back_the_settings_and_the_seeds(tmp_path):
  cfg = config_lib.make(data_dir=str(tmp_path / 'records'), model_dir='runs/m',
                        image_size=32, refine_epochs=3, seed=4)
  command = challenge.train_command(cfg, phases.SEEDS, seeds=3)
  assert command.startswith('python -m fbi3d.train --phase=seeds --seeds=3 ')
  values = _train_flags(command)
  assert (values.phase, values.seeds) == (phases.SEEDS, 3)
  assert config_lib.from_flags(values) == cfg


@pytest.mark.slow
def test_evaluate_writes_tables_ablations_figures_and_report(trained_run):
  cfg = trained_run
  # The ablations are trained by python -m fbi3d.train, never by the evaluation.
  with pytest.raises(run_lib.PhaseError) as refused:
    challenge.evaluate(cfg.model_dir, 'train', ablations=True, log=_quiet)
  assert ', '.join(phases.ABLATIONS) in str(refused.value)
  assert challenge.train_command(cfg, 'ablations') in str(refused.value)
  assert not os.path.exists(os.path.join(cfg.model_dir, 'refine_nofbi'))
  # They are trained with the run's settings: other flags are refused and named.
  with pytest.raises(run_lib.PhaseError,
                     match=r'the ablations .* --refine_epochs=3 \(Final: 2\)'):
    phases.check_run_settings(cfg.replace(refine_epochs=3), 'the ablations', 'hint')
  phases.check_run_settings(cfg, 'the ablations', 'hint')
  for name in phases.ABLATIONS:
    trainer.run_phase(phases.make_task(name, cfg), log=_quiet)
  # So are the rows under other seeds: the evaluation names those missing and the
  # command that trains them, which then trains them.
  with pytest.raises(run_lib.PhaseError) as refused:
    challenge.evaluate(cfg.model_dir, 'train', ablations=True, seeds=2, log=_quiet)
  command = challenge.train_command(cfg, phases.SEEDS, seeds=2)
  assert f'(seed 1: {", ".join(phases.REGRESSOR_ROWS)})' in str(refused.value)
  assert str(refused.value).endswith('\n  ' + command)
  assert not os.path.exists(os.path.join(cfg.model_dir, 'seeds'))
  assert not os.path.exists(os.path.join(cfg.model_dir, 'eval'))
  # Under other seeds the rows are trained with the run's settings, not others.
  with pytest.raises(run_lib.PhaseError, match=r'--refine_epochs=3 \(Final: 2\)'):
    seeds_lib.train(cfg.replace(refine_epochs=3), 2, log=_quiet)
  assert not os.path.exists(os.path.join(cfg.model_dir, 'seeds'))
  proc = subprocess.run([sys.executable] + shlex.split(command)[1:], capture_output=True,
                        text=True, cwd=REPO, check=False, timeout=600,
                        env=dict(os.environ, PYTHONPATH=REPO))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert [line for line in proc.stdout.splitlines() if line.startswith('seeds: ')] == [
      f'seeds: training {name} under seed 1' for name in phases.REGRESSOR_ROWS]
  # A submission an earlier evaluation wrote there is not left beside these results.
  out = os.path.join(cfg.model_dir, 'eval', 'train')
  os.makedirs(os.path.join(out, 'submission'))
  open(os.path.join(out, 'submission', '00001.csv'), 'w').close()
  open(os.path.join(out, 'submission.zip'), 'w').close()
  run_lib.write_json(os.path.join(out, 'results.json'), dict(files=dict(
      submission='submission', submission_zip='submission.zip')))
  results = challenge.evaluate(cfg.model_dir, 'train', ablations=True, gallery=2,
                               seeds=2, log=_quiet)
  t1 = results['table1_mpjpe']
  assert list(t1.index) == ['Base', 'Final', 'Final without FBI', 'Final without coarse 3D',
                            'Final without adversarial', 'Final, L2 loss',
                            'Oracle: Base on true 2D', 'Oracle: true 2D and FBI']
  # Oracle rows: the regressor on ground truth, and Final's distance from it.
  assert run_lib.Run.of_config(cfg).results('oracle_gt2d')['metrics']['inputs'] == ['gt2d']
  assert run_lib.Run.of_config(cfg).results('oracle_gt2d_fbi')['metrics']['inputs'] == [
      'gt2d', 'gt_fbi']
  oracle = results['oracles'][1]
  assert oracle['row'] == 'Oracle: true 2D and FBI'
  assert oracle['final_minus_oracle_mm'] == pytest.approx(
      t1.loc['Final', 'Avg'] - t1.loc['Oracle: true 2D and FBI', 'Avg'])
  # Over two seeds: the run's own row, and the same phase trained under seed 1 in
  # seeds/1/, as that phase measured itself on the same split.
  assert results['seeds'] == [0, 1]
  spread = {r['row']: r for r in results['seed_spread']}
  assert list(spread) == list(t1.index)
  seed1 = dataclasses.replace(cfg, seed=1, model_dir=os.path.join(cfg.model_dir, 'seeds', '1'),
                              features_root=cfg.model_dir)
  for row, phase in (('Final', 'refine'), ('Final, L2 loss', 'refine_l2')):
    own = run_lib.Run.of_config(seed1).results(phase)['metrics']['mpjpe_mm']
    assert spread[row]['mpjpe_mm'] == pytest.approx([t1.loc[row, 'Avg'], own], rel=1e-5)
    assert spread[row]['std_mm'] == pytest.approx(abs(own - t1.loc[row, 'Avg']) / 2 ** 0.5,
                                                  rel=1e-4, abs=1e-6)
  change = np.subtract(spread['Final, L2 loss']['mpjpe_mm'], spread['Final']['mpjpe_mm'])
  assert spread['Final, L2 loss']['minus_final_mean_mm'] == pytest.approx(change.mean())
  assert run_lib.Run.of_config(seed1).results('base')['config']['seed'] == 1
  # The same checkpoint on the same split gives the phase's own measurement.
  for row, phase in (('Base', 'base'), ('Final', 'refine')):
    own = run_lib.Run.of_config(cfg).results(phase)['metrics']
    assert t1.loc[row, 'Avg'] == pytest.approx(own['mpjpe_mm'], rel=1e-5)
    assert results['table1_pa_mpjpe'].loc[row, 'Avg'] == pytest.approx(own['pa_mpjpe_mm'],
                                                                      rel=1e-5)
  # Six examples with actions 0..5: A7..A15 are empty.
  assert t1.loc['Final', ['A7', 'A15']].isna().all()
  assert results['per_action_counts']['A1'] == 1 and results['per_action_counts']['A7'] == 0
  assert run_lib.Run.of_config(cfg).results('refine_l2')['metrics']['loss'] == 'l2'
  assert run_lib.Run.of_config(cfg).results('refine')['metrics']['loss'] == 'weighted'
  assert run_lib.Run.of_config(cfg).results('refine_nofbi')['metrics']['inputs'] == [
      '2d', 'coarse3d']
  assert run_lib.Run.of_config(cfg).results('features_noadv')['made_from']['generator_phase'] == \
      'generator'
  assert set(results['coarse3d']) == {'generator', 'adversarial'}
  for name in ('table1_mpjpe.csv', 'table1_pa_mpjpe.csv', 'per_joint_mpjpe.csv',
               'fbi_per_bone.csv', 'error_by_difficulty.csv', 'results.json', 'report.md',
               'per_action.png', 'fbi_per_bone.png', 'error_vs_difficulty.png',
               'gallery.png'):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  assert not os.path.exists(os.path.join(out, 'submission'))   # labelled: none asked
  assert not os.path.exists(os.path.join(out, 'submission.zip'))
  text = open(os.path.join(out, 'report.md')).read()
  assert '## Table 1' in text and '## Ablations of Final' in text
  assert '| Final without FBI |' in text
  assert '## Over 2 seeds' in text and '## Oracle bounds' in text
  assert 'Crops: found by the system.' in text
  # Every checkpoint read is named, relative to the run, with its content hash.
  assert list(results['checkpoints']) == [
      'pose2d', 'generator', 'adversarial', 'base', 'refine', 'refine_nofbi',
      'refine_nocoarse3d', 'refine_noadv', 'refine_l2', 'oracle_gt2d', 'oracle_gt2d_fbi']
  refine = os.path.join('refine', 'checkpoints', 'ckpt-2')
  assert results['checkpoints']['refine'] == dict(
      path=refine, sha256=run_lib.checkpoint_sha256(os.path.join(cfg.model_dir, refine)))
  assert f'refine `{refine}` ({results["checkpoints"]["refine"]["sha256"]})' in text
  saved = json.load(open(os.path.join(out, 'results.json')))
  assert saved['table1_mpjpe']['Final']['A7'] is None
  assert saved['table1_mpjpe']['Final']['Avg'] == pytest.approx(t1.loc['Final', 'Avg'])
  csv_line = open(os.path.join(out, 'table1_mpjpe.csv')).read().splitlines()[2]
  assert csv_line.startswith('Final,') and ',,' in csv_line      # empty cells


def _assert_close(a, b, path=''):
  if isinstance(a, dict):
    assert set(a) == set(b), path
    for k in a:
      _assert_close(a[k], b[k], f'{path}/{k}')
  elif isinstance(a, float):
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
  else:
    assert a == b, path


def test_only_what_an_earlier_evaluation_listed_and_this_one_did_not_write_is_removed(
    tmp_path):
  out = str(tmp_path)
  os.makedirs(os.path.join(out, 'submission'))
  for name in ('submission.zip', 'ablations.csv', 'gallery.png', 'table1_mpjpe.csv',
               'notes.txt'):
    open(os.path.join(out, name), 'w').close()
  said = []
  challenge._remove_earlier_outputs(out, set(), said.append)   # no results.json: a user's
  assert len(os.listdir(out)) == 6 and said == []
  run_lib.write_json(os.path.join(out, 'results.json'), dict(files=dict(
      submission='submission', submission_zip='submission.zip', ablations='ablations.csv',
      gallery='gallery.png', table1_mpjpe='table1_mpjpe.csv', elsewhere='../x.csv')))
  # This evaluation wrote Table 1 again, no submission, no ablations and no gallery.
  challenge._remove_earlier_outputs(out, {'table1_mpjpe.csv'}, said.append)
  assert sorted(os.listdir(out)) == ['notes.txt', 'results.json', 'table1_mpjpe.csv']
  assert said == [f'evaluate: removed {out}/submission and its .zip, ablations.csv, '
                  'gallery.png, written by an earlier evaluation in this folder and not by '
                  'this one']


@pytest.mark.slow
def test_image_measures_from_the_features_cache_equal_the_networks(trained_run):
  cfg = trained_run
  manifest = pipeline.load_manifest(cfg.data_dir)
  cache = features_phase.load(cfg, 'val')
  boxes = image_models.crop_boxes(cfg, cache)
  cached = image_models.cached_outputs(cfg, 'val', cache)
  assert 'adversarial' in cached
  from_cache = image_models.measure(cfg, 'val', manifest, boxes, _quiet, cache)
  from_networks = image_models.measure(cfg, 'val', manifest, boxes, _quiet)
  _assert_close(from_cache, from_networks)
  # A cache made before it held `visible` is not used.
  older = {k: v for k, v in cache.items() if k != 'visible'}
  assert image_models.cached_outputs(cfg, 'val', older) == {}


@pytest.mark.slow
def test_unlabelled_split_gives_a_submission(trained_run):
  cfg = trained_run
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.evaluate', f'--model_dir={cfg.model_dir}',
       '--split=test'], capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = os.path.join(cfg.model_dir, 'eval', 'test')
  back = submission.read_submission(os.path.join(out, 'submission'))
  assert sorted(back) == ['00001', '00002', '00003', '00004', '00005', '00006']
  # The submitted poses are Final's predictions on the cached test features.
  task = phases.make_task('refine', cfg)
  network = task.build_network()
  run_lib.Run.of_config(cfg).restore(network, 'refine')
  inputs, _, cache = task.arrays('test', labelled_only=False)
  # task.predict: averaged with the mirror image, as the tiny run's flags say.
  expected = task.predict(network, inputs, cache)
  got = np.stack([back[i] for i in cache['source_id']])
  np.testing.assert_allclose(got, expected - expected[:, :1], atol=1e-3)
  assert zipfile.ZipFile(os.path.join(out, 'submission.zip')).namelist()
  assert 'no 3D ground truth' in proc.stdout
  assert 'report:' in proc.stdout


@pytest.mark.slow
def test_evaluate_on_another_data_set_changes_nothing_in_the_run(trained_run, tmp_path):
  from tests.conftest import write_tiny_dataset  # pylint: disable=g-import-not-at-top
  cfg = trained_run
  model_dir = str(tmp_path / 'model')
  shutil.copytree(cfg.model_dir, model_dir)
  other = str(tmp_path / 'other_records')
  examples = write_tiny_dataset(other, num_examples=5, splits=('test',), seed=7)['test']

  def run_files():
    found = {}
    for root, _, files in os.walk(model_dir):
      if os.sep + 'eval' in root[len(model_dir):]:
        continue
      for name in files:
        with open(os.path.join(root, name), 'rb') as f:
          found[os.path.relpath(os.path.join(root, name), model_dir)] = f.read()
    return found

  before = run_files()
  results = challenge.evaluate(model_dir, 'test', data_dir=other, gallery=0,
                                    log=_quiet)
  assert run_files() == before                 # the run itself is untouched
  assert results['data_dir'] == os.path.abspath(other)
  assert results['num_labelled'] == 5
  out = os.path.join(model_dir, 'eval', 'other_records-test')
  assert results['report'] == os.path.join(out, 'report.md')
  # Its features were computed from the other data set, into the output folder.
  with np.load(os.path.join(out, 'features_cache', 'features', 'test.npz')) as cache:
    np.testing.assert_array_equal(cache['pose3d'], np.stack([e['pose3d'] for e in examples]))
  # Final's row is Final's network on those features.
  task = phases.make_task('refine', cfg)
  network = task.build_network()
  run_lib.Run.of_config(cfg).restore(network, 'refine')
  other_cfg = dataclasses.replace(
      cfg, data_dir=other, features_root=os.path.join(out, 'features_cache'))
  other_task = phases.make_task('refine', other_cfg)
  inputs, targets, other_cache = other_task.arrays('test')
  pred = other_task.predict(network, inputs, other_cache)
  expected = metrics.mpjpe(pred - pred[:, :1], targets - targets[:, :1])
  assert abs(results['table1_mpjpe'].loc['Final', 'Avg'] - expected) < 1e-3
  # The data set converted again in place: its cache is no longer current (the next
  # evaluation makes it again), and the 2D estimator's boxes are found again.
  made = json.load(open(os.path.join(out, 'features_cache', 'features', 'results.json')))
  assert phases.make_task('features', other_cfg).is_current(made['made_from'])
  assert len(crops.estimated_boxes(other_cfg, 'test', log=_quiet)) == 5
  shutil.rmtree(other)
  write_tiny_dataset(other, num_examples=4, splits=('test',), seed=8)
  assert not phases.make_task('features', other_cfg).is_current(made['made_from'])
  assert len(crops.estimated_boxes(other_cfg, 'test', log=_quiet)) == 4
  # Another data folder of the same name would take the same default output folder.
  twin = str(tmp_path / 'b' / 'other_records')
  write_tiny_dataset(twin, num_examples=3, splits=('test',), seed=9)
  with pytest.raises(run_lib.PhaseError) as e:
    challenge.evaluate(model_dir, 'test', data_dir=twin, gallery=0, log=_quiet)
  assert str(e.value) == (f'{out} holds the evaluation of {os.path.abspath(other)}, not of '
                          f'{twin}; give --out_dir=FOLDER for this one, so that neither '
                          'replaces the other.')
  # Another data set whose labels or crops differ from the run's, each refused before any
  # work: the manifest changed as each case says.
  manifest_path = os.path.join(twin, 'manifest.json')
  manifest = json.load(open(manifest_path))

  def refusal(error=run_lib.PhaseError, **changes):
    json.dump(dict(manifest, **changes), open(manifest_path, 'w'))
    with pytest.raises(error) as e:
      challenge.evaluate(model_dir, 'test', data_dir=twin,
                         out_dir=str(tmp_path / 'twin_eval'), gallery=0, log=_quiet)
    return str(e.value)

  # FBI labelled at another threshold than the run learned from.
  assert refusal(fbi_threshold_deg=5.0) == (
      f'{twin} labels FBI at 5 degrees, but the run learned from labels at 10 '
      f'({os.path.join(model_dir, "generator", "results.json")}); convert it again with '
      '--fbi_threshold_deg=10.')
  # Crops cut with another margin than those the run learned from (recorded by pose2d):
  # the people would be drawn at another scale.
  assert run_lib.Run.of(model_dir).results('pose2d')['data_margin'] == 0.2
  assert refusal(margin=0.3) == (
      f'{twin} was converted with --margin=0.3, but the run learned from crops with '
      '--margin=0.2: its people would be drawn at another scale. Convert it again with '
      '--margin=0.2.')
  # Lifting-only records have no pictures for the image models (Final would read coarse
  # 3D and FBI of zeros).
  assert refusal(pipeline.DataError, lifting_only=True).startswith(
      f'{twin} holds lifting-only records (no pictures), and this run\'s Final reads the '
      'image models\' coarse 3D')


def _put_checkpoint(model_dir, phase, network, name):
  """Writes `network` as checkpoint `name` of `phase` in the run and points the phase's
  results.json at it; returns its hash."""
  path = tf.train.Checkpoint(network=network).write(
      os.path.join(model_dir, phase, 'checkpoints', name))
  results_path = os.path.join(model_dir, phase, 'results.json')
  results = json.load(open(results_path))
  results['checkpoint'] = f'checkpoints/{name}'
  results['checkpoint_sha256'] = run_lib.checkpoint_sha256(path)
  json.dump(results, open(results_path, 'w'))
  return results['checkpoint_sha256']


@pytest.mark.slow
def test_evaluate_refuses_an_incompatible_run(trained_run, tmp_path):
  cfg = trained_run
  # Another joint count: a 16-joint regressor's checkpoint in place of Base's.
  model_dir = str(tmp_path / 'joints')
  shutil.copytree(cfg.model_dir, model_dir)
  _put_checkpoint(model_dir, 'base', regressor_lib.build_regressor(32, num_joints=16,
                                                                    hidden=16), 'other')
  with pytest.raises(run_lib.PhaseError, match='base checkpoint .* does not fit'):
    challenge.evaluate(model_dir, 'val', log=_quiet)
  # Another crop size: the generator was trained on 48-px crops, the 2D estimator on 32.
  model_dir = str(tmp_path / 'crops')
  shutil.copytree(cfg.model_dir, model_dir)
  results_path = os.path.join(model_dir, 'generator', 'results.json')
  results = json.load(open(results_path))
  results['config']['image_size'] = 48
  json.dump(results, open(results_path, 'w'))
  with pytest.raises(run_lib.PhaseError, match='different sizes.*generator 48 px'):
    challenge.evaluate(model_dir, 'val', log=_quiet)
  # The command line says so without a traceback.
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.evaluate', f'--model_dir={model_dir}', '--split=val'],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
  assert proc.returncode == 1
  assert 'different sizes' in proc.stderr and 'Traceback' not in proc.stderr
  with pytest.raises(run_lib.PhaseError, match='no finished phase'):
    challenge.evaluate(str(tmp_path / 'empty'), 'val', log=_quiet)
  # The 2D estimator trained again after the features cache was made: the cache, and the
  # regressors that learned from it, are not of the models the run holds now.
  model_dir = str(tmp_path / 'pose2d_again')
  shutil.copytree(cfg.model_dir, model_dir)
  moved = dataclasses.replace(cfg, model_dir=model_dir)
  network = phases.make_task('pose2d', moved).build_network()
  run_lib.Run.of_config(moved).restore(network, 'pose2d')
  network.trainable_variables[0].assign_add(tf.ones_like(network.trainable_variables[0]))
  sha = _put_checkpoint(model_dir, 'pose2d', network, 'again')
  with pytest.raises(run_lib.PhaseError) as e:
    challenge.evaluate(model_dir, 'val', log=_quiet)
  made = json.load(open(os.path.join(model_dir, 'features', 'results.json')))['made_from']
  assert str(e.value) == (
      f'{model_dir}: the features cache in {os.path.join(model_dir, "features")} was made '
      f'from other image models than the run holds now (pose2d {made["pose2d"]["path"]} '
      f'({made["pose2d"]["sha256"][:12]}), now pose2d/checkpoints/again '
      f'({sha[:12]})): its 2D, coarse 3D and FBI are not those '
      'models\' outputs. Make it again (python -m fbi3d.train --phase=features with the '
      'run\'s flags), then train the regressors again.')
  # The run's data set converted again after its features cache was made (here: the
  # manifest the cache recorded is another): the tables would be of the old data and
  # the figures of the new.
  model_dir = str(tmp_path / 'data_again')
  shutil.copytree(cfg.model_dir, model_dir)
  results_path = os.path.join(model_dir, 'features', 'results.json')
  results = json.load(open(results_path))
  now = results['made_from']['manifest_sha256']
  # A run moved with its data reads the data where it is now, whatever path the cache
  # recorded.
  features_task = phases.make_task('features', cfg)
  assert features_task.data_changed_reason(
      dict(results['made_from'], data_dir='/moved/away')) is None
  results['made_from']['manifest_sha256'] = '0123456789abcdef'
  json.dump(results, open(results_path, 'w'))
  with pytest.raises(run_lib.PhaseError) as e:
    challenge.evaluate(model_dir, 'val', log=_quiet)
  assert str(e.value) == (
      f'{model_dir}: {cfg.data_dir} was converted again after the features cache in '
      f'{os.path.join(model_dir, "features")} was made from it (manifest 0123456789abcdef, '
      f'now {now}): the cache holds the old data set\'s joints and labels, the records the '
      'new one\'s pictures. Make the cache again (python -m fbi3d.train --phase=features '
      'with the run\'s flags), then train the regressors again.')


def test_oracle_rows_read_ground_truth_2d_and_one_hot_fbi(tmp_path):
  # A features cache of two examples, written by hand.
  folder = tmp_path / 'model' / 'features'
  folder.mkdir(parents=True)
  gt2d = np.arange(68, dtype=np.float32).reshape(2, 17, 2)
  fbi = np.zeros((2, 14), np.int64)
  fbi[0, 0], fbi[1, 13] = 2, 1
  np.savez(folder / 'train.npz', gt2d=gt2d, detected2d=gt2d + 100.0,
           coarse3d=np.zeros((2, 17, 3), np.float32),
           fbi_probs=np.full((2, 14, 3), 1 / 3, np.float32), fbi=fbi,
           pose3d=np.zeros((2, 17, 3), np.float32), pose3d_valid=np.ones(2, np.float32))
  cfg = config_lib.make(
      model_dir=str(tmp_path / 'model'))
  inputs, _, _ = phases.make_task('oracle_gt2d_fbi', cfg).arrays('train')
  assert inputs.shape == (2, 34 + 42)
  np.testing.assert_array_equal(inputs[:, :34], gt2d.reshape(2, 34))
  one_hot = inputs[:, 34:].reshape(2, 14, 3)
  np.testing.assert_array_equal(one_hot[0, 0], [0, 0, 1])
  np.testing.assert_array_equal(one_hot[1, 13], [0, 1, 0])
  np.testing.assert_array_equal(one_hot[0, 1:].argmax(-1), np.zeros(13))
  assert one_hot.sum() == 28
  base_inputs, _, _ = phases.make_task('oracle_gt2d', cfg).arrays('train')
  np.testing.assert_array_equal(base_inputs, gt2d.reshape(2, 34))
  detected, _, _ = phases.make_task('base', cfg).arrays('train')
  np.testing.assert_array_equal(detected, gt2d.reshape(2, 34) + 100.0)
  # The second example has no true 2D (zeros in the cache): the rows that read it refuse.
  np.savez(folder / 'val.npz', gt2d=gt2d * [[[1]], [[0]]], detected2d=gt2d + 100.0,
           coarse3d=np.zeros((2, 17, 3), np.float32),
           fbi_probs=np.full((2, 14, 3), 1 / 3, np.float32), fbi=fbi,
           pose3d=np.zeros((2, 17, 3), np.float32), pose3d_valid=np.ones(2, np.float32),
           pose2d_valid=np.array([1.0, 0.0], np.float32))
  with pytest.raises(run_lib.PhaseError) as e:
    phases.make_task('oracle_gt2d', cfg).arrays('val')
  assert str(e.value) == (
      'oracle_gt2d reads the true 2D (an oracle row), but 1 of the 2 val examples it reads '
      'have none (pose2d/valid 0: no META.csv 2D or --keypoints2d when converted), where '
      'the records hold zeros. Convert the data with their 2D joints.')
  gt_cfg = config_lib.make(model_dir=str(tmp_path / 'model'), regressor_2d='gt')
  with pytest.raises(run_lib.PhaseError) as e:
    phases.make_task('base', gt_cfg).arrays('val')
  assert str(e.value).startswith('base reads the true 2D (--regressor_2d=gt), but 1 of')
  assert str(e.value).endswith(', or train with --regressor_2d=detected.')
  detected, _, _ = phases.make_task('base', cfg).arrays('val')
  np.testing.assert_array_equal(detected, gt2d.reshape(2, 34) + 100.0)


def test_the_report_counts_examples_of_unknown_action():
  counts = {'A1': 3, 'A2': 2}
  assert report._unknown_action_note({'num_labelled': 7}, counts) == (
      ', and 2 of unknown action (in Avg only)')
  assert report._unknown_action_note({'num_labelled': 5}, counts) == ''


def test_a_cache_without_flip_averaging_agrees_with_final_of_the_same_flags():
  class FakeRun:
    def __init__(self, made):
      self.made = made

    def results(self, phase):
      return {'finished': True, 'made_from': self.made} if phase == 'features' else None

    def phase_dir(self, phase):
      return f'm/{phase}'

  # Without flip averaging the cache records no red-blue swap, whatever the flag says.
  cfg = config_lib.make(image_size=32, model_dir='m', flip_test=False)
  assert cfg.flip_swaps_red_blue
  made = dict(image_size=32, crops=cfg.crops, flip_test=False, flip_swaps_red_blue=False,
              generator_phase=cfg.features.generator)
  challenge._check_settings_agree(cfg, FakeRun(made))
  with pytest.raises(run_lib.PhaseError, match=r'features was trained with other settings '
                     r'than Final \(flip_test: True against False; flip_swaps_red_blue: True '
                     r'against False\)'):
    challenge._check_settings_agree(cfg, FakeRun(dict(made, flip_test=True,
                                                      flip_swaps_red_blue=True)))


def test_the_report_says_where_the_fbi_errors_lie():
  m = dict(fbi_confusion=[[6, 1, 1], [0, 4, 0], [2, 2, 4]],
           fbi_by_angle=[dict(low=0.0, high=10.0, bones=0.5, accuracy=0.25),
                         dict(low=10.0, high=90.0, bones=0.5, accuracy=None)])
  assert report.fbi_breakdown_lines(m, 10.0) == [
      "Share of all bones (%) by true class (rows) and the branch's class (columns); the "
      'diagonal adds up to the accuracy:', '',
      '| true \\ predicted | forward | backward | parallel | all |',
      '|---|---|---|---|---|',
      '| forward | 30.0 | 5.0 | 5.0 | 40.0 |',
      '| backward | 0.0 | 20.0 | 0.0 | 20.0 |',
      '| parallel | 10.0 | 10.0 | 20.0 | 40.0 |', '',
      "By the bone's true angle out of the image plane (the classes part at 10 degrees):",
      '', '| angle (degrees) | bones (%) | FBI branch accuracy (%) |', '|---|---|---|',
      '| 0 to 10 | 50.0 | 25.0 |', '| 10 to 90 | 50.0 |  |', '']
  assert report.fbi_breakdown_lines({'fbi_accuracy': 0.5}, 10.0) == []


def test_the_fbi_baseline_says_whose_most_frequent_class_it_is():
  from fbi3d.training import generator as generator_phase  # pylint: disable=g-import-not-at-top
  task = generator_phase.GeneratorTask(config_lib.make(image_size=32, model_dir='unused'))
  rng = np.random.default_rng(0)
  pose3d = rng.normal(0, 200, (2, 17, 3)) + [0.0, 0.0, 4000.0]
  gt = {keys.POSE3D_VALID: np.ones(2, np.float32), keys.POSE2D: rng.uniform(0, 32, (2, 17, 2)),
        keys.POSE3D: pose3d, keys.FBI: np.full((2, 14), 2),
        keys.CROP_BOX: np.tile([0.0, 0.0, 256.0], (2, 1)),
        keys.INTRINSICS: np.tile([500.0, 500.0, 128.0, 128.0], (2, 1))}
  pred = {'coarse3d': np.concatenate([gt[keys.POSE2D], np.zeros((2, 17, 1))], -1),
          'fbi': np.tile(np.eye(3)[0], (2, 14, 1))}          # always forward: all wrong
  # Every true class is 2 (parallel). The training split's most frequent class is 0:
  # that baseline is never right; without a train split the measured labels' own
  # class 2 is always right, and the report says whose it is.
  train = {'crop_size': 32, 'splits': {'train': {'fbi_class_balance': [[0.6, 0.3, 0.1]] * 14}}}
  out = task.metrics_of(pred, gt, train)
  assert (out['fbi_accuracy'], out['fbi_majority_accuracy'], out['fbi_majority_of']) == (
      0.0, 0.0, 'training')
  # All 28 bones true parallel, predicted forward.
  assert out['fbi_confusion'] == [[0, 0, 0], [0, 0, 0], [28, 0, 0]]
  assert sum(r['bones'] for r in out['fbi_by_angle']) == pytest.approx(1.0)
  assert all(r['accuracy'] in (0.0, None) for r in out['fbi_by_angle'])
  out = task.metrics_of(pred, gt, {'crop_size': 32, 'splits': {'test': {}}})
  assert (out['fbi_accuracy'], out['fbi_majority_accuracy'], out['fbi_majority_of']) == (
      0.0, 1.0, "measured split's own (no train split)")


def test_the_coarse_3d_leaves_out_examples_without_true_2d():
  from fbi3d.training import generator as generator_phase  # pylint: disable=g-import-not-at-top
  task = generator_phase.GeneratorTask(config_lib.make(image_size=32, model_dir='unused'))
  rng = np.random.default_rng(1)
  pose3d = rng.normal(0, 200, (2, 17, 3))
  pose3d -= pose3d[:, :1]                                   # root-relative
  # The true 2D: the pinhole projection at 4 m (f 500, centre 128), in 32-px crops of the
  # 256-px box at the origin (image = crop x 8). Example 1 has no true 2D: zeros.
  image2d = 500.0 * pose3d[..., :2] / (pose3d[..., 2:] + 4000.0) + 128.0
  gt = {keys.POSE3D_VALID: np.ones(2, np.float32), keys.POSE2D_VALID: np.array([1.0, 0.0]),
        keys.POSE2D: np.stack([image2d[0] / 8.0, np.zeros((17, 2))]),
        keys.POSE3D: pose3d, keys.FBI: np.zeros((2, 14), np.int64),
        keys.CROP_BOX: np.tile([0.0, 0.0, 256.0], (2, 1)),
        keys.INTRINSICS: np.tile([500.0, 500.0, 128.0, 128.0], (2, 1))}
  # The right 2.5D for both; example 1's depths 10 mm too far.
  coarse = np.concatenate([image2d / 8.0, pose3d[..., 2:] + [[[0.0]], [[10.0]]]], -1)
  pred = {'coarse3d': coarse, 'fbi': np.tile(np.eye(3)[0], (2, 14, 1))}
  out = task.metrics_of(pred, gt, {'crop_size': 32, 'splits': {}})
  assert (out['num_examples'], out['num_without_2d']) == (2, 1)
  assert out['depth_error_mm'] == pytest.approx(5.0)        # both count for depth
  assert out['xy_error_px'] == 0.0                           # not against example 1's zeros
  assert out['coarse3d_mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
  assert out['fbi_accuracy'] == 1.0
  assert task.format_metrics(out).splitlines()[0].endswith(
      '2D error 0.00 px (1 examples without true 2D count for depth and FBI only)')


def test_the_coarse_3d_leaves_out_examples_without_intrinsics_not_the_split():
  from fbi3d.training import generator as generator_phase  # pylint: disable=g-import-not-at-top
  from fbi3d.evaluation import report  # pylint: disable=g-import-not-at-top
  task = generator_phase.GeneratorTask(config_lib.make(image_size=32, model_dir='unused'))
  rng = np.random.default_rng(2)
  pose3d = rng.normal(0, 200, (2, 17, 3))
  pose3d -= pose3d[:, :1]
  image2d = 500.0 * pose3d[..., :2] / (pose3d[..., 2:] + 4000.0) + 128.0
  # Both have true 2D; example 1's camera is unknown (intrinsics all 0).
  gt = {keys.POSE3D_VALID: np.ones(2, np.float32), keys.POSE2D_VALID: np.ones(2),
        keys.POSE2D: image2d / 8.0, keys.POSE3D: pose3d,
        keys.FBI: np.zeros((2, 14), np.int64),
        keys.CROP_BOX: np.tile([0.0, 0.0, 256.0], (2, 1)),
        keys.INTRINSICS: np.array([[500.0, 500.0, 128.0, 128.0], [0.0, 0.0, 0.0, 0.0]])}
  # Example 0 exact; example 1's depths 40 mm too far (it counts for the depth error).
  coarse = np.concatenate([image2d / 8.0, pose3d[..., 2:] + [[[0.0]], [[40.0]]]], -1)
  pred = {'coarse3d': coarse, 'fbi': np.tile(np.eye(3)[0], (2, 14, 1))}
  out = task.metrics_of(pred, gt, {'crop_size': 32, 'splits': {}})
  # Before: one unknown camera took the MPJPE of the whole split away without a word.
  assert out['num_without_intrinsics'] == 1
  assert out['coarse3d_mpjpe_mm'] == pytest.approx(0.0, abs=1e-6)
  assert out['depth_error_mm'] == pytest.approx(20.0)
  assert task.format_metrics(out).splitlines()[0].endswith(
      '2D error 0.00 px (1 examples without camera intrinsics left out of the MPJPE)')
  assert report._left_out_note({'generator': out}) == (  # pylint: disable=protected-access
      ' 1 examples with true 2D have no camera intrinsics: MPJPE, PA-MPJPE and the '
      'asymmetry leave them out (the root is solved through the camera).')
  # No camera known at all: no MPJPE, and the count says why.
  gt[keys.INTRINSICS] = np.zeros((2, 4))
  out = task.metrics_of(pred, gt, {'crop_size': 32, 'splits': {}})
  assert 'coarse3d_mpjpe_mm' not in out and out['num_without_intrinsics'] == 2


def _rewrite_config(run, phase, **changes):
  results = run.results(phase)
  results['config'].update(changes)
  run.write_results(phase, results)


@pytest.mark.slow
def test_rows_of_other_settings_than_their_run_rows_are_refused(trained_run, tmp_path,
                                                                monkeypatch):
  model_dir = str(tmp_path / 'model')
  shutil.copytree(trained_run.model_dir, model_dir, ignore=shutil.ignore_patterns(
      'eval', 'seeds', 'refine_*', 'oracle_*', 'features_noadv'))
  cfg = trained_run.replace(model_dir=model_dir)
  run = run_lib.Run.of_config(cfg)
  trainer.run_phase(phases.make_task('refine_nofbi', cfg), log=_quiet)
  challenge.check_run(cfg)
  # Phases trained with other settings than Final's where they decide how the
  # evaluation, which reads every phase with Final's, reads them.
  other_frame = 'camera' if cfg.regressor.frame == 'ray' else 'ray'
  other_loss = 'heatmap' if cfg.pose2d.loss == 'integral' else 'integral'
  for phase, key, value, old in [
      ('base', 'regressor_frame', other_frame, cfg.regressor.frame),
      ('pose2d', 'pose2d_loss', other_loss, cfg.pose2d.loss)]:
    _rewrite_config(run, phase, **{key: value})
    with pytest.raises(run_lib.PhaseError) as e:
      challenge.check_run(cfg)
    assert str(e.value) == (
        f'{model_dir}: {phase} was trained with other settings than Final ({key}: {value} '
        f"against {old}), and the evaluation reads every phase with Final's, so {phase} "
        f'would be measured wrongly. Train the phases with one set of flags: remove '
        f'{run.phase_dir(phase)} and the phases after it and run python -m fbi3d.train '
        'with the flags Final was trained with.')
    _rewrite_config(run, phase, **{key: old})
  results = run.results('features')
  # The tiny run reads each crop with its mirror image, red and blue swapped: a cache
  # made without flip averaging has neither.
  assert cfg.flip_test and cfg.flip_swaps_red_blue
  results['made_from']['flip_test'] = False
  run.write_results('features', results)
  with pytest.raises(run_lib.PhaseError, match=r'features was trained with other settings '
                     r'than Final \(flip_test: False against True; flip_swaps_red_blue: False '
                     r'against True\)'):
    challenge.check_run(cfg)
  results['made_from']['flip_test'] = True
  run.write_results('features', results)
  challenge.check_run(cfg)
  # An ablation row trained under another schedule than Final's.
  _rewrite_config(run, 'refine_nofbi', regressor_learning_rate=0.5)
  with pytest.raises(run_lib.PhaseError) as e:
    challenge.check_run(cfg)
  assert str(e.value).startswith(
      f'{model_dir}: refine_nofbi was trained with other settings than Final '
      f'(regressor_learning_rate: 0.5 against {cfg.regressor.learning_rate}), so its row '
      'would not compare with it.')
  _rewrite_config(run, 'refine_nofbi', regressor_learning_rate=cfg.regressor.learning_rate)
  # A row under another seed is trained with its run row's settings; one that differs
  # in more than the seed is refused by the spread.
  # Base trained with another seed than Final's: under Final's seed + 1 it is trained
  # with its own seed + 1, in the folder where the evaluation looks.
  _rewrite_config(run, 'base', seed=cfg.seed + 5)
  seeds_lib.train(cfg, 2, log=_quiet)
  seed1 = run_lib.Run.of(os.path.join(model_dir, 'seeds', '1'))
  assert seed1.results('base')['config']['seed'] == cfg.seed + 6
  assert seed1.results('refine')['config']['seed'] == 1
  challenge.evaluate(model_dir, 'train', gallery=0, seeds=2, log=_quiet)
  _rewrite_config(seed1, 'base', base_epochs=7)
  with pytest.raises(run_lib.PhaseError) as e:
    challenge.evaluate(model_dir, 'train', gallery=0, seeds=2, log=_quiet)
  assert str(e.value).startswith(
      f'{model_dir}: base under seed 1 was trained with other settings than the run\'s base '
      f'(base_epochs: 7 against {cfg.base.epochs}), so the spread would mix runs of other '
      'settings.')
  # A row whose 3D is not finite for some example is refused, not shown as an empty cell.
  task_class = type(phases.make_task('base', cfg))
  predict = task_class.predict

  def one_nan(self, network, inputs, arrays):
    out = np.array(predict(self, network, inputs, arrays))
    out[1, 4, 2] = np.nan
    return out

  monkeypatch.setattr(task_class, 'predict', one_nan)
  with pytest.raises(run_lib.PhaseError) as e:
    challenge._regressor_predictions(cfg, 'train', _quiet)
  assert str(e.value).startswith('base: 1 of the ')
  assert str(e.value).endswith(
      ' train examples get a non-finite 3D pose (the first 1); its inputs from the features '
      'cache or its weights hold NaN or infinity. Make the features cache again and train '
      'the regressors again.')


def test_another_data_sets_fbi_threshold_is_checked_after_the_runs_own_data_moved(tmp_path):
  model_dir, moved = tmp_path / 'model', str(tmp_path / 'moved_data')
  run = run_lib.Run.of(str(model_dir))
  # Neither a record nor the run's data set: nothing to compare, nothing refused.
  assert challenge.trained_fbi_threshold(run, moved) == (None, None)
  challenge._check_fbi_threshold(run, moved, 'other', {'fbi_threshold_deg': 5.0})  # pylint: disable=protected-access
  # The phases' record decides though the data set is gone (was: the check skipped);
  # the generator's, which learned FBI, before pose2d's.
  os.makedirs(model_dir / 'pose2d')
  (model_dir / 'pose2d' / 'results.json').write_text(json.dumps({'data_fbi_threshold_deg': 20}))
  assert challenge.trained_fbi_threshold(run, moved) == (
      20.0, str(model_dir / 'pose2d' / 'results.json'))
  os.makedirs(model_dir / 'generator')
  (model_dir / 'generator' / 'results.json').write_text(
      json.dumps({'data_fbi_threshold_deg': 10.0}))
  record = str(model_dir / 'generator' / 'results.json')
  assert challenge.trained_fbi_threshold(run, moved) == (10.0, record)
  with pytest.raises(run_lib.PhaseError) as e:
    challenge._check_fbi_threshold(run, moved, 'other', {'fbi_threshold_deg': 5.0})  # pylint: disable=protected-access
  assert str(e.value) == ('other labels FBI at 5 degrees, but the run learned from labels '
                          f'at 10 ({record}); convert it again with --fbi_threshold_deg=10.')
  challenge._check_fbi_threshold(run, moved, 'other', {'fbi_threshold_deg': 10.0})  # pylint: disable=protected-access

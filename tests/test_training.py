# Over 400 lines: the training loop checked end to end on one tiny run: phases, resume, refusals.
"""The trainer, the phases, the run store and the crops, on a tiny converted data set."""

import json
import os
import re
import shutil
import subprocess
import sys

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from fbi3d.data import pipeline
from fbi3d.data import schema
from fbi3d.training import config as config_lib
from fbi3d.training import crops
from fbi3d.training import image_task
from fbi3d.training import phases
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib
from fbi3d.training import seeds as seeds_lib
from fbi3d.training import split_outputs
from fbi3d.training import trainer
from tests.conftest import REPO
from tests.conftest import tiny_config



@pytest.fixture
def tiny_run(tiny_dataset, tmp_path):
  data_dir, _ = tiny_dataset
  return data_dir, str(tmp_path / 'model')


def _quiet(*args):
  del args


@pytest.mark.parametrize('phase,overrides,expected', [
    ('pose2d', {}, {'integral_loss', 'error_px'}),
    ('pose2d', {'pose2d_loss': 'heatmap'}, {'heatmap_loss', 'error_px'}),
    ('generator', {}, {'coarse3d_loss', 'fbi_loss', 'fbi_accuracy', 'depth_error_mm'})])
@pytest.mark.slow
def test_one_training_step_changes_weights_and_loss_is_finite(tiny_run, phase, overrides,
                                                              expected):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, **overrides)
  task = phases.make_task(phase, cfg)
  network = task.build_network()
  model = image_task.PhaseModel(task, network)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
  batch = next(iter(pipeline.make_dataset(data_dir, 'train', 4, image_size=32,
                                          augment=True, deterministic=True)))
  before = [v.numpy().copy() for v in network.trainable_variables]
  logs = model.train_step(batch)
  # A step from random weights on augmented crops: its loss has no value known by hand.
  assert np.isfinite(float(logs['loss']))
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, network.trainable_variables)]
  assert sum(changed) > 0.9 * len(changed)
  assert expected <= set(logs)


def test_inference_batch_holds_64_crops_of_64_px_and_never_fewer_than_training():
  # 64 * 64 * 64 pixels: 64 crops of 64 px, 16 of 128, 4 of 256 (then the batch of 16).
  batch = lambda size, train: split_outputs.inference_batch_size(
      tiny_config('d', 'm', image_size=size, batch_size=train))
  assert batch(64, 16) == 64
  assert batch(128, 8) == 16
  assert batch(256, 16) == 16
  assert batch(32, 4) == 256
  assert batch(64, 100) == 100


def test_collect_gives_the_same_outputs_in_one_batch_or_several(tiny_dataset, monkeypatch):
  data_dir, examples = tiny_dataset   # 6 crops of 32 px
  image = tf.keras.Input((32, 32, 3))
  network = tf.keras.Model(image, tf.reduce_mean(image, axis=[1, 2, 3]))
  cfg = tiny_config(data_dir, 'unused', batch_size=4)
  sizes = []

  def outputs_fn(out):
    sizes.append(int(out.shape[0]))
    return {'mean': out.numpy()}

  whole, targets = split_outputs.collect(network, cfg, 'train', outputs_fn, verbose=0)
  assert sizes == [6]                   # 64 * 64 * 64 pixels: 256 crops of 32 px
  # 4 * 32 * 32 pixels: the training batch of 4, then the 2 left over.
  monkeypatch.setattr(split_outputs, 'INFERENCE_BATCH_PIXELS', 4 * 32 * 32)
  sizes.clear()
  parts, part_targets = split_outputs.collect(network, cfg, 'train', outputs_fn, verbose=0)
  assert sizes == [4, 2]
  # The crop's own pixels (no resize at 32 px): each output is its decoded JPEG's mean.
  means = [e['decoded'].mean() / 255.0 for e in examples['train']]
  np.testing.assert_allclose(whole['mean'], means, rtol=1e-6)
  np.testing.assert_array_equal(parts['mean'], whole['mean'])
  for key, value in targets.items():
    np.testing.assert_array_equal(part_targets[key], value)


@pytest.mark.slow
def test_phase_writes_its_folder_and_generator_needs_pose2d(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir)
  with pytest.raises(run_lib.PhaseError, match='--phase=pose2d'):
    trainer.run_phase(phases.make_task('generator', cfg), log=_quiet)
  results = trainer.run_phase(phases.make_task('pose2d', cfg), log=_quiet)
  folder = os.path.join(model_dir, 'pose2d')
  assert results['finished'] and results['optimizer_steps'] == 2
  # Named relative to the phase folder, with the content hash of its index file.
  assert results['checkpoint'] == 'checkpoints/ckpt-1'
  assert os.path.exists(os.path.join(folder, 'checkpoints', 'ckpt-1.index'))
  assert results['checkpoint_sha256'] == run_lib.checkpoint_sha256(
      os.path.join(folder, 'checkpoints', 'ckpt-1'))
  saved = json.load(open(os.path.join(folder, 'flags.json')))
  assert saved['architecture']['hg_channels'] == 8
  assert os.listdir(os.path.join(folder, 'logs'))
  # A trained network's error has no value known by hand: finite (an accuracy within
  # [0, 1]) is what can be asserted.
  assert np.isfinite(results['metrics']['error_px'])
  other = tiny_config(data_dir, model_dir, image_size=48, gen_depth=1)
  with pytest.raises(run_lib.PhaseError, match='image_size'):
    trainer.run_phase(phases.make_task('generator', other), log=_quiet)
  gen = trainer.run_phase(phases.make_task('generator', cfg), log=_quiet)
  assert 0.0 <= gen['metrics']['fbi_accuracy'] <= 1.0
  assert len(gen['metrics']['fbi_per_bone']) == 14


class _Killed(Exception):
  pass


class _KillAfterEpoch(tf.keras.callbacks.Callback):

  def on_epoch_end(self, epoch, logs=None):
    raise _Killed(f'killed after epoch {epoch + 1}')


@pytest.mark.slow
def test_resume_with_other_network_settings_is_refused(trained_run, tmp_path):
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d', 'features', 'base'))
  other = cfg.replace(hg_channels=16)
  with pytest.raises(run_lib.PhaseError, match='hg_channels: checkpoint 8, now 16'):
    trainer.run_phase(phases.make_task('pose2d', other), log=_quiet)
  # Nor with another schedule: 3 epochs would go on from the end of a 1-epoch decay.
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      '(pose2d_epochs: checkpoint 1, now 3). Use the same flags to resume it')):
    trainer.run_phase(phases.make_task('pose2d', cfg.replace(pose2d_epochs=3)), log=_quiet)
  # A regressor stopped before it finished, resumed on a features cache made again.
  run = run_lib.Run.of_config(cfg)
  os.remove(os.path.join(run.phase_dir('base'), 'results.json'))
  features = json.load(open(os.path.join(run.phase_dir('features'), 'results.json')))
  learned = features['train_sha256']
  features['train_sha256'] = 'f' * 64
  run_lib.write_json(os.path.join(run.phase_dir('features'), 'results.json'), features)
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      f'(features_train_sha256: {learned[:16]} when it started, now {"f" * 16}).')):
    trainer.run_phase(phases.make_task('base', cfg), log=_quiet)


MIRRORED_SCRIPT = r'''
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[3])
from tests.conftest import tiny_config
from fbi3d.training import phases, runtime, trainer
cfg = tiny_config(sys.argv[1], sys.argv[2], strategy='mirrored')
res = trainer.run_phase(phases.make_task('pose2d', cfg))
strategy = runtime.make_strategy('mirrored')
print('REPLICAS', strategy.num_replicas_in_sync, 'STEPS', res['optimizer_steps'])
'''


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus_trains(tiny_run):
  data_dir, model_dir = tiny_run
  proc = subprocess.run(
      [sys.executable, '-c', MIRRORED_SCRIPT, data_dir, model_dir, REPO],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'REPLICAS 2 STEPS 2' in proc.stdout


def test_command_line_reports_missing_data(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.train', '--phase=pose2d',
       f'--data_dir={tmp_path / "none"}', f'--model_dir={tmp_path / "m"}'],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
  assert proc.returncode == 1
  assert 'convert_challenge' in proc.stderr
  assert 'Traceback' not in proc.stderr


# Through the command line (absl's validators, a process each); config.check's messages
# for every range are tested in process below.
@pytest.mark.parametrize('flag,message', [
    ('--disc_label_smoothing=nan', 'must be a finite number from 0.0 to 0.5'),
    ('--box_shift=0.7', '--box_shift must be a finite number from 0.0 to 0.5'),
    ('--regressor_units=0', 'not a positive integer')])
@pytest.mark.slow
def test_command_line_refuses_settings_out_of_range(tmp_path, flag, message):
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.train', '--phase=base', flag,
       f'--model_dir={tmp_path / "m"}'],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
  assert proc.returncode == 1
  assert message in proc.stderr
  assert not os.path.exists(tmp_path / 'm')


# --seeds goes with --phase=seeds alone, and that phase needs two seeds or more.
@pytest.mark.parametrize('words,message', [
    (['--phase=seeds'], '--phase=seeds needs --seeds=N with N from 2 up'),
    (['--phase=seeds', '--seeds=1'], 'got --seeds=1'),
    (['--phase=base', '--seeds=3'], '--seeds is for --phase=seeds only, not --phase=base')])
@pytest.mark.slow
def test_command_line_refuses_nonsense_seeds(tmp_path, words, message):
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.train'] + words + [f'--model_dir={tmp_path / "m"}'],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
  assert proc.returncode == 1
  assert message in proc.stderr
  assert not os.path.exists(tmp_path / 'm')


def test_seeds_refuse_too_few_seeds_and_a_run_without_final(tmp_path):
  cfg = tiny_config(str(tmp_path / 'records'), str(tmp_path / 'm'))
  with pytest.raises(ValueError, match='from 2 up'):
    seeds_lib.train(cfg, 1)
  with pytest.raises(run_lib.PhaseError, match='base, refine not finished'):
    seeds_lib.train(cfg, 2)
  assert not os.path.exists(tmp_path / 'm')
  assert seeds_lib.seed_config(cfg, 2) == cfg.replace(
      seed=2, model_dir=os.path.join(cfg.model_dir, 'seeds', '2'),
      features_root=cfg.model_dir)


def _with_phases(trained_run, model_dir, names, **overrides):
  """The settings of the session's tiny run pointed at `model_dir`, with copies of its
  finished phases `names` there (trained once per session instead of once per test)."""
  cfg = trained_run.replace(model_dir=str(model_dir), **overrides)
  for phase in names:
    shutil.copytree(run_lib.Run.of_config(trained_run).phase_dir(phase),
                    run_lib.Run.of_config(cfg).phase_dir(phase))
  return cfg


def _adversarial_training(trained_run, tmp_path, **overrides):
  """(network, training model, its items, a batch) of an adversarial phase on a copy of
  the session's tiny run's pose2d and generator phases."""
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d', 'generator'), **overrides)
  task = phases.make_task('adversarial', cfg)
  network = task.build_network()
  task.load_predecessors(network)
  model, items = task.build_training(network, 10)
  batch = next(iter(pipeline.make_dataset(cfg.data_dir, 'train', 4, image_size=32,
                                          deterministic=True)))
  return network, model, items, batch


@pytest.mark.slow
def test_adversarial_step_changes_discriminator_and_coarse3d_only(trained_run, tmp_path):
  from fbi3d.models import generator as generator_lib  # pylint: disable=g-import-not-at-top
  network, model, items, batch = _adversarial_training(trained_run, tmp_path)
  snapshot = lambda vs: [v.numpy().copy() for v in vs]  # pylint: disable=unnecessary-lambda-assignment
  coarse = generator_lib.branch_variables(network, 'coarse3d')
  fbi_all = generator_lib.branch_variables(network, 'fbi', trainable_only=False)
  disc = items['discriminator'].trainable_variables
  before = [snapshot(coarse), snapshot(fbi_all), snapshot(disc)]
  logs = model.train_step(batch)
  after = [snapshot(coarse), snapshot(fbi_all), snapshot(disc)]
  changed = [sum(not np.array_equal(a, b) for a, b in zip(x, y)) / len(x)
             for x, y in zip(before, after)]
  assert changed[0] > 0.9          # coarse-3D branch trained
  assert changed[1] == 0.0         # FBI branch (weights and BN statistics) untouched
  assert changed[2] > 0.9          # discriminator trained
  assert int(items['optimizer'].iterations) == 1
  assert int(items['d_optimizer'].iterations) == 1
  for key in ('d_loss', 'g_loss', 'adversarial_loss', 'd_accuracy'):
    assert np.isfinite(float(logs[key]))


@pytest.mark.slow
def test_adversarial_step_with_frozen_batch_norm_and_true_2d_fakes(trained_run, tmp_path):
  from fbi3d.models import generator as generator_lib  # pylint: disable=g-import-not-at-top
  network, model, _, batch = _adversarial_training(
      trained_run, tmp_path, adversarial_freeze_bn=True, disc_fake_2d='truth')
  coarse_layers = generator_lib.branch_layers(network, 'coarse3d')
  norms = [m for layer in coarse_layers for m in [layer] + list(layer.submodules)
           if isinstance(m, tf.keras.layers.BatchNormalization)]
  assert norms
  snapshot = lambda vs: [v.numpy().copy() for v in vs]  # pylint: disable=unnecessary-lambda-assignment
  norm_weights = [w for m in norms for w in m.weights]       # scale, offset, statistics
  kernels = [v for v in generator_lib.branch_variables(network, 'coarse3d')
             if 'kernel' in v.name]
  norms0, kernels0 = snapshot(norm_weights), snapshot(kernels)
  model.train_step(batch)
  assert all(np.array_equal(a, b) for a, b in zip(norms0, snapshot(norm_weights)))
  assert sum(not np.array_equal(a, b) for a, b in zip(kernels0, snapshot(kernels))) > 0.9 * len(kernels)


@pytest.mark.slow
def test_adversarial_warmup_trains_only_the_discriminator_first(trained_run, tmp_path):
  from fbi3d.models import generator as generator_lib  # pylint: disable=g-import-not-at-top
  network, model, items, batch = _adversarial_training(
      trained_run, tmp_path, disc_warmup_steps=1, disc_label_smoothing=0.1)
  coarse = generator_lib.branch_variables(network, 'coarse3d')
  disc = items['discriminator'].trainable_variables
  snapshot = lambda vs: [v.numpy().copy() for v in vs]  # pylint: disable=unnecessary-lambda-assignment
  unchanged = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b))  # pylint: disable=unnecessary-lambda-assignment
  coarse0, disc0 = snapshot(coarse), snapshot(disc)
  model.train_step(batch)          # step 1: the warm-up, the discriminator alone
  assert unchanged(coarse0, snapshot(coarse)) and not unchanged(disc0, snapshot(disc))
  assert (int(items['optimizer'].iterations), int(items['d_optimizer'].iterations)) == (0, 1)
  model.train_step(batch)          # step 2: both
  assert not unchanged(coarse0, snapshot(coarse))
  assert (int(items['optimizer'].iterations), int(items['d_optimizer'].iterations)) == (1, 2)
  # A warm-up as long as the phase (10 steps here) would leave the generator untouched.
  task = phases.make_task('adversarial', trained_run.replace(disc_warmup_steps=10))
  with pytest.raises(run_lib.PhaseError, match=r'--disc_warmup_steps=10 covers the whole '
                     r'adversarial phase \(10 steps\): the generator would never be'):
    task.build_training(network, 10)


@pytest.mark.slow
def test_every_phase_runs_in_order_and_features_cache_is_reused(trained_run):
  # trained_run (tests/conftest.py) ran every phase of phases.PHASES in order.
  cfg = trained_run
  results = {name: run_lib.Run.of_config(cfg).results(name) for name in phases.PHASES}
  for name, r in results.items():
    assert r['finished'], name
  feats = np.load(os.path.join(cfg.model_dir, 'features', 'train.npz'))
  assert feats['detected2d'].shape == (6, 17, 2)
  assert feats['coarse3d'].shape == (6, 17, 3)
  assert feats['fbi_probs'].shape == (6, 14, 3)
  assert list(feats['source_id']) == ['00001', '00002', '00003', '00004', '00005', '00006']
  assert results['features']['splits'] == ['train', 'val', 'test']
  # Estimated crops (the default): each example was read from the square around the joints
  # the 2D estimator found on its converted crop, and the cache's 2D is in that crop.
  assert results['features']['crops'] == 'estimated'
  task = pose2d_phase.Pose2DTask(cfg)
  estimator = task.build_network()
  run_lib.Run.of_config(cfg).restore(estimator, 'pose2d')
  found, _ = split_outputs.collect(estimator, cfg, 'train', task.predict_fn, keys=())
  np.testing.assert_allclose(
      feats['box'], crops.boxes_from_joints(found['pose2d'], 32, 32, 0.2), atol=1e-4)
  records = pipeline.read_examples(cfg.data_dir, 'train')
  box = feats['box'][:, None]
  back = (feats['gt2d'] + 0.5) * box[..., 2:] / 32 - 0.5 + box[..., :2]
  np.testing.assert_allclose(back, [r[schema.POSE2D].reshape(17, 2) for r in records],
                             atol=1e-3)
  for name in ('base', 'refine'):
    m = results[name]['metrics']
    # Errors of trained regressors: no value known by hand, so finite is the check.
    assert np.isfinite(m['mpjpe_mm']) and np.isfinite(m['pa_mpjpe_mm'])
  assert results['refine']['metrics']['inputs'] == ['2d', 'coarse3d', 'fbi']
  assert 'coarse3d_mpjpe_mm_before' in results['adversarial']['metrics']
  # A second run of features finds its cache up to date.
  messages = []
  trainer.run_phase(phases.make_task('features', cfg), log=messages.append)
  assert 'features: cache in' in messages[-1]


def test_run_phase_refuses_settings_out_of_range(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, pose2d_learning_rate=float('nan'), batch_size=0)
  with pytest.raises(ValueError, match=r'--batch_size=0 must be an integer from 1 up; '
                     r'--pose2d_learning_rate=nan must be a finite number above 0.0\.'):
    trainer.run_phase(phases.make_task('pose2d', cfg), log=_quiet)
  assert not os.path.exists(model_dir)
  open(model_dir, 'w').close()
  cfg = tiny_config(data_dir, model_dir)
  with pytest.raises(run_lib.PhaseError, match=r'--model_dir=.* is a file; give a folder'):
    trainer.run_phase(phases.make_task('pose2d', cfg), log=_quiet)


def test_run_phase_refuses_an_eval_split_the_data_lacks(tmp_path):
  from tests.conftest import write_tiny_dataset  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / 'records')
  write_tiny_dataset(data_dir, splits=('train', 'test'), unlabelled=('test',))
  model_dir = str(tmp_path / 'model')
  cfg = tiny_config(data_dir, model_dir, eval_split='validation')
  with pytest.raises(run_lib.PhaseError) as e:
    trainer.run_phase(phases.make_task('pose2d', cfg), log=_quiet)
  assert str(e.value) == (f'--eval_split=validation: {data_dir} has no such split (it '
                          'holds train, test); measure on one of them.')
  assert not os.path.exists(model_dir)


@pytest.mark.parametrize('setting,message', [
    ({'disc_label_smoothing': 0.7}, '--disc_label_smoothing=0.7 must be a finite number from '
                                    '0.0 to 0.5'),
    ({'pose2d_learning_rate': float('nan')}, '--pose2d_learning_rate=nan must be a finite '
                                             'number above 0.0'),
    ({'regressor_learning_rate': -1.0}, '--regressor_learning_rate=-1.0 must be a finite '
                                        'number above 0.0'),
    ({'hg_stacks': 0}, '--hg_stacks=0 must be an integer from 1 up'),
    ({'base_epochs': 0}, '--base_epochs=0 must be an integer from 1 up'),
    ({'fbi_weight': float('inf')}, '--fbi_weight=inf must be a finite number from 0.0 up'),
    ({'box_shift': -0.1}, '--box_shift=-0.1 must be a finite number from 0.0 to 0.5'),
    ({'fbi_channels': ()}, '--fbi_channels= must be positive integers (at least one)'),
    ({'fbi_channels': (8, 0)}, '--fbi_channels=8,0 must be positive integers (at least one)'),
    ({'generator_init': 'pose2d', 'gen_stacks': 3},
     '--generator_init=pose2d needs --gen_channels=64 and --gen_depth=3 equal to '
     '--hg_channels=64 and --hg_depth=3, and --gen_stacks=3 at most --hg_stacks=2 (or '
     '--generator_init=none)'),
    ({'generator_init': 'pose2d', 'gen_depth': 2},
     '--generator_init=pose2d needs --gen_channels=64 and --gen_depth=2 equal to '
     '--hg_channels=64 and --hg_depth=3, and --gen_stacks=1 at most --hg_stacks=2 (or '
     '--generator_init=none)')])
def test_settings_out_of_range_are_named(setting, message):
  cfg = config_lib.make(**setting)
  with pytest.raises(ValueError) as raised:
    config_lib.check(cfg)
  assert str(raised.value) == f'settings out of range: {message}.'


def _weights(cfg, phase):
  """The variables of a phase's network as restored from its finished checkpoint."""
  network = phases.make_task(phase, cfg).build_network()
  run_lib.Run.of_config(cfg).restore(network, phase)
  return [v.numpy() for v in network.variables]


class _NaNFromStep(pose2d_phase.Pose2DTask):
  """The 2D estimator's task whose loss turns NaN from its `step`-th training batch."""

  def __init__(self, cfg, step):
    super().__init__(cfg)
    self.step = step
    self.calls = tf.Variable(0, trainable=False)

  def losses(self, outputs, batch):
    count = self.calls.assign_add(1)
    factor = tf.where(count >= self.step, float('nan'), 1.0)
    return {k: v * factor for k, v in super().losses(outputs, batch).items()}


@pytest.mark.slow
def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, pose2d_epochs=3)
  # Two steps per epoch: epoch 1 is finite, the first step of epoch 2 is not.
  with pytest.raises(run_lib.PhaseError,
                     match=r'phase pose2d: non-finite integral_loss, loss at epoch 2, step 1\. '
                           r'Training stopped; the last good checkpoint \(.*ckpt-1\) is kept'):
    trainer.run_phase(_NaNFromStep(cfg, 3), log=_quiet)
  folder = os.path.join(model_dir, 'pose2d')
  assert run_lib.Run.of_config(cfg).results('pose2d') is None
  assert sorted(f for f in os.listdir(os.path.join(folder, 'checkpoints'))
                if f.endswith('.index')) == ['ckpt-1.index']
  network = phases.make_task('pose2d', cfg).build_network()
  tf.train.Checkpoint(network=network).restore(
      os.path.join(folder, 'checkpoints', 'ckpt-1')).expect_partial()
  assert run_lib.count_non_finite(network.variables) == 0
  # The same command resumes from that checkpoint.
  messages = []
  results = trainer.run_phase(phases.make_task('pose2d', cfg), log=messages.append)
  assert any('(epoch 1, optimizer step 2)' in m for m in messages)
  assert results['optimizer_steps'] == 6


@pytest.mark.slow
def test_no_phase_starts_on_weights_that_are_not_finite(trained_run, tmp_path):
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d',))
  network = phases.make_task('pose2d', cfg).build_network()
  path = run_lib.Run.of_config(cfg).restore(network, 'pose2d')
  network.trainable_variables[0].assign(np.full(network.trainable_variables[0].shape,
                                                np.nan, np.float32))
  checkpoint = tf.train.Checkpoint(network=network)
  checkpoint.save_counter.assign(1)      # what a phase's checkpoint holds besides
  checkpoint.write(path)
  results = run_lib.Run.of_config(cfg).results('pose2d')
  results['checkpoint_sha256'] = run_lib.checkpoint_sha256(path)   # as if it trained so
  run_lib.Run.of_config(cfg).write_results('pose2d', results)
  with pytest.raises(run_lib.PhaseError, match=r'the pose2d checkpoint .*ckpt-1 holds NaN or '
                     r'infinite weights \(1 of \d+ variables\)'):
    _weights(cfg, 'pose2d')     # as every phase, evaluation and export read a predecessor


@pytest.mark.slow
def test_the_generator_phase_can_start_from_the_2d_estimator(trained_run, tmp_path):
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d',), generator_init='pose2d')
  images = tf.constant(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)), tf.float32)
  estimator = phases.make_task('pose2d', cfg).build_network()
  run_lib.Run.of_config(cfg).restore(estimator, 'pose2d')
  want = pose2d_phase.decode(estimator(images, training=False), 'integral').numpy()
  task = phases.make_task('generator', cfg)
  network = task.build_network()
  task.load_predecessors(network)
  np.testing.assert_allclose(network(images, training=False)['coarse3d'][..., :2].numpy(),
                             want, atol=1e-4)
  fresh = phases.make_task('generator', cfg.replace(generator_init='none'))
  untouched = fresh.build_network()
  fresh.load_predecessors(untouched)
  assert np.abs(untouched(images, training=False)['coarse3d'][..., :2].numpy()
                - want).max() > 0.1
  # The phase trains from there and says how it started.
  results = trainer.run_phase(task, log=_quiet)
  assert results['finished'] and results['config']['generator_init'] == 'pose2d'


@pytest.mark.slow
def test_a_copied_run_reads_its_own_checkpoints(trained_run, tmp_path):
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d',))
  model_dir = cfg.model_dir
  copy = str(tmp_path / 'copy')
  shutil.copytree(model_dir, copy)
  copy_cfg = cfg.replace(model_dir=copy)
  own = _weights(copy_cfg, 'pose2d')
  # The original trains its pose2d again, from another seed, under the same name.
  shutil.rmtree(os.path.join(model_dir, 'pose2d'))
  other = cfg.replace(seed=5)
  trainer.run_phase(phases.make_task('pose2d', other), log=_quiet)
  assert not all(np.array_equal(a, b) for a, b in zip(own, _weights(other, 'pose2d')))
  # The copy still reads its own weights, and names them relative to itself.
  assert all(np.array_equal(a, b) for a, b in zip(own, _weights(copy_cfg, 'pose2d')))
  record = run_lib.Run.of_config(copy_cfg).checkpoint_record('pose2d')
  assert record['path'] == os.path.join('pose2d', 'checkpoints', 'ckpt-1')
  # Weights replaced behind the results' back are refused ...
  for ext in ('.index', '.data-00000-of-00001'):
    shutil.copy(os.path.join(model_dir, 'pose2d', 'checkpoints', 'ckpt-1' + ext),
                os.path.join(copy, 'pose2d', 'checkpoints', 'ckpt-1' + ext))
  with pytest.raises(run_lib.PhaseError, match=r'the pose2d checkpoint .*copy/pose2d/'
                     r'checkpoints/ckpt-1 changed since the phase finished'):
    _weights(copy_cfg, 'pose2d')
  # ... and deleted ones are not looked for in the original.
  shutil.rmtree(os.path.join(copy, 'pose2d', 'checkpoints'))
  with pytest.raises(run_lib.PhaseError, match=r'the pose2d phase finished with checkpoint '
                     r'ckpt-1, but .*copy/pose2d/checkpoints does not hold it'):
    _weights(copy_cfg, 'pose2d')


def _train(phase, cfg, killed, log=_quiet):
  """Trains a phase to the end, killed after its first epoch and resumed when `killed`;
  returns the network's variables from its final checkpoint."""
  extra = [_KillAfterEpoch()] if killed else []
  try:
    trainer.run_phase(phases.make_task(phase, cfg), log=log, extra_callbacks=extra)
  except _Killed:
    assert run_lib.Run.of_config(cfg).results(phase) is None      # a killed phase has no results
    trainer.run_phase(phases.make_task(phase, cfg), log=log)
  return _weights(cfg, phase)


def _assert_same(first, other):
  assert len(first) == len(other)
  for a, b in zip(first, other):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_same_seed_runs_and_a_resumed_run_give_identical_weights(tiny_run, tmp_path):
  # The killed run is a second fresh run of the same seed up to its kill: equal final
  # weights need both its first epoch and its resumed one to repeat the whole run's.
  data_dir, _ = tiny_run
  messages = []
  configs = {name: tiny_config(data_dir, str(tmp_path / name), pose2d_epochs=2)
             for name in ('whole', 'killed')}
  runs = {name: _train('pose2d', cfg, killed=name == 'killed', log=messages.append)
          for name, cfg in configs.items()}
  _assert_same(runs['whole'], runs['killed'])
  # The killed run resumed from its epoch and optimizer step, and saved the next epoch.
  assert any('resuming' in m and '(epoch 1, optimizer step 2)' in m for m in messages)
  results = run_lib.Run.of_config(configs['killed']).results('pose2d')
  assert (results['optimizer_steps'], results['checkpoint']) == (4, 'checkpoints/ckpt-2')
  # Finished: running again trains nothing and returns the same results.
  again = trainer.run_phase(phases.make_task('pose2d', configs['killed']),
                            log=messages.append)
  assert again == results and messages[-1].startswith('pose2d: already trained for 2 epochs')


@pytest.mark.slow
def test_a_resumed_regressor_equals_an_uninterrupted_one(trained_run, tmp_path):
  """Dropout and the loss's running state continue where the checkpoint left them."""
  got = {}
  for name in ('whole', 'killed'):
    model_dir = str(tmp_path / name)
    shutil.copytree(trained_run.model_dir, model_dir)
    shutil.rmtree(os.path.join(model_dir, 'base'))
    cfg = trained_run.replace(model_dir=model_dir, base_epochs=3)
    got[name] = _train('base', cfg, killed=name == 'killed')
  _assert_same(got['whole'], got['killed'])


@pytest.mark.slow
def test_regressors_refuse_a_features_cache_made_again_under_them(trained_run, tmp_path):
  from fbi3d.evaluation import challenge  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'model')
  shutil.copytree(trained_run.model_dir, model_dir,
                  ignore=shutil.ignore_patterns('eval', 'seeds'))
  cfg = trained_run.replace(model_dir=model_dir)
  learned = run_lib.Run.of_config(cfg).results('base')['metrics']['features_train_sha256']
  assert learned == run_lib.Run.of_config(cfg).results('features')['train_sha256']
  # The features made again from the converted crops: another train cache.
  other = cfg.replace(crops='gt')
  trainer.run_phase(phases.make_task('features', other), log=_quiet)
  now = run_lib.Run.of_config(cfg).results('features')['train_sha256']
  assert now != learned
  message = (rf'base in {re.escape(model_dir)}/base was trained on another features cache '
             rf'than the one there now \(train.npz {learned[:16]}, now {now[:16]}\)')
  with pytest.raises(run_lib.PhaseError, match=message):
    trainer.run_phase(phases.make_task('base', cfg), log=_quiet)
  with pytest.raises(run_lib.PhaseError, match=message):
    challenge.evaluate(model_dir, 'train', gallery=0, log=_quiet)


@pytest.mark.slow
def test_a_finished_image_phase_is_not_reused_on_other_inputs(trained_run, tmp_path):
  from fbi3d.data import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d', 'generator'))
  run = run_lib.Run.of_config(cfg)
  recorded = run.saved_inputs('generator')
  data_sha = manifest_lib.content_sha256(manifest_lib.read(cfg.data_dir))
  assert recorded == {'pose2d_checkpoint_sha256': run.checkpoint_record('pose2d')['sha256'],
                      'data_sha256': data_sha}
  # The same inputs: reused as it is.
  finished = run.results('generator')
  assert trainer.run_phase(phases.make_task('generator', cfg), log=_quiet) == finished
  # The data set moved, and converted again with notes and paths of its new place: the
  # same records, still reused.
  data_dir = str(tmp_path / 'records')
  shutil.copytree(cfg.data_dir, data_dir)
  manifest = manifest_lib.read(data_dir)
  manifest.update(input_dir='/elsewhere', notes=['converted again'])
  run_lib.write_json(manifest_lib.path_in(data_dir), manifest)
  moved = cfg.replace(data_dir=data_dir)
  assert trainer.run_phase(phases.make_task('generator', moved), log=_quiet) == finished
  # Converted with another margin: other records, refused, and the record of what it
  # trained on is kept.
  manifest['margin'] = 0.25
  run_lib.write_json(manifest_lib.path_in(data_dir), manifest)
  now = manifest_lib.content_sha256(manifest)
  for phase in ('pose2d', 'generator'):
    with pytest.raises(run_lib.PhaseError) as e:
      trainer.run_phase(phases.make_task(phase, moved), log=_quiet)
    assert str(e.value).startswith(
        f'{phase} in {run.phase_dir(phase)} was trained on other inputs than those there '
        f'now (data_sha256: {data_sha[:16]} when it trained, now {now[:16]}): a phase it '
        f'started from was trained again since, or --data_dir={data_dir} is another data '
        'set or was converted with other settings.')
  assert run.saved_inputs('generator') == recorded
  # The 2D estimator it started from trained again (another checkpoint).
  checkpoint = run.checkpoint_path('pose2d')
  with open(checkpoint + '.index', 'ab') as f:
    f.write(b'\0')
  retrained = run_lib.checkpoint_sha256(checkpoint)
  results = dict(run.results('pose2d'), checkpoint_sha256=retrained)
  run.write_results('pose2d', results)
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      f'(pose2d_checkpoint_sha256: {recorded["pose2d_checkpoint_sha256"][:16]} when it '
      f'trained, now {retrained[:16]})')):
    trainer.run_phase(phases.make_task('generator', cfg), log=_quiet)
  assert run.saved_inputs('generator') == recorded


@pytest.mark.slow
def test_a_features_cache_stopped_while_made_again_is_not_finished(trained_run, tmp_path,
                                                                   monkeypatch):
  from fbi3d.training import features as features_phase  # pylint: disable=g-import-not-at-top
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d', 'generator', 'adversarial',
                                                       'features', 'base'))
  run = run_lib.Run.of_config(cfg)
  saved = features_phase.FeaturesTask._save
  written = []

  def stop_after_the_first_split(task, split, arrays):
    if written:
      raise KeyboardInterrupt
    written.append(split)
    saved(task, split, arrays)

  monkeypatch.setattr(features_phase.FeaturesTask, '_save', stop_after_the_first_split)
  with pytest.raises(KeyboardInterrupt):
    trainer.run_phase(phases.make_task('features', cfg.replace(crops='gt')), log=_quiet)
  # train.npz is the new cache's, val.npz and test.npz the old one's: nothing vouches
  # for that mix, and the regressors refuse to read it.
  assert written == ['train'] and run.results('features') is None
  with pytest.raises(run_lib.PhaseError,
                     match='phase base needs a finished features phase'):
    trainer.run_phase(phases.make_task('base', cfg), log=_quiet)


def test_regressors_refuse_features_of_another_crop_size(tmp_path):
  from tests.conftest import write_tiny_dataset  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / 'records')
  write_tiny_dataset(data_dir, splits=('train',))
  run = run_lib.Run(str(tmp_path / 'model'), '')
  os.makedirs(run.phase_dir('features'))
  run.write_results('features', dict(phase='features', finished=True,
                                     made_from=dict(image_size=64)))
  manifest = pipeline.load_manifest(data_dir)
  task = phases.make_task('base', tiny_config(data_dir, run.model_dir, image_size=128))
  with pytest.raises(run_lib.PhaseError) as e:
    task.check_data(manifest)
  assert str(e.value) == (
      f'phase base: --image_size=128 but the features cache in {run.phase_dir("features")} '
      'holds 2D of 64-px crops; use --image_size=64 or a new --model_dir.')
  phases.make_task('base', tiny_config(data_dir, run.model_dir, image_size=64)).check_data(
      manifest)


@pytest.mark.slow
def test_a_regressor_measured_on_an_unlabelled_split_says_so(trained_run, tmp_path):
  cfg = _with_phases(trained_run, tmp_path / 'model', ('pose2d', 'generator', 'adversarial',
                                                       'features'), eval_split='test')
  lines = []
  results = trainer.run_phase(phases.make_task('base', cfg), log=lines.append)
  learned = run_lib.Run.of_config(cfg).results('features')['train_sha256']
  assert results['finished'] and results['metrics'] == dict(
      split='test', num_examples=0, note='no 3D ground truth in this split, nothing measured',
      inputs=['2d'], two_d='detected', loss=cfg.regressor.loss,
      features_train_sha256=learned)
  assert lines[-1] == 'base on test: no 3D ground truth in this split, nothing measured'


def test_a_resumed_phase_counts_the_seconds_trained_before_its_stop(tmp_path):
  folder = tmp_path / 'checkpoints'
  folder.mkdir()
  assert trainer.seconds_before(None) == 0.0
  assert trainer.seconds_before(str(folder / 'ckpt-2')) == 0.0          # none recorded
  (folder / trainer.SECONDS_FILE).write_text(json.dumps(dict(checkpoint='ckpt-2',
                                                             seconds=41.5)))
  assert trainer.seconds_before(str(folder / 'ckpt-2')) == 41.5
  # Recorded for another checkpoint (a stop between the save and the record), or bad.
  assert trainer.seconds_before(str(folder / 'ckpt-3')) == 0.0
  (folder / trainer.SECONDS_FILE).write_text('{"checkpoint": "ckpt-2", "seconds": -1}')
  assert trainer.seconds_before(str(folder / 'ckpt-2')) == 0.0


def test_both_flag_files_parse_into_settings_of_sense():
  # Each read by absl into flag values of its own, as python -m fbi3d.train reads them.
  read = {}
  for name in ('quickstart', 'paper'):
    values = flags.FlagValues()
    config_lib.define_flags(values)
    values(['train', f'--flagfile={os.path.join(REPO, "flags", name + ".cfg")}'])
    read[name] = config_lib.from_flags(values)
    config_lib.check(read[name])
  assert (read['quickstart'].image_size, read['paper'].image_size) == (96, 256)
  assert (read['quickstart'].crops, read['paper'].crops) == ('estimated', 'estimated')
  assert (read['quickstart'].flip_swaps_red_blue, read['paper'].flip_swaps_red_blue) == (
      True, False)
  assert read['paper'].generator.fbi_channels == (64, 128, 256, 512)


def test_run_store_reads_a_results_file_once_and_again_when_it_changes(tmp_path):
  run = run_lib.Run.of(str(tmp_path / 'model'))
  assert run_lib.Run.of(str(tmp_path / 'model')) is run
  assert run.results('base') is None and not run.finished('base')
  os.makedirs(run.phase_dir('base'))
  run.write_results('base', {'finished': True, 'epochs': 1})
  first = run.results('base')
  assert run.results('base') is first          # not parsed again
  run.write_results('base', {'finished': False, 'epochs': 2})
  assert run.results('base') == {'finished': False, 'epochs': 2}
  # Feature caches live under features_root when it is set; other phases do not.
  elsewhere = run_lib.Run.of(str(tmp_path / 'model'), str(tmp_path / 'caches'))
  assert elsewhere.phase_dir('features_noadv') == str(tmp_path / 'caches' / 'features_noadv')
  assert elsewhere.phase_dir('refine') == str(tmp_path / 'model' / 'refine')


def test_settings_are_saved_flat_in_the_old_order_and_read_back(tmp_path):
  cfg = tiny_config('data', str(tmp_path / 'model'), regressor_units=32, disc_units=16)
  saved = cfg.to_dict()
  assert list(saved)[:4] == ['data_dir', 'model_dir', 'features_root', 'image_size']
  assert list(saved)[-5:] == ['regressor_2d', 'regressor_frame', 'gt2d_noise_px',
                              'regressor_mirror', 'regressor_mirror_average']
  assert (saved['hg_channels'], saved['regressor_units'], saved['fbi_channels']) == (
      8, 32, (8, 8, 8, 8))
  assert config_lib.from_dict(json.loads(json.dumps(saved))) == cfg
  assert (cfg.pose2d.channels, cfg.regressor.units, cfg.adversarial.units) == (8, 32, 16)
  assert cfg.section('base').epochs == cfg.base.epochs == 60
  # A run saved before a setting existed reads its value of that time.
  old = {k: v for k, v in saved.items() if k not in ('pose2d_loss', 'regressor_frame')}
  read = config_lib.from_dict(old, model_dir='moved')
  assert (read.pose2d.loss, read.regressor.frame, read.model_dir) == (
      'heatmap', 'camera', 'moved')
  assert cfg.replace(hg_channels=16).pose2d.channels == 16
  with pytest.raises(TypeError, match='unknown settings: hg_width'):
    config_lib.make(hg_width=3)


def test_adversarial_phase_refuses_to_resume_under_other_sample_settings(tmp_path):
  import types   # pylint: disable=g-import-not-at-top
  run = run_lib.Run(str(tmp_path / 'model'), '')
  task = lambda cfg: types.SimpleNamespace(name='adversarial', kind='adversarial', cfg=cfg)  # pylint: disable=unnecessary-lambda-assignment
  old = config_lib.make(model_dir=run.model_dir)
  # A phase folder written before the two settings existed: they ran as 'prediction'
  # and False, so the same values resume and others are refused.
  architecture = old.architecture('adversarial')
  del architecture['disc_fake_2d'], architecture['adversarial_freeze_bn']
  os.makedirs(run.phase_dir('adversarial'))
  run.write_flags('adversarial', old.to_dict(), architecture)
  run.check_compatible(task(old))
  new = config_lib.make(model_dir=run.model_dir, disc_fake_2d='truth',
                        adversarial_freeze_bn=True)
  with pytest.raises(run_lib.PhaseError,
                     match=r"disc_fake_2d: checkpoint 'prediction', now 'truth'; "
                           r"adversarial_freeze_bn: checkpoint False, now True\)"):
    run.check_compatible(task(new))
  # A folder whose settings hold the values although its architecture lists neither
  # (written by a version that had the flags but did not list them) resumes with them.
  run.write_flags('adversarial', new.to_dict(), architecture)
  run.check_compatible(task(new))
  with pytest.raises(run_lib.PhaseError, match="disc_fake_2d: checkpoint 'truth'"):
    run.check_compatible(task(old))


def test_schedule_settings_of_each_kind():
  assert config_lib.schedule_settings('pose2d') == (
      'pose2d_epochs', 'pose2d_learning_rate', 'pose2d_loss', 'batch_size',
      'steps_per_epoch', 'seed', 'augment', 'flip_swaps_red_blue', 'box_shift',
      'heatmap_sigma')
  assert config_lib.schedule_settings('adversarial')[-2:] == ('heatmap_sigma',
                                                               'coarse3d_weight')
  assert config_lib.schedule_settings('base') == (
      'base_epochs', 'regressor_batch_size', 'regressor_learning_rate', 'regressor_dropout',
      'regressor_loss', 'weighted_eps', 'weighted_max_exponent', 'gt2d_noise_px',
      'regressor_mirror', 'regressor_mirror_average', 'seed')


def test_a_resumed_phase_keeps_its_schedule_and_inputs(tmp_path):
  import types   # pylint: disable=g-import-not-at-top
  run = run_lib.Run(str(tmp_path / 'model'), '')
  inputs = {'generator_checkpoint_sha256': 'a' * 64}

  def task(cfg):
    return types.SimpleNamespace(name='adversarial', kind='adversarial', cfg=cfg,
                                 started_from=lambda: dict(inputs))

  started = config_lib.make(model_dir=run.model_dir)
  os.makedirs(run.phase_dir('adversarial'))
  run.write_flags('adversarial', started.to_dict(), started.architecture('adversarial'),
                  dict(inputs))
  # Settings that only say what to measure, or how fast, change freely.
  run.check_compatible(task(started.replace(eval_split='val', val_steps=2,
                                            mixed_precision='bfloat16')), resuming=True)
  shorter = started.replace(adversarial_epochs=2, adversarial_learning_rate=0.001,
                            batch_size=8)
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      'adversarial_epochs: checkpoint 4, now 2; adversarial_learning_rate: checkpoint '
      '0.0005, now 0.001; batch_size: checkpoint 32, now 8). Use the same flags to resume')):
    run.check_compatible(task(shorter), resuming=True)
  # Nothing to resume (no checkpoint): the phase starts afresh with them.
  run.check_compatible(task(shorter), resuming=False)
  # The generator trained again since the phase started.
  inputs['generator_checkpoint_sha256'] = 'b' * 64
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      f'(generator_checkpoint_sha256: {"a" * 16} when it started, now {"b" * 16})')):
    run.check_compatible(task(started), resuming=True)
  # A folder written before inputs were recorded resumes on its flags alone, and one
  # whose record names an input this version does not record is not held to it.
  run.write_flags('adversarial', started.to_dict(), started.architecture('adversarial'))
  run.check_compatible(task(started), resuming=True)
  run.write_flags('adversarial', started.to_dict(), started.architecture('adversarial'),
                  dict(inputs, data_manifest_sha256='c' * 64))
  run.check_compatible(task(started), resuming=True)


def test_restore_refuses_a_checkpoint_of_a_larger_network(tmp_path):
  from fbi3d.models import hourglass  # pylint: disable=g-import-not-at-top
  run = run_lib.Run(str(tmp_path / 'model'), '')
  two = hourglass.build_stacked_hourglass(16, num_stacks=2, channels=8, depth=1)
  path = tf.train.Checkpoint(network=two).save(
      os.path.join(run.phase_dir('pose2d'), 'checkpoints', 'ckpt'))
  run_lib.write_json(os.path.join(run.phase_dir('pose2d'), 'results.json'), dict(
      finished=True, checkpoint='checkpoints/ckpt-1',
      checkpoint_sha256=run_lib.checkpoint_sha256(path)))
  assert run_lib.count_network_variables(path) == len(two.variables)
  run.restore(hourglass.build_stacked_hourglass(16, num_stacks=2, channels=8, depth=1),
              'pose2d')
  # One hourglass restores from the first of two without an error of TensorFlow's.
  one = hourglass.build_stacked_hourglass(16, num_stacks=1, channels=8, depth=1)
  with pytest.raises(run_lib.PhaseError, match=re.escape(
      f'(the checkpoint holds {len(two.variables)} network variables, the network '
      f'{len(one.variables)})')):
    run.restore(one, 'pose2d')

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from fbi3d.data import pipeline
from fbi3d.training import config as config_lib
from fbi3d.training import phases
from fbi3d.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(data_dir, model_dir, **overrides):
  values = dict(
      data_dir=data_dir, model_dir=model_dir, image_size=32, batch_size=4,
      steps_per_epoch=2, val_steps=0, eval_split='train', hg_stacks=1, hg_channels=8,
      hg_depth=2, pose2d_epochs=1, gen_stacks=1, gen_channels=8, gen_depth=2, depth_bins=4,
      fbi_channels=(8, 8, 8, 8), generator_epochs=1)
  values.update(overrides)
  return config_lib.Config(**values)


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
def test_one_training_step_changes_weights_and_loss_is_finite(tiny_run, phase, overrides,
                                                              expected):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, **overrides)
  task = phases.make_task(phase, cfg)
  network = task.build_network()
  model = trainer.PhaseModel(task, network)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
  batch = next(iter(pipeline.make_dataset(data_dir, 'train', 4, image_size=32,
                                          augment=True, deterministic=True)))
  before = [v.numpy().copy() for v in network.trainable_variables]
  logs = model.train_step(batch)
  assert np.isfinite(float(logs['loss']))
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, network.trainable_variables)]
  assert sum(changed) > 0.9 * len(changed)
  assert expected <= set(logs)


def test_phase_writes_its_folder_and_generator_needs_pose2d(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir)
  with pytest.raises(trainer.PhaseError, match='--phase=pose2d'):
    trainer.run_phase(phases.make_task('generator', cfg), cfg, log=_quiet)
  results = trainer.run_phase(phases.make_task('pose2d', cfg), cfg, log=_quiet)
  folder = os.path.join(model_dir, 'pose2d')
  assert results['finished'] and results['optimizer_steps'] == 2
  assert os.path.exists(results['checkpoint'] + '.index')
  saved = json.load(open(os.path.join(folder, 'flags.json')))
  assert saved['architecture']['hg_channels'] == 8
  assert os.listdir(os.path.join(folder, 'logs'))
  assert np.isfinite(results['metrics']['error_px'])
  other = tiny_config(data_dir, model_dir, image_size=48, gen_depth=1)
  with pytest.raises(trainer.PhaseError, match='image_size'):
    trainer.run_phase(phases.make_task('generator', other), other, log=_quiet)
  gen = trainer.run_phase(phases.make_task('generator', cfg), cfg, log=_quiet)
  assert 0.0 <= gen['metrics']['fbi_accuracy'] <= 1.0
  assert len(gen['metrics']['fbi_per_bone']) == 14


class _Killed(Exception):
  pass


class _KillAfterEpoch(tf.keras.callbacks.Callback):

  def on_epoch_end(self, epoch, logs=None):
    raise _Killed(f'killed after epoch {epoch + 1}')


def test_kill_and_resume_continues_from_saved_epoch_and_step(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, pose2d_epochs=2)
  with pytest.raises(_Killed):
    trainer.run_phase(phases.make_task('pose2d', cfg), cfg, log=_quiet,
                      extra_callbacks=[_KillAfterEpoch()])
  assert trainer.read_results(cfg, 'pose2d') is None
  messages = []
  results = trainer.run_phase(phases.make_task('pose2d', cfg), cfg, log=messages.append)
  assert any('resuming' in m and '(epoch 1, optimizer step 2)' in m for m in messages)
  assert results['optimizer_steps'] == 4
  assert results['checkpoint'].endswith('ckpt-2')
  # Finished: running again trains nothing and returns the same results.
  again = trainer.run_phase(phases.make_task('pose2d', cfg), cfg, log=messages.append)
  assert again['optimizer_steps'] == 4


def test_resume_with_other_network_settings_is_refused(tiny_run):
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir)
  trainer.run_phase(phases.make_task('pose2d', cfg), cfg, log=_quiet)
  other = tiny_config(data_dir, model_dir, hg_channels=16)
  with pytest.raises(trainer.PhaseError, match='hg_channels: checkpoint 8, now 16'):
    trainer.run_phase(phases.make_task('pose2d', other), other, log=_quiet)


MIRRORED_SCRIPT = r'''
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[3])
from test_training import tiny_config
from fbi3d.training import phases, trainer
cfg = tiny_config(sys.argv[1], sys.argv[2], strategy='mirrored')
res = trainer.run_phase(phases.make_task('pose2d', cfg), cfg)
strategy = trainer.make_strategy('mirrored')
print('REPLICAS', strategy.num_replicas_in_sync, 'STEPS', res['optimizer_steps'])
'''


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus_trains(tiny_run):
  data_dir, model_dir = tiny_run
  proc = subprocess.run(
      [sys.executable, '-c', MIRRORED_SCRIPT, data_dir, model_dir,
       os.path.join(REPO, 'tests')],
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


@pytest.mark.parametrize('flag,message', [
    ('--disc_label_smoothing=nan', 'must be a finite number from 0.0 to 0.5'),
    ('--disc_label_smoothing=0.7', 'must be a finite number from 0.0 to 0.5'),
    ('--regressor_units=0', 'not a positive integer')])
def test_command_line_refuses_settings_out_of_range(tmp_path, flag, message):
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.train', '--phase=base', flag,
       f'--model_dir={tmp_path / "m"}'],
      capture_output=True, text=True, cwd=REPO, check=False, timeout=120)
  assert proc.returncode == 1
  assert message in proc.stderr
  assert not os.path.exists(tmp_path / 'm')


def _adversarial_training(tiny_run, **overrides):
  """(network, training model, its items, a batch) of an adversarial phase on a tiny run
  whose pose2d and generator phases are trained first."""
  data_dir, model_dir = tiny_run
  cfg = tiny_config(data_dir, model_dir, **overrides)
  for phase in ('pose2d', 'generator'):
    trainer.run_phase(phases.make_task(phase, cfg), cfg, log=_quiet)
  task = phases.make_task('adversarial', cfg)
  network = task.build_network()
  task.load_predecessors(network)
  model, items = task.build_training(network, 10)
  batch = next(iter(pipeline.make_dataset(data_dir, 'train', 4, image_size=32,
                                          deterministic=True)))
  return network, model, items, batch


def test_adversarial_step_changes_discriminator_and_coarse3d_only(tiny_run):
  from fbi3d.models import generator as generator_lib  # pylint: disable=g-import-not-at-top
  network, model, items, batch = _adversarial_training(tiny_run)
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


def test_adversarial_warmup_trains_only_the_discriminator_first(tiny_run):
  from fbi3d.models import generator as generator_lib  # pylint: disable=g-import-not-at-top
  network, model, items, batch = _adversarial_training(
      tiny_run, disc_warmup_steps=1, disc_label_smoothing=0.1)
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


@pytest.mark.slow
def test_every_phase_runs_in_order_and_features_cache_is_reused(trained_run):
  # trained_run (tests/conftest.py) ran every phase of phases.PHASES in order.
  cfg = trained_run
  results = {name: trainer.read_results(cfg, name) for name in phases.PHASES}
  for name, r in results.items():
    assert r['finished'], name
  feats = np.load(os.path.join(cfg.model_dir, 'features', 'train.npz'))
  assert feats['detected2d'].shape == (6, 17, 2)
  assert feats['coarse3d'].shape == (6, 17, 3)
  assert feats['fbi_probs'].shape == (6, 14, 3)
  assert list(feats['source_id']) == ['00001', '00002', '00003', '00004', '00005', '00006']
  assert results['features']['splits'] == ['train', 'val', 'test']
  for name in ('base', 'refine'):
    m = results[name]['metrics']
    assert np.isfinite(m['mpjpe_mm']) and np.isfinite(m['pa_mpjpe_mm'])
  assert results['refine']['metrics']['inputs'] == ['2d', 'coarse3d', 'fbi']
  assert 'coarse3d_mpjpe_mm_before' in results['adversarial']['metrics']
  # A second run of features finds its cache up to date.
  messages = []
  trainer.run_phase(phases.make_task('features', cfg), cfg, log=messages.append)
  assert 'features: cache in' in messages[-1]

"""Drives one phase of the task protocol (fbi3d/training/base_task.py): the checks and
set-up every phase shares, then the training loop of a TrainedTask (fit, checkpoints,
resume, final measurement) or the single pass of an InferenceTask. What a phase folder
holds is described in fbi3d/training/run.py.

A killed run started again with the same command resumes from its last checkpoint and
then trains exactly as an uninterrupted run would: the same seed gives the same weights
on the same machine (op determinism; shuffles, augmentation and dropout drawn from the
seed, the epoch and the step, and dropout's generator state kept in the checkpoint).
Training stops at the first non-finite loss or weight, keeping the last good checkpoint.
"""

import json
import math
import os
import shutil
import tempfile
import time

import tensorflow as tf

from fbi3d.data import pipeline
from fbi3d.training import base_task
from fbi3d.training import config as config_lib
from fbi3d.training import run as run_lib
from fbi3d.training import runtime


class _StopOnNonFinite(tf.keras.callbacks.Callback):
  """Stops training at the first batch whose loss is NaN or infinite, or at the end of
  an epoch whose weights are; `failure` then says where."""

  def __init__(self, phase, network):
    super().__init__()
    self.phase = phase
    self.network = network
    self.failure = None
    self._epoch = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1

  def on_train_batch_end(self, batch, logs=None):
    bad = sorted(k for k, v in (logs or {}).items()
                 if 'loss' in k and not math.isfinite(float(v)))
    if bad and self.failure is None:
      self.failure = (f'phase {self.phase}: non-finite {", ".join(bad)} at epoch '
                      f'{self._epoch}, step {batch + 1}')
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    if self.failure is None:
      bad = run_lib.count_non_finite(self.network.variables)
      if bad:
        self.failure = (f'phase {self.phase}: {bad} of {len(self.network.variables)} '
                        f'variables are NaN or infinite after epoch {epoch + 1}')
        self.model.stop_training = True


# Beside the checkpoints: the seconds of training up to the latest one, so that a resumed
# phase's train_seconds counts the time before the stop. (Not in the checkpoint itself,
# whose content hash must not depend on how fast the machine ran.)
SECONDS_FILE = 'train_seconds.json'


def seconds_before(checkpoint):
  """The seconds of training recorded for `checkpoint` (a path), or 0."""
  if not checkpoint:
    return 0.0
  try:
    with open(os.path.join(os.path.dirname(checkpoint), SECONDS_FILE)) as f:
      doc = json.load(f)
  except (OSError, ValueError):
    return 0.0
  if not isinstance(doc, dict) or doc.get('checkpoint') != os.path.basename(checkpoint):
    return 0.0
  seconds = doc.get('seconds')
  return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else 0.0


class _SaveEpoch(tf.keras.callbacks.Callback):
  """Saves network, optimizer and epoch at the end of every epoch whose training stayed
  finite, and the seconds trained up to it (SECONDS_FILE)."""

  def __init__(self, manager, epoch, guard, seconds_before=0.0):
    super().__init__()
    self.manager = manager
    self.epoch = epoch
    self.guard = guard
    self.seconds_before = seconds_before
    self.start = time.time()

  def on_train_begin(self, logs=None):
    self.start = time.time()      # as train_seconds counts: from the start of fit

  def on_epoch_end(self, epoch, logs=None):
    if self.guard.failure is None:
      self.epoch.assign(epoch + 1)
      path = self.manager.save(checkpoint_number=epoch + 1)
      run_lib.write_json(
          os.path.join(os.path.dirname(path), SECONDS_FILE),
          dict(checkpoint=os.path.basename(path),
               seconds=round(self.seconds_before + time.time() - self.start, 1)))


class _ImageSummaries(tf.keras.callbacks.Callback):
  """Writes the task's figure (predictions over crops) to TensorBoard every epoch; a
  task that draws none writes nothing."""

  def __init__(self, task, network, batch, log_dir):
    super().__init__()
    self.task = task
    self.network = network
    self.batch = batch
    self.log_dir = os.path.join(log_dir, 'images')
    self.writer = None

  def on_epoch_end(self, epoch, logs=None):
    image = self.task.figure(self.network, self.batch)
    if image is None:
      return
    if self.writer is None:
      self.writer = tf.summary.create_file_writer(self.log_dir)
    with self.writer.as_default():
      tf.summary.image(f'{self.task.name}/predictions', image[None], step=epoch + 1)
    self.writer.flush()


def run_phase(task, log=print, extra_callbacks=()):
  """Runs `task` with its settings (task.cfg): a TrainedTask trains to its section's
  epochs, resuming if a checkpoint exists, then is measured on cfg.eval_split; an
  InferenceTask produces what it writes. Either writes results.json; returns it.

  Under --strategy=multi_worker every worker trains and measures; only the chief writes
  the phase folder (flags.json, checkpoints, logs, results.json). The others save their
  checkpoints and logs to a temporary folder, removed when the phase ends, and resume
  from the chief's checkpoints (on a shared file system across machines). An
  InferenceTask runs on the chief alone; the others wait for it."""
  cfg, run = task.cfg, task.run
  directory = run.phase_dir(task.name)
  config_lib.check(cfg)
  if os.path.exists(cfg.model_dir) and not os.path.isdir(cfg.model_dir):
    raise run_lib.PhaseError(f'--model_dir={cfg.model_dir} is a file; give a folder (it is '
                             'made if missing).')
  run.check_predecessors(task)
  manifest = pipeline.load_manifest(cfg.data_dir)
  if cfg.eval_split not in manifest['splits']:
    # Found now, not after the whole phase has trained.
    raise run_lib.PhaseError(
        f'--eval_split={cfg.eval_split}: {cfg.data_dir} has no such split (it holds '
        f'{", ".join(manifest["splits"])}); measure on one of them.')
  task.check_data(manifest)
  trained = isinstance(task, base_task.TrainedTask)
  resuming = trained and bool(tf.train.latest_checkpoint(
      os.path.join(directory, run_lib.CHECKPOINTS)))
  run.check_compatible(task, resuming)
  previous = run.results(task.name)
  if trained and previous and previous.get('finished'):
    # Before flags.json is written again: it holds the inputs the phase trained on.
    reason = task.stale_reason(previous)
    if reason:
      raise run_lib.PhaseError(reason)
  # Before any network is built, also for phases that only run inference: the same
  # policy must give the same outputs whether a phase runs alone or within `all`.
  policy = runtime.set_precision(cfg.mixed_precision)
  strategy = runtime.make_strategy(cfg.strategy)
  chief = runtime.is_chief(strategy)
  if chief:
    os.makedirs(directory, exist_ok=True)
    inputs = None
    if trained:
      # A resumed or finished phase keeps the inputs it started from on record; they are
      # what a resume and a reuse are checked against.
      inputs = ((resuming or run.finished(task.name)) and run.saved_inputs(task.name)
                or task.started_from())
    run.write_flags(task.name, cfg.to_dict(), cfg.architecture(task.kind), inputs)
  if isinstance(task, base_task.InferenceTask):
    results = task.produce(manifest, log) if chief else None
    runtime.barrier(strategy)
    return results if chief else run.results(task.name)
  write_dir = directory if chief else tempfile.mkdtemp(prefix=f'fbi3d-{task.name}-worker-')
  try:
    results = _train_and_measure(task, manifest, strategy, policy, directory, write_dir,
                                 log, extra_callbacks)
  finally:
    if not chief:
      shutil.rmtree(write_dir, ignore_errors=True)
  runtime.barrier(strategy)
  return results


def _train_and_measure(task, manifest, strategy, policy, directory, write_dir, log,
                       extra_callbacks):
  """run_phase's training and measurement; checkpoints and logs go to `write_dir` (the
  phase folder on the chief), results.json to the phase folder on the chief only."""
  cfg, run = task.cfg, task.run
  chief = write_dir == directory
  epochs = task.settings.epochs
  steps = task.steps_per_epoch(manifest)
  tf.keras.utils.set_random_seed(cfg.seed)
  tf.config.experimental.enable_op_determinism()
  with strategy.scope():
    network = task.build_network()
    task.load_predecessors(network)
    model, items = task.build_training(network, epochs * steps)
    optimizer = items['optimizer']
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
    checkpoint = tf.train.Checkpoint(network=network, epoch=epoch, **items)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(write_dir, run_lib.CHECKPOINTS),
        max_to_keep=cfg.keep_checkpoints)
    latest = tf.train.latest_checkpoint(os.path.join(directory, run_lib.CHECKPOINTS))
    if latest:
      # Optimizer slots are restored when first created; a finished phase never creates
      # them, hence expect_partial (it only silences the warning about them).
      checkpoint.restore(latest).expect_partial()
      log(f'{task.name}: resuming from {latest} '
          f'(epoch {int(epoch.numpy())}, optimizer step {int(optimizer.iterations.numpy())})')
  initial_epoch = int(epoch.numpy())

  train_seconds = 0.0
  if initial_epoch < epochs:
    train = task.train_data(manifest, cfg.seed, skip_steps=initial_epoch * steps)
    with strategy.scope():
      task.prepare_fit(model, train)
    val = task.val_data(manifest)
    guard = _StopOnNonFinite(task.name, network)
    before = seconds_before(latest)
    callbacks = [guard] + task.callbacks(model) + [
        _SaveEpoch(manager, epoch, guard, before),
        tf.keras.callbacks.TensorBoard(os.path.join(write_dir, run_lib.LOGS))]
    if val is not None:
      callbacks.append(_ImageSummaries(task, network, next(iter(val)),
                                       os.path.join(write_dir, run_lib.LOGS)))
    callbacks.extend(extra_callbacks)
    log(f'{task.name}: epochs {initial_epoch + 1}..{epochs}, {steps} steps of '
        f'{task.batch_size} each, {strategy.num_replicas_in_sync} replica(s), precision '
        f'{tf.keras.mixed_precision.global_policy().name}, {network.count_params():,} parameters')
    start = time.time()
    model.fit(train, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
              validation_data=val, validation_steps=cfg.val_steps if val else None,
              callbacks=callbacks, verbose=2 if os.environ.get('CI') else 1)
    train_seconds = before + time.time() - start
    if guard.failure:
      raise run_lib.PhaseError(
          f'{guard.failure}. Training stopped; the last good checkpoint '
          f'({manager.latest_checkpoint or "none: no epoch finished"}) is kept and no '
          'results were written. The same command resumes from that checkpoint, with the '
          'same settings and data, so it meets the same batch again unless the cause has '
          'gone (the data changed, say); a resume with another learning rate is refused. '
          f'To train the phase with a lower learning rate, remove {directory} (or use a '
          'new --model_dir) and run the command with that rate.')
    weights = run_lib.weights_sha256(network)
    log(f'{task.name}: weights {weights} after optimizer step '
        f'{int(optimizer.iterations.numpy())}')
  else:
    weights = None
    log(f'{task.name}: already trained for {epochs} epochs in {directory}')

  previous = run.results(task.name) or {}
  if previous.get('finished') and previous.get('epochs') == epochs and not train_seconds:
    return previous      # run_phase refused it already if it no longer fits its inputs
  log(f'{task.name}: measuring on the {cfg.eval_split} split')
  metrics = task.evaluate(network, manifest)
  # The last checkpoint this worker saved, or (nothing trained now) the one it resumed.
  final = manager.latest_checkpoint or latest
  results = dict(
      phase=task.name, finished=True, epochs=epochs, steps_per_epoch=steps,
      optimizer_steps=int(optimizer.iterations.numpy()),
      train_seconds=round(train_seconds + previous.get('train_seconds', 0.0), 1),
      checkpoint=os.path.join(run_lib.CHECKPOINTS, os.path.basename(final)),
      checkpoint_sha256=run_lib.checkpoint_sha256(final),
      weights_sha256=weights or run_lib.weights_sha256(network),
      replicas=strategy.num_replicas_in_sync,
      config=cfg.to_dict(),
      # The margin of the converted crops, which export and predict crop pictures with.
      data_margin=manifest.get('margin'),
      # The threshold of its FBI labels, which another data set's are checked against.
      data_fbi_threshold_deg=manifest.get('fbi_threshold_deg'),
      precision=policy, eval_split=cfg.eval_split, metrics=metrics)
  if chief:
    run.write_results(task.name, results)
  log(task.format_metrics(metrics))
  return results

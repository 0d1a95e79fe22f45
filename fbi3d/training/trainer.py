"""Drives one phase: strategy, model, checkpoints, resume, fit, final evaluation.

A phase writes to <model_dir>/<phase>/:
  flags.json     the settings it ran with (architecture checked on resume)
  checkpoints/   tf.train.Checkpoint of network, optimizer and epoch (last few kept)
  logs/          TensorBoard scalars (Keras) and image summaries
  results.json   written when the phase finishes: metrics on --eval_split, and the
                 checkpoint it measured (relative to the phase folder, with a content hash)
A killed run started again with the same command resumes from its last checkpoint and
then trains exactly as an uninterrupted run would: the same seed gives the same weights
on the same machine (op determinism; shuffles, augmentation and dropout drawn from the
seed, the epoch and the step, and dropout's generator state kept in the checkpoint).
Training stops at the first non-finite loss or weight, keeping the last good checkpoint.
Checkpoints are always looked up inside the run folder, so a copied or moved run uses its
own weights, and a checkpoint that changed since its phase finished is refused.
"""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np
import tensorflow as tf

from fbi3d import optimizers
from fbi3d.data import pipeline
from fbi3d.training import config as config_lib

FLAGS_FILE = 'flags.json'
RESULTS_FILE = 'results.json'
CHECKPOINTS = 'checkpoints'
LOGS = 'logs'


class PhaseError(RuntimeError):
  """A phase cannot start; the message says why and what to run."""


def phase_dir(cfg, phase):
  """<model_dir>/<phase>; a features phase (features, features_noadv) lives in
  <features_root>/<phase> when features_root is set (fbi3d.evaluate on another data set;
  regressors trained under other seeds read the run's caches)."""
  if cfg.features_root and phase.startswith('features'):
    return os.path.join(cfg.features_root, phase)
  return os.path.join(cfg.model_dir, phase)


def read_results(cfg, phase, directory=None):
  """A phase's results.json (in `directory`, default its phase folder), or None."""
  path = os.path.join(directory or phase_dir(cfg, phase), RESULTS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_json(path, obj):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, default=_json_default)
  os.replace(tmp, path)


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f'not JSON serialisable: {type(value)}')


_MULTI_WORKER = []


def make_strategy(name):
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    gpus = tf.config.list_logical_devices('GPU')
    if gpus:
      return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices('CPU')]
    return tf.distribute.MirroredStrategy(devices=cpus)
  if name == 'multi_worker':
    if not os.environ.get('TF_CONFIG'):
      raise PhaseError('--strategy=multi_worker needs the TF_CONFIG environment variable '
                       '(cluster and task) on every worker.')
    # One per process: it starts this worker's server, which cannot start twice (every
    # phase of --phase=all shares it).
    if not _MULTI_WORKER:
      _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
    return _MULTI_WORKER[0]
  raise PhaseError(f'unknown --strategy={name!r}: use default, mirrored or multi_worker.')


def _multi_worker(strategy):
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
  """Whether this process writes the run: always, but for a multi-worker strategy's
  workers other than the chief (the task of type chief, else worker 0)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if not _multi_worker(strategy) or resolver is None or resolver.task_type is None:
    return True
  cluster = resolver.cluster_spec().as_dict()
  if 'chief' in cluster:
    return resolver.task_type == 'chief'
  return resolver.task_type == 'worker' and resolver.task_id == 0


def barrier(strategy):
  """Waits until every worker of a multi-worker strategy gets here (a collective sum of
  ones); nothing elsewhere."""
  if _multi_worker(strategy):

    @tf.function
    def count():
      ones = strategy.run(lambda: tf.constant(1.0))
      return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    count().numpy()


def weights_sha256(network):
  """Content hash of a network's weights (every variable's bytes, in order; 16 hex
  digits): equal on every worker of a multi-worker run."""
  digest = hashlib.sha256()
  for variable in network.variables:
    digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
  return digest.hexdigest()[:16]


def cpu_has_bfloat16():
  """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
  try:
    with open('/proc/cpuinfo') as f:
      flags_line = next((ln for ln in f if ln.startswith('flags')), '')
  except OSError:
    return False
  return any(flag in flags_line.split() for flag in ('avx512_bf16', 'amx_bf16'))


def set_precision(name):
  """Sets the Keras policy: none (float32), bfloat16 (mixed_bfloat16), or auto: bfloat16
  on a CPU-only machine whose CPU has native bfloat16 (where it trains about twice as
  fast), float32 elsewhere (emulated bfloat16 is slow). Returns the policy name."""
  if name == 'auto':
    bf16 = cpu_has_bfloat16() and not tf.config.list_physical_devices('GPU')
    name = 'bfloat16' if bf16 else 'none'
  policy = {'none': 'float32', 'bfloat16': 'mixed_bfloat16'}.get(name)
  if policy is None:
    raise PhaseError(f'unknown --mixed_precision={name!r}: use none, bfloat16 or auto.')
  tf.keras.mixed_precision.set_global_policy(policy)
  return policy


def phase_kind(task):
  """The kind of a phase: which settings (epochs, architecture) it reads. An ablation
  such as refine_nofbi is a phase of kind refine in a folder of its own."""
  return getattr(task, 'kind', None) or task.name


def check_predecessors(task, cfg):
  """Refuses to start when a phase this one reads is missing, unfinished or
  incompatible."""
  for required, keys in task.requires.items():
    results = read_results(cfg, required)
    if results is None or not results.get('finished'):
      raise PhaseError(
          f'phase {task.name} needs a finished {required} phase in '
          f'{phase_dir(cfg, required)}; run python -m fbi3d.train --phase={required} with '
          f'the same --model_dir first.')
    for key in keys:
      theirs = results['config'].get(key, config_lib.SAVED_BEFORE.get(key))
      ours = getattr(cfg, key)
      if isinstance(ours, tuple):
        ours = list(ours)
      if theirs != ours:
        raise PhaseError(
            f'phase {task.name}: --{key}={ours} but the {required} phase in '
            f'{phase_dir(cfg, required)} ran with {key}={theirs}; use the same value or '
            'a new --model_dir.')


def _check_compatible(task, cfg, directory):
  path = os.path.join(directory, FLAGS_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f).get('architecture', {})
  ours = config_lib.architecture(cfg, phase_kind(task))
  # A setting the saved run predates ran with its value of that time.
  saved = {k: saved.get(k, config_lib.SAVED_BEFORE.get(k)) for k in ours}
  diffs = [f'{k}: checkpoint {saved[k]!r}, now {v!r}'
           for k, v in ours.items() if saved[k] != v]
  if diffs:
    raise PhaseError(
        f'{directory} holds a {task.name} run with other network settings ('
        + '; '.join(diffs) + '). Use the same flags to resume, or a new --model_dir.')


class PhaseModel(tf.keras.Model):
  """Wraps a task's network; train_step/test_step take the pipeline's batch dicts and
  the task's losses, and track every loss and batch metric with keras.metrics.Mean."""

  def __init__(self, task, network, **kwargs):
    super().__init__(name=f'{task.name}_phase', **kwargs)
    self.task = task
    self.network = network
    self._phase_trackers = {}

  def _phase_tracker(self, name):
    if name not in self._phase_trackers:
      self._phase_trackers[name] = tf.keras.metrics.Mean(name=name)
    return self._phase_trackers[name]

  @property
  def metrics(self):
    return list(self._phase_trackers.values())

  def create_trackers(self, element_spec):
    """Creates the metrics a step will track, learned from a forward-only trace over
    batches of `element_spec`. Made inside the training step instead, their variables
    would make TensorFlow trace the whole step (gradients and optimizer) twice."""
    names = []

    def forward(batch):
      outputs, losses, _ = self._forward(batch, training=False)
      names.extend(list(losses) + ['loss'] + list(self.task.batch_metrics(outputs, batch)))
      return 0

    tf.function(forward).get_concrete_function(element_spec)
    for name in names:
      self._phase_tracker(name)

  def call(self, inputs, training=False):
    return self.network(inputs, training=training)

  def _forward(self, batch, training):
    outputs = self.network(batch['image'], training=training)
    losses = self.task.losses(outputs, batch)
    total = tf.add_n(list(losses.values()))
    return outputs, losses, total

  def _record(self, outputs, losses, total, batch):
    values = dict(losses, loss=total)
    values.update(self.task.batch_metrics(outputs, batch))
    for name, value in values.items():
      self._phase_tracker(name).update_state(value)
    return {name: t.result() for name, t in self._phase_trackers.items()}

  def train_step(self, batch):
    with tf.GradientTape() as tape:
      outputs, losses, total = self._forward(batch, training=True)
      scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
    variables = self.network.trainable_variables
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return self._record(outputs, losses, total, batch)

  def test_step(self, batch):
    outputs, losses, total = self._forward(batch, training=False)
    return self._record(outputs, losses, total, batch)


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
      bad = count_non_finite(self.network.variables)
      if bad:
        self.failure = (f'phase {self.phase}: {bad} of {len(self.network.variables)} '
                        f'variables are NaN or infinite after epoch {epoch + 1}')
        self.model.stop_training = True


class _SaveEpoch(tf.keras.callbacks.Callback):
  """Saves network, optimizer and epoch at the end of every epoch whose training stayed
  finite."""

  def __init__(self, manager, epoch, guard):
    super().__init__()
    self.manager = manager
    self.epoch = epoch
    self.guard = guard

  def on_epoch_end(self, epoch, logs=None):
    if self.guard.failure is None:
      self.epoch.assign(epoch + 1)
      self.manager.save(checkpoint_number=epoch + 1)


class _ImageSummaries(tf.keras.callbacks.Callback):
  """Writes the task's figure (predictions over crops) to TensorBoard every epoch."""

  def __init__(self, task, network, batch, log_dir):
    super().__init__()
    self.task = task
    self.network = network
    self.batch = batch
    self.writer = tf.summary.create_file_writer(os.path.join(log_dir, 'images'))

  def on_epoch_end(self, epoch, logs=None):
    image = self.task.figure(self.network, self.batch)
    with self.writer.as_default():
      tf.summary.image(f'{self.task.name}/predictions', image[None], step=epoch + 1)
    self.writer.flush()


class ImagePhase:
  """Defaults of a phase that trains one network on the image pipeline with PhaseModel
  and Adam (cosine decay). Phases override what differs."""
  name = None
  requires = {}

  def __init__(self, cfg):
    self.cfg = cfg

  @property
  def batch_size(self):
    return self.cfg.batch_size

  def check_data(self, manifest):
    if pipeline.is_lifting_only(manifest):
      raise PhaseError(
          f'phase {self.name} needs pictures, but {self.cfg.data_dir} holds lifting-only '
          f'records ({manifest.get("source", "no pictures")}); from them only the features '
          'and base phases train: python -m fbi3d.train --phase=all runs just those.')

  def load_predecessors(self, network):
    del network

  def steps_per_epoch(self, manifest):
    if self.cfg.steps_per_epoch:
      return self.cfg.steps_per_epoch
    return max(1, manifest['splits']['train']['num_examples'] // self.cfg.batch_size)

  def build_training(self, network, total_steps):
    """Returns (keras model to fit, dict of objects to checkpoint besides the network;
    'optimizer' is the one whose step is reported)."""
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        self.cfg.phase(self.name, 'learning_rate'), decay_steps=max(1, total_steps))
    optimizer = optimizers.FusedAdam(schedule)
    model = PhaseModel(self, network)
    model.compile(optimizer=optimizer)
    # Slots made now, not while the first training step is traced (see
    # PhaseModel.create_trackers).
    optimizer.build(network.trainable_variables)
    return model, {'optimizer': optimizer}

  def train_data(self, manifest, seed, skip_steps=0, threads=None):
    """The endless training stream of `seed`, from its step `skip_steps` on (a resumed
    run continues the stream where the checkpoint left it); threads: the pipeline's own
    thread pool (None: TensorFlow's)."""
    del manifest
    c = self.cfg
    return pipeline.make_dataset(
        c.data_dir, 'train', c.batch_size, image_size=c.image_size, augment=c.augment,
        augmentation=pipeline.Augmentation(flip_swaps_red_blue=c.flip_swaps_red_blue,
                                           max_shift=c.box_shift),
        shuffle=True, repeat=True, drop_remainder=True, heatmap_sigma=c.heatmap_sigma,
        seed=seed, deterministic=True, skip_batches=skip_steps, threads=threads)

  def val_data(self, manifest):
    c = self.cfg
    if not c.val_steps or 'val' not in manifest['splits']:
      return None
    return pipeline.make_dataset(c.data_dir, 'val', c.batch_size, image_size=c.image_size,
                                 heatmap_sigma=c.heatmap_sigma, deterministic=True,
                                 repeat=True, drop_remainder=True)

  def callbacks(self, model):
    """Callbacks that must run before the epoch's checkpoint is saved."""
    del model
    return []

  figure = None


def phase_config(model_dir, phase):
  """(Config, results) of a finished phase: the settings it ran with, from its
  results.json, pointed at `model_dir` (the run may have moved since). PhaseError when
  the phase has not finished."""
  results = read_results(config_lib.Config(model_dir=model_dir), phase)
  if not (results and results.get('finished') and 'config' in results):
    raise PhaseError(f'phase {phase} has not finished in {model_dir}; run python -m '
                     f'fbi3d.train --phase={phase} --model_dir={model_dir} first.')
  return config_lib.from_dict(results['config'], model_dir=model_dir), results


def file_sha256(path):
  """Content hash of a file: its sha256, the first 16 hex digits, read in blocks."""
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()[:16]


def checkpoint_sha256(path):
  """Content hash of a checkpoint: file_sha256 of its .index file (which holds a
  checksum of every saved tensor)."""
  return file_sha256(path + '.index')


def _checkpoint_path(cfg, phase, results):
  """The checkpoint a phase's results.json names, always inside the phase's own folder
  (results of older versions named it by an absolute path: only its name is used)."""
  name = results and results.get('checkpoint')
  folder = os.path.join(phase_dir(cfg, phase), CHECKPOINTS)
  if not name:
    raise PhaseError(f'no checkpoint of phase {phase} in {phase_dir(cfg, phase)}; '
                     f'run python -m fbi3d.train --phase={phase} first.')
  path = os.path.join(folder, os.path.basename(name))
  if not tf.io.gfile.exists(path + '.index'):
    raise PhaseError(f'the {phase} phase finished with checkpoint {os.path.basename(name)}, '
                     f'but {folder} does not hold it (deleted or not copied with the run); '
                     f'train the phase again: python -m fbi3d.train --phase={phase} '
                     f'--model_dir={cfg.model_dir} after removing {phase_dir(cfg, phase)}.')
  expected = results.get('checkpoint_sha256')
  if expected and checkpoint_sha256(path) != expected:
    raise PhaseError(f'the {phase} checkpoint {path} changed since the phase finished '
                     f'(content hash {checkpoint_sha256(path)}, results.json says '
                     f'{expected}); evaluate the run that made it, or train {phase} again.')
  return path


def checkpoint_record(cfg, phase):
  """{'path': relative to the run folder, 'sha256': content hash} of the checkpoint a
  finished phase is read from."""
  path = _checkpoint_path(cfg, phase, read_results(cfg, phase))
  return dict(path=os.path.relpath(path, cfg.model_dir), sha256=checkpoint_sha256(path))


def count_non_finite(variables):
  """How many of `variables` hold a NaN or an infinity."""
  return sum(1 for v in variables
             if v.dtype.is_floating and not np.isfinite(v.numpy()).all())


def restore_network(network, cfg, phase):
  """Loads the checkpoint of a finished phase into `network` (weights only); returns its
  path. PhaseError when there is none, when it does not fit the network, or when its
  weights are not finite."""
  path = _checkpoint_path(cfg, phase, read_results(cfg, phase))
  try:
    status = tf.train.Checkpoint(network=network).restore(path).expect_partial()
    status.assert_existing_objects_matched()
  except (ValueError, AssertionError, tf.errors.OpError) as e:
    detail = str(e).strip().splitlines()[0][:300]
    raise PhaseError(
        f'the {phase} checkpoint {path} does not fit the {phase} network built from '
        f'the flags in {phase_dir(cfg, phase)} ({detail}). It was made by another network '
        '(another joint count, crop size or width): evaluate the run that made it, or '
        f'train the {phase} phase again.') from e
  bad = count_non_finite(network.variables)
  if bad:
    raise PhaseError(f'the {phase} checkpoint {path} holds NaN or infinite weights ({bad} '
                     f'of {len(network.variables)} variables); train the {phase} phase '
                     'again with a lower learning rate.')
  return path


def write_results(cfg, phase, results, directory=None):
  _write_json(os.path.join(directory or phase_dir(cfg, phase), RESULTS_FILE), results)


def run_phase(task, cfg, log=print, extra_callbacks=()):
  """Trains `task` to cfg.<phase>_epochs, resuming if a checkpoint exists, then measures
  it on cfg.eval_split and writes results.json. Returns the results dict.

  Under --strategy=multi_worker every worker trains and measures; only the chief writes
  the phase folder (flags.json, checkpoints, logs, results.json). The others save their
  checkpoints and logs to a temporary folder, removed when the phase ends, and resume
  from the chief's checkpoints (on a shared file system across machines)."""
  directory = phase_dir(cfg, task.name)
  config_lib.check(cfg)
  if os.path.exists(cfg.model_dir) and not os.path.isdir(cfg.model_dir):
    raise PhaseError(f'--model_dir={cfg.model_dir} is a file; give a folder (it is made '
                     'if missing).')
  check_predecessors(task, cfg)
  manifest = pipeline.load_manifest(cfg.data_dir)
  task.check_data(manifest)
  _check_compatible(task, cfg, directory)
  # Before any network is built, also for phases that only run inference: the same
  # policy must give the same outputs whether a phase runs alone or within `all`.
  policy = set_precision(cfg.mixed_precision)
  strategy = make_strategy(cfg.strategy)
  chief = is_chief(strategy)
  if chief:
    os.makedirs(directory, exist_ok=True)
    _write_json(os.path.join(directory, FLAGS_FILE), dict(
        phase=task.name, config=dataclasses.asdict(cfg),
        architecture=config_lib.architecture(cfg, phase_kind(task))))
  if hasattr(task, 'run'):
    # Inference only: the chief computes and writes, the other workers wait for it.
    results = task.run(manifest, log) if chief else None
    barrier(strategy)
    return results if chief else read_results(cfg, task.name)
  write_dir = directory if chief else tempfile.mkdtemp(prefix=f'fbi3d-{task.name}-worker-')
  try:
    results = _train_and_measure(task, cfg, manifest, strategy, policy, directory,
                                 write_dir, log, extra_callbacks)
  finally:
    if not chief:
      shutil.rmtree(write_dir, ignore_errors=True)
  barrier(strategy)
  return results


def _train_and_measure(task, cfg, manifest, strategy, policy, directory, write_dir, log,
                       extra_callbacks):
  """run_phase's training and measurement; checkpoints and logs go to `write_dir` (the
  phase folder on the chief), results.json to the phase folder on the chief only."""
  chief = write_dir == directory
  epochs = cfg.phase(phase_kind(task), 'epochs')
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
        checkpoint, os.path.join(write_dir, CHECKPOINTS), max_to_keep=cfg.keep_checkpoints)
    latest = tf.train.latest_checkpoint(os.path.join(directory, CHECKPOINTS))
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
    if isinstance(model, PhaseModel):
      with strategy.scope():
        model.create_trackers(train.element_spec)
    val = task.val_data(manifest)
    guard = _StopOnNonFinite(task.name, network)
    callbacks = [guard] + task.callbacks(model) + [
        _SaveEpoch(manager, epoch, guard),
        tf.keras.callbacks.TensorBoard(os.path.join(write_dir, LOGS))]
    if val is not None and task.figure is not None:
      callbacks.append(_ImageSummaries(task, network, next(iter(val)),
                                       os.path.join(write_dir, LOGS)))
    callbacks.extend(extra_callbacks)
    log(f'{task.name}: epochs {initial_epoch + 1}..{epochs}, {steps} steps of '
        f'{task.batch_size} each, {strategy.num_replicas_in_sync} replica(s), precision '
        f'{tf.keras.mixed_precision.global_policy().name}, {network.count_params():,} parameters')
    start = time.time()
    model.fit(train, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
              validation_data=val, validation_steps=cfg.val_steps if val else None,
              callbacks=callbacks, verbose=2 if os.environ.get('CI') else 1)
    train_seconds = time.time() - start
    if guard.failure:
      raise PhaseError(
          f'{guard.failure}. Training stopped; the last good checkpoint '
          f'({manager.latest_checkpoint or "none: no epoch finished"}) is kept and no '
          'results were written. Lower the learning rate (or check the data), then run the '
          'same command again to resume from that checkpoint.')
    weights = weights_sha256(network)
    log(f'{task.name}: weights {weights} after optimizer step '
        f'{int(optimizer.iterations.numpy())}')
  else:
    weights = None
    log(f'{task.name}: already trained for {epochs} epochs in {directory}')

  previous = read_results(cfg, task.name) or {}
  if previous.get('finished') and previous.get('epochs') == epochs and not train_seconds:
    reason = task.stale_reason(previous) if hasattr(task, 'stale_reason') else None
    if reason:
      raise PhaseError(reason)
    return previous
  log(f'{task.name}: measuring on the {cfg.eval_split} split')
  metrics = task.evaluate(network, cfg, manifest)
  # The last checkpoint this worker saved, or (nothing trained now) the one it resumed.
  final = manager.latest_checkpoint or latest
  results = dict(
      phase=task.name, finished=True, epochs=epochs, steps_per_epoch=steps,
      optimizer_steps=int(optimizer.iterations.numpy()),
      train_seconds=round(train_seconds + previous.get('train_seconds', 0.0), 1),
      checkpoint=os.path.join(CHECKPOINTS, os.path.basename(final)),
      checkpoint_sha256=checkpoint_sha256(final),
      weights_sha256=weights or weights_sha256(network),
      replicas=strategy.num_replicas_in_sync,
      config=dataclasses.asdict(cfg),
      precision=policy, eval_split=cfg.eval_split, metrics=metrics)
  if chief:
    _write_json(os.path.join(directory, RESULTS_FILE), results)
  log(task.format_metrics(metrics))
  return results

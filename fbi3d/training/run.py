"""The run store: what a run folder holds, phase by phase, read once.

A phase writes to <model_dir>/<phase>/:
  flags.json     the settings it ran with (architecture checked on resume)
  checkpoints/   tf.train.Checkpoint of network, optimizer and epoch (last few kept)
  logs/          TensorBoard scalars (Keras) and image summaries
  results.json   written when the phase finishes: metrics on --eval_split, and the
                 checkpoint it measured (relative to the phase folder, with a content hash)
Checkpoints are always looked up inside the run folder, so a copied or moved run uses its
own weights, and a checkpoint that changed since its phase finished is refused.

`Run.of(model_dir)` gives the one store of a run folder (and features root) per process; it
keeps each results.json it has read until the file changes, so following a run through
training, evaluation and export reads every file once.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from fbi3d.data import manifest as manifest_lib
from fbi3d.training import config as config_lib

FLAGS_FILE = 'flags.json'
RESULTS_FILE = 'results.json'
CHECKPOINTS = 'checkpoints'
LOGS = 'logs'
# The phase prefix of the feature caches, which may live outside the run folder.
FEATURES_PREFIX = 'features'


class PhaseError(RuntimeError):
  """A phase cannot start or be read; the message says why and what to run."""


def write_json(path, obj):
  """Writes `obj` (NumPy numbers and arrays allowed) as indented JSON to `path`
  atomically (`manifest.write_json_atomic`)."""
  manifest_lib.write_json_atomic(path, obj, indent=2, default=_json_default)


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f'not JSON serialisable: {type(value)}')


def file_sha256(path):
  """Content hash of a file: its sha256, the first 16 hex digits, read in blocks."""
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()[:16]


def changed_inputs(started, now, when):
  """'name: recorded `when`, now value' for each input a phase recorded (`started`,
  flags.json) that is another now (`now`, task.started_from()). Only what both record
  is compared: a version that records more, or names a record otherwise, does not make
  a run of an earlier one another."""
  return [f'{k}: {str(started[k])[:16]} {when}, now {str(now[k])[:16]}'
          for k in sorted(started) if k in now and started[k] != now[k]]


def checkpoint_sha256(path):
  """Content hash of a checkpoint: file_sha256 of its .index file (which holds a
  checksum of every saved tensor)."""
  return file_sha256(path + '.index')


def weights_sha256(network):
  """Content hash of a network's weights (every variable's bytes, in order; 16 hex
  digits): equal on every worker of a multi-worker run."""
  return manifest_lib.arrays_sha256(variable.numpy() for variable in network.variables)


def count_network_variables(path):
  """How many variables of the `network` a checkpoint holds (not optimizer slots)."""
  return sum(1 for name, _ in tf.train.list_variables(path)
             if name.startswith('network/') and name.endswith('/.ATTRIBUTES/VARIABLE_VALUE')
             and '.OPTIMIZER_SLOT' not in name)


def count_non_finite(variables):
  """How many of `variables` hold a NaN or an infinity."""
  return sum(1 for v in variables
             if v.dtype.is_floating and not np.isfinite(v.numpy()).all())


class Run:
  """The phases of one run folder: their folders, settings, results and checkpoints."""

  _OPEN = {}

  def __init__(self, model_dir, features_root=''):
    self.model_dir = model_dir
    self.features_root = features_root
    # results.json path -> (the file's stat signature, its parsed contents).
    self._results = {}

  @classmethod
  def of(cls, model_dir, features_root=''):
    """The store of `model_dir` (with its features caches in `features_root`, '' for the
    run folder), one per process."""
    key = (model_dir, features_root)
    if key not in cls._OPEN:
      cls._OPEN[key] = cls(*key)
    return cls._OPEN[key]

  @classmethod
  def of_config(cls, cfg):
    """The store of the run a config names: its model_dir and features_root."""
    return cls.of(cfg.model_dir, cfg.features_root)

  def phase_dir(self, phase):
    """<model_dir>/<phase>; a features phase (features, features_noadv) lives in
    <features_root>/<phase> when features_root is set (fbi3d.evaluate on another data
    set; regressors trained under other seeds read the run's caches)."""
    if self.features_root and phase.startswith(FEATURES_PREFIX):
      return os.path.join(self.features_root, phase)
    return os.path.join(self.model_dir, phase)

  def results(self, phase):
    """A phase's results.json, or None; read again only when the file changed."""
    path = os.path.join(self.phase_dir(phase), RESULTS_FILE)
    try:
      stat = os.stat(path)
    except FileNotFoundError:
      self._results.pop(path, None)
      return None
    # A file written again, or replaced by a copy, changes its inode or change time.
    signature = (stat.st_ino, stat.st_ctime_ns, stat.st_mtime_ns, stat.st_size)
    cached = self._results.get(path)
    if cached is None or cached[0] != signature:
      with open(path) as f:
        cached = (signature, json.load(f))
      self._results[path] = cached
    return cached[1]

  def finished(self, phase):
    """Whether the phase has finished (its results.json says so)."""
    return bool((self.results(phase) or {}).get('finished'))

  def write_results(self, phase, results):
    write_json(os.path.join(self.phase_dir(phase), RESULTS_FILE), results)

  def write_flags(self, phase, config, architecture, inputs=None):
    """flags.json of a phase: its settings, its network settings and, for a trained
    phase, what it reads besides (`inputs`, checked when it resumes)."""
    doc = dict(phase=phase, config=config, architecture=architecture)
    if inputs is not None:
      doc['inputs'] = inputs
    write_json(os.path.join(self.phase_dir(phase), FLAGS_FILE), doc)

  def saved_inputs(self, phase):
    """The inputs a phase folder's flags.json records ({} when none)."""
    path = os.path.join(self.phase_dir(phase), FLAGS_FILE)
    if not os.path.exists(path):
      return {}
    with open(path) as f:
      return json.load(f).get('inputs') or {}

  def saved_architecture(self, phase):
    """The network settings a phase folder's flags.json holds (None without one): its
    architecture, and for a setting that a version listed there only later, the value
    its flat settings hold."""
    path = os.path.join(self.phase_dir(phase), FLAGS_FILE)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      doc = json.load(f)
    return dict(doc.get('config', {}), **doc.get('architecture', {}))

  def config(self, phase):
    """The Config a finished phase ran with, from its results.json, pointed at this
    model_dir (the run may have moved since). PhaseError when it has not finished."""
    results = self.results(phase)
    if not (results and results.get('finished') and 'config' in results):
      raise PhaseError(f'phase {phase} has not finished in {self.model_dir}; run python -m '
                       f'fbi3d.train --phase={phase} --model_dir={self.model_dir} first.')
    return config_lib.from_dict(results['config'], model_dir=self.model_dir)

  def latest_config(self, phases):
    """The Config of the first of `phases` that has finished with its settings saved.
    PhaseError when none has."""
    for phase in phases:
      results = self.results(phase)
      if results and results.get('finished') and 'config' in results:
        return self.config(phase)
    raise PhaseError(
        f'{self.model_dir} holds no finished phase (no <phase>/results.json): train it '
        'first, e.g. python -m fbi3d.train --flagfile=flags/quickstart.cfg --phase=all '
        f'--model_dir={self.model_dir}')

  def checkpoint_path(self, phase):
    """The checkpoint a finished phase's results.json names, always inside the phase's
    own folder (results of older versions named it by an absolute path: only its name is
    used); PhaseError when it is missing or changed since."""
    results = self.results(phase)
    name = results and results.get('checkpoint')
    folder = os.path.join(self.phase_dir(phase), CHECKPOINTS)
    if not name:
      raise PhaseError(f'no checkpoint of phase {phase} in {self.phase_dir(phase)}; '
                       f'run python -m fbi3d.train --phase={phase} first.')
    path = os.path.join(folder, os.path.basename(name))
    if not tf.io.gfile.exists(path + '.index'):
      raise PhaseError(
          f'the {phase} phase finished with checkpoint {os.path.basename(name)}, but '
          f'{folder} does not hold it (deleted or not copied with the run); train the phase '
          f'again: python -m fbi3d.train --phase={phase} --model_dir={self.model_dir} '
          f'after removing {self.phase_dir(phase)}.')
    expected = results.get('checkpoint_sha256')
    if expected and checkpoint_sha256(path) != expected:
      raise PhaseError(f'the {phase} checkpoint {path} changed since the phase finished '
                       f'(content hash {checkpoint_sha256(path)}, results.json says '
                       f'{expected}); evaluate the run that made it, or train {phase} again.')
    return path

  def checkpoint_record(self, phase):
    """{'path': relative to the run folder, 'sha256': content hash} of the checkpoint a
    finished phase is read from."""
    path = self.checkpoint_path(phase)
    return dict(path=os.path.relpath(path, self.model_dir), sha256=checkpoint_sha256(path))

  def restore(self, network, phase):
    """Loads the checkpoint of a finished phase into `network` (weights only); returns
    its path. PhaseError when there is none, when it does not fit the network, or when
    its weights are not finite."""
    path = self.checkpoint_path(phase)
    try:
      status = tf.train.Checkpoint(network=network).restore(path).expect_partial()
      status.assert_existing_objects_matched()
      # A smaller network (one hourglass where the checkpoint has two) restores without
      # a word from the part it shares: the checkpoint must hold no more of its own.
      saved = count_network_variables(path)
      if saved > len(network.variables):
        raise AssertionError(f'the checkpoint holds {saved} network variables, the network '
                             f'{len(network.variables)}')
    except (ValueError, AssertionError, tf.errors.OpError) as e:
      detail = str(e).strip().splitlines()[0][:300]
      raise PhaseError(
          f'the {phase} checkpoint {path} does not fit the {phase} network built from '
          f'the flags in {self.phase_dir(phase)} ({detail}). It was made by another network '
          '(another joint count, crop size or width): evaluate the run that made it, or '
          f'train the {phase} phase again.') from e
    bad = count_non_finite(network.variables)
    if bad:
      raise PhaseError(f'the {phase} checkpoint {path} holds NaN or infinite weights ({bad} '
                       f'of {len(network.variables)} variables); train the {phase} phase '
                       'again with a lower learning rate.')
    return path

  def check_predecessors(self, task):
    """Refuses to start `task` when a phase it reads is missing, unfinished or ran with
    other values of the settings it shares with it."""
    for required, keys in task.requires.items():
      results = self.results(required)
      if results is None or not results.get('finished'):
        raise PhaseError(
            f'phase {task.name} needs a finished {required} phase in '
            f'{self.phase_dir(required)}; run python -m fbi3d.train --phase={required} '
            'with the same --model_dir first.')
      for key in keys:
        theirs = results['config'].get(key, config_lib.SAVED_BEFORE.get(key))
        ours = task.cfg.flat(key)
        if isinstance(ours, tuple):
          ours = list(ours)
        if theirs != ours:
          raise PhaseError(
              f'phase {task.name}: --{key}={ours} but the {required} phase in '
              f'{self.phase_dir(required)} ran with {key}={theirs}; use the same value or '
              'a new --model_dir.')

  def check_compatible(self, task, resuming=False):
    """Refuses to resume `task` in a folder whose flags.json names other network
    settings; when `resuming` (a checkpoint is there), also other training settings
    (config.schedule_settings) and, before it has finished, other inputs
    (task.started_from(): the predecessors' checkpoints, the regressors' features cache)
    than the run started with."""
    saved = self.saved_architecture(task.name)
    if saved is None:
      return
    ours = task.cfg.architecture(task.kind)
    if resuming:
      ours.update({k: task.cfg.flat(k) for k in config_lib.schedule_settings(task.kind)})
    ours = {k: list(v) if isinstance(v, tuple) else v for k, v in ours.items()}
    # A setting the saved run predates ran with its value of that time; one that no
    # version saved without is not compared.
    known = {k for k in ours if k in saved or k in config_lib.SAVED_BEFORE}
    saved = {k: saved.get(k, config_lib.SAVED_BEFORE.get(k)) for k in known}
    diffs = [f'{k}: checkpoint {saved[k]!r}, now {v!r}'
             for k, v in ours.items() if k in known and saved[k] != v]
    # (A finished phase names a changed input itself: task.stale_reason.)
    if resuming and not self.finished(task.name):
      started = self.saved_inputs(task.name)
      now = task.started_from()
      diffs += changed_inputs(started, now, 'when it started')
    if diffs:
      raise PhaseError(
          f'{self.phase_dir(task.name)} holds a {task.name} run with other network, '
          'training or input settings (' + '; '.join(diffs) + '). Use the same flags to '
          f'resume it, or a new --model_dir (or remove {self.phase_dir(task.name)} to train '
          'the phase again).')

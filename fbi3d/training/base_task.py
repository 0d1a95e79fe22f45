"""The task protocol: what every phase of `python -m fbi3d.train` provides, so that the
trainer (`fbi3d.training.trainer`) only drives it.

A task holds the run's settings (`cfg`, its own section `settings`) and the run store
(`run`, fbi3d.training.run.Run). It names the phases it reads (`requires`: predecessor
-> the settings that must agree), refuses data it cannot use (`check_data`), measures
what it made (`evaluate`, written to results.json) and says it in one text
(`format_metrics`). There are two kinds:

  TrainedTask    trains a network: build_network, load_predecessors, the Keras model
                 that steps it and what to checkpoint besides (build_training), its
                 input streams (train_data, val_data), callbacks, and optionally a
                 figure of its predictions for TensorBoard. The trainer fits it,
                 checkpoints it, resumes it and then calls evaluate(network, manifest).
  InferenceTask  runs trained networks once and writes what they produce
                 (`produce(manifest, log)`), e.g. the features cache; nothing is trained.
"""

from fbi3d.training import run as run_lib


class Task:
  """A phase: its name, the settings section of its kind, and its predecessors."""
  name = None
  # The settings section it reads (Config.section) and whose network settings its
  # checkpoints must match. An ablation such as refine_nofbi is a phase of kind refine
  # in a folder of its own.
  kind = None
  requires = {}

  def __init__(self, cfg):
    self.cfg = cfg
    self.run = run_lib.Run.of_config(cfg)

  @property
  def settings(self):
    """The section of cfg this phase's kind reads (epochs, learning rate, sizes)."""
    return self.cfg.section(self.kind)

  def check_data(self, manifest):
    """Raises PhaseError (or ValueError) when the data set cannot feed this phase."""
    del manifest

  def format_metrics(self, metrics):
    """One text of the measures `evaluate` (or `produce`) returned, for the log."""
    raise NotImplementedError

  def stale_reason(self, results):
    """Why a finished run of this phase (its results.json) no longer fits what it read,
    or None."""
    del results


class TrainedTask(Task):
  """A phase that trains one network (and perhaps companions, in build_training)."""

  @property
  def batch_size(self):
    return self.cfg.batch_size

  def build_network(self):
    """The network it trains, freshly initialised, from its settings."""
    raise NotImplementedError

  def load_predecessors(self, network):
    """Sets what `network` takes from finished phases or data (weights, statistics)
    before training starts or resumes."""
    del network

  def started_from(self):
    """What the phase reads from the phases before it, by content hash: recorded when
    it starts, and a resume with other inputs is refused. Here the checkpoints of the
    phases it requires."""
    return {f'{phase}_checkpoint_sha256': self.run.checkpoint_record(phase)['sha256']
            for phase in self.requires}

  def stale_reason(self, results):
    """Why the finished run of this phase no longer fits what it read: an input it
    recorded when it started (started_from) is another now, e.g. the phase it started
    from was trained again, or the data set is another or was converted otherwise."""
    del results
    started = self.run.saved_inputs(self.name)
    now = self.started_from()
    changed = run_lib.changed_inputs(started, now, 'when it trained')
    if not changed:
      return None
    return (f'{self.name} in {self.run.phase_dir(self.name)} was trained on other inputs '
            f'than those there now ({"; ".join(changed)}): a phase it started from was '
            f'trained again since, or --data_dir={self.cfg.data_dir} is another data set '
            'or was converted with other settings. Remove that folder and train it again '
            f'(python -m fbi3d.train --phase={self.name}), use the data set it trained on, '
            'or use a new --model_dir.')

  def steps_per_epoch(self, manifest):
    raise NotImplementedError

  def build_training(self, network, total_steps):
    """Returns (the Keras model to fit, a dict of objects to checkpoint besides the
    network; 'optimizer' is the one whose step is reported)."""
    raise NotImplementedError

  def train_data(self, manifest, seed, skip_steps=0):
    """The endless training stream of `seed`, from its step `skip_steps` on."""
    raise NotImplementedError

  def val_data(self, manifest):
    """Validation batches after each epoch, or None."""
    del manifest

  def prepare_fit(self, model, train):
    """Called in the strategy's scope before the first fit of `model` on the stream
    `train` (e.g. to make its metrics before the step is traced)."""
    del model, train

  def callbacks(self, model):
    """Callbacks that must run before the epoch's checkpoint is saved."""
    del model
    return []

  def evaluate(self, network, manifest):
    """The measures (a JSON-able dict) of the trained network on cfg.eval_split."""
    raise NotImplementedError

  def figure(self, network, batch):
    """An image [H, W, 3] of the network's predictions on a validation batch, or None
    (the phase draws none)."""
    del network, batch


class InferenceTask(Task):
  """A phase that runs trained networks once and writes what they produce."""

  def produce(self, manifest, log):
    """Makes (or finds up to date) what the phase writes; returns its results dict."""
    raise NotImplementedError

"""The defaults of a phase that trains one network on the image pipeline: `PhaseModel`
(a keras.Model whose steps take the pipeline's batch dicts and the task's losses) and
`ImagePhase` (Adam with cosine decay; the augmented training stream). Phases override
what differs."""

import os

import tensorflow as tf

from fbi3d import keys
from fbi3d import optimizers
from fbi3d.data import augment as augment_lib
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import pipeline
from fbi3d.training import base_task
from fbi3d.training import run as run_lib


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
    outputs = self.network(batch[keys.IMAGE], training=training)
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


class ImagePhase(base_task.TrainedTask):
  """A phase that trains one network on crops with PhaseModel and Adam (cosine decay).
  Subclasses give build_network, losses and batch_metrics (dicts of scalars the
  PhaseModel tracks), evaluate, format_metrics and figure."""

  def check_data(self, manifest):
    if pipeline.is_lifting_only(manifest):
      raise run_lib.PhaseError(
          f'phase {self.name} needs pictures, but {self.cfg.data_dir} holds lifting-only '
          f'records ({manifest.get("source", "no pictures")}); from them only the features '
          'and base phases train: python -m fbi3d.train --phase=all runs just those.')

  def started_from(self):
    """The predecessors' checkpoints, and the data set it trains on (a hash of what its
    manifest says of the records, manifest.content_sha256): a resume, or a finished
    phase reused, on another data set, or on one converted with other settings, is
    refused; the same data set moved, or converted again alike, is not."""
    inputs = super().started_from()
    if os.path.isfile(manifest_lib.path_in(self.cfg.data_dir)):
      inputs['data_sha256'] = manifest_lib.content_sha256(
          manifest_lib.read(self.cfg.data_dir))
    return inputs

  def steps_per_epoch(self, manifest):
    if self.cfg.steps_per_epoch:
      return self.cfg.steps_per_epoch
    return max(1, manifest['splits']['train']['num_examples'] // self.cfg.batch_size)

  def losses(self, outputs, batch):
    """{name: scalar} whose sum the step minimises."""
    raise NotImplementedError

  def batch_metrics(self, outputs, batch):
    """{name: scalar} measures tracked beside the losses."""
    raise NotImplementedError

  def prepare_fit(self, model, train):
    model.create_trackers(train.element_spec)

  def build_training(self, network, total_steps):
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        self.settings.learning_rate, decay_steps=max(1, total_steps))
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
        augmentation=augment_lib.Augmentation(flip_swaps_red_blue=c.flip_swaps_red_blue,
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

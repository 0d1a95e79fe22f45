"""Phase adversarial: the coarse-3D branch fine-tuned with a conditional discriminator.

Starts from the generator phase's checkpoint. Each step first updates the
discriminator on real pairs (ground-truth pose, condition) and fake pairs (the coarse-3D
branch's output, same condition), then the coarse-3D branch on its supervised L1 loss
plus `adversarial_weight` times the adversarial loss. The FBI branch is frozen.

The coarse-3D branch outputs 2.5D (x, y in crop pixels, z in mm). The discriminator
judges 3D in millimetres, so x and y are scaled to millimetres with each example's
ground-truth scale: the least-squares factor s that maps the ground truth's
root-relative 2D (crop pixels) onto its root-relative 3D x and y (mm), a weak-perspective
reading that needs no camera. Real and fake samples are built the same way: the real
one is the ground truth's own 2.5D (crop 2D and depth) through the same scale, so a
perfect prediction gives exactly the real sample and the discriminator can only judge
the pose, not the construction (the camera-frame 3D differs from a weak-perspective
reading by about 20 mm per joint, which a discriminator learns within an epoch).

With --disc_fake_2d=truth (the flag files' setting) the fake sample takes the ground
truth's 2D and the branch's depth, so real and fake differ in depth alone: with the
branch's own 2D, a discriminator conditioned on the true 2D sees the fake's small 2D
error (about 2 px) against a real sample whose x and y are the condition's exactly, and
its gradient then moves the 2D rather than the depth (val, one seed: coarse 3D 110.7 and
bone asymmetry 42.7 mm against 113.3 and 49.4). --adversarial_freeze_bn keeps the
branch's batch normalisation as the generator phase left it: fine-tuning that updates
its statistics on batches of 16 ends 0.6 mm worse than fine-tuning that keeps them. The
two together (the flag files): 110.3 and 41.7 mm against 112.7 and 47.8, 3 seeds each.
"""

import tensorflow as tf

from fbi3d import keys
from fbi3d import optimizers
from fbi3d import skeleton
from fbi3d.models import discriminator as discriminator_lib
from fbi3d.models import generator as generator_lib
from fbi3d.training import generator as generator_phase
from fbi3d.training import run as run_lib

_bce = tf.keras.losses.BinaryCrossentropy(from_logits=True,
                                          reduction=tf.keras.losses.Reduction.NONE)


def pixel_scale_mm(pose2d, pose3d, weights):
  """Per-example mm per crop pixel [B]: argmin_s sum w |s (p - p_root) - (X, Y)|^2."""
  u = pose2d - pose2d[:, skeleton.ROOT:skeleton.ROOT + 1]
  xy = pose3d[..., :2] - pose3d[:, skeleton.ROOT:skeleton.ROOT + 1, :2]
  w = weights[..., None]
  num = tf.reduce_sum(w * u * xy, axis=[1, 2])
  den = tf.reduce_sum(w * u * u, axis=[1, 2])
  return num / tf.maximum(den, 1e-6)


def metric_pose(coarse3d, scale):
  """2.5D coarse output -> root-relative 3D in mm with per-example pixel scale [B]."""
  rel = coarse3d - coarse3d[:, skeleton.ROOT:skeleton.ROOT + 1]
  return tf.concat([rel[..., :2] * scale[:, None, None], rel[..., 2:]], axis=-1)


def real_and_fake(coarse3d, pose2d, pose3d, weights, fake_2d='prediction'):
  """The discriminator's real and fake samples [B, J, 3], mm, built alike: the ground
  truth's 2.5D (crop 2D, depth) and the coarse-3D output, each through metric_pose with
  the ground truth's pixel scale. fake_2d='truth' gives the fake the ground truth's 2D
  and the output's depth, so the two differ in depth alone."""
  scale = pixel_scale_mm(pose2d, pose3d, weights)
  real = metric_pose(tf.concat([pose2d, pose3d[..., 2:]], axis=-1), scale)
  if fake_2d == 'truth':
    coarse3d = tf.concat([pose2d, coarse3d[..., 2:]], axis=-1)
  elif fake_2d != 'prediction':
    raise ValueError(f"fake_2d must be 'prediction' or 'truth' (got {fake_2d!r})")
  return real, metric_pose(coarse3d, scale)


def freeze_batch_norm(network):
  """Every batch normalisation layer of `network` frozen: its scale and offset are no
  longer trained and, frozen, Keras runs it in inference mode, with the moving statistics
  the generator phase left. Returns how many layers were frozen."""
  count = 0
  for module in network.submodules:
    if isinstance(module, tf.keras.layers.BatchNormalization):
      module.trainable = False
      count += 1
  return count


class AdversarialModel(tf.keras.Model):
  """Generator (coarse-3D branch trainable) and discriminator, trained in turn."""

  def __init__(self, task, generator, discriminator, **kwargs):
    super().__init__(name='adversarial_phase', **kwargs)
    self.task = task
    self.generator = generator
    self.discriminator = discriminator
    names = ('d_loss', 'g_loss', 'adversarial_loss', 'coarse3d_loss', 'd_accuracy',
             'depth_error_mm')
    self.trackers = {n: tf.keras.metrics.Mean(name=n) for n in names}

  def compile(self, g_optimizer, d_optimizer, **kwargs):
    super().compile(**kwargs)
    self.g_optimizer = g_optimizer
    self.d_optimizer = d_optimizer

  @property
  def metrics(self):
    return list(self.trackers.values())

  def call(self, inputs, training=False):
    return self.generator(inputs, training=training)

  def _condition(self, batch, outputs):
    if self.task.cfg.adversarial.condition == 'features':
      return tf.stop_gradient(outputs['coarse3d_features'])
    return batch[keys.POSE2D]

  def _samples(self, outputs, batch, weights):
    return real_and_fake(outputs['coarse3d'], batch[keys.POSE2D], batch[keys.POSE3D],
                         weights, self.task.cfg.adversarial.fake_2d)

  def _step(self, batch, training):
    c = self.task.cfg.adversarial
    weights = self.task.joint_weights(batch)
    # The real sample is built from the true 2D: examples without it take no part.
    valid = batch[keys.POSE3D_VALID] * batch[keys.POSE2D_VALID]
    denom = tf.reduce_sum(valid) + 1e-6
    replicas = tf.distribute.get_strategy().num_replicas_in_sync

    # Discriminator: real (ground truth) against fake (coarse-3D output).
    outputs = self.generator(batch[keys.IMAGE], training=training)
    real, fake = self._samples(outputs, batch, weights)
    fake = tf.stop_gradient(fake)
    cond = self._condition(batch, outputs)
    with tf.GradientTape() as tape:
      real_logit = self.discriminator([real, cond], training=training)[:, 0]
      fake_logit = self.discriminator([fake, cond], training=training)[:, 0]
      real_target = tf.fill(tf.shape(real_logit), 1.0 - c.label_smoothing)
      d_loss = tf.reduce_sum(valid * (_bce(real_target[:, None], real_logit[:, None])
                                      + _bce(tf.zeros_like(fake_logit)[:, None],
                                             fake_logit[:, None]))) / denom
      d_scaled = d_loss / replicas
    if training:
      d_vars = self.discriminator.trainable_variables
      grads = tape.gradient(d_scaled, d_vars)
      self.d_optimizer.apply_gradients(zip(grads, d_vars))
    correct = (tf.cast(real_logit > 0, tf.float32) + tf.cast(fake_logit < 0, tf.float32)) / 2

    # Generator: supervised coarse-3D loss plus fooling the discriminator.
    with tf.GradientTape() as tape:
      outputs = self.generator(batch[keys.IMAGE], training=training)
      sup = self.task.coarse3d_loss(outputs, batch)
      logit = self.discriminator([self._samples(outputs, batch, weights)[1], cond],
                                 training=False)[:, 0]
      adv = tf.reduce_sum(valid * _bce(tf.ones_like(logit)[:, None], logit[:, None])) / denom
      g_loss = sup + c.weight * adv
      g_scaled = g_loss / replicas
    if training:
      g_vars = self.generator.trainable_variables
      grads = tape.gradient(g_scaled, g_vars)
      # The discriminator's own step count: it has taken this step's already.
      def update():
        self.g_optimizer.apply_gradients(zip(grads, g_vars))
        return tf.constant(True)
      tf.cond(self.d_optimizer.iterations > c.warmup_steps, update,
              lambda: tf.constant(False))

    depth = tf.abs(outputs['coarse3d'][..., 2] - batch[keys.POSE3D][..., 2])
    values = dict(d_loss=d_loss, g_loss=g_loss, adversarial_loss=adv, coarse3d_loss=sup,
                  d_accuracy=tf.reduce_sum(correct * valid) / denom,
                  depth_error_mm=tf.reduce_sum(weights * depth)
                  / (tf.reduce_sum(weights) + 1e-6))
    for name, value in values.items():
      self.trackers[name].update_state(value)
    return {name: t.result() for name, t in self.trackers.items()}

  def train_step(self, batch):
    return self._step(batch, training=True)

  def test_step(self, batch):
    return self._step(batch, training=False)


class AdversarialTask(generator_phase.GeneratorTask):
  name = 'adversarial'
  kind = 'adversarial'
  requires = {'generator': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth',
                            'depth_bins', 'depth_range_mm', 'fbi_channels', 'fbi_head')}

  def build_network(self):
    # The image-feature condition reads the coarse-3D hourglass's last features.
    return super().build_network(
        return_features=self.cfg.adversarial.condition == 'features')

  def load_predecessors(self, network):
    self.run.restore(network, 'generator')
    generator_lib.set_branch_trainable(network, 'fbi', False)
    if self.cfg.adversarial.freeze_bn:
      freeze_batch_norm(network)

  def build_training(self, network, total_steps):
    c = self.cfg.adversarial
    if c.warmup_steps >= total_steps:
      raise run_lib.PhaseError(
          f'--disc_warmup_steps={c.warmup_steps} covers the whole adversarial phase '
          f'({total_steps} steps): the generator would never be fine-tuned. Give fewer '
          'warm-up steps or more --adversarial_epochs.')
    feature_shape = None
    if c.condition == 'features':
      feature_shape = tuple(network.output['coarse3d_features'].shape[1:])
    self.discriminator = discriminator_lib.build_discriminator(
        condition=c.condition, crop_size=self.cfg.image_size, feature_shape=feature_shape,
        units=c.units)
    g_opt = optimizers.FusedAdam(tf.keras.optimizers.schedules.CosineDecay(
        c.learning_rate, decay_steps=max(1, total_steps)))
    d_opt = optimizers.FusedAdam(c.discriminator_learning_rate, beta_1=0.5)
    model = AdversarialModel(self, network, self.discriminator)
    model.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    # Slots made here, not inside the warm-up's conditional update nor while the first
    # step is traced (which would trace it twice).
    g_opt.build(network.trainable_variables)
    d_opt.build(self.discriminator.trainable_variables)
    return model, {'optimizer': g_opt, 'd_optimizer': d_opt,
                   'discriminator': self.discriminator}

  def prepare_fit(self, model, train):
    del model, train  # AdversarialModel makes its metrics when it is built

  def evaluate(self, network, manifest, boxes=None):
    out = super().evaluate(network, manifest, boxes)
    if boxes is not None:     # the generator phase measured on the converted crops
      return out
    generator = self.run.results('generator')
    before = generator['metrics']
    flip = (generator.get('config') or {}).get('flip_test', False)
    if (generator.get('eval_split', self.cfg.eval_split) != self.cfg.eval_split
        or flip != bool(self.cfg.flip_test)):
      # The generator phase was measured on another split, or with flip averaging where
      # this phase measures without (or the reverse): measure its weights here.
      task = generator_phase.GeneratorTask(self.cfg)
      net = task.build_network()
      self.run.restore(net, 'generator')
      before = task.evaluate(net, manifest)
    for key in ('coarse3d_mpjpe_mm', 'coarse3d_pa_mpjpe_mm', 'depth_error_mm',
                'fbi_accuracy', 'coarse3d_bone_asymmetry_mm'):
      if key in before:
        out[f'{key}_before'] = before[key]
    return out

  def format_metrics(self, m):
    text = super().format_metrics(m)
    if 'coarse3d_mpjpe_mm_before' in m:
      text += (f'\ncoarse-3D MPJPE before / after adversarial fine-tuning: '
               f'{m["coarse3d_mpjpe_mm_before"]:.1f} / {m["coarse3d_mpjpe_mm"]:.1f} mm')
    if 'coarse3d_bone_asymmetry_mm_before' in m:
      text += (f'\nleft/right bone-length asymmetry before / after: '
               f'{m["coarse3d_bone_asymmetry_mm_before"]:.1f} / '
               f'{m["coarse3d_bone_asymmetry_mm"]:.1f} mm (ground truth '
               f'{m["true_bone_asymmetry_mm"]:.1f} mm)')
    return text

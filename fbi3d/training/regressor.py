"""Phases base and refine: the lifting regressor on the cached features.

One code path; the phases differ only in their inputs:
  base    2D joints (34 values)
  refine  2D joints, coarse 3D (x, y crop pixels, z mm) and FBI probabilities
          (34 + 51 + 42 values)
The 2D joints are the detected ones unless --regressor_2d=gt (then ground truth, with
--gt2d_noise_px Gaussian noise added while training). The oracle rows that bound the
method read ground truth by name: `gt2d` (the ground-truth 2D joints, no noise) and
`gt_fbi` (the true FBI classes, one-hot, in place of the branch's probabilities). With
--regressor_frame=ray the network predicts each pose in its crop's ray-aligned frame
(`geometry.ray_rotations`: the camera frame turned so the crop centre is straight
ahead), which the crop alone determines, and `predict` turns it back into the camera
frame with the crop box and intrinsics; in the camera frame itself, root-relative 3D
depends on where the person is in the picture, which a crop does not show. Loss:
--regressor_loss=weighted (L0 + eps * L1, see fbi3d/losses.py; trained by
regression_model.WeightedRegressionModel) or l2. Inputs
and targets are normalised with training-split statistics stored in the network.

Ablations of Final are phases of kind refine in folders of their own (see
fbi3d/training/phases.py): other inputs, another features cache or another loss.
"""

import numpy as np
import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import flip_test
from fbi3d import geometry
from fbi3d import keys
from fbi3d import metrics as metrics_lib
from fbi3d import skeleton
from fbi3d.data import pipeline
from fbi3d.models import regressor as regressor_lib
from fbi3d.training import base_task
from fbi3d.training import features as features_phase
from fbi3d.training import regression_model
from fbi3d.training import run as run_lib

INPUTS = {'base': keys.BASE_INPUTS, 'refine': keys.FINAL_INPUTS}
# The parts of the input read from the 2D joints alone (no image model).
TWO_D_INPUTS = (keys.INPUT_2D, keys.INPUT_GT2D)


class RegressorTask(base_task.TrainedTask):
  """A regressor phase `name` of kind base or refine (the settings it reads), on
  `inputs` (default: its kind's) from the cache of the phase `features`, trained with
  `loss` (default: --regressor_loss)."""

  def __init__(self, cfg, name, kind=None, inputs=None, features='features', loss=None):
    super().__init__(cfg)
    self.name = name
    self.kind = kind or name
    self.inputs = tuple(inputs or INPUTS[self.kind])
    self.features = features
    self.loss = loss or cfg.regressor.loss
    self.requires = {features: ()}
    self._arrays = {}
    self._fit = {}

  def check_data(self, manifest):
    # The 2D in the cache is in pixels of crops of its --image_size, and the mirror
    # images (--regressor_mirror) and their averaging flip it about this run's.
    made = ((self.run.results(self.features) or {}).get('made_from') or {}).get('image_size')
    if made is not None and made != self.cfg.image_size:
      raise run_lib.PhaseError(
          f'phase {self.name}: --image_size={self.cfg.image_size} but the {self.features} '
          f'cache in {self.run.phase_dir(self.features)} holds 2D of {made}-px crops; use '
          f'--image_size={made} or a new --model_dir.')
    image_inputs = [k for k in self.inputs if k not in TWO_D_INPUTS]
    if pipeline.is_lifting_only(manifest) and image_inputs:
      raise run_lib.PhaseError(
          f'phase {self.name} reads {"+".join(image_inputs)} from the image models, but '
          f'{self.cfg.data_dir} holds lifting-only records (no pictures): train base from '
          'them, or convert a source with pictures (tools/convert_h36m.py '
          '--source=original) for refine.')

  @property
  def batch_size(self):
    return min(self.cfg.regressor.batch_size, len(self.fit_targets('train')[0]))

  def arrays(self, split, labelled_only=True):
    """(inputs [N, D], targets [N, 17, 3], cache dict) of a split's examples with 3D
    ground truth, or of all of them (labelled_only=False: targets may be zeros)."""
    key = (split, labelled_only)
    if key not in self._arrays:
      cache = features_phase.load(self.cfg, split, self.features)
      if labelled_only:
        valid = cache[keys.POSE3D_VALID] > 0
        cache = {k: v[valid] for k, v in cache.items()}
      gt2d = self.cfg.regressor.two_d == 'gt'
      self._check_true_2d(cache, split, gt2d)
      parts = {keys.INPUT_2D: cache[keys.GT2D if gt2d else keys.DETECTED2D],
               keys.INPUT_GT2D: cache[keys.GT2D],
               keys.INPUT_COARSE3D: cache[keys.COARSE3D],
               keys.INPUT_FBI: cache[keys.FBI_PROBS]}
      if keys.INPUT_GT_FBI in self.inputs:
        parts[keys.INPUT_GT_FBI] = np.eye(fbi_lib.NUM_CLASSES, dtype=np.float32)[
            cache[keys.FBI]]
      inputs = keys.regressor_input(parts, self.inputs).numpy()
      self._arrays[key] = (inputs, cache[keys.POSE3D].astype(np.float32), cache)
    return self._arrays[key]

  def _check_true_2d(self, cache, split, gt2d):
    """Refuses a row that reads the true 2D (--regressor_2d=gt, or an oracle row) when
    some of its examples have none: the records hold zeros there, and the row would
    learn from, or be measured on, people drawn at one point."""
    if not (gt2d or keys.INPUT_GT2D in self.inputs) or keys.POSE2D_VALID not in cache:
      return
    missing = int((cache[keys.POSE2D_VALID] <= 0).sum())
    if missing:
      what = '--regressor_2d=gt' if gt2d else 'an oracle row'
      raise run_lib.PhaseError(
          f'{self.name} reads the true 2D ({what}), but {missing} of the '
          f'{len(cache[keys.POSE2D_VALID])} {split} examples it reads have none '
          '(pose2d/valid 0: no META.csv 2D or --keypoints2d when converted), where the '
          'records hold zeros. Convert the data with their 2D joints'
          + (', or train with --regressor_2d=detected.' if gt2d else '.'))

  def _rotations(self, cache):
    """The ray-aligned frames of a cache's examples [N, 3, 3], or None for
    --regressor_frame=camera."""
    if self.cfg.regressor.frame != 'ray':
      return None
    if keys.CROP_BOX not in cache:
      raise run_lib.PhaseError(
          f'{self.name} predicts in the ray-aligned frame, but the {self.features} cache '
          'holds no crop boxes and intrinsics (made by an older version): run python -m '
          f'fbi3d.train --phase={self.features} again.')
    return geometry.ray_rotations(cache[keys.CROP_BOX], cache[keys.INTRINSICS])

  def fit_targets(self, split):
    """(inputs, targets) the network is fitted to: targets in its output frame; with
    --regressor_mirror the train split's examples followed by their mirror images."""
    if split not in self._fit:
      inputs, targets, cache = self.arrays(split)
      rotations = self._rotations(cache)
      if rotations is not None:
        targets = geometry.to_ray_frame(targets, rotations).astype(np.float32)
      if split == 'train' and self.cfg.regressor.mirror:
        inputs = np.concatenate([inputs, flip_test.mirror_regressor_inputs(
            inputs, self.inputs, self.cfg.image_size).numpy()])
        targets = np.concatenate([targets, flip_test.mirror_pose3d(targets)])
      self._fit[split] = (inputs, targets)
    return self._fit[split]

  def predict(self, network, inputs, cache):
    """Camera-frame 3D [N, 17, 3] (mm, root-relative) of the network on `inputs`, the
    rows of `cache` (rotated back from the ray-aligned frame where it predicts there;
    with --regressor_mirror_average the mean of its answers for the inputs and for
    those of the mirror images)."""
    if self.cfg.regressor.mirror_average:
      network = flip_test.mirror_averaged(network, self.inputs, self.cfg.image_size)
    pred = network(inputs, training=False).numpy().astype(np.float64)
    rotations = self._rotations(cache)
    return pred if rotations is None else geometry.from_ray_frame(pred, rotations)

  def _features_sha256(self):
    """The hash of the train cache in this phase's features folder, as the features
    phase recorded it (None for a cache made before it recorded one)."""
    return (self.run.results(self.features) or {}).get('train_sha256')

  def started_from(self):
    return {'features_train_sha256': self._features_sha256()}

  def stale_reason(self, results):
    """Why a finished run of this phase (its results.json) no longer fits its features
    cache, or None: the cache it learned from was made again since (other image models,
    other crops), so its predictions would be measured on inputs unlike its own."""
    current = self._features_sha256()
    learned = (results.get('metrics') or {}).get('features_train_sha256')
    if learned == current:
      return None
    if current is None and not self.run.finished(self.features):
      return (f'the {self.features} cache in {self.run.phase_dir(self.features)} that '
              f'{self.name} learned from is being made again, or was stopped while it was: '
              f'finish it (python -m fbi3d.train --phase={self.features} with the run\'s '
              'flags); if it is then the cache it learned from, it is used as it is.')
    return (f'{self.name} in {self.run.phase_dir(self.name)} was trained on '
            f'another {self.features} cache than the one there now (train.npz '
            f'{(learned or "unrecorded")[:16]}, now {(current or "unrecorded")[:16]}): the '
            'image models, the crops or flip averaging changed since. Remove that folder '
            'and train it again (python -m fbi3d.train --phase=' + self.name + '), or use a '
            'new --model_dir.')

  def build_network(self):
    r = self.cfg.regressor
    return regressor_lib.build_regressor(keys.input_size(self.inputs), hidden=r.units,
                                         dropout_rate=r.dropout, name=self.name)

  def load_predecessors(self, network):
    inputs, targets = self.fit_targets('train')
    regressor_lib.set_normalisation(network, *regressor_lib.normalisation_stats(inputs, targets))

  def steps_per_epoch(self, manifest):
    del manifest
    return max(1, len(self.fit_targets('train')[0]) // self.batch_size)

  def build_training(self, network, total_steps):
    r = self.cfg.regressor
    del total_steps
    model = regression_model.WeightedRegressionModel(
        network, loss=self.loss, eps=r.weighted_eps, max_exponent=r.weighted_max_exponent)
    optimizer = regressor_lib.regressor_optimizer(r.learning_rate)
    model.compile(optimizer=optimizer)
    # Slots made now: made while the first step is traced, they make TensorFlow trace it
    # twice.
    optimizer.build(network.trainable_variables)
    return model, {'optimizer': optimizer, 'loss_state': model}

  def callbacks(self, model):
    return [regression_model.UpdateAlpha(model)]

  def train_data(self, manifest, seed, skip_steps=0):
    """Shuffled batches of the training arrays, endless, from step `skip_steps` on; the
    order and the 2D noise (--gt2d_noise_px) depend only on the seed and the step."""
    del manifest
    inputs, targets = self.fit_targets('train')
    ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
    ds = ds.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True).repeat()
    r = self.cfg.regressor
    noise = r.gt2d_noise_px if r.two_d == 'gt' and self.inputs[0] == keys.INPUT_2D else 0.0
    ds = ds.batch(self.batch_size, drop_remainder=True).enumerate()
    if noise > 0:
      mask = np.zeros(inputs.shape[1], np.float32)
      mask[:keys.INPUT_SIZES[keys.INPUT_2D]] = noise

      def add_noise(step, batch):
        x, y = batch
        key = tf.stack([tf.cast(seed, tf.int64), step])
        return x + tf.random.stateless_normal(tf.shape(x), key) * mask, y
      ds = ds.map(add_noise)
    else:
      ds = ds.map(lambda step, batch: batch)
    return ds.skip(int(skip_steps)).prefetch(2)

  def val_data(self, manifest):
    if not self.cfg.val_steps or 'val' not in manifest['splits']:
      return None
    inputs, targets = self.fit_targets('val')
    if not len(inputs):
      return None
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).repeat().batch(
        self.batch_size)

  def evaluate(self, network, manifest):
    cfg = self.cfg
    threshold = manifest.get('fbi_threshold_deg', fbi_lib.DEFAULT_THRESHOLD_DEG)
    inputs, targets, cache = self.arrays(cfg.eval_split)
    row = dict(inputs=list(self.inputs),
               two_d='gt' if keys.INPUT_GT2D in self.inputs else cfg.regressor.two_d,
               loss=self.loss, features_train_sha256=self._features_sha256())
    if not len(targets):
      # An unlabelled split (the challenge's Test): an MPJPE of no example would be NaN.
      return dict(split=cfg.eval_split, num_examples=0,
                  note='no 3D ground truth in this split, nothing measured', **row)
    pred = self.predict(network, inputs, cache)
    err = metrics_lib.mpjpe_per_example(pred, targets)
    pa = metrics_lib.pa_mpjpe_per_example(pred, targets)
    implied, implied_per_bone = fbi_lib.fbi_accuracy(
        fbi_lib.fbi_labels(pred, threshold), cache[keys.FBI])
    table = metrics_lib.per_action_table({self.name: err}, cache[keys.ACTION])
    return dict(split=cfg.eval_split, num_examples=int(len(err)), mpjpe_mm=float(err.mean()),
                pa_mpjpe_mm=float(pa.mean()), implied_fbi_accuracy=implied,
                implied_fbi_per_bone=dict(zip(skeleton.FBI_BONE_NAMES,
                                              map(float, implied_per_bone))),
                per_action_mm={k: (None if np.isnan(v) else float(v))
                               for k, v in table.loc[self.name].items()},
                **row)

  def format_metrics(self, m):
    if 'note' in m:
      return f'{self.name} on {m["split"]}: {m["note"]}'
    return (f'{self.name} on {m["split"]} ({m["num_examples"]} examples, inputs '
            f'{"+".join(m["inputs"])}, {m["two_d"]} 2D, {m["loss"]} loss): MPJPE '
            f'{m["mpjpe_mm"]:.1f} mm, PA-MPJPE {m["pa_mpjpe_mm"]:.1f} mm, FBI accuracy '
            f'implied by its 3D {m["implied_fbi_accuracy"]:.1%}')

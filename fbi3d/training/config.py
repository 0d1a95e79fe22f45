"""The settings of a training run, as one dataclass, and the absl flags that fill it.

Each field is one flag of `python -m fbi3d.train`; `flags/quickstart.cfg` and
`flags/paper.cfg` set them for the two scales. Phase-specific fields carry the phase
name as a prefix.
"""

import dataclasses
import math
from typing import Tuple

from absl import flags


@dataclasses.dataclass
class Config:
  """Everything a phase needs; defaults are the quickstart scale."""
  # Where.
  data_dir: str = 'data/synthetic_records'
  model_dir: str = 'runs/quickstart/model'
  # Folder of the features caches (<root>/features/, <root>/features_noadv/); '' is the
  # run folder. Not a flag: fbi3d.evaluate sets it to its output folder when it measures
  # a run on another data set, so nothing in the run changes.
  features_root: str = ''
  # Common training settings.
  image_size: int = 64
  batch_size: int = 32
  steps_per_epoch: int = 0        # 0: one pass over the training split
  val_steps: int = 4
  eval_split: str = 'test'
  seed: int = 0
  keep_checkpoints: int = 3
  strategy: str = 'default'       # default | mirrored | multi_worker
  mixed_precision: str = 'none'   # none | bfloat16 | auto
  heatmap_sigma: float = 1.0
  pck_threshold: float = 0.1      # fraction of the crop side
  augment: bool = True
  flip_swaps_red_blue: bool = True
  box_shift: float = 0.0
  crops: str = 'estimated'        # estimated | gt
  # pose2d: the stacked hourglass.
  pose2d_epochs: int = 8
  pose2d_learning_rate: float = 2e-3
  pose2d_loss: str = 'integral'   # integral | heatmap
  hg_stacks: int = 2
  hg_channels: int = 64
  hg_depth: int = 3
  # generator: coarse-3D hourglass + FBI convnet.
  generator_epochs: int = 8
  generator_learning_rate: float = 2e-3
  gen_stacks: int = 1
  gen_channels: int = 64
  gen_depth: int = 3
  depth_bins: int = 16
  depth_range_mm: float = 1000.0
  fbi_channels: Tuple[int, ...] = (32, 64, 128, 256)
  fbi_head: str = 'convnet'       # convnet | joints
  coarse3d_weight: float = 1.0
  fbi_weight: float = 0.2
  # adversarial: conditional discriminator, coarse-3D branch fine-tuned.
  adversarial_epochs: int = 4
  adversarial_learning_rate: float = 5e-4
  discriminator_learning_rate: float = 2e-4
  adversarial_weight: float = 0.01
  disc_condition: str = 'pose2d'  # pose2d | features
  disc_units: int = 256
  disc_label_smoothing: float = 0.0
  disc_warmup_steps: int = 0
  # features: the cache of the regressor's inputs.
  features_generator: str = 'adversarial'  # adversarial | generator
  # base and refine: the lifting regressor.
  base_epochs: int = 60
  refine_epochs: int = 60
  regressor_batch_size: int = 64
  regressor_learning_rate: float = 1e-3
  regressor_dropout: float = 0.5
  regressor_units: int = 1024
  regressor_loss: str = 'weighted'  # weighted | l2
  weighted_eps: float = 0.001
  weighted_max_exponent: float = 5.0
  regressor_2d: str = 'detected'    # detected | gt
  regressor_frame: str = 'camera'   # camera | ray
  gt2d_noise_px: float = 0.0

  def phase(self, name, key):
    """A phase-specific setting, e.g. phase('pose2d', 'epochs')."""
    return getattr(self, f'{name}_{key}')


_HELP = {
    'data_dir': 'Converted data set (folder with manifest.json), from tools/convert_challenge.py.',
    'model_dir': 'Run folder; each phase writes to <model_dir>/<phase>/.',
    'image_size': 'Side of the square crops the image models read (a multiple of 4 * 2**depth).',
    'batch_size': 'Global batch size (split across replicas).',
    'steps_per_epoch': 'Training steps per epoch; 0 means one pass over the training split.',
    'val_steps': 'Validation batches after each epoch (0: none).',
    'eval_split': 'Split measured when a phase finishes (results.json).',
    'seed': 'Seed of initialisation, shuffling and augmentation.',
    'keep_checkpoints': 'How many of the latest checkpoints to keep.',
    'strategy': 'tf.distribute strategy: default (one device), mirrored (all local GPUs, or '
                'CPUs), multi_worker (reads TF_CONFIG).',
    'mixed_precision': 'none (float32), bfloat16 (mixed_bfloat16 policy; losses stay float32) '
                       'or auto (bfloat16 where the CPU has it natively and no GPU is used).',
    'heatmap_sigma': 'Gaussian sigma of the 2D heatmap targets, in heatmap cells.',
    'pck_threshold': 'PCK threshold as a fraction of the crop side.',
    'augment': 'Augment training batches (rotation, scale, flip, colour, occlusion).',
    'flip_swaps_red_blue': 'A horizontally flipped training crop also swaps its red and '
                           'blue channels. The synthetic renderer draws left limbs blue '
                           'and right limbs red; a flip swaps the joint labels, and this '
                           'keeps the colours agreeing with them (on real pictures it is a '
                           'harmless colour change; paper.cfg turns it off).',
    'box_shift': 'Box jitter of the image phases\' training crops: each crop moves by up to '
                 'this fraction of its side in x and in y (uniform), besides the zoom of '
                 '--augment, so that the models tolerate boxes found from estimated 2D.',
    'crops': 'Crops the features phase and the evaluation read: estimated (the 2D '
             'estimator runs on each converted crop, and the person is cropped again '
             'around the joints it found, as predict crops a picture) or gt (the '
             'converted crops, cut around the ground-truth 2D).',
    'pose2d_epochs': 'Epochs of the pose2d phase.',
    'pose2d_learning_rate': 'Adam learning rate of the pose2d phase (cosine decay to 0).',
    'pose2d_loss': 'integral: L1 on the soft-argmax of each stack\'s heatmaps, decoded by '
                   'soft-argmax (sub-pixel by construction); heatmap: mean squared error '
                   'to Gaussian targets, decoded by arg-max and a sub-cell shift.',
    'hg_stacks': 'Stacks of the 2D hourglass.',
    'hg_channels': 'Channels of the 2D hourglass.',
    'hg_depth': 'Down-sampling levels inside each hourglass of the 2D estimator.',
    'generator_epochs': 'Epochs of the generator phase.',
    'generator_learning_rate': 'Adam learning rate of the generator phase (cosine decay to 0).',
    'gen_stacks': 'Stacks of the coarse-3D hourglass.',
    'gen_channels': 'Channels of the coarse-3D hourglass.',
    'gen_depth': 'Down-sampling levels inside each coarse-3D hourglass.',
    'depth_bins': 'Depth bins of the volumetric heatmaps.',
    'depth_range_mm': 'Root-relative depth covered by the volume: [-range, range] mm.',
    'fbi_channels': 'Channels of the FBI convnet stages, comma separated (--fbi_head='
                    'convnet).',
    'fbi_head': 'convnet: the FBI branch is a convnet of its own on the image; joints: a '
                'head on the coarse-3D hourglass that reads each joint\'s features '
                'pooled under its 2D heatmap, and per bone its two joints\' features and '
                'coarse-3D difference (the backbone shared with the 2D and depth '
                'supervision).',
    'coarse3d_weight': 'Weight of the coarse-3D L1 loss (normalised coordinates).',
    'fbi_weight': 'Weight of the FBI cross-entropy loss.',
    'adversarial_epochs': 'Epochs of the adversarial phase.',
    'adversarial_learning_rate': 'Adam learning rate of the coarse-3D branch in the '
                                 'adversarial phase (cosine decay to 0).',
    'discriminator_learning_rate': 'Adam learning rate of the discriminator.',
    'adversarial_weight': 'Weight of the adversarial loss next to the supervised coarse-3D '
                          'L1 loss.',
    'disc_condition': 'What the discriminator is conditioned on: pose2d (the 2D joints) or '
                      'features (the coarse-3D hourglass features).',
    'disc_units': 'Width of the discriminator\'s layers.',
    'disc_label_smoothing': 'One-sided label smoothing: the discriminator\'s target for '
                            'real samples is 1 minus this (0: none).',
    'disc_warmup_steps': 'Steps at the start of the adversarial phase in which only the '
                         'discriminator trains, so the generator first meets a '
                         'discriminator that has learned something.',
    'features_generator': 'Which generator weights the features phase uses: adversarial '
                          '(after fine-tuning) or generator (before).',
    'base_epochs': 'Epochs of the base regressor (2D joints only).',
    'refine_epochs': 'Epochs of the refine regressor (2D joints, coarse 3D and FBI).',
    'regressor_batch_size': 'Batch size of the regressors.',
    'regressor_learning_rate': 'Adam learning rate of the regressors (x0.96 every 100k '
                               'steps).',
    'regressor_dropout': 'Dropout of the regressors: the probability of dropping a unit.',
    'regressor_units': 'Units of every hidden layer of the regressors (the paper: 1024).',
    'regressor_loss': 'weighted (L0 + eps * L1, alpha from the previous epoch) or l2.',
    'weighted_eps': 'eps of the weighted regression loss.',
    'weighted_max_exponent': 'Cap of the exponent L0 / (1 - alpha) in the weighted loss: '
                             'keeps exp() finite and the emphasis on hard examples bounded '
                             '(why 5: fbi3d/regression_loss.py).',
    'regressor_2d': 'Which 2D joints the regressors read: detected (the 2D estimator) or gt.',
    'regressor_frame': 'Frame the regressors predict in: camera, or ray (the camera frame '
                       'turned so that the crop centre is straight ahead, which a crop '
                       'determines; turned back with the crop box and intrinsics, and the '
                       'camera frame where they are unknown).',
    'gt2d_noise_px': 'Gaussian noise (pixels) added to ground-truth 2D while training.',
}

# Settings that define the networks' shapes: a checkpoint is only compatible with the
# same values.
ARCHITECTURE = {
    'pose2d': ('image_size', 'hg_stacks', 'hg_channels', 'hg_depth'),
    'generator': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth', 'depth_bins',
                  'depth_range_mm', 'fbi_channels', 'fbi_head'),
    'adversarial': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth', 'depth_bins',
                    'depth_range_mm', 'fbi_channels', 'fbi_head', 'disc_condition',
                    'disc_units'),
    'features': ('image_size', 'features_generator'),
    'base': ('regressor_2d', 'regressor_units', 'regressor_frame'),
    'refine': ('regressor_2d', 'regressor_units', 'regressor_frame'),
}

CHOICES = {
    'strategy': ['default', 'mirrored', 'multi_worker'],
    'mixed_precision': ['none', 'bfloat16', 'auto'],
    'pose2d_loss': ['integral', 'heatmap'],
    'disc_condition': ['pose2d', 'features'],
    'features_generator': ['adversarial', 'generator'],
    'regressor_loss': ['weighted', 'l2'],
    'regressor_2d': ['detected', 'gt'],
    'regressor_frame': ['camera', 'ray'],
    'crops': ['estimated', 'gt'],
    'fbi_head': ['convnet', 'joints'],
}


NOT_FLAGS = ('features_root',)

# Settings with a range of sense: (lowest, highest), both included, None for no limit;
# `POSITIVE` floats must be above their lowest. A value outside, or a float that is not
# finite, is refused when the flags are parsed and by `check` when a phase starts.
BOUNDS = {
    'batch_size': (1, None), 'regressor_batch_size': (1, None),
    'keep_checkpoints': (1, None), 'image_size': (16, None),
    'hg_stacks': (1, None), 'hg_channels': (1, None), 'hg_depth': (1, None),
    'gen_stacks': (1, None), 'gen_channels': (1, None), 'gen_depth': (1, None),
    'depth_bins': (2, None), 'disc_units': (1, None), 'regressor_units': (1, None),
    'pose2d_epochs': (1, None), 'generator_epochs': (1, None),
    'adversarial_epochs': (1, None), 'base_epochs': (1, None), 'refine_epochs': (1, None),
    'pose2d_learning_rate': (0.0, None), 'generator_learning_rate': (0.0, None),
    'adversarial_learning_rate': (0.0, None), 'discriminator_learning_rate': (0.0, None),
    'regressor_learning_rate': (0.0, None),
    'heatmap_sigma': (0.0, None), 'pck_threshold': (0.0, 1.0),
    'depth_range_mm': (0.0, None), 'weighted_eps': (0.0, None),
    'coarse3d_weight': (0.0, None), 'fbi_weight': (0.0, None),
    'adversarial_weight': (0.0, None), 'weighted_max_exponent': (0.0, None),
    'gt2d_noise_px': (0.0, None), 'regressor_dropout': (0.0, 0.95),
    'disc_label_smoothing': (0.0, 0.5), 'box_shift': (0.0, 0.5),
}
POSITIVE = ('pose2d_learning_rate', 'generator_learning_rate', 'adversarial_learning_rate',
            'discriminator_learning_rate', 'regressor_learning_rate', 'heatmap_sigma',
            'pck_threshold', 'depth_range_mm', 'weighted_eps')


def _in_range(name, value):
  low, high = BOUNDS.get(name, (0, None))
  if isinstance(value, float) and not math.isfinite(value):
    return False
  above = value > low if name in POSITIVE else value >= low
  return above and (high is None or value <= high)


def _range_text(name, value_type):
  low, high = BOUNDS.get(name, (0, None))
  kind = 'a finite number' if value_type is float else 'an integer'
  if high is not None:
    return f'{kind} {"above" if name in POSITIVE else "from"} {low} to {high}'
  return f'{kind} above {low}' if name in POSITIVE else f'{kind} from {low} up'


def check(cfg):
  """Raises ValueError naming every setting of `cfg` outside its range of sense."""
  wrong = []
  for field in dataclasses.fields(Config):
    value = getattr(cfg, field.name)
    if field.name in NOT_FLAGS or isinstance(value, (bool, str, tuple)):
      if isinstance(value, tuple) and any(v < 1 for v in value):
        wrong.append(f'--{field.name}={",".join(map(str, value))} must be positive integers')
      continue
    if not _in_range(field.name, value):
      wrong.append(f'--{field.name}={value} must be '
                   f'{_range_text(field.name, type(field.default))}')
  if wrong:
    raise ValueError('settings out of range: ' + '; '.join(wrong) + '.')


def define_flags(flag_values=flags.FLAGS):
  """Defines one absl flag per Config field in `flag_values` (call once, in the entry
  point; tools that read a flag file apart give a flags.FlagValues() of their own)."""
  for field in dataclasses.fields(Config):
    if field.name in NOT_FLAGS:
      continue
    default = field.default
    help_text = _HELP[field.name]
    if field.name in BOUNDS:
      help_text += f' ({_range_text(field.name, type(default))})'
    if field.name in CHOICES:
      flags.DEFINE_enum(field.name, default, CHOICES[field.name], help_text,
                        flag_values=flag_values)
    elif isinstance(default, bool):
      flags.DEFINE_boolean(field.name, default, help_text, flag_values=flag_values)
    elif isinstance(default, int):
      low, high = BOUNDS.get(field.name, (0, None))
      flags.DEFINE_integer(field.name, default, help_text, lower_bound=low,
                           upper_bound=high, flag_values=flag_values)
    elif isinstance(default, float):
      flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
      flags.register_validator(
          field.name, lambda v, name=field.name: _in_range(name, v),
          message=f'--{field.name} must be {_range_text(field.name, float)}.',
          flag_values=flag_values)
    elif isinstance(default, tuple):
      flags.DEFINE_list(field.name, [str(v) for v in default], help_text,
                        flag_values=flag_values)
    else:
      flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)
  flags.DEFINE_alias('loss', 'regressor_loss', flag_values=flag_values)


def from_flags(flag_values=flags.FLAGS):
  values = {}
  for field in dataclasses.fields(Config):
    if field.name in NOT_FLAGS:
      continue
    value = flag_values[field.name].value
    if isinstance(field.default, tuple):
      try:
        value = tuple(int(v) for v in value)
      except ValueError as e:
        raise ValueError(f'--{field.name} must be integers separated by commas.') from e
    values[field.name] = value
  return Config(**values)


# What a run saved before a setting existed ran with (its default may differ now).
SAVED_BEFORE = {'pose2d_loss': 'heatmap', 'regressor_units': 1024,
                'regressor_frame': 'camera', 'box_shift': 0.0, 'crops': 'gt',
                'fbi_head': 'convnet'}


def from_dict(values, **overrides):
  """A Config from saved settings (e.g. results.json['config']): lists back to tuples,
  keys this version does not know ignored, `overrides` applied."""
  fields = {f.name: f for f in dataclasses.fields(Config)}
  kept = {k: tuple(v) if isinstance(fields[k].default, tuple) else v
          for k, v in values.items() if k in fields}
  for k, v in SAVED_BEFORE.items():
    kept.setdefault(k, v)
  kept.update(overrides)
  return Config(**kept)


def architecture(cfg, phase):
  return {k: list(v) if isinstance(v, tuple) else v
          for k, v in ((k, getattr(cfg, k)) for k in ARCHITECTURE[phase])}

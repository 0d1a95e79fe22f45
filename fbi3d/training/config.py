# Over 400 lines: the help text, range and choices of every flag sit beside its setting.
"""The settings of a training run: common settings, and one section per phase.

Each setting is one flag of `python -m fbi3d.train`; `flags/quickstart.cfg` and
`flags/paper.cfg` set them for the two scales. A phase reads its own section by
attribute (`cfg.pose2d.epochs`, `cfg.regressor.units`); the flag of a section's field is
named in its metadata (`--hg_stacks` is `cfg.pose2d.stacks`). Saved settings (flags.json,
results.json) are flat, keyed by flag name, in the order of FLAG_NAMES: `to_dict` writes
them and `from_dict` reads them, also those of runs made before a setting existed.
"""

import dataclasses
import math
from typing import Tuple

from absl import flags


def _flag(name, default):
  """A section field set by the flag --name."""
  return dataclasses.field(default=default, metadata={'flag': name})


@dataclasses.dataclass(frozen=True)
class Pose2DConfig:
  """pose2d: the stacked hourglass."""
  epochs: int = _flag('pose2d_epochs', 8)
  learning_rate: float = _flag('pose2d_learning_rate', 2e-3)
  loss: str = _flag('pose2d_loss', 'integral')        # integral | heatmap
  stacks: int = _flag('hg_stacks', 2)
  channels: int = _flag('hg_channels', 64)
  depth: int = _flag('hg_depth', 3)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """generator: coarse-3D hourglass + FBI convnet."""
  epochs: int = _flag('generator_epochs', 8)
  learning_rate: float = _flag('generator_learning_rate', 2e-3)
  stacks: int = _flag('gen_stacks', 1)
  channels: int = _flag('gen_channels', 64)
  depth: int = _flag('gen_depth', 3)
  depth_bins: int = _flag('depth_bins', 16)
  depth_range_mm: float = _flag('depth_range_mm', 1000.0)
  fbi_channels: Tuple[int, ...] = _flag('fbi_channels', (32, 64, 128, 256))
  fbi_head: str = _flag('fbi_head', 'convnet')        # convnet | joints | bones
  init: str = _flag('generator_init', 'none')         # none | pose2d
  coarse3d_weight: float = _flag('coarse3d_weight', 1.0)
  fbi_weight: float = _flag('fbi_weight', 0.2)


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
  """adversarial: conditional discriminator, coarse-3D branch fine-tuned."""
  epochs: int = _flag('adversarial_epochs', 4)
  learning_rate: float = _flag('adversarial_learning_rate', 5e-4)
  discriminator_learning_rate: float = _flag('discriminator_learning_rate', 2e-4)
  weight: float = _flag('adversarial_weight', 0.01)
  condition: str = _flag('disc_condition', 'pose2d')  # pose2d | features
  units: int = _flag('disc_units', 256)
  label_smoothing: float = _flag('disc_label_smoothing', 0.0)
  warmup_steps: int = _flag('disc_warmup_steps', 0)
  fake_2d: str = _flag('disc_fake_2d', 'prediction')  # prediction | truth
  freeze_bn: bool = _flag('adversarial_freeze_bn', False)


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
  """features: the cache of the regressor's inputs."""
  generator: str = _flag('features_generator', 'adversarial')  # adversarial | generator


@dataclasses.dataclass(frozen=True)
class BaseConfig:
  """base: the regressor on the 2D joints (its other settings: RegressorConfig)."""
  epochs: int = _flag('base_epochs', 60)


@dataclasses.dataclass(frozen=True)
class RefineConfig:
  """refine: the regressor on 2D, coarse 3D and FBI (others: RegressorConfig)."""
  epochs: int = _flag('refine_epochs', 60)


@dataclasses.dataclass(frozen=True)
class RegressorConfig:
  """base and refine: the lifting regressor."""
  batch_size: int = _flag('regressor_batch_size', 64)
  learning_rate: float = _flag('regressor_learning_rate', 1e-3)
  dropout: float = _flag('regressor_dropout', 0.5)
  units: int = _flag('regressor_units', 1024)
  loss: str = _flag('regressor_loss', 'weighted')     # weighted | l2 | joint
  weighted_eps: float = _flag('weighted_eps', 0.001)
  weighted_max_exponent: float = _flag('weighted_max_exponent', 5.0)
  two_d: str = _flag('regressor_2d', 'detected')      # detected | gt
  frame: str = _flag('regressor_frame', 'camera')     # camera | ray
  gt2d_noise_px: float = _flag('gt2d_noise_px', 0.0)
  mirror: bool = _flag('regressor_mirror', False)
  mirror_average: bool = _flag('regressor_mirror_average', False)


# The sections of a Config, in the order their settings are saved.
SECTIONS = {'pose2d': Pose2DConfig, 'generator': GeneratorConfig,
            'adversarial': AdversarialConfig, 'features': FeaturesConfig,
            'base': BaseConfig, 'refine': RefineConfig, 'regressor': RegressorConfig}


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
  flip_test: bool = False
  # The phases' sections.
  pose2d: Pose2DConfig = dataclasses.field(default_factory=Pose2DConfig)
  generator: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
  adversarial: AdversarialConfig = dataclasses.field(default_factory=AdversarialConfig)
  features: FeaturesConfig = dataclasses.field(default_factory=FeaturesConfig)
  base: BaseConfig = dataclasses.field(default_factory=BaseConfig)
  refine: RefineConfig = dataclasses.field(default_factory=RefineConfig)
  regressor: RegressorConfig = dataclasses.field(default_factory=RegressorConfig)

  def section(self, kind):
    """The settings of a phase kind (pose2d, generator, adversarial, features, base,
    refine): the section whose `epochs` and learning rate it trains with."""
    return getattr(self, kind)

  def flat(self, name):
    """The value of the setting of the flag `name`."""
    section, attr = FLAG_PATHS[name]
    return getattr(getattr(self, section) if section else self, attr)

  def to_dict(self):
    """The settings as saved: flat, by flag name, in the order of FLAG_NAMES (with
    features_root), tuples as they are (JSON writes them as lists)."""
    return {name: self.flat(name) for name in FLAG_NAMES}

  def replace(self, **values):
    """A copy with the settings named by flag name changed."""
    return make(**dict(self.to_dict(), **values))

  def architecture(self, kind):
    """The settings that define the networks of a phase kind, by flag name (tuples as
    lists, as they are saved)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in ((k, self.flat(k)) for k in ARCHITECTURE[kind])}


def _flag_paths():
  paths = {}
  for field in dataclasses.fields(Config):
    if field.name in SECTIONS:
      for sub in dataclasses.fields(SECTIONS[field.name]):
        paths[sub.metadata['flag']] = (field.name, sub)
    else:
      paths[field.name] = (None, field)
  return paths


# Flag name -> (section or None, dataclasses.Field), in the saved order.
_FIELDS = _flag_paths()
FLAG_PATHS = {name: (section, field.name) for name, (section, field) in _FIELDS.items()}
FLAG_NAMES = tuple(_FIELDS)


def make(**values):
  """A Config from settings named by their flags (the defaults for the others)."""
  unknown = sorted(set(values) - set(FLAG_NAMES))
  if unknown:
    raise TypeError(f'unknown settings: {", ".join(unknown)}')
  top, sections = {}, {name: {} for name in SECTIONS}
  for name, value in values.items():
    section, attr = FLAG_PATHS[name]
    (sections[section] if section else top)[attr] = value
  return Config(**top, **{name: SECTIONS[name](**kw) for name, kw in sections.items()})


_HELP = {
    'data_dir': 'Converted data set (folder with manifest.json), from tools/convert_challenge.py.',
    'model_dir': 'Run folder; each phase writes to <model_dir>/<phase>/.',
    'image_size': 'Side of the square crops the image models read (a multiple of 4 * 2**depth).',
    'batch_size': 'Global batch size (split across replicas).',
    'steps_per_epoch': 'Training steps per epoch of the image phases (pose2d, generator, '
                       'adversarial); 0 means one pass over the training split. The '
                       'regressors always take one pass over their cached features.',
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
    'flip_test': 'Flip averaging at test time: wherever the image models run over a whole '
                 'split (the crops found, the features cache, the phases\' and the '
                 'evaluation\'s measures) and in the export (so in predict), they read each '
                 'crop and its mirror image (red and blue swapped with '
                 '--flip_swaps_red_blue, as in training) and every output is the mean of '
                 'the two, the mirror\'s turned back (fbi3d/flip_test.py): twice the '
                 'inference.',
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
    'generator_init': 'none: the coarse-3D hourglass starts from random weights; pose2d: '
                      'from the finished 2D estimator\'s (stem, hourglasses, batch '
                      'statistics; its heatmap head repeated over the depth bins), so the '
                      'branch starts with the estimator\'s 2D and depth 0 and learns depth '
                      'on top. Needs --gen_channels and --gen_depth equal to --hg_channels '
                      'and --hg_depth, and --gen_stacks at most --hg_stacks.',
    'fbi_channels': 'Channels of the FBI convnet stages, comma separated (--fbi_head='
                    'convnet).',
    'fbi_head': 'convnet: the FBI branch is a convnet of its own on the image; joints: a '
                'head on the coarse-3D hourglass that reads each joint\'s features '
                'pooled under its 2D heatmap, and per bone its two joints\' features and '
                'coarse-3D difference (the backbone shared with the 2D and depth '
                'supervision); bones: the joints head, with what lies along each bone '
                'besides (the crop\'s colour and the hourglass features at 8 points of '
                'its 2D segment).',
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
    'adversarial_freeze_bn': 'Keep the coarse-3D branch\'s batch normalisation as the '
                             'generator phase left it (its statistics and scale) while '
                             'fine-tuning, rather than updating it on the small batches.',
    'disc_fake_2d': 'The x and y of the discriminator\'s fake samples: prediction (the '
                    'coarse-3D branch\'s own 2D) or truth (the ground-truth 2D, so that '
                    'real and fake differ only in depth and the discriminator judges the '
                    'predicted depth of the true 2D pose).',
    'features_generator': 'Which generator weights the features phase uses: adversarial '
                          '(after fine-tuning) or generator (before).',
    'base_epochs': 'Epochs of the base regressor (2D joints only).',
    'refine_epochs': 'Epochs of the refine regressor (2D joints, coarse 3D and FBI).',
    'regressor_batch_size': 'Batch size of the regressors.',
    'regressor_learning_rate': 'Adam learning rate of the regressors (x0.96 every 100k '
                               'steps).',
    'regressor_dropout': 'Dropout of the regressors: the probability of dropping a unit.',
    'regressor_units': 'Units of every hidden layer of the regressors (the paper: 1024).',
    'regressor_loss': 'weighted (L0 + eps * L1, alpha from the previous epoch), l2, or joint '
                      '(the mean joint distance in mm, fbi3d/losses.py).',
    'weighted_eps': 'eps of the weighted regression loss.',
    'weighted_max_exponent': 'Cap of the exponent L0 / (1 - alpha) in the weighted loss: '
                             'keeps exp() finite and the emphasis on hard examples bounded '
                             '(why 5: fbi3d/losses.py).',
    'regressor_2d': 'Which 2D joints the regressors read: detected (the 2D estimator) or gt.',
    'regressor_frame': 'Frame the regressors predict in: camera, or ray (the camera frame '
                       'turned so that the crop centre is straight ahead, which a crop '
                       'determines; turned back with the crop box and intrinsics, and the '
                       'camera frame where they are unknown).',
    'gt2d_noise_px': 'Gaussian noise (pixels) added to ground-truth 2D while training.',
    'regressor_mirror': 'The regressors also learn from every training example mirrored '
                        'left/right (its 2D, coarse 3D and FBI inputs as those of the '
                        'mirror image, its 3D target mirrored): twice the examples per '
                        'epoch. Exact with --flip_test, whose outputs on a mirror image are '
                        'those on the crop mirrored; the 3D mirror is exact in the '
                        'ray-aligned frame (--regressor_frame=ray).',
    'regressor_mirror_average': 'The regressors\' 3D is the mean of their answer for the '
                                'inputs and, mirrored back, for the inputs of the mirror '
                                'image (in every measure, the evaluation and the export): '
                                'twice the regressor\'s arithmetic.',
}

# Settings that define the networks' shapes: a checkpoint is only compatible with the
# same values. The adversarial phase also lists what its optimizer holds (which weights
# train: --adversarial_freeze_bn) and what its samples are (--disc_fake_2d): a run
# resumed or reused under other values would mix two phases.
ARCHITECTURE = {
    'pose2d': ('image_size', 'hg_stacks', 'hg_channels', 'hg_depth'),
    'generator': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth', 'depth_bins',
                  'depth_range_mm', 'fbi_channels', 'fbi_head'),
    'adversarial': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth', 'depth_bins',
                    'depth_range_mm', 'fbi_channels', 'fbi_head', 'disc_condition',
                    'disc_units', 'disc_fake_2d', 'adversarial_freeze_bn'),
    'features': ('image_size', 'features_generator'),
    'base': ('regressor_2d', 'regressor_units', 'regressor_frame'),
    'refine': ('regressor_2d', 'regressor_units', 'regressor_frame'),
}

# What a phase kind's training depends on besides its networks (ARCHITECTURE): its
# section's settings and those of the stream it reads. A run resumed from a checkpoint
# with other values would go on under another schedule (a cosine decay already at its
# end, batches already seen, another loss), so resuming with them is refused.
_IMAGE_STREAM = ('batch_size', 'steps_per_epoch', 'seed', 'augment', 'flip_swaps_red_blue',
                 'box_shift', 'heatmap_sigma')


def schedule_settings(kind):
  """The flag names a phase kind's training depends on besides ARCHITECTURE[kind]."""
  sections = {'base': ('base', 'regressor'), 'refine': ('refine', 'regressor')}.get(
      kind, (kind,))
  names = [sub.metadata['flag'] for name in sections
           for sub in dataclasses.fields(SECTIONS[name])]
  names += ['seed'] if kind in ('base', 'refine') else list(_IMAGE_STREAM)
  if kind == 'adversarial':   # its supervised loss is the generator's, so weighted
    names.append('coarse3d_weight')
  return tuple(n for n in names if n not in ARCHITECTURE.get(kind, ()))


CHOICES = {
    'strategy': ['default', 'mirrored', 'multi_worker'],
    'mixed_precision': ['none', 'bfloat16', 'auto'],
    'pose2d_loss': ['integral', 'heatmap'],
    'disc_condition': ['pose2d', 'features'],
    'disc_fake_2d': ['prediction', 'truth'],
    'features_generator': ['adversarial', 'generator'],
    # fbi3d.losses.LOSSES, spelled out so that this module does not load TensorFlow.
    'regressor_loss': ['weighted', 'l2', 'joint'],
    'regressor_2d': ['detected', 'gt'],
    'regressor_frame': ['camera', 'ray'],
    'crops': ['estimated', 'gt'],
    'fbi_head': ['convnet', 'joints', 'bones'],
    'generator_init': ['none', 'pose2d'],
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
  """Raises ValueError naming every setting of `cfg` outside its range of sense (and
  --generator_init=pose2d with hourglasses of other shapes)."""
  wrong = []
  for name, (_, field) in _FIELDS.items():
    value = cfg.flat(name)
    if name in NOT_FLAGS or isinstance(value, (bool, str, tuple)):
      if isinstance(value, tuple) and (not value or any(v < 1 for v in value)):
        wrong.append(f'--{name}={",".join(map(str, value))} must be positive integers '
                     '(at least one)')
      continue
    if not _in_range(name, value):
      wrong.append(f'--{name}={value} must be {_range_text(name, type(field.default))}')
  g, p = cfg.generator, cfg.pose2d
  if g.init == 'pose2d' and ((g.channels, g.depth) != (p.channels, p.depth)
                             or g.stacks > p.stacks):
    wrong.append(f'--generator_init=pose2d needs --gen_channels={g.channels} and '
                 f'--gen_depth={g.depth} equal to --hg_channels={p.channels} and '
                 f'--hg_depth={p.depth}, and --gen_stacks={g.stacks} at most '
                 f'--hg_stacks={p.stacks} (or --generator_init=none)')
  if wrong:
    raise ValueError('settings out of range: ' + '; '.join(wrong) + '.')


def define_flags(flag_values=flags.FLAGS):
  """Defines one absl flag per setting in `flag_values` (call once, in the entry
  point; tools that read a flag file apart give a flags.FlagValues() of their own)."""
  for name, (_, field) in _FIELDS.items():
    if name in NOT_FLAGS:
      continue
    default = field.default
    help_text = _HELP[name]
    if name in BOUNDS:
      help_text += f' ({_range_text(name, type(default))})'
    if name in CHOICES:
      flags.DEFINE_enum(name, default, CHOICES[name], help_text, flag_values=flag_values)
    elif isinstance(default, bool):
      flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
    elif isinstance(default, int):
      low, high = BOUNDS.get(name, (0, None))
      flags.DEFINE_integer(name, default, help_text, lower_bound=low, upper_bound=high,
                           flag_values=flag_values)
    elif isinstance(default, float):
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
      flags.register_validator(
          name, lambda v, name=name: _in_range(name, v),
          message=f'--{name} must be {_range_text(name, float)}.', flag_values=flag_values)
    elif isinstance(default, tuple):
      flags.DEFINE_list(name, [str(v) for v in default], help_text, flag_values=flag_values)
    else:
      flags.DEFINE_string(name, default, help_text, flag_values=flag_values)
  flags.DEFINE_alias('loss', 'regressor_loss', flag_values=flag_values)


def from_flags(flag_values=flags.FLAGS):
  values = {}
  for name, (_, field) in _FIELDS.items():
    if name in NOT_FLAGS:
      continue
    value = flag_values[name].value
    if isinstance(field.default, tuple):
      try:
        value = tuple(int(v) for v in value)
      except ValueError as e:
        raise ValueError(f'--{name} must be integers separated by commas.') from e
    values[name] = value
  return make(**values)


# What a run saved before a setting existed ran with (its default may differ now).
SAVED_BEFORE = {'pose2d_loss': 'heatmap', 'regressor_units': 1024,
                'regressor_frame': 'camera', 'box_shift': 0.0, 'crops': 'gt',
                'flip_test': False, 'regressor_mirror': False,
                'regressor_mirror_average': False,
                'fbi_head': 'convnet', 'disc_fake_2d': 'prediction',
                'adversarial_freeze_bn': False, 'generator_init': 'none'}


def from_dict(values, **overrides):
  """A Config from saved settings (e.g. results.json['config'], flat by flag name):
  lists back to tuples, keys this version does not know ignored, settings the saved run
  predates set to SAVED_BEFORE, `overrides` (by flag name) applied."""
  kept = {k: tuple(v) if isinstance(_FIELDS[k][1].default, tuple) else v
          for k, v in values.items() if k in _FIELDS}
  for k, v in SAVED_BEFORE.items():
    kept.setdefault(k, v)
  kept.update(overrides)
  return make(**kept)

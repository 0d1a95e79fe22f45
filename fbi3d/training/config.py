"""The settings of a training run, as one dataclass, and the absl flags that fill it.

Each field is one flag of `python -m fbi3d.train`; `flags/quickstart.cfg` and
`flags/paper.cfg` set them for the two scales. Phase-specific fields carry the phase
name as a prefix.
"""

import dataclasses
from typing import Tuple

from absl import flags


@dataclasses.dataclass
class Config:
  """Everything a phase needs; defaults are the quickstart scale."""
  # Where.
  data_dir: str = 'data/synthetic_records'
  model_dir: str = 'runs/quickstart/model'
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
  # pose2d: the stacked hourglass.
  pose2d_epochs: int = 8
  pose2d_learning_rate: float = 2e-3
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
  coarse3d_weight: float = 1.0
  fbi_weight: float = 0.2

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
    'pose2d_epochs': 'Epochs of the pose2d phase.',
    'pose2d_learning_rate': 'Adam learning rate of the pose2d phase (cosine decay to 0).',
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
    'fbi_channels': 'Channels of the FBI convnet stages, comma separated.',
    'coarse3d_weight': 'Weight of the coarse-3D L1 loss (normalised coordinates).',
    'fbi_weight': 'Weight of the FBI cross-entropy loss.',
}

# Settings that define the networks' shapes: a checkpoint is only compatible with the
# same values.
ARCHITECTURE = {
    'pose2d': ('image_size', 'hg_stacks', 'hg_channels', 'hg_depth'),
    'generator': ('image_size', 'gen_stacks', 'gen_channels', 'gen_depth', 'depth_bins',
                  'depth_range_mm', 'fbi_channels'),
}


def define_flags():
  """Defines one absl flag per Config field (call once, in the entry point)."""
  for field in dataclasses.fields(Config):
    default = field.default
    help_text = _HELP[field.name]
    if field.name in ('strategy',):
      flags.DEFINE_enum(field.name, default, ['default', 'mirrored', 'multi_worker'],
                        help_text)
    elif field.name == 'mixed_precision':
      flags.DEFINE_enum(field.name, default, ['none', 'bfloat16', 'auto'], help_text)
    elif isinstance(default, bool):
      flags.DEFINE_boolean(field.name, default, help_text)
    elif isinstance(default, int):
      flags.DEFINE_integer(field.name, default, help_text, lower_bound=0)
    elif isinstance(default, float):
      flags.DEFINE_float(field.name, default, help_text)
    elif isinstance(default, tuple):
      flags.DEFINE_list(field.name, [str(v) for v in default], help_text)
    else:
      flags.DEFINE_string(field.name, default, help_text)


def from_flags(flag_values=flags.FLAGS):
  values = {}
  for field in dataclasses.fields(Config):
    value = flag_values[field.name].value
    if isinstance(field.default, tuple):
      try:
        value = tuple(int(v) for v in value)
      except ValueError as e:
        raise ValueError(f'--{field.name} must be integers separated by commas.') from e
    values[field.name] = value
  return Config(**values)


def architecture(cfg, phase):
  return {k: list(v) if isinstance(v, tuple) else v
          for k, v in ((k, getattr(cfg, k)) for k in ARCHITECTURE[phase])}

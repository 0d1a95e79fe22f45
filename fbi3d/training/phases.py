"""The phases `python -m fbi3d.train --phase=...` knows, in the order they run."""

import functools

from fbi3d.training import adversarial
from fbi3d.training import features
from fbi3d.training import generator
from fbi3d.training import pose2d
from fbi3d.training import regressor

PHASES = {
    'pose2d': pose2d.Pose2DTask,
    'generator': generator.GeneratorTask,
    'adversarial': adversarial.AdversarialTask,
    'features': features.FeaturesTask,
    'base': functools.partial(regressor.RegressorTask, name='base'),
    'refine': functools.partial(regressor.RegressorTask, name='refine'),
}
ALL = 'all'


def make_task(name, cfg):
  if name not in PHASES:
    raise ValueError(f'unknown phase {name!r}; phases: {", ".join(PHASES)}, {ALL}')
  return PHASES[name](cfg)

"""The phases `python -m fbi3d.train --phase=...` knows, in the order they run."""

from fbi3d.training import generator
from fbi3d.training import pose2d

PHASES = {
    'pose2d': pose2d.Pose2DTask,
    'generator': generator.GeneratorTask,
}


def make_task(name, cfg):
  if name not in PHASES:
    raise ValueError(f'unknown phase {name!r}; phases: {", ".join(PHASES)}')
  return PHASES[name](cfg)

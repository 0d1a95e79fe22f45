"""The image models of a run measured on a split: the 2D estimator (error, PCK) and the
coarse-3D and FBI branches under the generator's and the adversarial phase's weights.
Outputs that a current features cache already holds are measured from there instead of
running the networks again: the same numbers.
"""

import dataclasses

import numpy as np

from fbi3d import keys
from fbi3d.training import features as features_phase
from fbi3d.training import generator as generator_phase
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib


def crop_boxes(cfg, cache):
  """The crops the image models read (the features cache's boxes), or None for the
  converted crops."""
  return cache[keys.BOX] if cfg.crops == 'estimated' else None


def cached_outputs(cfg, split, cache):
  """{generator phase: its features cache of `split`} for every features cache whose
  outputs are those of the run's current weights on the crops `cache` was made on: the
  image models need not run again to be measured."""
  run = run_lib.Run.of_config(cfg)
  out = {}
  for name in ('features', 'features_noadv'):
    results = run.results(name)
    if not (results and results.get('finished')):
      continue
    made = results['made_from']
    task = features_phase.FeaturesTask(cfg, name, made.get('generator_phase'))
    current = (not made.get('records') and task.stale_images_reason(made) is None
               and made.get('crops', 'gt') == cfg.crops
               and made.get('flip_test', False) == bool(cfg.flip_test) and 'visible' in cache)
    if not current:
      continue
    arrays = cache if name == 'features' else features_phase.load(cfg, split, name)
    if np.array_equal(arrays[keys.SOURCE_ID], cache[keys.SOURCE_ID]):
      out[made['generator_phase']] = arrays
  return out


def measure(cfg, split, manifest, boxes, log, cache=None):
  """The 2D estimator and the coarse-3D / FBI branches measured on the split, on the
  crops `boxes` (None: the converted crops). Outputs held in a current features cache
  (`cached_outputs`; `cache` is the split's features cache) are measured from there
  instead of running the networks again: the same numbers."""
  run = run_lib.Run.of_config(cfg)
  split_cfg = dataclasses.replace(cfg, eval_split=split)
  cached = cached_outputs(cfg, split, cache) if cache is not None else {}
  out = {}
  task = pose2d_phase.Pose2DTask(split_cfg)
  if cached:
    arrays = next(iter(cached.values()))
    gt = {keys.POSE2D: arrays[keys.GT2D], keys.VISIBLE: arrays[keys.VISIBLE],
          keys.POSE2D_VALID: arrays[keys.POSE2D_VALID]}
    out['pose2d'] = task.metrics_of(arrays[keys.DETECTED2D], gt, manifest, boxes)
  else:
    network = task.build_network()
    run.restore(network, 'pose2d')
    log(f'evaluate: 2D estimator over {split}')
    out['pose2d'] = task.evaluate(network, manifest, boxes)
  task = generator_phase.GeneratorTask(split_cfg)
  for phase in ('generator', 'adversarial'):
    if not (run.results(phase) or {}).get('finished'):
      continue
    if phase in cached:
      a = cached[phase]
      gt = {name: a[name] for name in (keys.POSE3D_VALID, keys.POSE3D, keys.FBI,
                                       keys.CROP_BOX, keys.INTRINSICS)}
      if keys.POSE2D_VALID in a:
        gt[keys.POSE2D_VALID] = a[keys.POSE2D_VALID]
      gt[keys.POSE2D] = a[keys.GT2D]
      out[phase] = task.metrics_of({'coarse3d': a[keys.COARSE3D], 'fbi': a[keys.FBI_PROBS]},
                                   gt, manifest, boxes)
      continue
    network = task.build_network()
    run.restore(network, phase)
    log(f'evaluate: coarse-3D and FBI branches ({phase} weights) over {split}')
    out[phase] = task.evaluate(network, manifest, boxes)
  return out

"""The image models of a run measured on a split: the 2D estimator (error, PCK) and the
coarse-3D and FBI branches under the generator's and the adversarial phase's weights.
Outputs that a current features cache already holds are measured from there instead of
running the networks again: the same numbers.
"""

import dataclasses

import numpy as np

from fbi3d.training import features as features_phase
from fbi3d.training import generator as generator_phase
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib


def crop_boxes(cfg, cache):
  """The crops the image models read (the features cache's boxes), or None for the
  converted crops."""
  return cache['box'] if cfg.crops == 'estimated' else None


def cached_outputs(cfg, split, cache):
  """{generator phase: its features cache of `split`} for every features cache whose
  outputs are those of the run's current weights on the crops `cache` was made on: the
  image models need not run again to be measured."""
  run = run_lib.Run.of(cfg.model_dir, cfg.features_root)
  out = {}
  for name in ('features', 'features_noadv'):
    results = run.results(name)
    if not (results and results.get('finished')):
      continue
    made = results['made_from']
    current = (made.get('pose2d') == run.checkpoint_record('pose2d') and
               made.get('generator') == run.checkpoint_record(made['generator_phase'])
               and made.get('crops', 'gt') == cfg.crops and 'visible' in cache)
    if not current:
      continue
    arrays = cache if name == 'features' else features_phase.load(cfg, split, name)
    if np.array_equal(arrays['source_id'], cache['source_id']):
      out[made['generator_phase']] = arrays
  return out


def measure(cfg, split, manifest, boxes, log, cache=None):
  """The 2D estimator and the coarse-3D / FBI branches measured on the split, on the
  crops `boxes` (None: the converted crops). Outputs held in a current features cache
  (`cached_outputs`; `cache` is the split's features cache) are measured from there
  instead of running the networks again: the same numbers."""
  run = run_lib.Run.of(cfg.model_dir, cfg.features_root)
  split_cfg = dataclasses.replace(cfg, eval_split=split)
  cached = cached_outputs(cfg, split, cache) if cache is not None else {}
  out = {}
  task = pose2d_phase.Pose2DTask(split_cfg)
  if cached:
    arrays = next(iter(cached.values()))
    gt = dict(pose2d=arrays['gt2d'], visible=arrays['visible'],
              pose2d_valid=arrays['pose2d_valid'])
    out['pose2d'] = task.metrics_of(arrays['detected2d'], gt, manifest, boxes)
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
      gt = dict(pose3d_valid=a['pose3d_valid'], pose2d=a['gt2d'], pose3d=a['pose3d'],
                fbi=a['fbi'], crop_box=a['crop_box'], intrinsics=a['intrinsics'])
      out[phase] = task.metrics_of(dict(coarse3d=a['coarse3d'], fbi=a['fbi_probs']), gt,
                                   manifest, boxes)
      continue
    network = task.build_network()
    run.restore(network, phase)
    log(f'evaluate: coarse-3D and FBI branches ({phase} weights) over {split}')
    out[phase] = task.evaluate(network, manifest, boxes)
  return out

"""Crops the system finds itself.

The converted crops are cut around the ground-truth 2D joints. With --crops=estimated the
2D estimator first runs over each converted crop, and the person is cropped again: the
square around the joints it found, with the converter's margin (manifest['margin']), the
same rule by which `predict` crops a picture around the estimator's joints. The image
models then read that crop, so no ground truth decides where they look.
"""

import os

import numpy as np

from fbi3d import flip_test
from fbi3d import geometry
from fbi3d import keys
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import pipeline
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib
from fbi3d.training import split_outputs

# The converter's default margin, for a manifest that does not name its own.
DEFAULT_MARGIN = 0.2


def trained_margin(run, data_dir):
  """The margin of the crops a run's image models learned from: recorded by its pose2d
  phase (results 'data_margin'), else the margin its data set's manifest names (a run
  trained before the record), else DEFAULT_MARGIN when that data set is gone too."""
  recorded = (run.results('pose2d') or {}).get('data_margin')
  if recorded is not None:
    return float(recorded)
  try:
    return float(manifest_lib.read(data_dir).get('margin', DEFAULT_MARGIN))
  except (OSError, ValueError, AttributeError, TypeError):
    return DEFAULT_MARGIN

# Boxes already found, by (data set, its manifest's hash, split, image size, the pose2d
# checkpoint's hash, flip averaging and the colour swap of its mirror images).
_FOUND = {}


def boxes_from_joints(joints, image_size, record_crop_size, margin):
  """Square boxes [N, 3] (x0, y0, size) in converted-crop pixels around 2D joints
  [N, J, 2] found on the converted crops resized to image_size."""
  points = geometry.resize_points(joints, image_size, record_crop_size)
  return np.stack([geometry.square_box(p, margin) for p in points]).astype(np.float32)


def estimated_boxes(cfg, split, log=print):
  """The boxes [N, 3] that the run's 2D estimator finds on every example of `split` (in
  the order the pipeline yields them unshuffled), in converted-crop pixels."""
  manifest = pipeline.load_manifest(cfg.data_dir)
  run = run_lib.Run.of_config(cfg)
  record = run.checkpoint_record('pose2d')
  # The manifest's hash: a data set converted again in place has boxes of its own.
  key = (os.path.abspath(cfg.data_dir), run_lib.file_sha256(manifest_lib.path_in(
      cfg.data_dir)), split.lower(), cfg.image_size, record['sha256'],
      flip_test.flags_setting(cfg))
  if key not in _FOUND:
    task = pose2d_phase.Pose2DTask(cfg)
    network = task.build_network()
    run.restore(network, 'pose2d')
    log(f'crops: the 2D estimator finds the people of {split}')
    pred, _ = split_outputs.collect(network, cfg, split, task.predict_fn, keys=())
    _FOUND[key] = boxes_from_joints(pred[keys.POSE2D], cfg.image_size,
                                    manifest['crop_size'],
                                    manifest.get('margin', DEFAULT_MARGIN))
  return _FOUND[key]


def boxes_for(cfg, split, log=print):
  """The crop boxes the run's image models read on `split`: None (the converted crops)
  with --crops=gt, else estimated_boxes."""
  return None if cfg.crops == 'gt' else estimated_boxes(cfg, split, log)

"""Running a network over a whole split and turning crop outputs into image and 3D
coordinates, shared by the phases' final measurements."""

import os

import numpy as np
import tensorflow as tf

from fbi3d import flip_test
from fbi3d import geometry
from fbi3d import keys as keys_lib
from fbi3d.data import pipeline


# Pixels per inference batch: 64 crops of 64 px. Inference keeps no activations for a
# backward pass, and at quick scale batches of 64 ran 1.3 to 1.6 times as many crops a
# second as the training batch of 16 (tools/benchmark_models.py).
INFERENCE_BATCH_PIXELS = 64 * 64 * 64


def inference_batch_size(cfg):
  """Crops per batch when a network runs over a whole split: INFERENCE_BATCH_PIXELS of
  crops at cfg.image_size, and never fewer than the training batch."""
  return max(int(cfg.batch_size), INFERENCE_BATCH_PIXELS // int(cfg.image_size) ** 2)


# The ground truth that collect returns unless told otherwise.
GT_KEYS = (keys_lib.POSE2D, keys_lib.POSE3D, keys_lib.FBI, keys_lib.VISIBLE,
           keys_lib.POSE3D_VALID, keys_lib.CROP_BOX, keys_lib.INTRINSICS, keys_lib.ACTION)


def collect(network, cfg, split, outputs_fn, keys=GT_KEYS, verbose=None, boxes=None):
  """Runs `network` over every example of `split` (no augmentation, fixed order).

  outputs_fn(network_outputs) -> dict of arrays per batch. Returns (predictions, targets),
  each a dict of arrays concatenated over the split, read in batches of
  inference_batch_size(cfg). boxes: crop every example again to
  these boxes first (see pipeline.make_dataset; crops.boxes_for gives the run's).
  With cfg.flip_test the network reads every batch followed by its mirror image, and
  each output of outputs_fn is the mean of the two (fbi3d/flip_test.py: its keys must
  be outputs it knows how to turn back).
  """
  ds = pipeline.make_dataset(cfg.data_dir, split, inference_batch_size(cfg),
                             image_size=cfg.image_size,
                             heatmap_sigma=cfg.heatmap_sigma, deterministic=True,
                             boxes=boxes)
  manifest = pipeline.load_manifest(cfg.data_dir)
  total = manifest['splits'][split.lower()]['num_examples']
  if verbose is None:
    verbose = 2 if os.environ.get('CI') else 1
  progress = tf.keras.utils.Progbar(total, unit_name='example', verbose=verbose)
  # One traced function for every batch size (the last batch may be smaller): calling
  # the networks eagerly, batch by batch, took several times longer.
  size = cfg.image_size
  flip = bool(cfg.flip_test)

  def run(images):
    if flip:
      images = flip_test.with_mirror(images, cfg.flip_swaps_red_blue)
    return network(images, training=False)

  infer = tf.function(run, input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
  preds, targets = {}, {}
  for batch in ds:
    out = outputs_fn(infer(batch[keys_lib.IMAGE]))
    if flip:
      out = {k: v.numpy() for k, v in flip_test.average_halves(out, size).items()}
    for k, v in out.items():
      preds.setdefault(k, []).append(np.asarray(v))
    for k in keys:
      targets.setdefault(k, []).append(batch[k].numpy())
    progress.add(int(batch[keys_lib.IMAGE].shape[0]))
  return ({k: np.concatenate(v) for k, v in preds.items()},
          {k: np.concatenate(v) for k, v in targets.items()})


def to_image_pixels(points, crop_box, record_crop_size, model_size):
  """Model-crop pixels [N, J, 2] -> source image pixels, per example."""
  out = np.empty(points.shape, np.float64)
  for i, (p, box) in enumerate(zip(points, crop_box)):
    p = geometry.resize_points(p, model_size, record_crop_size)
    out[i] = geometry.crop_to_image(p, box, record_crop_size)
  return out


def intrinsics_known(intrinsics):
  """[N] bool: which examples' intrinsics [N, 4] are known (records hold zeros, a focal
  length of 0, where the camera is unknown)."""
  return np.asarray(intrinsics)[:, 0] > 0


def lift_25d(pred_xy_img, pred_z_rel, gt_pose3d, gt_xy_img, intrinsics):
  """3D root-relative poses from 2.5D predictions (image pixels + root-relative depth)
  using the ground-truth root position, as integral-regression evaluations do: the root
  is solved from the ground truth's 3D and 2D with the camera intrinsics, then the
  predicted joints are back-projected at root depth + predicted depth.

  Returns [N, J, 3] root-relative mm, or None when intrinsics are unknown.
  """
  if not intrinsics_known(intrinsics).all():
    return None
  out = np.empty(gt_pose3d.shape, np.float64)
  for i in range(len(out)):
    root = geometry.solve_root_translation(gt_pose3d[i], gt_xy_img[i], intrinsics[i])
    absolute = geometry.backproject(pred_xy_img[i], root[2] + pred_z_rel[i], intrinsics[i])
    out[i] = geometry.root_relative(absolute)
  return out

"""Phase pose2d: the stacked-hourglass 2D estimator.

Two losses (--pose2d_loss), each over the joints that are known and inside the crop,
one term per stack (intermediate supervision):
  integral  L1 between the soft-argmax of each stack's heatmaps (used as logits) and
            the 2D joints, in units of the crop side; decoded by the same soft-argmax
            (`hourglass.soft_argmax_2d`), which is sub-pixel by construction. A joint's
            confidence is the largest probability mass in a 3x3 block of cells.
  heatmap   mean squared error to Gaussian targets; decoded by arg-max refined to a
            sub-cell position by a parabola through the logarithms of the peak and its
            neighbours (`hourglass.decode_heatmaps`); the confidence is the peak value.
At quick scale (64-px crops, 16x16 heatmaps) integral decoding is the more precise: the
coarse-3D branch, an integral regressor, found the 2D joints about twice as precisely
as the heatmap-trained estimator on the same data.
"""

import numpy as np
import tensorflow as tf

from fbi3d import keys
from fbi3d import losses as losses_lib
from fbi3d import metrics as metrics_lib
from fbi3d import skeleton
from fbi3d import viz
from fbi3d.models import hourglass
from fbi3d.training import image_task
from fbi3d.training import split_outputs


def final_heatmaps(outputs):
  """The last stack's heatmaps of the hourglass's outputs (a list per stack, or one)."""
  return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


def decode(heatmaps, loss, return_confidence=False):
  """2D joints [B, J, 2] in crop pixels from the last stack's heatmaps of an estimator
  trained with `loss` (--pose2d_loss); with return_confidence also [B, J] confidences."""
  if loss == 'integral':
    return hourglass.soft_argmax_2d(heatmaps, keys.HEATMAP_STRIDE, return_confidence)
  return hourglass.decode_heatmaps(heatmaps, keys.HEATMAP_STRIDE, return_confidence)


class Pose2DTask(image_task.ImagePhase):
  name = 'pose2d'
  kind = 'pose2d'
  requires = {}

  def check_data(self, manifest):
    super().check_data(manifest)
    train = manifest['splits'].get('train')
    if not train or not train.get('crop_modes', {}).get('joints2d', train['num_examples']):
      raise ValueError('pose2d needs 2D joints in the training split (META.csv or '
                       '--keypoints2d at conversion).')

  def build_network(self):
    s = self.cfg.pose2d
    return hourglass.build_stacked_hourglass(
        self.cfg.image_size, num_joints=skeleton.NUM_JOINTS, num_stacks=s.stacks,
        channels=s.channels, depth=s.depth, name='hourglass2d')

  def losses(self, outputs, batch):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    if self.cfg.pose2d.loss == 'integral':
      coords = [hourglass.soft_argmax_2d(h, keys.HEATMAP_STRIDE) for h in outputs]
      # In hundredths of the crop side, so the loss reads like pixels at 100 px.
      return {'integral_loss': 100.0 * losses_lib.integral2d_l1(
          coords, batch[keys.POSE2D], batch[keys.VISIBLE], self.cfg.image_size)}
    # Per-cell errors of unit-peak maps are small; the factor keeps the loss readable.
    return {'heatmap_loss': 100.0 * losses_lib.heatmap_mse(outputs, batch[keys.HEATMAPS],
                                                           batch[keys.VISIBLE])}

  def batch_metrics(self, outputs, batch):
    pred = decode(final_heatmaps(outputs), self.cfg.pose2d.loss)
    err = tf.norm(pred - batch[keys.POSE2D], axis=-1)
    w = batch[keys.VISIBLE]
    return {'error_px': tf.reduce_sum(err * w) / (tf.reduce_sum(w) + 1e-6)}

  def predict_fn(self, outputs):
    return {keys.POSE2D: decode(final_heatmaps(outputs), self.cfg.pose2d.loss).numpy()}

  def evaluate(self, network, manifest, boxes=None):
    """2D error and PCK on cfg.eval_split: on the converted crops, or on the crops
    `boxes` (converted-crop pixels) when given."""
    pred, gt = split_outputs.collect(network, self.cfg, self.cfg.eval_split,
                                     self.predict_fn,
                                     keys=(keys.POSE2D, keys.VISIBLE, keys.POSE2D_VALID),
                                     boxes=boxes)
    return self.metrics_of(pred[keys.POSE2D], gt, manifest, boxes)

  def metrics_of(self, pred2d, gt, manifest, boxes=None):
    """evaluate's measures of 2D predictions [N, 17, 2] against `gt` (pose2d, visible,
    pose2d_valid of the same examples): from the network, or from a features cache that
    holds its outputs on the same crops."""
    # On the converted crops every joint lies inside; on found crops a joint the box cut
    # off is the estimator's own miss and counts too (every joint of a labelled example).
    cfg = self.cfg
    visible = (gt[keys.VISIBLE] > 0 if boxes is None else
               np.repeat(gt[keys.POSE2D_VALID][:, None] > 0, skeleton.NUM_JOINTS, axis=1))
    err = metrics_lib.error_2d(pred2d, gt[keys.POSE2D])
    threshold = cfg.pck_threshold * cfg.image_size
    per_joint = [float(err[:, j][visible[:, j]].mean()) if visible[:, j].any() else None
                 for j in range(skeleton.NUM_JOINTS)]
    # Converted-crop pixels per model pixel, per example.
    side = manifest['crop_size'] if boxes is None else np.asarray(boxes)[:, 2:3]
    scale = np.broadcast_to(np.asarray(side, np.float64) / cfg.image_size, err.shape)
    return dict(
        split=cfg.eval_split, num_examples=int(len(err)), image_size=cfg.image_size,
        crops='converted' if boxes is None else 'estimated',
        error_px=float(err[visible].mean()),
        error_px_at_record_crop=float((err * scale)[visible].mean()),
        pck=float((err[visible] <= threshold).mean()), pck_threshold_px=threshold,
        pck_half=float((err[visible] <= threshold / 2).mean()),
        per_joint_error_px=dict(zip(skeleton.JOINT_NAMES, per_joint)))

  def format_metrics(self, m):
    return (f'pose2d on {m["split"]} ({m["num_examples"]} examples, crops {m["image_size"]} '
            f'px): 2D error {m["error_px"]:.2f} px, PCK@{m["pck_threshold_px"]:.1f}px '
            f'{m["pck"]:.1%}, PCK@{m["pck_threshold_px"] / 2:.1f}px {m["pck_half"]:.1%}')

  def figure(self, network, batch, count=4):
    images = batch[keys.IMAGE][:count]
    heatmaps = final_heatmaps(network(images, training=False))
    pred = decode(heatmaps, self.cfg.pose2d.loss)
    return viz.prediction_strip(images.numpy(), pred.numpy(),
                                batch[keys.POSE2D][:count].numpy())

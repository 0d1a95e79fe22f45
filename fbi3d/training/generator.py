"""Phase generator: the multimodal generator, coarse-3D and FBI branches trained together.

Coarse-3D (explicit depth): L1 on normalised coordinates (x / S, y / S in crop pixels,
z / depth_range_mm root-relative) over joints that are known and inside the crop.
FBI (implicit depth): cross-entropy of the 14 x 3 softmax. The weights are flags.

The coarse-3D MPJPE in results.json turns the predicted 2.5D pose (crop pixels plus
root-relative depth) into millimetres with the ground-truth root position, as
integral-regression evaluations on Human3.6M do (see split_outputs.lift_25d).
"""

import numpy as np
import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import keys
from fbi3d import losses as losses_lib
from fbi3d import metrics as metrics_lib
from fbi3d import skeleton
from fbi3d import viz
from fbi3d.models import generator as generator_lib
from fbi3d.training import image_task
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import split_outputs


class GeneratorTask(image_task.ImagePhase):
  name = 'generator'
  kind = 'generator'
  # The generator reads the crops the 2D estimator reads (same crop size), and with
  # --generator_init=pose2d starts from the estimator built from these settings.
  requires = {'pose2d': ('image_size', 'hg_stacks', 'hg_channels', 'hg_depth')}

  def check_data(self, manifest):
    super().check_data(manifest)
    train = manifest['splits'].get('train')
    if not train or train.get('has_pose3d') is False:
      raise ValueError('the generator needs 3D poses in the training split.')

  def build_network(self, return_features=False):
    g = self.cfg.generator
    return generator_lib.build_generator(
        self.cfg.image_size, num_joints=skeleton.NUM_JOINTS, coarse_stacks=g.stacks,
        coarse_channels=g.channels, coarse_depth=g.depth, depth_bins=g.depth_bins,
        depth_range_mm=g.depth_range_mm, fbi_channels=tuple(g.fbi_channels),
        fbi_head=g.fbi_head, return_features=return_features)

  def load_predecessors(self, network):
    """With --generator_init=pose2d, the coarse-3D branch starts from the finished 2D
    estimator (generator.init_from_estimator); a resumed run then reads its checkpoint.
    Hourglasses of other shapes never get here: config.check refuses them when the
    phase starts."""
    if self.cfg.generator.init != 'pose2d':
      return
    estimator = pose2d_phase.Pose2DTask(self.cfg).build_network()
    self.run.restore(estimator, 'pose2d')
    generator_lib.init_from_estimator(network, estimator)

  def joint_weights(self, batch):
    """[B, J]: joints known in 2D, inside the crop, of examples with 3D."""
    return batch[keys.VISIBLE] * batch[keys.POSE3D_VALID][:, None]

  def coarse3d_loss(self, outputs, batch):
    """The weighted coarse-3D L1 loss (shared with the adversarial phase)."""
    g, size = self.cfg.generator, self.cfg.image_size
    target = tf.concat([batch[keys.POSE2D], batch[keys.POSE3D][..., 2:]], axis=-1)
    return g.coarse3d_weight * losses_lib.coarse3d_l1(
        outputs['coarse3d'], target, self.joint_weights(batch),
        (size, size, g.depth_range_mm))

  def losses(self, outputs, batch):
    fbi_loss = losses_lib.fbi_cross_entropy(outputs['fbi'], batch[keys.FBI],
                                            batch[keys.POSE3D_VALID])
    return {'coarse3d_loss': self.coarse3d_loss(outputs, batch),
            'fbi_loss': self.cfg.generator.fbi_weight * fbi_loss}

  def batch_metrics(self, outputs, batch):
    w = self.joint_weights(batch)
    depth = tf.abs(outputs['coarse3d'][..., 2] - batch[keys.POSE3D][..., 2])
    xy = tf.norm(outputs['coarse3d'][..., :2] - batch[keys.POSE2D], axis=-1)
    correct = tf.cast(tf.equal(tf.argmax(outputs['fbi'], -1, output_type=tf.int32),
                               batch[keys.FBI]), tf.float32)
    valid = batch[keys.POSE3D_VALID][:, None]
    return {
        'depth_error_mm': tf.reduce_sum(w * depth) / (tf.reduce_sum(w) + 1e-6),
        'xy_error_px': tf.reduce_sum(w * xy) / (tf.reduce_sum(w) + 1e-6),
        'fbi_accuracy': tf.reduce_sum(correct * valid) / (tf.reduce_sum(valid) * 14 + 1e-6),
    }

  def predict_fn(self, outputs):
    return {'coarse3d': outputs['coarse3d'].numpy(), 'fbi': outputs['fbi'].numpy()}

  def evaluate(self, network, manifest, boxes=None):
    """Coarse 3D and FBI on cfg.eval_split: on the converted crops, or on the crops
    `boxes` (converted-crop pixels) when given."""
    pred, gt = split_outputs.collect(network, self.cfg, self.cfg.eval_split,
                                     self.predict_fn, boxes=boxes,
                                     keys=split_outputs.GT_KEYS + (keys.POSE2D_VALID,))
    return self.metrics_of(pred, gt, manifest, boxes)

  def metrics_of(self, pred, gt, manifest, boxes=None):
    """evaluate's measures of outputs `pred` (coarse3d, fbi) against `gt` (pose3d_valid,
    pose2d, pose2d_valid, pose3d, fbi, crop_box, intrinsics of the same examples; without
    pose2d_valid every example's 2D counts as known): from the network,
    or from a features cache that holds its outputs on the same crops."""
    cfg = self.cfg
    valid = gt[keys.POSE3D_VALID] > 0
    if not valid.any():
      return dict(split=cfg.eval_split, num_examples=int(len(valid)),
                  note='no 3D ground truth in this split')
    pred = {k: v[valid] for k, v in pred.items()}
    gt = {k: v[valid] for k, v in gt.items()}
    crop = manifest['crop_size']
    # The 2D error and the coarse 3D (whose root is solved from the true 2D) need the
    # true 2D: examples without it (pose2d/valid 0) count for depth and FBI only.
    has2d = (gt[keys.POSE2D_VALID] > 0 if keys.POSE2D_VALID in gt
             else np.ones(len(gt[keys.POSE3D]), bool))
    out = dict(split=cfg.eval_split, num_examples=int(valid.sum()),
               crops='converted' if boxes is None else 'estimated',
               depth_error_mm=float(np.abs(pred['coarse3d'][..., 2]
                                           - gt[keys.POSE3D][..., 2]).mean()))
    if not has2d.all():
      out['num_without_2d'] = int((~has2d).sum())
    if has2d.any():
      p2, g2 = pred['coarse3d'][has2d], {k: v[has2d] for k, v in gt.items()}
      out['xy_error_px'] = float(metrics_lib.error_2d(p2[..., :2], g2[keys.POSE2D]).mean())
      # The root is solved through the camera: examples without intrinsics (focal 0)
      # are left out of the 3D measures, counted, rather than dropping them for all.
      known = split_outputs.intrinsics_known(g2[keys.INTRINSICS])
      if not known.all():
        out['num_without_intrinsics'] = int((~known).sum())
      p2, g2 = p2[known], {k: v[known] for k, v in g2.items()}
      xy_img = split_outputs.to_image_pixels(p2[..., :2], g2[keys.CROP_BOX], crop,
                                             cfg.image_size)
      gt_img = split_outputs.to_image_pixels(g2[keys.POSE2D], g2[keys.CROP_BOX], crop,
                                             cfg.image_size)
      lifted = (split_outputs.lift_25d(xy_img, p2[..., 2], g2[keys.POSE3D], gt_img,
                                       g2[keys.INTRINSICS]) if known.any() else None)
      if lifted is not None:
        out['coarse3d_mpjpe_mm'] = metrics_lib.mpjpe(lifted, g2[keys.POSE3D])
        out['coarse3d_pa_mpjpe_mm'] = metrics_lib.pa_mpjpe(lifted, g2[keys.POSE3D])
        # Plausibility: left/right bone-length asymmetry, against the ground truth's own.
        out['coarse3d_bone_asymmetry_mm'] = metrics_lib.bone_asymmetry(lifted)
        out['true_bone_asymmetry_mm'] = metrics_lib.bone_asymmetry(g2[keys.POSE3D])
    overall, per_bone = fbi_lib.fbi_accuracy(pred['fbi'], gt[keys.FBI])
    # Baseline: always the training split's most frequent class of each bone (of the
    # measured split's own labels for a data set without a train split).
    balance = manifest['splits'].get('train', {}).get('fbi_class_balance')
    if balance is not None:
      majority = np.argmax(np.asarray(balance), axis=-1)
      majority_of = 'training'
    else:
      majority = np.array([np.bincount(b, minlength=3).argmax() for b in gt[keys.FBI].T])
      majority_of = 'measured split\'s own (no train split)'
    base_overall, base_per_bone = fbi_lib.fbi_accuracy(
        np.broadcast_to(majority, gt[keys.FBI].shape), gt[keys.FBI])
    out.update(
        fbi_accuracy=overall, fbi_majority_accuracy=base_overall, fbi_majority_of=majority_of,
        fbi_per_bone={name: dict(accuracy=float(a), majority_accuracy=float(b),
                                 majority_class=fbi_lib.CLASS_NAMES[int(m)])
                      for name, a, b, m in zip(skeleton.FBI_BONE_NAMES, per_bone,
                                               base_per_bone, majority)},
        # Where the errors lie: counts of (true, predicted) class, and the accuracy by
        # the bone's true angle out of the image plane (the class boundary is at the
        # data set's FBI threshold).
        fbi_confusion=fbi_lib.confusion(pred['fbi'], gt[keys.FBI]).tolist(),
        fbi_by_angle=fbi_lib.accuracy_by_angle(pred['fbi'], gt[keys.FBI], gt[keys.POSE3D]))
    return out

  def format_metrics(self, m):
    if 'fbi_accuracy' not in m:
      return f'{self.name} on {m["split"]}: {m.get("note")}'
    lines = [f'{self.name} on {m["split"]} ({m["num_examples"]} examples): coarse-3D MPJPE '
             f'{m.get("coarse3d_mpjpe_mm", float("nan")):.1f} mm (PA '
             f'{m.get("coarse3d_pa_mpjpe_mm", float("nan")):.1f} mm), depth error '
             f'{m["depth_error_mm"]:.1f} mm, 2D error {m.get("xy_error_px", float("nan")):.2f} '
             'px' + (f' ({m["num_without_2d"]} examples without true 2D count for depth '
                     'and FBI only)' if m.get('num_without_2d') else '')
             + (f' ({m["num_without_intrinsics"]} examples without camera intrinsics left '
                'out of the MPJPE)' if m.get('num_without_intrinsics') else ''),
             f'FBI accuracy {m["fbi_accuracy"]:.1%} (always the most frequent class: '
             f'{m["fbi_majority_accuracy"]:.1%})',
             f'  {"bone":<22} {"FBI branch":>10} {"majority":>9}']
    for name, b in m['fbi_per_bone'].items():
      lines.append(f'  {name:<22} {b["accuracy"]:>10.1%} {b["majority_accuracy"]:>9.1%}')
    return '\n'.join(lines)

  def figure(self, network, batch, count=4):
    images = batch[keys.IMAGE][:count]
    out = network(images, training=False)
    fbi_pred = tf.argmax(out['fbi'], -1).numpy()
    captions = [f'FBI {np.mean(p == t):.0%}'
                for p, t in zip(fbi_pred, batch[keys.FBI][:count].numpy())]
    return viz.prediction_strip(images.numpy(), out['coarse3d'][..., :2].numpy(),
                                batch[keys.POSE2D][:count].numpy(), captions)

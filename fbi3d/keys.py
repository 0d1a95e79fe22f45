"""Names and layouts shared across modules, each spelled out once.

- Batch keys: the dict keys of the tf.data elements `fbi3d.data.pipeline` yields (the
  TFRecord feature names themselves are in `fbi3d.data.schema`).
- Features-cache keys: the arrays of <model_dir>/features/<split>.npz, which the
  features phase writes and the regressors and the evaluation read; the per-example
  labels and metadata are stored under their batch keys.
- The heatmap stride of the image models.
- The regressor's input layout: which parts, in which order, how wide, and the one
  function that concatenates them for training and for inference alike.
"""

import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import skeleton

# Batch keys (shapes for a batch of B crops of side S).
IMAGE = 'image'                  # [B, S, S, 3] float32 in [0, 1]
POSE2D = 'pose2d'                # [B, 17, 2] crop pixels
POSE3D = 'pose3d'                # [B, 17, 3] mm, root-relative
FBI = 'fbi'                      # [B, 14] int32 labels
HEATMAPS = 'heatmaps'            # [B, S / stride, S / stride, 17] Gaussian targets
VISIBLE = 'visible'              # [B, 17] 2D known and inside the crop
POSE2D_VALID = 'pose2d_valid'    # [B] 1 when the 2D joints are known
POSE3D_VALID = 'pose3d_valid'    # [B] 1 when the 3D pose is known
ACTION = 'action'                # [B] int32, -1 unknown
SUBJECT = 'subject'              # [B] int32, -1 unknown
SOURCE_ID = 'source_id'          # [B] string
CROP_BOX = 'crop_box'            # [B, 3] x0, y0, size in image pixels
INTRINSICS = 'intrinsics'        # [B, 4] fx, fy, cx, cy; zeros when unknown
BOX = 'box'                      # [B, 3] crop inside the converted crop (its pixels)

# Features-cache keys besides the batch keys above (shapes for N examples).
DETECTED2D = 'detected2d'        # [N, 17, 2] the 2D estimator's joints, crop pixels
GT2D = 'gt2d'                    # [N, 17, 2] ground-truth 2D, crop pixels
COARSE3D = 'coarse3d'            # [N, 17, 3] x, y crop pixels, z mm root-relative
FBI_PROBS = 'fbi_probs'          # [N, 14, 3] the FBI branch's probabilities

# Heatmap cells are this many crop pixels on a side (the hourglass's down-sampling).
HEATMAP_STRIDE = 4

# The regressor's input parts: a name, its width. A regressor reads some of them,
# flattened and concatenated in the order its phase lists them.
INPUT_2D = '2d'                  # the 2D joints it was trained on (detected or gt)
INPUT_GT2D = 'gt2d'              # the ground-truth 2D joints (the oracle rows)
INPUT_COARSE3D = 'coarse3d'      # the coarse-3D branch's output
INPUT_FBI = 'fbi'                # the FBI branch's probabilities
INPUT_GT_FBI = 'gt_fbi'          # the true FBI classes, one-hot (the oracle rows)
INPUT_SIZES = {
    INPUT_2D: skeleton.NUM_JOINTS * 2,
    INPUT_GT2D: skeleton.NUM_JOINTS * 2,
    INPUT_COARSE3D: skeleton.NUM_JOINTS * 3,
    INPUT_FBI: skeleton.NUM_FBI_BONES * fbi_lib.NUM_CLASSES,
    INPUT_GT_FBI: skeleton.NUM_FBI_BONES * fbi_lib.NUM_CLASSES,
}
BASE_INPUTS = (INPUT_2D,)
FINAL_INPUTS = (INPUT_2D, INPUT_COARSE3D, INPUT_FBI)


def input_size(inputs):
  """Width of the regressor input made of the parts `inputs`."""
  return sum(INPUT_SIZES[k] for k in inputs)


def regressor_input(parts, inputs):
  """The regressor's input [N, input_size(inputs)] float32: the parts named by `inputs`
  (each [N, ...], a NumPy array or a tensor, in `parts` by name) flattened per example
  and concatenated in that order. Returns a tensor."""
  flat = [tf.reshape(tf.cast(parts[k], tf.float32), [-1, INPUT_SIZES[k]]) for k in inputs]
  return tf.concat(flat, axis=1)

"""The TFRecord schema: one tf.train.Example per person.

Feature keys are the constants below, nowhere else spelled out. A lifting-only record
(from motion capture, no picture) has an empty IMAGE and IMAGE_SIZE 0.
"""

import numpy as np
import tensorflow as tf

from fbi3d import skeleton

SCHEMA_VERSION = 1

IMAGE = 'image/encoded'          # bytes: the crop as JPEG
IMAGE_SIZE = 'image/size'        # int64: crop side in pixels (square)
POSE2D = 'pose2d/crop'           # float [17*2]: 2D joints in crop pixels
POSE2D_VALID = 'pose2d/valid'    # int64: 1 when 2D joints are known
POSE3D = 'pose3d/camera'         # float [17*3]: mm, camera frame, root-relative
POSE3D_VALID = 'pose3d/valid'    # int64: 1 when 3D is known (0 for a test split)
FBI = 'fbi/labels'               # int64 [14]: 0 forward, 1 backward, 2 parallel
ACTION = 'meta/action'           # int64: action index, -1 unknown
SUBJECT = 'meta/subject'         # int64: subject id, -1 unknown
SOURCE_ID = 'meta/source_id'     # bytes: the image id in the source (e.g. 00001)
SPLIT = 'meta/split'             # bytes: Train, Val or Test
CROP_BOX = 'crop/box'            # float [3]: x0, y0, size of the crop in image pixels
INTRINSICS = 'camera/intrinsics'  # float [4]: fx, fy, cx, cy; zeros when unknown

J = skeleton.NUM_JOINTS
B = skeleton.NUM_FBI_BONES

FEATURES = {
    IMAGE: tf.io.FixedLenFeature([], tf.string),
    IMAGE_SIZE: tf.io.FixedLenFeature([], tf.int64),
    POSE2D: tf.io.FixedLenFeature([J * 2], tf.float32),
    POSE2D_VALID: tf.io.FixedLenFeature([], tf.int64),
    POSE3D: tf.io.FixedLenFeature([J * 3], tf.float32),
    POSE3D_VALID: tf.io.FixedLenFeature([], tf.int64),
    FBI: tf.io.FixedLenFeature([B], tf.int64),
    ACTION: tf.io.FixedLenFeature([], tf.int64),
    SUBJECT: tf.io.FixedLenFeature([], tf.int64),
    SOURCE_ID: tf.io.FixedLenFeature([], tf.string),
    SPLIT: tf.io.FixedLenFeature([], tf.string),
    CROP_BOX: tf.io.FixedLenFeature([3], tf.float32),
    INTRINSICS: tf.io.FixedLenFeature([4], tf.float32),
}


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(
      value=np.asarray(values, np.float32).reshape(-1)))


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(
      value=np.asarray(values, np.int64).reshape(-1)))


def _bytes(value):
  if isinstance(value, str):
    value = value.encode('utf-8')
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_example(*, image_jpeg, image_size, pose2d, pose3d, fbi, action, subject,
                      source_id, split, crop_box, intrinsics=None, pose2d_valid=True,
                      pose3d_valid=True):
  """One example as serialized bytes. Shapes are checked: pose2d [17, 2],
  pose3d [17, 3], fbi [14], crop_box [3]."""
  pose2d = np.asarray(pose2d, np.float32)
  pose3d = np.asarray(pose3d, np.float32)
  fbi = np.asarray(fbi, np.int64)
  checks = ((pose2d, (J, 2), 'pose2d'), (pose3d, (J, 3), 'pose3d'), (fbi, (B,), 'fbi'),
            (np.asarray(crop_box), (3,), 'crop_box'))
  for value, shape, name in checks:
    if value.shape != shape:
      raise ValueError(f'serialize_example: {name} must have shape {shape}, got {value.shape}.')
  if intrinsics is None:
    intrinsics = np.zeros(4, np.float32)
  feature = {
      IMAGE: _bytes(image_jpeg),
      IMAGE_SIZE: _ints(image_size),
      POSE2D: _floats(pose2d),
      POSE2D_VALID: _ints(int(bool(pose2d_valid))),
      POSE3D: _floats(pose3d),
      POSE3D_VALID: _ints(int(bool(pose3d_valid))),
      FBI: _ints(fbi),
      ACTION: _ints(action),
      SUBJECT: _ints(subject),
      SOURCE_ID: _bytes(source_id),
      SPLIT: _bytes(split),
      CROP_BOX: _floats(crop_box),
      INTRINSICS: _floats(intrinsics),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_example(serialized):
  """Parses one serialized example (a scalar string tensor) into a dict of tensors,
  poses reshaped: POSE2D [17, 2], POSE3D [17, 3]."""
  ex = tf.io.parse_single_example(serialized, FEATURES)
  ex[POSE2D] = tf.reshape(ex[POSE2D], [J, 2])
  ex[POSE3D] = tf.reshape(ex[POSE3D], [J, 3])
  return ex


def parse_numpy(serialized):
  """Parses serialized bytes into a dict of NumPy values (for tools and tests)."""
  return {k: v.numpy() for k, v in parse_example(tf.constant(serialized)).items()}

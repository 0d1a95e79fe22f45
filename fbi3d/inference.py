"""Inference with a trained run: the image models and the regressors as one module.

`PoseModel(model_dir)` restores, from the phases of a run (`python -m fbi3d.train`):
  pose2d        the stacked hourglass: 2D joints in crop pixels (last stack's heatmaps,
                decoded with a quarter-cell shift, stride 4), and each joint's heatmap
                peak as its confidence;
  generator     the coarse-3D and FBI branches, from the phase the features phase read
                (--features_generator: adversarial by default);
  base          the regressor on the 2D joints alone (the `lift` path);
  refine        the Final regressor on [2D joints (34), coarse 3D (51), FBI
                probabilities (42)], the same concatenation the features cache feeds it.
Only the inference path is traced (every network called with training=False); no
optimizer, discriminator or training model is built. Networks are built under the
float32 policy whatever precision they were trained in (their variables are float32).

Its tf.functions are the SavedModel's signatures (`fbi3d/export.py`):
  serving_default  uint8 crops [N, S, S, 3] -> pose3d [N, 17, 3] (mm, root-relative,
                   camera frame), pose2d [N, 17, 2] (crop pixels), pose2d_confidence
                   [N, 17], fbi [N, 14, 3] probabilities, coarse3d [N, 17, 3] (x, y crop
                   pixels, z mm root-relative);
  serving_jpeg     the same from encoded images [N] (JPEG, PNG, GIF or BMP bytes), decoded,
                   padded to a centred square and resized to S x S inside the graph;
  lift             2D joints [N, 17, 2] in crop pixels -> pose3d with the Base regressor.
Every input is checked in the graph: a wrong shape fails with a message that names the
signature and what it expects (a wrong dtype is refused by the signature itself). The
module also carries, as non-trainable variables, the crop size S and the names of the
joints, FBI bones and FBI classes, so a loaded SavedModel needs nothing else.
"""

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import skeleton
from fbi3d.models import hourglass
from fbi3d.training import config as config_lib
from fbi3d.training import generator as generator_phase
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import regressor as regressor_phase
from fbi3d.training import trainer

NUM_JOINTS = skeleton.NUM_JOINTS
NUM_FBI_BONES = skeleton.NUM_FBI_BONES
OUTPUTS = ('pose3d', 'pose2d', 'pose2d_confidence', 'fbi', 'coarse3d')


class ModelError(trainer.PhaseError):
  """A run cannot be loaded for inference; the message says which phase and what to run."""


def load_config(model_dir, phase):
  """The Config a finished phase ran with (results.json), with model_dir set to
  `model_dir` and list-valued settings turned back into tuples."""
  path = os.path.join(model_dir, phase, trainer.RESULTS_FILE)
  if not os.path.exists(path):
    raise ModelError(f'phase {phase} has not finished in {model_dir} (no {path}); run '
                     f'python -m fbi3d.train --phase={phase} --model_dir={model_dir} first.')
  with open(path) as f:
    results = json.load(f)
  if not results.get('finished') or 'config' not in results:
    raise ModelError(f'phase {phase} in {model_dir} is not finished; run python -m '
                     f'fbi3d.train --phase={phase} --model_dir={model_dir} to finish it.')
  names = {f.name: f for f in dataclasses.fields(config_lib.Config)}
  values = {}
  for key, value in results['config'].items():
    if key in names:
      values[key] = tuple(value) if isinstance(names[key].default, tuple) else value
  values['model_dir'] = model_dir
  return config_lib.Config(**values), results


def _checkpoint(model_dir, phase, results):
  """The checkpoint a phase's results.json names; found inside `model_dir` when the run
  was moved since (the path recorded is the one it was written at)."""
  path = results.get('checkpoint')
  if path and tf.io.gfile.exists(path + '.index'):
    return path
  if path:
    moved = os.path.join(model_dir, phase, trainer.CHECKPOINTS, os.path.basename(path))
    if tf.io.gfile.exists(moved + '.index'):
      return moved
  raise ModelError(f'no checkpoint of phase {phase} in {os.path.join(model_dir, phase)}; '
                   f'run python -m fbi3d.train --phase={phase} --model_dir={model_dir} first.')


def _restore(network, model_dir, phase, results):
  path = _checkpoint(model_dir, phase, results)
  try:
    status = tf.train.Checkpoint(network=network).restore(path).expect_partial()
    status.assert_existing_objects_matched()
  except (ValueError, AssertionError, tf.errors.OpError) as e:
    raise ModelError(f'the {phase} checkpoint {path} does not fit the network its settings '
                     f'describe ({e}); train the phase again in a new --model_dir.') from None
  return path


def _final(outputs):
  return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


class PoseModel(tf.Module):
  """The trained networks of a run and the inference functions over them."""

  def __init__(self, model_dir):
    super().__init__(name='fbi3d_pose')
    model_dir = os.path.abspath(model_dir)
    if not os.path.isdir(model_dir):
      raise ModelError(f'{model_dir} is not a folder; --model_dir is the folder '
                       'python -m fbi3d.train wrote.')
    refine_cfg, _ = load_config(model_dir, 'refine')
    generator_name = refine_cfg.features_generator
    configs, results = {}, {}
    for phase in ('pose2d', generator_name, 'base', 'refine'):
      configs[phase], results[phase] = load_config(model_dir, phase)
    size = configs['pose2d'].image_size
    if configs[generator_name].image_size != size:
      raise ModelError(
          f'pose2d ran at --image_size={size} but {generator_name} at '
          f'{configs[generator_name].image_size}; both read the same crops: train '
          f'{generator_name} again with --image_size={size}.')
    self.model_dir = model_dir
    self._build(configs, generator_name)
    for phase, net in (('pose2d', self.pose2d_net), (generator_name, self.generator_net),
                       ('base', self.base_net), ('refine', self.refine_net)):
      self.checkpoints[phase] = _restore(net, model_dir, phase, results[phase])

  @classmethod
  def untrained(cls, cfg):
    """The same module with freshly initialised networks of the sizes `cfg` sets (for
    benchmarks and tests of the serving path)."""
    model = cls.__new__(cls)
    tf.Module.__init__(model, name='fbi3d_pose')
    model.model_dir = None
    configs = {'pose2d': cfg, cfg.features_generator: cfg, 'base': cfg, 'refine': cfg}
    model._build(configs, cfg.features_generator)  # pylint: disable=protected-access
    return model

  def _build(self, configs, generator_name):
    """Builds the networks (float32) and the signatures' functions."""
    size = configs['pose2d'].image_size
    self.image_size = size
    self.generator_phase = generator_name
    self.checkpoints = {}
    # Inference in float32 whatever the training policy was.
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy('float32')
    try:
      self.pose2d_net = pose2d_phase.Pose2DTask(configs['pose2d']).build_network()
      self.generator_net = generator_phase.GeneratorTask(configs[generator_name]).build_network()
      self.base_net = regressor_phase.RegressorTask(configs['base'], 'base').build_network()
      self.refine_net = regressor_phase.RegressorTask(configs['refine'],
                                                      'refine').build_network()
    finally:
      tf.keras.mixed_precision.set_global_policy(previous)
    heatmaps = _final(self.pose2d_net.output)
    if heatmaps.shape[-1] != NUM_JOINTS or self.generator_net.output['fbi'].shape[1:] != (
        NUM_FBI_BONES, fbi_lib.NUM_CLASSES):
      raise ModelError(f'the networks in {self.model_dir} do not predict {NUM_JOINTS} joints and '
                       f'{NUM_FBI_BONES} FBI bones.')

    # What a loaded SavedModel needs to know, as variables it keeps.
    self.crop_size = tf.Variable(size, dtype=tf.int32, trainable=False, name='crop_size')
    self.joint_names = tf.Variable(list(skeleton.JOINT_NAMES), trainable=False,
                                   name='joint_names')
    self.fbi_bone_names = tf.Variable(list(skeleton.FBI_BONE_NAMES), trainable=False,
                                      name='fbi_bone_names')
    self.fbi_class_names = tf.Variable(list(fbi_lib.CLASS_NAMES), trainable=False,
                                       name='fbi_class_names')

    self.serving_default = tf.function(self._serve_pixels, input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.uint8, name='images')])
    self.serving_jpeg = tf.function(self._serve_encoded, input_signature=[
        tf.TensorSpec([None], tf.string, name='images')])
    self.lift = tf.function(self._lift, input_signature=[
        tf.TensorSpec([None, NUM_JOINTS, 2], tf.float32, name='pose2d')])

  def signatures(self):
    """The concrete functions to save, by signature name."""
    return {'serving_default': self.serving_default.get_concrete_function(),
            'serving_jpeg': self.serving_jpeg.get_concrete_function(),
            'lift': self.lift.get_concrete_function()}

  # The traced inference path.
  def _infer(self, images):
    """float32 crops [N, S, S, 3] in [0, 1] -> dict of the OUTPUTS."""
    heatmaps = _final(self.pose2d_net(images, training=False))
    pose2d, confidence = hourglass.decode_heatmaps(heatmaps, stride=pose2d_phase.STRIDE,
                                                   return_confidence=True)
    gen = self.generator_net(images, training=False)
    n = tf.shape(images)[0]
    features = tf.concat([tf.reshape(pose2d, [n, NUM_JOINTS * 2]),
                          tf.reshape(gen['coarse3d'], [n, NUM_JOINTS * 3]),
                          tf.reshape(gen['fbi'], [n, NUM_FBI_BONES * fbi_lib.NUM_CLASSES])],
                         axis=1)
    pose3d = self.refine_net(features, training=False)
    return {'pose3d': tf.identity(pose3d, name='pose3d'),
            'pose2d': tf.identity(pose2d, name='pose2d'),
            'pose2d_confidence': tf.identity(confidence, name='pose2d_confidence'),
            'fbi': tf.identity(gen['fbi'], name='fbi'),
            'coarse3d': tf.identity(gen['coarse3d'], name='coarse3d')}

  def _check_shape(self, tensor, expected, message):
    """Asserts the trailing axes of `tensor`; returns it with its static shape set."""
    check = tf.debugging.assert_equal(tf.shape(tensor)[1:], tf.constant(expected, tf.int32),
                                      message=message)
    with tf.control_dependencies([check]):
      return tf.identity(tensor)

  def _serve_pixels(self, images):
    s = self.image_size
    images = self._check_shape(
        images, [s, s, 3], f'serving_default: images must be uint8 [N, {s}, {s}, 3], RGB '
        f'person crops of {s}x{s} pixels; got trailing shape')
    return self._infer(tf.cast(images, tf.float32) * (1.0 / 255.0))

  def _serve_encoded(self, images):
    s = self.image_size
    check = tf.debugging.assert_greater(
        tf.strings.length(images), 0,
        message='serving_jpeg: images must be non-empty encoded images (JPEG, PNG, GIF or '
                'BMP bytes), a batch [N] of strings; got an empty string')

    def decode(data):
      image = tf.io.decode_image(data, channels=3, expand_animations=False)
      # Pads to a centred square (as predict's whole-image crop does), then resizes.
      image = tf.image.resize_with_pad(tf.cast(image, tf.float32), s, s, antialias=True)
      return tf.ensure_shape(image, [s, s, 3])

    with tf.control_dependencies([check]):
      images = tf.identity(images)
    pixels = tf.map_fn(decode, images, fn_output_signature=tf.TensorSpec([s, s, 3],
                                                                         tf.float32))
    return self._infer(pixels * (1.0 / 255.0))

  def _lift(self, pose2d):
    pose2d = self._check_shape(
        pose2d, [NUM_JOINTS, 2], f'lift: pose2d must be float32 [N, {NUM_JOINTS}, 2], '
        'joints (x, y) in crop pixels in the order of fbi3d/skeleton.py; got trailing shape')
    check = tf.debugging.assert_all_finite(pose2d, 'lift: pose2d contains NaN or infinity')
    with tf.control_dependencies([check]):
      flat = tf.reshape(pose2d, [-1, NUM_JOINTS * 2])
    return {'pose3d': tf.identity(self.base_net(flat, training=False), name='pose3d')}

  # In-process use (numpy in, numpy out).
  def predict(self, images):
    """uint8 crops [N, S, S, 3] -> dict of numpy arrays (the OUTPUTS)."""
    out = self.serving_default(tf.convert_to_tensor(np.asarray(images, np.uint8)))
    return {k: v.numpy() for k, v in out.items()}

  def predict_encoded(self, data):
    """Encoded images (a list of bytes) -> dict of numpy arrays (the OUTPUTS)."""
    out = self.serving_jpeg(tf.constant(list(data), tf.string))
    return {k: v.numpy() for k, v in out.items()}

  def lift_2d(self, pose2d):
    """2D joints [N, 17, 2] in crop pixels -> 3D [N, 17, 3] mm with the Base regressor."""
    out = self.lift(tf.convert_to_tensor(np.asarray(pose2d, np.float32)))
    return out['pose3d'].numpy()


def next_version(export_dir):
  """1 + the largest integer folder name in `export_dir` (1 when there is none)."""
  versions = [int(name) for name in (os.listdir(export_dir) if os.path.isdir(export_dir)
                                     else []) if name.isdigit()]
  return max(versions, default=0) + 1


def export(model, export_dir, version=None):
  """Saves `model` (a PoseModel) as a SavedModel in `<export_dir>/<version>/`, the layout
  TensorFlow Serving reads (it serves the largest version). The version defaults to the
  next free integer. Written under a temporary name and renamed when complete, so a
  killed export leaves no half version. Returns the version folder."""
  version = next_version(export_dir) if version is None else int(version)
  path = os.path.join(export_dir, str(version))
  if os.path.exists(path):
    raise ValueError(f'{path} exists; choose another --version or remove it.')
  os.makedirs(export_dir, exist_ok=True)
  tmp = os.path.join(export_dir, f'.tmp-{version}-{os.getpid()}')
  tf.saved_model.save(model, tmp, signatures=model.signatures())
  os.replace(tmp, path)
  return path


def resolve_export(path):
  """The SavedModel folder at `path`: `path` itself when it holds saved_model.pb, else
  its largest numbered version. ValueError when there is none."""
  if os.path.exists(os.path.join(path, 'saved_model.pb')):
    return path
  version = next_version(path) - 1
  if version < 1:
    raise ValueError(f'no SavedModel in {path}: expected saved_model.pb or numbered version '
                     'folders; make one with python -m fbi3d.export.')
  return os.path.join(path, str(version))


# Prediction on pictures with an exported model (python -m fbi3d.predict).

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# The crop around a person: a square around the 2D joints or the box, with this margin of
# its side on each side (the converter's default, so crops look like the training ones).
MARGIN = 0.2
# "No detectable person" with the project's own 2D estimator: the mean of the 17 joints'
# heatmap peaks on the whole picture is below this (targets peak at 1 on a joint). At
# quickstart scale the peaks separate people from empty pictures poorly: crops around
# the synthetic test people score a median of 0.33 (5th percentile 0.21), whole synthetic
# pictures 0.23 (lowest 0.12), windows of their backgrounds 0.21 and noise about 0.25,
# but a black picture 0.07. So 0.1 only turns away pictures with nothing person-like in
# them; give --bbox or --keypoints2d where the crop matters.
MIN_CONFIDENCE = 0.1
# With given 2D keypoints, a person needs this many known joints to place the crop.
MIN_KEYPOINTS = 6


class PredictError(ValueError):
  """One picture cannot be predicted; the message says why."""


class ExportedModel:
  """A SavedModel written by export(), loaded with TensorFlow alone."""

  def __init__(self, path):
    self.path = resolve_export(path)
    try:
      self.module = tf.saved_model.load(self.path)
    except (OSError, ValueError, tf.errors.OpError) as e:
      raise ValueError(f'cannot load the SavedModel in {self.path}: {e}') from None
    if not hasattr(self.module, 'crop_size'):
      raise ValueError(f'{self.path} is not a SavedModel of python -m fbi3d.export.')
    self.crop_size = int(self.module.crop_size.numpy())
    self.joint_names = [n.decode() for n in self.module.joint_names.numpy()]
    self.fbi_bone_names = [n.decode() for n in self.module.fbi_bone_names.numpy()]
    self.fbi_class_names = [n.decode() for n in self.module.fbi_class_names.numpy()]

  def predict(self, crops):
    out = self.module.signatures['serving_default'](images=tf.constant(crops, tf.uint8))
    return {k: v.numpy() for k, v in out.items()}

  def lift(self, pose2d):
    out = self.module.signatures['lift'](pose2d=tf.constant(pose2d, tf.float32))
    return out['pose3d'].numpy()


def read_image(path):
  """An image file as RGB uint8 [H, W, 3]; PredictError when it is not a readable image."""
  import cv2  # pylint: disable=import-outside-toplevel
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise PredictError(f'{path}: cannot read: {e.strerror}') from None
  if not data:
    raise PredictError(f'{path}: empty file')
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    raise PredictError(f'{path}: not a readable image')
  if data[:2] == b'\xff\xd8' and b'\xff\xd9' not in data[-64:]:
    raise PredictError(f'{path}: truncated JPEG (no end marker)')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def whole_image_box(shape):
  """The centred square around a whole image (x0, y0, size)."""
  h, w = shape[:2]
  side = float(max(h, w))
  return np.array([(w - side) / 2.0, (h - side) / 2.0, side])


def crop_image(image, box, size):
  """The square `box` (x0, y0, side) of an image resampled to size x size, with the
  mapping of geometry.image_to_crop. Large reductions average the pixels they cover
  (a bilinear crop at a multiple of the size, then an area resize) rather than skip
  them; outside the image is black, as in the training crops."""
  import cv2  # pylint: disable=import-outside-toplevel
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  k = int(max(1, min(8, box[2] // size)))
  matrix = geometry.crop_affine(box, size * k)
  # Crop pixel u = k (u_final + 0.5) - 0.5, so the area resize lands on image_to_crop.
  matrix[:, 2] += (k - 1) / 2.0
  crop = cv2.warpAffine(image, matrix, (size * k, size * k), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  if k > 1:
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
  return crop


def box_from_bbox(bbox, shape):
  """The square crop box around a person box (x, y, w, h) in image pixels."""
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  x, y, w, h = (float(v) for v in bbox)
  if w <= 0 or h <= 0:
    raise PredictError(f'--bbox {x:g},{y:g},{w:g},{h:g}: width and height must be positive.')
  height, width = shape[:2]
  if x >= width or y >= height or x + w <= 0 or y + h <= 0:
    raise PredictError(f'no person: the box {x:g},{y:g},{w:g},{h:g} lies outside the '
                       f'{width}x{height} image.')
  return geometry.square_box([[x, y], [x + w, y + h]], MARGIN)


def box_from_joints(joints, valid):
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  if int(np.sum(valid)) < MIN_KEYPOINTS:
    raise PredictError(f'no person: only {int(np.sum(valid))} of the 17 joints are known '
                       f'from the keypoints (at least {MIN_KEYPOINTS} needed).')
  return geometry.square_box(np.asarray(joints)[np.asarray(valid, bool)], MARGIN)


def mediapipe_joints(image):
  """The 17 joints (image pixels) and validity from MediaPipe's pose landmarker (model
  complexity 1, the model inside the mediapipe==0.10.21 wheel: nothing is downloaded),
  or None when it finds no person."""
  try:
    import mediapipe  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ValueError('--detector=mediapipe needs the optional extra: pip install '
                     '"fbi3d[mediapipe]" (mediapipe==0.10.21).') from None
  from fbi3d import keypoints  # pylint: disable=import-outside-toplevel
  with mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
    result = pose.process(np.ascontiguousarray(image))
  if result.pose_landmarks is None:
    return None
  h, w = image.shape[:2]
  marks = result.pose_landmarks.landmark
  points = np.array([[m.x * w, m.y * h] for m in marks])
  visibility = np.array([m.visibility for m in marks])
  return keypoints.from_mediapipe(points, visibility)


def _in_image(points, crop_box, crop_size):
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  return geometry.crop_to_image(points, crop_box, crop_size)


def predict_pictures(model, images, *, bbox=None, keypoint_file=None, detector='estimator',
                     min_confidence=MIN_CONFIDENCE):
  """Predicts the person in each picture.

  model: an ExportedModel; images: list of (name, RGB uint8 image). The crop is the
  square around `bbox` (x, y, w, h) when given, else around the joints of
  `keypoint_file` (a keypoints.KeypointFile), else around the joints that `detector`
  finds: 'estimator' runs the model's own 2D estimator on the centred square of the whole
  picture (a person whose mean joint confidence is below `min_confidence` counts as not
  found), 'mediapipe' MediaPipe's pose landmarker.

  Returns one entry per picture: a result dict (see result_json) or a PredictError.
  """
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  s = model.crop_size
  plans = []      # (box, crop_from, given joints, their validity) or a PredictError
  first = []      # pictures whose box the estimator finds
  for i, (name, image) in enumerate(images):
    try:
      if bbox is not None:
        plans.append((box_from_bbox(bbox, image.shape), 'bbox', None, None))
      elif keypoint_file is not None:
        found = keypoint_file.joints(name)
        if found is None:
          raise PredictError(f'no person: {keypoint_file.path} has no keypoints for '
                             f'{os.path.basename(name)}.')
        plans.append((box_from_joints(*found), 'keypoints2d') + found)
      elif detector == 'mediapipe':
        found = mediapipe_joints(image)
        if found is None:
          raise PredictError('no person: MediaPipe found none.')
        plans.append((box_from_joints(*found), 'mediapipe', None, None))
      else:
        plans.append(None)
        first.append(i)
    except PredictError as e:
      plans.append(e)
  if first:
    boxes = [whole_image_box(images[i][1].shape) for i in first]
    out = model.predict(np.stack([crop_image(images[i][1], b, s)
                                  for i, b in zip(first, boxes)]))
    for j, (i, box) in enumerate(zip(first, boxes)):
      confidence = float(out['pose2d_confidence'][j].mean())
      if confidence < min_confidence:
        plans[i] = PredictError(
            f'no detectable person: the 2D estimator\'s mean joint confidence is '
            f'{confidence:.2f} on the whole picture (below {min_confidence:g}).')
        continue
      joints = _in_image(out['pose2d'][j], box, s)
      plans[i] = (geometry.square_box(joints, MARGIN), 'estimator', None, None)

  ready = [i for i, p in enumerate(plans) if not isinstance(p, PredictError)]
  results = list(plans)
  if not ready:
    return results
  crops = np.stack([crop_image(images[i][1], plans[i][0], s) for i in ready])
  out = model.predict(crops)
  given = [i for i in ready if plans[i][2] is not None]
  lifted = {}
  if given:
    two_d = []
    for i in given:
      box, _, joints, valid = plans[i]
      in_crop = geometry.image_to_crop(joints, box, s)
      # Joints the keypoints lack are taken from the model's own 2D estimate.
      detected = out['pose2d'][ready.index(i)]
      two_d.append(np.where(np.asarray(valid)[:, None], in_crop, detected))
    pose3d = model.lift(np.stack(two_d).astype(np.float32))
    lifted = {i: (two_d[k], pose3d[k]) for k, i in enumerate(given)}
  for j, i in enumerate(ready):
    box, crop_from, joints, valid = plans[i]
    entry = dict(name=images[i][0], image_shape=images[i][1].shape, crop_box=box,
                 crop_from=crop_from, crop_size=s,
                 pose3d=out['pose3d'][j], pose2d_crop=out['pose2d'][j],
                 pose2d=_in_image(out['pose2d'][j], box, s),
                 confidence=out['pose2d_confidence'][j], fbi=out['fbi'][j],
                 coarse3d=out['coarse3d'][j])
    if i in lifted:
      entry.update(keypoints2d=joints, keypoints_valid=valid,
                   lift_input2d=_in_image(lifted[i][0], box, s), lifted3d=lifted[i][1])
    results[i] = entry
  return results


def _by_name(names, values, digits):
  return {n: [round(float(v), digits) + 0.0 for v in row] for n, row in zip(names, values)}


def result_json(model, entry):
  """The JSON document of one prediction."""
  names = model.joint_names
  h, w = entry['image_shape'][:2]
  x0, y0, size = (float(v) for v in entry['crop_box'])
  fbi_list = []
  for bone, probs in zip(model.fbi_bone_names, entry['fbi']):
    c = int(np.argmax(probs))
    fbi_list.append(dict(bone=bone, fbi=model.fbi_class_names[c],
                         probability=round(float(probs[c]), 4),
                         probabilities={k: round(float(p), 4)
                                        for k, p in zip(model.fbi_class_names, probs)}))
  doc = dict(
      image=entry['name'], image_width=int(w), image_height=int(h),
      model=model.path, crop_from=entry['crop_from'],
      crop_box=dict(x=round(x0, 2), y=round(y0, 2), size=round(size, 2)),
      crop_size=entry['crop_size'],
      pose3d_mm=_by_name(names, entry['pose3d'], 1),
      pose3d_frame='camera frame (x right, y down, z away from the camera), millimetres, '
                   'relative to the pelvis (Hip)',
      pose2d_px=_by_name(names, entry['pose2d'], 2),
      pose2d_frame='image pixels (x, y), pixel centres at integer coordinates',
      joint_confidence={n: round(float(c), 3) for n, c in zip(names, entry['confidence'])},
      mean_confidence=round(float(np.mean(entry['confidence'])), 3),
      fbi=fbi_list,
      coarse3d=_by_name(names, entry['coarse3d'], 2),
      coarse3d_frame='x, y crop pixels, z millimetres relative to the pelvis')
  if 'lifted3d' in entry:
    valid = np.asarray(entry['keypoints_valid'], bool)
    doc['keypoints2d'] = dict(
        given_px={n: [round(float(v), 2) for v in p]
                  for n, p, ok in zip(names, entry['keypoints2d'], valid) if ok},
        from_estimator=[n for n, ok in zip(names, valid) if not ok],
        lifted_pose3d_mm=_by_name(names, entry['lifted3d'], 1),
        note='lifted_pose3d_mm: the Base regressor on the given 2D (joints the keypoints '
             'lack from the 2D estimator); pose3d_mm: the Final model on the crop')
  return doc


def _dumps(doc):
  """Indented JSON with each list of numbers on one line."""
  text = json.dumps(doc, indent=1)
  return re.sub(r'\[\s+([-+0-9.eE,\s]+?)\s+\]',
                lambda m: '[' + ' '.join(m.group(1).split()) + ']', text) + '\n'


def write_outputs(model, entry, out_dir, stem):
  """Writes <stem>.json and <stem>.png in out_dir, each under a temporary name renamed
  when complete; returns their paths."""
  from fbi3d import viz  # pylint: disable=import-outside-toplevel
  os.makedirs(out_dir, exist_ok=True)
  json_path = os.path.join(out_dir, stem + '.json')
  png_path = os.path.join(out_dir, stem + '.png')
  tmp_json = os.path.join(out_dir, f'.{stem}.json.tmp')
  tmp_png = os.path.join(out_dir, f'.{stem}.tmp.png')
  try:
    with open(tmp_json, 'w') as f:
      f.write(_dumps(result_json(model, entry)))
    image = entry.get('image')
    title = (f'{os.path.basename(entry["name"])}: crop from {entry["crop_from"]}, mean 2D '
             f'confidence {float(np.mean(entry["confidence"])):.2f}')
    viz.pose_figure(image, entry['pose2d'], entry['pose3d'], entry['fbi'],
                    entry['crop_box'], tmp_png, title=title,
                    keypoints2d=entry.get('keypoints2d'), lifted3d=entry.get('lifted3d'))
    os.replace(tmp_png, png_path)
    os.replace(tmp_json, json_path)
  finally:
    for tmp in (tmp_json, tmp_png):
      if os.path.exists(tmp):
        os.remove(tmp)
  return json_path, png_path


def list_images(paths):
  """The image files of the arguments: files as given, folders' image files sorted."""
  files = []
  for path in paths:
    if os.path.isdir(path):
      files.extend(sorted(os.path.join(path, n) for n in os.listdir(path)
                          if n.lower().endswith(IMAGE_EXTENSIONS)
                          and os.path.isfile(os.path.join(path, n))))
    elif os.path.exists(path):
      files.append(path)
    else:
      raise ValueError(f'{path} not found.')
  return files


def predict_files(model, paths, out_dir, *, batch_size=16, log=print, **options):
  """Predicts every picture of `paths` (files or folders) in batches, writing a JSON and a
  figure per picture into out_dir and reporting progress. Returns (written, failed):
  lists of (path, (json, png)) and (path, message)."""
  files = list_images(paths)
  if not files:
    raise ValueError(f'no image files in {", ".join(paths)}.')
  stems = {}
  written, failed = [], []
  for start in range(0, len(files), batch_size):
    batch = []
    for path in files[start:start + batch_size]:
      try:
        batch.append((path, read_image(path)))
      except PredictError as e:
        failed.append((path, str(e)))
        log(f'predict: {e}')
    results = predict_pictures(model, batch, **options) if batch else []
    for (path, image), result in zip(batch, results):
      if isinstance(result, PredictError):
        failed.append((path, str(result)))
        log(f'predict: {path}: {result}')
        continue
      stem = os.path.splitext(os.path.basename(path))[0]
      stems[stem] = stems.get(stem, 0) + 1
      if stems[stem] > 1:
        stem = f'{stem}_{stems[stem]}'
      result['image'] = image
      written.append((path, write_outputs(model, result, out_dir, stem)))
    log(f'predict: {min(start + batch_size, len(files))}/{len(files)} pictures '
        f'({len(written)} written, {len(failed)} failed)')
  return written, failed

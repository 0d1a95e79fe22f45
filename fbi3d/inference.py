"""Inference with a trained run: the image models and the regressors as one module.

`PoseModel(model_dir)` restores, from the phases of a run (`python -m fbi3d.train`):
  pose2d        the stacked hourglass: 2D joints in crop pixels and a confidence per
                joint, decoded from the last stack's heatmaps as the estimator was
                trained (`pose2d.decode`: soft-argmax, or arg-max with a sub-cell shift);
  generator     the coarse-3D and FBI branches, from the phase the features phase read
                (--features_generator: adversarial by default);
  base          the regressor on the 2D joints alone (the `lift` path);
  refine        the Final regressor on [2D joints (34), coarse 3D (51), FBI
                probabilities (42)], the same concatenation the features cache feeds it.
Only the inference path is traced (every network called with training=False); no
optimizer, discriminator or training model is built. Networks are built under the
float32 policy whatever precision they were trained in (their variables are float32).

Its tf.functions are the SavedModel's signatures (`fbi3d/export.py`):
  serving_default  uint8 crops [N, S, S, 3] -> pose3d [N, 17, 3] (mm, root-relative;
                   in the camera frame, or, for regressors trained with
                   --regressor_frame=ray, in the crop's ray-aligned frame: the camera
                   frame turned so the crop centre is straight ahead, the variable
                   pose3d_frame says which), pose2d [N, 17, 2] (crop pixels), pose2d_confidence
                   [N, 17], fbi [N, 14, 3] probabilities, coarse3d [N, 17, 3] (x, y crop
                   pixels, z mm root-relative);
  serving_jpeg     the same from encoded images [N] (JPEG, PNG, GIF or BMP bytes), decoded,
                   padded to a centred square and resized to S x S inside the graph;
                   pixels as stored (no EXIF turn, no white under transparency, unlike
                   predict's reading of a picture file);
  lift             2D joints [N, 17, 2] in crop pixels -> pose3d with the Base regressor,
                   or, when the export is given a pose-bank lifter (`fbi3d/lifter.py`,
                   `python -m fbi3d.export --lifter=FOLDER`), with that lifter: the
                   joints are scaled from the crop of side S to the lifter's own crop
                   side (crop pixels are proportional to the box, so this is exact),
                   averaged with its mirror image when the lifter was saved so
                   (`lifter.mirror_averaged`), and pose3d is in the camera frame,
                   root-relative, mm.
Every input is checked in the graph: a wrong shape fails with a message that names the
signature and what it expects (a wrong dtype is refused by the signature itself). The
module also carries, as non-trainable variables, the crop size S, the frame of pose3d
and the names of the joints, FBI bones and FBI classes, whether the image models'
outputs are averaged over each crop and its mirror image (`image_flip_average`, as the
run's features cache was made with --flip_test: fbi3d/flip_test.py; twice the image
inference), and which network `lift` runs
(`lift_model`: 'base' or 'lifter'; `lift_mirror_average`: whether the lifter, or Base
with --regressor_mirror_average, is averaged with its mirror image; and
`regressor_mirror_average`: whether Final is) with how a caller fills joints its 2D lacks
(`lift_missing_joints`: 'estimator', from the model's own 2D, for Base; 'ancestor',
`lifter_inputs.fill_missing`, for the lifter), so a loaded SavedModel needs nothing else.
"""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import flip_test
from fbi3d import keys
from fbi3d import lifter as lifter_lib
from fbi3d import lifter_inputs
from fbi3d import skeleton
from fbi3d.training import crops as crops_lib
from fbi3d.training import generator as generator_phase
from fbi3d.training import phases
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import regressor as regressor_phase
from fbi3d.training import run as run_lib

NUM_JOINTS = skeleton.NUM_JOINTS
NUM_FBI_BONES = skeleton.NUM_FBI_BONES
# Written into every export: the run folder and the checkpoints (path relative to it,
# content hash) whose weights the version holds.
CHECKPOINTS_FILE = 'checkpoints.json'
# The smallest picture side (pixels) a person is looked for in: below it the 17 joints of
# a whole person cannot be told apart. serving_jpeg and predict refuse smaller pictures.
MIN_IMAGE_SIDE = 32
OUTPUTS = ('pose3d', 'pose2d', 'pose2d_confidence', 'fbi', 'coarse3d')
# The 2D that `lift` takes, in crop sides: joints of a crop with the margin of
# geometry.square_box lie between about 0.14 and 0.86; beyond these bounds the 2D is
# refused as not of a crop of side S.
LIFT_RANGE = (-0.5, 1.5)
# The joints of such a crop span about 0.71 of its side on their longer side (1 / 1.4); 2D
# whose joints span less than this fraction of S is not of a crop of side S: coordinates
# normalised to 0..1 or -1..1, joints all at one point, a person filled with zeros.
LIFT_MIN_SPAN = 0.25


class _Untracked:
  """Holds a Keras model without making it part of a tf.Module's saved object graph;
  calling it calls the model."""

  def __init__(self, model):
    self.model = model

  def __call__(self, *args, **kwargs):
    return self.model(*args, **kwargs)

  def __getattr__(self, name):
    return getattr(self.model, name)


def _flip_setting(run, cfg):
  """(flip averaging, red and blue swapped in the mirror) as the run's features cache,
  from which its regressors learned, was made; `cfg`'s flags for a run without one."""
  features = run.results('features')
  if not (features and features.get('made_from')):
    return flip_test.flags_setting(cfg)
  return flip_test.cached_setting(features['made_from'])


def _check_current(run, cfg):
  """PhaseError when the run's regressors learned from inputs unlike those its image
  models give now, as fbi3d.evaluate refuses it: a features cache made from other pose2d
  or generator checkpoints, or a regressor trained on another cache than the one
  there. A run without its features phase (or with the caches removed) is not checked."""
  features = run.results('features')
  if not (features and features.get('finished')):
    folder = run.phase_dir('features')
    if os.path.isdir(folder) and any(n.endswith('.npz') for n in os.listdir(folder)):
      # Split files without the results.json that vouches for them: a cache being made
      # again, or stopped while it was, perhaps from other image models than the
      # regressors learned from.
      raise run_lib.PhaseError(
          f'{run.model_dir}: the features cache in {folder} is being made again, or was '
          'stopped while it was (its split files are there, its results.json is not): '
          'finish it (python -m fbi3d.train --phase=features with the run\'s flags), then '
          'export the run.')
    return
  reason = phases.make_task('features', cfg).stale_images_reason(
      features.get('made_from') or {})
  for name in ('base', 'refine'):
    reason = reason or phases.make_task(name, cfg).stale_reason(run.results(name))
  if reason:
    raise run_lib.PhaseError(f'{run.model_dir}: {reason} Export the run once it is whole '
                             'again.')


class PoseModel(tf.Module):
  """The trained networks of a run and the inference functions over them."""

  def __init__(self, model_dir, lifter_dir=None):
    super().__init__(name='fbi3d_pose')
    model_dir = os.path.abspath(model_dir)
    if not os.path.isdir(model_dir):
      raise run_lib.PhaseError(f'{model_dir} is not a folder; --model_dir is the folder '
                               'python -m fbi3d.train wrote.')
    run = run_lib.Run.of(model_dir)
    generator_name = run.config('refine').features.generator
    configs = {phase: run.config(phase)
               for phase in ('pose2d', generator_name, 'base', 'refine')}
    size = configs['pose2d'].image_size
    if configs[generator_name].image_size != size:
      raise run_lib.PhaseError(
          f'pose2d ran at --image_size={size} but {generator_name} at '
          f'{configs[generator_name].image_size}; both read the same crops: train '
          f'{generator_name} again with --image_size={size}.')
    _check_current(run, configs['refine'])
    self.model_dir = model_dir
    self._build(configs, generator_name, lifter_dir, _flip_setting(run, configs['refine']),
                crops_lib.trained_margin(run, configs['pose2d'].data_dir))
    for phase, net in (('pose2d', self.pose2d_net), (generator_name, self.generator_net),
                       ('base', self.base_net), ('refine', self.refine_net)):
      run.restore(net.model, phase)
      self.checkpoints[phase] = run.checkpoint_record(phase)

  @classmethod
  def untrained(cls, cfg, lifter_dir=None):
    """The same module with freshly initialised networks of the sizes `cfg` sets (for
    benchmarks and tests of the serving path); `lift` runs the saved lifter in
    `lifter_dir` when given."""
    model = cls.__new__(cls)
    tf.Module.__init__(model, name='fbi3d_pose')
    model.model_dir = None
    configs = {'pose2d': cfg, cfg.features.generator: cfg, 'base': cfg, 'refine': cfg}
    model._build(configs, cfg.features.generator, lifter_dir,  # pylint: disable=protected-access
                 flip_test.flags_setting(cfg))
    return model

  def _build(self, configs, generator_name, lifter_dir=None, flip=(False, False),
             margin=crops_lib.DEFAULT_MARGIN):
    """Builds the networks (float32) and the signatures' functions; `lift` runs the
    lifter saved in `lifter_dir` when given, else the Base regressor. flip: (flip
    averaging, red and blue swapped in the mirror image), as the features the regressors
    learned from were made; margin: that of the crops the networks learned from."""
    size = configs['pose2d'].image_size
    self.image_size = size
    self.flip_average, self.flip_swaps_red_blue = bool(flip[0]), bool(flip[1])
    self.pose2d_loss = configs['pose2d'].pose2d.loss
    self.generator_phase = generator_name
    self.checkpoints = {}
    # Inference in float32 whatever the training policy was.
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy('float32')
    try:
      nets = dict(
          pose2d_net=pose2d_phase.Pose2DTask(configs['pose2d']).build_network(),
          generator_net=generator_phase.GeneratorTask(configs[generator_name]).build_network(),
          base_net=regressor_phase.RegressorTask(configs['base'], 'base').build_network(),
          refine_net=regressor_phase.RegressorTask(configs['refine'],
                                                   'refine').build_network())
      lift_config = None
      if lifter_dir is not None:
        nets['lifter_net'], lift_config = lifter_lib.load(lifter_dir)
        if lift_config.get('trained_on_test'):
          raise ValueError(
              f'{lifter_dir}: this lifter was trained on the test subjects\' poses as well '
              '(tools/train_lifter.py --train_on_test), a bound for the held-out figures, '
              'not a lifter to serve: give one trained without that flag.')
    finally:
      tf.keras.mixed_precision.set_global_policy(previous)
    # The Keras models are not tracked by this module, their variables are: saving then
    # traces only the signatures, not every Keras layer's own call functions (which
    # took most of an export's minute and nothing here uses).
    for name, net in nets.items():
      setattr(self, name, _Untracked(net))
    self.network_variables = [v for net in nets.values() for v in net.variables]
    heatmaps = pose2d_phase.final_heatmaps(self.pose2d_net.output)
    if heatmaps.shape[-1] != NUM_JOINTS or self.generator_net.output['fbi'].shape[1:] != (
        NUM_FBI_BONES, fbi_lib.NUM_CLASSES):
      raise run_lib.PhaseError(f'the networks in {self.model_dir} do not predict '
                               f'{NUM_JOINTS} joints and {NUM_FBI_BONES} FBI bones.')

    # What a loaded SavedModel needs to know, as variables it keeps.
    self.crop_size = tf.Variable(size, dtype=tf.int32, trainable=False, name='crop_size')
    # The fraction of the person's box side added on each side of a crop: a picture is
    # cut with the margin of the crops the image models learned from.
    # float64: the margin comes back as the converter wrote it (0.2, not 0.2000000030).
    self.crop_margin = tf.Variable(float(margin), dtype=tf.float64, trainable=False,
                                   name='crop_margin')
    self.joint_names = tf.Variable(list(skeleton.JOINT_NAMES), trainable=False,
                                   name='joint_names')
    self.fbi_bone_names = tf.Variable(list(skeleton.FBI_BONE_NAMES), trainable=False,
                                      name='fbi_bone_names')
    self.fbi_class_names = tf.Variable(list(fbi_lib.CLASS_NAMES), trainable=False,
                                       name='fbi_class_names')
    # Whether the image models' outputs are averaged over each crop and its mirror.
    self.image_flip_average = tf.Variable(bool(flip[0]), trainable=False,
                                          name='image_flip_average')
    # 'camera', or 'ray': pose3d in the crop's ray-aligned frame (regressor_frame).
    self.pose3d_frame = tf.Variable(configs['refine'].regressor.frame, trainable=False,
                                    name='pose3d_frame')
    # Final's 3D: with --regressor_mirror_average the mean of its answers for the inputs
    # and for those of the mirror image, as the run's measures were made.
    refine_average = bool(configs['refine'].regressor.mirror_average)
    self.refine_fn = (flip_test.mirror_averaged(self.refine_net, regressor_phase.INPUTS['refine'],
                                                size) if refine_average else self.refine_net)
    self.regressor_mirror_average = tf.Variable(refine_average, trainable=False,
                                                name='regressor_mirror_average')
    # The network behind `lift`, and the scale from this export's crop pixels to its own.
    base_average = False
    if lift_config is None:
      base_average = bool(configs['base'].regressor.mirror_average)
      self.lift_net = (flip_test.mirror_averaged(self.base_net, regressor_phase.INPUTS['base'],
                                                 size) if base_average else self.base_net)
      self.lift_scale = 1.0
      lift_model, missing, lift_frame = 'base', 'estimator', configs['base'].regressor.frame
      lift_margin = float(margin)
    else:
      self.lift_net = self.lifter_net
      self.lift_scale = float(lift_config['crop_size']) / float(size)
      lift_model, missing, lift_frame = ('lifter', lift_config['missing_joints'],
                                         lift_config.get('frame', 'camera'))
      lift_margin = float(lift_config.get('margin', lifter_inputs.MARGIN))
    self.lifter_dir = None if lifter_dir is None else os.path.abspath(lifter_dir)
    self.lift_model = tf.Variable(lift_model, trainable=False, name='lift_model')
    self.lift_missing_joints = tf.Variable(missing, trainable=False,
                                           name='lift_missing_joints')
    self.lift_frame = tf.Variable(lift_frame, trainable=False, name='lift_frame')
    # The margin of the square box around the 2D joints whose crop pixels `lift` takes.
    self.lift_margin = tf.Variable(lift_margin, dtype=tf.float64, trainable=False,
                                   name='lift_margin')
    self._lift_margin_text = f'{lift_margin:g}'    # for the traced message
    # Whether `lift` averages its network with its mirror image (lifter.mirror_averaged,
    # or Base with --regressor_mirror_average).
    self.lift_mirror_average = tf.Variable(
        bool(base_average or (lift_config is not None and lift_config['mirror_average'])),
        trainable=False, name='lift_mirror_average')

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
  def _image_outputs(self, images):
    """The image models' outputs on crops [N, S, S, 3] in [0, 1]: the 2D estimator's
    joints and confidences, the coarse 3D and the FBI probabilities; with flip
    averaging, each the mean over the crop and its mirror image (fbi3d/flip_test.py)."""
    flip = self.flip_average
    if flip:
      images = flip_test.with_mirror(images, self.flip_swaps_red_blue)
    heatmaps = pose2d_phase.final_heatmaps(self.pose2d_net(images, training=False))
    pose2d, confidence = pose2d_phase.decode(heatmaps, self.pose2d_loss,
                                             return_confidence=True)
    gen = self.generator_net(images, training=False)
    out = {'pose2d': pose2d, 'pose2d_confidence': confidence, 'fbi': gen['fbi'],
           'coarse3d': gen['coarse3d']}
    return flip_test.average_halves(out, self.image_size) if flip else out

  def _infer(self, images):
    """float32 crops [N, S, S, 3] in [0, 1] -> dict of the OUTPUTS."""
    out = self._image_outputs(images)
    features = keys.regressor_input({keys.INPUT_2D: out['pose2d'],
                                     keys.INPUT_COARSE3D: out['coarse3d'],
                                     keys.INPUT_FBI: out['fbi']},
                                    regressor_phase.INPUTS['refine'])
    pose3d = self.refine_fn(features, training=False)
    return {'pose3d': tf.identity(pose3d, name='pose3d'),
            'pose2d': tf.identity(out['pose2d'], name='pose2d'),
            'pose2d_confidence': tf.identity(out['pose2d_confidence'],
                                             name='pose2d_confidence'),
            'fbi': tf.identity(out['fbi'], name='fbi'),
            'coarse3d': tf.identity(out['coarse3d'], name='coarse3d')}

  def _check_shape(self, tensor, expected, message, signature):
    """Asserts the trailing axes of `tensor` and a batch of at least one; returns it."""
    check = tf.debugging.assert_equal(tf.shape(tensor)[1:], tf.constant(expected, tf.int32),
                                      message=message)
    nonempty = tf.debugging.assert_positive(
        tf.shape(tensor)[:1], message=f'{signature}: the batch is empty (N = 0); send at '
        'least one input')
    with tf.control_dependencies([check, nonempty]):
      return tf.identity(tensor)

  def _serve_pixels(self, images):
    s = self.image_size
    images = self._check_shape(
        images, [s, s, 3], f'serving_default: images must be uint8 [N, {s}, {s}, 3], RGB '
        f'person crops of {s}x{s} pixels; got trailing shape', 'serving_default')
    return self._infer(tf.cast(images, tf.float32) * (1.0 / 255.0))

  def _serve_encoded(self, images):
    s = self.image_size
    nonempty = tf.debugging.assert_positive(
        tf.shape(images)[:1], message='serving_jpeg: the batch is empty (N = 0); send at '
        'least one encoded image')
    with tf.control_dependencies([nonempty]):
      index = tf.range(tf.shape(images)[0])

    def decode(args):
      i, data = args
      # Which element is wrong, named in the error (decode_image's own says not).
      known = tf.reduce_any([
          tf.equal(tf.strings.substr(data, 0, len(magic)), tf.constant(magic))
          for magic in (b'\xff\xd8\xff', b'\x89PNG', b'GIF8', b'BM')])
      is_image = tf.debugging.Assert(known, [
          'serving_jpeg: images[i] is not an encoded JPEG, PNG, GIF or BMP image (empty, or '
          'other bytes); i =', i], name='known_format')
      with tf.control_dependencies([is_image]):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
      size = tf.shape(image)[:2]
      big_enough = tf.debugging.Assert(tf.reduce_min(size) >= MIN_IMAGE_SIDE, [
          f'serving_jpeg: images[i] is too small to hold a person (at least {MIN_IMAGE_SIDE} '
          'pixels on a side are needed); i, height, width =', i, size], name='big_enough')
      with tf.control_dependencies([big_enough]):
        # Pads to a centred square (as predict's whole-image crop does), then resizes.
        image = tf.image.resize_with_pad(tf.cast(image, tf.float32), s, s, antialias=True)
      return tf.ensure_shape(image, [s, s, 3])

    pixels = tf.map_fn(decode, (index, images),
                       fn_output_signature=tf.TensorSpec([s, s, 3], tf.float32))
    return self._infer(pixels * (1.0 / 255.0))

  def _lift(self, pose2d):
    pose2d = self._check_shape(
        pose2d, [NUM_JOINTS, 2], f'lift: pose2d must be float32 [N, {NUM_JOINTS}, 2], '
        'joints (x, y) in crop pixels in the order of fbi3d/skeleton.py; got trailing shape',
        'lift')
    check = tf.debugging.assert_all_finite(pose2d, 'lift: pose2d contains NaN or infinity')
    with tf.control_dependencies([check]):
      # Joints in crop pixels lie inside the crop (its margin keeps them off the edges);
      # far outside it they are pixels of the whole picture, or of another crop size,
      # and the network would answer them with a pose all the same.
      low, high = LIFT_RANGE[0] * self.image_size, LIFT_RANGE[1] * self.image_size
      inside = tf.debugging.Assert(
          tf.reduce_all((pose2d >= low) & (pose2d <= high)),
          [f'lift: pose2d lies outside its crop: every x and y must be within [{low:g}, '
           f'{high:g}], crop pixels of the square box around the person (margin '
           f'{self._lift_margin_text} of its side) resized to S = '
           f'{self.image_size}, not pixels of the whole picture; the '
           'smallest and largest values sent:', tf.reduce_min(pose2d),
           tf.reduce_max(pose2d)], name='inside_crop')
      span = tf.reduce_max(tf.reduce_max(pose2d, axis=1) - tf.reduce_min(pose2d, axis=1),
                           axis=-1)
      min_span = LIFT_MIN_SPAN * self.image_size
      spread = tf.debugging.Assert(
          tf.reduce_all(span >= min_span),
          [f'lift: pose2d does not span a crop: the joints of each person must spread over '
           f'at least {min_span:g} crop pixels (x or y), as those of the square box around '
           f'the person resized to S = {self.image_size} spread over about '
           f'{self.image_size / 1.4:.0f}; coordinates normalised to 0..1, or joints all at '
           'one point, are not crop pixels. The smallest spread sent and its index:',
           tf.reduce_min(span), tf.argmin(span)], name='spans_crop')
    with tf.control_dependencies([inside, spread]):
      flat = tf.reshape(pose2d, [-1, NUM_JOINTS * 2])
    if self.lift_scale != 1.0:
      flat = flat * self.lift_scale
    return {'pose3d': tf.identity(self.lift_net(flat, training=False), name='pose3d')}

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
    """2D joints [N, 17, 2] in crop pixels -> 3D [N, 17, 3] mm with the `lift` network
    (the Base regressor or the lifter)."""
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
  if os.path.exists(export_dir) and not os.path.isdir(export_dir):
    raise ValueError(f'--export_dir={export_dir} is a file; give a folder (it is made if '
                     'missing).')
  if os.path.exists(os.path.join(export_dir, 'saved_model.pb')):
    # A version folder itself: the new version would nest inside it, where neither
    # TensorFlow Serving nor predict --export_dir=<its parent> would ever look.
    above = os.path.dirname(os.path.abspath(export_dir))
    raise ValueError(f'--export_dir={export_dir} holds a SavedModel (it is a version '
                     f'folder); give the folder above it, {above}, and the next version '
                     'number is chosen there.')
  version = next_version(export_dir) if version is None else int(version)
  path = os.path.join(export_dir, str(version))
  if os.path.exists(path):
    raise ValueError(f'{path} exists; choose another --version or remove it.')
  os.makedirs(export_dir, exist_ok=True)
  tmp = os.path.join(export_dir, f'.tmp-{version}-{os.getpid()}')
  try:
    tf.saved_model.save(model, tmp, signatures=model.signatures())
    if model.model_dir:
      # Which weights this version holds: TensorFlow Serving ignores assets.extra.
      os.makedirs(os.path.join(tmp, 'assets.extra'), exist_ok=True)
      named = dict(model_dir=model.model_dir, checkpoints=model.checkpoints)
      if getattr(model, 'lifter_dir', None):
        named['lifter'] = dict(dir=model.lifter_dir, sha256=run_lib.file_sha256(
            os.path.join(model.lifter_dir, lifter_lib.WEIGHTS)))
      with open(os.path.join(tmp, 'assets.extra', CHECKPOINTS_FILE), 'w') as f:
        json.dump(named, f, indent=2)
    os.replace(tmp, path)
  except BaseException:
    # A failed export (a full disk, an interrupt) leaves no temporary folder behind.
    shutil.rmtree(tmp, ignore_errors=True)
    raise
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

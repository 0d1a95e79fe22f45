# Above 400 lines: one experiment (pose sets, views, training, the comparison) read top to bottom.
"""Lifting measured on real motion capture, an experiment run by tools/lift_mocap.py: the
Base regressor (2D joints -> 3D pose) trained on captured poses or on the synthetic pose
sampler, tested on a held-out subject.

Pose sets. `load_mocap_poses` reads the motion files of some subjects (CMU ASF/AMC or
BVH, found by `mocap.find_motion_files` and `mocap.subject_of`), maps them to the 17
Human3.6M joints (`joint_maps.to_h36m`, world frame, mm, z up), keeps every n-th frame and,
optionally, gives every bone Human3.6M's mean length (`joint_maps.retarget`).
`sample_synthetic_poses` draws the same kind of set from `body.sample_pose`: the 15
actions in turn, a random body size per pose.

Views. `view_poses` shows every world pose to `cameras_per_pose` cameras sampled like
Human3.6M's (`cameras.sample_camera` for a nominal image of `image_size` pixels, about
1145 px focal length at 1000 px): the pose is turned by a random yaw and put on the
ground at the origin (`body.place_on_ground`), and a camera is accepted when every
joint is at least `MIN_DEPTH_MM` in front of it and projects inside the image. The 2D is
the pinhole projection in image pixels (`geometry.project`); the target is the
root-relative camera-frame 3D pose in mm.

Regressor input: the 2D joints in crop pixels, as the image pipeline gives the Base
phase. `crop_inputs` puts a square box around the 2D joints it is given
(`geometry.square_box`, margin 0.2) and maps them into a crop of side 256
(`geometry.image_to_crop`), flattened to 34 values. The box is made from the 2D the
regressor reads, so with noisy 2D the box moves with the noise, as it would around a
detector's joints. This removes the person's image position and size: the input is
translation and scale normalised, without being made root-relative.

2D noise (`add_noise`): independent Gaussian noise of `std_px` on every image
coordinate, added before the crop transform.

Training (`train_regressor`): `build_regressor(34)` with the training set's
normalisation, the weighted regression loss (`WeightedRegressionModel`, default eps and
max_exponent; `regression_model.compile_on_arrays`) with `UpdateAlpha`,
`regressor_optimizer(1e-3)`, batches of 64 shuffled each epoch (the last partial batch
dropped). `evaluate` gives MPJPE and PA-MPJPE
(`fbi3d.metrics`).

`compare` runs the whole measurement from pose sets: it trains one regressor on the
captured training poses and one on as many synthetic poses (same number of cameras per
pose, same camera procedure), and tests both on the test poses with ground-truth 2D and
with noisy 2D (one camera and one noise draw per test pose, from fixed seeds, so the two
models see the same test set). `run` loads the pose sets from a folder and calls it.
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

from fbi3d import geometry
from fbi3d import losses as losses_lib
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import cameras
from fbi3d.data import joint_maps
from fbi3d.data import mocap
from fbi3d.models import regressor as regressor_lib
from fbi3d.training import regression_model

TRAIN_SUBJECTS = (1, 131)
TEST_SUBJECTS = (11,)
IMAGE_SIZE = 1000
CROP_SIZE = 256
MARGIN = 0.2
NOISE_PX = 5.0
MIN_DEPTH_MM = 500.0
CAMERA_TRIES = 100
INPUT_DIM = skeleton.NUM_JOINTS * 2

# Seed streams: one per random quantity, so that changing one setting (e.g. the number
# of training cameras) leaves the others, and in particular the test set, unchanged.
_STREAM_REAL_CAMERAS = 1
_STREAM_SYNTHETIC_POSES = 2
_STREAM_SYNTHETIC_CAMERAS = 3
_STREAM_TEST_CAMERAS = 4
_STREAM_TEST_NOISE = 5


@dataclasses.dataclass
class PoseSet:
  """World poses [N, 17, 3] (mm, z up), a subject id per pose (-1 for synthetic) and a
  description of where they came from (one dict per clip, or per sampler call)."""
  poses: np.ndarray
  subjects: np.ndarray
  sources: list

  def __len__(self):
    return int(len(self.poses))


@dataclasses.dataclass
class Views:
  """Poses seen by cameras, M examples.

  joints2d: [M, 17, 2] image px; pose3d: [M, 17, 3] root-relative camera mm;
  pose3d_abs: [M, 17, 3] camera mm; intrinsics: [M, 4] (fx, fy, cx, cy);
  pose_index: [M] the index of the world pose each example shows.
  """
  joints2d: np.ndarray
  pose3d: np.ndarray
  pose3d_abs: np.ndarray
  intrinsics: np.ndarray
  pose_index: np.ndarray

  def __len__(self):
    return int(len(self.pose3d))


# ---------------------------------------------------------------------------------------
# Pose sets.


def load_mocap_poses(mocap_dir, subjects, every_nth=4, retarget_bones=False):
  """The 17-joint world poses of every motion file of `subjects` under `mocap_dir`.

  Files are taken in sorted order (`mocap.find_motion_files`); every `every_nth` frame
  is kept, starting with the first. Raises ValueError when a subject has no file.
  """
  if every_nth < 1:
    raise ValueError(f'every_nth must be >= 1, got {every_nth}.')
  if not os.path.isdir(mocap_dir):
    raise ValueError(f'{mocap_dir}: motion capture folder not found.')
  subjects = tuple(int(s) for s in subjects)
  files = [p for p in mocap.find_motion_files(mocap_dir) if mocap.subject_of(p) in subjects]
  found = {mocap.subject_of(p) for p in files}
  missing = [s for s in subjects if s not in found]
  if missing:
    raise ValueError(f'{mocap_dir}: no .amc or .bvh file of subject(s) '
                     f'{", ".join(str(s) for s in missing)}.')
  poses, ids, sources = [], [], []
  for path in files:
    clip = mocap.load_clip(path)
    clip_poses = joint_maps.to_h36m(clip)[::every_nth]
    if retarget_bones:
      try:
        clip_poses = joint_maps.retarget(
            clip_poses, frame_numbers=np.arange(0, clip.num_frames, every_nth))
      except ValueError as e:
        raise ValueError(f'{path}: {e}') from None
    subject = mocap.subject_of(path)
    poses.append(clip_poses)
    ids.append(np.full(len(clip_poses), subject))
    sources.append(dict(file=os.path.relpath(path, mocap_dir), subject=subject,
                        frames=clip.num_frames, frame_rate=clip.frame_rate,
                        poses=int(len(clip_poses))))
  return PoseSet(np.concatenate(poses), np.concatenate(ids), sources)


def sample_synthetic_poses(rng, num_poses):
  """`num_poses` poses of `body.sample_pose`: the 15 actions in turn (pose i is of
  action i mod 15), each with a random body size."""
  poses = np.stack([body.sample_pose(rng, i % skeleton.NUM_ACTIONS)
                    for i in range(int(num_poses))]) if num_poses else np.zeros((0, 17, 3))
  return PoseSet(poses, np.full(len(poses), -1),
                 [dict(sampler='body.sample_pose', poses=int(num_poses),
                       actions='A1..A15 in turn', body_size='random per pose')])


def mean_bone_lengths(poses):
  """Mean length of every bone over poses [N, 17, 3], {child joint name: mm}."""
  lengths = joint_maps.bone_lengths(poses).mean(axis=0)
  return {skeleton.JOINT_NAMES[child]: float(v)
          for (_, child), v in zip(skeleton.BONES, lengths)}


# ---------------------------------------------------------------------------------------
# Cameras, 2D and inputs.


def view_pose(pose_world, rng, image_size=IMAGE_SIZE):
  """One view of a world pose [17, 3]: (camera-frame pose [17, 3] mm, image 2D [17, 2]
  px, intrinsics [4]).

  The pose is turned by a uniform yaw and put on the ground at the origin; cameras come
  from `cameras.sample_camera` until one sees every joint at least MIN_DEPTH_MM in
  front of it and inside the image. Raises ValueError after CAMERA_TRIES cameras.
  """
  world = body.place_on_ground(pose_world, rng.uniform(0.0, 2.0 * np.pi))
  for _ in range(CAMERA_TRIES):
    camera = cameras.sample_camera(rng, image_size)
    cam = cameras.world_to_camera(world, camera)
    if np.any(cam[:, 2] < MIN_DEPTH_MM):
      continue
    joints2d = geometry.project(cam, camera['intrinsics'])
    if np.all(joints2d >= 0.0) and np.all(joints2d <= image_size - 1.0):
      return cam, joints2d, np.asarray(camera['intrinsics'], np.float64)
  raise ValueError(f'view_pose: no camera of {CAMERA_TRIES} sees the whole pose in a '
                   f'{image_size} px image.')


def view_poses(poses_world, rng, cameras_per_pose=1, image_size=IMAGE_SIZE):
  """Every world pose [N, 17, 3] seen by `cameras_per_pose` cameras (`view_pose`), in
  the order pose 0 camera 0, pose 0 camera 1, ...: Views of N * cameras_per_pose."""
  if cameras_per_pose < 1:
    raise ValueError(f'cameras_per_pose must be >= 1, got {cameras_per_pose}.')
  cams, joints, intrinsics, index = [], [], [], []
  for i, pose in enumerate(np.asarray(poses_world, np.float64)):
    for _ in range(cameras_per_pose):
      cam, j2d, k = view_pose(pose, rng, image_size)
      cams.append(cam)
      joints.append(j2d)
      intrinsics.append(k)
      index.append(i)
  if not cams:
    empty = np.zeros((0, skeleton.NUM_JOINTS, 3))
    return Views(np.zeros((0, skeleton.NUM_JOINTS, 2)), empty, empty, np.zeros((0, 4)),
                 np.zeros(0, np.int64))
  cams = np.stack(cams)
  return Views(joints2d=np.stack(joints), pose3d=geometry.root_relative(cams),
               pose3d_abs=cams, intrinsics=np.stack(intrinsics),
               pose_index=np.asarray(index, np.int64))


def add_noise(joints2d, std_px, rng):
  """joints2d plus independent Gaussian noise of std `std_px` on every coordinate."""
  joints2d = np.asarray(joints2d, np.float64)
  if std_px <= 0:
    return joints2d.copy()
  return joints2d + rng.normal(0.0, std_px, joints2d.shape)


def crop_inputs(joints2d, crop_size=CROP_SIZE, margin=MARGIN):
  """Regressor inputs [M, 34] float32: 2D joints [M, 17, 2] (image px) in the crop of
  side `crop_size` of their own square box (`geometry.square_box` with `margin`)."""
  joints2d = np.asarray(joints2d, np.float64)
  out = np.empty((len(joints2d), INPUT_DIM), np.float32)
  for i, joints in enumerate(joints2d):
    box = geometry.square_box(joints, margin)
    out[i] = geometry.image_to_crop(joints, box, crop_size).reshape(-1)
  return out


# ---------------------------------------------------------------------------------------
# Training and evaluation.


class _EpochLog(tf.keras.callbacks.Callback):

  def __init__(self, log, every, epochs, name):
    super().__init__()
    self._log, self._every, self._epochs, self._name = log, every, epochs, name
    self._start = time.time()

  def on_epoch_end(self, epoch, logs=None):
    done = epoch + 1
    if self._log and (done % self._every == 0 or done == self._epochs):
      logs = logs or {}
      self._log(f'{self._name}: epoch {done}/{self._epochs}, loss {logs.get("loss", 0):.4f}, '
                f'train MPJPE {logs.get("mpjpe_mm", 0):.1f} mm '
                f'({time.time() - self._start:.0f} s)')


def train_regressor(inputs, targets, *, epochs, batch_size=64, learning_rate=1e-3,
                    loss='weighted', dropout_rate=0.5, hidden=1024, seed=0,
                    name='base', log=None, log_every=10):
  """Trains the Base regressor on (inputs [N, 34], targets [N, 17, 3] mm).

  Returns (network, history dict of per-epoch lists). Keras' random state is seeded
  with `seed` before the network is built, and the shuffle uses it too.
  """
  inputs = np.asarray(inputs, np.float32)
  targets = np.asarray(targets, np.float32)
  if len(inputs) != len(targets) or not len(inputs):
    raise ValueError(f'train_regressor: {len(inputs)} inputs for {len(targets)} targets.')
  if epochs < 1:
    raise ValueError(f'epochs must be >= 1, got {epochs}.')
  tf.keras.utils.set_random_seed(int(seed))
  network = regressor_lib.build_regressor(inputs.shape[1], hidden=hidden,
                                          dropout_rate=dropout_rate, name=name)
  model = regression_model.compile_on_arrays(
      network, inputs, targets, loss, regressor_lib.regressor_optimizer(learning_rate))
  batch = min(int(batch_size), len(inputs))
  data = tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(
      len(inputs), seed=int(seed), reshuffle_each_iteration=True).batch(
          batch, drop_remainder=True).prefetch(2)
  history = model.fit(data, epochs=int(epochs), verbose=0,
                      callbacks=[tf.keras.callbacks.TerminateOnNaN(),
                                 regression_model.UpdateAlpha(model),
                                 _EpochLog(log, max(1, int(log_every)), int(epochs), name)])
  losses = history.history.get('loss', [])
  if not losses or not all(np.isfinite(losses)):
    raise ValueError(f'{name}: the training loss became NaN or infinite (epoch '
                     f'{len(losses)}); lower --learning_rate.')
  return network, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def evaluate(network, inputs, targets):
  """MPJPE and PA-MPJPE (mm) of a regressor on (inputs [N, 34], targets [N, 17, 3])."""
  pred = network.predict(np.asarray(inputs, np.float32), batch_size=256, verbose=0)
  targets = np.asarray(targets, np.float64)
  return dict(mpjpe_mm=metrics.mpjpe(pred, targets),
              pa_mpjpe_mm=metrics.pa_mpjpe(pred, targets), num_examples=int(len(targets)))


# ---------------------------------------------------------------------------------------
# The comparison.


def _rng(seed, stream):
  return np.random.default_rng([int(seed), int(stream)])


def compare(train_poses, test_poses, *, train_cameras=4, epochs=25, batch_size=64,
            learning_rate=1e-3, loss='weighted', dropout_rate=0.5, hidden=1024,
            noise_px=NOISE_PX, image_size=IMAGE_SIZE, crop_size=CROP_SIZE, margin=MARGIN,
            seed=0, log=None, log_every=10):
  """Trains on captured and on synthetic poses, tests both on the captured test poses.

  Args:
    train_poses, test_poses: PoseSet of captured poses.
    train_cameras: cameras per training pose (both training sets).
    epochs, batch_size, learning_rate, loss, dropout_rate, hidden: the regressor's
      training (`train_regressor`).
    noise_px: std (image px) of the Gaussian noise of the noisy test column.
    image_size, crop_size, margin: nominal image side, crop side and box margin.
    seed: seeds every random stream (cameras, synthetic poses, noise, Keras).
    log: a function of one line of text, or None.
    log_every: epochs between training log lines.

  Returns:
    A dict: `settings`, `sets` (counts and mean bone lengths of every set), `models`
    ({'mocap': ..., 'synthetic': ...}, each with `gt2d` and `noisy2d` metrics, training
    time and last-epoch training numbers) and `test_noise` (the realised noise std).
  """
  say = log or (lambda _: None)
  test_views = view_poses(test_poses.poses, _rng(seed, _STREAM_TEST_CAMERAS), 1,
                          image_size)
  noisy2d = add_noise(test_views.joints2d, noise_px, _rng(seed, _STREAM_TEST_NOISE))
  test_inputs = {'gt2d': crop_inputs(test_views.joints2d, crop_size, margin),
                 'noisy2d': crop_inputs(noisy2d, crop_size, margin)}
  synthetic_poses = sample_synthetic_poses(_rng(seed, _STREAM_SYNTHETIC_POSES),
                                           len(train_poses))
  training_sets = {
      'mocap': (train_poses, view_poses(train_poses.poses, _rng(seed, _STREAM_REAL_CAMERAS),
                                        train_cameras, image_size)),
      'synthetic': (synthetic_poses,
                    view_poses(synthetic_poses.poses,
                               _rng(seed, _STREAM_SYNTHETIC_CAMERAS), train_cameras,
                               image_size)),
  }
  sets = {'test': dict(poses=len(test_poses), examples=len(test_views),
                       subjects=sorted({int(s) for s in test_poses.subjects}),
                       sources=test_poses.sources,
                       mean_bone_lengths_mm=mean_bone_lengths(test_poses.poses))}
  models = {}
  for key, (poses, views) in training_sets.items():
    sets[f'train_{key}'] = dict(
        poses=len(poses), examples=len(views),
        subjects=sorted({int(s) for s in poses.subjects}), sources=poses.sources,
        mean_bone_lengths_mm=mean_bone_lengths(poses.poses))
    say(f'training on {key}: {len(poses)} poses x {train_cameras} cameras = '
        f'{len(views)} examples, {epochs} epochs')
    start = time.time()
    network, history = train_regressor(
        crop_inputs(views.joints2d, crop_size, margin), views.pose3d, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, loss=loss,
        dropout_rate=dropout_rate, hidden=hidden, seed=seed, name=f'base_{key}', log=log,
        log_every=log_every)
    seconds = time.time() - start
    result = dict(train_seconds=seconds,
                  final_train_loss=history.get('loss', [None])[-1],
                  final_train_mpjpe_mm=history.get('mpjpe_mm', [None])[-1])
    for column, inputs in test_inputs.items():
      result[column] = evaluate(network, inputs, test_views.pose3d)
    say(f'{key}: GT 2D {result["gt2d"]["mpjpe_mm"]:.1f} / '
        f'{result["gt2d"]["pa_mpjpe_mm"]:.1f} mm, {noise_px:g} px noise '
        f'{result["noisy2d"]["mpjpe_mm"]:.1f} / {result["noisy2d"]["pa_mpjpe_mm"]:.1f} mm '
        f'(MPJPE / PA-MPJPE; {seconds:.0f} s)')
    models[key] = result
    tf.keras.backend.clear_session()
  difference = noisy2d - test_views.joints2d
  settings = dict(train_cameras=int(train_cameras), test_cameras=1, epochs=int(epochs),
                  batch_size=int(batch_size), learning_rate=float(learning_rate),
                  loss=loss, max_exponent=losses_lib.DEFAULT_MAX_EXPONENT,
                  eps=losses_lib.DEFAULT_EPS, dropout_rate=float(dropout_rate),
                  hidden=int(hidden), noise_px=float(noise_px), image_size=int(image_size),
                  crop_size=int(crop_size), margin=float(margin), seed=int(seed),
                  input='2D joints in crop pixels (square box of the given 2D, margin '
                        f'{margin:g}, crop {crop_size} px), flattened to 34',
                  target='root-relative camera-frame 3D, mm',
                  noise='Gaussian, per image coordinate, before the crop transform; the box '
                        'is made from the noisy 2D')
  return dict(settings=settings, sets=sets, models=models,
              test_noise=dict(std_px=float(difference.std()) if difference.size else 0.0,
                              mean_px=float(difference.mean()) if difference.size else 0.0))


def run(mocap_dir, *, train_subjects=TRAIN_SUBJECTS, test_subjects=TEST_SUBJECTS,
        every_nth=4, retarget_bones=False, log=None, **kwargs):
  """Loads the captured pose sets from `mocap_dir` and runs `compare` (kwargs go to it).

  Returns compare's dict, its settings extended with the pose-set settings.
  """
  say = log or (lambda _: None)
  both = sorted({int(s) for s in train_subjects} & {int(s) for s in test_subjects})
  if both:
    raise ValueError(f'subject(s) {", ".join(map(str, both))} are both training and test '
                     'subjects: the test would measure poses the lifter trained on.')
  for name in ('learning_rate', 'noise_px'):
    value = kwargs.get(name)
    if value is not None and not (np.isfinite(value) and
                                  (value > 0 if name == 'learning_rate' else value >= 0)):
      raise ValueError(f'{name} must be a finite number '
                       f'{"above 0" if name == "learning_rate" else ">= 0"}, got {value}.')
  start = time.time()
  train = load_mocap_poses(mocap_dir, train_subjects, every_nth, retarget_bones)
  test = load_mocap_poses(mocap_dir, test_subjects, every_nth, retarget_bones)
  say(f'loaded {len(train)} training poses (subjects {", ".join(map(str, train_subjects))})'
      f' and {len(test)} test poses (subjects {", ".join(map(str, test_subjects))}) in '
      f'{time.time() - start:.1f} s')
  result = compare(train, test, log=log, **kwargs)
  result['settings'].update(
      mocap_dir=os.path.abspath(mocap_dir), train_subjects=[int(s) for s in train_subjects],
      test_subjects=[int(s) for s in test_subjects], every_nth=int(every_nth),
      retarget=bool(retarget_bones))
  result['total_seconds'] = time.time() - start
  return result


ROW_NAMES = {'mocap': 'trained on real mocap', 'synthetic': 'trained on synthetic sampler'}


def format_table(result):
  """Markdown table of `compare`'s result: a row per training set, MPJPE and PA-MPJPE
  with ground-truth and with noisy 2D, and the counts."""
  noise = result['settings']['noise_px']
  lines = ['| trained on | train poses | train examples | MPJPE GT 2D | PA-MPJPE GT 2D | '
           f'MPJPE {noise:g} px | PA-MPJPE {noise:g} px |',
           '|---|---|---|---|---|---|---|']
  for key, m in result['models'].items():
    info = result['sets'][f'train_{key}']
    subjects = [s for s in info['subjects'] if s >= 0]
    name = ROW_NAMES.get(key, key)
    if subjects:
      name += f' ({"+".join(str(s) for s in subjects)})'
    lines.append(f'| {name} | {info["poses"]} | {info["examples"]} | '
                 f'{m["gt2d"]["mpjpe_mm"]:.1f} | {m["gt2d"]["pa_mpjpe_mm"]:.1f} | '
                 f'{m["noisy2d"]["mpjpe_mm"]:.1f} | {m["noisy2d"]["pa_mpjpe_mm"]:.1f} |')
  test = result['sets']['test']
  lines.append(f'\nTest: subject(s) {", ".join(str(s) for s in test["subjects"])}, '
               f'{test["poses"]} poses, {test["examples"]} examples (one camera each). '
               'Errors in mm.')
  return '\n'.join(lines)

"""The pose-bank lifter: the Base regressor (`models.regressor.build_regressor`, 2D joints
in crop pixels -> root-relative camera-frame 3D in mm) trained on the pose bank
(`fbi3d.data.posebank`) seen through cameras held the way a person photographs another,
with detector-like 2D noise; its measurement on the held-out subjects; saving and loading.

Cameras (`sample_cameras`, `view`). The person stands at the world origin (z up), turned by
a uniform yaw, the lower ankle `mocap.ANKLE_HEIGHT_MM` above the ground scaled with the
thigh (as `mocap.place_on_ground`). A photo is 4:3, its long side IMAGE_LONG_SIDE = 1000
px, landscape or portrait with equal odds. The camera stands at a horizontal distance of
2 to 8 m (uniform), any azimuth (uniform), 0.5 to 2 m above the ground (uniform), and
looks at a point on the person's vertical axis 0.5 to 1.4 m high, then turns off it by up
to a quarter of the half field of view each way (so people are not always centred) and
rolls by a Gaussian of 2 degrees (a hand-held camera is about level). The focal length is
35 mm-equivalent 24 to 85 mm (log-uniform: wide-angle to portrait), in pixels
f * diagonal_px / 43.27 (the diagonal of a 36 x 24 mm frame). A view is kept when every
joint is 0.5 m or more in front of the camera, inside the image by 1 % of its long side,
and the joints span at least MIN_EXTENT = 20 % of the long side (nobody photographs a
person as a speck); otherwise the camera is drawn again.

2D noise (`detector_noise`), in image pixels before the crop transform, so the box moves
with the noise as around a detector's joints:
  - Gaussian on every coordinate, its std drawn per example uniformly in [0, noise_max_px];
  - a left/right swap of each pair of skeleton.LEFT_RIGHT_PAIRS with probability
    swap_prob (a detector confusing the two wrists, knees, ...);
  - each joint missing with probability missing_prob.
Missing joints (`fill_missing`): the regressor always reads 17 joints, so a missing joint
takes the 2D position of its nearest known ancestor (its parent when known, else the
grandparent, ...); a missing pelvis takes the midpoint of the two hips when both are
known, else the mean of the known joints. A missing limb end thus folds onto the joint
before it, a configuration the lifter learns to read as "unknown here" and which real
poses rarely show; `fbi3d.prediction` fills keypoints that a keypoint file or detector
lacks with the same rule before calling the exported `lift`.

Input: `crop_inputs_batch` is `lifting.crop_inputs` vectorised (square box of the given
2D, margin 0.2, crop of 256 px), so the `lift` signature of an export takes this lifter's
input after a scaling to its own crop size (`fbi3d.inference`).

Output frame (`frame`). A crop does not show where in the picture the person stood, and
root-relative camera-frame 3D turns with that place (a person off to one side is seen
obliquely). With frame='ray' (the default, chosen on val) the lifter predicts the pose in
its crop's ray-aligned frame (`geometry.ray_rotations` of the square box around the 2D
and the camera's intrinsics: the camera frame turned so the box centre is straight
ahead), which the crop alone determines; `to_camera_frame` turns a prediction back where
the intrinsics are known. frame='camera' predicts in the camera frame itself.

Training (`train`): every epoch, each training pose gets a new yaw, camera and noise draw
(optionally mirrored left/right with probability 1/2); `build_regressor(34)` with the
first epoch's normalisation statistics, the L2 loss (`regression_model`; the weighted loss
is an option), Adam whose rate decays exponentially to a tenth over the run; the settings
chosen on val are DEFAULTS. `evaluate_split` measures MPJPE and PA-MPJPE on one camera
per pose from fixed seeds, with ground-truth 2D and with `noise_px` Gaussian noise (no
swaps, nothing missing).

Saved lifter (`save`, `load`): a folder with `lifter.weights.h5` and `lifter.json` (the
network's sizes, the input convention, the training settings and the measured figures).
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from fbi3d import geometry
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.data import mocap
from fbi3d.models import regressor as regressor_lib
from fbi3d.training import regression_model

IMAGE_LONG_SIDE = 1000
ASPECT = 4.0 / 3.0
FULL_FRAME_DIAGONAL_MM = float(np.hypot(36.0, 24.0))   # 43.27 mm
FOCAL_35MM_RANGE = (24.0, 85.0)
DISTANCE_RANGE_MM = (2000.0, 8000.0)
HEIGHT_RANGE_MM = (500.0, 2000.0)
AIM_HEIGHT_RANGE_MM = (500.0, 1400.0)
OFF_CENTRE_FRACTION = 0.25      # of the half field of view
ROLL_STD_DEG = 2.0
MIN_DEPTH_MM = 500.0
BORDER_FRACTION = 0.01
MIN_EXTENT = 0.2
CAMERA_ROUNDS = 200
CROP_SIZE = 256
MARGIN = 0.2
INPUT_DIM = skeleton.NUM_JOINTS * 2
TEST_NOISE_PX = 5.0
WEIGHTS = 'lifter.weights.h5'
CONFIG = 'lifter.json'
MISSING_RULE = 'ancestor'

# Seed streams, one per random quantity (training draws add the epoch).
STREAM_TRAIN = 10
STREAM_EVAL_CAMERAS = 20
STREAM_EVAL_NOISE = 21

# Chosen on val, one run each (MPJPE with GT 2D / with 5 px noise, mm). On subjects 13
# and 39 (Daz bodies, later found unrepresentative: posebank.py), 40k poses: hidden 512
# x 12 epochs 60.0 / 65.6 beat 1024 x 6 epochs 66.0 / 71.5 in the same time; dropout 0.1
# 56.0 / 62.6 beat 0.25 and 0 (54.9 / 62.8, PA-MPJPE worse); the L2 loss 54.7 / 61.5 beat
# the weighted one; noise up to 8 px beat up to 5 (53.6 / 62.5); all training poses 52.7
# / 59.4. On subjects 2 and 8 (the default val): 59.9 / 66.9; bone-length scaling
# (bone_scale_std 0.1) 61.1 / 67.8, so off; 20 epochs 57.6 / 64.9; learning rate 2e-3
# 57.7 / 64.9 and 4e-3 56.7 / 64.3 at 12 epochs; the ray-aligned frame 53.1 / 60.7 against
# 57.1 / 64.3 in the camera frame; then 24 epochs 51.1 / 59.2 against 12. README.md has
# the table.
DEFAULTS = dict(epochs=24, batch_size=256, learning_rate=4e-3, hidden=512, blocks=2,
                dropout_rate=0.1, loss='l2', noise_max_px=8.0, swap_prob=0.01,
                missing_prob=0.02, mirror=True, max_train_poses=80000, bone_scale_std=0.0,
                seed=0, frame='ray')
FRAMES = ('camera', 'ray')


def _rng(seed, *stream):
  return np.random.default_rng([int(seed)] + [int(s) for s in stream])


# ---------------------------------------------------------------------------------------
# Cameras and views.


def _look_at(eye, target):
  """World->camera rotations [N, 3, 3] of cameras at eye [N, 3] looking at target [N, 3],
  z up (geometry.look_at_rotation, batched)."""
  forward = target - eye
  forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
  right = np.cross(forward, [0.0, 0.0, 1.0])
  right /= np.linalg.norm(right, axis=-1, keepdims=True)
  down = np.cross(forward, right)
  return np.stack([right, down, forward], axis=1)


def _camera_turns(yaw, pitch, roll):
  """Rotations [N, 3, 3] in the camera frame (x right, y down, z forward): roll about z
  after yaw about y after pitch about x."""
  def rot(axis, angle):
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((len(angle), 3, 3))
    i, j = [k for k in range(3) if k != axis]
    out[:, axis, axis] = 1.0
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out
  return rot(2, roll) @ rot(1, yaw) @ rot(0, pitch)


def sample_cameras(rng, n):
  """n photographer's cameras (module docstring): dict of rotation [n, 3, 3] world->camera,
  centre [n, 3] mm, intrinsics [n, 4] (fx, fy, cx, cy), size [n, 2] (width, height px),
  focal_35mm [n]."""
  n = int(n)
  long_side, short_side = IMAGE_LONG_SIDE, round(IMAGE_LONG_SIDE / ASPECT)
  portrait = rng.random(n) < 0.5
  width = np.where(portrait, short_side, long_side).astype(np.float64)
  height = np.where(portrait, long_side, short_side).astype(np.float64)
  f35 = np.exp(rng.uniform(np.log(FOCAL_35MM_RANGE[0]), np.log(FOCAL_35MM_RANGE[1]), n))
  focal = f35 * np.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
  distance = rng.uniform(*DISTANCE_RANGE_MM, n)
  azimuth = rng.uniform(0.0, 2.0 * np.pi, n)
  centre = np.stack([distance * np.cos(azimuth), distance * np.sin(azimuth),
                     rng.uniform(*HEIGHT_RANGE_MM, n)], axis=-1)
  target = np.stack([np.zeros(n), np.zeros(n), rng.uniform(*AIM_HEIGHT_RANGE_MM, n)], -1)
  rotation = _look_at(centre, target)
  half_x = np.arctan(width / (2.0 * focal))
  half_y = np.arctan(height / (2.0 * focal))
  turn = _camera_turns(rng.uniform(-1, 1, n) * OFF_CENTRE_FRACTION * half_x,
                       rng.uniform(-1, 1, n) * OFF_CENTRE_FRACTION * half_y,
                       np.radians(rng.normal(0.0, ROLL_STD_DEG, n)))
  intrinsics = np.stack([focal, focal, (width - 1) / 2.0, (height - 1) / 2.0], -1)
  return dict(rotation=turn @ rotation, centre=centre, intrinsics=intrinsics,
              size=np.stack([width, height], -1), focal_35mm=f35)


def place_on_ground(poses, yaw):
  """`mocap.place_on_ground` for poses [N, 17, 3] and yaws [N] (radians)."""
  poses = np.asarray(poses, np.float64)
  rel = poses - poses[:, skeleton.ROOT:skeleton.ROOT + 1]
  c, s = np.cos(yaw), np.sin(yaw)
  x = c[:, None] * rel[..., 0] - s[:, None] * rel[..., 1]
  y = s[:, None] * rel[..., 0] + c[:, None] * rel[..., 1]
  out = np.stack([x, y, rel[..., 2]], axis=-1)
  thigh = 0.5 * (np.linalg.norm(rel[:, 2] - rel[:, 1], axis=-1)
                 + np.linalg.norm(rel[:, 5] - rel[:, 4], axis=-1))
  ankle = mocap.ANKLE_HEIGHT_MM * thigh / skeleton.MEAN_BONE_LENGTHS_MM[2]
  out[..., 2] += (ankle - np.minimum(out[:, 3, 2], out[:, 6, 2]))[:, None]
  return out


def mirror(poses):
  """World poses [N, 17, 3] mirrored left/right: x negated and the sides swapped."""
  out = np.asarray(poses, np.float64)[:, list(skeleton.JOINT_FLIP_PERMUTATION)].copy()
  out[..., 0] *= -1.0
  return out


def _bone_pairs():
  """For every joint, the joint whose bone shares its length factor (its mirror image;
  itself on the centre line)."""
  return [skeleton.JOINT_FLIP_PERMUTATION[j] for j in range(skeleton.NUM_JOINTS)]


def scale_bones(poses, rng, std):
  """Poses [N, 17, 3] with every bone's length multiplied by exp(N(0, std)), the same
  factor for a bone and its mirror image (bodies are about symmetric), each bone keeping
  its direction; the pelvis stays where it is. std 0 returns the poses unchanged."""
  poses = np.asarray(poses, np.float64)
  if std <= 0:
    return poses.copy()
  factors = np.exp(rng.normal(0.0, std, (len(poses), skeleton.NUM_JOINTS)))
  # A bone and its mirror image take the factor drawn for the lower-numbered of the two.
  factors = factors[:, np.minimum(np.arange(skeleton.NUM_JOINTS), _bone_pairs())]
  out = poses.copy()
  for child in range(skeleton.NUM_JOINTS):
    parent = skeleton.PARENTS[child]
    if parent >= 0:
      out[:, child] = out[:, parent] + factors[:, child, None] * (poses[:, child]
                                                                  - poses[:, parent])
  return out


def view(poses_world, rng):
  """One photographer's view of each world pose [N, 17, 3]: dict(joints2d [N, 17, 2]
  image px, pose3d [N, 17, 3] root-relative camera mm, intrinsics [N, 4], size [N, 2],
  focal_35mm [N]). Cameras are drawn again for the poses they do not show well (module
  docstring); ValueError after CAMERA_ROUNDS rounds."""
  world = place_on_ground(poses_world, rng.uniform(0.0, 2.0 * np.pi, len(poses_world)))
  n = len(world)
  joints2d = np.zeros((n, skeleton.NUM_JOINTS, 2))
  cam = np.zeros((n, skeleton.NUM_JOINTS, 3))
  keys = ('intrinsics', 'size', 'focal_35mm')
  kept = {k: np.zeros((n,) + s) for k, s in zip(keys, ((4,), (2,), ()))}
  pending = np.arange(n)
  for _ in range(CAMERA_ROUNDS):
    if not len(pending):
      break
    c = sample_cameras(rng, len(pending))
    p_cam = np.einsum('nij,nkj->nki', c['rotation'], world[pending] - c['centre'][:, None])
    depth = p_cam[..., 2]
    safe = np.maximum(depth, 1.0)
    k = c['intrinsics']
    uv = np.stack([k[:, None, 0] * p_cam[..., 0] / safe + k[:, None, 2],
                   k[:, None, 1] * p_cam[..., 1] / safe + k[:, None, 3]], axis=-1)
    border = BORDER_FRACTION * IMAGE_LONG_SIDE
    inside = (np.all(uv >= border, axis=(1, 2))
              & np.all(uv[..., 0] <= c['size'][:, None, 0] - 1 - border, axis=1)
              & np.all(uv[..., 1] <= c['size'][:, None, 1] - 1 - border, axis=1))
    extent = np.max(uv.max(axis=1) - uv.min(axis=1), axis=-1)
    ok = (np.all(depth >= MIN_DEPTH_MM, axis=1) & inside
          & (extent >= MIN_EXTENT * IMAGE_LONG_SIDE))
    done = pending[ok]
    joints2d[done], cam[done] = uv[ok], p_cam[ok]
    for key in keys:
      kept[key][done] = c[key][ok]
    pending = pending[~ok]
  if len(pending):
    raise ValueError(f'view: no camera of {CAMERA_ROUNDS} draws shows {len(pending)} '
                     'pose(s) whole and large enough.')
  return dict(joints2d=joints2d, pose3d=geometry.root_relative(cam), **kept)


# ---------------------------------------------------------------------------------------
# Detector-like noise and missing joints.


def _ancestor_order():
  """For every joint, its ancestors nearest first (the root's list is empty)."""
  out = []
  for j in range(skeleton.NUM_JOINTS):
    chain, p = [], skeleton.PARENTS[j]
    while p >= 0:
      chain.append(p)
      p = skeleton.PARENTS[p]
    out.append(chain)
  return out


ANCESTORS = _ancestor_order()


def fill_missing(joints2d, valid):
  """Joints [N, 17, 2] with each missing one (valid [N, 17] false) replaced by the rule of
  the module docstring: the nearest known ancestor; a missing pelvis by the mean of the
  known hips (both needed), else of all known joints. A pose with no known joint is
  refused (ValueError)."""
  joints = np.array(joints2d, np.float64)
  valid = np.asarray(valid, bool)
  single = joints.ndim == 2
  if single:
    joints, valid = joints[None], valid[None]
  if joints.shape[1:] != (skeleton.NUM_JOINTS, 2) or valid.shape != joints.shape[:2]:
    raise ValueError(f'fill_missing: expected joints [N, 17, 2] and valid [N, 17], got '
                     f'{joints.shape} and {valid.shape}.')
  if np.any(~valid.any(axis=1)):
    raise ValueError('fill_missing: a pose has no known joint.')
  root = skeleton.ROOT
  hips = valid[:, 1] & valid[:, 4]
  known_mean = (np.sum(np.where(valid[..., None], joints, 0.0), axis=1)
                / valid.sum(axis=1, keepdims=True))
  root_fill = np.where(hips[:, None], 0.5 * (joints[:, 1] + joints[:, 4]), known_mean)
  joints[:, root] = np.where(valid[:, root, None], joints[:, root], root_fill)
  filled = valid.copy()
  filled[:, root] = True
  # Parents come before children in skeleton order, so one pass sees every ancestor
  # already filled: copying the parent's (filled) position gives the nearest known one.
  for j in range(skeleton.NUM_JOINTS):
    if j == root:
      continue
    parent = skeleton.PARENTS[j]
    joints[:, j] = np.where(valid[:, j, None], joints[:, j], joints[:, parent])
  return joints[0] if single else joints


def detector_noise(joints2d, rng, noise_max_px, swap_prob, missing_prob):
  """Detector-like noise on image joints [N, 17, 2] (module docstring); missing joints
  are filled by `fill_missing`. Returns the noisy joints [N, 17, 2]."""
  joints = np.array(joints2d, np.float64)
  n = len(joints)
  std = rng.uniform(0.0, noise_max_px, n) if noise_max_px > 0 else np.zeros(n)
  joints += rng.normal(size=joints.shape) * std[:, None, None]
  if swap_prob > 0:
    for left, right in skeleton.LEFT_RIGHT_PAIRS:
      swap = rng.random(n) < swap_prob
      joints[swap, left], joints[swap, right] = (joints[swap, right].copy(),
                                                 joints[swap, left].copy())
  if missing_prob > 0:
    valid = rng.random((n, skeleton.NUM_JOINTS)) >= missing_prob
    valid[~valid.any(axis=1), skeleton.ROOT] = True
    joints = fill_missing(joints, valid)
  return joints


def crop_boxes(joints2d, margin=MARGIN, min_size=16.0):
  """The square boxes [N, 3] (x0, y0, size; geometry.square_box, vectorised) around
  joints [N, 17, 2]."""
  joints = np.asarray(joints2d, np.float64)
  lo, hi = joints.min(axis=1), joints.max(axis=1)
  size = np.maximum(np.max(hi - lo, axis=-1) * (1.0 + 2.0 * margin), min_size)
  corner = (lo + hi) / 2.0 - size[:, None] / 2.0
  return np.concatenate([corner, size[:, None]], axis=-1)


def crop_inputs_batch(joints2d, crop_size=CROP_SIZE, margin=MARGIN, min_size=16.0):
  """`lifting.crop_inputs` vectorised: joints [N, 17, 2] image px -> [N, 34] float32 in
  the crop of side `crop_size` of each pose's square box (geometry.square_box)."""
  joints = np.asarray(joints2d, np.float64)
  box = crop_boxes(joints, margin, min_size)
  crop = (joints - box[:, None, :2]) * (crop_size / box[:, 2])[:, None, None]
  return crop.reshape(len(joints), -1).astype(np.float32)


def frame_rotations(joints2d, intrinsics):
  """The ray-aligned frames [N, 3, 3] of the crops around image joints [N, 17, 2] seen
  with intrinsics [N, 4] (geometry.ray_rotations of crop_boxes)."""
  return geometry.ray_rotations(crop_boxes(joints2d), intrinsics)


def to_output_frame(pose3d, joints2d, intrinsics, frame):
  """Camera-frame poses [N, 17, 3] in the lifter's output `frame` for the crops around
  joints2d [N, 17, 2] (image pixels) seen with intrinsics [N, 4]."""
  if frame == 'camera':
    return np.asarray(pose3d, np.float64)
  return geometry.to_ray_frame(pose3d, frame_rotations(joints2d, intrinsics))


def to_camera_frame(pred, joints2d, intrinsics, frame):
  """A lifter's output [N, 17, 3] in its `frame` back in the camera frame."""
  if frame == 'camera':
    return np.asarray(pred, np.float64)
  return geometry.from_ray_frame(pred, frame_rotations(joints2d, intrinsics))


# ---------------------------------------------------------------------------------------
# Training, evaluation, saving.


def _check_settings(s):
  problems = []
  for key in ('epochs', 'batch_size', 'hidden', 'blocks', 'max_train_poses'):
    if not int(s[key]) >= 1:
      problems.append(f'{key} must be >= 1 (got {s[key]})')
  if not s['learning_rate'] > 0:
    problems.append(f'learning_rate must be > 0 (got {s["learning_rate"]})')
  if not 0.0 <= s['dropout_rate'] < 1.0:
    problems.append(f'dropout_rate is a drop probability in [0, 1) (got {s["dropout_rate"]})')
  for key in ('swap_prob', 'missing_prob'):
    if not 0.0 <= s[key] <= 0.5:
      problems.append(f'{key} must lie in [0, 0.5] (got {s[key]})')
  if not 0.0 <= s['bone_scale_std'] <= 0.5:
    problems.append(f'bone_scale_std must lie in [0, 0.5] (got {s["bone_scale_std"]})')
  if not s['noise_max_px'] >= 0.0:
    problems.append(f'noise_max_px must be >= 0 (got {s["noise_max_px"]})')
  if s['frame'] not in FRAMES:
    problems.append(f'frame must be one of {", ".join(FRAMES)} (got {s["frame"]!r})')
  if s['loss'] not in ('weighted', 'l2'):
    problems.append(f'loss must be weighted or l2 (got {s["loss"]!r})')
  if problems:
    raise ValueError('lifter settings: ' + '; '.join(problems) + '.')


def training_examples(poses, rng, settings):
  """One epoch's (inputs [N, 34], targets [N, 17, 3] in settings['frame']) of world
  poses [N, 17, 3]."""
  poses = scale_bones(poses, rng, settings['bone_scale_std'])
  if settings['mirror']:
    flip = rng.random(len(poses)) < 0.5
    poses = poses.copy()
    poses[flip] = mirror(poses[flip])
  views = view(poses, rng)
  noisy = detector_noise(views['joints2d'], rng, settings['noise_max_px'],
                         settings['swap_prob'], settings['missing_prob'])
  targets = to_output_frame(views['pose3d'], noisy, views['intrinsics'], settings['frame'])
  return crop_inputs_batch(noisy), targets.astype(np.float32)


def subsample(poses, max_poses):
  """At most `max_poses` of poses [N, ...], evenly spaced (every k-th, k = ceil(N /
  max_poses)), in order: a deterministic thinning that keeps every clip."""
  n = len(poses)
  step = int(np.ceil(n / max_poses)) if n > max_poses else 1
  return poses[::step]


def train(train_poses, *, val_poses=None, log=None, **overrides):
  """Trains a lifter on world poses [N, 17, 3]; returns (network, info dict).

  overrides: any of DEFAULTS. With `val_poses`, the val MPJPE / PA-MPJPE (GT 2D and
  TEST_NOISE_PX noise) is measured after training and put in info['val'].
  """
  unknown = sorted(set(overrides) - set(DEFAULTS))
  if unknown:
    raise ValueError(f'lifter settings: unknown {", ".join(unknown)}.')
  s = dict(DEFAULTS, **overrides)
  _check_settings(s)
  say = log or (lambda _: None)
  poses = subsample(np.asarray(train_poses, np.float64), int(s['max_train_poses']))
  if not len(poses):
    raise ValueError('lifter: no training poses.')
  tf.keras.utils.set_random_seed(int(s['seed']))
  network = regressor_lib.build_regressor(INPUT_DIM, hidden=int(s['hidden']),
                                          blocks=int(s['blocks']),
                                          dropout_rate=float(s['dropout_rate']),
                                          name='lifter')
  inputs, targets = training_examples(poses, _rng(s['seed'], STREAM_TRAIN, 0), s)
  regressor_lib.set_normalisation(network, *regressor_lib.normalisation_stats(inputs,
                                                                              targets))
  model = regression_model.WeightedRegressionModel(network, loss=s['loss'])
  batch = min(int(s['batch_size']), len(poses))
  steps = int(s['epochs']) * (len(poses) // batch)
  model.compile(optimizer=regressor_lib.regressor_optimizer(
      float(s['learning_rate']), decay_steps=max(steps, 1), decay_rate=0.1))
  alpha = regression_model.UpdateAlpha(model)
  start = time.time()
  history = []
  for epoch in range(int(s['epochs'])):
    if epoch:
      inputs, targets = training_examples(poses, _rng(s['seed'], STREAM_TRAIN, epoch), s)
    data = tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(
        len(inputs), seed=int(s['seed']) + epoch).batch(batch, drop_remainder=True)
    out = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                    callbacks=[alpha])
    logs = {k: float(v[-1]) for k, v in out.history.items()}
    history.append(logs)
    say(f'lifter: epoch {epoch + 1}/{s["epochs"]}, loss {logs.get("loss", 0):.4f}, train '
        f'MPJPE {logs.get("mpjpe_mm", 0):.1f} mm ({time.time() - start:.0f} s)')
  info = dict(settings=s, train_poses=int(len(poses)), train_poses_available=int(
      len(train_poses)), train_seconds=round(time.time() - start, 1), history=history)
  if val_poses is not None and len(val_poses):
    info['val'] = evaluate_split(network, val_poses, seed=s['seed'], frame=s['frame'])
    say(f'lifter: val {format_result(info["val"])}')
  return network, info


def test_views(poses, seed=0, noise_px=TEST_NOISE_PX):
  """The fixed test views of world poses [N, 17, 3]: one camera per pose from seed
  stream STREAM_EVAL_CAMERAS, and the same 2D with Gaussian noise of `noise_px` from
  STREAM_EVAL_NOISE. Returns dict(gt2d, noisy2d: image joints [N, 17, 2], intrinsics
  [N, 4], pose3d: camera-frame targets [N, 17, 3])."""
  views = view(np.asarray(poses, np.float64), _rng(seed, STREAM_EVAL_CAMERAS))
  noise = _rng(seed, STREAM_EVAL_NOISE).normal(0.0, noise_px, views['joints2d'].shape)
  return dict(gt2d=views['joints2d'], noisy2d=views['joints2d'] + noise,
              intrinsics=views['intrinsics'], pose3d=views['pose3d'])


def test_inputs(poses, seed=0, noise_px=TEST_NOISE_PX):
  """(inputs with GT 2D [N, 34], inputs with noise [N, 34], camera-frame targets
  [N, 17, 3]) of `test_views`."""
  v = test_views(poses, seed, noise_px)
  return crop_inputs_batch(v['gt2d']), crop_inputs_batch(v['noisy2d']), v['pose3d']


def predict(network, inputs):
  return network.predict(np.asarray(inputs, np.float32), batch_size=1024, verbose=0)


def evaluate_split(network, poses, seed=0, noise_px=TEST_NOISE_PX, frame='camera'):
  """MPJPE and PA-MPJPE (mm) of a lifter whose output is in `frame` on the fixed views of
  poses (`test_views`), with ground-truth 2D ('gt2d') and with noise ('noisy2d'), in the
  camera frame."""
  v = test_views(poses, seed, noise_px)
  targets = v['pose3d']
  out = dict(poses=int(len(poses)), noise_px=float(noise_px))
  for key in ('gt2d', 'noisy2d'):
    pred = to_camera_frame(predict(network, crop_inputs_batch(v[key])), v[key],
                           v['intrinsics'], frame)
    out[key] = dict(mpjpe_mm=round(float(metrics.mpjpe(pred, targets)), 2),
                    pa_mpjpe_mm=round(float(metrics.pa_mpjpe(pred, targets)), 2))
  return out


def format_result(r):
  return (f'GT 2D {r["gt2d"]["mpjpe_mm"]:.1f} / {r["gt2d"]["pa_mpjpe_mm"]:.1f} mm, '
          f'{r["noise_px"]:g} px noise {r["noisy2d"]["mpjpe_mm"]:.1f} / '
          f'{r["noisy2d"]["pa_mpjpe_mm"]:.1f} mm (MPJPE / PA-MPJPE, {r["poses"]} poses)')


def save(network, info, folder):
  """Writes the lifter's weights and JSON into `folder`; returns the folder."""
  os.makedirs(folder, exist_ok=True)
  network.save_weights(os.path.join(folder, WEIGHTS))
  s = info['settings']
  doc = dict(info, network=dict(input_dim=INPUT_DIM, hidden=int(s['hidden']),
                                blocks=int(s['blocks']),
                                dropout_rate=float(s['dropout_rate'])),
             crop_size=CROP_SIZE, margin=MARGIN, missing_joints=MISSING_RULE,
             input=('2D joints (x, y) in pixels of a crop of side crop_size of the square '
                    'box around the joints (margin 0.2), in the order of fbi3d/skeleton.py, '
                    'flattened; missing joints filled by lifter.fill_missing'),
             frame=s['frame'],
             output=('root-relative 3D pose, mm, in the camera frame' if s['frame'] == 'camera'
                     else 'root-relative 3D pose, mm, in the ray-aligned frame of the crop '
                     '(geometry.ray_rotations of the square box around the 2D joints and '
                     'the camera intrinsics)'))
  with open(os.path.join(folder, CONFIG), 'w') as f:
    json.dump(doc, f, indent=1)
    f.write('\n')
  return folder


def load(folder):
  """(network, config dict) of a lifter saved by `save`; ValueError naming what is
  missing."""
  config_path = os.path.join(folder, CONFIG)
  weights_path = os.path.join(folder, WEIGHTS)
  for path in (config_path, weights_path):
    if not os.path.isfile(path):
      raise ValueError(f'{folder} is not a saved lifter: {os.path.basename(path)} is '
                       'missing; train one with python tools/train_lifter.py --out=FOLDER.')
  with open(config_path) as f:
    config = json.load(f)
  net = config.get('network', {})
  if net.get('input_dim') != INPUT_DIM:
    raise ValueError(f'{config_path}: the lifter reads {net.get("input_dim")} inputs, not '
                     f'{INPUT_DIM}.')
  network = regressor_lib.build_regressor(INPUT_DIM, hidden=int(net['hidden']),
                                          blocks=int(net['blocks']),
                                          dropout_rate=float(net['dropout_rate']),
                                          name='lifter')
  network.load_weights(weights_path)
  # Lifters saved before the choice existed predict in the camera frame.
  config.setdefault('frame', 'camera')
  return network, config


def format_table(info):
  """Markdown table of a trained lifter's figures (info['results'])."""
  rows = info.get('results', {})
  noise = next(iter(rows.values()))['noise_px'] if rows else TEST_NOISE_PX
  lines = [f'| poses | count | MPJPE GT 2D | PA-MPJPE GT 2D | MPJPE {noise:g} px | '
           f'PA-MPJPE {noise:g} px |', '|---|---|---|---|---|---|']
  for name, r in rows.items():
    lines.append(f'| {name} | {r["poses"]} | {r["gt2d"]["mpjpe_mm"]:.1f} | '
                 f'{r["gt2d"]["pa_mpjpe_mm"]:.1f} | {r["noisy2d"]["mpjpe_mm"]:.1f} | '
                 f'{r["noisy2d"]["pa_mpjpe_mm"]:.1f} |')
  lines.append(f'\nTrained on {info["train_poses"]} of {info["train_poses_available"]} '
               f'train poses, {info["settings"]["epochs"]} epochs, '
               f'{info["train_seconds"]:.0f} s. Errors in mm.')
  return '\n'.join(lines)

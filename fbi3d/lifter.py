"""The pose-bank lifter: the Base regressor (`models.regressor.build_regressor`, 2D joints
in crop pixels -> root-relative camera-frame 3D in mm) trained on the pose bank
(`fbi3d.data.posebank`) seen through cameras held the way a person photographs another,
with detector-like 2D noise; its measurement on the held-out subjects; saving and loading.

The cameras are `fbi3d.lifter_cameras`'s (`view`); the 2D noise, the filling of missing
joints, the crop inputs and the output frame `fbi3d.lifter_inputs`'.

Training (`train`): every epoch, each training pose gets a new yaw, camera and noise draw
(optionally mirrored left/right with probability 1/2, each arm and leg bent, with
probability limb_mix_prob, as another training pose's: `lifter_cameras.mix_limbs`, and
each arm and leg bone turned by a small random angle, `lifter_cameras.bend_limbs`);
`build_regressor(34)` with the first epoch's normalisation statistics, the mean joint
distance as the loss (`regression_model`; L2 and the weighted loss are options), Adam
whose rate decays exponentially to a tenth over the run; the settings chosen on val are
DEFAULTS.
`evaluate_split` measures MPJPE and PA-MPJPE on one camera per pose from fixed seeds,
with ground-truth 2D and with `noise_px` Gaussian noise (no swaps, nothing missing).
With `mirror_average` (the default) the lifter in use is `mirror_averaged`: it also lifts
the 2D mirrored left/right, mirrors that pose back and averages the two.

Saved lifter (`save`, `load`): a folder with `lifter.weights.h5` and `lifter.json` (the
network's sizes, the input convention, the training settings and the measured figures).
A training into a folder keeps its per-epoch checkpoints in TRAINING_DIR there until the
new lifter is saved; `load` refuses a folder whose TRAINING_DIR holds a training that did
not save the lifter beside it (`lifter.json` records `training_sha256`, the hash of what
the training was), since the lifter there is then an earlier one.
"""

import hashlib
import json
import os
import time

import numpy as np
import tensorflow as tf

from fbi3d import lifter_cameras
from fbi3d import lifter_inputs
from fbi3d import losses as losses_lib
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.data import manifest as manifest_lib
from fbi3d.models import regressor as regressor_lib
from fbi3d.training import regression_model

TEST_NOISE_PX = 5.0
WEIGHTS = 'lifter.weights.h5'
CONFIG = 'lifter.json'
# The per-epoch checkpoints of a training into a lifter's folder (tools/train_lifter.py).
TRAINING_DIR = 'checkpoints'

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
# the table. On the bank with the thorax bone put back, views cut by the picture's lower
# edge (truncate_prob 0.1): val 55.2 / 64.2 against 55.5 / 64.3 (PA-MPJPE 42.2 against
# 41.6), and a portrait that shows six joints becomes a person standing instead of a
# tangle (README, Side by side with MediaPipe). mirror_average: 1.0 to 1.4 mm lower
# MPJPE on val and the test subjects under two seeds for twice the inference. Limbs
# exchanged between poses (lifter_cameras.mix_limbs), two seeds each, val MPJPE GT 2D /
# 5 px: limb_mix_prob 0.25 52.1 / 62.1 mm, 0.5 53.5 / 63.9, both legs from one donor at
# 0.5 53.0 / 63.0, none 54.6 / 63.2 (0.75, seed 0 only: 56.1 / 66.4); the test subjects
# gain 7.2 and 8.6 mm (README, A lifter trained on the pose bank). The mean joint
# distance as the loss instead of L2, three seeds each: val 49.7 / 60.0 mm against 51.8 /
# 61.8, the test subjects 60.7 / 68.4 against 61.4 / 69.3 (README, the same section).
# Limb bones turned by N(0, 10 degrees) (bend_std_deg), three seeds: val 49.9 / 60.8
# against 49.6 / 60.0, so off, though the test subjects gain 1.1 mm (README, the same
# section); 20 degrees and the trunk's turn (seed 0) do not lower val either.
DEFAULTS = dict(epochs=24, batch_size=256, learning_rate=4e-3, hidden=512, blocks=2,
                dropout_rate=0.1, loss='joint', noise_max_px=8.0, swap_prob=0.01,
                missing_prob=0.02, mirror=True, max_train_poses=80000, bone_scale_std=0.0,
                seed=0, frame='ray', truncate_prob=0.1, mirror_average=True,
                limb_mix_prob=0.25, bend_std_deg=0.0,
                trunk_bend_std_deg=0.0)
FRAMES = ('camera', 'ray')


def _rng(seed, *stream):
  return np.random.default_rng([int(seed)] + [int(s) for s in stream])


def _check_settings(s):
  problems = []
  for key in ('epochs', 'batch_size', 'hidden', 'blocks', 'max_train_poses'):
    if not int(s[key]) >= 1:
      problems.append(f'{key} must be >= 1 (got {s[key]})')
  if not (np.isfinite(s['learning_rate']) and s['learning_rate'] > 0):
    problems.append(f'learning_rate must be a finite number > 0 (got {s["learning_rate"]})')
  if not 0.0 <= s['dropout_rate'] < 1.0:
    problems.append(f'dropout_rate is a drop probability in [0, 1) (got {s["dropout_rate"]})')
  for key in ('swap_prob', 'missing_prob', 'truncate_prob'):
    if not 0.0 <= s[key] <= 0.5:
      problems.append(f'{key} must lie in [0, 0.5] (got {s[key]})')
  if not 0.0 <= s['limb_mix_prob'] <= 1.0:
    problems.append(f'limb_mix_prob is a probability in [0, 1] (got {s["limb_mix_prob"]})')
  for key in ('bend_std_deg', 'trunk_bend_std_deg'):
    if not (np.isfinite(s[key]) and 0.0 <= s[key] <= 90.0):
      problems.append(f'{key} must lie in [0, 90] degrees (got {s[key]})')
  if not 0.0 <= s['bone_scale_std'] <= 0.5:
    problems.append(f'bone_scale_std must lie in [0, 0.5] (got {s["bone_scale_std"]})')
  if not (np.isfinite(s['noise_max_px']) and s['noise_max_px'] >= 0.0):
    problems.append(f'noise_max_px must be a finite number >= 0 (got {s["noise_max_px"]})')
  if s['frame'] not in FRAMES:
    problems.append(f'frame must be one of {", ".join(FRAMES)} (got {s["frame"]!r})')
  if s['loss'] not in losses_lib.LOSSES:
    problems.append(f'loss must be one of {", ".join(losses_lib.LOSSES)} (got '
                    f'{s["loss"]!r})')
  if problems:
    raise ValueError('lifter settings: ' + '; '.join(problems) + '.')


def training_examples(poses, rng, settings):
  """One epoch's (inputs [N, 34], targets [N, 17, 3] in settings['frame']) of world
  poses [N, 17, 3]."""
  poses = lifter_cameras.scale_bones(poses, rng, settings['bone_scale_std'])
  poses = lifter_cameras.mix_limbs(poses, rng, settings['limb_mix_prob'])
  poses = lifter_cameras.bend_limbs(poses, rng, settings['bend_std_deg'])
  poses = lifter_cameras.bend_limbs(poses, rng, settings['trunk_bend_std_deg'],
                                    lifter_cameras.TRUNK_BEND_JOINTS)
  if settings['mirror']:
    flip = rng.random(len(poses)) < 0.5
    poses = poses.copy()
    poses[flip] = lifter_cameras.mirror(poses[flip])
  views = lifter_cameras.view(poses, rng)
  noisy = lifter_inputs.detector_noise(views['joints2d'], rng, settings['noise_max_px'],
                         settings['swap_prob'], settings['missing_prob'],
                         settings['truncate_prob'])
  targets = lifter_inputs.to_output_frame(views['pose3d'], noisy, views['intrinsics'],
                                          settings['frame'])
  return lifter_inputs.crop_inputs_batch(noisy), targets.astype(np.float32)


def check_poses(poses, what):
  """poses as float64 [N, 17, 3]; ValueError naming `what` and the first pose and joint
  that is not finite, or the shape when it is not [N, 17, 3]."""
  poses = np.asarray(poses, np.float64)
  if poses.ndim != 3 or poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'lifter: {what} must be poses [N, {skeleton.NUM_JOINTS}, 3] (mm); '
                     f'got shape {poses.shape}.')
  bad = ~np.isfinite(poses).all(axis=-1)
  if bad.any():
    i, j = (int(v) for v in np.argwhere(bad)[0])
    raise ValueError(f'lifter: {what}: pose {i} (of {len(poses)}) has a NaN or infinite '
                     f'coordinate at {skeleton.JOINT_NAMES[j]}; {int(bad.any(axis=1).sum())} '
                     'pose(s) in all. Remove them (or make the pose bank again).')
  return poses


def subsample(poses, max_poses):
  """At most `max_poses` of poses [N, ...], evenly spaced (every k-th, k = ceil(N /
  max_poses)), in order: a deterministic thinning that keeps every clip."""
  n = len(poses)
  step = int(np.ceil(n / max_poses)) if n > max_poses else 1
  return poses[::step]


def train(train_poses, *, val_poses=None, log=None, checkpoint_dir=None, **overrides):
  """Trains a lifter on world poses [N, 17, 3]; returns (network, info dict).

  overrides: any of DEFAULTS. With `val_poses`, the val MPJPE / PA-MPJPE (GT 2D and
  TEST_NOISE_PX noise) is measured after training and put in info['val'].
  With `checkpoint_dir`, the network, the optimizer and the epoch are saved there after
  every epoch (with RESUME_FILE: the settings, the training poses' hash and the history),
  and a training stopped part way resumes from its last saved epoch; a folder of
  another training (other settings or poses) is refused. Every epoch's examples and
  shuffle depend on the seed and the epoch alone, so a resumed training sees the same
  data as an uninterrupted one (its dropout masks differ).
  """
  unknown = sorted(set(overrides) - set(DEFAULTS))
  if unknown:
    raise ValueError(f'lifter settings: unknown {", ".join(unknown)}.')
  s = dict(DEFAULTS, **overrides)
  _check_settings(s)
  say = log or (lambda _: None)
  train_poses = check_poses(train_poses, 'training poses')
  if val_poses is not None:
    val_poses = check_poses(val_poses, 'val poses')
  poses = subsample(train_poses, int(s['max_train_poses']))
  if not len(poses):
    raise ValueError('lifter: no training poses.')
  tf.keras.utils.set_random_seed(int(s['seed']))
  network = regressor_lib.build_regressor(lifter_inputs.INPUT_DIM,
                                          hidden=int(s['hidden']), blocks=int(s['blocks']),
                                          dropout_rate=float(s['dropout_rate']),
                                          name='lifter')
  inputs, targets = training_examples(poses, _rng(s['seed'], STREAM_TRAIN, 0), s)
  batch = min(int(s['batch_size']), len(poses))
  steps = int(s['epochs']) * (len(poses) // batch)
  model = regression_model.compile_on_arrays(network, inputs, targets, s['loss'],
                            regressor_lib.regressor_optimizer(
                                float(s['learning_rate']), decay_steps=max(steps, 1),
                                decay_rate=0.1))
  alpha = regression_model.UpdateAlpha(model)
  history, first, seconds_before = [], 0, 0.0
  # What this training is (settings and the training poses' hash), hashed once: the
  # resume record and lifter.json's training_sha256 both come from it.
  key = training_key(s, poses)
  saver = _Resume(checkpoint_dir, model, key) if checkpoint_dir else None
  if saver is not None:
    first, history, seconds_before = saver.restore(say)
    if not first:
      saver.begin()
  start = time.time()
  for epoch in range(first, int(s['epochs'])):
    if epoch:
      inputs, targets = training_examples(poses, _rng(s['seed'], STREAM_TRAIN, epoch), s)
    data = tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(
        len(inputs), seed=int(s['seed']) + epoch).batch(batch, drop_remainder=True)
    out = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                    callbacks=[alpha])
    logs = {k: float(v[-1]) for k, v in out.history.items()}
    if not np.isfinite(logs.get('loss', 0.0)):
      kept = (f' The checkpoint of epoch {epoch} in {checkpoint_dir} is kept: the same '
              'command resumes there; for another rate remove that folder first.'
              if saver is not None and epoch else '')
      raise ValueError(f'lifter: the training loss is {logs["loss"]} after epoch '
                       f'{epoch + 1}; nothing is saved. Lower --learning_rate (it is '
                       f'{s["learning_rate"]}) and train again.{kept}')
    history.append(logs)
    if saver is not None:
      saver.save(epoch + 1, history, seconds_before + time.time() - start)
    say(f'lifter: epoch {epoch + 1}/{s["epochs"]}, loss {logs.get("loss", 0):.4f}, train '
        f'MPJPE {logs.get("mpjpe_mm", 0):.1f} mm ({time.time() - start:.0f} s)')
  info = dict(settings=s, train_poses=int(len(poses)), train_poses_available=int(
      len(train_poses)), train_seconds=round(seconds_before + time.time() - start, 1),
              history=history, training_sha256=key_sha256(key))
  if val_poses is not None and len(val_poses):
    info['val'] = evaluate_split(network, val_poses, seed=s['seed'], frame=s['frame'],
                                 mirror_average=s['mirror_average'])
    say(f'lifter: val {format_result(info["val"])}')
  return network, info


RESUME_FILE = 'resume.json'


def training_key(settings, poses):
  """What a training is: its settings and the hash of its training poses, as JSON
  holds them (what RESUME_FILE records, and `key_sha256` hashes)."""
  return json.loads(json.dumps(dict(
      settings=settings, poses=int(len(poses)),
      poses_sha256=manifest_lib.arrays_sha256([np.asarray(poses, np.float64)]))))


def key_sha256(key):
  """The first 16 hex digits of the sha256 of a training key's sorted JSON."""
  text = json.dumps(key, sort_keys=True, separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Resume:
  """The per-epoch checkpoints of `train` in one folder: tf.train.Checkpoint of the
  training model (network and loss state), its optimizer and the epoch, and RESUME_FILE
  beside them."""

  def __init__(self, folder, model, key):
    self.folder = folder
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
    self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                          epoch=self.epoch)
    self.manager = tf.train.CheckpointManager(self.checkpoint, folder, max_to_keep=1)
    self.key = key

  def restore(self, say):
    """(first epoch to train, history so far, training seconds so far)."""
    path = os.path.join(self.folder, RESUME_FILE)
    latest = self.manager.latest_checkpoint
    if latest is None:
      return 0, [], 0.0
    try:
      with open(path) as f:
        saved = json.load(f)
    except (OSError, ValueError) as e:
      raise ValueError(f'{self.folder} holds lifter checkpoints but no readable '
                       f'{RESUME_FILE} ({e}); remove the folder to train afresh.') from None
    if not isinstance(saved, dict) or saved.get('key') != self.key:
      raise ValueError(f'{self.folder} holds the checkpoints of a lifter trained with other '
                       'settings or poses; remove the folder to train afresh, or give '
                       'another output folder.')
    self.checkpoint.restore(latest).expect_partial()
    first = int(self.epoch.numpy())
    history = list(saved.get('history', []))[:first]
    say(f'lifter: resuming from {latest} (epoch {first} of '
        f'{self.key["settings"]["epochs"]})')
    return first, history, float(saved.get('train_seconds', 0.0))

  def begin(self):
    """RESUME_FILE at epoch 0, before the first checkpoint: from the start, the folder
    says a training is under way (`load` refuses the lifter beside it)."""
    os.makedirs(self.folder, exist_ok=True)
    manifest_lib.write_json_atomic(
        os.path.join(self.folder, RESUME_FILE),
        dict(key=self.key, epoch=0, history=[], train_seconds=0.0),
        indent=1, final_newline=True)

  def save(self, epoch, history, seconds):
    # The history first: a stop before the checkpoint is written resumes from the one
    # before, whose epochs the history holds (restore keeps as many as it has trained);
    # the other way round a stop between the two lost the last epoch's entry.
    os.makedirs(self.folder, exist_ok=True)
    manifest_lib.write_json_atomic(
        os.path.join(self.folder, RESUME_FILE),
        dict(key=self.key, epoch=epoch, history=history, train_seconds=round(seconds, 1)),
        indent=1, final_newline=True)
    self.epoch.assign(epoch)
    self.manager.save(checkpoint_number=epoch)


def test_views(poses, seed=0, noise_px=TEST_NOISE_PX):
  """The fixed test views of world poses [N, 17, 3]: one camera per pose from seed
  stream STREAM_EVAL_CAMERAS, and the same 2D with Gaussian noise of `noise_px` from
  STREAM_EVAL_NOISE. Returns dict(gt2d, noisy2d: image joints [N, 17, 2], intrinsics
  [N, 4], pose3d: camera-frame targets [N, 17, 3])."""
  if not (np.isfinite(noise_px) and noise_px >= 0):
    raise ValueError(f'lifter: noise_px (the test 2D noise, image pixels) must be a finite '
                     f'number >= 0, got {noise_px}.')
  views = lifter_cameras.view(np.asarray(poses, np.float64),
                              _rng(seed, STREAM_EVAL_CAMERAS))
  noise = _rng(seed, STREAM_EVAL_NOISE).normal(0.0, noise_px, views['joints2d'].shape)
  return dict(gt2d=views['joints2d'], noisy2d=views['joints2d'] + noise,
              intrinsics=views['intrinsics'], pose3d=views['pose3d'])


def test_inputs(poses, seed=0, noise_px=TEST_NOISE_PX):
  """(inputs with GT 2D [N, 34], inputs with noise [N, 34], camera-frame targets
  [N, 17, 3]) of `test_views`."""
  v = test_views(poses, seed, noise_px)
  return (lifter_inputs.crop_inputs_batch(v['gt2d']),
          lifter_inputs.crop_inputs_batch(v['noisy2d']), v['pose3d'])


def mirror_averaged(network, crop_size=lifter_inputs.CROP_SIZE):
  """A Keras model [N, 34] -> [N, 17, 3]: the mean of `network`'s pose for a crop's 2D
  and, mirrored back, its pose for the same 2D mirrored left/right.

  Mirroring the 2D: x -> crop_size - x and every left joint exchanged with its right twin
  (skeleton.JOINT_FLIP_PERMUTATION); mirroring a pose back: x -> -x and the same exchange.
  Both are exact in the ray-aligned frame, where the crop's centre lies straight ahead, so
  the person mirrored about the crop's vertical centre line is the pose mirrored about
  the plane x = 0; in the camera frame they hold for a person near the image centre.
  Measured with the lifters of the defaults, seeds 0 and 1 (MPJPE, mm): val 55.5 -> 54.5
  and 55.7 -> 54.7 with ground-truth 2D, the test subjects 71.0 -> 70.0 and 70.2 -> 68.8,
  with 5 px noise 76.8 -> 75.9 and 76.3 -> 74.9 (README, A lifter trained on the pose
  bank).
  """
  perm = tf.constant(skeleton.JOINT_FLIP_PERMUTATION, tf.int32)
  joints = skeleton.NUM_JOINTS

  def mirror_2d(flat):
    pts = tf.gather(tf.reshape(flat, [-1, joints, 2]), perm, axis=1)
    pts = pts * tf.constant([-1.0, 1.0]) + tf.constant([float(crop_size), 0.0])
    return tf.reshape(pts, [-1, joints * 2])

  def mirror_3d(pose):
    return tf.gather(pose, perm, axis=1) * tf.constant([-1.0, 1.0, 1.0])

  inputs = tf.keras.Input((lifter_inputs.INPUT_DIM,), dtype=tf.float32,
                          name='lifter_mirror_input')
  direct = network(inputs)
  mirrored = tf.keras.layers.Lambda(mirror_3d, name='lifter_mirror_back')(
      network(tf.keras.layers.Lambda(mirror_2d, name='lifter_mirror_2d')(inputs)))
  outputs = tf.keras.layers.Average(name='lifter_mirror_average')([direct, mirrored])
  return tf.keras.Model(inputs, outputs, name='lifter_mirror_averaged')


def predict(network, inputs):
  return network.predict(np.asarray(inputs, np.float32), batch_size=1024, verbose=0)


def evaluate_split(network, poses, seed=0, noise_px=TEST_NOISE_PX, frame='camera',
                   mirror_average=False):
  """MPJPE and PA-MPJPE (mm) of a lifter whose output is in `frame` on the fixed views of
  poses (`test_views`), with ground-truth 2D ('gt2d') and with noise ('noisy2d'), in the
  camera frame; with `mirror_average`, of `mirror_averaged(network)`."""
  poses = check_poses(poses, 'poses to measure on')
  if mirror_average:
    network = mirror_averaged(network)
  v = test_views(poses, seed, noise_px)
  targets = v['pose3d']
  out = dict(poses=int(len(poses)), noise_px=float(noise_px))
  for key in ('gt2d', 'noisy2d'):
    pred = lifter_inputs.to_camera_frame(
        predict(network, lifter_inputs.crop_inputs_batch(v[key])), v[key], v['intrinsics'],
        frame)
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
  # What an interrupted save left behind.
  for name in os.listdir(folder):
    if name.startswith(('lifter.tmp', CONFIG + '.tmp')):
      os.remove(os.path.join(folder, name))
  s = info['settings']
  doc = dict(info, network=dict(input_dim=lifter_inputs.INPUT_DIM,
                                hidden=int(s['hidden']),
                                blocks=int(s['blocks']),
                                dropout_rate=float(s['dropout_rate'])),
             crop_size=lifter_inputs.CROP_SIZE, margin=lifter_inputs.MARGIN,
             missing_joints=lifter_inputs.MISSING_RULE,
             input=('2D joints (x, y) in pixels of a crop of side crop_size of the square '
                    'box around the joints (margin 0.2), in the order of fbi3d/skeleton.py, '
                    'flattened; missing joints filled by lifter_inputs.fill_missing'),
             frame=s['frame'], mirror_average=bool(s['mirror_average']),
             output=('root-relative 3D pose, mm, in the camera frame' if s['frame'] == 'camera'
                     else 'root-relative 3D pose, mm, in the ray-aligned frame of the crop '
                     '(geometry.ray_rotations of the square box around the 2D joints and '
                     'the camera intrinsics)'))
  # Both files under temporary names first; the old JSON goes before the new weights
  # take its weights' place, so an interrupted save leaves a folder that `load` refuses,
  # never new weights read with the old settings.
  tag = f'.tmp{os.getpid()}'
  weights_tmp = os.path.join(folder, f'lifter{tag}.weights.h5')
  config_tmp = os.path.join(folder, CONFIG + tag)
  network.save_weights(weights_tmp)
  manifest_lib.write_json_atomic(config_tmp, doc, indent=1, final_newline=True)
  if os.path.exists(os.path.join(folder, CONFIG)):
    os.remove(os.path.join(folder, CONFIG))
  os.replace(weights_tmp, os.path.join(folder, WEIGHTS))
  os.replace(config_tmp, os.path.join(folder, CONFIG))
  return folder


def load(folder):
  """(network, config dict) of a lifter saved by `save`, the network ready to use
  (`mirror_averaged` when it was saved so); ValueError naming what is missing."""
  config_path = os.path.join(folder, CONFIG)
  weights_path = os.path.join(folder, WEIGHTS)
  for path in (config_path, weights_path):
    if not os.path.isfile(path):
      raise ValueError(f'{folder} is not a saved lifter: {os.path.basename(path)} is '
                       'missing; train one with python tools/train_lifter.py --out=FOLDER.')
  config = _read_config(config_path)
  _check_no_unsaved_training(folder, config)
  net = config['network']
  network = regressor_lib.build_regressor(lifter_inputs.INPUT_DIM,
                                          hidden=int(net['hidden']),
                                          blocks=int(net['blocks']),
                                          dropout_rate=float(net['dropout_rate']),
                                          name='lifter')
  try:
    network.load_weights(weights_path)
  except (ValueError, OSError) as e:
    raise ValueError(f'{weights_path}: not the weights of the network {config_path} '
                     f'describes ({e}); train the lifter again.') from None
  if config['mirror_average']:
    network = mirror_averaged(network, config.get('crop_size', lifter_inputs.CROP_SIZE))
  return network, config


def _check_no_unsaved_training(folder, config):
  """ValueError when `folder`'s TRAINING_DIR holds a training that is not the one whose
  lifter `folder` holds: stopped, or still running, before it saved its own."""
  path = os.path.join(folder, TRAINING_DIR, RESUME_FILE)
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      saved = json.load(f)
    key, epoch = saved['key'], int(saved['epoch'])
    epochs = int(key['settings']['epochs'])
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise ValueError(f'{folder}: {os.path.join(TRAINING_DIR, RESUME_FILE)} is not readable '
                     f'({e}): a training into this folder was stopped; remove '
                     f'{os.path.join(folder, TRAINING_DIR)} to use the lifter saved '
                     'there.') from None
  if key_sha256(key) == config.get('training_sha256'):
    return      # the training saved this lifter and stopped before it cleaned up
  raise ValueError(
      f'{folder} holds a lifter training that has not saved its lifter (epoch {epoch} of '
      f'{epochs} in {os.path.join(folder, TRAINING_DIR)}): the lifter saved there is an '
      'earlier one. Run the same tools/train_lifter.py command again to finish the '
      f'training, or remove {os.path.join(folder, TRAINING_DIR)} to use the earlier '
      'lifter.')


def _read_config(config_path):
  """lifter.json as a dict with every key `load` and the export read checked; lifters
  saved before `frame` and `mirror_average` existed predict in the camera frame, from
  the crop alone. ValueError naming the file and the key."""
  retrain = 'train the lifter again (python tools/train_lifter.py --out=FOLDER).'
  try:
    with open(config_path) as f:
      config = json.load(f)
  except (ValueError, OSError, UnicodeDecodeError) as e:
    raise ValueError(f'{config_path}: not readable as JSON ({e}); {retrain}') from None
  net = config.get('network') if isinstance(config, dict) else None
  if not isinstance(net, dict):
    raise ValueError(f'{config_path}: no "network" settings; {retrain}')
  if net.get('input_dim') != lifter_inputs.INPUT_DIM:
    raise ValueError(f'{config_path}: the lifter reads {net.get("input_dim")} inputs, not '
                     f'{lifter_inputs.INPUT_DIM}.')
  config.setdefault('frame', 'camera')
  config.setdefault('mirror_average', False)
  checks = [(net, 'hidden', lambda v: isinstance(v, int) and v >= 1, 'a whole number >= 1'),
            (net, 'blocks', lambda v: isinstance(v, int) and v >= 1, 'a whole number >= 1'),
            (net, 'dropout_rate', lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
             'a number in [0, 1)'),
            (config, 'crop_size', lambda v: isinstance(v, (int, float)) and v > 0,
             'a number > 0'),
            (config, 'missing_joints', lambda v: v == lifter_inputs.MISSING_RULE,
             repr(lifter_inputs.MISSING_RULE)),
            (config, 'frame', lambda v: v in FRAMES, ' or '.join(map(repr, FRAMES))),
            (config, 'mirror_average', lambda v: isinstance(v, bool), 'true or false')]
  for where, key, ok, want in checks:
    if key not in where or not ok(where[key]):
      got = repr(where[key]) if key in where else 'nothing'
      raise ValueError(f'{config_path}: "{key}" must be {want}, not {got}; {retrain}')
  return config


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
  if info.get('trained_on_test'):
    lines.append('Trained on the test subjects\' poses as well (--train_on_test): the test '
                 'rows are in-sample, a bound rather than a held-out measure.')
  return '\n'.join(lines)

"""Synthetic people: sampled 3D poses, Human3.6M-like cameras, fast shaded renderings.

Poses come from a kinematic body (bone lengths from `skeleton.MEAN_BONE_LENGTHS_MM`,
scaled per subject) with joint angles drawn per action. Sampled poses are in a world
frame with z up (millimetres, the ground at z = 0, the pelvis above the world origin).
Inside the body frame, before the global turn, x is the subject's right and y the
direction the subject faces.

The renderer draws every bone as a tapered capsule, shaded along its length by depth
(nearer is brighter), with perspective tapering, a highlight stripe and painter's order,
so that which way a bone points in depth can be read from the picture. Left limbs are
bluish, right limbs reddish, torso and head neutral.

`write_dataset` writes the ECCV 2018 challenge layout (see `fbi3d.data.layout`) plus
META.csv and synthetic.json. Every image is a pure function of (seed, split, index).

With `poses_from` (a folder of motion files or of `tools/convert_mocap.py` .npz files)
the people take real captured poses instead of sampled ones (see `load_pose_bank`): a
pose per image picked from the seed, turned about the vertical at random and placed on
the ground; their action is -1 (unknown) and their subject the capture's subject id.
"""

import json
import multiprocessing
import os
import time

from absl import logging
import cv2
import numpy as np

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import layout

# Bumped whenever the output for given settings changes, so that old data are remade.
GENERATOR_VERSION = 1
SETTINGS_FILE = 'synthetic.json'

# Body-size scale of each subject 1..10 (applied to every mean bone length).
SUBJECT_SCALES = (0.92, 1.04, 0.87, 1.10, 0.97, 1.00, 1.14, 0.89, 1.07, 0.95)
NUM_SUBJECTS = len(SUBJECT_SCALES)
BONE_JITTER = 0.03   # per-bone relative jitter (uniform +-), the same on both sides

# Camera model, after Human3.6M: about 1145 px focal length at 1000 px.
FOCAL_AT_1000 = 1145.0
CAMERA_DISTANCE_MM = (4000.0, 6000.0)
CAMERA_HEIGHT_MM = (1000.0, 2000.0)
BORDER_FRACTION = 0.02   # body parts keep this fraction of the image side off the border

_R, _L = 1.0, -1.0   # side signs: the right side is +x in the body frame
_DEG = np.pi / 180.0

# Capsule radii in mm at (parent, child) for a body of scale 1.
_BONE_RADII_MM = {
    1: (75.0, 70.0), 4: (75.0, 70.0),      # pelvis -> hips
    2: (68.0, 50.0), 5: (68.0, 50.0),      # thighs
    3: (50.0, 36.0), 6: (50.0, 36.0),      # shins
    7: (125.0, 122.0),                     # pelvis -> spine
    8: (122.0, 115.0),                     # spine -> thorax
    9: (48.0, 42.0),                       # thorax -> neck/nose
    11: (60.0, 56.0), 14: (60.0, 56.0),    # thorax -> shoulders
    12: (46.0, 38.0), 15: (46.0, 38.0),    # upper arms
    13: (36.0, 28.0), 16: (36.0, 28.0),    # forearms
}
HEAD_RADIUS_MM = 100.0
NOSE_RADIUS_MM = 34.0
_SHADE_RANGE_MM = 700.0   # brightness is linear in depth over +-this around the pelvis

_SPLIT_NUMBERS = {name: i for i, name in enumerate(layout.SPLITS)}


# ---------------------------------------------------------------------------------------
# Poses.


def _rx(a):
  c, s = np.cos(a), np.sin(a)
  return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a):
  c, s = np.cos(a), np.sin(a)
  return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a):
  c, s = np.cos(a), np.sin(a)
  return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _unit(v):
  v = np.asarray(v, np.float64)
  return v / np.linalg.norm(v)


def sample_bone_lengths(rng, scale, jitter=BONE_JITTER):
  """Bone lengths {child: mm}: the mean table times `scale`, each left/right pair
  jittered by the same uniform factor in [1 - jitter, 1 + jitter]."""
  lengths = {}
  for child in sorted(skeleton.MEAN_BONE_LENGTHS_MM):
    name = skeleton.JOINT_NAMES[child]
    if name.startswith('L'):
      continue
    factor = 1.0 + (rng.uniform(-jitter, jitter) if jitter > 0 else 0.0)
    length = scale * factor * skeleton.MEAN_BONE_LENGTHS_MM[child]
    lengths[child] = length
    if name.startswith('R'):
      twin = skeleton.JOINT_FLIP_PERMUTATION[child]
      lengths[twin] = length
  return lengths


def _u(rng, lo, hi):
  """Uniform angle in degrees, returned in radians."""
  return rng.uniform(lo, hi) * _DEG


def _standing_legs(rng, wide=False):
  legs = {}
  bend = rng.uniform(0.0, 1.0) < 0.4   # weight on one leg, the other knee bent
  free = _R if rng.uniform() < 0.5 else _L
  for side in (_R, _L):
    legs[side] = dict(
        flex=_u(rng, -10, 15), abd=_u(rng, 0, 10), rot=_u(rng, -10, 25),
        knee=_u(rng, 0, 12))
    if bend and side == free:
      legs[side].update(flex=_u(rng, 0, 30), knee=_u(rng, 10, 40))
    if wide:
      legs[side].update(flex=_u(rng, -25, 60), abd=_u(rng, 0, 35), knee=_u(rng, 0, 70))
  return legs


def _sitting_legs(rng, sitting_down=False):
  legs = {}
  if sitting_down:
    flex0, knee0 = rng.uniform(30, 115), rng.uniform(30, 130)
  else:
    flex0, knee0 = rng.uniform(65, 100), rng.uniform(60, 110)
  for side in (_R, _L):
    legs[side] = dict(
        flex=(flex0 + rng.uniform(-12, 12)) * _DEG, abd=_u(rng, 0, 25),
        rot=_u(rng, -15, 20), knee=np.clip(knee0 + rng.uniform(-20, 20), 0, 150) * _DEG)
  return legs


def _walking(rng, amplitude=(15, 32)):
  """Legs and arms of a walking phase: arms swing against the legs."""
  phase = rng.uniform(0, 2 * np.pi)
  leg_amp, arm_amp = rng.uniform(*amplitude), rng.uniform(8, 30)
  legs, arms = {}, {}
  for side, offset in ((_R, 0.0), (_L, np.pi)):
    p = phase + offset
    legs[side] = dict(
        flex=(5 + leg_amp * np.sin(p)) * _DEG, abd=_u(rng, 0, 6), rot=_u(rng, -5, 15),
        knee=(6 + 55 * max(0.0, np.cos(p)) ** 1.5 + rng.uniform(0, 8)) * _DEG)
    swing = -arm_amp * np.sin(p)
    arms[side] = dict(
        elev=abs(swing) * _DEG + _u(rng, 3, 10), plane=(90 if swing >= 0 else -90) * _DEG,
        elbow=_u(rng, 10, 45), rot=_u(rng, -20, 20))
  twist = -0.25 * leg_amp * np.sin(phase) * _DEG
  return legs, arms, twist


def _low_arm(rng):
  return dict(elev=_u(rng, 4, 25), plane=_u(rng, -30, 70), elbow=_u(rng, 5, 40),
              rot=_u(rng, -30, 30))


def _arm(rng, elev, plane, elbow, rot=(-40, 40)):
  return dict(elev=_u(rng, *elev), plane=_u(rng, *plane), elbow=_u(rng, *elbow),
              rot=_u(rng, *rot))


def _action_params(rng, action):
  """Joint angles (radians) and hand targets of one pose of an action."""
  name = skeleton.ACTIONS[action]
  p = dict(pelvis_tilt=_u(rng, -5, 8), pelvis_roll=_u(rng, -4, 4),
           spine_flex=_u(rng, -5, 12), spine_lat=_u(rng, -5, 5), spine_twist=_u(rng, -8, 8),
           neck_flex=_u(rng, -15, 20), neck_lat=_u(rng, -8, 8), head_turn=_u(rng, -25, 25),
           head_tilt=_u(rng, -10, 10))
  p['legs'] = _standing_legs(rng)
  arms = {_R: _low_arm(rng), _L: _low_arm(rng)}
  targets = {}
  one = _R if rng.uniform() < 0.5 else _L
  other = -one

  if name in ('Walking', 'WalkDog', 'WalkTogether'):
    amp = (10, 25) if name == 'WalkTogether' else (15, 32)
    p['legs'], arms, p['spine_twist'] = _walking(rng, amp)
    if name == 'WalkDog':
      p['spine_flex'] = _u(rng, 0, 30)
      arms[one] = _arm(rng, (15, 55), (60, 100), (15, 70))
    elif name == 'WalkTogether':
      p['head_turn'] = _u(rng, 20, 55) * (1 if rng.uniform() < 0.5 else -1)
      if rng.uniform() < 0.3:
        arms[one] = _arm(rng, (10, 35), (-10, 40), (60, 100))
  elif name in ('Sitting', 'SittingDown'):
    down = name == 'SittingDown'
    p['legs'] = _sitting_legs(rng, down)
    p['spine_flex'] = _u(rng, 10, 50) if down else _u(rng, -15, 25)
    for side in (_R, _L):
      arms[side] = (_arm(rng, (10, 70), (30, 100), (0, 70)) if down
                    else _arm(rng, (10, 45), (50, 100), (30, 95)))
    if not down and rng.uniform() < 0.25:
      targets[one] = ('ear', rng.normal(0, 25, 3))
  elif name == 'Phoning':
    if rng.uniform() < 0.2:
      p['legs'] = _sitting_legs(rng)
    targets[one] = ('ear', rng.normal(0, 25, 3))
    if rng.uniform() < 0.3:
      targets[other] = ('hip', rng.normal(0, 30, 3))
  elif name in ('Eating', 'Smoking'):
    if rng.uniform() < (0.5 if name == 'Eating' else 0.3):
      p['legs'] = _sitting_legs(rng)
    if rng.uniform() < 0.7:
      targets[one] = ('mouth', rng.normal(0, 25, 3))
    else:
      arms[one] = _arm(rng, (15, 45), (50, 100), (70, 120))
    if name == 'Eating' and rng.uniform() < 0.6:
      arms[other] = _arm(rng, (15, 45), (50, 100), (50, 110))
  elif name == 'Photo':
    p['neck_flex'] = _u(rng, -10, 10)
    p['head_turn'] = _u(rng, -10, 10)
    targets[_R] = ('camera', rng.normal(0, 25, 3))
    targets[_L] = ('camera', rng.normal(0, 25, 3))
  elif name == 'Greeting':
    if rng.uniform() < 0.6:
      arms[one] = _arm(rng, (80, 170), (0, 90), (10, 100))   # waving
    else:
      arms[one] = _arm(rng, (30, 65), (70, 100), (10, 60))   # handshake
    if rng.uniform() < 0.3:
      arms[other] = _arm(rng, (20, 60), (60, 100), (20, 60))
  elif name == 'Directions':
    arms[one] = _arm(rng, (45, 115), (-10, 110), (0, 20))
    p['spine_twist'] = _u(rng, -20, 20)
    p['head_turn'] = _u(rng, -40, 40)
  elif name == 'Discussion':
    if rng.uniform() < 0.2:
      p['legs'], _, p['spine_twist'] = _walking(rng, (8, 18))
    for side in (_R, _L):
      arms[side] = _arm(rng, (8, 60), (30, 100), (40, 115), (-60, 40))
  elif name == 'Posing':
    p['legs'] = _standing_legs(rng, wide=True)
    p['spine_lat'] = _u(rng, -20, 20)
    p['spine_flex'] = _u(rng, -15, 30)
    for side in (_R, _L):
      arms[side] = _arm(rng, (25, 175), (-20, 110), (0, 45), (-60, 60))
  elif name == 'Purchases':
    p['spine_flex'] = _u(rng, 0, 25)
    for side in (_R, _L):
      arms[side] = _arm(rng, (15, 50), (60, 100), (35, 95))
    if rng.uniform() < 0.3:
      arms[other] = _low_arm(rng)
  elif name == 'Waiting':
    style = rng.uniform()
    if style < 0.3:
      targets[_R] = ('hip', rng.normal(0, 30, 3))
      targets[_L] = ('hip', rng.normal(0, 30, 3))
    elif style < 0.5:
      for side in (_R, _L):
        arms[side] = _arm(rng, (10, 30), (-100, -60), (30, 90))   # hands behind
    elif style < 0.65:
      targets[one] = ('hip', rng.normal(0, 30, 3))
  p['arms'] = arms
  p['targets'] = targets
  return p


def _bend_reference(direction):
  """A unit vector perpendicular to `direction`, as near as possible to forward-up."""
  ref = np.array([0.0, 1.0, 0.5])
  perp = ref - direction * np.dot(ref, direction)
  norm = np.linalg.norm(perp)
  if norm < 1e-6:
    perp = np.array([0.0, 0.0, 1.0]) - direction * direction[2]
    norm = np.linalg.norm(perp)
  return perp / norm


def _two_bone(root, target, len1, len2, pole):
  """Places the middle and end joints of a two-bone chain so that the end reaches the
  target, or comes as near as the lengths allow; the middle joint bends toward `pole`."""
  d_vec = target - root
  d = np.linalg.norm(d_vec)
  d_min, d_max = abs(len1 - len2) + 1.0, len1 + len2 - 1.0
  u = d_vec / d if d > 1e-9 else np.array([0.0, 0.0, -1.0])
  d = float(np.clip(d, d_min, d_max))
  cos_a = (len1 ** 2 + d ** 2 - len2 ** 2) / (2.0 * len1 * d)
  sin_a = np.sqrt(max(0.0, 1.0 - cos_a ** 2))
  w = pole - u * np.dot(pole, u)
  if np.linalg.norm(w) < 1e-6:
    w = _bend_reference(u)
  w = _unit(w)
  middle = root + len1 * (cos_a * u + sin_a * w)
  end = middle + len2 * _unit(root + d * u - middle)
  return middle, end


def _build_pose(p, lengths):
  """Body-frame joints [17, 3] (x right, y forward, z up, pelvis at the origin)."""
  j = np.zeros((skeleton.NUM_JOINTS, 3))
  r_pelvis = _ry(p['pelvis_roll']) @ _rx(-p['pelvis_tilt'])
  half_hips = r_pelvis @ np.array([lengths[1], 0.0, 0.0])
  j[1], j[4] = half_hips, -half_hips
  for side, hip, knee, ankle in ((_R, 1, 2, 3), (_L, 4, 5, 6)):
    leg = p['legs'][side]
    r_thigh = r_pelvis @ _rx(leg['flex']) @ _ry(-side * leg['abd']) @ _rz(side * leg['rot'])
    j[knee] = j[hip] + r_thigh @ np.array([0.0, 0.0, -lengths[knee]])
    j[ankle] = j[knee] + r_thigh @ _rx(-leg['knee']) @ np.array([0.0, 0.0, -lengths[ankle]])

  # The spine bends and twists in two equal steps, at the spine and thorax joints.
  seg = (_rz(0.5 * p['spine_twist']) @ _rx(-0.5 * p['spine_flex'])
         @ _ry(0.5 * p['spine_lat']))
  r_spine = r_pelvis @ seg
  j[7] = r_spine @ np.array([0.0, 0.0, lengths[7]])
  r_thorax = r_spine @ seg
  j[8] = j[7] + r_thorax @ np.array([0.0, 0.0, lengths[8]])
  r_neck = r_thorax @ _rz(p['head_turn']) @ _rx(-p['neck_flex']) @ _ry(p['neck_lat'])
  j[9] = j[8] + r_neck @ (lengths[9] * _unit([0.0, np.sin(25 * _DEG), np.cos(25 * _DEG)]))
  j[10] = j[9] + r_neck @ _rx(-p['head_tilt']) @ (
      lengths[10] * _unit([0.0, -np.sin(15 * _DEG), np.cos(15 * _DEG)]))
  shoulder_dir = np.array([np.cos(10 * _DEG), 0.0, -np.sin(10 * _DEG)])
  j[14] = j[8] + r_thorax @ (lengths[14] * shoulder_dir)
  j[11] = j[8] + r_thorax @ (lengths[11] * shoulder_dir * np.array([-1.0, 1.0, 1.0]))

  head_centre = 0.5 * (j[9] + j[10])
  for side, sh, el, wr in ((_R, 14, 15, 16), (_L, 11, 12, 13)):
    target = p['targets'].get(side)
    if target is not None:
      kind, noise = target
      if kind == 'ear':
        point = head_centre + r_neck @ np.array([side * 105.0, -10.0, -15.0])
      elif kind == 'mouth':
        point = j[9] + r_neck @ np.array([side * 25.0, 70.0, -45.0])
      elif kind == 'camera':
        point = j[9] + r_neck @ np.array([side * 75.0, 190.0, 10.0])
      else:   # 'hip': hand on the side of the waist
        hip = j[1] if side == _R else j[4]
        point = hip + r_pelvis @ np.array([side * 70.0, 10.0, 110.0])
      pole = r_thorax @ np.array([side * 1.0, -0.6, -0.8])
      j[el], j[wr] = _two_bone(j[sh], point + noise, lengths[el], lengths[wr], pole)
      continue
    arm = p['arms'][side]
    e, pl = arm['elev'], arm['plane']
    d_local = np.array([side * np.sin(e) * np.cos(pl), np.sin(e) * np.sin(pl), -np.cos(e)])
    u = r_thorax @ d_local
    bend = geometry.rotation_matrix(u, side * arm['rot']) @ (
        r_thorax @ _bend_reference(d_local))
    j[el] = j[sh] + lengths[el] * u
    j[wr] = j[el] + lengths[wr] * (np.cos(arm['elbow']) * u + np.sin(arm['elbow']) * bend)
  return j


def sample_pose(rng, action, bone_lengths=None):
  """A world-frame pose [17, 3] in mm of an action (index into `skeleton.ACTIONS`).

  World: z up, the lowest ankle 80 mm (scaled) above the ground z = 0, the pelvis above
  the origin (x = y = 0) and exactly at the hips' midpoint; the body turned by a uniform
  angle about the vertical. `bone_lengths` ({child: mm}) defaults to a random body size.
  """
  action = int(action)
  if not 0 <= action < skeleton.NUM_ACTIONS:
    raise ValueError(f'sample_pose: action must be in 0..{skeleton.NUM_ACTIONS - 1}, '
                     f'got {action}.')
  if bone_lengths is None:
    bone_lengths = sample_bone_lengths(rng, rng.uniform(0.85, 1.15))
  params = _action_params(rng, action)
  body = _build_pose(params, bone_lengths)
  yaw = rng.uniform(0.0, 2.0 * np.pi)
  world = body @ _rz(yaw).T
  scale = bone_lengths[2] / skeleton.MEAN_BONE_LENGTHS_MM[2]
  world[:, 2] += 80.0 * scale - min(world[3, 2], world[6, 2])
  world[:, :2] -= world[0, :2]
  world[0] = 0.5 * (world[1] + world[4])
  return world


# ---------------------------------------------------------------------------------------
# Cameras.


def _image_hw(image_size):
  if np.ndim(image_size) == 0:
    return int(image_size), int(image_size)
  h, w = image_size
  return int(h), int(w)


def sample_camera(rng, image_size):
  """A camera looking at a person standing at the world origin (z up).

  Returns dict(rotation [3, 3] world->camera, centre [3] mm, intrinsics [4] fx, fy, cx,
  cy). The aim point is offset from the body so that people land at varied image
  positions; callers reject cameras that cut the body (see `make_example`).
  """
  h, w = _image_hw(image_size)
  side = float(max(h, w))
  f = FOCAL_AT_1000 * side / 1000.0 * rng.uniform(0.96, 1.04)
  intrinsics = np.array([f, f * rng.uniform(0.995, 1.005),
                         (w - 1) / 2.0 + rng.normal(0, 0.01 * w),
                         (h - 1) / 2.0 + rng.normal(0, 0.01 * h)])
  distance = rng.uniform(*CAMERA_DISTANCE_MM)
  azimuth = rng.uniform(0.0, 2.0 * np.pi)
  centre = np.array([distance * np.cos(azimuth), distance * np.sin(azimuth),
                     rng.uniform(*CAMERA_HEIGHT_MM)])
  right = np.array([-np.sin(azimuth), np.cos(azimuth), 0.0])
  k = distance / 5000.0
  aim_height = rng.uniform(700.0, 1100.0) + rng.uniform(-450.0, 450.0) * k * h / side
  aim_height = min(aim_height, centre[2] - 50.0)   # looking level or down
  target = (np.array([0.0, 0.0, aim_height])
            + right * rng.uniform(-1300.0, 1300.0) * k * w / side)
  rotation = geometry.look_at_rotation(centre, target)
  return dict(rotation=rotation, centre=centre, intrinsics=intrinsics)


def _fits(pose_cam, joints2d, intrinsics, image_size):
  """Whether every joint, widened by its body radius, lies inside the image."""
  h, w = _image_hw(image_size)
  if np.any(pose_cam[:, 2] < 500.0):
    return False
  radius = np.full(skeleton.NUM_JOINTS, 75.0)
  radius[[9, 10]] = HEAD_RADIUS_MM + 60.0
  radius_px = intrinsics[0] * radius / pose_cam[:, 2]
  border = BORDER_FRACTION * max(h, w)
  lo = joints2d - radius_px[:, None]
  hi = joints2d + radius_px[:, None]
  return bool(np.all(lo >= border) and np.all(hi[:, 0] <= w - 1 - border)
              and np.all(hi[:, 1] <= h - 1 - border))


# ---------------------------------------------------------------------------------------
# Rendering.

_BANK_SIZE = 16
_bank_cache = {}


def _texture(rng, size, busy):
  """One background texture [size, size, 3] uint8: gradient, blobs, shapes, noise; a
  `busy` one has many sharp shapes, a calm one few, softly blurred."""
  k = int(rng.integers(2, 7))
  low = rng.uniform(20, 235, (k, k, 3)).astype(np.float32)
  tex = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
  angle = rng.uniform(0, 2 * np.pi)
  ramp = (np.cos(angle) * np.linspace(-1, 1, size)[None, :]
          + np.sin(angle) * np.linspace(-1, 1, size)[:, None]).astype(np.float32)
  tex += ramp[:, :, None] * rng.uniform(-60, 60, 3).astype(np.float32)
  tex = np.clip(tex, 0, 255).astype(np.uint8)
  for _ in range(int(rng.integers(6, 26) if busy else rng.integers(0, 7))):
    colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
    x, y = (int(v) for v in rng.integers(0, size, 2))
    kind = rng.integers(4)
    if kind == 0:
      wh = rng.integers(size // 20, size // 2, 2)
      cv2.rectangle(tex, (x, y), (x + int(wh[0]), y + int(wh[1])), colour, -1)
    elif kind == 1:
      axes = (int(rng.integers(size // 30, size // 4)), int(rng.integers(size // 30, size // 4)))
      cv2.ellipse(tex, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1,
                  cv2.LINE_AA)
    elif kind == 2:
      x2, y2 = (int(v) for v in rng.integers(0, size, 2))
      cv2.line(tex, (x, y), (x2, y2), colour, int(rng.integers(1, max(2, size // 40))),
               cv2.LINE_AA)
    else:
      pts = rng.integers(0, size, (int(rng.integers(3, 6)), 2)).astype(np.int32)
      cv2.fillPoly(tex, [pts], colour, cv2.LINE_AA)
  sigma = rng.uniform(0.5, 4.0) if busy else rng.uniform(3.0, 10.0)
  tex = cv2.GaussianBlur(tex, (0, 0), sigma)
  grain = rng.normal(0, rng.uniform(2, 12), (size, size, 1)).astype(np.float32)
  tex = np.clip(tex.astype(np.float32) + grain, 0, 255).astype(np.uint8)
  return tex


def _bank(h, w):
  """Background textures and a noise image, made once per process and image size."""
  key = (h, w)
  if key not in _bank_cache:
    rng = np.random.default_rng([20180908, h, w])
    size = int(1.5 * max(h, w))
    textures = [_texture(rng, size, busy=i % 2 == 0) for i in range(_BANK_SIZE)]
    noise = np.clip(rng.normal(128, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    _bank_cache[key] = (textures, noise)
  return _bank_cache[key]


def _tone_lut(gain, bias, gamma):
  """A per-channel lookup table [256, 1, 3] uint8: 255 * (gain * (x/255)^gamma) + bias."""
  x = np.arange(256, dtype=np.float64)[:, None] / 255.0
  y = 255.0 * gain[None, :] * x ** gamma[None, :] + bias[None, :]
  return np.clip(y, 0, 255).astype(np.uint8).reshape(256, 1, 3)


def _background(rng, h, w, tone_gain=1.0, tone_bias=0.0):
  """A background: a crop of a bank texture, flipped, tinted, with a few distractors;
  `tone_gain` and `tone_bias` are a final tone curve applied to the tint."""
  textures, _ = _bank(h, w)
  tex = textures[int(rng.integers(len(textures)))]
  size = tex.shape[0]
  y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
  img = tex[y0:y0 + h, x0:x0 + w]
  flip = int(rng.integers(4))
  img = cv2.flip(img, flip - 2) if flip < 3 else img.copy()
  gain = rng.uniform(0.6, 1.25, 3) * rng.uniform(0.55, 1.15)
  bias = np.full(3, rng.uniform(-25, 30))
  gamma = np.full(3, rng.uniform(0.7, 1.4))
  img = cv2.LUT(img, _tone_lut(gain * tone_gain, bias * tone_gain + tone_bias, gamma))
  for _ in range(int(rng.integers(0, 4))):   # a few sharp distractors
    colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
    pts = (rng.uniform(0, 1, (2, 2)) * np.array([w, h])).astype(np.int32)
    if rng.uniform() < 0.5:
      cv2.rectangle(img, tuple(pts[0].tolist()), tuple(pts[1].tolist()), colour,
                    int(rng.choice([-1, 2, 4])))
    else:
      cv2.line(img, tuple(pts[0].tolist()), tuple(pts[1].tolist()), colour,
               int(rng.integers(1, 6)), cv2.LINE_AA)
  return img


def _colours(rng):
  """Base BGR colours (float, 0..255) of the left limbs, right limbs, torso, head, nose."""
  left = np.array([215.0, 120.0, 40.0]) + rng.uniform(-30, 30, 3)
  left[1] = rng.uniform(70, 170)
  right = np.array([40.0, 60.0, 215.0]) + rng.uniform(-30, 30, 3)
  right[1] = rng.uniform(40, 130)
  grey = rng.uniform(110, 185)
  torso = grey + rng.uniform(-25, 25, 3)
  head = np.array([120.0, 160.0, 200.0]) * rng.uniform(0.75, 1.1) + rng.uniform(-15, 15, 3)
  nose = np.array([60.0, 200.0, 230.0]) * rng.uniform(0.8, 1.05)
  scale = rng.uniform(0.8, 1.0)
  return dict(L=left * scale, R=right * scale, C=torso * scale, head=head, nose=nose)


_SHIFT = 4            # drawing coordinates carry 4 fractional bits
_ONE = float(1 << _SHIFT)
_PIECES = 4           # pieces per capsule, each shaded by its own depth
_CAPSULE_CHILDREN = tuple(c for _, c in skeleton.BONES if c in _BONE_RADII_MM)
_CAPSULE_PARENTS = tuple(skeleton.PARENTS[c] for c in _CAPSULE_CHILDREN)
_CAPSULE_SIDES = tuple('C' if c in (1, 4, 9, 11, 14) else skeleton.JOINT_SIDES[c]
                       for c in _CAPSULE_CHILDREN)
_CAPSULE_RADII = np.array([_BONE_RADII_MM[c] for c in _CAPSULE_CHILDREN])
_MEAN_LENGTHS = np.array([skeleton.MEAN_BONE_LENGTHS_MM[c] for _, c in skeleton.BONES])


def _fixed(points):
  """Pixel coordinates [..., 2] -> fixed-point int32 for cv2 drawing with _SHIFT."""
  return np.round(points * _ONE).astype(np.int32)


def _quads(pts, radii, extend=0.5):
  """Quadrilaterals of the pieces of polylines: pts [..., P + 1, 2] with radii
  [..., P + 1] -> fixed-point [..., P, 4, 2]; each piece is lengthened by `extend` px at
  both ends so that neighbours overlap and no seam shows."""
  d = pts[..., 1:, :] - pts[..., :-1, :]
  n = np.maximum(np.sqrt(np.sum(d * d, axis=-1, keepdims=True)), 1e-6)
  u = d / n
  perp = np.stack([-u[..., 1], u[..., 0]], axis=-1)
  q0 = pts[..., :-1, :] - extend * u
  q1 = pts[..., 1:, :] + extend * u
  r0 = radii[..., :-1, None]
  r1 = radii[..., 1:, None]
  quads = np.stack([q0 + perp * r0, q1 + perp * r1, q1 - perp * r1, q0 - perp * r0], -2)
  return _fixed(quads)


def _colour_list(colours):
  return np.clip(colours, 0.0, 255.0).tolist()


def render(pose_cam_abs, intrinsics, image_size, rng):
  """Renders a body in camera-frame pose [17, 3] (mm, absolute) to a BGR uint8 image.

  image_size: an int (square) or (height, width). Any pose with every joint in front of
  the camera can be drawn; body radii follow the body size implied by the bone lengths.
  """
  pose = np.asarray(pose_cam_abs, np.float64)
  if pose.shape != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'render: expected a pose of shape [17, 3], got {pose.shape}.')
  if not np.all(np.isfinite(pose)):
    raise ValueError('render: the pose contains NaN or infinity.')
  intrinsics = np.asarray(intrinsics, np.float64)
  h, w = _image_hw(image_size)
  focal = 0.5 * (intrinsics[0] + intrinsics[1])
  parents = np.array([p for p, _ in skeleton.BONES])
  children = np.array([c for _, c in skeleton.BONES])
  lengths = np.linalg.norm(pose[children] - pose[parents], axis=-1)
  body_scale = float(np.clip(lengths.sum() / _MEAN_LENGTHS.sum(), 0.6, 1.5))
  body_scale *= rng.uniform(0.92, 1.1)

  # Lighting: a final tone curve f(x) = gain * x + bias, folded into the background's
  # lookup table and into the body colours.
  tone_gain, tone_bias = rng.uniform(0.8, 1.15), rng.uniform(-15, 15)
  img = _background(rng, h, w, tone_gain, tone_bias)
  colours = {k: tone_gain * v + tone_bias for k, v in _colours(rng).items()}
  light = rng.uniform(-np.pi, np.pi)
  light = np.array([np.cos(light), np.sin(light)])
  shine = rng.uniform(0.3, 0.6)
  z_ref = pose[skeleton.ROOT, 2]
  level, gain = rng.uniform(0.65, 0.75), rng.uniform(0.45, 0.55)

  def brightness(z):
    return level + gain * np.clip((z_ref - z) / _SHADE_RANGE_MM, -1.0, 1.0)

  # Capsules [C, P + 1] sample points along each bone, projected.
  ts = np.linspace(0.0, 1.0, _PIECES + 1)
  start = pose[list(_CAPSULE_PARENTS)]
  end = pose[list(_CAPSULE_CHILDREN)]
  pts3 = start[:, None, :] + ts[None, :, None] * (end - start)[:, None, :]
  pts2 = geometry.project(pts3, intrinsics)
  radii_mm = body_scale * (_CAPSULE_RADII[:, :1] + ts[None, :] * (
      _CAPSULE_RADII[:, 1:] - _CAPSULE_RADII[:, :1]))
  radii = focal * radii_mm / pts3[..., 2]
  grow = np.maximum(1.0, 0.12 * radii)
  outline_quads = _quads(pts2, radii + grow)
  fill_quads = _quads(pts2, radii)
  depth = 0.5 * (pts3[:, 1:, 2] + pts3[:, :-1, 2])            # [C, P]
  base = np.stack([colours[s] for s in _CAPSULE_SIDES])        # [C, 3]
  fills = base[:, None, :] * brightness(depth)[..., None]      # [C, P, 3]
  highs = fills + (255.0 - fills) * shine
  outlines = 0.35 * base * brightness(depth.mean(axis=1))[:, None]
  # The highlight runs along the side facing the light; on a bone seen end-on it becomes
  # a spot towards the light.
  axis = pts2[:, -1] - pts2[:, 0]
  axis_len = np.linalg.norm(axis, axis=-1, keepdims=True)
  direction = axis / np.maximum(axis_len, 1e-6)
  along = np.minimum(1.0, axis_len / np.maximum(radii.max(axis=1, keepdims=True), 1e-6))
  off = light[None, :] - along * (direction @ light)[:, None] * direction
  off /= np.maximum(np.linalg.norm(off, axis=-1, keepdims=True), 1e-6)
  high_pts = pts2 + off[:, None, :] * 0.45 * radii[..., None]
  high_quads = _quads(high_pts, 0.22 * radii)
  caps = _fixed(pts2[:, [0, -1]]).tolist()
  high_caps = _fixed(high_pts[:, [0, -1]]).tolist()
  cap_r = np.round(radii[:, [0, -1]] * _ONE).astype(np.int64)
  cap_rg = np.round((radii + grow)[:, [0, -1]] * _ONE).astype(np.int64)
  cap_rh = np.round(0.22 * radii[:, [0, -1]] * _ONE).astype(np.int64)
  piece_order = np.argsort(-depth, axis=1, kind='stable')
  fills_l, highs_l, outlines_l = _colour_list(fills), _colour_list(highs), _colour_list(
      outlines)

  items = [(d, i) for i, d in enumerate(pts3[..., 2].mean(axis=1))]
  head_centre = 0.5 * (pose[9] + pose[10])
  balls = []
  for name, centre3, r_mm in (('head', head_centre, HEAD_RADIUS_MM),
                              ('nose', pose[9], NOSE_RADIUS_MM)):
    items.append((centre3[2], len(_CAPSULE_CHILDREN) + len(balls)))
    balls.append((geometry.project(centre3, intrinsics), focal * r_mm * body_scale / centre3[2],
                  colours[name] * brightness(centre3[2])))
  items.sort(key=lambda item: (-item[0], item[1]))

  aa = cv2.LINE_AA
  for _, i in items:
    if i >= len(_CAPSULE_CHILDREN):
      centre2, r_px, fill = balls[i - len(_CAPSULE_CHILDREN)]
      for c, r, colour in ((centre2, r_px + max(1.0, 0.08 * r_px), 0.35 * fill),
                           (centre2, r_px, fill),
                           (centre2 + light * 0.4 * r_px, 0.35 * r_px,
                            fill + (255.0 - fill) * shine)):
        cv2.circle(img, tuple(_fixed(c).tolist()), max(1, int(round(r * _ONE))),
                   _colour_list(colour), -1, aa, _SHIFT)
      continue
    colour = outlines_l[i]
    for k in range(_PIECES):
      cv2.fillConvexPoly(img, outline_quads[i, k], colour, aa, _SHIFT)
    for e in (0, 1):
      cv2.circle(img, caps[i][e], max(1, int(cap_rg[i, e])), colour, -1, aa, _SHIFT)
    for k in piece_order[i]:
      cv2.fillConvexPoly(img, fill_quads[i, k], fills_l[i][k], aa, _SHIFT)
      if k == 0 or k == _PIECES - 1:
        e = 0 if k == 0 else 1
        cv2.circle(img, caps[i][e], max(1, int(cap_r[i, e])), fills_l[i][k], -1, aa, _SHIFT)
    for k in piece_order[i]:
      cv2.fillConvexPoly(img, high_quads[i, k], highs_l[i][k], aa, _SHIFT)
      if k == 0 or k == _PIECES - 1:
        e = 0 if k == 0 else 1
        cv2.circle(img, high_caps[i][e], max(1, int(cap_rh[i, e])), highs_l[i][k], -1, aa,
                   _SHIFT)

  if rng.uniform() < 0.3:
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.1))
  if rng.uniform() < 0.5:
    _, noise = _bank(h, w)
    y0 = int(rng.integers(0, noise.shape[0] - h + 1))
    x0 = int(rng.integers(0, noise.shape[1] - w + 1))
    a = rng.uniform(0.03, 0.15)
    img = cv2.addWeighted(img, 1.0, noise[y0:y0 + h, x0:x0 + w], a, -128.0 * a)
  return img


# ---------------------------------------------------------------------------------------
# Examples and data sets.


def make_example(seed, split_no, index, image_size, pose_bank=None):
  """One synthetic example, a pure function of (seed, split_no, index, image_size) and,
  when given, the `pose_bank` (see `load_pose_bank`) that the pose is taken from.

  Returns (image BGR uint8 [H, W, 3], dict(pose3d [17, 3] root-relative camera mm,
  pose3d_abs [17, 3] camera mm, joints2d [17, 2] image px, intrinsics [4], action int,
  subject int)).
  """
  rng = np.random.default_rng([int(seed), int(split_no), int(index)])
  if pose_bank is None:
    subject = int(rng.integers(1, NUM_SUBJECTS + 1))
    action = int(rng.integers(skeleton.NUM_ACTIONS))
  else:
    if not len(pose_bank.poses):
      raise ValueError('make_example: the pose bank is empty.')
    pick = int(rng.integers(len(pose_bank.poses)))
    subject = int(pose_bank.subjects[pick])
    action = skeleton.UNKNOWN_ACTION
  for _ in range(20):
    if pose_bank is None:
      lengths = sample_bone_lengths(rng, SUBJECT_SCALES[subject - 1])
      world = sample_pose(rng, action, lengths)
    else:
      world = pose_bank.place(pick, rng.uniform(0.0, 2.0 * np.pi))
    for attempt in range(40):
      camera = sample_camera(rng, image_size)
      if attempt >= 20:   # shrink the aim offset towards the body
        camera['rotation'] = _shrink_aim(camera, world, (40 - attempt) / 20.0)
      pose_cam = geometry.world_to_camera(world, camera['rotation'], camera['centre'])
      if np.any(pose_cam[:, 2] <= 0):
        continue
      joints2d = geometry.project(pose_cam, camera['intrinsics'])
      if _fits(pose_cam, joints2d, camera['intrinsics'], image_size):
        image = render(pose_cam, camera['intrinsics'], image_size, rng)
        return image, dict(
            pose3d=geometry.root_relative(pose_cam), pose3d_abs=pose_cam,
            joints2d=joints2d, intrinsics=np.asarray(camera['intrinsics'], np.float64),
            action=action, subject=subject)
  raise RuntimeError(f'make_example: no camera fits the body in a {image_size} px image.')


def _shrink_aim(camera, world, shrink):
  """Re-aims a camera at a point `shrink` of the way from the pelvis to its old aim."""
  forward = camera['rotation'][2]
  pelvis = world[skeleton.ROOT]
  distance = np.dot(pelvis - camera['centre'], forward)
  old_target = camera['centre'] + distance * forward
  target = pelvis + shrink * (old_target - pelvis)
  return geometry.look_at_rotation(camera['centre'], target)


class PoseBank:
  """17-joint world poses [N, 17, 3] (mm, z up) with a subject id each, and where they
  came from."""

  def __init__(self, poses, subjects, sources):
    self.poses = np.asarray(poses, np.float64)
    self.subjects = np.asarray(subjects, np.int64)
    self.sources = tuple(sources)

  def place(self, index, yaw):
    """Pose `index` turned by `yaw` about the vertical and placed like `sample_pose`'s:
    the pelvis above the origin and the lower ankle 80 mm (scaled) above the ground."""
    from fbi3d.data import mocap   # pylint: disable=g-import-not-at-top
    return mocap.place_on_ground(self.poses[index], yaw)


_pose_bank_cache = {}


def load_pose_bank(folder, every_nth=4):
  """The poses of every motion file under `folder`: .npz files written by
  tools/convert_mocap.py (their `poses` as stored) and .bvh / .amc files (read with
  `fbi3d.data.mocap`, every `every_nth` frame). Files are taken in sorted order, so the
  bank is the same on every run. Raises ValueError when nothing usable is found."""
  from fbi3d.data import mocap   # pylint: disable=g-import-not-at-top
  key = (os.path.abspath(folder), int(every_nth))
  if key in _pose_bank_cache:
    return _pose_bank_cache[key]
  if not os.path.isdir(folder):
    raise ValueError(f'load_pose_bank: {folder} is not a folder.')
  paths = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    paths.extend(os.path.join(root, f) for f in files
                 if os.path.splitext(f)[1].lower() in ('.npz', '.bvh', '.amc'))
  paths.sort(key=lambda p: os.path.relpath(p, folder))
  poses, subjects, sources = [], [], []
  for path in paths:
    if path.lower().endswith('.npz'):
      with np.load(path) as data:
        if 'poses' not in data:
          raise ValueError(f'load_pose_bank: {path} has no "poses" array.')
        clip_poses = np.asarray(data['poses'], np.float64)
        subject = int(data['subject']) if 'subject' in data else mocap.subject_of(path)
    else:
      clip_poses = mocap.to_h36m(mocap.load_clip(path))[::every_nth]
      subject = mocap.subject_of(path)
    if clip_poses.ndim != 3 or clip_poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
      raise ValueError(f'load_pose_bank: {path}: poses must be [N, 17, 3], got '
                       f'{clip_poses.shape}.')
    poses.append(clip_poses)
    subjects.append(np.full(len(clip_poses), subject))
    sources.append(path)
  if not poses or not sum(len(p) for p in poses):
    raise ValueError(f'load_pose_bank: no poses in {folder} (expected .npz from '
                     'tools/convert_mocap.py, or .bvh / .amc files).')
  bank = PoseBank(np.concatenate(poses), np.concatenate(subjects), sources)
  _pose_bank_cache[key] = bank
  return bank


def encode_jpeg(image, quality):
  ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise RuntimeError('encode_jpeg: OpenCV could not encode the image.')
  return buf.tobytes()


def _write_atomic(path, data):
  tmp = f'{path}.tmp{os.getpid()}'
  mode = 'wb' if isinstance(data, bytes) else 'w'
  with open(tmp, mode) as f:
    f.write(data)
  os.replace(tmp, path)


def _write_pose_atomic(path, pose3d):
  tmp = f'{path}.tmp{os.getpid()}'
  layout.write_pose_csv(tmp, pose3d)
  os.replace(tmp, path)


def _write_range(job):
  """Writes examples [start, stop) of a split; returns their META records."""
  out_dir, split, start, stop, seed, image_size, labels, quality, poses_from = job
  split_no = _SPLIT_NUMBERS[split]
  bank = load_pose_bank(poses_from) if poses_from else None
  img_dir = os.path.join(layout.split_dir(out_dir, split), layout.IMG_DIR)
  pose_dir = os.path.join(layout.split_dir(out_dir, split), layout.POSE_DIR)
  records = []
  for index in range(start, stop):
    image, ex = make_example(seed, split_no, index, image_size, bank)
    name = layout.ID_FORMAT.format(index + 1)
    _write_atomic(os.path.join(img_dir, name + '.jpg'), encode_jpeg(image, quality))
    if labels:
      _write_pose_atomic(os.path.join(pose_dir, name + '.csv'), ex['pose3d'])
    records.append(dict(id=name, action=ex['action'], subject=ex['subject'],
                        joints2d=ex['joints2d'], intrinsics=ex['intrinsics']))
  return records


def _init_worker():
  cv2.setNumThreads(1)


def _remove_stale(directory, count, extension):
  """Removes files of an earlier, larger data set: ids above `count`, temporaries."""
  if not os.path.isdir(directory):
    return
  for name in os.listdir(directory):
    stem, ext = os.path.splitext(name)
    stale = '.tmp' in name or (ext == extension and stem.isdigit() and int(stem) > count)
    if stale:
      os.remove(os.path.join(directory, name))


def write_split(out_dir, split, count, seed, image_size, workers=1, labels=True,
                jpeg_quality=90, pool=None, poses_from=None):
  """Writes one split (IMG, POSE when `labels`, META.csv); returns the META records.

  The bytes written depend only on (seed, split, index, image_size, jpeg_quality) and
  the poses in `poses_from` when given, not on `workers`. A `pool` (multiprocessing) may
  be passed to reuse worker processes.
  """
  if split not in _SPLIT_NUMBERS:
    raise ValueError(f'write_split: split must be one of {layout.SPLITS}, got {split!r}.')
  if count < 0:
    raise ValueError(f'write_split: count must be >= 0, got {count}.')
  root = layout.split_dir(out_dir, split)
  img_dir = os.path.join(root, layout.IMG_DIR)
  pose_dir = os.path.join(root, layout.POSE_DIR)
  os.makedirs(img_dir, exist_ok=True)
  _remove_stale(img_dir, count, '.jpg')
  if labels:
    os.makedirs(pose_dir, exist_ok=True)
    _remove_stale(pose_dir, count, '.csv')
  elif os.path.isdir(pose_dir):
    _remove_stale(pose_dir, -1, '.csv')
    if not os.listdir(pose_dir):
      os.rmdir(pose_dir)

  chunk = max(1, min(50, count // max(1, 8 * workers)))
  jobs = [(out_dir, split, s, min(count, s + chunk), seed, image_size, labels,
           jpeg_quality, poses_from) for s in range(0, count, chunk)]
  own_pool = None
  if pool is None and workers > 1 and len(jobs) > 1:
    own_pool = pool = _make_pool(workers)
  records = []
  start = time.time()
  next_report = max(1, count // 10)
  try:
    results = pool.imap(_write_range, jobs) if pool is not None else map(_write_range, jobs)
    for part in results:
      records.extend(part)
      if len(records) >= next_report or len(records) == count:
        rate = len(records) / max(time.time() - start, 1e-9)
        logging.info('%s: %d/%d images (%d%%), %.1f images/s', split, len(records), count,
                     100 * len(records) // max(count, 1), rate)
        while next_report <= len(records):
          next_report += max(1, count // 10)
  finally:
    if own_pool is not None:
      own_pool.close()
      own_pool.join()
  meta_path = os.path.join(root, layout.META_FILE)
  tmp = f'{meta_path}.tmp{os.getpid()}'
  layout.write_meta(tmp, records)
  os.replace(tmp, meta_path)
  return records


def _make_pool(workers):
  return multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker)


def dataset_settings(seed, counts, image_size, test_labels, jpeg_quality, poses_from=None,
                     pose_sources=None, num_poses=None):
  """The settings that decide a data set's bytes, as stored in synthetic.json (with
  `poses_from`, also that folder, its motion files and their number of poses)."""
  settings = dict(generator_version=GENERATOR_VERSION, seed=int(seed),
                  counts={s: int(counts[s]) for s in layout.SPLITS},
                  image_size=int(image_size), test_labels=bool(test_labels),
                  jpeg_quality=int(jpeg_quality))
  if poses_from is not None:
    settings.update(poses_from=os.path.abspath(poses_from),
                    pose_sources=[os.path.relpath(p, poses_from) for p in pose_sources],
                    num_poses=int(num_poses))
  return settings


def is_complete(out_dir, settings):
  """Whether `out_dir` holds a finished data set written with these settings."""
  path = os.path.join(out_dir, SETTINGS_FILE)
  try:
    with open(path) as f:
      stored = json.load(f)
  except (OSError, ValueError):
    return False
  if stored.get('settings') != settings:
    return False
  for split in layout.SPLITS:
    root = layout.split_dir(out_dir, split)
    if not os.path.isfile(os.path.join(root, layout.META_FILE)):
      return False
    img_dir = os.path.join(root, layout.IMG_DIR)
    n = len(os.listdir(img_dir)) if os.path.isdir(img_dir) else 0
    if n != settings['counts'][split]:
      return False
  return True


def write_dataset(out_dir, seed=0, counts=None, image_size=384, workers=2, test_labels=True,
                  jpeg_quality=90, poses_from=None):
  """Writes Train, Val and Test splits and synthetic.json.

  counts: {split: number of images}; defaults to 2000, 300, 300. poses_from: a folder of
  motion files or convert_mocap .npz files to take the poses from (see
  `load_pose_bank`); None samples them. Returns (settings, reused) where `reused` is
  True when `out_dir` already held this data set.
  """
  counts = dict(counts or {'Train': 2000, 'Val': 300, 'Test': 300})
  for split in layout.SPLITS:
    if counts.get(split, 0) < 0:
      raise ValueError(f'write_dataset: the {split} count must be >= 0, got {counts[split]}.')
    counts.setdefault(split, 0)
  if int(image_size) < 64:
    raise ValueError(f'write_dataset: image_size must be at least 64, got {image_size}.')
  if not 1 <= int(jpeg_quality) <= 100:
    raise ValueError(f'write_dataset: jpeg_quality must be in 1..100, got {jpeg_quality}.')
  if int(workers) < 1:
    raise ValueError(f'write_dataset: workers must be >= 1, got {workers}.')
  if poses_from is not None:
    bank = load_pose_bank(poses_from)
    settings = dataset_settings(seed, counts, image_size, test_labels, jpeg_quality,
                                poses_from, bank.sources, len(bank.poses))
  else:
    settings = dataset_settings(seed, counts, image_size, test_labels, jpeg_quality)
  if is_complete(out_dir, settings):
    return settings, True
  os.makedirs(out_dir, exist_ok=True)
  settings_path = os.path.join(out_dir, SETTINGS_FILE)
  if os.path.exists(settings_path):
    os.remove(settings_path)
  pool = _make_pool(workers) if workers > 1 else None
  try:
    for split in layout.SPLITS:
      labels = test_labels or split != 'Test'
      write_split(out_dir, split, counts[split], seed, image_size, workers=workers,
                  labels=labels, jpeg_quality=jpeg_quality, pool=pool,
                  poses_from=poses_from)
  finally:
    if pool is not None:
      pool.close()
      pool.join()
  _write_atomic(settings_path, json.dumps(dict(settings=settings), indent=2) + '\n')
  return settings, False

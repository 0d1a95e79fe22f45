"""The sampled body: bone lengths per subject and 3D poses drawn per action.

Poses come from a kinematic body (bone lengths from `skeleton.MEAN_BONE_LENGTHS_MM`,
scaled per subject) with joint angles drawn per action. Sampled poses are in a world
frame with z up (millimetres, the ground at z = 0, the pelvis above the world origin).
Inside the body frame, before the global turn, x is the subject's right and y the
direction the subject faces. `place_on_ground` stands any 17-joint world pose (a captured
one, say) the same way.
"""

import numpy as np

from fbi3d import geometry
from fbi3d import skeleton

# Body-size scale of each subject 1..10 (applied to every mean bone length).
SUBJECT_SCALES = (0.92, 1.04, 0.87, 1.10, 0.97, 1.00, 1.14, 0.89, 1.07, 0.95)
NUM_SUBJECTS = len(SUBJECT_SCALES)
BONE_JITTER = 0.03   # per-bone relative jitter (uniform +-), the same on both sides
ANKLE_HEIGHT_MM = 80.0        # ankle joint above the ground, as in the synthetic poses

_R, _L = 1.0, -1.0   # side signs: the right side is +x in the body frame
_DEG = np.pi / 180.0


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
  world[:, 2] += ANKLE_HEIGHT_MM * scale - min(world[3, 2], world[6, 2])
  world[:, :2] -= world[0, :2]
  world[0] = 0.5 * (world[1] + world[4])
  return world


def place_on_ground(pose, yaw=0.0, ankle_height_mm=None):
  """A 17-joint world pose [17, 3] (z up) turned by `yaw` radians about the vertical,
  its pelvis above the origin and its lower ankle `ankle_height_mm` above z = 0
  (default 80 mm times the thigh length over Human3.6M's mean, as in the synthetic
  poses)."""
  pose = np.asarray(pose, np.float64)
  if ankle_height_mm is None:
    thigh = 0.5 * (np.linalg.norm(pose[2] - pose[1]) + np.linalg.norm(pose[5] - pose[4]))
    ankle_height_mm = ANKLE_HEIGHT_MM * thigh / skeleton.MEAN_BONE_LENGTHS_MM[2]
  c, s = np.cos(yaw), np.sin(yaw)
  turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
  out = (pose - pose[skeleton.ROOT]) @ turn.T
  out[:, 2] += ankle_height_mm - min(out[3, 2], out[6, 2])
  return out

"""The pose-bank lifter's cameras (`fbi3d.lifter`): world poses seen through cameras
held the way a person photographs another.

Cameras (`sample_cameras`, `view`). The person stands at the world origin (z up), turned by
a uniform yaw, the lower ankle `body.ANKLE_HEIGHT_MM` above the ground scaled with the
thigh (as `body.place_on_ground`). A photo is 4:3, its long side IMAGE_LONG_SIDE = 1000
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
"""

import numpy as np

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body

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
  """`body.place_on_ground` for poses [N, 17, 3] and yaws [N] (radians)."""
  poses = np.asarray(poses, np.float64)
  rel = poses - poses[:, skeleton.ROOT:skeleton.ROOT + 1]
  c, s = np.cos(yaw), np.sin(yaw)
  x = c[:, None] * rel[..., 0] - s[:, None] * rel[..., 1]
  y = s[:, None] * rel[..., 0] + c[:, None] * rel[..., 1]
  out = np.stack([x, y, rel[..., 2]], axis=-1)
  thigh = 0.5 * (np.linalg.norm(rel[:, 2] - rel[:, 1], axis=-1)
                 + np.linalg.norm(rel[:, 5] - rel[:, 4], axis=-1))
  ankle = body.ANKLE_HEIGHT_MM * thigh / skeleton.MEAN_BONE_LENGTHS_MM[2]
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


# Limbs that `mix_limbs` exchanges between poses: (the chain's joints from the body
# outwards, each hanging from its skeleton.PARENTS joint; the torso frame it is carried
# in), named.
LIMBS = dict(RLeg=((2, 3), 'pelvis'), LLeg=((5, 6), 'pelvis'),
             LArm=((12, 13), 'chest'), RArm=((15, 16), 'chest'))
# The limbs that take one donor together, each group with its own draw.
LIMB_GROUPS = (('RLeg',), ('LLeg',), ('LArm',), ('RArm',))
# Each frame: its x axis from the right joint to the left one, its second axis the
# component of (top - bottom) at right angles to x, its third their cross product.
TORSO_FRAMES = dict(pelvis=dict(right=1, left=4, bottom=0, top=8),
                    chest=dict(right=14, left=11, bottom=7, top=8))


def torso_frames(poses, frame):
  """Rotations [N, 3, 3] (columns: the axes of TORSO_FRAMES[frame]) of poses [N, 17, 3]."""
  f = TORSO_FRAMES[frame]
  x = poses[:, f['left']] - poses[:, f['right']]
  x = x / np.linalg.norm(x, axis=-1, keepdims=True)
  up = poses[:, f['top']] - poses[:, f['bottom']]
  up = up - np.sum(up * x, axis=-1, keepdims=True) * x
  up = up / np.linalg.norm(up, axis=-1, keepdims=True)
  return np.stack([x, up, np.cross(x, up)], axis=-1)


def mix_limbs(poses, rng, prob, groups=LIMB_GROUPS):
  """Poses [N, 17, 3] in which each group of limbs (LIMBS, LIMB_GROUPS) is, with
  probability `prob`, bent as the same limbs of another pose drawn at random: the donor's
  bone directions, taken in the donor's torso frame (`torso_frames`), are put into the
  pose's own torso frame, and the pose keeps its own bone lengths and every other joint.
  The torso, the head and the joints the limbs hang from never change. A pose that a
  degenerate frame or bone (two joints at one point) would turn to NaN is kept as it was.
  prob 0 returns the poses unchanged."""
  poses = np.asarray(poses, np.float64)
  out = poses.copy()
  if prob <= 0 or len(poses) < 2:
    return out
  with np.errstate(invalid='ignore', divide='ignore'):
    frames = {name: torso_frames(poses, name) for name in TORSO_FRAMES}
    for group in groups:
      mixed = np.flatnonzero(rng.random(len(poses)) < prob)
      donors = rng.integers(0, len(poses), len(mixed))
      for limb in group:
        chain, frame = LIMBS[limb]
        # The donor's frame to the pose's own: R_pose @ R_donor^T.
        turn = frames[frame][mixed] @ np.swapaxes(frames[frame][donors], 1, 2)
        for joint in chain:
          parent = skeleton.PARENTS[joint]
          own = np.linalg.norm(poses[mixed, joint] - poses[mixed, parent], axis=-1)
          bone = poses[donors, joint] - poses[donors, parent]
          bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
          out[mixed, joint] = out[mixed, parent] + own[:, None] * np.einsum(
              'nij,nj->ni', turn, bone)
  broken = ~np.all(np.isfinite(out), axis=(1, 2))
  out[broken] = poses[broken]
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


# Joints whose bone `bend_limbs` turns, from the body outwards (a thigh before its shin):
# the upper and lower bones of each leg and arm.
BEND_JOINTS = (2, 3, 5, 6, 12, 13, 15, 16)
# The trunk's: the thorax turned about the spine joint (the upper body leaning, arms and
# head carried along) and the head about the neck.
TRUNK_BEND_JOINTS = (8, 10)


def _descendants(joint):
  """joint and every joint below it in skeleton.PARENTS."""
  out = [joint]
  for j in range(joint + 1, skeleton.NUM_JOINTS):
    if skeleton.PARENTS[j] in out:
      out.append(j)
  return out


def rotate_about_axes(vectors, axes, angles):
  """Vectors [N, K, 3] turned by angles [N] (radians) about unit axes [N, 3] (Rodrigues,
  right-handed)."""
  axes = np.asarray(axes, np.float64)[:, None, :]
  c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
  dot = np.sum(vectors * axes, axis=-1, keepdims=True)
  return vectors * c + np.cross(axes, vectors) * s + axes * dot * (1.0 - c)


def bend_limbs(poses, rng, std_deg, joints=BEND_JOINTS):
  """Poses [N, 17, 3] in which each bone ending at one of `joints` is turned about its
  parent joint by an angle drawn from N(0, std_deg) degrees about an axis drawn uniformly
  on the sphere, the joints below it carried along: every bone keeps its length, and
  each limb's bend differs a little from any captured one. Bones are turned from the body
  outwards, so a shin turns about the knee where its thigh's turn left it. std_deg 0
  returns the poses unchanged."""
  poses = np.asarray(poses, np.float64)
  out = poses.copy()
  if std_deg <= 0 or not len(poses):
    return out
  for joint in joints:
    axes = rng.normal(size=(len(poses), 3))
    axes /= np.maximum(np.linalg.norm(axes, axis=-1, keepdims=True), 1e-12)
    angles = np.radians(rng.normal(0.0, std_deg, len(poses)))
    below = _descendants(joint)
    pivot = out[:, skeleton.PARENTS[joint]][:, None, :]
    out[:, below] = pivot + rotate_about_axes(out[:, below] - pivot, axes, angles)
  return out

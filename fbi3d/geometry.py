"""Camera and pose geometry, in NumPy.

Frames and units (see DESIGN.md):
- 3D in millimetres, camera frame: x right, y down, z away from the camera.
- 2D in pixels, (x, y). A pixel's centre sits at integer coordinates, as in
  cv2.warpAffine and tfa.image.transform, so the affine map applied to points is the same
  matrix that warps the image.
- Intrinsics are (fx, fy, cx, cy). Distortion, when given, is Human3.6M's
  (k1, k2, k3, p1, p2): radial k1..k3 and tangential p1, p2.
"""

import numpy as np

from fbi3d import skeleton


def project(points_cam, intrinsics, distortion=None):
  """Projects camera-frame points [..., 3] to pixels [..., 2].

  With distortion (k1, k2, k3, p1, p2) the normalised point u = (X/Z, Y/Z) becomes
  u * (1 + k1 r^2 + k2 r^4 + k3 r^6 + p1 v + p2 u_x) + (p2, p1) * r^2, with r^2 = |u|^2
  and v = u_y, the Human3.6M camera model; then pixel = f * u + c.
  """
  points_cam = np.asarray(points_cam, dtype=np.float64)
  fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
  z = points_cam[..., 2:3]
  if np.any(z <= 0):
    raise ValueError('project: a point is at or behind the camera (z <= 0).')
  uv = points_cam[..., :2] / z
  if distortion is not None:
    k1, k2, k3, p1, p2 = np.asarray(distortion, dtype=np.float64)
    r2 = np.sum(uv ** 2, axis=-1, keepdims=True)
    radial = 1.0 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    tangential = p1 * uv[..., 1:2] + p2 * uv[..., 0:1]
    uv = uv * (radial + tangential) + np.array([p2, p1]) * r2
  return uv * np.array([fx, fy]) + np.array([cx, cy])


def world_to_camera(points_world, rotation, centre):
  """Camera-frame coordinates of world points: R (X - C), R the world->camera rotation
  (rows are the camera axes in world coordinates) and C the camera centre."""
  points_world = np.asarray(points_world, dtype=np.float64)
  return (points_world - np.asarray(centre)) @ np.asarray(rotation).T


def camera_to_world(points_cam, rotation, centre):
  return np.asarray(points_cam, dtype=np.float64) @ np.asarray(rotation) + np.asarray(centre)


def look_at_rotation(eye, target, up=(0.0, 0.0, 1.0)):
  """World->camera rotation of a camera at `eye` looking at `target`, its image y axis
  pointing as close to -up (down) as possible."""
  forward = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
  forward /= np.linalg.norm(forward)
  right = np.cross(forward, np.asarray(up, np.float64))
  norm = np.linalg.norm(right)
  if norm < 1e-9:
    raise ValueError('look_at_rotation: view direction is parallel to up.')
  right /= norm
  down = np.cross(forward, right)
  return np.stack([right, down, forward])


def root_relative(pose, root=skeleton.ROOT):
  """Subtracts the root joint: [..., J, D] -> [..., J, D]."""
  pose = np.asarray(pose)
  return pose - pose[..., root:root + 1, :]


# The largest crop margin (exclusive) the converters take: the side is the joints' box
# side times (1 + 2 margin), so at 2 the person spans a fifth of the crop.
MAX_MARGIN = 2.0


def square_box(joints2d, margin=0.2, min_size=16.0):
  """A square box (x0, y0, size) around 2D joints [J, 2].

  The box is centred on the joints' bounding box; its side is the longer side of that
  bounding box times (1 + 2 * margin), and at least `min_size` pixels.
  """
  joints2d = np.asarray(joints2d, dtype=np.float64)
  if joints2d.ndim != 2 or joints2d.shape[1] != 2:
    raise ValueError(f'square_box: expected joints of shape [J, 2], got {joints2d.shape}.')
  if not np.all(np.isfinite(joints2d)):
    raise ValueError('square_box: joints contain NaN or infinity.')
  lo, hi = joints2d.min(axis=0), joints2d.max(axis=0)
  centre = (lo + hi) / 2.0
  size = max(float(np.max(hi - lo)) * (1.0 + 2.0 * margin), min_size)
  return np.array([centre[0] - size / 2.0, centre[1] - size / 2.0, size])


def crop_affine(box, crop_size):
  """The 2x3 affine image->crop matrix of a square box (x0, y0, size)."""
  x0, y0, size = box
  s = crop_size / size
  return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])


def image_to_crop(points, box, crop_size):
  x0, y0, size = box
  s = crop_size / size
  return (np.asarray(points, np.float64) - np.array([x0, y0])) * s


def crop_to_image(points, box, crop_size):
  x0, y0, size = box
  s = size / crop_size
  return np.asarray(points, np.float64) * s + np.array([x0, y0])


def procrustes_align(pred, target):
  """Aligns pred [..., J, 3] to target [..., J, 3] with the similarity transform
  (rotation, uniform scale, translation) that minimises the squared error.

  Reflections are excluded: the rotation has determinant +1.
  """
  pred = np.asarray(pred, dtype=np.float64)
  target = np.asarray(target, dtype=np.float64)
  if pred.shape != target.shape:
    raise ValueError(f'procrustes_align: shapes differ: {pred.shape} vs {target.shape}.')
  mu_p = pred.mean(axis=-2, keepdims=True)
  mu_t = target.mean(axis=-2, keepdims=True)
  p = pred - mu_p
  t = target - mu_t
  # H = P^T T; rotation R maps p to t: t ~ s * p @ R.
  h = np.swapaxes(p, -1, -2) @ t
  u, sigma, vt = np.linalg.svd(h)
  d = np.sign(np.linalg.det(u @ vt))
  fix = np.ones_like(sigma)
  fix[..., -1] = d
  rotation = (u * fix[..., None, :]) @ vt
  norm_p = np.sum(p ** 2, axis=(-1, -2))
  scale = np.sum(sigma * fix, axis=-1) / np.maximum(norm_p, 1e-12)
  return scale[..., None, None] * (p @ rotation) + mu_t


def rotation_matrix(axis, angle):
  """Rotation by `angle` radians about a unit `axis` (Rodrigues)."""
  axis = np.asarray(axis, np.float64)
  axis = axis / np.linalg.norm(axis)
  x, y, z = axis
  c, s = np.cos(angle), np.sin(angle)
  k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
  return np.eye(3) + s * k + (1 - c) * (k @ k)


def solve_root_translation(pose3d_rel, joints2d, intrinsics):
  """Camera-frame position of the root [..., 3] from a root-relative pose [..., J, 3] and
  its undistorted projection [..., J, 2] (image pixels), by linear least squares.

  x_j - cx = fx (X_j + X0) / (Z_j + Z0) gives fx X0 - (x_j - cx) Z0 = (x_j - cx) Z_j - fx X_j,
  and likewise for y; exact when the 2D is the pinhole projection of the 3D.
  """
  pose3d_rel = np.asarray(pose3d_rel, np.float64)
  joints2d = np.asarray(joints2d, np.float64)
  fx, fy, cx, cy = np.asarray(intrinsics, np.float64)
  if fx <= 0 or fy <= 0:
    raise ValueError('solve_root_translation: intrinsics unknown (focal length <= 0).')
  u = joints2d[..., 0] - cx
  v = joints2d[..., 1] - cy
  zeros = np.zeros_like(u)
  # Rows for x: [fx, 0, -u]; rows for y: [0, fy, -v].
  rows_x = np.stack([np.full_like(u, fx), zeros, -u], axis=-1)
  rows_y = np.stack([zeros, np.full_like(v, fy), -v], axis=-1)
  a = np.concatenate([rows_x, rows_y], axis=-2)
  b = np.concatenate([u * pose3d_rel[..., 2] - fx * pose3d_rel[..., 0],
                      v * pose3d_rel[..., 2] - fy * pose3d_rel[..., 1]], axis=-1)
  ata = np.swapaxes(a, -1, -2) @ a
  atb = np.swapaxes(a, -1, -2) @ b[..., None]
  return np.linalg.solve(ata, atb)[..., 0]


def backproject(joints2d, depth, intrinsics):
  """Camera-frame 3D [..., J, 3] of image points [..., J, 2] at depths [..., J] (mm)."""
  joints2d = np.asarray(joints2d, np.float64)
  depth = np.asarray(depth, np.float64)
  fx, fy, cx, cy = np.asarray(intrinsics, np.float64)
  x = (joints2d[..., 0] - cx) * depth / fx
  y = (joints2d[..., 1] - cy) * depth / fy
  return np.stack([x, y, depth], axis=-1)


def resize_points(points, from_size, to_size):
  """Points in a square image of side from_size to the same image resized to to_size
  (pixel centres at integer coordinates): u' = (u + 0.5) * to / from - 0.5."""
  return (np.asarray(points, np.float64) + 0.5) * (to_size / from_size) - 0.5


def ray_rotations(crop_box, intrinsics):
  """Rotations [N, 3, 3] of the camera frame onto each crop's ray-aligned frame.

  The ray through the centre (x0 + size / 2, y0 + size / 2) of a crop box (x0, y0, size,
  image pixels) has the direction d = ((u - cx) / fx, (v - cy) / fy, 1); R is the
  smallest rotation with R d / |d| = (0, 0, 1), so in the rotated frame the person is
  seen straight ahead whatever their place in the image. Identity where the intrinsics
  are unknown (fx <= 0). A pose [J, 3] (row vectors) goes into the frame as pose @ R.T
  and back as pose_ray @ R.

  crop_box: [N, 3]; intrinsics: [N, 4] (fx, fy, cx, cy).
  """
  crop_box = np.asarray(crop_box, np.float64).reshape(-1, 3)
  intrinsics = np.asarray(intrinsics, np.float64).reshape(-1, 4)
  out = np.tile(np.eye(3), (len(crop_box), 1, 1))
  for i, ((x0, y0, size), (fx, fy, cx, cy)) in enumerate(zip(crop_box, intrinsics)):
    if fx <= 0 or fy <= 0:
      continue
    d = np.array([(x0 + size / 2.0 - cx) / fx, (y0 + size / 2.0 - cy) / fy, 1.0])
    d /= np.linalg.norm(d)
    axis = np.cross(d, [0.0, 0.0, 1.0])
    sin = np.linalg.norm(axis)
    if sin < 1e-12:
      continue
    out[i] = rotation_matrix(axis, np.arctan2(sin, d[2]))
  return out


def to_ray_frame(poses, rotations):
  """Camera-frame poses [N, J, 3] into their ray-aligned frames (`ray_rotations`)."""
  return np.einsum('nij,nkj->nki', rotations, np.asarray(poses, np.float64))


def from_ray_frame(poses, rotations):
  """Ray-aligned poses [N, J, 3] back into the camera frame."""
  return np.einsum('nji,nkj->nki', rotations, np.asarray(poses, np.float64))

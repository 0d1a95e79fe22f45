"""Cameras after Human3.6M's: sampling one around a person at the world origin, and
turning world poses into its frame.

A camera is a dict(rotation [3, 3] world->camera, centre [3] mm in the world frame,
intrinsics [4] fx, fy, cx, cy in pixels). The world frame is z up (see `fbi3d.data.body`);
the camera frame is Human3.6M's: x right, y down, z away from the camera.
"""

import numpy as np

from fbi3d import geometry

# Camera model, after Human3.6M: about 1145 px focal length at 1000 px.
FOCAL_AT_1000 = 1145.0
CAMERA_DISTANCE_MM = (4000.0, 6000.0)
CAMERA_HEIGHT_MM = (1000.0, 2000.0)


def image_hw(image_size):
  """(height, width) of an image size given as an int (square) or (height, width)."""
  if np.ndim(image_size) == 0:
    return int(image_size), int(image_size)
  h, w = image_size
  return int(h), int(w)


def sample_camera(rng, image_size):
  """A camera looking at a person standing at the world origin (z up).

  Returns dict(rotation [3, 3] world->camera, centre [3] mm, intrinsics [4] fx, fy, cx,
  cy). The aim point is offset from the body so that people land at varied image
  positions; callers reject cameras that cut the body (see
  `fbi3d.data.synthetic.make_example`).
  """
  h, w = image_hw(image_size)
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


def world_to_camera(poses_world, camera):
  """Camera-frame poses [..., J, 3] (mm; x right, y down, z away from the camera, as in
  Human3.6M) of world poses through a camera dict (rotation, centre) such as
  `sample_camera` returns."""
  return geometry.world_to_camera(poses_world, camera['rotation'], camera['centre'])


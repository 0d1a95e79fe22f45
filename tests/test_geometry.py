import cv2
import numpy as np
import pytest

from fbi3d import geometry


def test_project_pinhole_exact():
  # x = 1000 * 100 / 2000 + 500 = 550; y = 1100 * -200 / 2000 + 400 = 290.
  out = geometry.project([[100.0, -200.0, 2000.0]], (1000, 1100, 500, 400))
  np.testing.assert_allclose(out, [[550.0, 290.0]], atol=1e-12)


def test_project_with_human36m_distortion_exact():
  # u = (0.05, -0.1), r2 = 0.0125
  # radial = 1 + 0.1 r2 + 0.01 r2^2 + 0.001 r2^3 = 1.001251564453125
  # tangential = p1 * -0.1 + p2 * 0.05 = -0.0001 + 0.0002 = 0.0001
  # u' = u * 1.001351564453125 + (p2, p1) * r2
  #    = (0.05006757822265625 + 0.00005, -0.1001351564453125 + 0.0000125)
  out = geometry.project([[100.0, -200.0, 2000.0]], (1000, 1100, 500, 400),
                         distortion=(0.1, 0.01, 0.001, 0.001, 0.004))
  np.testing.assert_allclose(out, [[550.11757822265625, 289.86507791015625]], atol=1e-9)


def test_project_rejects_points_behind_camera():
  with pytest.raises(ValueError, match='behind'):
    geometry.project([[0.0, 0.0, -1.0]], (1, 1, 0, 0))


def test_world_to_camera_round_trip_and_look_at():
  eye = np.array([0.0, -5000.0, 1500.0])
  rot = geometry.look_at_rotation(eye, (0.0, 0.0, 1500.0))
  # Looking along +y from a point level with the target: camera z = world y,
  # camera x = world x, camera y (down) = -world z.
  np.testing.assert_allclose(rot, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
  p = np.array([[100.0, 0.0, 1500.0]])
  cam = geometry.world_to_camera(p, rot, eye)
  np.testing.assert_allclose(cam, [[100.0, 0.0, 5000.0]], atol=1e-9)
  np.testing.assert_allclose(geometry.camera_to_world(cam, rot, eye), p, atol=1e-9)


def test_root_relative():
  pose = np.array([[1.0, 2.0, 3.0], [4.0, 6.0, 8.0]])
  np.testing.assert_array_equal(geometry.root_relative(pose), [[0, 0, 0], [3, 4, 5]])


def test_square_box_with_margin():
  # bounding box 10 x 40, centre (5, 20); side 40 * (1 + 2 * 0.25) = 60.
  box = geometry.square_box([[0.0, 0.0], [10.0, 40.0]], margin=0.25)
  np.testing.assert_allclose(box, [-25.0, -10.0, 60.0])
  with pytest.raises(ValueError, match='NaN'):
    geometry.square_box([[0.0, np.nan], [1.0, 1.0]])


def test_crop_round_trip_exact():
  box = (10.0, 20.0, 200.0)
  pts = np.array([[110.0, 70.0], [10.0, 20.0]])
  crop = geometry.image_to_crop(pts, box, 100)
  np.testing.assert_allclose(crop, [[50.0, 25.0], [0.0, 0.0]])
  np.testing.assert_allclose(geometry.crop_to_image(crop, box, 100), pts)
  np.testing.assert_allclose(geometry.crop_affine(box, 100),
                             [[0.5, 0, -5.0], [0, 0.5, -10.0]])


def test_crop_affine_warps_image_like_points():
  image = np.zeros((200, 200), np.uint8)
  image[40, 60] = 255                       # pixel (x=60, y=40)
  box = (20.0, 0.0, 100.0)                  # scale 2 into a 200 crop
  crop = cv2.warpAffine(image, geometry.crop_affine(box, 200), (200, 200),
                        flags=cv2.INTER_LINEAR)
  y, x = np.unravel_index(np.argmax(crop), crop.shape)
  np.testing.assert_allclose(geometry.image_to_crop([[60.0, 40.0]], box, 200), [[x, y]])
  assert (x, y) == (80, 80)


def test_procrustes_removes_similarity_exactly():
  rng = np.random.default_rng(0)
  target = rng.normal(size=(17, 3)) * 300
  rot = geometry.rotation_matrix((1.0, 2.0, 3.0), 0.7)
  pred = 2.5 * target @ rot + np.array([10.0, -20.0, 30.0])
  np.testing.assert_allclose(geometry.procrustes_align(pred, target), target, atol=1e-9)


def test_procrustes_hand_case():
  target = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
  pred = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 0, 0], [0, 0, 0]])
  # H = diag(2, 0, 0): identity rotation, scale 2 / 2 = 1, aligned = pred.
  np.testing.assert_allclose(geometry.procrustes_align(pred, target), pred, atol=1e-12)


def test_procrustes_excludes_reflection():
  target = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
  mirrored = target * np.array([-1.0, 1.0, 1.0])
  aligned = geometry.procrustes_align(mirrored, target)
  # No rotation undoes the mirror in x: the best one leaves a mirror across the plane
  # normal to (1, 1, 1), along which the centred target T spreads least (T^T T = I - J / 4,
  # J all ones: eigenvalues 1, 1, 1 / 4), at scale (1 + 1 - 1 / 4) / tr(T^T T) = 7 / 9.
  # aligned = 7 / 9 T (I - 2 J / 3) + mean(target); residual^2 = 9 / 4 - 7 / 4 * 7 / 9.
  np.testing.assert_allclose(
      aligned, np.array([[19, -2, -2], [-2, 19, -2], [-2, -2, 19], [12, 12, 12]]) / 27.0,
      atol=1e-12)
  assert np.linalg.norm(aligned - target) == pytest.approx(np.sqrt(8.0 / 9.0), abs=1e-12)


def test_root_translation_and_backprojection_are_exact():
  rng = np.random.default_rng(3)
  rel = np.round(rng.normal(size=(17, 3)) * 200)
  rel -= rel[0]
  root = np.array([150.0, -80.0, 4500.0])
  intrinsics = (1145.0, 1143.0, 512.0, 515.0)
  joints2d = geometry.project(rel + root, intrinsics)
  np.testing.assert_allclose(geometry.solve_root_translation(rel, joints2d, intrinsics),
                             root, atol=1e-6)
  back = geometry.backproject(joints2d, rel[:, 2] + root[2], intrinsics)
  np.testing.assert_allclose(back, rel + root, atol=1e-6)
  # Hand case: a point at pixel (cx + 100, cy) and depth 2000 with fx 1000 has x = 200.
  np.testing.assert_allclose(
      geometry.backproject([[612.0, 515.0]], [2000.0], (1000.0, 1.0, 512.0, 515.0)),
      [[200.0, 0.0, 2000.0]])


def test_resize_points_keeps_pixel_centres():
  # Pixel 0 of a 32 image spans [-0.5, 0.5]; in a 64 image that is [-0.5, 1.5], centre 0.5.
  np.testing.assert_allclose(geometry.resize_points([[0.0, 31.0]], 32, 64), [[0.5, 62.5]])
  np.testing.assert_allclose(geometry.resize_points([[0.5, 62.5]], 64, 32), [[0.0, 31.0]])


def test_ray_rotation_puts_the_crop_centre_ahead_and_round_trips():
  # Shape = [N=3]. fx = fy = 1000, centre (500, 500). Box 1 centred at (800, 500): ray
  # (0.3, 0, 1). Box 2 centred on the principal point: identity. Box 3: unknown camera.
  boxes = np.array([[700.0, 400.0, 200.0], [400.0, 400.0, 200.0], [0.0, 0.0, 50.0]])
  intrinsics = np.array([[1000.0, 1000.0, 500.0, 500.0]] * 2 + [[0.0, 0.0, 0.0, 0.0]])
  r = geometry.ray_rotations(boxes, intrinsics)
  d = np.array([0.3, 0.0, 1.0]) / np.hypot(0.3, 1.0)
  np.testing.assert_allclose(r[0] @ d, [0.0, 0.0, 1.0], atol=1e-12)
  # A rotation about the y axis by atan(0.3): x' = cos x - sin z, z' = sin x + cos z.
  c, s = 1.0 / np.hypot(0.3, 1.0), 0.3 / np.hypot(0.3, 1.0)
  np.testing.assert_allclose(r[0], [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]], atol=1e-12)
  np.testing.assert_array_equal(r[1], np.eye(3))
  np.testing.assert_array_equal(r[2], np.eye(3))
  poses = np.random.default_rng(0).normal(size=(3, 17, 3))
  ray = geometry.to_ray_frame(poses, r)
  np.testing.assert_allclose(ray[0, 4], r[0] @ poses[0, 4], atol=1e-12)
  np.testing.assert_allclose(geometry.from_ray_frame(ray, r), poses, atol=1e-12)

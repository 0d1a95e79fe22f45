"""The synthetic renderer: a body in the camera frame drawn over a textured background.

Every bone is drawn as a tapered capsule, shaded along its length by depth (nearer is
brighter), with perspective tapering, a highlight stripe and painter's order, so that
which way a bone points in depth can be read from the picture. Left limbs are bluish,
right limbs reddish, torso and head neutral. Backgrounds are crops of a bank of textures
made once per process and image size.
"""

import cv2
import numpy as np

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import cameras

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
  h, w = cameras.image_hw(image_size)
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

"""Pictures in, for `fbi3d.prediction`: reading an image file, the square crop box around
a person (from a box, from 2D keypoints, or the whole picture), the crop itself, and
MediaPipe's pose landmarks as the 17 joints. A picture that cannot be used raises
PredictError, whose message says why.
"""

import math
import os

import cv2
import numpy as np

from fbi3d import geometry
from fbi3d import keypoints
from fbi3d import skeleton
from fbi3d.data import crop_worker

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# OpenCV's warpAffine (the crop) takes pictures under 32767 pixels a side.
MAX_IMAGE_SIDE = 32766
# The crop around a person: a square around the 2D joints or the box, with this margin of
# its side on each side (the converter's default; an export names the margin of the crops
# its models learned from, and predict cuts with that one).
MARGIN = 0.2
# With given 2D keypoints, a person needs this many known joints to place the crop.
MIN_KEYPOINTS = 6
# Given keypoints must be in the picture's pixels: at least half the known joints inside
# it, widened by this fraction of its longer side, and spanning at least MIN_SPAN_PX;
# the converter holds 2D joints to the same two bounds.
OUTSIDE_MARGIN = crop_worker.OUTSIDE_REACH
# A known joint farther than this fraction of the picture's longer side outside it is a
# wrong value, not a joint out of frame.
FAR_OUTSIDE = 1.0
MIN_SPAN_PX = crop_worker.MIN_JOINT_SPAN_PX


class PredictError(ValueError):
  """One picture cannot be predicted; the message says why."""


def read_image(path):
  """An image file as RGB uint8 [H, W, 3] (a picture with an alpha channel laid over white:
  `data.crop_worker.decode_image`); PredictError when it is not a readable image."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise PredictError(f'{path}: cannot read: {e.strerror}') from None
  if not data:
    raise PredictError(f'{path}: empty file')
  try:
    image = crop_worker.decode_image(data)
  except crop_worker.DecodeError as e:
    # OpenCV refuses, among others, pictures of more than 2**30 pixels.
    raise PredictError(f'{path}: OpenCV cannot decode it ({e}); OpenCV takes pictures of '
                       'at most 2**30 pixels: scale a larger one down, or cut out the part '
                       'with the person.') from None
  if image is None:
    raise PredictError(f'{path}: not a readable image')
  if data[:2] == b'\xff\xd8' and crop_worker.jpeg_is_truncated(data):
    raise PredictError(f'{path}: truncated JPEG (no end marker)')
  if max(image.shape[:2]) > MAX_IMAGE_SIDE:
    raise PredictError(f'{path}: {image.shape[1]}x{image.shape[0]} pixels, more than '
                       f'{MAX_IMAGE_SIDE} on a side, which OpenCV cannot crop; scale it down '
                       'or cut out the part with the person.')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def whole_image_box(shape):
  """The centred square around a whole image (x0, y0, size)."""
  h, w = shape[:2]
  side = float(max(h, w))
  return np.array([(w - side) / 2.0, (h - side) / 2.0, side])


def crop_image(image, box, size):
  """The square `box` (x0, y0, side) of an image resampled to size x size, with the
  mapping of geometry.image_to_crop. Large reductions average the pixels they cover
  (a bilinear crop at a multiple of the size, then an area resize) rather than skip
  them; outside the image is black, as in the training crops."""
  k = int(max(1, min(8, box[2] // size)))
  matrix = geometry.crop_affine(box, size * k)
  # Crop pixel u = k (u_final + 0.5) - 0.5, so the area resize lands on image_to_crop.
  matrix[:, 2] += (k - 1) / 2.0
  crop = cv2.warpAffine(image, matrix, (size * k, size * k), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  if k > 1:
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
  return crop


def box_from_bbox(bbox, shape, margin=MARGIN):
  """The square crop box around a person box (x, y, w, h) in image pixels."""
  x, y, w, h = (float(v) for v in bbox)
  if not all(math.isfinite(v) for v in (x, y, w, h)):
    raise PredictError(f'--bbox {x:g},{y:g},{w:g},{h:g}: give four finite numbers.')
  if w <= 0 or h <= 0:
    raise PredictError(f'--bbox {x:g},{y:g},{w:g},{h:g}: width and height must be positive.')
  if max(w, h) < MIN_SPAN_PX:
    raise PredictError(f'--bbox {x:g},{y:g},{w:g},{h:g}: a box of {max(w, h):g} px cannot '
                       'hold a person: give x, y, width and height in the picture\'s '
                       'pixels, not normalised to 0..1.')
  height, width = shape[:2]
  if x >= width or y >= height or x + w <= 0 or y + h <= 0:
    raise PredictError(f'no person: the box {x:g},{y:g},{w:g},{h:g} lies outside the '
                       f'{width}x{height} image.')
  far = FAR_OUTSIDE * max(width, height)
  beyond = max(-x, -y, x + w - width, y + h - height)
  if beyond > far:
    # A box of another resolution (the full-size original's, say): the picture would be
    # a small part of a crop that is mostly black.
    raise PredictError(f'--bbox {x:g},{y:g},{w:g},{h:g}: the box reaches {beyond:g} px '
                       f'beyond the {width}x{height} picture, more than its longer side; '
                       'give the box in this picture\'s pixels.')
  return geometry.square_box([[x, y], [x + w, y + h]], margin)


def stored_shape(path):
  """(H, W) of a picture file as stored, before any EXIF turn, or None when OpenCV cannot
  decode it."""
  try:
    data = np.fromfile(path, np.uint8)
  except OSError:
    return None
  try:
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
  except cv2.error:
    return None
  return None if image is None else tuple(image.shape[:2])


def check_joints_fit(joints, valid, shape, source, stored=None):
  """Raises PredictError unless the known joints of `joints` [17, 2] could be in the
  pixels of a picture of `shape` (H, W, ...): at least half of them inside it, widened by
  OUTSIDE_MARGIN of its longer side, and together spanning at least MIN_SPAN_PX in x or y.
  Keypoints of another resolution, of the unrotated frame of a photo with an EXIF
  rotation, or normalised to 0..1 fail; `source` names where they came from.

  `stored`: the (H, W) of the picture's file before its EXIF turn. When the turn swapped
  its sides and the known joints all lie in the stored picture but not all in the shown
  one, they were given in the stored frame (which more than half of them inside the
  shown picture does not rule out): refused too."""
  points = np.asarray(joints, np.float64)[np.asarray(valid, bool)]
  if not len(points):
    return
  h, w = shape[:2]
  if stored is not None and h != w and tuple(stored[:2]) == (w, h):
    def inside(width, height, pad=0.0):
      return ((points[:, 0] >= -pad) & (points[:, 0] <= width - 1 + pad)
              & (points[:, 1] >= -pad) & (points[:, 1] <= height - 1 + pad))
    # Outside the shown picture by more than the margin a detector's joint out of frame
    # may lie (OUTSIDE_MARGIN), yet all inside the stored one.
    shown = inside(w, h, OUTSIDE_MARGIN * max(h, w))
    if not shown.all() and inside(h, w).all():
      raise PredictError(
          f'{source}: the known joints all lie in the picture as its file stores it ({h}x{w}, '
          f'before its EXIF turn) but {len(points) - int(shown.sum())} of the '
          f'{len(points)} lie outside it as it is shown ({w}x{h}, by more than '
          f'{OUTSIDE_MARGIN:g} of its longer side; x from '
          f'{points[:, 0].min():.0f} to {points[:, 0].max():.0f}, y from '
          f'{points[:, 1].min():.0f} to {points[:, 1].max():.0f}): give keypoints in the '
          'pixels of the picture as it is shown (turned by its EXIF orientation, as a '
          'viewer shows it).')
  pad = OUTSIDE_MARGIN * max(h, w)
  inside = ((points[:, 0] >= -pad) & (points[:, 0] <= w - 1 + pad)
            & (points[:, 1] >= -pad) & (points[:, 1] <= h - 1 + pad))
  if 2 * int(inside.sum()) < len(points):
    raise PredictError(
        f'{source}: {len(points) - int(inside.sum())} of the {len(points)} known joints lie '
        f'outside the {w}x{h} picture (x from {points[:, 0].min():.0f} to '
        f'{points[:, 0].max():.0f}, y from {points[:, 1].min():.0f} to '
        f'{points[:, 1].max():.0f}): give keypoints in this picture\'s pixels, as it is '
        'shown (after any EXIF rotation).')
  far = FAR_OUTSIDE * max(h, w)
  index = np.flatnonzero(np.asarray(valid, bool))
  away = ((points[:, 0] < -far) | (points[:, 0] > w - 1 + far)
          | (points[:, 1] < -far) | (points[:, 1] > h - 1 + far))
  if away.any():
    j = int(np.flatnonzero(away)[0])
    raise PredictError(
        f'{source}: {int(away.sum())} known joint(s) lie more than {FAR_OUTSIDE:g} of the '
        f'picture\'s longer side outside the {w}x{h} picture, the first '
        f'{skeleton.JOINT_NAMES[index[j]]} at ({points[j, 0]:.0f}, {points[j, 1]:.0f}): '
        'no detector puts a joint there. Mark it missing (visibility 0 or an empty value) '
        'or correct it.')
  span = float(np.max(points.max(axis=0) - points.min(axis=0)))
  if span < MIN_SPAN_PX:
    raise PredictError(
        f'{source}: the known joints span {span:.2f} px in the {w}x{h} picture: give '
        'keypoints in pixels, not normalised to 0..1.')


def box_from_joints(joints, valid, margin=MARGIN):
  if int(np.sum(valid)) < MIN_KEYPOINTS:
    raise PredictError(f'no person: only {int(np.sum(valid))} of the 17 joints are known '
                       f'from the keypoints (at least {MIN_KEYPOINTS} needed).')
  return geometry.square_box(np.asarray(joints)[np.asarray(valid, bool)], margin)


def mediapipe_landmarks(image):
  """MediaPipe's pose landmarker (model complexity 1, the model inside the
  mediapipe==0.10.21 wheel: nothing is downloaded) on an RGB picture: (33 image landmarks
  [33, 2] in pixels, their visibility [33], 33 world landmarks [33, 3] in metres centred
  between the hips), or None when it finds no person. ValueError when the extra is not
  installed."""
  try:
    import mediapipe  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ValueError('MediaPipe (--detector=mediapipe) needs the optional extra: pip install '
                     '"fbi3d[mediapipe]" (mediapipe==0.10.21).') from None
  with mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
    result = pose.process(np.ascontiguousarray(image))
  if result.pose_landmarks is None or result.pose_world_landmarks is None:
    return None
  h, w = image.shape[:2]
  marks = result.pose_landmarks.landmark
  return (np.array([[m.x * w, m.y * h] for m in marks]),
          np.array([m.visibility for m in marks]),
          np.array([[m.x, m.y, m.z] for m in result.pose_world_landmarks.landmark]))


def mediapipe_joints(image):
  """The 17 joints (image pixels) and validity from MediaPipe's landmarks, or None when
  it finds no person."""
  found = mediapipe_landmarks(image)
  if found is None:
    return None
  points, visibility, _ = found
  return keypoints.from_mediapipe(points, visibility)


def parse_bbox(values):
  """--bbox as four floats (x, y, w, h); ValueError saying what is wrong."""
  if len(values) != 4:
    raise ValueError(f'--bbox needs four numbers x,y,w,h in image pixels; got {len(values)} '
                     f'values ({",".join(values)}).')
  try:
    box = [float(v) for v in values]
  except ValueError:
    raise ValueError(f'--bbox needs four numbers x,y,w,h in image pixels; got '
                     f'{",".join(values)}.') from None
  if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
    raise ValueError(f'--bbox={",".join(values)}: x and y must be finite and the width and '
                     'height above 0.')
  return box


def list_images(paths, log=None):
  """The image files of the arguments: files as given, folders' image files sorted.
  `log` (when given) is told of each folder's other files, which are left out."""
  files = []
  for path in paths:
    if os.path.isdir(path):
      try:
        names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
      except OSError as e:
        raise ValueError(f'{path}: cannot list the folder ({e.strerror}).') from None
      files.extend(os.path.join(path, n) for n in names
                   if n.lower().endswith(IMAGE_EXTENSIONS))
      others = [n for n in names
                if not n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith('.')]
      if others and log is not None:
        log(f'{path}: {len(others)} file(s) left out, not of a picture type read here '
            f'({", ".join(IMAGE_EXTENSIONS)}): {", ".join(others[:5])}'
            f'{", ..." if len(others) > 5 else ""}; convert them (to .jpg or .png) or '
            'give them by name.')
    elif os.path.exists(path):
      files.append(path)
    else:
      raise ValueError(f'{path} not found.')
  return files

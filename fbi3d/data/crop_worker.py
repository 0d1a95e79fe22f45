"""The per-item work of the converter, free of TensorFlow.

`prepare_items` turns the items of a shard task of `fbi3d.data.convert` (or a part of
one) into plain Python and NumPy values: for every good item the fields of its example
(the crop as JPEG, 2D joints in crop pixels, 3D pose, FBI labels, ...) and its crop mode,
for every bad one the reason it is skipped. The converter serializes and writes the
examples and sums up the shard's statistics.

The converter's worker processes (`fbi3d.data.worker_pool`) run `prepare_items`. Neither
this module nor anything it imports loads TensorFlow, so a worker starts in a fraction of
a second.
"""

import sys

import cv2
import numpy as np

from fbi3d import fbi
from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import joint_maps
from fbi3d.data import layout

# Kinds of bad input; every skipped item's reason starts with its kind and a colon.
MISSING_POSE = 'missing pose'
MISSING_IMAGE = 'missing image'
CORRUPT_IMAGE = 'corrupt image'
BAD_POSE = 'bad pose'
DUPLICATE_ID = 'duplicate id'
BAD_META = 'bad meta'
NAN_2D = 'nan 2d joints'
OUTSIDE = 'crop outside picture'
BAD_SIDE_ROW = 'bad side file row'
DEGENERATE_POSE = 'degenerate pose'
DEGENERATE_2D = 'degenerate 2d joints'
# The least span (pixels, in x or y) of an item's 2D joints: less is no person but joints
# given as zeros or normalised to 0..1 (predict's keypoint check reads it too).
MIN_JOINT_SPAN_PX = 4.0

CROP_MODES = ('joints2d', 'box', 'whole_image')
# How far outside the picture (a fraction of its longer side) a 2D joint may lie before it
# counts as outside (a limb just out of frame); predict's keypoint check reads it too.
OUTSIDE_REACH = 0.1


class BadItem(Exception):
  """One input item cannot be converted."""

  def __init__(self, kind, message):
    super().__init__(f'{kind}: {message}')
    self.kind = kind
    self.detail = message


class DecodeError(ValueError):
  """OpenCV refused to decode a picture (one of more than 2**30 pixels, say); the
  message is its reason."""


def _imdecode(buffer, flags):
  try:
    return cv2.imdecode(buffer, flags)
  except cv2.error as e:
    lines = str(e).strip().splitlines()
    raise DecodeError(lines[-1] if lines else 'no reason given') from None


def decode_image(data):
  """The bytes of an image file as BGR uint8 [H, W, 3], or None when OpenCV cannot decode
  them; DecodeError when OpenCV refuses them (too many pixels).

  OpenCV's colour decoding (which also turns a JPEG by its EXIF orientation and brings
  16-bit pictures to 8 bits) drops an alpha channel and leaves each transparent pixel
  whatever colour it stores, often black. A picture with an alpha channel (a PNG, WebP or
  TIFF cut-out) is therefore laid over white, as a viewer shows it:
  colour = round(stored * a + 255 * (1 - a)), a the alpha over its maximum. So is a
  greyscale PNG with a transparent grey (a tRNS colour key): a is 0 where a pixel has
  that grey, else 1.
  """
  buffer = np.frombuffer(data, np.uint8)
  image = _imdecode(buffer, cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    return None
  if data[:2] == b'\xff\xd8':      # JPEG has no alpha
    return image
  full = _imdecode(buffer, cv2.IMREAD_UNCHANGED)
  key = png_grey_key(data)
  if full is not None and full.ndim == 2 and key is not None:
    # A greyscale PNG whose tRNS chunk names one grey as transparent: OpenCV gives the
    # grey without an alpha channel. Stored at 1, 2 or 4 bits, the grey comes out scaled
    # to 8 bits, and so is the key.
    depth, grey = key
    if depth < 8:
      grey = grey * 255 // (2 ** depth - 1)
    alpha = (full != grey).astype(np.float64)[..., None]
    stored = np.repeat(full[..., None], 3, axis=-1)
  elif full is not None and full.ndim == 3 and full.shape[2] == 4:
    alpha = full[..., 3:].astype(np.float64) / np.iinfo(full.dtype).max \
        if np.issubdtype(full.dtype, np.integer) else np.clip(full[..., 3:], 0.0, 1.0)
    stored = full[..., :3]
  else:
    return image
  # IMREAD_UNCHANGED does not turn the picture by its EXIF orientation, IMREAD_COLOR
  # does: the alpha is turned the way that maps the stored colours onto `image`.
  alpha = _oriented_like(alpha, stored, image)
  if alpha is None:
    return image
  return np.round(image * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def png_grey_key(data):
  """(bit depth, grey) of a greyscale PNG's transparent grey (its tRNS chunk), or None for
  any other picture. The chunks are stepped over by their lengths up to the image data,
  after which a tRNS chunk may not come."""
  if data[:8] != b'\x89PNG\r\n\x1a\n' or len(data) < 33 or data[12:16] != b'IHDR':
    return None
  depth, colour_type = data[24], data[25]
  if colour_type != 0:
    return None
  i = 8
  while i + 8 <= len(data):
    length = int.from_bytes(data[i:i + 4], 'big')
    kind = data[i + 4:i + 8]
    if kind == b'tRNS' and length == 2 and i + 10 <= len(data):
      return depth, int.from_bytes(data[i + 8:i + 10], 'big')
    if kind in (b'IDAT', b'IEND'):
      return None
    i += 12 + length
  return None


def _dihedral(array):
  """The 8 turns and mirror images of an [H, W, ...] array (the EXIF orientations)."""
  for flipped in (array, array[:, ::-1]):
    for k in range(4):
      yield k, flipped is not array, np.rot90(flipped, k)


def _oriented_like(alpha, stored, image):
  """`alpha` [H, W, 1] turned as the stored colours [H, W, 3] (any depth) were turned
  into `image` (uint8 BGR), or None when no turn maps one onto the other."""
  if stored.dtype != np.uint8:
    top = np.iinfo(stored.dtype).max if np.issubdtype(stored.dtype, np.integer) else 1.0
    stored = np.clip(np.round(stored.astype(np.float64) * (255.0 / top)), 0, 255)
  # Compared on every step-th pixel: enough to tell the turns apart, cheap on big photos.
  step = max(1, int(np.sqrt(stored.shape[0] * stored.shape[1] / 65536.0)))
  target = image.astype(np.int16)
  best, best_error = None, None
  # No turn first: a tie (colours alike under several turns) keeps the alpha as stored.
  for k, mirrored, turned in _dihedral(stored.astype(np.int16)):
    if turned.shape[:2] != image.shape[:2]:
      continue
    error = np.abs(turned[::step, ::step] - target[::step, ::step]).mean()
    if best_error is None or error < best_error:
      best, best_error = (k, mirrored), error
    if error < 1.0:      # 16-bit colours brought to 8 bits differ from OpenCV's by <= 1
      break
  if best is None or best_error > 2.0:
    return None
  k, mirrored = best
  return np.rot90(alpha[:, ::-1] if mirrored else alpha, k)


def jpeg_is_truncated(data):
  """Whether the bytes of a JPEG stop before its end marker (EOI), which OpenCV decodes
  without a word, greying the rest. The marker is looked for after the first scan starts
  (the segments before it are stepped over by their lengths, so an EXIF thumbnail's own
  marker does not count), anywhere after it: data after the marker (a camera's trailer,
  a motion photo's video) does not make a picture truncated."""
  i = 2
  while i + 4 <= len(data):
    if data[i] != 0xFF:
      return False       # not a marker where one belongs: the decoder says what is wrong
    marker = data[i + 1]
    if marker == 0xFF:   # fill byte
      i += 1
    elif marker == 0xDA:  # start of scan: the end marker must follow
      return b'\xff\xd9' not in data[i:]
    elif 0xD0 <= marker <= 0xD9 or marker == 0x01:   # markers without a length
      i += 2
    else:
      i += 2 + int.from_bytes(data[i + 2:i + 4], 'big')
  return True


def read_image(path):
  """Reads and decodes an image (BGR uint8, `decode_image`); BadItem when it is
  unreadable."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise BadItem(CORRUPT_IMAGE, f'{path}: cannot read: {e.strerror}') from None
  if not data:
    raise BadItem(CORRUPT_IMAGE, f'{path}: empty file')
  # By content, not by name: a PNG named .jpg is a PNG.
  if data[:2] == b'\xff\xd8' and jpeg_is_truncated(data):
    raise BadItem(CORRUPT_IMAGE, f'{path}: truncated JPEG (no end marker)')
  try:
    image = decode_image(data)
  except DecodeError as e:
    raise BadItem(CORRUPT_IMAGE, f'{path}: OpenCV cannot decode it ({e})') from None
  if image is None:
    raise BadItem(CORRUPT_IMAGE, f'{path}: not a readable image')
  return image


def crop_box(item, image_shape, margin):
  """(mode, square box x0, y0, size) for an item."""
  if item['joints2d'] is not None:
    return 'joints2d', geometry.square_box(item['joints2d'], margin)
  if item['box'] is not None:
    x, y, w, h = item['box']
    return 'box', geometry.square_box([[x, y], [x + w, y + h]], margin)
  h, w = image_shape[:2]
  side = float(max(h, w))
  return 'whole_image', np.array([(w - side) / 2.0, (h - side) / 2.0, side])


# A POSE file is root-relative millimetres: the pelvis within ROOT_TOLERANCE_MM of the
# origin and the bones' mean length within BONE_MEAN_MM (an adult's is about 250 mm, so
# centimetres give about 25 and metres 0.25).
ROOT_TOLERANCE_MM = 1.0
BONE_MEAN_MM = (80.0, 600.0)


def _check_pose_convention(pose3d, path):
  """BadItem unless pose3d [17, 3] is root-relative and in millimetres."""
  root = np.asarray(pose3d[0], np.float64)
  if np.linalg.norm(root) > ROOT_TOLERANCE_MM:
    raise BadItem(BAD_POSE, f'{path}: the pelvis (row 1) is at ({root[0]:g}, {root[1]:g}, '
                            f'{root[2]:g}), not at the origin: POSE files are root-relative')
  mean = float(np.mean([np.linalg.norm(pose3d[c] - pose3d[p]) for p, c in skeleton.BONES]))
  if not BONE_MEAN_MM[0] <= mean <= BONE_MEAN_MM[1]:
    raise BadItem(BAD_POSE, f'{path}: the bones are {mean:.3g} long on average, not '
                            f'{BONE_MEAN_MM[0]:g} to {BONE_MEAN_MM[1]:g} mm: POSE files are '
                            'in millimetres')


def prepare_item(item, settings):
  """One item -> (example fields for schema.serialize_example, crop mode).

  Raises BadItem when the item cannot be converted.
  """
  crop_size = settings['crop_size']
  has_pose = settings['has_pose']
  if item['joints2d'] is not None and not np.all(np.isfinite(item['joints2d'])):
    raise BadItem(NAN_2D, f'{item["image"]}: 2D joints contain NaN or infinity')
  if item['joints2d'] is not None:
    span = float(np.ptp(np.asarray(item['joints2d'], np.float64), axis=0).max())
    if span < MIN_JOINT_SPAN_PX:
      # Was kept as a 16-px crop around one point, its 2D marked valid.
      raise BadItem(DEGENERATE_2D, f'{item["image"]}: its 2D joints from '
                    f'{item.get("placed_by")} span {span:g} px, under '
                    f'{MIN_JOINT_SPAN_PX:g}: no person (joints given as zeros, or '
                    'normalised to 0..1?)')
  if has_pose:
    try:
      pose3d = layout.read_pose_csv(item['pose'])
    except layout.LayoutError as e:
      raise BadItem(BAD_POSE, str(e)) from None
    try:
      labels = fbi.fbi_labels(pose3d, settings['fbi_threshold_deg'])
    except ValueError as e:
      raise BadItem(DEGENERATE_POSE, f'{item["pose"]}: {e}') from None
    _check_pose_convention(pose3d, item['pose'])
    short = joint_maps.first_short_bone(pose3d[None])
    if short is not None:
      # After the unit check (metres give short bones too). Two joints in one place:
      # the FBI label of such a bone is rounding noise.
      raise BadItem(DEGENERATE_POSE, f'{item["pose"]}: the bone {short[1]} is '
                    f'{short[2]:.3g} mm long, under {joint_maps.MIN_BONE_MM:g} mm: two '
                    'joints in one place')
  else:
    pose3d = np.zeros((skeleton.NUM_JOINTS, 3), np.float32)
    labels = np.zeros(skeleton.NUM_FBI_BONES, np.int64)
  image = read_image(item['image'])
  mode, box = crop_box(item, image.shape, settings['margin'])
  height, width = image.shape[:2]
  if box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 or box[1] + box[2] <= 0:
    raise BadItem(OUTSIDE, f'{item["image"]}: the crop around its {mode} from '
                           f'{item.get("placed_by")} (x {box[0]:.0f}, y {box[1]:.0f}, side '
                           f'{box[2]:.0f}) lies outside the {width}x{height} picture: they '
                           'are of another picture or resolution')
  if mode == 'joints2d':
    # Joints of the full-size original on a halved picture still give a crop that
    # overlaps it, of the wrong place: more than half of them beyond a tenth of the
    # picture's longer side outside it is another resolution, not a person out of frame.
    joints = np.asarray(item['joints2d'], np.float64)
    reach = OUTSIDE_REACH * max(width, height)
    outside = ((joints[:, 0] < -reach) | (joints[:, 0] > width - 1 + reach)
               | (joints[:, 1] < -reach) | (joints[:, 1] > height - 1 + reach))
    if 2 * outside.sum() > len(joints):
      raise BadItem(OUTSIDE, f'{item["image"]}: {int(outside.sum())} of its '
                             f'{len(joints)} 2D joints from {item.get("placed_by")} lie '
                             f'outside the {width}x{height} picture (by more than '
                             f'{OUTSIDE_REACH:g} of its longer side): they are of another '
                             'picture or resolution')
  crop = cv2.warpAffine(image, geometry.crop_affine(box, crop_size), (crop_size, crop_size),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
  ok, jpeg = cv2.imencode('.jpg', crop, [cv2.IMWRITE_JPEG_QUALITY, settings['jpeg_quality']])
  if not ok:
    raise BadItem(CORRUPT_IMAGE, f'{item["image"]}: JPEG encoding of the crop failed')
  if item['joints2d'] is not None:
    pose2d = geometry.image_to_crop(item['joints2d'], box, crop_size).astype(np.float32)
  else:
    pose2d = np.zeros((skeleton.NUM_JOINTS, 2), np.float32)
  example = dict(
      image_jpeg=jpeg.tobytes(), image_size=crop_size, pose2d=pose2d,
      pose3d=np.asarray(pose3d, np.float32), fbi=np.asarray(labels, np.int64),
      action=item['action'], subject=item['subject'], source_id=item['id'],
      split=item['key'][0], crop_box=box.astype(np.float32),
      intrinsics=item['intrinsics'], pose2d_valid=item['joints2d'] is not None,
      pose3d_valid=has_pose)
  return example, mode


def prepare_items(task):
  """Prepares the items of a task: a shard or a consecutive part of one.

  Returns a dict: shard (its name), examples (for each good item, in plan order,
  dict(example=the fields for schema.serialize_example, crop_mode=...)), skipped (split,
  id and reason of each bad item) and error (None; with task['strict'], the message for
  the first bad item, where preparing stopped). tensorflow_loaded says whether the
  process that prepared them has TensorFlow in sys.modules.
  """
  examples, skipped = [], []
  error = None
  for item in task['items']:
    reason = item['problem']
    if reason is None:
      try:
        example, mode = prepare_item(item, task['settings'])
      except BadItem as e:
        reason = str(e)
    if reason is not None:
      if task['strict']:
        error = f'{item["key"][0]}/{item["id"]}: {reason}'
        break
      skipped.append(dict(split=item['key'][0], id=item['id'], reason=reason))
      continue
    examples.append(dict(example=example, crop_mode=mode))
  return dict(shard=task['shard'], error=error, examples=examples, skipped=skipped,
              tensorflow_loaded='tensorflow' in sys.modules)

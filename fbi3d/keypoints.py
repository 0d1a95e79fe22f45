"""2D keypoints of other layouts mapped to the 17 joints of `fbi3d/skeleton.py`, and the
keypoint files `python -m fbi3d.predict --keypoints2d` reads.

Layouts:
  coco17       COCO's 17 person keypoints: nose, left_eye, right_eye, left_ear,
               right_ear, left_shoulder, right_shoulder, left_elbow, right_elbow,
               left_wrist, right_wrist, left_hip, right_hip, left_knee, right_knee,
               left_ankle, right_ankle; visibility 0 means not labelled.
  mediapipe33  MediaPipe's 33 pose landmarks (nose, the eyes' inner/centre/outer points,
               ears, mouth corners, shoulders, elbows, wrists, three hand points each,
               hips, knees, ankles, heels, foot tips); visibility in [0, 1].
  h36m17       already the 17 joints.

Both other layouts have the limbs' twelve joints (shoulders, elbows, wrists, hips, knees,
ankles) under their own names. The others are derived; the approximations:
  Hip (pelvis)  the midpoint of the two hips, Human3.6M's own definition. (COCO's hip
                points lie a little lower and wider than Human3.6M's hip joints.)
  Thorax        the midpoint of the shoulders: Human3.6M's thorax joint sits at the base
                of the neck, between the shoulder joints.
  Spine         on the line from pelvis to thorax, at the fraction 234 / (234 + 257) of
                the way: the mean Human3.6M bone lengths pelvis->spine and spine->thorax.
  Neck/Nose     the nose: Human3.6M's joint 9 lies at the face, near the nose, and the
                synthetic people the models learn from carry their nose there.
  Head          thorax + 1.5 x (head centre - thorax), with the head centre the midpoint
                of the ears (of the eyes when an ear is missing): the head joint lies
                beyond the ears' level, away from the thorax, by about half the thorax to
                ear distance (1.47 in the synthetic body's upright pose).
A derived joint is missing when a point it needs is missing. MediaPipe landmarks count
as missing below a visibility of 0.5.
"""

import codecs
import csv
import json
import os
import re

import numpy as np

from fbi3d import skeleton

LAYOUTS = ('coco17', 'mediapipe33', 'h36m17')
NUM_POINTS = {'coco17': 17, 'mediapipe33': 33, 'h36m17': skeleton.NUM_JOINTS}

COCO_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
COCO = {name: i for i, name in enumerate(COCO_NAMES)}

MEDIAPIPE_NAMES = (
    'nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
    'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist',
    'right_wrist', 'left_pinky', 'right_pinky', 'left_index', 'right_index', 'left_thumb',
    'right_thumb', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
    'right_ankle', 'left_heel', 'right_heel', 'left_foot_index', 'right_foot_index')
# MediaPipe's landmark of each COCO keypoint (the eyes' centre points for the eyes).
MEDIAPIPE_TO_COCO = tuple(MEDIAPIPE_NAMES.index(name) for name in COCO_NAMES)
MEDIAPIPE_MIN_VISIBILITY = 0.5

# The joints taken as they are: 17-joint index <- COCO keypoint.
_DIRECT = {1: 'right_hip', 2: 'right_knee', 3: 'right_ankle', 4: 'left_hip',
           5: 'left_knee', 6: 'left_ankle', 9: 'nose', 11: 'left_shoulder',
           12: 'left_elbow', 13: 'left_wrist', 14: 'right_shoulder', 15: 'right_elbow',
           16: 'right_wrist'}
SPINE_FRACTION = skeleton.MEAN_BONE_LENGTHS_MM[7] / (
    skeleton.MEAN_BONE_LENGTHS_MM[7] + skeleton.MEAN_BONE_LENGTHS_MM[8])
HEAD_FACTOR = 1.5


def _midpoint(points, valid, a, b):
  return 0.5 * (points[a] + points[b]), bool(valid[a] and valid[b])


def from_coco(points, valid=None):
  """COCO-17 keypoints [17, 2] (and validity [17], default all) -> (joints [17, 2],
  validity [17] bool) in the order of fbi3d/skeleton.py. Missing joints are NaN. 3D
  points [17, 3] map the same way (the pelvis, spine, thorax and head built alike)."""
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[0] != 17 or points.shape[1] not in (2, 3):
    raise ValueError(f'COCO keypoints: expected shape [17, 2] (or [17, 3]), got '
                     f'{points.shape}.')
  valid = np.ones(17, bool) if valid is None else np.asarray(valid, bool)
  valid = valid & np.all(np.isfinite(points), axis=1)
  joints = np.full((skeleton.NUM_JOINTS, points.shape[1]), np.nan)
  ok = np.zeros(skeleton.NUM_JOINTS, bool)
  for joint, name in _DIRECT.items():
    joints[joint], ok[joint] = points[COCO[name]], valid[COCO[name]]
  joints[0], ok[0] = _midpoint(points, valid, COCO['left_hip'], COCO['right_hip'])
  joints[8], ok[8] = _midpoint(points, valid, COCO['left_shoulder'], COCO['right_shoulder'])
  joints[7] = joints[0] + SPINE_FRACTION * (joints[8] - joints[0])
  ok[7] = ok[0] and ok[8]
  if valid[COCO['left_ear']] and valid[COCO['right_ear']]:
    centre, has_centre = _midpoint(points, valid, COCO['left_ear'], COCO['right_ear'])
  else:
    centre, has_centre = _midpoint(points, valid, COCO['left_eye'], COCO['right_eye'])
  joints[10] = joints[8] + HEAD_FACTOR * (centre - joints[8])
  ok[10] = ok[8] and has_centre
  joints[~ok] = np.nan
  return joints, ok


def from_mediapipe(points, visibility=None, min_visibility=MEDIAPIPE_MIN_VISIBILITY):
  """MediaPipe-33 landmarks [33, 2] in pixels (and visibility [33]) -> (joints [17, 2],
  validity [17]), through their COCO-17 subset; world landmarks [33, 3] map alike."""
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[0] != 33 or points.shape[1] not in (2, 3):
    raise ValueError(f'MediaPipe landmarks: expected shape [33, 2] (or [33, 3]), got '
                     f'{points.shape}.')
  valid = None
  if visibility is not None:
    valid = np.asarray(visibility, np.float64)[list(MEDIAPIPE_TO_COCO)] >= min_visibility
  return from_coco(points[list(MEDIAPIPE_TO_COCO)], valid)


def to_joints(values, layout):
  """A flat row of keypoint values (x, y pairs or x, y, visibility triplets) of a layout
  -> (joints [17, 2], validity [17])."""
  if layout not in LAYOUTS:
    raise ValueError(f'unknown keypoint layout {layout!r}: use one of {", ".join(LAYOUTS)}.')
  values = np.asarray(values, np.float64).reshape(-1)
  n = NUM_POINTS[layout]
  if values.size == 2 * n:
    points, score = values.reshape(n, 2), None
    # x, y pairs have no visibility: OpenPose, AlphaPose and MMPose write a joint they did
    # not find as exactly (0, 0), a point no person's joint is at. It is missing.
    points = np.where(np.all(points == 0.0, axis=1, keepdims=True), np.nan, points)
  elif values.size == 3 * n:
    points, score = values.reshape(n, 3)[:, :2], values.reshape(n, 3)[:, 2]
    # MediaPipe's visibility is a probability: outside 0..1 the third value is something
    # else, its landmarks' depth z say, and read as visibility it would leave out an
    # arbitrary half of the joints. (COCO's third value is 0, 1 or 2, but detectors write
    # raw scores there, of any sign and size, so only > 0 is asked of it.) A NaN one is a
    # missing joint.
    outside = np.flatnonzero((score < 0) | (score > 1)) if layout == 'mediapipe33' else []
    if len(outside):
      raise ValueError(
          f'{layout} keypoints: the third value of each point is read as its visibility '
          f'(0 to 1), but point {int(outside[0])} has {score[outside[0]]:g}: these look '
          f'like x, y, z. Give x, y pairs ({2 * n} values) or x, y, visibility.')
  else:
    raise ValueError(f'{layout} keypoints: expected {2 * n} values (x, y) or {3 * n} '
                     f'(x, y, visibility), got {values.size}.')
  if layout == 'mediapipe33':
    return from_mediapipe(points, score)
  valid = None if score is None else score > 0
  if layout == 'coco17':
    return from_coco(points, valid)
  valid = np.ones(n, bool) if valid is None else valid
  valid = valid & np.all(np.isfinite(points), axis=1)
  joints = np.where(valid[:, None], points, np.nan)
  return joints, valid


# A CSV row of 17 points is either COCO's keypoints or the 17 joints, and its numbers do
# not say which. In COCO's order points 1 to 4 (eyes, ears) lie around point 0 (the nose):
# 0.06 of the body's size (the diagonal of the box around the points) for the COCO photo
# in ../shared/data/photos. In the 17 joints' order they are the hips, the right knee and
# the right ankle around point 0 (the pelvis): over 10,092 views of pose-bank poses
# (lifter.test_views) the median is 0.48, 99% lie above 0.25, 0.4% under FACE_SPREAD_MAX
# and the least is 0.08. A file read as COCO by default is refused above FACE_SPREAD_MAX
# (so that 0.4% still passes as COCO); the check needs FACE_SPREAD_MIN_POINTS of the 17
# points, since a close-up of a face fills its own box.
FACE_SPREAD_MAX = 0.2
FACE_SPREAD_MIN_POINTS = 15


def face_spread(values):
  """The largest distance of points 1 to 4 from point 0 over the diagonal of the box
  around every point, of a flat row of 17 points (x, y pairs or x, y, visibility
  triplets; a visibility of 0 or a non-finite coordinate marks a missing point). None
  when point 0, all of points 1 to 4, or more than 17 - FACE_SPREAD_MIN_POINTS points are
  missing, or the box is a single point."""
  # The 17 joints' layout keeps the points in their order, with to_joints's reading of
  # pairs, triplets and missing points.
  points, valid = to_joints(values, 'h36m17')
  if not valid[0] or not valid[1:5].any() or valid.sum() < FACE_SPREAD_MIN_POINTS:
    return None
  diagonal = np.linalg.norm(points[valid].max(axis=0) - points[valid].min(axis=0))
  if diagonal <= 0:
    return None
  near = np.flatnonzero(valid[1:5]) + 1
  return float(np.linalg.norm(points[near] - points[0], axis=1).max() / diagonal)


# Too few points for face_spread: in the 17 joints' order point 0 (the pelvis) is the
# midpoint of points 1 and 4 (the hips); in COCO's, the nose lies well off the midpoint
# of the left eye and the right ear: 0.23 of their distance for the skier of
# ../shared/data/photos, 0.57 for the upright person of the tests.
PELVIS_MIDPOINT_MAX = 0.05


def pelvis_between_hips(values):
  """Whether point 0 of a flat row of 17 points lies within PELVIS_MIDPOINT_MAX of the
  distance between points 1 and 4 from their midpoint (all three known)."""
  points, valid = to_joints(values, 'h36m17')
  if not valid[[0, 1, 4]].all():
    return False
  width = np.linalg.norm(points[1] - points[4])
  if width <= 0:
    return False
  return bool(np.linalg.norm(points[0] - (points[1] + points[4]) / 2) <=
              PELVIS_MIDPOINT_MAX * width)


def _person_score(joints, valid):
  """(joints known, area of the box around them): the larger, the likelier the person
  a picture is about."""
  if not valid.any():
    return (0, 0.0)
  known = joints[valid]
  return (int(valid.sum()), float(np.prod(known.max(axis=0) - known.min(axis=0))))


class KeypointFile:
  """2D keypoints per image from a file, mapped to the 17 joints.

  Formats:
    COCO JSON  a COCO annotation file (`annotations` with `keypoints` [51] and
               `image_id`; `images` or `image` with `file_name`), or a list of results
               ({'image_id', 'keypoints'}). Annotations are matched to an image by file
               name; a file that describes a single image (or none) applies to whatever
               image is given, one picture at a time (`check_names`). With several
               people, the one with the most labelled keypoints is used (then the
               larger box).
    CSV        one row per image: `image,v1,v2,...`, the image's file name (or `*` for
               any image) and the values of --keypoints_layout, x, y pairs or x, y,
               visibility triplets (a joint missing: visibility 0, or its x and y
               empty or nan). A first row starting with `image` is a header.
               Several rows for one image (several people): the one with the most of
               the 17 joints known is used (then the larger box around them).
    META.csv   the synthetic source's side file (`id,action,subject,x0,y0,...,x16,y16,
               fx,fy,cx,cy`): the 17 joints of image `<id>.jpg`.
  """

  def __init__(self, path, layout=None):
    self.layout_given = layout is not None
    layout = 'coco17' if layout is None else layout
    if layout not in LAYOUTS:
      raise ValueError(f'unknown keypoint layout {layout!r}: use one of {", ".join(LAYOUTS)}.')
    self.path = path
    self.layout = layout
    self.rows = {}          # file name (or '*') -> list of (values, score)
    self._named = {}        # file name -> the name (with its folders) the file gave first
    # A COCO file of one image (or of one unnamed image_id) is read as any picture's: the
    # image's file name, or '' when it names none. None for every other file.
    self.one_image = None
    if not os.path.isfile(path):
      raise ValueError(f'keypoint file {path} not found.')
    try:
      with open(path, 'rb') as f:
        head = f.read(64)
    except OSError as e:
      raise ValueError(f'keypoint file {path}: cannot read it ({e.strerror}).') from None
    # A byte-order mark (a CSV saved as "UTF-8 with BOM") is not part of the text.
    head = head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head
    if head.lstrip()[:1] in (b'{', b'['):
      self._read_coco(path)
    else:
      self._read_csv(path)

  def _add(self, given, values, score, where=''):
    """Adds a person of the picture `given` (a file name, with or without folders, or
    '*'); pictures are matched by file name alone, so two that share a file name in
    different folders are refused: one would get the other's person."""
    name = given if given == '*' else os.path.basename(given)
    first = self._named.setdefault(name, given)
    if os.path.normpath(first) != os.path.normpath(given):
      raise ValueError(
          f'{self.path}{where}: names {first} and {given}, pictures of one file name in '
          'different folders; keypoints are matched to pictures by file name alone, so '
          'one would get the other\'s person. Give one keypoint file per folder.')
    self.rows.setdefault(name, []).append((np.asarray(values, np.float64), score))

  def _read_coco(self, path):
    if self.layout != 'coco17':
      raise ValueError(f'{path}: a COCO JSON file holds coco17 keypoints, not {self.layout}.')
    try:
      with open(path, encoding='utf-8-sig') as f:
        data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
      raise ValueError(f'{path}: not a readable JSON file ({e}).') from None
    if isinstance(data, list):
      annotations, images = data, []
    else:     # the file starts with { or [ (KeypointFile reads it as JSON so)
      annotations = data.get('annotations', [])
      images = data.get('images') or ([data['image']] if 'image' in data else [])
    for key, value in (('annotations', annotations), ('images', images)):
      if not isinstance(value, list):
        raise ValueError(f'{path}: "{key}" must be a list, not {type(value).__name__}.')
    names = {}
    for im in images:
      if isinstance(im, dict):
        if not isinstance(im.get('id'), (int, float, str, type(None))):
          raise ValueError(f'{path}: an image id must be a number or a string, not '
                           f'{im.get("id")!r}.')
        names[im.get('id')] = im.get('file_name')
    single = len(names) <= 1
    # The one image a file names: annotations of other image ids are not of it.
    only_id = next(iter(names)) if len(names) == 1 else None
    if not names:
      ids = sorted({str(a.get('image_id')) for a in annotations if isinstance(a, dict)})
      if len(ids) > 1:
        # A detector's results list: nothing says which picture each image_id is.
        raise ValueError(
            f'{path}: annotations of {len(ids)} images (image_id {", ".join(ids[:5])}'
            f'{", ..." if len(ids) > 5 else ""}) but no "images" list that names their '
            'files, so they cannot be matched to pictures. Add COCO\'s "images" list '
            '({"id": ..., "file_name": ...} for each) or give one image\'s annotations '
            'per file.')
    for ann in annotations:
      if isinstance(ann, dict) and not isinstance(ann.get('image_id'),
                                                  (int, float, str, type(None))):
        raise ValueError(f'{path}: an annotation\'s image_id must be a number or a string, '
                         f'not {ann.get("image_id")!r}.')
      values = ann.get('keypoints') if isinstance(ann, dict) else None
      if not isinstance(values, (list, tuple)) or len(values) != 51:
        raise ValueError(f'{path}: every annotation needs "keypoints", 51 numbers (17 COCO '
                         'keypoints as x, y, visibility).')
      try:
        v = np.asarray(values, np.float64).reshape(17, 3)
        box = np.asarray(ann.get('bbox') or [0, 0, 0, 0], np.float64).reshape(4)
      except (TypeError, ValueError):
        raise ValueError(f'{path}: annotation {ann.get("id", "?")} (image_id '
                         f'{ann.get("image_id")}): "keypoints" must be 51 numbers and '
                         '"bbox" 4 numbers (x, y, width, height).') from None
      known = v[(v[:, 2] > 0) & np.all(np.isfinite(v[:, :2]), axis=1), :2]
      if ann.get('bbox'):
        area = float(box[2]) * float(box[3])
      else:
        # A detector's results carry no box: the box around the known keypoints.
        area = float(np.prod(known.max(axis=0) - known.min(axis=0))) if len(known) else 0.0
      # The most known keypoints; then a detector's own score (its results mark every
      # keypoint known, so the count ties); then the larger box.
      confidence = ann.get('score', 0.0)
      confidence = float(confidence) if isinstance(confidence, (int, float)) and \
          np.isfinite(confidence) else 0.0
      score = (len(known), confidence, area)
      if only_id is not None and ann.get('image_id', only_id) != only_id:
        continue
      name = '*' if single else names.get(ann.get('image_id'))
      if single:
        self.one_image = os.path.basename(next(iter(names.values()), None) or '')
      if name is not None:
        self._add(name, values, score)

  def _read_csv(self, path):
    try:
      with open(path, newline='', encoding='utf-8-sig') as f:
        rows = list(csv.reader(f))
    except UnicodeDecodeError:
      raise ValueError(f'{path}: not a text CSV file.') from None
    if rows and rows[0][:5] == ['id', 'action', 'subject', 'x0', 'y0']:
      self._read_meta(path, rows)
      return
    for number, row in enumerate(rows, 1):
      if not row or not ''.join(row).strip() or row[0].strip().startswith('#'):
        continue
      if number == 1 and row[0].strip().lower() == 'image':
        continue
      try:
        # An empty field is a missing value, as `nan` is.
        values = [float(v) if v.strip() else float('nan') for v in row[1:]]
      except ValueError:
        raise ValueError(f'{path}:{number}: expected image,x,y,... with numbers (an '
                         'empty field or nan for a missing joint).') from None
      try:
        joints, valid = to_joints(values, self.layout)
      except ValueError as e:
        raise ValueError(f'{path}:{number}: {e}') from None
      self._check_coco(path, number, values)
      self._add(row[0].strip(), values, _person_score(joints, valid), f':{number}')

  def _check_coco(self, path, number, values):
    """Refuses a row read as COCO's keypoints by default (no layout given) whose points 1
    to 4 lie too far from point 0 for eyes and ears around a nose (face_spread)."""
    if self.layout_given or self.layout != 'coco17':
      return
    spread = face_spread(values)
    if spread is None and pelvis_between_hips(values):
      raise ValueError(
          f'{path}:{number}: no keypoint layout was given, and these points do not look '
          'like COCO\'s: point 0 lies halfway between points 1 and 4, as the pelvis of the '
          '17 joints of fbi3d/skeleton.py lies between the hips (COCO\'s nose is not '
          'halfway between the left eye and the right ear). If they are those 17 joints, '
          'pass --keypoints_layout=h36m17; if they are COCO keypoints, pass '
          '--keypoints_layout=coco17.')
    if spread is not None and spread > FACE_SPREAD_MAX:
      raise ValueError(
          f'{path}:{number}: no keypoint layout was given, and these 17 points do not look '
          f'like COCO\'s: points 1 to 4 (COCO\'s eyes and ears) lie up to {spread:.2f} of '
          f'the body\'s size from point 0 (the nose), where a face keeps them within '
          f'{FACE_SPREAD_MAX:g}. If they are the 17 joints of fbi3d/skeleton.py (pelvis '
          'first), pass --keypoints_layout=h36m17; if they are COCO keypoints, pass '
          '--keypoints_layout=coco17.')

  def _read_meta(self, path, rows):
    columns = [f'{a}{i}' for i in range(skeleton.NUM_JOINTS) for a in 'xy']
    try:
      index = [rows[0].index(c) for c in columns]
    except ValueError:
      raise ValueError(f'{path}: a META.csv header needs x0,y0,...,x16,y16.') from None
    self.layout = 'h36m17'
    for number, row in enumerate(rows[1:], 2):
      if not row:
        continue
      try:
        values = [float(row[i]) for i in index]
      except (ValueError, IndexError):
        raise ValueError(f'{path}:{number}: expected numbers in x0..y16.') from None
      self._add(row[0].strip() + '.jpg', values, (len(values), 0.0))

  def check_names(self, image_paths):
    """Raises ValueError when two of `image_paths` share a file name and this file names
    its pictures: joints() matches by file name alone, so both would get one person; and
    when a COCO file of one image would give its one person to several pictures."""
    if self.one_image is not None and len(image_paths) > 1:
      which = f' ({self.one_image})' if self.one_image else ''
      raise ValueError(
          f'{self.path} holds the keypoints of one image{which} and {len(image_paths)} '
          'pictures were given: every one would get that image\'s person. Predict that '
          'picture alone, or give a file that names each picture (COCO\'s "images" with '
          'their file names, or a CSV with one row per picture).')
    if self.one_image and len(image_paths) == 1:
      # The picture may be a renamed copy (coco_000000000785.jpg of COCO's
      # 000000000785.jpg), so one name holding the other is enough; a frame_0007.jpg
      # given the keypoints of frame_0001.jpg would get another frame's person.
      named = os.path.splitext(self.one_image)[0].lower()
      given = os.path.splitext(os.path.basename(image_paths[0]))[0].lower()

      def holds(longer, shorter):
        # Not within a longer number: frame_1 is not in frame_12.
        return re.search(r'(?<!\d)' + re.escape(shorter) + r'(?!\d)', longer) is not None

      if not holds(given, named) and not holds(named, given):
        raise ValueError(
            f'{self.path} holds the keypoints of {self.one_image}, and the picture given is '
            f'{image_paths[0]}: another picture\'s person. Give the file of this picture, '
            'or, if it is the same picture under another name, rename one of them so that '
            'one name holds the other.')
    if not set(self.rows) - {'*'}:
      return
    seen = {}
    for path in image_paths:
      other = seen.setdefault(os.path.basename(path), path)
      if other != path:
        raise ValueError(
            f'{other} and {path} have the same file name, and {self.path} matches '
            'keypoints to pictures by file name alone: predict them in separate calls.')

  def joints(self, image_path):
    """(joints [17, 2], validity [17]) of the person in `image_path`, or None when the
    file has no keypoints for it."""
    name = os.path.basename(image_path)
    candidates = self.rows.get(name) or self.rows.get('*')
    if not candidates:
      return None
    values, _ = max(candidates, key=lambda c: c[1])
    try:
      return to_joints(values, self.layout)
    except ValueError as e:
      raise ValueError(f'{self.path} ({name}): {e}') from None

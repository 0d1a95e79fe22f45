"""The 3D pose of the person in a picture, with an exported model
(`python -m fbi3d.predict`).

The SavedModel of `python -m fbi3d.export` is loaded with TensorFlow alone
(`ExportedModel`); a picture's person crop (`fbi3d.pictures`) is the square around a
given box, given 2D keypoints, or the joints a detector finds (the model's own 2D
estimator on the centred square of the picture, or MediaPipe's pose landmarker); the crop
runs through serving_default (the image-based Final pose).

Which pose is the answer: when the 2D comes from outside the image model (a keypoint file
or MediaPipe), those joints go through `lift` and the lift is the main pose (`pose3d` of
a result, `pose3d_mm` of the JSON), with the image-based Final beside it (`final3d`,
`final_pose3d_mm`); otherwise the main pose is the Final, as the image pipeline gives it.
Joints the given 2D lacks are filled as the export's `lift_missing_joints` says: by the
nearest known ancestor (`lifter_inputs.fill_missing`) for a pose-bank lifter, from the
model's own 2D estimate for the Base regressor. Per picture a JSON and a figure are written, each
under a temporary name renamed when complete, and only when the picture succeeded.
"""

import json
import os
import re

import numpy as np

from fbi3d import geometry
from fbi3d import lifter_inputs
from fbi3d import pictures
from fbi3d import viz

# What pose3d_mm is in, by the exported model's pose3d_frame.
POSE3D_FRAMES = {
    'camera': 'camera frame (x right, y down, z away from the camera), millimetres, '
              'relative to the pelvis (Hip)',
    'ray': 'the crop\'s ray-aligned camera frame: the camera frame turned so that the crop '
           'centre is straight ahead (x right, y down, z away), millimetres, relative to '
           'the pelvis (Hip)',
}
# "No detectable person" with the project's own 2D estimator: the mean of the 17 joints'
# confidences on the whole picture is below a threshold. By default the threshold is
# BLANK_FACTOR times the estimator's own highest mean confidence on a black, a grey and
# a white picture (`blank_confidence`), so that it follows the model: what a trained
# estimator says of an empty picture moves from one training to the next. The quickstart
# estimator is trained with the integral loss, and a joint's confidence is the
# probability mass of the 3x3 heatmap cells around it (9 / 256 = 0.035 when spread evenly
# over a 16x16 map). Measured with tools/measure_confidence.py on two quickstart exports:
#   - the one of the 16-epoch float32 estimator: blank pictures 0.107 to 0.114, a
#     photograph with its person painted over 0.111, tiny pictures up to 0.108, whole
#     synthetic test pictures 0.164 to 0.456 (300 of them), the skier and the astronaut
#     0.28, noise 0.109 to 0.206; 1.4 x 0.114 = 0.160;
#   - the one of the 14-epoch bfloat16 estimator with flip averaging: blank 0.139 to
#     0.150, the painted-over photograph 0.207, tiny pictures 0.136 to 0.145, synthetic
#     test pictures 0.315 to 0.756 (60 of them), the photographs 0.46 and 0.64, noise
#     0.145 to 0.484; 1.4 x 0.150 = 0.209. (A fixed 0.13, the threshold before, passed
#     every blank picture here.)
# So the default turns away empty pictures but not every noise picture; give --bbox or
# --keypoints2d where the crop matters, or --min_confidence for a fixed threshold.
BLANK_FACTOR = 1.4
# The blank pictures: every pixel this grey level.
BLANK_LEVELS = (0, 128, 255)
# What fills the joints a given 2D lacks, by the export's lift_missing_joints.
MISSING_FILLS = {
    'ancestor': 'the 2D of the nearest known ancestor joint (the rule the lifter was '
                'trained with: fbi3d/lifter_inputs.py fill_missing)',
    'estimator': 'the exported model\'s own 2D estimate on the crop',
}
LIFT_NAMES = {'lifter': 'the pose-bank lifter (lift signature)',
              'base': 'the Base regressor (lift signature)'}


class ExportedModel:
  """A SavedModel written by export(), loaded with TensorFlow alone."""

  # The margins of the crops its image models and its `lift` learned from.
  crop_margin = lift_margin = pictures.MARGIN

  def __init__(self, path):
    # TensorFlow loads with the first model, so that `predict` checks its flags at once.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from fbi3d import inference  # pylint: disable=import-outside-toplevel
    self.path = inference.resolve_export(path)
    try:
      self.module = tf.saved_model.load(self.path)
    except (OSError, ValueError, tf.errors.OpError) as e:
      raise ValueError(f'cannot load the SavedModel in {self.path}: {e}') from None
    if not hasattr(self.module, 'crop_size'):
      raise ValueError(f'{self.path} is not a SavedModel of python -m fbi3d.export.')
    missing = [n for n in ('serving_default', 'lift') if n not in self.module.signatures]
    if missing:
      raise ValueError(f'{self.path} lacks the signature(s) {", ".join(missing)} that '
                       'predict calls: export the run again with python -m fbi3d.export.')
    self.crop_size = int(self.module.crop_size.numpy())
    # Exports made before the margin was recorded learned from crops of the default one.
    margin = getattr(self.module, 'crop_margin', None)
    self.crop_margin = pictures.MARGIN if margin is None else float(margin.numpy())
    margin = getattr(self.module, 'lift_margin', None)
    self.lift_margin = self.crop_margin if margin is None else float(margin.numpy())
    self.joint_names = [n.decode() for n in self.module.joint_names.numpy()]
    self.fbi_bone_names = [n.decode() for n in self.module.fbi_bone_names.numpy()]
    self.fbi_class_names = [n.decode() for n in self.module.fbi_class_names.numpy()]
    frame = getattr(self.module, 'pose3d_frame', None)
    self.pose3d_frame = 'camera' if frame is None else frame.numpy().decode()
    # Exports made before the lifter existed lift with Base and fill from the estimator.
    def text(name, default):
      value = getattr(self.module, name, None)
      return default if value is None else value.numpy().decode()
    self.lift_model = text('lift_model', 'base')
    self.lift_missing_joints = text('lift_missing_joints', 'estimator')
    self.lift_frame = text('lift_frame', self.pose3d_frame)
    average = getattr(self.module, 'lift_mirror_average', None)
    self.lift_mirror_average = bool(average is not None and average.numpy())
    # Exports made before flip averaging existed read each crop once.
    flip = getattr(self.module, 'image_flip_average', None)
    self.image_flip_average = bool(flip is not None and flip.numpy())
    self._blank_confidence = None

  def blank_confidence(self):
    """The 2D estimator's highest mean joint confidence on pictures of one grey level
    (BLANK_LEVELS), computed once."""
    if self._blank_confidence is None:
      s = self.crop_size
      crops = np.stack([np.full((s, s, 3), v, np.uint8) for v in BLANK_LEVELS])
      self._blank_confidence = float(
          self.predict(crops)['pose2d_confidence'].mean(axis=1).max())
    return self._blank_confidence

  def predict(self, crops):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    out = self.module.signatures['serving_default'](images=tf.constant(crops, tf.uint8))
    return {k: v.numpy() for k, v in out.items()}

  def lift(self, pose2d):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    out = self.module.signatures['lift'](pose2d=tf.constant(pose2d, tf.float32))
    return out['pose3d'].numpy()


def whole_picture_confidence(model, images):
  """{name: the 2D estimator's mean joint confidence on the centred square of the whole
  picture} of images [(name, RGB image)], the measure --min_confidence is a threshold
  of (tools/measure_confidence.py)."""
  s = model.crop_size
  crops = np.stack([pictures.crop_image(image, pictures.whole_image_box(image.shape), s)
                    for _, image in images])
  confidence = model.predict(crops)['pose2d_confidence'].mean(axis=1)
  return {name: float(c) for (name, _), c in zip(images, confidence)}


def person_threshold(model, min_confidence=None):
  """(the mean joint confidence below which the estimator finds no person, how it was
  set): `min_confidence` when given, else BLANK_FACTOR times model.blank_confidence()."""
  if min_confidence is not None:
    return float(min_confidence), 'given'
  blank = model.blank_confidence()
  return BLANK_FACTOR * blank, f'{BLANK_FACTOR:g} times its {blank:.3f} on blank pictures'


def predict_pictures(model, images, *, bbox=None, keypoint_file=None, detector='estimator',
                     min_confidence=None):
  """Predicts the person in each picture.

  model: an ExportedModel; images: list of (name, RGB uint8 image). The crop is the
  square around `bbox` (x, y, w, h) when given, else around the joints of
  `keypoint_file` (a keypoints.KeypointFile), else around the joints that `detector`
  finds: 'estimator' runs the model's own 2D estimator on the centred square of the whole
  picture (a person whose mean joint confidence is below `min_confidence` counts as not
  found; None: person_threshold's default), 'mediapipe' MediaPipe's pose landmarker.

  Returns one entry per picture: a result dict (see result_json) or a pictures.PredictError.
  """
  from fbi3d import inference  # pylint: disable=import-outside-toplevel
  s = model.crop_size
  plans = []      # (box, crop_from, given joints, their validity) or a pictures.PredictError
  first = []      # pictures whose box the estimator finds
  for i, (name, image) in enumerate(images):
    try:
      if min(image.shape[:2]) < inference.MIN_IMAGE_SIDE:
        raise pictures.PredictError(
            f'no person: the picture is {image.shape[1]}x{image.shape[0]} pixels, too '
            f'small to hold one (at least {inference.MIN_IMAGE_SIDE} on a side).')
      if bbox is not None:
        plans.append((pictures.box_from_bbox(bbox, image.shape, model.crop_margin), 'bbox',
                      None, None))
      elif keypoint_file is not None:
        try:
          found = keypoint_file.joints(name)
        except ValueError as e:
          # One picture's bad row (a third value that is no visibility) fails that
          # picture, not the run.
          raise pictures.PredictError(f'no person: {e}') from None
        if found is None:
          raise pictures.PredictError(f'no person: {keypoint_file.path} has no keypoints '
                                      f'for {os.path.basename(name)}.')
        pictures.check_joints_fit(*found, image.shape, keypoint_file.path,
                                  stored=pictures.stored_shape(name))
        plans.append((pictures.box_from_joints(*found, model.crop_margin), 'keypoints2d')
                     + found)
      elif detector == 'mediapipe':
        found = pictures.mediapipe_joints(image)
        if found is None:
          raise pictures.PredictError('no person: MediaPipe found none.')
        plans.append((pictures.box_from_joints(*found, model.crop_margin), 'mediapipe')
                     + found)
      else:
        plans.append(None)
        first.append(i)
    except pictures.PredictError as e:
      plans.append(e)
  if first:
    threshold, how = person_threshold(model, min_confidence)
    boxes = [pictures.whole_image_box(images[i][1].shape) for i in first]
    out = model.predict(np.stack([pictures.crop_image(images[i][1], b, s)
                                  for i, b in zip(first, boxes)]))
    for j, (i, box) in enumerate(zip(first, boxes)):
      confidence = float(out['pose2d_confidence'][j].mean())
      if confidence < threshold:
        plans[i] = pictures.PredictError(
            f'no detectable person: the 2D estimator\'s mean joint confidence is '
            f'{confidence:.3f} on the whole picture, below {threshold:.3f}'
            + ('' if how == 'given' else f' ({how})') + '.')
        continue
      joints = geometry.crop_to_image(out['pose2d'][j], box, s)
      plans[i] = (geometry.square_box(joints, model.crop_margin), 'estimator', None, None)

  ready = [i for i, p in enumerate(plans) if not isinstance(p, pictures.PredictError)]
  results = list(plans)
  if not ready:
    return results
  crops = np.stack([pictures.crop_image(images[i][1], plans[i][0], s) for i in ready])
  out = model.predict(crops)
  given = [i for i in ready if plans[i][2] is not None]
  lifted = {}
  if given:
    two_d, lift_boxes = [], []
    for i in given:
      box, _, joints, valid = plans[i]
      valid = np.asarray(valid, bool)
      # `lift` takes crop pixels of the box with its own margin (a lifter's may differ
      # from the image models').
      lift_box = (box if model.lift_margin == model.crop_margin else
                  geometry.square_box(np.asarray(joints)[valid], model.lift_margin))
      in_crop = geometry.image_to_crop(joints, lift_box, s)
      if model.lift_missing_joints == 'ancestor':
        two_d.append(lifter_inputs.fill_missing(in_crop, valid))
      else:
        detected = geometry.image_to_crop(
            geometry.crop_to_image(out['pose2d'][ready.index(i)], box, s), lift_box, s)
        two_d.append(np.where(valid[:, None], in_crop, detected))
      lift_boxes.append(lift_box)
    pose3d = model.lift(np.stack(two_d).astype(np.float32))
    lifted = {i: (two_d[k], pose3d[k], lift_boxes[k]) for k, i in enumerate(given)}
  for j, i in enumerate(ready):
    box, crop_from, joints, valid = plans[i]
    source = crop_from
    if crop_from == 'keypoints2d' and keypoint_file is not None:
      source = f'keypoints2d file {keypoint_file.path}'
    elif crop_from in ('estimator', 'bbox'):
      source = 'estimator'
    entry = dict(name=images[i][0], image_shape=images[i][1].shape, crop_box=box,
                 crop_from=crop_from, crop_size=s, pose2d_source=source,
                 pose3d=out['pose3d'][j], pose3d_model='final', final3d=out['pose3d'][j],
                 pose2d_crop=out['pose2d'][j],
                 pose2d=geometry.crop_to_image(out['pose2d'][j], box, s),
                 confidence=out['pose2d_confidence'][j], fbi=out['fbi'][j],
                 coarse3d=out['coarse3d'][j])
    if i in lifted:
      entry.update(keypoints2d=joints, keypoints_valid=valid,
                   lift_input2d=geometry.crop_to_image(lifted[i][0], lifted[i][2], s),
                   lifted3d=lifted[i][1], pose3d=lifted[i][1], pose3d_model='lift')
    results[i] = entry
  return results


def _by_name(names, values, digits):
  return {n: [round(float(v), digits) + 0.0 for v in row] for n, row in zip(names, values)}


def result_json(model, entry):
  """The JSON document of one prediction."""
  names = model.joint_names
  h, w = entry['image_shape'][:2]
  x0, y0, size = (float(v) for v in entry['crop_box'])
  fbi_list = []
  for bone, probs in zip(model.fbi_bone_names, entry['fbi']):
    c = int(np.argmax(probs))
    fbi_list.append(dict(bone=bone, fbi=model.fbi_class_names[c],
                         probability=round(float(probs[c]), 4),
                         probabilities={k: round(float(p), 4)
                                        for k, p in zip(model.fbi_class_names, probs)}))
  lifted = entry.get('pose3d_model') == 'lift'
  source = entry.get('pose2d_source', 'estimator')
  if lifted:
    main_frame = POSE3D_FRAMES.get(model.lift_frame, POSE3D_FRAMES['camera'])
    averaged = (', averaged with its left/right mirror image,'
                if model.lift_mirror_average else '')
    main_from = (f'{LIFT_NAMES.get(model.lift_model, model.lift_model)}{averaged} on the 2D '
                 f'from {source}')
    main_2d = entry['lift_input2d']
    main_2d_from = (f'{source}; joints it lacks filled with '
                    f'{MISSING_FILLS.get(model.lift_missing_joints, "?")}')
  else:
    main_frame = POSE3D_FRAMES[model.pose3d_frame]
    main_from = 'the image-based Final model on the crop (serving_default)'
    main_2d = entry['pose2d']
    main_2d_from = 'the exported model\'s own 2D estimator on the crop'
  doc = dict(
      image=entry['name'], image_width=int(w), image_height=int(h),
      model=model.path, crop_from=entry['crop_from'],
      crop_box=dict(x=round(x0, 2), y=round(y0, 2), size=round(size, 2)),
      crop_size=entry['crop_size'], crop_margin=round(float(model.crop_margin), 4),
      pose3d_model='lift' if lifted else 'final',
      pose3d_from=main_from,
      pose3d_mm=_by_name(names, entry['pose3d'], 1),
      pose3d_frame=main_frame,
      pose2d_source=source,
      pose2d_from=main_2d_from,
      pose2d_px=_by_name(names, main_2d, 2),
      pose2d_frame='image pixels (x, y), pixel centres at integer coordinates')
  if lifted:
    doc.update(
        final_pose3d_mm=_by_name(names, entry['final3d'], 1),
        final_pose3d_from='the image-based Final model on the crop (serving_default)',
        final_pose3d_frame=POSE3D_FRAMES[model.pose3d_frame],
        estimator_pose2d_px=_by_name(names, entry['pose2d'], 2))
  doc.update(
      joint_confidence={n: round(float(c), 3) for n, c in zip(names, entry['confidence'])},
      mean_confidence=round(float(np.mean(entry['confidence'])), 3),
      fbi=fbi_list,
      coarse3d=_by_name(names, entry['coarse3d'], 2),
      coarse3d_frame='x, y crop pixels, z millimetres relative to the pelvis',
      image_model_note='joint_confidence, fbi and coarse3d come from the image model on the '
                       'crop (its 2D estimator and generator)'
                       + ('; every output of the image models (the 2D estimator\'s joints '
                          'and confidences, coarse 3D and FBI, and so Final) is the mean over '
                          'the crop and its mirror image' if model.image_flip_average else ''))
  if 'lifted3d' in entry:
    valid = np.asarray(entry['keypoints_valid'], bool)
    filled = [n for n, ok in zip(names, valid) if not ok]
    doc['keypoints2d'] = dict(
        source=source,
        given_px={n: [round(float(v), 2) for v in p]
                  for n, p, ok in zip(names, entry['keypoints2d'], valid) if ok},
        missing=filled,
        missing_filled_with=MISSING_FILLS.get(model.lift_missing_joints, '?'))
  return doc


def _dumps(doc):
  """Indented JSON with each list of numbers on one line."""
  text = json.dumps(doc, indent=1)
  return re.sub(r'\[\s+([-+0-9.eE,\s]+?)\s+\]',
                lambda m: '[' + ' '.join(m.group(1).split()) + ']', text) + '\n'


def write_outputs(model, entry, out_dir, stem):
  """Writes <stem>.json and <stem>.png in out_dir, each under a temporary name renamed
  when complete; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  json_path = os.path.join(out_dir, stem + '.json')
  png_path = os.path.join(out_dir, stem + '.png')
  tmp_json = os.path.join(out_dir, f'.{stem}.json.tmp')
  tmp_png = os.path.join(out_dir, f'.{stem}.tmp.png')
  try:
    with open(tmp_json, 'w') as f:
      f.write(_dumps(result_json(model, entry)))
    image = entry.get('image')
    name = os.path.basename(entry['name'])
    if entry.get('pose3d_model') == 'lift':
      # The lift is the answer: its 2D and 3D in colour, the image-based Final in grey.
      title = (f'{name}: 3D lifted from the 2D of {entry["pose2d_source"]} '
               f'({LIFT_NAMES.get(model.lift_model, model.lift_model)}); grey: the '
               'image-based Final')
      viz.pose_figure(image, entry['lift_input2d'], entry['pose3d'], entry['fbi'],
                      entry['crop_box'], tmp_png, title=title,
                      keypoints2d=entry.get('keypoints2d'), lifted3d=entry['final3d'],
                      names=('lift of the given 2D', 'Final (image model on the crop)'))
    else:
      title = (f'{name}: crop from {entry["crop_from"]}, mean 2D confidence '
               f'{float(np.mean(entry["confidence"])):.2f}')
      viz.pose_figure(image, entry['pose2d'], entry['pose3d'], entry['fbi'],
                      entry['crop_box'], tmp_png, title=title)
    os.replace(tmp_png, png_path)
    os.replace(tmp_json, json_path)
  finally:
    for tmp in (tmp_json, tmp_png):
      if os.path.exists(tmp):
        os.remove(tmp)
  return json_path, png_path


def holds_another_picture(out_dir, name, path):
  """The picture whose outputs <out_dir>/<name>.json holds when it is not `path` (an
  earlier run's, on another picture of the same name), else None. A JSON that cannot be
  read is not ours to replace: its path is returned."""
  json_path = os.path.join(out_dir, name + '.json')
  if not os.path.exists(json_path):
    return None
  other = _recorded_picture(json_path)
  if other is None:
    return json_path
  if not os.path.exists(other):
    # Gone from where it was (a moved checkout, a renamed folder): a picture of the same
    # file name is taken for it, and its outputs are replaced.
    return None if os.path.basename(other) == os.path.basename(path) else other
  return None if _same_file(other, path) else other


def _recorded_picture(json_path):
  """The picture (its path) an output JSON of predict names, or None when the file
  cannot be read as one."""
  try:
    with open(json_path) as f:
      image = json.load(f).get('image')
  except (OSError, ValueError, AttributeError):
    return None
  return image if isinstance(image, str) else None


def _same_file(a, b):
  """Whether two paths name one file (by their spelled-out paths when one is missing)."""
  try:
    return os.path.samefile(a, b)
  except OSError:
    return os.path.abspath(a) == os.path.abspath(b)


def figure_not_ours(out_dir, name, path):
  """Whether <out_dir>/<name>.png is a file no earlier run wrote for a picture: the
  picture `path` itself (--out the pictures' own folder), or any PNG without the JSON
  our outputs come with. Writing the figure there would replace it."""
  png = os.path.join(out_dir, name + '.png')
  if not os.path.exists(png):
    return False
  if _same_file(png, path):
    return True
  return not os.path.exists(os.path.join(out_dir, name + '.json'))


def earlier_figure(path):
  """Whether `path` is the figure of an earlier prediction: a PNG with predict's JSON
  beside it that names another picture (read back when --out is the pictures' folder)."""
  if not path.lower().endswith('.png'):
    return False
  image = _recorded_picture(os.path.splitext(path)[0] + '.json')
  return image is not None and not _same_file(image, path)


def unique_stem(path, taken, out_dir=None):
  """The name of `path`'s outputs (its file name without extension), with _2, _3, ...
  added until no picture before it in this call has it, nor (with `out_dir`) an earlier
  run's outputs there of another picture, nor a PNG there that is not an output (the
  picture itself, say); adds the name to `taken`. a.jpg, a.png, a_2.jpg give a, a_2,
  a_2_2: no picture's files replace another's, nor any picture."""
  stem = os.path.splitext(os.path.basename(path))[0]
  name, number = stem, 1
  while name in taken or (out_dir and (holds_another_picture(out_dir, name, path)
                                       or figure_not_ours(out_dir, name, path))):
    number += 1
    name = f'{stem}_{number}'
  taken.add(name)
  return name


def predict_files(model, paths, out_dir, *, batch_size=16, log=print, **options):
  """Predicts every picture of `paths` (files or folders) in batches, writing a JSON and a
  figure per picture into out_dir and reporting progress. Returns (written, failed):
  lists of (path, (json, png)) and (path, message naming the path)."""
  files = pictures.list_images(paths, log=lambda line: log(f'predict: {line}'))
  figures = [f for f in files if earlier_figure(f)]
  if figures:
    log(f'predict: {len(figures)} figure(s) of earlier predictions left out (a PNG beside '
        f'the JSON that names its picture): {", ".join(figures[:3])}'
        f'{", ..." if len(figures) > 3 else ""}')
    files = [f for f in files if f not in figures]
  if not files:
    raise ValueError(f'no image files in {", ".join(paths)}.')
  if options.get('keypoint_file') is not None and options.get('bbox') is None:
    options['keypoint_file'].check_names(files)
  stems = set()      # output names taken in this call
  written, failed = [], []
  for start in range(0, len(files), batch_size):
    batch = []
    for path in files[start:start + batch_size]:
      try:
        batch.append((path, pictures.read_image(path)))
      except pictures.PredictError as e:
        failed.append((path, str(e)))
        log(f'predict: {e}')
    results = predict_pictures(model, batch, **options) if batch else []
    for (path, image), result in zip(batch, results):
      if isinstance(result, pictures.PredictError):
        failed.append((path, f'{path}: {result}'))
        log(f'predict: {path}: {result}')
        continue
      result['image'] = image
      stem = unique_stem(path, stems, out_dir)
      first = os.path.splitext(os.path.basename(path))[0]
      other = (holds_another_picture(out_dir, first, path)
               if stem != first and first not in stems else None)
      if other:
        log(f'predict: {os.path.join(out_dir, first)}.json holds the outputs of {other}; '
            f'those of {path} are written as {stem}.json and {stem}.png')
      elif stem != first and first not in stems and figure_not_ours(out_dir, first, path):
        log(f'predict: {os.path.join(out_dir, first)}.png is not an output of predict (it '
            f'may be the picture itself); the outputs of {path} are written as {stem}.json '
            f'and {stem}.png')
      try:
        written.append((path, write_outputs(model, result, out_dir, stem)))
      except OSError as e:
        # A full disk or a name too long for the file system: this picture fails, the
        # others are still written.
        failed.append((path, f'{path}: cannot write its outputs to {out_dir}: {e}'))
        log(f'predict: {failed[-1][1]}')
    log(f'predict: {min(start + batch_size, len(files))}/{len(files)} pictures '
        f'({len(written)} written, {len(failed)} failed)')
  return written, failed

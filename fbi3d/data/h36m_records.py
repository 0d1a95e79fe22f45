"""The records writer the three Human3.6M readers share: their `h36m.Sequence`s (Skips
are counted) become TFRecord shards of the schema of fbi3d/data/schema.py and a manifest
like the challenge converter's, split by subject (the standard protocol: train on S1, S5,
S6, S7, S8; test on S9 and S11; see `fbi3d.data.h36m`).
"""

import os
import re
import time

import cv2
import numpy as np
import tensorflow as tf

from fbi3d import fbi as fbi_lib
from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import convert_output
from fbi3d.data import convert_plan
from fbi3d.data import h36m
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import schema


class _SplitWriter:
  """The shards of one split, written under temporary names (`temp`; write_records renames
  them to `final_names` when every sequence is done)."""

  def __init__(self, output_dir, split, shard_size, tag):
    self.output_dir, self.split, self.shard_size, self.tag = output_dir, split, shard_size, tag
    self.temp, self.counts, self.writer = [], [], None
    self.sums2d, self.sums3d = manifest_lib.PoseSums(2), manifest_lib.PoseSums(3)
    self.fbi_counts = np.zeros((skeleton.NUM_FBI_BONES, fbi_lib.NUM_CLASSES))
    self.actions = {a: 0 for a in skeleton.ACTIONS + ('unknown',)}
    self.subjects = set()

  @property
  def written(self):
    return sum(self.counts)

  def write(self, serialized, ex):
    if self.writer is None or self.counts[-1] >= self.shard_size:
      self.close()
      path = os.path.join(self.output_dir,
                          f'.{self.split.lower()}-{len(self.temp):05d}.{self.tag}.tmp')
      self.temp.append(path)
      self.counts.append(0)
      self.writer = tf.io.TFRecordWriter(path)
    self.writer.write(serialized)
    self.counts[-1] += 1
    self.sums2d.add(ex['pose2d'])
    self.sums3d.add(ex['pose3d'])
    self.fbi_counts[np.arange(skeleton.NUM_FBI_BONES), ex['fbi']] += 1
    self.actions[skeleton.ACTIONS[ex['action']]] += 1
    self.subjects.add(int(ex['subject']))

  def close(self):
    if self.writer is not None:
      self.writer.close()
      self.writer = None

  def final_names(self):
    n = len(self.temp)
    return [f'{self.split.lower()}-{k:05d}-of-{n:05d}.tfrecord' for k in range(n)]


# A shard under its temporary name: .<split>-NNNNN.<pid>-<milliseconds>.tmp
_TEMP_SHARD = re.compile(r'^\.(train|val|test)-\d{5}\.\d+-\d+\.tmp$')


def _frames(seq, every_nth):
  """Yields (frame index, picture or None) of every every_nth frame; a sequence with a
  video reads it once, in order. Raises h36m.H36MError when the video ends too soon."""
  frames = range(0, len(seq.pose3d), every_nth)
  if seq.video is None:
    for f in frames:
      yield f, None
    return
  capture = cv2.VideoCapture(seq.video)
  if not capture.isOpened():
    raise h36m.H36MError(f'{seq.video}: not a readable video')
  try:
    wanted, index = iter(frames), 0
    target = next(wanted, None)
    while target is not None:
      ok = capture.grab()
      if not ok:
        raise h36m.H36MError(f'{seq.video}: the video ends after {index} frames, but its pose '
                             f'file has {len(seq.pose3d)}', 'short_video')
      if index == target:
        ok, picture = capture.retrieve()
        if not ok:
          raise h36m.H36MError(f'{seq.video}: frame {index} cannot be decoded')
        yield index, picture
        target = next(wanted, None)
      index += 1
  finally:
    capture.release()


# Human3.6M's thighs (hip to knee) are about 450 mm long; outside this range (mm) the 3D
# of a sequence is in another unit.
THIGH_MM = (300.0, 650.0)


def _examples(seq, settings, split):
  """The serialized examples of one sequence (all or none: h36m.H36MError for a sequence that
  cannot be converted whole) and the number of frames skipped for bad values."""
  cam = seq.camera_dict()
  pose3d = np.asarray(seq.pose3d, np.float64)
  thighs = np.linalg.norm(pose3d[:, [2, 5]] - pose3d[:, [1, 4]], axis=-1)
  thigh = float(np.nanmedian(thighs)) if np.isfinite(thighs).any() else float('nan')
  if not THIGH_MM[0] <= thigh <= THIGH_MM[1]:
    raise h36m.H36MError(f'{seq.source}: the thighs are {thigh:.3g} long (median), not '
                         f'{THIGH_MM[0]:g} to {THIGH_MM[1]:g} mm: the 3D is not in the '
                         'millimetres its reader expects (a file of another unit or '
                         'release)', 'bad_units')
  if seq.pose2d is None:
    # A frame with NaN is skipped below, with the frames it spoils counted.
    if np.any(pose3d[..., 2] <= 0):
      raise h36m.H36MError(f'{seq.source}: a joint lies behind camera {seq.camera}')
    pose2d = h36m.to_image(pose3d, cam)
  else:
    pose2d = np.asarray(seq.pose2d, np.float64)
    if len(pose2d) < len(pose3d):
      raise h36m.H36MError(f'{seq.source}: {len(pose2d)} frames of 2D for {len(pose3d)} of 3D',
                           'short_2d')
    pose2d = pose2d[:len(pose3d)]
  crop_size, action = settings['crop_size'], skeleton.action_index(seq.action)
  out, bad = [], 0
  for frame, picture in _frames(seq, settings['every_nth']):
    p2, p3 = pose2d[frame], pose3d[frame]
    if not (np.all(np.isfinite(p2)) and np.all(np.isfinite(p3))):
      bad += 1
      continue
    rel = geometry.root_relative(p3)
    try:
      labels = fbi_lib.fbi_labels(rel, settings['fbi_threshold_deg'])
    except ValueError:
      bad += 1
      continue
    box = geometry.square_box(p2, settings['margin'])
    jpeg = b''
    if picture is not None:
      crop = cv2.warpAffine(picture, geometry.crop_affine(box, crop_size),
                            (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
      ok, data = cv2.imencode('.jpg', crop, [cv2.IMWRITE_JPEG_QUALITY,
                                             settings['jpeg_quality']])
      if not ok:
        raise h36m.H36MError(f'{seq.video}: frame {frame}: JPEG encoding failed')
      jpeg = data.tobytes()
    ex = dict(image_jpeg=jpeg, image_size=crop_size if picture is not None else 0,
              pose2d=geometry.image_to_crop(p2, box, crop_size).astype(np.float32),
              pose3d=rel.astype(np.float32), fbi=np.asarray(labels, np.int64),
              action=action, subject=seq.subject,
              source_id=f'S{seq.subject}/{seq.take}.{seq.camera}:{frame:06d}', split=split,
              crop_box=box.astype(np.float32), intrinsics=cam['intrinsics'].astype(np.float32))
    out.append((schema.serialize_example(**ex), ex))
  return out, bad


def write_records(items, output_dir, *, log=print, **settings):
  """Writes the Sequences of `items` (Skips are counted) as TFRecord shards and
  manifest.json into output_dir, split by subject; returns the manifest.

  A sequence is converted whole or not at all; a bad one is skipped and counted by kind
  (h36m.H36MError when `strict`). Shards are written under temporary names and renamed when
  every sequence is done, then the manifest is replaced: a failed conversion leaves the
  previous one in place. The folder is locked while it is written, as the challenge
  converter locks its own (convert_output.Lock): a second conversion into it is refused
  (ValueError), since each would remove the other's shards. `settings`: those of
  `_write_records`.
  """
  parts = os.path.join(output_dir, convert_plan.PARTS_DIR)
  made = not os.path.isdir(parts)
  os.makedirs(parts, exist_ok=True)
  try:
    lock = convert_output.Lock(output_dir, log)
  except convert_plan.ConversionError as e:
    raise ValueError(str(e)) from None
  try:
    return _write_records(items, output_dir, log=log, **settings)
  finally:
    lock.release()
    if made and not os.listdir(parts):
      os.rmdir(parts)      # the folder as it was, but for the conversion


def _write_records(items, output_dir, *, source, input_dir, every_nth=1, crop_size=256,
                   margin=0.2, jpeg_quality=90, shard_size=5000, pose2d_source='gt',
                   train_subjects=h36m.TRAIN_SUBJECTS, val_subjects=(),
                   test_subjects=h36m.TEST_SUBJECTS,
                   fbi_threshold_deg=fbi_lib.DEFAULT_THRESHOLD_DEG,
                   strict=False, overwrite=False, log=print):
  """write_records, in the locked folder."""
  if every_nth < 1 or crop_size < 16 or shard_size < 1 or not 0 <= margin < 2:
    raise ValueError(f'every_nth, crop_size and shard_size must be positive, margin in '
                     f'[0, 2) (got {every_nth}, {crop_size}, {shard_size}, {margin}).')
  if not 0 <= fbi_threshold_deg < 90:
    raise ValueError(f'fbi_threshold_deg must be in [0, 90), got {fbi_threshold_deg}.')
  h36m.check_subjects(train_subjects, val_subjects, test_subjects)
  # Converting again replaces the folder's conversion: only one of the same source and
  # input folder is replaced unasked (a mistyped --output_dir must not lose another).
  path = manifest_lib.path_in(output_dir)
  if os.path.exists(path) and not overwrite:
    before = (manifest_lib.json_field(path, 'source'), manifest_lib.json_field(path,
                                                                              'input_dir'))
    if before != (f'h36m-{source}', os.path.abspath(input_dir)):
      raise ValueError(f'{output_dir} holds another conversion (source {before[0]}, from '
                       f'{before[1]}), not one of h36m-{source} from '
                       f'{os.path.abspath(input_dir)}: use a new --output_dir, or pass '
                       '--overwrite to replace it.')
  os.makedirs(output_dir, exist_ok=True)
  settings = dict(every_nth=int(every_nth), crop_size=int(crop_size), margin=float(margin),
                  jpeg_quality=int(jpeg_quality), fbi_threshold_deg=float(fbi_threshold_deg))
  tag = f'{os.getpid()}-{int(time.time() * 1000)}'
  # Shards a killed conversion left under temporary names (no manifest lists them).
  for name in os.listdir(output_dir):
    if _TEMP_SHARD.match(name):
      os.remove(os.path.join(output_dir, name))
  writers, sequences, skipped = {}, [], []
  with_images = without_images = 0
  start = time.time()

  def skip(kind, reason):
    if strict:
      raise h36m.H36MError(reason)
    skipped.append(dict(kind=kind, reason=reason))
    log(f'skipped ({kind}): {reason}')

  try:
    for item in items:
      if isinstance(item, h36m.Skip):
        skip(item.kind, item.reason)
        continue
      split = h36m.split_of(item.subject, train_subjects, val_subjects, test_subjects)
      if split is None:
        continue
      try:
        examples, bad = _examples(item, settings, split)
      except h36m.H36MError as e:
        skip(e.kind, str(e))
        continue
      if bad:
        skip('bad_frame', f'{item.source}: {bad} frame(s) with NaN or a degenerate pose')
      writer = writers.setdefault(split, _SplitWriter(output_dir, split, shard_size, tag))
      for serialized, ex in examples:
        writer.write(serialized, ex)
      if item.video is not None:
        with_images += len(examples)
      else:
        without_images += len(examples)
      sequences.append(dict(subject=item.subject, take=item.take, action=item.action,
                            camera=item.camera, frames=int(len(item.pose3d)),
                            examples=len(examples), split=split.lower(), source=item.source))
      log(f'S{item.subject} {item.take}.{item.camera}: {len(examples)} examples '
          f'({sum(w.written for w in writers.values())} in all, '
          f'{time.time() - start:.0f} s)')
    for w in writers.values():
      w.close()
    if not writers:
      raise h36m.H36MError(f'{input_dir}: nothing converted ({len(skipped)} item(s) skipped'
                           + (f'; first: {skipped[0]["reason"]}' if skipped else '') + ')')
    if with_images and without_images:
      raise h36m.H36MError(f'{input_dir}: {with_images} examples have pictures and '
                           f'{without_images} none; convert with videos for every sequence '
                           'or for none (--images)')
  except BaseException:
    for w in writers.values():
      w.close()
      for path in w.temp:
        if os.path.exists(path):
          os.remove(path)
    raise
  splits, moves = {}, []
  for split in ('Train', 'Val', 'Test'):
    w = writers.get(split)
    if w is None:
      continue
    names = w.final_names()
    moves += list(zip(w.temp, names))
    n = w.written
    splits[split.lower()] = dict(
        shards=names, num_examples=n, shard_examples=list(w.counts),
        # A reader's skips are not of one split: `skipped` and `skipped_by_reason` count them.
        num_skipped=None,
        has_pose3d=True, crop_modes={'joints2d': n, 'box': 0, 'whole_image': 0},
        action_histogram=w.actions, fbi_class_balance=(w.fbi_counts / n).tolist(),
        subjects=sorted(w.subjects))
  train = writers.get('Train') or _SplitWriter(output_dir, 'Train', shard_size, tag)
  norm = manifest_lib.normalisation(train.written, train.sums2d, train.sums3d)
  notes = [f'Human3.6M from {source}; 2D: {pose2d_source}; every {every_nth}. frame']
  if 'Train' not in writers:
    notes.append('no train split: normalisation statistics are empty')
  lifting_only = not with_images
  if lifting_only:
    notes.append('lifting-only records: no pictures (image/size 0)')
  # A protocol subject the input lacks leaves its split short of the protocol.
  for split, wanted in (('Train', train_subjects), ('Val', val_subjects),
                        ('Test', test_subjects)):
    found = writers[split].subjects if split in writers else set()
    missing = sorted(int(s) for s in wanted if int(s) not in found)
    if missing:
      notes.append(f'{split.lower()}: subject(s) {", ".join(f"S{s}" for s in missing)} of '
                   'the protocol have no converted sequence: the split is not the '
                   "protocol's")
      log(f'warning: {notes[-1]}')
  by_kind = {}
  for s in skipped:
    by_kind[s['kind']] = by_kind.get(s['kind'], 0) + 1
  manifest = dict(
      schema_version=schema.SCHEMA_VERSION, crop_size=int(crop_size), margin=float(margin),
      fbi_threshold_deg=float(fbi_threshold_deg),
      jpeg_quality=None if lifting_only else int(jpeg_quality),
      input_dir=os.path.abspath(input_dir), source=f'h36m-{source}',
      lifting_only=lifting_only,
      protocol=dict(train_subjects=sorted(train_subjects), val_subjects=sorted(val_subjects),
                    test_subjects=sorted(test_subjects), every_nth=int(every_nth),
                    frame_rate=h36m.FRAME_RATE / every_nth, pose2d=pose2d_source),
      sequences=sequences, notes=notes, splits=splits, skipped=skipped,
      skipped_by_reason=by_kind, normalisation=norm)
  manifest_lib.publish_shards(output_dir, moves, manifest)
  counts = ', '.join(f'{k} {v["num_examples"]}' for k, v in splits.items())
  log(f'{sum(s["num_examples"] for s in splits.values())} examples ({counts}), '
      f'{len(skipped)} skipped, {time.time() - start:.1f} s -> {output_dir}')
  return manifest

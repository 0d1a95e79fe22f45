"""Converts a folder of motion capture files into per-clip arrays and, optionally,
lifting-only TFRecords with the image schema and a manifest (`tools/convert_mocap.py`).

Every kept frame becomes one example: the pose turned at random about the vertical,
placed on the ground (`body.place_on_ground`) and seen through a camera of
`cameras.sample_camera`; the random numbers of a frame depend only on the seed, the
clip's name and the frame number.
"""

import os
import time
import zlib

import numpy as np
import tensorflow as tf

from fbi3d import fbi
from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import cameras
from fbi3d.data import joint_maps
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import mocap
from fbi3d.data import motion
from fbi3d.data import pose_folder
from fbi3d.data import schema

# Shards are written under this suffix and take their names only when every split is
# whole, just before the manifest that lists them: a run that stops part-way leaves the
# earlier conversion as it was.
TMP_SUFFIX = '.partial'


def _stable_id(text):
  return zlib.crc32(text.encode('utf-8'))


def project_example(pose_world, rng, image_size=1000, crop_size=256, margin=0.2,
                    fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG):
  """A lifting-only example of a world pose [17, 3]: turned at random about the vertical,
  placed on the ground, seen through a camera from `cameras.sample_camera` for a
  nominal image of `image_size` pixels. Returns dict(pose2d [17, 2] crop px, pose3d
  [17, 3] root-relative camera mm, fbi [14], crop_box [3], intrinsics [4])."""
  world = body.place_on_ground(pose_world, rng.uniform(0.0, 2.0 * np.pi))
  for _ in range(50):
    camera = cameras.sample_camera(rng, image_size)
    cam = cameras.world_to_camera(world, camera)
    if np.all(cam[:, 2] > 100.0):
      break
  else:
    raise ValueError('project_example: no camera sees every joint in front of it.')
  joints2d = geometry.project(cam, camera['intrinsics'])
  box = geometry.square_box(joints2d, margin)
  pose3d = geometry.root_relative(cam)
  return dict(pose2d=geometry.image_to_crop(joints2d, box, crop_size), pose3d=pose3d,
              fbi=fbi.fbi_labels(pose3d, fbi_threshold_deg), crop_box=box,
              intrinsics=np.asarray(camera['intrinsics'], np.float64))


def _remove_partial_shards(output_dir):
  """Removes shards under temporary names: those of a run that stopped (a killed run
  leaves them), which no manifest lists."""
  for name in os.listdir(output_dir):
    if (name.endswith(TMP_SUFFIX)
        and manifest_lib.SHARD_NAME.match(name[:-len(TMP_SUFFIX)])):
      os.remove(os.path.join(output_dir, name))


def _write_records(output_dir, items, settings, log):
  """Writes TFRecord shards under temporary names (shard + TMP_SUFFIX;
  manifest.publish_shards gives them their own), removing them if it stops. items:
  (split, clip name, subject, frame numbers, poses [F, 17, 3])."""
  _remove_partial_shards(output_dir)
  try:
    return _write_splits(output_dir, items, settings, log)
  except BaseException:
    _remove_partial_shards(output_dir)
    raise


def _write_splits(output_dir, items, settings, log):
  splits = {}
  for split in ('Train', 'Val'):
    chosen = [it for it in items if it[0] == split]
    total = sum(len(it[3]) for it in chosen)
    if not total:
      continue
    shard_size = settings['shard_size']
    num_shards = max(1, -(-total // shard_size))
    key = split.lower()
    shards = [f'{key}-{k:05d}-of-{num_shards:05d}.tfrecord' for k in range(num_shards)]
    sums2d, sums3d = manifest_lib.PoseSums(2), manifest_lib.PoseSums(3)
    fbi_counts = np.zeros((skeleton.NUM_FBI_BONES, fbi.NUM_CLASSES))
    written, shard_index, writer = 0, -1, None
    start = time.time()
    try:
      for _, name, subject, frames, poses in chosen:
        for frame, pose in zip(frames, poses):
          if written // shard_size != shard_index:
            if writer is not None:
              writer.close()
            shard_index = written // shard_size
            writer = tf.io.TFRecordWriter(
                os.path.join(output_dir, shards[shard_index] + TMP_SUFFIX))
          rng = np.random.default_rng([settings['seed'], _stable_id(name), int(frame)])
          ex = project_example(pose, rng, settings['image_size'], settings['crop_size'],
                               settings['margin'], settings['fbi_threshold_deg'])
          writer.write(schema.serialize_example(
              image_jpeg=b'', image_size=0, pose2d=ex['pose2d'], pose3d=ex['pose3d'],
              fbi=ex['fbi'], action=skeleton.UNKNOWN_ACTION, subject=subject,
              source_id=f'{name}:{int(frame):06d}', split=split, crop_box=ex['crop_box'],
              intrinsics=ex['intrinsics']))
          sums2d.add(ex['pose2d'])
          sums3d.add(ex['pose3d'])
          fbi_counts[np.arange(skeleton.NUM_FBI_BONES), ex['fbi']] += 1
          written += 1
        log(f'{key}: {written}/{total} records ({time.time() - start:.1f} s)')
    finally:
      if writer is not None:
        writer.close()
    histogram = {a: 0 for a in skeleton.ACTIONS}
    histogram['unknown'] = written
    splits[key] = dict(
        shards=shards, num_examples=written, num_skipped=None, has_pose3d=True,
        crop_modes={'joints2d': written, 'box': 0, 'whole_image': 0},
        action_histogram=histogram, fbi_class_balance=(fbi_counts / written).tolist(),
        subjects=sorted({it[2] for it in chosen}), sums=(sums2d, sums3d))
  return splits


def _check_settings(unit_mm, margin, fbi_threshold_deg):
  if unit_mm is not None and not (np.isfinite(unit_mm) and unit_mm > 0):
    raise ValueError(f'unit_mm (millimetres per file unit) must be a positive number, got '
                     f'{unit_mm}; a negative unit would mirror every pose through its '
                     'origin.')
  if not (np.isfinite(margin) and 0 <= margin < geometry.MAX_MARGIN):
    raise ValueError(f'margin must be a number >= 0 and < {geometry.MAX_MARGIN:g} (a '
                     f'fraction of the box side; at {geometry.MAX_MARGIN:g} the person would '
                     f'span a fifth of the crop), got {margin}.')
  if not 0 <= fbi_threshold_deg < 90:
    raise ValueError(f'fbi_threshold_deg must be in [0, 90), got {fbi_threshold_deg}.')


def _other_conversions(output_dir, settings):
  """{file name: settings} of the clips in output_dir converted with other settings
  than `settings` (every_nth, retargeted): an earlier conversion's clips that this one
  did not replace."""
  found = {}
  for name in sorted(os.listdir(output_dir)):
    if not name.endswith('.npz') or name.endswith('.partial.npz'):
      continue
    try:
      fields = manifest_lib.read_npz(os.path.join(output_dir, name), (),
                                     pose_folder.CONVERSION_FIELDS)
    except ValueError:
      continue              # not a clip of this converter
    kind = pose_folder.conversion_settings(fields)
    if kind is not None and kind != settings:
      found[name] = kind
  return found


def convert_folder(input_dir, output_dir, *, every_nth=4, retarget_bones=False,
                   tfrecords=False, crop_size=256, image_size=1000, margin=0.2, seed=0,
                   val_subjects=(), shard_size=5000, unit_mm=None,
                   fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG, strict=False, log=print):
  """Converts every motion file under `input_dir` (see `mocap.find_motion_files`).

  Writes <output_dir>/<clip>.npz (poses [F, 17, 3] float32 world mm, z up; frame_rate;
  source; subject; joint_names; every_nth; retargeted) and, with `tfrecords`, shards of
  lifting-only examples (train, and val for `val_subjects`) plus manifest.json.
  A bad file is reported and skipped, or raises motion.MocapError when `strict`.
  Returns a summary dict (clips, skipped, frames, manifest when written).
  """
  if every_nth < 1:
    raise ValueError(f'every_nth must be >= 1, got {every_nth}.')
  if crop_size < 1 or image_size < 16 or shard_size < 1:
    raise ValueError('crop_size, image_size and shard_size must be positive '
                     f'(got {crop_size}, {image_size}, {shard_size}).')
  _check_settings(unit_mm, margin, fbi_threshold_deg)
  if not os.path.isdir(input_dir):
    raise motion.MocapError(f'{input_dir}: not a folder')
  files = mocap.find_motion_files(input_dir)
  if not files:
    raise motion.MocapError(f'{input_dir}: no .bvh or .amc files found')
  os.makedirs(output_dir, exist_ok=True)
  val_subjects = {int(s) for s in val_subjects}
  clips, skipped, items, used = [], [], [], set()
  for i, path in enumerate(files, 1):
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem
    while name in used:
      name += '_'
    # Taken whether or not the file reads, so that a clip's name never depends on which
    # files before it failed (a failing file must not hand its name, and its earlier
    # conversion, to another clip).
    used.add(name)
    try:
      if tfrecords and val_subjects and mocap.subject_of(path) < 0:
        # Records split by subject: without one a clip could not be kept out of val.
        raise motion.MocapError(
            f'{path}: its name does not start with a subject number, so its split (train '
            'or val) cannot be told; name it as CMU does (SUBJECT_CLIP.bvh or .amc, e.g. '
            '02_01.bvh)')
      clip = mocap.load_clip(path, unit_mm=unit_mm)
      poses = joint_maps.to_h36m(clip)
      bad = np.flatnonzero(~np.isfinite(poses).all(axis=(1, 2)))
      if len(bad):
        raise motion.MocapError(f'{path}: {len(bad)} frame(s) hold NaN or infinite '
                                f'coordinates, the first frame {int(bad[0])}')
      frames = np.arange(0, clip.num_frames, every_nth)
      poses = poses[frames]
      if retarget_bones:
        try:
          poses = joint_maps.retarget(poses, frame_numbers=frames)
        except ValueError as e:
          raise motion.MocapError(f'{path}: {e}') from None
    except (motion.MocapError, OSError) as e:
      if strict:
        raise
      skipped.append(dict(path=path, reason=str(e)))
      log(f'[{i}/{len(files)}] skipped: {e}')
      continue
    subject = mocap.subject_of(path)
    rate = clip.frame_rate / every_nth
    # Written whole or not at all: a stop while writing keeps the clip's earlier file.
    partial = os.path.join(output_dir, name + '.partial.npz')
    np.savez(partial, poses=poses.astype(np.float32),
             frames=frames, frame_rate=rate, source=os.path.abspath(path), subject=subject,
             joint_names=np.array(skeleton.JOINT_NAMES), every_nth=every_nth,
             retargeted=bool(retarget_bones))
    os.replace(partial, os.path.join(output_dir, name + '.npz'))
    clips.append(dict(name=name, source=os.path.abspath(path), subject=subject,
                      frames=int(len(frames)), frame_rate=rate))
    items.append(('Val' if subject in val_subjects else 'Train', name, subject, frames,
                  poses))
    log(f'[{i}/{len(files)}] {os.path.relpath(path, input_dir)}: {clip.num_frames} frames '
        f'at {clip.frame_rate:g} fps -> {len(frames)} poses')
  summary = dict(clips=clips, skipped=skipped, frames=sum(c['frames'] for c in clips))
  warnings = []
  unmatched = sorted(val_subjects - {c['subject'] for c in clips})
  if unmatched:
    warnings.append(f'val subject(s) {", ".join(map(str, unmatched))} match no clip read: '
                    'the val split lacks them')
  others = _other_conversions(output_dir, (int(every_nth), bool(retarget_bones)))
  if others:
    first = next(iter(others))
    warnings.append(
        f'{output_dir} still holds {len(others)} clip(s) of an earlier conversion with '
        f'other settings ({first}: {pose_folder.describe_settings(others[first])}; this '
        f'one: {pose_folder.describe_settings((int(every_nth), bool(retarget_bones)))}), '
        'which a pose bank read from the folder refuses to mix: remove them, or convert '
        'into an empty folder')
  if warnings:
    summary['warnings'] = warnings
    for warning in warnings:
      log(f'warning: {warning}')
  if not tfrecords:
    return summary
  if not items:
    raise motion.MocapError(f'{input_dir}: no motion file could be read; no records written')
  settings = dict(seed=int(seed), image_size=int(image_size), crop_size=int(crop_size),
                  margin=float(margin), fbi_threshold_deg=float(fbi_threshold_deg),
                  shard_size=int(shard_size))
  splits = _write_records(output_dir, items, settings, log)
  notes = ['lifting-only records from motion capture: no images (image/size 0), action -1',
           f'2D from cameras like cameras.sample_camera for a {image_size} px image']
  if 'train' not in splits:
    notes.append('no train split: normalisation statistics are empty')
  sums2d, sums3d = splits.get('train', {}).get(
      'sums', (manifest_lib.PoseSums(2), manifest_lib.PoseSums(3)))
  n = splits.get('train', {}).get('num_examples', 0)
  for split in splits.values():
    split.pop('sums')
  manifest = dict(
      schema_version=schema.SCHEMA_VERSION, crop_size=int(crop_size), margin=float(margin),
      fbi_threshold_deg=float(fbi_threshold_deg), jpeg_quality=None,
      input_dir=os.path.abspath(input_dir), source='mocap', lifting_only=True,
      nominal_image_size=int(image_size), seed=int(seed), every_nth=int(every_nth),
      retargeted=bool(retarget_bones), clips=clips, notes=notes, splits=splits,
      skipped=skipped, skipped_by_reason={'bad_file': len(skipped)} if skipped else {},
      normalisation=manifest_lib.normalisation(n, sums2d, sums3d))
  manifest_lib.publish_shards(
      output_dir, [(os.path.join(output_dir, name + TMP_SUFFIX), name)
                   for entry in splits.values() for name in entry['shards']],
      manifest, indent=2, final_newline=True)
  summary['manifest'] = manifest
  return summary

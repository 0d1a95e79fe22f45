"""The synthetic data set: people of `fbi3d.data.body` seen through cameras of
`fbi3d.data.cameras`, drawn by `fbi3d.data.render`, written in the ECCV 2018 challenge
layout (see `fbi3d.data.layout`) plus META.csv and synthetic.json.

Every image is a pure function of (seed, split, index). With `poses_from` (a folder of
motion files or of `tools/convert_mocap.py` .npz files) the people take real captured
poses instead of sampled ones (see `fbi3d.data.pose_folder`): a pose per image picked
from the seed, turned about the vertical at random and placed on the ground; their action
is -1 (unknown) and their subject the capture's subject id.
"""

import json
import os
import time

from absl import logging
import cv2
import numpy as np

from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import cameras
from fbi3d.data import layout
from fbi3d.data import manifest
from fbi3d.data import pose_folder
from fbi3d.data import render
from fbi3d.data import worker_pool

# Bumped whenever the output for given settings changes, so that old data are remade.
GENERATOR_VERSION = 1
SETTINGS_FILE = 'synthetic.json'
BORDER_FRACTION = 0.02   # body parts keep this fraction of the image side off the border

_SPLIT_NUMBERS = {name: i for i, name in enumerate(layout.SPLITS)}
# Jobs handed out per worker process ahead of the one whose records are taken next.
LOOKAHEAD_PER_WORKER = 2


def _fits(pose_cam, joints2d, intrinsics, image_size):
  """Whether every joint, widened by its body radius, lies inside the image."""
  h, w = cameras.image_hw(image_size)
  if np.any(pose_cam[:, 2] < 500.0):
    return False
  radius = np.full(skeleton.NUM_JOINTS, 75.0)
  radius[[9, 10]] = render.HEAD_RADIUS_MM + 60.0
  radius_px = intrinsics[0] * radius / pose_cam[:, 2]
  border = BORDER_FRACTION * max(h, w)
  lo = joints2d - radius_px[:, None]
  hi = joints2d + radius_px[:, None]
  return bool(np.all(lo >= border) and np.all(hi[:, 0] <= w - 1 - border)
              and np.all(hi[:, 1] <= h - 1 - border))


# ---------------------------------------------------------------------------------------

def make_example(seed, split_no, index, image_size, pose_bank=None):
  """One synthetic example, a pure function of (seed, split_no, index, image_size) and,
  when given, the `pose_bank` (see `pose_folder.load_pose_bank`) that the pose is taken from.

  Returns (image BGR uint8 [H, W, 3], dict(pose3d [17, 3] root-relative camera mm,
  pose3d_abs [17, 3] camera mm, joints2d [17, 2] image px, intrinsics [4], action int,
  subject int)).
  """
  rng = np.random.default_rng([int(seed), int(split_no), int(index)])
  if pose_bank is None:
    subject = int(rng.integers(1, body.NUM_SUBJECTS + 1))
    action = int(rng.integers(skeleton.NUM_ACTIONS))
  else:
    if not len(pose_bank.poses):
      raise ValueError('make_example: the pose bank is empty.')
    pick = int(rng.integers(len(pose_bank.poses)))
    subject = int(pose_bank.subjects[pick])
    action = skeleton.UNKNOWN_ACTION
  for _ in range(20):
    if pose_bank is None:
      lengths = body.sample_bone_lengths(rng, body.SUBJECT_SCALES[subject - 1])
      world = body.sample_pose(rng, action, lengths)
    else:
      world = pose_bank.place(pick, rng.uniform(0.0, 2.0 * np.pi))
    for attempt in range(40):
      camera = cameras.sample_camera(rng, image_size)
      if attempt >= 20:   # shrink the aim offset towards the body
        camera['rotation'] = _shrink_aim(camera, world, (40 - attempt) / 20.0)
      pose_cam = geometry.world_to_camera(world, camera['rotation'], camera['centre'])
      if np.any(pose_cam[:, 2] <= 0):
        continue
      joints2d = geometry.project(pose_cam, camera['intrinsics'])
      if _fits(pose_cam, joints2d, camera['intrinsics'], image_size):
        image = render.render(pose_cam, camera['intrinsics'], image_size, rng)
        return image, dict(
            pose3d=geometry.root_relative(pose_cam), pose3d_abs=pose_cam,
            joints2d=joints2d, intrinsics=np.asarray(camera['intrinsics'], np.float64),
            action=action, subject=subject)
  raise RuntimeError(f'make_example: no camera fits the body in a {image_size} px image.')


def _shrink_aim(camera, world, shrink):
  """Re-aims a camera at a point `shrink` of the way from the pelvis to its old aim."""
  forward = camera['rotation'][2]
  pelvis = world[skeleton.ROOT]
  distance = np.dot(pelvis - camera['centre'], forward)
  old_target = camera['centre'] + distance * forward
  target = pelvis + shrink * (old_target - pelvis)
  return geometry.look_at_rotation(camera['centre'], target)


def encode_jpeg(image, quality):
  ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise RuntimeError('encode_jpeg: OpenCV could not encode the image.')
  return buf.tobytes()


def _write_atomic(path, data):
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb') as f:
    f.write(data)
  os.replace(tmp, path)


def _write_pose_atomic(path, pose3d):
  tmp = f'{path}.tmp{os.getpid()}'
  layout.write_pose_csv(tmp, pose3d)
  os.replace(tmp, path)


def write_range(job):
  """Writes examples [start, stop) of a split; returns their META records. The task of
  the worker processes (see `_start_pool`)."""
  out_dir, split, start, stop, seed, image_size, labels, quality, poses_from = job
  split_no = _SPLIT_NUMBERS[split]
  bank = pose_folder.load_pose_bank(poses_from) if poses_from else None
  img_dir = os.path.join(layout.split_dir(out_dir, split), layout.IMG_DIR)
  pose_dir = os.path.join(layout.split_dir(out_dir, split), layout.POSE_DIR)
  records = []
  for index in range(start, stop):
    image, ex = make_example(seed, split_no, index, image_size, bank)
    name = layout.ID_FORMAT.format(index + 1)
    _write_atomic(os.path.join(img_dir, name + '.jpg'), encode_jpeg(image, quality))
    if labels:
      _write_pose_atomic(os.path.join(pose_dir, name + '.csv'), ex['pose3d'])
    records.append(dict(id=name, action=ex['action'], subject=ex['subject'],
                        joints2d=ex['joints2d'], intrinsics=ex['intrinsics']))
  return records


def _remove_stale(directory, count, extension):
  """Removes files of an earlier, larger data set: ids above `count`, temporaries."""
  if not os.path.isdir(directory):
    return
  for name in os.listdir(directory):
    stem, ext = os.path.splitext(name)
    stale = '.tmp' in name or (ext == extension and stem.isdigit() and int(stem) > count)
    if stale:
      os.remove(os.path.join(directory, name))


def write_split(out_dir, split, count, seed, image_size, workers=1, labels=True,
                jpeg_quality=90, pool=None, poses_from=None):
  """Writes one split (IMG, POSE when `labels`, META.csv); returns the META records.

  The bytes written depend only on (seed, split, index, image_size, jpeg_quality) and
  the poses in `poses_from` when given, not on `workers`. A `pool` (of `_start_pool`) may
  be passed to reuse worker processes.
  """
  if split not in _SPLIT_NUMBERS:
    raise ValueError(f'write_split: split must be one of {layout.SPLITS}, got {split!r}.')
  if count < 0:
    raise ValueError(f'write_split: count must be >= 0, got {count}.')
  root = layout.split_dir(out_dir, split)
  img_dir = os.path.join(root, layout.IMG_DIR)
  pose_dir = os.path.join(root, layout.POSE_DIR)
  os.makedirs(img_dir, exist_ok=True)
  # An earlier data set's labels go before any of its pictures is replaced.
  if os.path.exists(os.path.join(root, layout.META_FILE)):
    os.remove(os.path.join(root, layout.META_FILE))
  _remove_stale(img_dir, count, '.jpg')
  if labels:
    os.makedirs(pose_dir, exist_ok=True)
    _remove_stale(pose_dir, count, '.csv')
  elif os.path.isdir(pose_dir):
    _remove_stale(pose_dir, -1, '.csv')
    if not os.listdir(pose_dir):
      os.rmdir(pose_dir)

  chunk = max(1, min(50, count // max(1, 8 * workers)))
  jobs = [(out_dir, split, s, min(count, s + chunk), seed, image_size, labels,
           jpeg_quality, poses_from) for s in range(0, count, chunk)]
  own_pool = None
  if pool is None and workers > 1 and len(jobs) > 1:
    own_pool = pool = _start_pool(workers)
  records = []
  start = time.time()
  next_report = max(1, count // 10)
  finished = False
  try:
    if pool is None:
      results = map(write_range, jobs)
    else:
      results = _from_workers(pool.imap(jobs, LOOKAHEAD_PER_WORKER * len(pool.workers)))
    for part in results:
      records.extend(part)
      if len(records) >= next_report or len(records) == count:
        rate = len(records) / max(time.time() - start, 1e-9)
        logging.info('%s: %d/%d images (%d%%), %.1f images/s', split, len(records), count,
                     100 * len(records) // max(count, 1), rate)
        while next_report <= len(records):
          next_report += max(1, count // 10)
    finished = True
  finally:
    if own_pool is not None:
      own_pool.close(kill=not finished)
  meta_path = os.path.join(root, layout.META_FILE)
  tmp = f'{meta_path}.tmp{os.getpid()}'
  layout.write_meta(tmp, records)
  os.replace(tmp, meta_path)
  return records


def _start_pool(workers):
  """Worker processes that run `write_range` (fbi3d.data.worker_pool)."""
  return worker_pool.WorkerPool(workers, f'{__name__}:{write_range.__name__}')


def _from_workers(results):
  """The records of `results` (WorkerPool.imap); an exception raised in a worker is
  raised again here, as it would be in this process."""
  try:
    yield from results
  except worker_pool.WorkerFailed as e:
    if e.exception is None:
      raise
    raise e.exception from e


def dataset_settings(seed, counts, image_size, test_labels, jpeg_quality, poses_from=None,
                     pose_sources=None, num_poses=None, poses_sha256=None):
  """The settings that decide a data set's bytes, as stored in synthetic.json (with
  `poses_from`, also that folder, its motion files, their number of poses and a hash of
  the poses and subjects themselves, so that clips converted again under the same names
  make a new data set)."""
  settings = dict(generator_version=GENERATOR_VERSION, seed=int(seed),
                  counts={s: int(counts[s]) for s in layout.SPLITS},
                  image_size=int(image_size), test_labels=bool(test_labels),
                  jpeg_quality=int(jpeg_quality))
  if poses_from is not None:
    settings.update(poses_from=os.path.abspath(poses_from),
                    pose_sources=[os.path.relpath(p, poses_from) for p in pose_sources],
                    num_poses=int(num_poses), poses_sha256=poses_sha256)
  return settings


def poses_sha256(bank):
  """The first 16 hex digits of the sha256 of a pose bank's poses and subjects."""
  return manifest.arrays_sha256([np.asarray(bank.poses, np.float64),
                                 np.asarray(bank.subjects, np.int64)])


def is_complete(out_dir, settings):
  """Whether `out_dir` holds a finished data set written with these settings."""
  path = os.path.join(out_dir, SETTINGS_FILE)
  try:
    with open(path) as f:
      stored = json.load(f)
  except (OSError, ValueError):
    return False
  if stored.get('settings') != settings:
    return False
  for split in layout.SPLITS:
    root = layout.split_dir(out_dir, split)
    if not os.path.isfile(os.path.join(root, layout.META_FILE)):
      return False
    img_dir = os.path.join(root, layout.IMG_DIR)
    n = len(os.listdir(img_dir)) if os.path.isdir(img_dir) else 0
    if n != settings['counts'][split]:
      return False
  return True


def write_dataset(out_dir, seed=0, counts=None, image_size=384, workers=2, test_labels=True,
                  jpeg_quality=90, poses_from=None):
  """Writes Train, Val and Test splits and synthetic.json.

  counts: {split: number of images}; defaults to 2000, 300, 300. poses_from: a folder of
  motion files or convert_mocap .npz files to take the poses from (see
  `pose_folder.load_pose_bank`); None samples them. Returns (settings, reused) where `reused` is
  True when `out_dir` already held this data set.
  """
  counts = dict(counts or {'Train': 2000, 'Val': 300, 'Test': 300})
  for split in layout.SPLITS:
    if counts.get(split, 0) < 0:
      raise ValueError(f'write_dataset: the {split} count must be >= 0, got {counts[split]}.')
    counts.setdefault(split, 0)
  if not sum(counts.values()):
    raise ValueError('write_dataset: every split count is 0, so there is nothing to write; '
                     'give at least one picture (--num_train, --num_val, --num_test).')
  if int(image_size) < 64:
    raise ValueError(f'write_dataset: image_size must be at least 64, got {image_size}.')
  if not 1 <= int(jpeg_quality) <= 100:
    raise ValueError(f'write_dataset: jpeg_quality must be in 1..100, got {jpeg_quality}.')
  if int(workers) < 1:
    raise ValueError(f'write_dataset: workers must be >= 1, got {workers}.')
  if poses_from is not None:
    bank = pose_folder.load_pose_bank(poses_from)
    settings = dataset_settings(seed, counts, image_size, test_labels, jpeg_quality,
                                poses_from, bank.sources, len(bank.poses),
                                poses_sha256(bank))
  else:
    settings = dataset_settings(seed, counts, image_size, test_labels, jpeg_quality)
  if is_complete(out_dir, settings):
    return settings, True
  settings_path = os.path.join(out_dir, SETTINGS_FILE)
  writing = os.path.join(out_dir, layout.WRITING_FILE)
  if (os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.exists(settings_path)
      and not os.path.exists(writing)):
    # Its challenge-layout files would be overwritten, and those past the new counts
    # removed.
    raise ValueError(f'{out_dir} holds files that make_synthetic did not write (it has no '
                     f'{SETTINGS_FILE}): give an empty or new --out_dir.')
  os.makedirs(out_dir, exist_ok=True)
  # Until the last split is written: the converter refuses a folder that holds it.
  with open(writing, 'w') as f:
    f.write('tools/make_synthetic.py is writing this folder\n')
  if os.path.exists(settings_path):
    os.remove(settings_path)
  pool = _start_pool(workers) if workers > 1 else None
  finished = False
  try:
    for split in layout.SPLITS:
      labels = test_labels or split != 'Test'
      write_split(out_dir, split, counts[split], seed, image_size, workers=workers,
                  labels=labels, jpeg_quality=jpeg_quality, pool=pool,
                  poses_from=poses_from)
    finished = True
  finally:
    if pool is not None:
      pool.close(kill=not finished)
  manifest.write_json_atomic(settings_path, dict(settings=settings), indent=2,
                             final_newline=True)
  os.remove(writing)
  return settings, False

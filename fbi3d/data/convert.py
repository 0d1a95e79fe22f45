"""Converts a folder in the challenge layout into sharded TFRecords and a manifest.

    <out>/manifest.json
    <out>/<split>-NNNNN-of-MMMMM.tfrecord      split lower case: train, val, test
    <out>/.parts/<shard>.json                   one sidecar per finished shard

The shard plan is deterministic: a split's ids (image and POSE file stems) are sorted
and cut into chunks of `shard_size`; shard k holds items [k*S, (k+1)*S) less the ones
skipped as bad input. Every shard is written under a temporary name and renamed when
complete; its sidecar (planned ids, written ids, skipped items, counts and running sums)
is written atomically after it. A second run over the same output keeps the shards whose
sidecar matches the new plan and converts the rest; shards of splits left out of the run
are kept when made with the same settings. The manifest is rebuilt from the sidecars at
the end.

Crop, in order of preference: a square box around the 2D joints (META.csv or a
keypoint side file), the square around a person box (box side file), the whole image.

The work per item (decoding, cropping, labels, JPEG encoding, the checks of bad input) is
done by `fbi3d.data.crop_worker`: in this process with one worker, else in worker
processes that run only that module and never load TensorFlow. This process serializes
the prepared examples and writes every shard and sidecar, in plan order, while the
workers prepare the next shards.
"""

import csv
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from multiprocessing import connection

import numpy as np
import tensorflow as tf

from fbi3d import fbi
from fbi3d import skeleton
from fbi3d.data import crop_worker
from fbi3d.data import layout
from fbi3d.data import schema

PARTS_DIR = '.parts'
MANIFEST = 'manifest.json'
TMP_SUFFIX = '.tmp'
# 2: the input fingerprint covers file content (version 1: names and sizes).
SIDECAR_VERSION = 2
HASHES = 'input_hashes.json'
LOCK = 'LOCK'
SHARD_PATTERN = re.compile(r'^(train|val|test)-(\d{5})-of-(\d{5})\.tfrecord$')
# Items a worker process prepares at a time, and the parts handed out per worker ahead
# of the one written next (this bounds the prepared crops held in memory).
PIECE_SIZE = 100
LOOKAHEAD_PER_WORKER = 3

# Kinds of bad input; every skipped item's reason starts with its kind and a colon.
MISSING_POSE = crop_worker.MISSING_POSE
MISSING_IMAGE = crop_worker.MISSING_IMAGE
CORRUPT_IMAGE = crop_worker.CORRUPT_IMAGE
BAD_POSE = crop_worker.BAD_POSE
DUPLICATE_ID = crop_worker.DUPLICATE_ID
BAD_META = crop_worker.BAD_META
NAN_2D = crop_worker.NAN_2D
BAD_SIDE_ROW = crop_worker.BAD_SIDE_ROW
DEGENERATE_POSE = crop_worker.DEGENERATE_POSE

CROP_MODES = crop_worker.CROP_MODES
KEYPOINT_COLUMNS = (['split', 'id'] + [
    f'{axis}{j}' for j in range(skeleton.NUM_JOINTS) for axis in ('x', 'y')])
BOX_COLUMNS = ['split', 'id', 'x', 'y', 'w', 'h']
ACTION_COLUMNS = ['split', 'id', 'action']


class ConversionError(Exception):
  """A fatal conversion problem; the message says what is wrong and what to do."""


def reason_kind(reason):
  """The kind of a skipped item's reason (the text before the first colon)."""
  return reason.split(':', 1)[0]


def shard_name(split, index, num_shards):
  return f'{split.lower()}-{index:05d}-of-{num_shards:05d}.tfrecord'


def _canonical_id(rid):
  rid = rid.strip()
  return layout.ID_FORMAT.format(int(rid)) if rid.isdigit() else rid


def _canonical_split(name):
  for split in layout.SPLITS:
    if split.lower() == name.strip().lower():
      return split
  return None


def _write_json_atomic(path, obj):
  tmp = path + TMP_SUFFIX
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# Side files.


def _read_side_file(path, flag, columns, parse_values):
  """Reads a CSV side file keyed by (split, id).

  Returns (values, problems, notes): values maps (split, id) -> parsed values, problems
  maps (split, id) -> reason for malformed or duplicated rows.
  """
  if not os.path.isfile(path):
    raise ConversionError(f'--{flag}: no such file: {path}')
  values, problems, seen, notes = {}, {}, set(), []
  unknown_splits = 0
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(columns):
      raise ConversionError(
          f'--{flag} {path}: header must be {",".join(columns[:4])}'
          f'{",..." if len(columns) > 4 else ""} ({len(columns)} columns); '
          f'got {",".join(header or [])[:80]!r}')
    for line_no, row in enumerate(reader, start=2):
      if not row or not ''.join(row).strip():
        continue
      split = _canonical_split(row[0])
      if split is None or len(row) < 2:
        unknown_splits += 1
        continue
      key = (split, _canonical_id(row[1]))
      if key in seen:
        problems[key] = (f'{DUPLICATE_ID}: {path} has more than one row for '
                         f'{split}/{key[1]}')
        values.pop(key, None)
        continue
      seen.add(key)
      if len(row) != len(columns):
        problems[key] = (f'{BAD_SIDE_ROW}: {path}: line {line_no}: expected '
                         f'{len(columns)} values, got {len(row)}')
        continue
      try:
        values[key] = parse_values(row[2:])
      except crop_worker.BadItem as e:
        problems[key] = f'{e.kind}: {path}: line {line_no}: {e.detail}'
  if unknown_splits:
    notes.append(f'--{flag}: {unknown_splits} rows name no split of the layout '
                 f'({", ".join(layout.SPLITS)}) and were ignored')
  return values, problems, notes


def _floats_of(values):
  try:
    return [float(v) for v in values]
  except ValueError:
    raise crop_worker.BadItem(BAD_SIDE_ROW, 'a value is not a number') from None


def _parse_keypoints(values):
  joints = _floats_of(values)
  if not all(math.isfinite(v) for v in joints):
    raise crop_worker.BadItem(NAN_2D, '2D joints contain NaN or infinity')
  return joints


def _parse_box(values):
  x, y, w, h = _floats_of(values)
  if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
    raise crop_worker.BadItem(BAD_SIDE_ROW, f'box must be finite with w, h > 0, got {values}')
  return [x, y, w, h]


def _parse_action(values):
  return values[0].strip()


class _SideFiles:
  """The optional keypoint, box and action side files."""

  def __init__(self, keypoints2d=None, boxes=None, actions=None):
    self.paths = dict(keypoints2d=keypoints2d, boxes=boxes, actions=actions)
    self.notes = []
    self.tables = {}
    specs = dict(keypoints2d=(KEYPOINT_COLUMNS, _parse_keypoints),
                 boxes=(BOX_COLUMNS, _parse_box),
                 actions=(ACTION_COLUMNS, _parse_action))
    for flag, path in self.paths.items():
      if path:
        columns, parse = specs[flag]
        values, problems, notes = _read_side_file(path, flag, columns, parse)
        self.tables[flag] = (values, problems)
        self.notes.extend(notes)
    if 'actions' in self.tables:
      values = self.tables['actions'][0]
      unknown = sorted({a for a in values.values() if skeleton.action_index(a) < 0})
      if unknown:
        self.notes.append(f'--actions: names not in skeleton.ACTIONS read as unknown (-1): '
                          f'{", ".join(unknown[:10])}')

  def get(self, flag, key):
    if flag not in self.tables:
      return None
    return self.tables[flag][0].get(key)

  def problem(self, key):
    for values_problems in self.tables.values():
      if key in values_problems[1]:
        return values_problems[1][key]
    return None

  def unmatched_notes(self, matched_keys):
    notes = []
    for flag, (values, problems) in self.tables.items():
      extra = len((set(values) | set(problems)) - matched_keys)
      if extra:
        notes.append(f'--{flag}: {extra} rows match no image of the converted splits')
    return notes


# ---------------------------------------------------------------------------------------
# Planning.


def _meta_nan_in_2d(path, ids):
  """Ids among `ids` whose META row has a non-finite 2D joint value."""
  found = set()
  with open(path, newline='') as f:
    for row in csv.reader(f):
      if row and row[0].strip() in ids and len(row) == len(layout.META_COLUMNS):
        try:
          joints = [float(v) for v in row[3:3 + 2 * skeleton.NUM_JOINTS]]
        except ValueError:
          continue
        if not all(math.isfinite(v) for v in joints):
          found.add(row[0].strip())
  return found


def _read_split_meta(split_path):
  """META.csv of a split: (records, problems with kinds); records is None when absent."""
  path = os.path.join(split_path, layout.META_FILE)
  if not os.path.isfile(path):
    return None, {}
  try:
    records, problems = layout.read_meta(path)
  except layout.LayoutError as e:
    raise ConversionError(str(e)) from e
  nan_ids = _meta_nan_in_2d(path, {k for k, v in problems.items() if 'NaN' in v})
  kinded = {}
  for rid, reason in problems.items():
    if reason.startswith(DUPLICATE_ID):
      kinded[rid] = reason
    elif rid in nan_ids:
      kinded[rid] = f'{NAN_2D}: {reason}'
    else:
      kinded[rid] = f'{BAD_META}: {reason}'
  return _canonical_keys(records, kinded, path)


def _list_stems(folder, extensions):
  """Maps id -> sorted list of the file names in `folder` with one of `extensions` whose
  stem is that id; numeric stems are one id however they are padded (9, 0009 and 00009
  are all 00009)."""
  stems = {}
  if not os.path.isdir(folder):
    return stems
  for name in os.listdir(folder):
    stem, ext = os.path.splitext(name)
    if name.startswith('.') or ext.lower() not in extensions:
      continue
    stems.setdefault(_canonical_id(stem), []).append(name)
  return {k: sorted(v) for k, v in stems.items()}


def _canonical_keys(records, kinded, path):
  """META.csv's records and problems keyed by canonical id (see _list_stems); rows
  whose ids differ only in padding are duplicates."""
  rows = {}
  for rid in list(records) + [k for k in kinded if k not in records]:
    rows.setdefault(_canonical_id(rid), []).append(rid)
  out, out_problems = {}, {}
  for key, rids in rows.items():
    if len(rids) > 1:
      out_problems[key] = (f'{DUPLICATE_ID}: {path} has more than one row for {key} '
                           f'(ids {", ".join(rids)})')
    elif rids[0] in kinded:
      out_problems[key] = kinded[rids[0]]
    else:
      out[key] = records[rids[0]]
  return out, out_problems


def _plan_split(input_dir, split, side, strict):
  """The items of one split, in id order, and notes about it."""
  split_path = layout.split_dir(input_dir, split)
  img_dir = os.path.join(split_path, layout.IMG_DIR)
  pose_dir = os.path.join(split_path, layout.POSE_DIR)
  has_pose = os.path.isdir(pose_dir)
  images = _list_stems(img_dir, layout.IMAGE_EXTENSIONS)
  poses = _list_stems(pose_dir, ('.csv',)) if has_pose else {}
  meta, meta_problems = _read_split_meta(split_path)
  ids = sorted(set(images) | set(poses))
  notes = []
  if meta is not None:
    orphans = len((set(meta) | set(meta_problems)) - set(ids))
    if orphans:
      notes.append(f'{split}: {orphans} rows of {layout.META_FILE} match no image')
  items = []
  for rid in ids:
    key = (split, _canonical_id(rid))
    image_rel = (f'{split}/{layout.IMG_DIR}/{images[rid][0]}' if rid in images else None)
    pose_rel = f'{split}/{layout.POSE_DIR}/{poses[rid][0]}' if rid in poses else None
    problem = None
    if rid in images and len(images[rid]) > 1:
      names = ', '.join(os.path.join(img_dir, n) for n in images[rid])
      problem = f'{DUPLICATE_ID}: more than one image for {rid}: {names}'
    elif len(poses.get(rid, ())) > 1:
      problem = f'{DUPLICATE_ID}: more than one POSE file for {rid}'
    elif rid not in images:
      problem = (f'{MISSING_IMAGE}: {os.path.join(input_dir, pose_rel)} has no image in '
                 f'{img_dir}')
    elif has_pose and rid not in poses:
      problem = (f'{MISSING_POSE}: {os.path.join(input_dir, image_rel)} has no '
                 f'{os.path.join(pose_dir, rid + ".csv")}')
    elif rid in meta_problems:
      problem = meta_problems[rid]
    else:
      problem = side.problem(key)
    record = (meta or {}).get(rid)
    joints2d = box = None
    action, subject, intrinsics = skeleton.UNKNOWN_ACTION, -1, None
    if record is not None:
      joints2d = np.asarray(record['joints2d'], np.float64).tolist()
      action, subject = int(record['action']), int(record['subject'])
      intrinsics = np.asarray(record['intrinsics'], np.float64).tolist()
    if joints2d is None and side.get('keypoints2d', key) is not None:
      joints2d = np.reshape(side.get('keypoints2d', key), (-1, 2)).tolist()
    if side.get('boxes', key) is not None:
      box = side.get('boxes', key)
    if action < 0 and side.get('actions', key) is not None:
      action = skeleton.action_index(side.get('actions', key))
    if problem and strict:
      raise ConversionError(f'{split}/{rid}: {problem}')
    items.append(dict(
        id=rid, key=list(key), problem=problem,
        image=os.path.join(input_dir, image_rel) if image_rel else None,
        image_rel=image_rel,
        image_bytes=_file_size(os.path.join(input_dir, image_rel)) if image_rel else -1,
        pose=os.path.join(input_dir, pose_rel) if pose_rel else None,
        pose_rel=pose_rel,
        pose_bytes=_file_size(os.path.join(input_dir, pose_rel)) if pose_rel else -1,
        joints2d=joints2d, box=box, action=action, subject=subject,
        intrinsics=intrinsics))
  if not ids:
    notes.append(f'{split}: no images found in {img_dir}')
  return items, has_pose, notes


def _file_size(path):
  try:
    return os.path.getsize(path)
  except OSError:
    return -1


class _ContentHashes:
  """Content hashes (blake2b) of input files, remembered in <output>/.parts/HASHES with
  each file's size and modification time: a file whose size and time are unchanged since
  it was hashed is not read again; any other is."""

  def __init__(self, input_dir, output_dir):
    self.input_dir = input_dir
    self.path = os.path.join(output_dir, PARTS_DIR, HASHES)
    try:
      with open(self.path) as f:
        self.known = json.load(f)
    except (OSError, ValueError):
      self.known = {}
    self.seen = {}

  def __call__(self, rel):
    if rel is None:
      return None
    path = os.path.join(self.input_dir, rel)
    try:
      st = os.stat(path)
    except OSError:
      return None
    stamp = [st.st_size, st.st_mtime_ns]
    known = self.known.get(rel)
    if known and known[:2] == stamp:
      self.seen[rel] = known
      return known[2]
    digest = hashlib.blake2b(digest_size=16)
    with open(path, 'rb') as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
    self.seen[rel] = stamp + [digest.hexdigest()]
    return self.seen[rel][2]

  def save(self):
    _write_json_atomic(self.path, self.seen)


def _input_digest(items, content=None):
  """A fingerprint of a shard's inputs: file names, sizes and side data, and with
  `content` (a _ContentHashes) the content of every image and POSE file. Without it, the
  fingerprint of sidecar version 1 (names and sizes only)."""
  fields = [[it['id'], it['image_rel'], it['image_bytes'], it['pose_rel'], it['pose_bytes'],
             it['joints2d'], it['box'], it['action'], it['subject'], it['intrinsics'],
             reason_kind(it['problem']) if it['problem'] else None]
            + ([content(it['image_rel']), content(it['pose_rel'])] if content else [])
            for it in items]
  text = json.dumps(fields, sort_keys=True, default=str)
  return hashlib.sha1(text.encode('utf-8')).hexdigest()


class _Lock:
  """<output>/.parts/LOCK while a conversion runs: another conversion into the same folder
  is refused with the process id that holds it; a lock whose process has died is taken
  over."""

  def __init__(self, output_dir, log):
    self.path = os.path.join(output_dir, PARTS_DIR, LOCK)
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        holder = self._holder()
        if holder is not None and _alive(holder):
          raise ConversionError(
              f'{output_dir} is being converted by process {holder} (lock {self.path}); '
              'wait for it to finish, or use another --output_dir. If no such conversion '
              f'runs, remove {self.path}.') from None
        log(f'taking over the lock {self.path} of process {holder}, which no longer runs')
        os.remove(self.path)
        continue
      with os.fdopen(fd, 'w') as f:
        f.write(str(os.getpid()))
      return
    raise ConversionError(f'could not take the lock {self.path}; remove it and run again.')

  def _holder(self):
    try:
      with open(self.path) as f:
        return int(f.read().strip())
    except (OSError, ValueError):
      return None

  def release(self):
    if self._holder() == os.getpid():
      os.remove(self.path)


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


# ---------------------------------------------------------------------------------------
# Writing a shard prepared by crop_worker (always in this process).


def _empty_sums(dims):
  shape = (skeleton.NUM_JOINTS, dims)
  return dict(count=0, sum=np.zeros(shape), sumsq=np.zeros(shape))


def _add_sums(sums, values):
  values = np.asarray(values, np.float64)
  sums['count'] += 1
  sums['sum'] += values
  sums['sumsq'] += values ** 2


def _sums_to_json(sums):
  return dict(count=sums['count'], sum=sums['sum'].tolist(), sumsq=sums['sumsq'].tolist())


def _write_shard(output_dir, task, pieces):
  """Writes a shard from its prepared pieces (crop_worker.prepare_items results, in plan
  order), then its sidecar; returns the sidecar.

  The shard is written under a temporary name, synced and renamed when complete. A piece
  with an error (--strict) raises ConversionError; the shard is then not written.
  """
  final = os.path.join(output_dir, task['shard'])
  tmp = final + TMP_SUFFIX
  has_pose = task['settings']['has_pose']
  written, skipped = [], []
  crop_modes = dict.fromkeys(CROP_MODES, 0)
  actions = [0] * (skeleton.NUM_ACTIONS + 1)
  fbi_counts = np.zeros((skeleton.NUM_FBI_BONES, fbi.NUM_CLASSES), np.int64)
  sums2d, sums3d = _empty_sums(2), _empty_sums(3)
  bones = np.arange(skeleton.NUM_FBI_BONES)
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for piece in pieces:
        for prepared in piece['examples']:
          example = prepared['example']
          writer.write(schema.serialize_example(**example))
          written.append(example['source_id'])
          crop_modes[prepared['crop_mode']] += 1
          actions[example['action'] if example['action'] >= 0 else -1] += 1
          if example['pose2d_valid']:
            _add_sums(sums2d, example['pose2d'])
          if has_pose:
            _add_sums(sums3d, example['pose3d'])
            fbi_counts[bones, example['fbi']] += 1
        skipped.extend(piece['skipped'])
        if piece['error'] is not None:
          raise ConversionError(piece['error'])
    with open(tmp, 'rb') as f:
      os.fsync(f.fileno())
    os.replace(tmp, final)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  histogram = dict(zip(skeleton.ACTIONS, actions[:-1]))
  histogram['unknown'] = actions[-1]
  sidecar = dict(
      version=SIDECAR_VERSION, shard=task['shard'], split=task['split'],
      index=task['index'], num_shards=task['num_shards'], has_pose3d=has_pose,
      settings=task['plan_settings'], input_digest=task['input_digest'],
      planned_ids=[it['id'] for it in task['items']], written_ids=written,
      skipped=skipped, num_written=len(written), num_skipped=len(skipped),
      crop_modes=crop_modes, action_histogram=histogram, fbi_counts=fbi_counts.tolist(),
      pose2d_sums=_sums_to_json(sums2d), pose3d_sums=_sums_to_json(sums3d))
  _write_json_atomic(_sidecar_path(output_dir, task['shard']), sidecar)
  return sidecar


# ---------------------------------------------------------------------------------------
# Worker processes.

# The folder holding the fbi3d package, put on a worker's PYTHONPATH.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(crop_worker.__file__))))


def _exit_description(code):
  if code is None:
    return 'still running'
  if code < 0:
    try:
      return f'killed by signal {signal.Signals(-code).name}'
    except ValueError:
      return f'killed by signal {-code}'
  return f'exit code {code}'


class _Worker:
  """A process running `python -m fbi3d.data.crop_worker`, with a task and a result pipe.

  The worker runs only crop_worker and what it imports: neither the caller's main module
  nor TensorFlow is loaded in it.
  """

  def __init__(self):
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, env.get('PYTHONPATH')) if p)
    try:
      self.process = subprocess.Popen(
          [sys.executable, '-m', crop_worker.__name__, str(task_r), str(result_w)],
          stdin=subprocess.DEVNULL, pass_fds=(task_r, result_w), env=env)
    except BaseException:
      os.close(task_w)
      os.close(result_r)
      raise
    finally:
      os.close(task_r)
      os.close(result_w)
    self.tasks = connection.Connection(task_w, readable=False)
    self.results = connection.Connection(result_r, writable=False)

  def _died(self, shard):
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      pass
    return ConversionError(
        f'a worker process ({_exit_description(self.process.poll())}) died while '
        f'converting {shard}; finished shards are kept, run again to resume')

  def send(self, task):
    try:
      self.tasks.send(task)
    except OSError:
      raise self._died(task['shard']) from None

  def receive(self, shard):
    """The prepared shard; ConversionError when the worker died or failed."""
    try:
      prepared = self.results.recv()
    except (EOFError, OSError):
      raise self._died(shard) from None
    if 'worker_error' in prepared:
      raise ConversionError(f'{shard}: a worker process failed:\n{prepared["worker_error"]}')
    return prepared

  def close(self, kill):
    """Ends the worker: an idle one exits when its task pipe closes; `kill` ends it now."""
    self.tasks.close()
    self.results.close()
    if kill and self.process.poll() is None:
      self.process.terminate()
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()


class _WorkerPool:
  """Worker processes that prepare shard tasks; the results come back in task order."""

  def __init__(self, num_workers):
    self.workers = []
    try:
      for _ in range(num_workers):
        self.workers.append(_Worker())
    except OSError as e:
      self.close(kill=True)
      raise ConversionError(f'cannot start a worker process ({e})') from e

  def imap(self, tasks, lookahead):
    """Yields crop_worker.prepare_items(task) for each task, in order.

    At most `lookahead` tasks (>= 1) are handed out ahead of the one yielded next, which
    bounds the prepared shards held in memory.
    """
    done = {}
    idle = list(reversed(self.workers))
    busy = {}
    sent = 0
    for index in range(len(tasks)):
      while index not in done:
        while idle and sent < len(tasks) and sent - index < lookahead:
          worker = idle.pop()
          worker.send(tasks[sent])
          busy[worker.results] = (worker, sent)
          sent += 1
        for ready in connection.wait(list(busy)):
          worker, k = busy.pop(ready)
          done[k] = worker.receive(tasks[k]['shard'])
          idle.append(worker)
      yield done.pop(index)

  def close(self, kill=False):
    for worker in self.workers:
      worker.close(kill)


# ---------------------------------------------------------------------------------------
# Output folder: cleaning, resuming, checking the plan.


def _sidecar_path(output_dir, shard):
  return os.path.join(output_dir, PARTS_DIR, shard + '.json')


def _load_sidecar(output_dir, shard):
  try:
    with open(_sidecar_path(output_dir, shard)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _remove_temporaries(output_dir):
  for folder in (output_dir, os.path.join(output_dir, PARTS_DIR)):
    for name in os.listdir(folder):
      if name.endswith(TMP_SUFFIX):
        os.remove(os.path.join(folder, name))


def _remove_outputs(output_dir, log):
  removed = 0
  for name in os.listdir(output_dir):
    if SHARD_PATTERN.match(name) or name == MANIFEST:
      os.remove(os.path.join(output_dir, name))
      removed += 1
  parts = os.path.join(output_dir, PARTS_DIR)
  for name in os.listdir(parts):
    if name.endswith('.json'):
      os.remove(os.path.join(parts, name))
  if removed:
    log(f'--overwrite: removed {removed} files of an earlier conversion in {output_dir}')


def _settings_diff(old, new):
  old = old or {}
  keys = sorted(set(old) | set(new))
  changes = [f'{k} {old.get(k)} -> {new.get(k)}' for k in keys if old.get(k) != new.get(k)]
  return 'settings changed: ' + ', '.join(changes)


def _plan_mismatch(output_dir, shard, why):
  return ConversionError(
      f'{output_dir} holds {shard} from a different conversion ({why}); use a new '
      f'--output_dir or pass --overwrite to replace it')


def _check_existing(output_dir, tasks, run_splits, settings):
  """Splits tasks into (done sidecars, tasks to run); raises on a changed plan.

  Shards of splits outside this run are kept when they were made with the same
  settings; their names are returned as kept.
  """
  planned = {t['shard']: t for t in tasks}
  existing = set()
  for name in os.listdir(output_dir):
    if SHARD_PATTERN.match(name):
      existing.add(name)
  for name in os.listdir(os.path.join(output_dir, PARTS_DIR)):
    if name.endswith('.tfrecord.json') and SHARD_PATTERN.match(name[:-len('.json')]):
      existing.add(name[:-len('.json')])
  kept = []
  for name in sorted(existing - set(planned)):
    split = SHARD_PATTERN.match(name).group(1)
    if split in run_splits:
      raise _plan_mismatch(output_dir, name, 'the new plan has other shards for '
                           f'{split}: changed input or --shard_size')
    sidecar = _load_sidecar(output_dir, name)
    if sidecar is None or not os.path.exists(os.path.join(output_dir, name)):
      raise _plan_mismatch(output_dir, name, 'it is incomplete and not in this run')
    if sidecar.get('settings') != settings:
      raise _plan_mismatch(output_dir, name, _settings_diff(sidecar.get('settings'), settings))
    kept.append(name)
  done, todo = {}, []
  for task in tasks:
    sidecar = _load_sidecar(output_dir, task['shard'])
    if sidecar is not None:
      if sidecar.get('settings') != settings:
        raise _plan_mismatch(output_dir, task['shard'],
                             _settings_diff(sidecar.get('settings'), settings))
      if sidecar.get('planned_ids') != [it['id'] for it in task['items']]:
        raise _plan_mismatch(output_dir, task['shard'], 'its planned ids differ')
      legacy = sidecar.get('version', 1) < SIDECAR_VERSION
      if sidecar.get('input_digest') != task['legacy_digest' if legacy else 'input_digest']:
        raise _plan_mismatch(output_dir, task['shard'], 'its input files changed')
      if legacy:
        task['legacy'] = True
      if os.path.exists(os.path.join(output_dir, task['shard'])):
        done[task['shard']] = sidecar
        continue
    todo.append(task)
  return done, todo, kept


# ---------------------------------------------------------------------------------------
# The manifest.


def _stats_from_sums(parts, key, dims):
  count = sum(p[key]['count'] for p in parts)
  if not count:
    return count, None, None
  total = sum(np.asarray(p[key]['sum'], np.float64) for p in parts)
  total_sq = sum(np.asarray(p[key]['sumsq'], np.float64) for p in parts)
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
  return count, mean.reshape(-1, dims).tolist(), std.reshape(-1, dims).tolist()


def _split_summary(parts):
  parts = sorted(parts, key=lambda p: p['index'])
  num = sum(p['num_written'] for p in parts)
  crop_modes = {m: sum(p['crop_modes'][m] for p in parts) for m in CROP_MODES}
  histogram = {a: sum(p['action_histogram'][a] for p in parts)
               for a in skeleton.ACTIONS + ('unknown',)}
  has_pose3d = bool(parts and parts[0]['has_pose3d'])
  balance = None
  if has_pose3d and num:
    counts = sum(np.asarray(p['fbi_counts'], np.float64) for p in parts)
    balance = (counts / num).tolist()
  return dict(shards=[p['shard'] for p in parts], num_examples=num,
              shard_examples=[p['num_written'] for p in parts],
              num_skipped=sum(p['num_skipped'] for p in parts), has_pose3d=has_pose3d,
              crop_modes=crop_modes, action_histogram=histogram,
              fbi_class_balance=balance)


def _content_notes(key, summary):
  notes = []
  num, modes = summary['num_examples'], summary['crop_modes']
  if not summary['has_pose3d']:
    notes.append(f'{key}: no POSE folder: unlabelled split (pose3d/valid 0, FBI zeros)')
  if num and modes['joints2d'] < num:
    notes.append(f'{key}: no 2D joints (META.csv or --keypoints2d) for '
                 f'{num - modes["joints2d"]} of {num} examples: pose2d/valid 0')
  if modes['whole_image']:
    notes.append(f'{key}: no 2D joints and no person box (--boxes) for '
                 f'{modes["whole_image"]} examples: the crop is the whole image')
  unknown = summary['action_histogram']['unknown']
  if num and unknown:
    notes.append(f'{key}: no action label (META.csv or --actions) for {unknown} of '
                 f'{num} examples: action -1')
  return notes


def _build_manifest(output_dir, input_dir, shard_names, settings, side_paths,
                    plan_notes):
  parts_by_split = {}
  for name in shard_names:
    sidecar = _load_sidecar(output_dir, name)
    if sidecar is None:
      raise ConversionError(f'{_sidecar_path(output_dir, name)}: missing or unreadable')
    parts_by_split.setdefault(sidecar['split'], []).append(sidecar)
  splits, skipped, notes = {}, [], list(plan_notes)
  for split in layout.SPLITS:
    if split not in parts_by_split:
      continue
    parts = parts_by_split[split]
    summary = _split_summary(parts)
    splits[split.lower()] = summary
    notes.extend(_content_notes(split.lower(), summary))
    for p in sorted(parts, key=lambda p: p['index']):
      skipped.extend(p['skipped'])
  by_reason = {}
  for s in skipped:
    kind = reason_kind(s['reason'])
    by_reason[kind] = by_reason.get(kind, 0) + 1
  train = parts_by_split.get('Train', [])
  n2d, mean2d, std2d = _stats_from_sums(train, 'pose2d_sums', 2)
  n3d, mean3d, std3d = _stats_from_sums(train, 'pose3d_sums', 3)
  normalisation = dict(
      split='train', num_examples=sum(p['num_written'] for p in train),
      num_pose2d=n2d, num_pose3d=n3d, pose2d_mean=mean2d, pose2d_std=std2d,
      pose3d_mean=mean3d, pose3d_std=std3d)
  if not train:
    notes.append('no train split: normalisation statistics are empty')
  return dict(
      schema_version=schema.SCHEMA_VERSION, crop_size=settings['crop_size'],
      margin=settings['margin'], fbi_threshold_deg=settings['fbi_threshold_deg'],
      jpeg_quality=settings['jpeg_quality'], input_dir=os.path.abspath(input_dir),
      side_files={k: (os.path.abspath(v) if v else None) for k, v in side_paths.items()},
      notes=notes, splits=splits, skipped=skipped, skipped_by_reason=by_reason,
      normalisation=normalisation)


# ---------------------------------------------------------------------------------------
# The driver.


def _resolve_splits(input_dir, splits, log):
  if isinstance(splits, str):
    splits = [s for s in splits.split(',') if s.strip()]
  present = []
  for name in splits:
    split = _canonical_split(name)
    if split is None:
      log(f'warning: {name!r} is not a split of the layout ({", ".join(layout.SPLITS)}); '
          'ignored')
      continue
    path = layout.split_dir(input_dir, split)
    if not (os.path.isdir(os.path.join(path, layout.IMG_DIR))
            or os.path.isdir(os.path.join(path, layout.POSE_DIR))):
      log(f'warning: split {split} not found in {input_dir} (no {split}/{layout.IMG_DIR}); '
          'skipped')
      continue
    if split not in present:
      present.append(split)
  if not present:
    raise ConversionError(
        f'{input_dir}: no split of the challenge layout found (looked for '
        f'{", ".join(f"{s}/{layout.IMG_DIR}" for s in splits)})')
  return present


def _check_arguments(crop_size, margin, shard_size, workers, jpeg_quality,
                     fbi_threshold_deg):
  if crop_size < 1:
    raise ConversionError(f'--crop_size must be positive, got {crop_size}')
  if not margin >= 0:
    raise ConversionError(f'--margin must be >= 0, got {margin}')
  if shard_size < 1:
    raise ConversionError(f'--shard_size must be positive, got {shard_size}')
  if workers < 1:
    raise ConversionError(f'--workers must be positive, got {workers}')
  if not 1 <= jpeg_quality <= 100:
    raise ConversionError(f'--jpeg_quality must be in 1..100, got {jpeg_quality}')
  if not 0 <= fbi_threshold_deg < 90:
    raise ConversionError(f'--fbi_threshold_deg must be in [0, 90), got {fbi_threshold_deg}')


def _pieces(task, size):
  """The task cut into consecutive parts of at most `size` items, for crop_worker."""
  return [dict(shard=task['shard'], items=task['items'][k:k + size],
               settings=task['settings'], strict=task['strict'])
          for k in range(0, len(task['items']), size)]


def _run_tasks(tasks, pool, output_dir, log, skipped_before):
  """Prepares shard tasks (in worker processes with a pool, else in this process) and
  writes each shard with its sidecar, in plan order; yields each sidecar.

  Workers prepare parts of PIECE_SIZE items, so this process writes the parts of a shard
  while they prepare the next ones. With --strict, a shard that meets a bad item raises
  ConversionError and is not written; the shards before it are.
  """
  start = time.time()
  written = 0
  skipped = skipped_before
  if pool is None:
    pieces = [_pieces(task, max(len(task['items']), 1)) for task in tasks]
    results = map(crop_worker.prepare_items, (p for ps in pieces for p in ps))
  else:
    pieces = [_pieces(task, PIECE_SIZE) for task in tasks]
    results = pool.imap([p for ps in pieces for p in ps],
                        lookahead=LOOKAHEAD_PER_WORKER * len(pool.workers))
  for task, task_pieces in zip(tasks, pieces):
    sidecar = _write_shard(output_dir, task, (next(results) for _ in task_pieces))
    written += sidecar['num_written']
    skipped += sidecar['num_skipped']
    rate = written / max(time.time() - start, 1e-9)
    log(f'{sidecar["split"].lower()} shard {sidecar["index"] + 1}/'
        f'{sidecar["num_shards"]}: {sidecar["num_written"]} written, {skipped} skipped '
        f'so far, {rate:.1f} examples/s')
    yield sidecar


def convert(input_dir, output_dir, *, splits=layout.SPLITS, crop_size=256, margin=0.2,
            shard_size=500, workers=2, strict=False, overwrite=False, keypoints2d=None,
            boxes=None, actions=None, fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG,
            jpeg_quality=90, log=print):
  """Converts a challenge-layout folder into TFRecord shards; returns the manifest.

  Raises ConversionError on fatal problems (and, with `strict`, on the first bad item).
  """
  _check_arguments(crop_size, margin, shard_size, workers, jpeg_quality, fbi_threshold_deg)
  if not os.path.isdir(input_dir):
    raise ConversionError(f'--input_dir {input_dir}: no such folder')
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise ConversionError(f'--output_dir {output_dir} is a file; give a folder (it is made '
                          'if missing).')
  run_splits = _resolve_splits(input_dir, splits, log)
  # Worker processes start while the plan is made; unused, they exit when closed.
  pool = _WorkerPool(workers) if workers > 1 else None
  finished = False
  try:
    manifest = _convert(input_dir, output_dir, pool, run_splits, crop_size, margin,
                        shard_size, strict, overwrite, keypoints2d, boxes, actions,
                        fbi_threshold_deg, jpeg_quality, log)
    finished = True
  finally:
    if pool is not None:
      pool.close(kill=not finished)
  return manifest


def _convert(input_dir, output_dir, pool, run_splits, crop_size, margin, shard_size,
             strict, overwrite, keypoints2d, boxes, actions, fbi_threshold_deg,
             jpeg_quality, log):
  """convert() after the checks of its arguments, with the worker pool (or None)."""
  side = _SideFiles(keypoints2d, boxes, actions)
  settings = dict(schema_version=schema.SCHEMA_VERSION, crop_size=int(crop_size),
                  margin=float(margin), shard_size=int(shard_size),
                  fbi_threshold_deg=float(fbi_threshold_deg),
                  jpeg_quality=int(jpeg_quality))
  os.makedirs(os.path.join(output_dir, PARTS_DIR), exist_ok=True)
  lock = _Lock(output_dir, log)
  try:
    return _convert_locked(input_dir, output_dir, pool, run_splits, shard_size, strict,
                           overwrite, side, settings, log)
  finally:
    lock.release()


def _convert_locked(input_dir, output_dir, pool, run_splits, shard_size, strict, overwrite,
                    side, settings, log):
  """_convert() while holding the output folder's lock."""
  content = _ContentHashes(input_dir, output_dir)
  tasks, plan_notes, matched = [], list(side.notes), set()
  for split in run_splits:
    items, has_pose, notes = _plan_split(input_dir, split, side, strict)
    plan_notes.extend(notes)
    matched.update(tuple(it['key']) for it in items)
    num_shards = -(-len(items) // shard_size)
    for k in range(num_shards):
      chunk = items[k * shard_size:(k + 1) * shard_size]
      tasks.append(dict(
          split=split, index=k, num_shards=num_shards,
          shard=shard_name(split, k, num_shards), items=chunk, strict=bool(strict),
          plan_settings=settings, input_digest=_input_digest(chunk, content),
          legacy_digest=_input_digest(chunk),
          settings=dict(settings, has_pose=has_pose)))
  plan_notes.extend(side.unmatched_notes(matched))

  _remove_temporaries(output_dir)
  if overwrite:
    _remove_outputs(output_dir, log)
  content.save()
  done, todo, kept = _check_existing(
      output_dir, tasks, {s.lower() for s in run_splits}, settings)
  if done:
    log(f'resuming: {len(done)} of {len(tasks)} shards already converted')
  legacy = sum(1 for t in tasks if t.get('legacy'))
  if legacy:
    log(f'{legacy} shards were converted by an earlier version that fingerprinted input '
        'names and sizes only; their content is not checked: pass --overwrite to convert '
        'them again')
  if kept:
    log(f'keeping {len(kept)} shards of splits not in this run')
  skipped_before = sum(s['num_skipped'] for s in done.values())
  try:
    for _ in _run_tasks(todo, pool, output_dir, log, skipped_before):
      pass
  finally:
    _remove_temporaries(output_dir)

  manifest = _build_manifest(output_dir, input_dir, [t['shard'] for t in tasks] + kept,
                             settings, side.paths, plan_notes)
  _write_json_atomic(os.path.join(output_dir, MANIFEST), manifest)
  return manifest

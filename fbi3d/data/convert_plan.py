"""The plan of a conversion of a challenge-layout folder (see `fbi3d.data.convert`): the
items of every split in id order, each with its files, its side-file values (2D joints,
person box, action) and the problem that makes it a bad item, if any; and the
fingerprints of a shard's inputs that tell a resumed conversion whether they changed.

Side files are CSV keyed by (split, id): --keypoints2d, --boxes, --actions.
"""

import csv
import hashlib
import json
import math
import os

import numpy as np

from fbi3d import skeleton
from fbi3d.data import crop_worker
from fbi3d.data import layout
from fbi3d.data import manifest

PARTS_DIR = '.parts'
HASHES = 'input_hashes.json'
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


def canonical_split(name):
  for split in layout.SPLITS:
    if split.lower() == name.strip().lower():
      return split
  return None


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
      split = canonical_split(row[0])
      if split is None or len(row) < 2:
        unknown_splits += 1
        continue
      key = (split, _canonical_id(row[1]))
      if key in seen:
        problems[key] = (f'{crop_worker.DUPLICATE_ID}: {path} has more than one row for '
                         f'{split}/{key[1]}')
        values.pop(key, None)
        continue
      seen.add(key)
      if len(row) != len(columns):
        problems[key] = (f'{crop_worker.BAD_SIDE_ROW}: {path}: line {line_no}: expected '
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
    raise crop_worker.BadItem(crop_worker.BAD_SIDE_ROW, 'a value is not a number') from None


def _parse_keypoints(values):
  joints = _floats_of(values)
  if not all(math.isfinite(v) for v in joints):
    raise crop_worker.BadItem(crop_worker.NAN_2D, '2D joints contain NaN or infinity')
  return joints


def _parse_box(values):
  x, y, w, h = _floats_of(values)
  if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
    raise crop_worker.BadItem(crop_worker.BAD_SIDE_ROW,
                              f'box must be finite with w, h > 0, got {values}')
  return [x, y, w, h]


def _parse_action(values):
  return values[0].strip()


class SideFiles:
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
      unknown = sorted({a for a in values.values() if a and skeleton.action_index(a) < 0})
      if unknown:
        self.notes.append(f'--actions: names not in skeleton.ACTIONS read as unknown (-1; '
                          f'--strict stops on them): {", ".join(unknown[:10])}')

  def get(self, flag, key):
    if flag not in self.tables:
      return None
    return self.tables[flag][0].get(key)

  def problem(self, key, unused=()):
    """The first bad row of `key` in the side files, leaving out those of the flags in
    `unused` (files whose value for it is not read)."""
    for flag, values_problems in self.tables.items():
      if flag not in unused and key in values_problems[1]:
        return values_problems[1][key]
    return None

  def has_row(self, flag, key):
    """Whether the side file of `flag` has a row (good or bad) for `key`."""
    return flag in self.tables and (key in self.tables[flag][0] or key in self.tables[flag][1])

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
    if reason.startswith(crop_worker.DUPLICATE_ID):
      kinded[rid] = reason
    elif rid in nan_ids:
      kinded[rid] = f'{crop_worker.NAN_2D}: {reason}'
    else:
      kinded[rid] = f'{crop_worker.BAD_META}: {reason}'
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
      out_problems[key] = (f'{crop_worker.DUPLICATE_ID}: {path} has more than one row for {key} '
                           f'(ids {", ".join(rids)})')
    elif rids[0] in kinded:
      out_problems[key] = kinded[rids[0]]
    else:
      out[key] = records[rids[0]]
  return out, out_problems


def plan_split(input_dir, split, side, strict):
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
  items, overridden = [], set()
  for rid in ids:
    key = (split, _canonical_id(rid))
    image_rel = (f'{split}/{layout.IMG_DIR}/{images[rid][0]}' if rid in images else None)
    pose_rel = f'{split}/{layout.POSE_DIR}/{poses[rid][0]}' if rid in poses else None
    problem = None
    if rid in images and len(images[rid]) > 1:
      names = ', '.join(os.path.join(img_dir, n) for n in images[rid])
      problem = f'{crop_worker.DUPLICATE_ID}: more than one image for {rid}: {names}'
    elif len(poses.get(rid, ())) > 1:
      problem = f'{crop_worker.DUPLICATE_ID}: more than one POSE file for {rid}'
    elif rid not in images:
      problem = (f'{crop_worker.MISSING_IMAGE}: {os.path.join(input_dir, pose_rel)} has no '
                 f'image in {img_dir}')
    elif has_pose and rid not in poses:
      problem = (f'{crop_worker.MISSING_POSE}: {os.path.join(input_dir, image_rel)} has no '
                 f'{os.path.join(pose_dir, rid + ".csv")}')
    elif rid in meta_problems:
      problem = meta_problems[rid]
    elif (meta is not None and rid not in meta and not side.has_row('keypoints2d', key)
          and not side.has_row('boxes', key)):
      # A lost row: the picture would be cropped whole, with no action or camera, where
      # every other example of the split has its 2D joints.
      problem = (f'{crop_worker.BAD_META}: {os.path.join(split_path, layout.META_FILE)} '
                 f'has no row for {rid} (and no --keypoints2d or --boxes row places it)')
    else:
      # A META row gives the 2D joints (and the action, when it names one): the side
      # files' rows for them are not read, so a bad one does not skip the item.
      unused = ()
      if meta is not None and rid in meta:
        unused = ('keypoints2d', 'boxes') + (
            ('actions',) if meta[rid]['action'] >= 0 else ())
        overridden.update(f for f in unused if side.has_row(f, key))
      problem = side.problem(key, unused)
    record = (meta or {}).get(rid)
    joints2d = box = placed_by = None
    action, subject, intrinsics = skeleton.UNKNOWN_ACTION, -1, None
    if record is not None:
      placed_by = os.path.join(split_path, layout.META_FILE)
      joints2d = np.asarray(record['joints2d'], np.float64).tolist()
      action, subject = int(record['action']), int(record['subject'])
      intrinsics = np.asarray(record['intrinsics'], np.float64).tolist()
    if joints2d is None and side.get('keypoints2d', key) is not None:
      placed_by = side.paths['keypoints2d']
      joints2d = np.reshape(side.get('keypoints2d', key), (-1, 2)).tolist()
    if side.get('boxes', key) is not None:
      box = side.get('boxes', key)
      placed_by = placed_by if joints2d is not None else side.paths['boxes']
    if action < 0 and side.get('actions', key):      # an empty cell: no action given
      action = skeleton.action_index(side.get('actions', key))
      if action < 0 and strict:
        raise ConversionError(
            f'{split}/{rid}: --actions {side.paths["actions"]} names the action '
            f'{side.get("actions", key)!r}, none of the 15 ({", ".join(skeleton.ACTIONS)}; '
            f'take names such as "Directions 1" or "TakingPhoto" are read too). Correct the '
            f'row, or leave out --strict to convert it as an unknown action')
    if problem and strict:
      raise ConversionError(f'{split}/{rid}: {problem}')
    items.append(dict(
        id=rid, key=list(key), problem=problem,
        image=os.path.join(input_dir, image_rel) if image_rel else None,
        image_rel=image_rel,
        image_bytes=file_size(os.path.join(input_dir, image_rel)) if image_rel else -1,
        pose=os.path.join(input_dir, pose_rel) if pose_rel else None,
        pose_rel=pose_rel,
        pose_bytes=file_size(os.path.join(input_dir, pose_rel)) if pose_rel else -1,
        joints2d=joints2d, box=box, action=action, subject=subject,
        intrinsics=intrinsics, placed_by=placed_by))
  for flag in sorted(overridden):
    notes.append(f'{split}: --{flag} rows of some images were not read: '
                 f'{layout.META_FILE} gives their {"action" if flag == "actions" else "2D joints"}')
  if not ids:
    notes.append(f'{split}: no images found in {img_dir}')
  return items, has_pose, notes


def file_size(path):
  try:
    return os.path.getsize(path)
  except OSError:
    return -1


class ContentHashes:
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
    manifest.write_json_atomic(self.path, self.seen)


def input_digest(items, content=None):
  """A fingerprint of a shard's inputs: file names, sizes and side data, and with
  `content` (a ContentHashes) the content of every image and POSE file. Without it, the
  fingerprint of sidecar version 1 (names and sizes only)."""
  fields = [[it['id'], it['image_rel'], it['image_bytes'], it['pose_rel'], it['pose_bytes'],
             it['joints2d'], it['box'], it['action'], it['subject'], it['intrinsics'],
             reason_kind(it['problem']) if it['problem'] else None]
            + ([content(it['image_rel']), content(it['pose_rel'])] if content else [])
            for it in items]
  text = json.dumps(fields, sort_keys=True, default=str)
  return hashlib.sha1(text.encode('utf-8')).hexdigest()

"""The manifest of a converted data set: its file name, the normalisation statistics
every converter puts in it, and the atomic JSON write they use (and with them every
other JSON the project writes: a phase's results, the evaluation's, the pose bank's).

Every converter (`convert`, `mocap_records`, `h36m_records`) writes <output_dir>/manifest.json
beside its TFRecord shards; `fbi3d.data.pipeline` reads it. The statistics are the mean
and standard deviation of the train split's 2D and 3D poses per joint and coordinate,
from running sums in float64 of the float32 values the records hold, added record by
record in the order they are written: the same numbers whichever converter wrote them.
"""

import hashlib
import json
import os
import re
import zipfile
import zlib

import numpy as np

from fbi3d import skeleton

MANIFEST = 'manifest.json'
TMP_SUFFIX = '.tmp'   # a file being written; a converter removes leftovers by this ending


def json_field(path, key):
  """The value of `key` in the JSON object in the file `path`; None when the file is
  missing or unreadable, is not a JSON object, or lacks the key."""
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError):
    return None
  return data.get(key) if isinstance(data, dict) else None


def arrays_sha256(arrays):
  """Content hash of arrays: the sha256 of each one's bytes in C order, one after the
  other; the first 16 hex digits."""
  digest = hashlib.sha256()
  for array in arrays:
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()[:16]


def read_npz(path, required, optional=()):
  """The arrays named in `required`, and those of `optional` present, of the .npz at
  `path`, as a dict. ValueError saying why when the file is not a readable .npz (cut
  short, a single .npy array, not numpy's at all) or lacks a required array; the caller
  names the file and what to do."""
  try:
    data = np.load(path)
    if not isinstance(data, np.lib.npyio.NpzFile):
      raise ValueError('it holds one array, not the arrays of an .npz')
    with data:
      missing = [k for k in required if k not in data]
      if missing:
        raise ValueError('no ' + ', '.join(f'"{k}"' for k in missing) + ' array')
      return {k: data[k] for k in (*required, *optional) if k in data}
  except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    # zlib.error: the compressed bytes of an array were changed (a damaged disk or copy).
    raise ValueError(f'{e} (its compressed data are damaged)' if isinstance(e, zlib.error)
                     else str(e)) from None


def write_json_atomic(path, obj, indent=1, final_newline=False, default=None):
  """Writes `obj` as JSON to `path` all at once: into a temporary file beside it
  (`<path>.<pid>.tmp`), synced, then renamed over `path`, so that a reader never sees
  half a file and a crash leaves the old one (and the temporary, which the converter
  removes by its ending). `default` is json.dump's (for values JSON does not know)."""
  tmp = f'{path}.{os.getpid()}{TMP_SUFFIX}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=indent, default=default)
    if final_newline:
      f.write('\n')
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


# A shard's name: <split>-<index>-of-<count>.tfrecord (the groups: split, index, count).
SHARD_NAME = re.compile(r'^(train|val|test)-(\d{5})-of-(\d{5})\.tfrecord$')


def publish_shards(output_dir, moves, manifest, **dump):
  """Gives newly written shards their names and writes the manifest that lists them.

  `moves` is [(temporary path, final shard name)]. The old manifest goes first, so an
  interruption in between leaves no manifest (the data set is then refused as
  unconverted) rather than one listing shards of another conversion; then the shards
  are renamed, every shard name of an earlier conversion that the new manifest does not
  list is removed (those the old manifest listed, and any `<split>-NNNNN-of-NNNNN`
  .tfrecord), and the manifest is written (write_json_atomic; `dump` are its options).
  """
  path = path_in(output_dir)
  try:
    with open(path) as f:
      old = json.load(f)
    listed = {s for split in old.get('splits', {}).values() for s in split.get('shards', [])}
  except (OSError, ValueError, AttributeError, TypeError):
    listed = set()
  if os.path.exists(path):
    os.remove(path)
  for temp, name in moves:
    os.replace(temp, os.path.join(output_dir, name))
  keep = {name for _, name in moves}
  stale = {n for n in os.listdir(output_dir) if SHARD_NAME.match(n)} | listed
  for name in sorted(stale - keep):
    if os.path.basename(name) == name and os.path.isfile(os.path.join(output_dir, name)):
      os.remove(os.path.join(output_dir, name))
  write_json_atomic(path, manifest, **dump)


def path_in(data_dir):
  """The manifest's path in a converted data set's folder."""
  return os.path.join(data_dir, MANIFEST)


def read(data_dir):
  """The manifest of a converted data set (raises OSError, ValueError as json does)."""
  with open(path_in(data_dir)) as f:
    return json.load(f)


# What a manifest says of the records themselves: its other fields name where they came
# from (input_dir, side files, the files of skipped items, notes), which moves with the
# folders, and the action labels, which the image models do not read.
CONTENT_FIELDS = ('schema_version', 'crop_size', 'margin', 'fbi_threshold_deg',
                  'jpeg_quality', 'skipped_by_reason', 'normalisation')
SPLIT_CONTENT_FIELDS = ('shards', 'num_examples', 'shard_examples', 'has_pose3d',
                        'crop_modes', 'fbi_class_balance')


def content_sha256(manifest):
  """A hash of what a manifest says of its records (CONTENT_FIELDS, and per split
  SPLIT_CONTENT_FIELDS): the same data set converted again, or moved, keeps it; another
  data set, or the same one converted with other settings, does not."""
  content = {k: manifest.get(k) for k in CONTENT_FIELDS}
  content['splits'] = {name: {k: split.get(k) for k in SPLIT_CONTENT_FIELDS}
                       for name, split in sorted(manifest.get('splits', {}).items())}
  text = json.dumps(content, sort_keys=True, separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()


class PoseSums:
  """Running count, sum and sum of squares of poses [17, dims], for `mean_std`.

  A pose is added as float32 (what a record holds) widened to float64, so the sums, and
  the statistics, are those of the records themselves.
  """

  def __init__(self, dims):
    self.dims = dims
    self.count = 0
    self.sum = np.zeros((skeleton.NUM_JOINTS, dims))
    self.sumsq = np.zeros((skeleton.NUM_JOINTS, dims))

  def add(self, pose):
    values = np.asarray(pose, np.float32).astype(np.float64)
    self.count += 1
    self.sum += values
    self.sumsq += values ** 2

  def to_json(self):
    return dict(count=self.count, sum=self.sum.tolist(), sumsq=self.sumsq.tolist())

  @classmethod
  def merged(cls, parts, dims):
    """The sums of several `to_json` dicts (a converter's shards), added in the order
    given."""
    out = cls(dims)
    for part in parts:
      out.count += part['count']
      out.sum = out.sum + np.asarray(part['sum'], np.float64)
      out.sumsq = out.sumsq + np.asarray(part['sumsq'], np.float64)
    return out


def mean_std(total, total_sq, count, dims):
  """(mean, std) as nested lists [17][dims] from the sum and the sum of squares of
  `count` poses; (None, None) when there are none. std = sqrt(max(E[x^2] - E[x]^2, 0))."""
  if not count:
    return None, None
  mean = np.asarray(total, np.float64) / count
  std = np.sqrt(np.maximum(np.asarray(total_sq, np.float64) / count - mean ** 2, 0.0))
  return mean.reshape(-1, dims).tolist(), std.reshape(-1, dims).tolist()


def normalisation(num_examples, sums2d, sums3d):
  """The manifest's `normalisation` entry (the train split's statistics) from the
  PoseSums of its 2D and 3D poses."""
  mean2d, std2d = mean_std(sums2d.sum, sums2d.sumsq, sums2d.count, 2)
  mean3d, std3d = mean_std(sums3d.sum, sums3d.sumsq, sums3d.count, 3)
  return dict(split='train', num_examples=num_examples, num_pose2d=sums2d.count,
              num_pose3d=sums3d.count, pose2d_mean=mean2d, pose2d_std=std2d,
              pose3d_mean=mean3d, pose3d_std=std3d)

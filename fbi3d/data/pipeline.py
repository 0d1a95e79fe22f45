"""tf.data input pipeline over the converted TFRecord shards.

Per example: parse and decode the JPEG crop (in parallel). Per batch: the warp,
augmentation and heatmap targets of fbi3d/data/augment.py, whose random parameters come
from stateless ops seeded by (seed, batch number), so a run is repeatable;
`deterministic=True` also fixes the order.

A batch is a dict (its keys: fbi3d/keys.py):
  image [B, S, S, 3] float32 in [0, 1]; pose2d [B, 17, 2] crop pixels at size S;
  pose3d [B, 17, 3] mm; fbi [B, 14] int32; heatmaps [B, S/stride, S/stride, 17];
  visible [B, 17] (2D known and inside the crop); pose2d_valid, pose3d_valid [B];
  action, subject [B] int32; source_id [B] string; crop_box [B, 3] (x0, y0, size of the
  crop in image pixels, at the converted crop size); intrinsics [B, 4] (zeros: unknown).

Crops found by the system itself: with `boxes` ([N, 3] square boxes (x0, y0, size) in the
converted crop's pixels, one per example in the order make_dataset yields them unshuffled,
which interleaves the shards: not read_examples' file order), each example is cropped
again to its box; pose2d and crop_box then describe that crop.
"""

import json
import os

import numpy as np
import tensorflow as tf

from fbi3d import keys
from fbi3d.data import augment as augment_lib
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import schema


class DataError(ValueError):
  """The data folder is missing, incomplete or incompatible; the message says what to do."""


def load_manifest(data_dir):
  path = manifest_lib.path_in(data_dir)
  if not os.path.exists(path):
    raise DataError(
        f'{path} not found: {data_dir!r} is not a converted data set. '
        'Run tools/convert_challenge.py first.')
  try:
    with open(path) as f:
      manifest = json.load(f)
  except ValueError as e:
    raise DataError(f'{path} is not valid JSON ({e}): it was cut short or edited; convert '
                    'the data again (tools/convert_challenge.py).') from None
  if not isinstance(manifest, dict) or not isinstance(manifest.get('splits'), dict):
    raise DataError(f'{path} is not a data set manifest (no "splits"); convert the data '
                    'again (tools/convert_challenge.py).')
  if manifest.get('schema_version') != schema.SCHEMA_VERSION:
    raise DataError(
        f'{path}: schema version {manifest.get("schema_version")} but this code reads '
        f'{schema.SCHEMA_VERSION}; convert the data again.')
  return manifest


def is_lifting_only(manifest):
  """True for records without pictures (motion capture, Human3.6M lifting archives):
  only the features and base phases train from them."""
  return bool(manifest.get('lifting_only'))


def data_is_lifting_only(data_dir):
  """is_lifting_only of the manifest in data_dir; False when there is none (the phase
  that reads it says what is wrong)."""
  try:
    return is_lifting_only(load_manifest(data_dir))
  except DataError:
    return False


def read_arrays(data_dir, split, batch_size=4096):
  """Every example of a split without its picture, as arrays over the split (schema
  keys; POSE2D [N, 17, 2], POSE3D [N, 17, 3]), in file order."""
  features = {k: v for k, v in schema.FEATURES.items() if k != schema.IMAGE}
  ds = tf.data.TFRecordDataset(shard_paths(data_dir, split)).batch(batch_size).map(
      lambda s: tf.io.parse_example(s, features))
  parts = {}
  for batch in ds:
    for k, v in batch.items():
      parts.setdefault(k, []).append(v.numpy())
  out = {k: np.concatenate(v) for k, v in parts.items()}
  out[schema.POSE2D] = out[schema.POSE2D].reshape(-1, schema.J, 2)
  out[schema.POSE3D] = out[schema.POSE3D].reshape(-1, schema.J, 3)
  return out


def shard_paths(data_dir, split, manifest=None):
  manifest = manifest or load_manifest(data_dir)
  key = split.lower()
  if key not in manifest['splits']:
    raise DataError(
        f'{data_dir}: no split {split!r}; it has {sorted(manifest["splits"])}.')
  paths = [os.path.join(data_dir, s) for s in manifest['splits'][key]['shards']]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise DataError(f'{data_dir}: {len(missing)} shard(s) listed in the manifest are '
                    f'missing, e.g. {missing[0]}; convert the data again.')
  if not paths:
    raise DataError(f'{data_dir}: split {split!r} has no examples.')
  _check_counts(data_dir, key, paths, manifest['splits'][key])
  return paths


# Records counted per shard, by (path, size, modification time): a shard is scanned once.
_COUNTED = {}


def count_records(path):
  """The number of records in a TFRecord file, from its record headers alone (a seek per
  record, no data read). DataError when the file ends inside a record."""
  st = os.stat(path)
  stamp = (path, st.st_size, st.st_mtime_ns)
  if stamp not in _COUNTED:
    count, offset = 0, 0
    with open(path, 'rb') as f:
      while offset < st.st_size:
        header = f.read(8)
        length = int.from_bytes(header, 'little') if len(header) == 8 else None
        # Each record: length (8), its CRC (4), the data, the data's CRC (4).
        if length is None or offset + 16 + length > st.st_size:
          raise DataError(f'{path} ends inside record {count + 1} (byte {offset} of '
                          f'{st.st_size}): the shard is cut short; convert the data again.')
        offset += 16 + length
        f.seek(offset)
        count += 1
    _COUNTED[stamp] = count
  return _COUNTED[stamp]


def _check_counts(data_dir, split, paths, entry):
  """Refuses shards that hold other numbers of records than the manifest says."""
  counts = [count_records(p) for p in paths]
  listed = entry.get('shard_examples')
  if listed is not None:
    wrong = [f'{os.path.basename(p)} holds {n}, the manifest says {m}'
             for p, n, m in zip(paths, counts, listed) if n != m]
  else:
    wrong = ([] if sum(counts) == entry.get('num_examples', sum(counts)) else
             [f'the shards hold {sum(counts)}, the manifest says {entry["num_examples"]}'])
  if wrong:
    raise DataError(f'{data_dir}: split {split}: ' + '; '.join(wrong) + ' records. A shard '
                    'was cut or replaced after conversion; convert the data again.')


def find_corrupt_shards(data_dir):
  """[(shard path, error)] of every shard of a data set whose records fail to read
  (checksums included): what a DataLossError while reading came from."""
  manifest = load_manifest(data_dir)
  bad = []
  for entry in manifest['splits'].values():
    for shard in entry['shards']:
      path = os.path.join(data_dir, shard)
      try:
        for _ in tf.data.TFRecordDataset(path):
          pass
      except tf.errors.OpError as e:
        bad.append((path, str(e).strip().splitlines()[0][:200]))
  return bad


def explain_data_loss(data_dir, error):
  """A DataError that names the corrupt shards behind `error` (a DataLossError)."""
  bad = find_corrupt_shards(data_dir)
  if not bad:
    return DataError(f'reading {data_dir} failed ({str(error).strip()[:200]}), but every '
                     'shard reads whole now; run again.')
  return DataError('corrupt shard(s): ' + '; '.join(f'{p} ({e})' for p, e in bad)
                   + '. Convert the data again (tools/convert_challenge.py).')


def _decode(serialized):
  ex = schema.parse_example(serialized)
  image = tf.io.decode_jpeg(ex[schema.IMAGE], channels=3)
  return {
      keys.IMAGE: image,
      keys.POSE2D: ex[schema.POSE2D],
      keys.POSE3D: ex[schema.POSE3D],
      keys.FBI: tf.cast(ex[schema.FBI], tf.int32),
      keys.POSE2D_VALID: tf.cast(ex[schema.POSE2D_VALID], tf.float32),
      keys.POSE3D_VALID: tf.cast(ex[schema.POSE3D_VALID], tf.float32),
      keys.ACTION: tf.cast(ex[schema.ACTION], tf.int32),
      keys.SUBJECT: tf.cast(ex[schema.SUBJECT], tf.int32),
      keys.SOURCE_ID: ex[schema.SOURCE_ID],
      keys.CROP_BOX: ex[schema.CROP_BOX],
      keys.INTRINSICS: ex[schema.INTRINSICS],
  }


def make_dataset(data_dir, split, batch_size, *, image_size=None, augment=False,
                 augmentation=augment_lib.Augmentation(), shuffle=None, repeat=False,
                 drop_remainder=False, heatmap_stride=keys.HEATMAP_STRIDE,
                 heatmap_sigma=1.0, seed=0, deterministic=False, threads=None, shuffle_buffer=2048, skip_batches=0,
                 boxes=None):
  """A batched tf.data.Dataset of the split (see the module docstring for its dict).

  image_size: side of the images it yields (default: the converted crop size).
  augment: random rotation, scale, flip, colour and occlusion (training).
  shuffle: shuffle examples (default: same as augment).
  deterministic: fixed order and results, for tests and evaluation.
  threads: size of the dataset's private thread pool (None: TF's default).
  skip_batches: start the stream at this batch (an endless stream with whole batches:
    repeat and drop_remainder), as if that many had been read: the same examples, order
    and augmentation follow; skipped examples are not decoded.
  boxes: [N, 3] square boxes (x0, y0, size) in the converted crop's pixels, one for each
    of the split's N examples in the order this function yields them unshuffled: every
    example is cropped again to its box (pose2d and crop_box follow the new crop). One
    pass in that fixed order: no shuffle, repeat or skip.
  """
  if skip_batches and not (repeat and drop_remainder):
    raise ValueError('skip_batches needs repeat=True and drop_remainder=True.')
  manifest = load_manifest(data_dir)
  paths = shard_paths(data_dir, split, manifest)
  shuffle = augment if shuffle is None else shuffle
  if boxes is not None:
    boxes = np.asarray(boxes, np.float32)
    count = manifest['splits'][split.lower()]['num_examples']
    if shuffle or repeat or skip_batches or boxes.shape != (count, 3):
      raise ValueError(f'boxes: need one box (x0, y0, size) per example of {split} '
                       f'({count}, 3), in one unshuffled pass (no shuffle, repeat or '
                       f'skip); got shape {boxes.shape}.')
    deterministic = True   # the boxes follow the examples' fixed order
    if not (np.all(np.isfinite(boxes)) and np.all(boxes[:, 2] > 0)):
      raise ValueError('boxes: sizes must be positive and every value finite.')
  in_size = int(manifest['crop_size'])
  out_size = int(image_size or in_size)
  if out_size % heatmap_stride:
    raise DataError(f'image size {out_size} is not a multiple of the heatmap stride '
                    f'{heatmap_stride}.')

  ds = tf.data.Dataset.from_tensor_slices(paths)
  if shuffle:
    ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
  ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(paths)),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if shuffle:
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  if skip_batches:
    ds = ds.skip(int(skip_batches) * batch_size)
  ds = ds.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
  if boxes is not None:
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(boxes))).map(
        lambda example, box: dict(example, **{keys.BOX: box}))
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.enumerate(start=int(skip_batches))
  ds = ds.map(
      lambda i, b: augment_lib.augment_batch(
          b, i, aug=augmentation, seed=seed, in_size=in_size, out_size=out_size,
          stride=heatmap_stride, sigma=heatmap_sigma, augment=augment),
      num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  if threads:
    options.threading.private_threadpool_size = int(threads)
    options.threading.max_intra_op_parallelism = 1
  return ds.with_options(options)


def read_examples(data_dir, split, count=None):
  """The first `count` examples of a split as NumPy dicts (schema keys), in file order."""
  ds = tf.data.TFRecordDataset(shard_paths(data_dir, split))
  if count is not None:
    ds = ds.take(count)
  return [schema.parse_numpy(r.numpy()) for r in ds]

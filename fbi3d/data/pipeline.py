"""tf.data input pipeline over the converted TFRecord shards.

Per example: parse and decode the JPEG crop (in parallel). Per batch: one projective
warp that rotates, scales, flips and resizes the crop (tensorflow-addons), the same
transform applied to the 2D joints and, for rotation and flip, to the 3D pose (a rotation
about the camera's optical axis; a flip mirrors x and swaps left and right joints and FBI
bones), colour jitter, synthetic occlusion with random-coloured rectangles, and 2D
Gaussian heatmap targets. Random parameters come from stateless ops seeded by
(seed, batch number), so a run is repeatable; `deterministic=True` also fixes the order.

A batch is a dict:
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

import dataclasses
import json
import math
import os

import numpy as np
import tensorflow as tf

from fbi3d import addons
from fbi3d import skeleton
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import schema

MANIFEST = manifest_lib.MANIFEST


class DataError(ValueError):
  """The data folder is missing, incomplete or incompatible; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Augmentation settings; the defaults are the training ones."""
  max_rotation_deg: float = 30.0   # uniform in [-max, max]
  max_scale: float = 0.25          # zoom uniform in [1 - max, 1 + max]
  flip_probability: float = 0.5
  brightness: float = 0.2          # additive, uniform in [-b, b]
  contrast: float = 0.3            # factor uniform in [1 - c, 1 + c]
  saturation: float = 0.3          # factor uniform in [1 - s, 1 + s]
  occlusion_probability: float = 0.3
  occlusion_size: tuple = (0.1, 0.3)  # rectangle side as a fraction of the crop
  # A flipped crop also swaps its red and blue channels: the synthetic renderer draws
  # left limbs blue and right limbs red, and a flip swaps the left and right labels.
  flip_swaps_red_blue: bool = True
  # Box jitter: the crop moves by up to this fraction of its side in x and in y (uniform),
  # so that the models meet people off the crop's centre, as in boxes found from
  # estimated 2D joints (the zoom above jitters the box size).
  max_shift: float = 0.0


NO_AUGMENTATION = Augmentation(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def load_manifest(data_dir):
  path = os.path.join(data_dir, MANIFEST)
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
      'image': image,
      'pose2d': ex[schema.POSE2D],
      'pose3d': ex[schema.POSE3D],
      'fbi': tf.cast(ex[schema.FBI], tf.int32),
      'pose2d_valid': tf.cast(ex[schema.POSE2D_VALID], tf.float32),
      'pose3d_valid': tf.cast(ex[schema.POSE3D_VALID], tf.float32),
      'action': tf.cast(ex[schema.ACTION], tf.int32),
      'subject': tf.cast(ex[schema.SUBJECT], tf.int32),
      'source_id': ex[schema.SOURCE_ID],
      'crop_box': ex[schema.CROP_BOX],
      'intrinsics': ex[schema.INTRINSICS],
  }


def geometric_matrices(angle, scale, flip, in_size, out_size, shift=None):
  """Forward (input crop -> output crop) 3x3 matrices [B, 3, 3] for per-example
  rotation `angle` (radians), zoom `scale` and `flip` (0/1), about the crop centre,
  with a resize from in_size to out_size, then a move by `shift` [B, 2] output pixels
  (None: none). Pixel centres at integer coordinates."""
  ratio = tf.cast(out_size, tf.float32) / tf.cast(in_size, tf.float32)
  c_in = (tf.cast(in_size, tf.float32) - 1.0) / 2.0
  c_out = (tf.cast(out_size, tf.float32) - 1.0) / 2.0
  cos, sin = tf.cos(angle), tf.sin(angle)
  mirror = 1.0 - 2.0 * tf.cast(flip, tf.float32)
  k = scale * ratio
  # Linear part: F * k * R, R = [[cos, -sin], [sin, cos]], F = diag(mirror, 1).
  a = mirror * k * cos
  b = -mirror * k * sin
  c = k * sin
  d = k * cos
  tx = c_out - (a * c_in + b * c_in)
  ty = c_out - (c * c_in + d * c_in)
  if shift is not None:
    tx, ty = tx + shift[:, 0], ty + shift[:, 1]
  zeros, ones = tf.zeros_like(a), tf.ones_like(a)
  return tf.stack([tf.stack([a, b, tx], -1), tf.stack([c, d, ty], -1),
                   tf.stack([zeros, zeros, ones], -1)], axis=1)


def box_matrices(boxes, out_size):
  """Forward 3x3 matrices [B, 3, 3] that crop square boxes [B, 3] (x0, y0, size, input
  pixels) out of the input and resize them to out_size, pixel centres at integer
  coordinates: u' = (u - x0 + 0.5) * out_size / size - 0.5. The box (0, 0, S) is the
  plain resize of an S-pixel input."""
  boxes = tf.cast(boxes, tf.float32)
  k = tf.cast(out_size, tf.float32) / boxes[:, 2]
  tx = (0.5 - boxes[:, 0]) * k - 0.5
  ty = (0.5 - boxes[:, 1]) * k - 0.5
  zeros, ones = tf.zeros_like(k), tf.ones_like(k)
  return tf.stack([tf.stack([k, zeros, tx], -1), tf.stack([zeros, k, ty], -1),
                   tf.stack([zeros, zeros, ones], -1)], axis=1)


def boxed_crop_box(crop_box, boxes, in_size):
  """The crop box in image pixels (x0, y0, size, at crop size in_size) of square boxes
  [B, 3] taken out of converted crops whose own crop box is crop_box [B, 3], in the
  convention of box_matrices, so that resizing a point of the new crop to in_size and
  mapping it to the image (geometry.crop_to_image) lands where it did before."""
  unit = crop_box[:, 2] / float(in_size)                  # image pixels per input pixel
  size = boxes[:, 2] * unit
  offset = 0.5 * boxes[:, 2] / float(in_size) - 0.5
  return tf.stack([crop_box[:, 0] + unit * (boxes[:, 0] + offset),
                   crop_box[:, 1] + unit * (boxes[:, 1] + offset), size], axis=-1)


def apply_to_points(matrices, points):
  """Applies [B, 3, 3] affine matrices to points [B, J, 2]."""
  return tf.einsum('bij,bkj->bki', matrices[:, :2, :2], points) + matrices[:, None, :2, 2]


def flip_joints(pose, flip):
  """Swaps left and right joints where flip is 1: [B, J, D]."""
  swapped = tf.gather(pose, skeleton.JOINT_FLIP_PERMUTATION, axis=1)
  return tf.where(tf.cast(flip, tf.bool)[:, None, None], swapped, pose)


def flip_fbi(fbi, flip):
  """FBI labels after a flip: label of bone i moves to FBI_FLIP_PERMUTATION[i]."""
  inverse = np.argsort(skeleton.FBI_FLIP_PERMUTATION)
  swapped = tf.gather(fbi, inverse, axis=1)
  return tf.where(tf.cast(flip, tf.bool)[:, None], swapped, fbi)


def swap_red_blue(images, flip):
  """Images [B, H, W, 3] (RGB) with red and blue swapped where flip is 1."""
  return tf.where(tf.cast(flip, tf.bool)[:, None, None, None], images[..., ::-1], images)


def transform_pose3d(pose3d, angle, flip):
  """Rotates root-relative 3D about the optical axis by `angle` (the image-plane rotation)
  and mirrors x where flip is 1 (then swaps left and right)."""
  cos, sin = tf.cos(angle)[:, None], tf.sin(angle)[:, None]
  x, y, z = pose3d[..., 0], pose3d[..., 1], pose3d[..., 2]
  mirror = (1.0 - 2.0 * tf.cast(flip, tf.float32))[:, None]
  xr = mirror * (cos * x - sin * y)
  yr = sin * x + cos * y
  return flip_joints(tf.stack([xr, yr, z], axis=-1), flip)


def heatmaps(points, valid, size, stride, sigma):
  """Gaussian heatmaps [B, size, size, J] of 2D points [B, J, 2] in crop pixels.

  Heatmap cell (i, j) is centred on crop pixel (j * stride + (stride - 1) / 2, ...);
  sigma in heatmap cells; joints with valid 0 get an empty map.
  """
  u = (points - (stride - 1) / 2.0) / stride                     # [B, J, 2]
  grid = tf.range(size, dtype=tf.float32)
  gx = tf.exp(-tf.square(grid[None, None, :] - u[..., 0:1]) / (2.0 * sigma ** 2))
  gy = tf.exp(-tf.square(grid[None, None, :] - u[..., 1:2]) / (2.0 * sigma ** 2))
  maps = gy[:, :, :, None] * gx[:, :, None, :]                    # [B, J, H, W]
  maps = maps * valid[:, :, None, None]
  return tf.transpose(maps, [0, 2, 3, 1])


def _augment_batch(batch, counter, *, aug, seed, in_size, out_size, stride, sigma,
                   augment):
  images = batch['image']                                   # uint8 until warped
  n = tf.shape(images)[0]
  seeds = tf.random.experimental.stateless_split(
      tf.stack([tf.cast(seed, tf.int64), counter]), num=8)

  def uniform(i, low, high):
    return tf.random.stateless_uniform([n], seeds[i], low, high)

  shift = None
  if augment:
    angle = uniform(0, -1.0, 1.0) * math.radians(aug.max_rotation_deg)
    scale = uniform(1, 1.0 - aug.max_scale, 1.0 + aug.max_scale)
    flip = tf.cast(uniform(2, 0.0, 1.0) < aug.flip_probability, tf.int32)
    if aug.max_shift > 0:
      shift = tf.random.stateless_uniform(
          [n, 2], tf.random.experimental.stateless_fold_in(seeds[1], 1),
          -aug.max_shift, aug.max_shift) * out_size
  else:
    angle = tf.zeros([n])
    scale = tf.ones([n])
    flip = tf.zeros([n], tf.int32)

  boxed = 'box' in batch
  if boxed:
    # Crop each example to its box first, then augment about the new crop's centre.
    matrices = tf.matmul(
        geometric_matrices(angle, scale, flip, out_size, out_size, shift),
        box_matrices(batch['box'], out_size))
  else:
    matrices = geometric_matrices(angle, scale, flip, in_size, out_size, shift)
  if augment or boxed or in_size != out_size:
    inverse = tf.linalg.inv(matrices)
    flat = tf.reshape(inverse, [-1, 9])[:, :8] / inverse[:, 2:3, 2]
    images = addons.projective_transform(images, flat, (out_size, out_size))
  images = tf.cast(images, tf.float32) * (1.0 / 255.0)
  if aug.flip_swaps_red_blue:
    images = swap_red_blue(images, flip)
  pose2d = flip_joints(apply_to_points(matrices, batch['pose2d']), flip)
  pose3d = transform_pose3d(batch['pose3d'], angle, flip)
  fbi = flip_fbi(batch['fbi'], flip)

  if augment:
    # Saturation s, contrast c and brightness b in one pass: with g the grey image and m
    # the image mean, c * (g + s (x - g) - m) + m + b = c s x + c (1 - s) g + (1 - c) m + b
    # (the mean is unchanged by the saturation step).
    brightness = uniform(3, -aug.brightness, aug.brightness)[:, None, None, None]
    contrast = uniform(4, 1.0 - aug.contrast, 1.0 + aug.contrast)[:, None, None, None]
    saturation = uniform(5, 1.0 - aug.saturation, 1.0 + aug.saturation)[:, None, None, None]
    grey = tf.reduce_mean(images, axis=-1, keepdims=True)
    mean = tf.reduce_mean(grey, axis=[1, 2, 3], keepdims=True)
    images = (contrast * saturation * images + contrast * (1.0 - saturation) * grey
              + ((1.0 - contrast) * mean + brightness))
    if aug.occlusion_probability > 0:
      lo, hi = aug.occlusion_size
      side = tf.random.stateless_uniform([], seeds[6], lo, hi) * out_size
      side = 2 * tf.cast(side / 2.0, tf.int32)
      centre_seed, colour_seed, apply_seed = tf.unstack(
          tf.random.experimental.stateless_split(seeds[7], num=3))
      centres = tf.random.stateless_uniform([n, 2], centre_seed, 0, out_size, tf.int32)
      masks = addons.rectangle_masks(n, out_size, out_size, tf.stack([side, side]),
                                     centres)
      colour = tf.random.stateless_uniform([n, 1, 1, 3], colour_seed)
      apply = tf.random.stateless_uniform([n], apply_seed) < aug.occlusion_probability
      masks = tf.where(apply[:, None, None, None], masks, tf.ones_like(masks))
      images = images * masks + colour * (1.0 - masks)
    images = tf.clip_by_value(images, 0.0, 1.0)

  inside = tf.reduce_all((pose2d >= 0.0) & (pose2d <= out_size - 1.0), axis=-1)
  visible = tf.cast(inside, tf.float32) * batch['pose2d_valid'][:, None]
  out = dict(batch)
  if boxed:
    out['crop_box'] = boxed_crop_box(batch['crop_box'], out.pop('box'), in_size)
  out.update(
      image=images, pose2d=pose2d, pose3d=pose3d, fbi=fbi, visible=visible,
      heatmaps=heatmaps(pose2d, visible, out_size // stride, stride, sigma))
  return out


def make_dataset(data_dir, split, batch_size, *, image_size=None, augment=False,
                 augmentation=Augmentation(), shuffle=None, repeat=False,
                 drop_remainder=False, heatmap_stride=4, heatmap_sigma=1.0, seed=0,
                 deterministic=False, threads=None, shuffle_buffer=2048, skip_batches=0,
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
        lambda example, box: dict(example, box=box))
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.enumerate(start=int(skip_batches))
  ds = ds.map(
      lambda i, b: _augment_batch(
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

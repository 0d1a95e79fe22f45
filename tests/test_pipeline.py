import json
import os

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import addons
from fbi3d import fbi
from fbi3d import skeleton
from fbi3d.data import augment
from fbi3d.data import pipeline

FLIP_ONLY = augment.Augmentation(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)


def _one_batch(data_dir, **kwargs):
  ds = pipeline.make_dataset(data_dir, 'train', 6, deterministic=True, **kwargs)
  return {k: v.numpy() for k, v in next(iter(ds)).items()}


def test_plain_batch_equals_records(tiny_dataset):
  data_dir, examples = tiny_dataset
  batch = _one_batch(data_dir)
  ex = examples['train']
  assert batch['image'].shape == (6, 32, 32, 3)
  np.testing.assert_allclose(batch['image'][2], ex[2]['decoded'] / 255.0, atol=1e-6)
  np.testing.assert_array_equal(batch['pose2d'][3], ex[3]['pose2d'])
  np.testing.assert_array_equal(batch['pose3d'][4], ex[4]['pose3d'])
  np.testing.assert_array_equal(batch['fbi'][5], ex[5]['fbi'])
  np.testing.assert_array_equal(batch['action'], [0, 1, 2, 3, 4, 5])
  assert batch['source_id'][0] == b'00001'
  assert batch['heatmaps'].shape == (6, 8, 8, 17)
  np.testing.assert_array_equal(batch['visible'], np.ones((6, 17)))


def test_flip_keeps_image_2d_3d_and_fbi_consistent(tiny_dataset):
  data_dir, examples = tiny_dataset
  batch = _one_batch(data_dir, augment=True, augmentation=FLIP_ONLY, shuffle=False)
  ex = examples['train'][1]
  perm = list(skeleton.JOINT_FLIP_PERMUTATION)
  # Mirrored, and red and blue swapped (RGB -> BGR) so that the renderer's side colours
  # follow the swapped left and right labels.
  np.testing.assert_allclose(batch['image'][1], ex['decoded'][:, ::-1, ::-1] / 255.0,
                             atol=1e-6)
  expected2d = ex['pose2d'].copy()
  expected2d[:, 0] = 31.0 - expected2d[:, 0]
  np.testing.assert_allclose(batch['pose2d'][1], expected2d[perm], atol=1e-5)
  expected3d = ex['pose3d'] * np.array([-1.0, 1.0, 1.0], np.float32)
  np.testing.assert_allclose(batch['pose3d'][1], expected3d[perm], atol=1e-4)
  np.testing.assert_array_equal(batch['fbi'][1], fbi.flip_labels(ex['fbi']))
  np.testing.assert_array_equal(batch['fbi'][1], fbi.fbi_labels(batch['pose3d'][1]))


def test_flip_without_the_colour_swap_only_mirrors(tiny_dataset):
  data_dir, examples = tiny_dataset
  aug = augment.Augmentation(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, flip_swaps_red_blue=False)
  batch = _one_batch(data_dir, augment=True, augmentation=aug, shuffle=False)
  np.testing.assert_allclose(batch['image'][1],
                             examples['train'][1]['decoded'][:, ::-1] / 255.0, atol=1e-6)


def test_swap_red_blue_only_where_flipped():
  images = tf.constant([[[[0.1, 0.2, 0.3]]], [[[0.4, 0.5, 0.6]]]])   # Shape = [2, 1, 1, 3]
  out = augment.swap_red_blue(images, tf.constant([1, 0])).numpy()
  np.testing.assert_array_equal(out[:, 0, 0], np.float32([[0.3, 0.2, 0.1], [0.4, 0.5, 0.6]]))


def test_rotation_moves_pixels_and_points_together():
  size = 33                                  # centre (16, 16)
  image = np.zeros((1, size, size, 1), np.float32)
  image[0, 16, 21, 0] = 1.0                  # pixel x = 21, y = 16
  m = augment.geometric_matrices(tf.constant([np.pi / 2]), tf.constant([1.0]),
                                  tf.constant([0]), size, size)
  point = augment.apply_to_points(m, tf.constant([[[21.0, 16.0]]]))
  np.testing.assert_allclose(point.numpy(), [[[16.0, 21.0]]], atol=1e-5)
  inverse = tf.linalg.inv(m)
  flat = tf.reshape(inverse, [-1, 9])[:, :8]
  warped = addons.projective_transform(image, flat, (size, size)).numpy()
  y, x = np.unravel_index(np.argmax(warped[0, :, :, 0]), (size, size))
  assert (x, y) == (16, 21)
  assert warped[0, y, x, 0] == pytest.approx(1.0, abs=1e-5)


def test_rotation_keeps_fbi_valid(tiny_dataset):
  data_dir, _ = tiny_dataset
  aug = augment.Augmentation(45.0, 0.2, 0.5, 0.0, 0.0, 0.0, 0.0)
  batch = _one_batch(data_dir, augment=True, augmentation=aug)
  np.testing.assert_array_equal(batch['fbi'], fbi.fbi_labels(batch['pose3d']))


def test_resize_maps_points_with_pixel_centres(tiny_dataset):
  data_dir, examples = tiny_dataset
  batch = _one_batch(data_dir, image_size=64)
  assert batch['image'].shape == (6, 64, 64, 3)
  # u' = (u + 0.5) * 2 - 0.5
  np.testing.assert_allclose(batch['pose2d'][0], examples['train'][0]['pose2d'] * 2 + 0.5,
                             atol=1e-4)


def test_heatmap_peak_is_exact():
  # stride 4: cell coordinate (x - 1.5) / 4, so (13.5, 9.5) -> column 3, row 2.
  maps = augment.heatmaps(tf.constant([[[13.5, 9.5]]]), tf.constant([[1.0]]), 8, 4, 1.0)
  maps = maps.numpy()[0, :, :, 0]
  assert maps[2, 3] == 1.0
  assert maps[2, 4] == pytest.approx(np.exp(-0.5))
  empty = augment.heatmaps(tf.constant([[[13.5, 9.5]]]), tf.constant([[0.0]]), 8, 4, 1.0)
  assert float(tf.reduce_max(empty)) == 0.0


def test_deterministic_augmentation_repeats(tiny_dataset):
  data_dir, _ = tiny_dataset
  a = _one_batch(data_dir, augment=True, shuffle=True)
  b = _one_batch(data_dir, augment=True, shuffle=True)
  for key in ('image', 'pose2d', 'pose3d', 'fbi', 'heatmaps'):
    np.testing.assert_array_equal(a[key], b[key])
  c = _one_batch(data_dir, augment=True, shuffle=True, seed=1)
  assert not np.array_equal(a['image'], c['image'])


def test_missing_or_incompatible_data_is_reported(tmp_path, tiny_dataset):
  with pytest.raises(pipeline.DataError, match='convert_challenge'):
    pipeline.make_dataset(str(tmp_path / 'nothing'), 'train', 2)
  data_dir, _ = tiny_dataset
  with pytest.raises(pipeline.DataError, match="no split 'val'"):
    pipeline.make_dataset(data_dir, 'val', 2)
  path = os.path.join(data_dir, 'manifest.json')
  manifest = json.load(open(path))
  manifest['schema_version'] = 99
  json.dump(manifest, open(path, 'w'))
  with pytest.raises(pipeline.DataError, match='schema version 99'):
    pipeline.make_dataset(data_dir, 'train', 2)


def test_skipping_batches_continues_the_stream(tiny_dataset):
  data_dir, _ = tiny_dataset
  kwargs = dict(augment=True, shuffle=True, repeat=True, drop_remainder=True,
                deterministic=True, seed=3)
  whole = list(pipeline.make_dataset(data_dir, 'train', 4, **kwargs).take(5))
  later = list(pipeline.make_dataset(data_dir, 'train', 4, skip_batches=3, **kwargs).take(2))
  for a, b in zip(whole[3:], later):
    for key in ('image', 'pose2d', 'heatmaps'):
      np.testing.assert_array_equal(a[key], b[key])
  with pytest.raises(ValueError, match='skip_batches needs repeat=True'):
    pipeline.make_dataset(data_dir, 'train', 4, skip_batches=1)


def _shard(data_dir):
  return os.path.join(data_dir, 'train-00000-of-00001.tfrecord')


def test_a_shard_cut_at_a_record_boundary_is_refused(tiny_dataset):
  data_dir, _ = tiny_dataset
  records = [r.numpy() for r in tf.data.TFRecordDataset(_shard(data_dir))]
  assert pipeline.count_records(_shard(data_dir)) == 6
  with tf.io.TFRecordWriter(_shard(data_dir)) as writer:
    for record in records[:4]:
      writer.write(record)
  with pytest.raises(pipeline.DataError, match=r'split train: the shards hold 4, the '
                     r'manifest says 6 records\. A shard was cut or replaced'):
    pipeline.make_dataset(data_dir, 'train', 2)
  # With per-shard counts (what the converter writes), the shard is named.
  path = os.path.join(data_dir, 'manifest.json')
  manifest = json.load(open(path))
  manifest['splits']['train']['shard_examples'] = [6]
  json.dump(manifest, open(path, 'w'))
  with pytest.raises(pipeline.DataError, match=r'train-00000-of-00001.tfrecord holds 4, the '
                     r'manifest says 6 records'):
    pipeline.make_dataset(data_dir, 'train', 2)
  # Cut inside a record.
  with open(_shard(data_dir), 'rb') as f:
    data = f.read()
  with open(_shard(data_dir), 'wb') as f:
    f.write(data[:-10])
  with pytest.raises(pipeline.DataError, match=r'tfrecord ends inside record 4 \(byte \d+ of '
                     r'\d+\): the shard is cut short'):
    pipeline.make_dataset(data_dir, 'train', 2)


def test_a_corrupt_shard_is_named(tiny_dataset):
  data_dir, _ = tiny_dataset
  with open(_shard(data_dir), 'rb') as f:
    data = bytearray(f.read())
  data[len(data) // 2] ^= 0xFF                 # one flipped byte inside a record's data
  with open(_shard(data_dir), 'wb') as f:
    f.write(bytes(data))
  with pytest.raises(tf.errors.DataLossError):
    for _ in pipeline.make_dataset(data_dir, 'train', 2):
      pass
  error = pipeline.explain_data_loss(data_dir, tf.errors.DataLossError(None, None, 'x'))
  assert str(error).startswith(f'corrupt shard(s): {_shard(data_dir)} (')
  assert 'Convert the data again' in str(error)


def test_a_manifest_cut_in_half_is_named(tiny_dataset):
  data_dir, _ = tiny_dataset
  path = os.path.join(data_dir, 'manifest.json')
  with open(path) as f:
    text = f.read()
  with open(path, 'w') as f:
    f.write(text[:len(text) // 2])
  with pytest.raises(pipeline.DataError, match=f'{path} is not valid JSON .*cut short'):
    pipeline.load_manifest(data_dir)


def test_box_matrices_crop_and_resize_with_pixel_centres():
  # The whole 128-px crop at 64 px is the plain resize: u' = (u + 0.5) / 2 - 0.5.
  # The box (32, 16, 64) at 64 px only moves: u' = u - 32, v' = v - 16.
  m = augment.box_matrices(tf.constant([[0.0, 0.0, 128.0], [32.0, 16.0, 64.0]]), 64)
  points = augment.apply_to_points(m, tf.constant([[[10.0, 20.0]], [[40.0, 30.0]]]))
  np.testing.assert_allclose(points.numpy(), [[[4.75, 9.75]], [[8.0, 14.0]]], atol=1e-6)


def test_boxed_crop_box_maps_back_to_the_same_image_pixels():
  # Converted crop: 128 px covering (100, 50)-(356, 306) of the image, 2 image px per px.
  # Box (32, 16, 64): 128 image px; x0 = 100 + 2 * (32 - 0.5 + 0.5 * 64 / 128) = 163.5.
  crop_box = augment.boxed_crop_box(tf.constant([[100.0, 50.0, 256.0]]),
                                     tf.constant([[32.0, 16.0, 64.0]]), 128).numpy()
  np.testing.assert_allclose(crop_box, [[163.5, 81.5, 128.0]])
  # Converted-crop point (40, 30) is image (180, 110); in the new 64-px crop it is (8, 14),
  # which resized to 128 px is (16.5, 28.5), and 163.5 + 16.5 = 180, 81.5 + 28.5 = 110.
  from fbi3d import geometry  # pylint: disable=import-outside-toplevel
  back = geometry.crop_to_image(geometry.resize_points([[8.0, 14.0]], 64, 128), crop_box[0],
                                128)
  np.testing.assert_allclose(back, [[180.0, 110.0]])


def test_boxes_crop_each_example_again(tiny_dataset):
  data_dir, examples = tiny_dataset
  whole = np.tile(np.float32([0.0, 0.0, 32.0]), (6, 1))
  plain = _one_batch(data_dir, image_size=16)
  boxed = _one_batch(data_dir, image_size=16, boxes=whole)
  for key in ('image', 'pose2d', 'crop_box', 'heatmaps'):
    np.testing.assert_array_equal(boxed[key], plain[key])
  # The centre half of each crop at its own resolution: pixels and points move by 8.
  centre = whole.copy()
  centre[:, :] = [8.0, 8.0, 16.0]
  centre[2] = [4.0, 12.0, 16.0]
  batch = _one_batch(data_dir, image_size=16, boxes=centre)
  ex = examples['train']
  np.testing.assert_allclose(batch['image'][0], ex[0]['decoded'][8:24, 8:24] / 255.0,
                             atol=1e-6)
  np.testing.assert_allclose(batch['image'][2], ex[2]['decoded'][12:28, 4:20] / 255.0,
                             atol=1e-6)
  np.testing.assert_allclose(batch['pose2d'][2], ex[2]['pose2d'] - [4.0, 12.0], atol=1e-5)
  # crop_box of example 2: (20, 5, 64), 2 image px per px -> x0 = 20 + 2 * (4 - 0.25).
  np.testing.assert_allclose(batch['crop_box'][2], [27.5, 28.5, 32.0])
  np.testing.assert_array_equal(batch['pose3d'], plain['pose3d'])


def test_boxes_must_fit_the_split(tiny_dataset):
  data_dir, _ = tiny_dataset
  with pytest.raises(ValueError, match=r'one box .* per example of train \(6, 3\).*\(5, 3\)'):
    pipeline.make_dataset(data_dir, 'train', 2, boxes=np.ones((5, 3)))
  with pytest.raises(ValueError, match='no shuffle, repeat or skip'):
    pipeline.make_dataset(data_dir, 'train', 2, boxes=np.ones((6, 3)), shuffle=True)
  with pytest.raises(ValueError, match='sizes must be positive'):
    pipeline.make_dataset(data_dir, 'train', 2, boxes=np.zeros((6, 3)))


def test_box_shift_moves_pixels_and_points_together(tiny_dataset):
  data_dir, _ = tiny_dataset
  shift_only = augment.Augmentation(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, max_shift=0.25)
  plain = _one_batch(data_dir)
  batch = _one_batch(data_dir, augment=True, augmentation=shift_only, shuffle=False)
  moved = batch['pose2d'] - plain['pose2d']                # the same move for every joint
  np.testing.assert_allclose(moved, np.repeat(moved[:, :1], 17, axis=1), atol=1e-4)
  assert np.all(np.abs(moved) <= 8.0) and np.abs(moved).max() > 1.0
  # The image moved by exactly the points' move: warping the plain crop by it gives the
  # augmented crop (up to the uint8 rounding of the augmented warp).
  m = augment.geometric_matrices(tf.zeros([6]), tf.ones([6]), tf.zeros([6], tf.int32), 32,
                                  32, tf.constant(moved[:, 0]))
  flat = tf.reshape(tf.linalg.inv(m), [-1, 9])[:, :8]
  expected = addons.projective_transform(tf.constant(plain['image']), flat, (32, 32))
  np.testing.assert_allclose(batch['image'], expected.numpy(), atol=1.01 / 255)

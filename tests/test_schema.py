import numpy as np
import pytest
import tensorflow as tf

from fbi3d.data import schema


def _example():
  return dict(image_jpeg=b'\xff\xd8jpeg', image_size=32,
              pose2d=np.arange(34, dtype=np.float32).reshape(17, 2) / 3,
              pose3d=np.arange(51, dtype=np.float32).reshape(17, 3) * 1.5 - 20,
              fbi=np.arange(14) % 3, action=4, subject=9, source_id='00042', split='Val',
              crop_box=np.array([1.5, 2.5, 100.0]), intrinsics=np.array([1, 2, 3, 4]))


def test_round_trip_is_exact():
  ex = _example()
  parsed = schema.parse_numpy(schema.serialize_example(**ex))
  assert parsed[schema.IMAGE] == ex['image_jpeg']
  assert parsed[schema.IMAGE_SIZE] == 32
  np.testing.assert_array_equal(parsed[schema.POSE2D], ex['pose2d'])
  np.testing.assert_array_equal(parsed[schema.POSE3D], ex['pose3d'])
  np.testing.assert_array_equal(parsed[schema.FBI], ex['fbi'])
  assert parsed[schema.ACTION] == 4 and parsed[schema.SUBJECT] == 9
  assert parsed[schema.SOURCE_ID] == b'00042' and parsed[schema.SPLIT] == b'Val'
  np.testing.assert_array_equal(parsed[schema.CROP_BOX], [1.5, 2.5, 100.0])
  np.testing.assert_array_equal(parsed[schema.INTRINSICS], [1, 2, 3, 4])
  assert parsed[schema.POSE2D_VALID] == 1 and parsed[schema.POSE3D_VALID] == 1


def test_round_trip_through_a_tfrecord_file(tmp_path):
  ex = _example()
  path = str(tmp_path / 'one.tfrecord')
  with tf.io.TFRecordWriter(path) as w:
    w.write(schema.serialize_example(**ex, pose3d_valid=False))
  (record,) = list(tf.data.TFRecordDataset(path))
  parsed = schema.parse_numpy(record.numpy())
  np.testing.assert_array_equal(parsed[schema.POSE3D], ex['pose3d'])
  assert parsed[schema.POSE3D_VALID] == 0


def test_wrong_shapes_are_rejected():
  ex = _example()
  ex['fbi'] = np.zeros(16)
  with pytest.raises(ValueError, match='fbi must have shape'):
    schema.serialize_example(**ex)

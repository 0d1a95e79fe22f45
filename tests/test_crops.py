import json
import os

import numpy as np

from fbi3d.training import crops
from fbi3d.training import run as run_lib


def test_boxes_from_joints_are_the_converters_square_in_converted_pixels():
  # Joints found on 64-px crops of 128-px converted crops: x from 9.5 to 29.5 and y from
  # 9.5 to 49.5 are 19.5 to 59.5 and 19.5 to 99.5 at 128 px ((u + 0.5) * 2 - 0.5).
  # Longest side 80, margin 0.2: side 112 around the centre (39.5, 59.5).
  joints = np.zeros((1, 17, 2))
  joints[0, :, 0] = np.linspace(9.5, 29.5, 17)
  joints[0, :, 1] = np.linspace(49.5, 9.5, 17)
  boxes = crops.boxes_from_joints(joints, 64, 128, 0.2)
  np.testing.assert_allclose(boxes, [[-16.5, 3.5, 112.0]])
  assert boxes.dtype == np.float32


def test_the_margin_a_run_learned_from(tmp_path):
  model_dir, data_dir = tmp_path / 'run', tmp_path / 'data'
  run = run_lib.Run.of(str(model_dir))
  # Neither a record nor the data set: the converter's default.
  assert crops.trained_margin(run, str(data_dir)) == 0.2
  # A run trained before the record: its data set's manifest.
  os.makedirs(data_dir)
  (data_dir / 'manifest.json').write_text(json.dumps({'margin': 0.35, 'splits': {}}))
  assert crops.trained_margin(run, str(data_dir)) == 0.35
  # What pose2d recorded wins over the data set (converted again since, say).
  os.makedirs(model_dir / 'pose2d')
  (model_dir / 'pose2d' / 'results.json').write_text(json.dumps({'data_margin': 0.5}))
  assert crops.trained_margin(run, str(data_dir)) == 0.5

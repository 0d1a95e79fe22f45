"""A tiny folder in the ECCV 2018 challenge layout written for tests, the converter run on
it with small settings, and its records read back: shared by the converter's tests."""

import os

import cv2
import numpy as np
import tensorflow as tf

from fbi3d import skeleton
from fbi3d.data import convert
from fbi3d.data import layout
from fbi3d.data import schema

CROP = 32


def _pose(rng):
  pose = np.zeros((17, 3))
  for parent, child in skeleton.BONES:
    v = rng.normal(size=3)
    pose[child] = pose[parent] + 100.0 * v / np.linalg.norm(v)
  return pose


def make_layout(root, counts=(('Train', 7),), meta=True, unlabelled=('Test',), size=(64, 64),
                seed=0):
  """Writes a tiny challenge layout; returns {split: {id: truth}} as read back."""
  rng = np.random.default_rng(seed)
  truth = {}
  for split, n in counts:
    split_dir = os.path.join(root, split)
    os.makedirs(os.path.join(split_dir, 'IMG'))
    if split not in unlabelled:
      os.makedirs(os.path.join(split_dir, 'POSE'))
    records, truth[split] = [], {}
    for i in range(n):
      rid = f'{i + 1:05d}'
      h, w = size
      image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
      cv2.circle(image, (w // 2, h // 2), 10, (0, 200, 50), -1)
      cv2.imwrite(os.path.join(split_dir, 'IMG', rid + '.jpg'), image)
      joints = rng.uniform([8, 6], [w - 8, h - 6], size=(17, 2))
      record = dict(id=rid, action=(i * 4) % 16 - 1, subject=1 + i % 2, joints2d=joints,
                    intrinsics=(500.0 + i, 501.0, w / 2, h / 2))
      records.append(record)
      entry = dict(image=os.path.join(split_dir, 'IMG', rid + '.jpg'), action=record['action'],
                   subject=record['subject'])
      if split not in unlabelled:
        pose_path = os.path.join(split_dir, 'POSE', rid + '.csv')
        layout.write_pose_csv(pose_path, _pose(rng))
        entry['pose3d'] = layout.read_pose_csv(pose_path)
      truth[split][rid] = entry
    if meta:
      layout.write_meta(os.path.join(split_dir, 'META.csv'), records)
      read, _ = layout.read_meta(os.path.join(split_dir, 'META.csv'))
      for rid, r in read.items():
        truth[split][rid].update(joints2d=r['joints2d'], intrinsics=r['intrinsics'])
  return truth


def read_records(out_dir, manifest, split):
  """The parsed examples of a split of a converted data set, in shard order."""
  examples = []
  for shard in manifest['splits'][split]['shards']:
    for raw in tf.data.TFRecordDataset(os.path.join(out_dir, shard)):
      examples.append(schema.parse_numpy(raw.numpy()))
  return examples


def run(in_dir, out_dir, **kwargs):
  """convert.convert with the tests' defaults: crops of CROP px, shards of 3, one
  worker, no log."""
  kwargs.setdefault('crop_size', CROP)
  kwargs.setdefault('shard_size', 3)
  kwargs.setdefault('workers', 1)
  kwargs.setdefault('log', lambda line: None)
  return convert.convert(str(in_dir), str(out_dir), **kwargs)



def corrupt_garbage_image(root):
  """Replaces Train/00002.jpg with bytes that are no JPEG; returns its relative path."""
  with open(os.path.join(root, 'Train/IMG/00002.jpg'), 'wb') as f:
    f.write(b'\xff\xd8 this is not a jpeg at all \xff\xd9')
  return 'Train/IMG/00002.jpg'

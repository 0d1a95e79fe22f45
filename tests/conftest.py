"""Shared fixtures: a tiny converted data set written directly with the schema, the
settings of a tiny run, and that run trained and exported once per session.

A test that needs a fixture which trains or exports is marked slow here, so that
`-m "not slow"` trains and exports nothing."""

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fbi3d import fbi
from fbi3d import keypoints
from fbi3d import skeleton
from fbi3d.data import body
from fbi3d.data import schema
from fbi3d.training import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
MOCAP_DIR = os.path.join(REPO, '..', 'shared', 'data', 'mocap')
needs_shared_mocap = pytest.mark.skipif(
    not os.path.isdir(MOCAP_DIR),
    reason=f'shared motion capture data not found at {MOCAP_DIR} (../shared/data/mocap)')

# Session fixtures that train a network or export one. `fixturenames` lists what a test
# needs through other fixtures too, so a fixture built on these is covered as well.
TRAINING_FIXTURES = frozenset({'trained_run', 'exported', 'tiny_lifter', 'exported_with_lifter'})


def png_with_exif_orientation(rgba, orientation):
  """A PNG of BGRA `rgba` with an eXIf chunk holding only the orientation tag."""
  import struct  # pylint: disable=g-import-not-at-top
  import zlib  # pylint: disable=g-import-not-at-top

  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

  ifd = struct.pack('>H', 1) + struct.pack('>HHIHH', 0x0112, 3, 1, orientation, 0)
  exif = b'MM\x00\x2a' + struct.pack('>I', 8) + ifd + struct.pack('>I', 0)
  png = cv2.imencode('.png', rgba)[1].tobytes()
  return png[:33] + chunk(b'eXIf', exif) + png[33:]    # after the signature and IHDR


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  """Marks slow every test that needs a training or exporting fixture, before `-m`
  selects on the marks."""
  for item in items:
    if TRAINING_FIXTURES & set(getattr(item, 'fixturenames', ())):
      item.add_marker(pytest.mark.slow)


def tiny_pose(rng):
  """A root-relative pose with every bone 100 mm long, in random directions."""
  pose = np.zeros((17, 3))
  for parent, child in skeleton.BONES:
    v = rng.normal(size=3)
    pose[child] = pose[parent] + 100.0 * v / np.linalg.norm(v)
  return pose.astype(np.float32)


def write_tiny_dataset(out_dir, num_examples=6, crop_size=32, splits=('train',), seed=0,
                       unlabelled=()):
  """Writes `num_examples` records per split and a manifest; returns the examples.
  Splits named in `unlabelled` have no 3D ground truth (pose3d_valid 0, zeros)."""
  rng = np.random.default_rng(seed)
  os.makedirs(out_dir, exist_ok=True)
  manifest = {'schema_version': schema.SCHEMA_VERSION, 'crop_size': crop_size, 'margin': 0.2,
              'fbi_threshold_deg': fbi.DEFAULT_THRESHOLD_DEG, 'splits': {}}
  written = {}
  for split in splits:
    examples = []
    shard = f'{split}-00000-of-00001.tfrecord'
    with tf.io.TFRecordWriter(os.path.join(out_dir, shard)) as writer:
      for i in range(num_examples):
        image = rng.integers(0, 256, size=(crop_size, crop_size, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(image, (5, 5), 0)
        jpeg = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        pose3d = tiny_pose(rng)
        labels = fbi.fbi_labels(pose3d)
        if split in unlabelled:
          pose3d, labels = np.zeros_like(pose3d), np.zeros_like(labels)
        pose2d = rng.uniform(2, crop_size - 3, size=(17, 2)).astype(np.float32)
        ex = dict(image_jpeg=jpeg, image_size=crop_size, pose2d=pose2d, pose3d=pose3d,
                  fbi=labels, pose3d_valid=split not in unlabelled,
                  action=i % 15, subject=1 + i % 3,
                  source_id=f'{i + 1:05d}', split=split.capitalize(),
                  crop_box=np.array([10.0 * i, 5.0, 64.0], np.float32),
                  intrinsics=np.array([500.0, 500.0, 128.0, 128.0], np.float32))
        writer.write(schema.serialize_example(**ex))
        ex['decoded'] = tf.io.decode_jpeg(jpeg, channels=3).numpy()
        examples.append(ex)
    manifest['splits'][split] = {'shards': [shard], 'num_examples': num_examples,
                                 'has_pose3d': split not in unlabelled}
    written[split] = examples
  with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
    json.dump(manifest, f)
  return written


def upright_coco():
  """A hand-made COCO-17 person facing the camera: its left on the image's right."""
  k = {
      'nose': (50, 25), 'left_eye': (53, 21), 'right_eye': (47, 21),
      'left_ear': (55, 20), 'right_ear': (45, 20),
      'left_shoulder': (62, 40), 'right_shoulder': (38, 40),
      'left_elbow': (66, 60), 'right_elbow': (34, 60),
      'left_wrist': (68, 80), 'right_wrist': (32, 80),
      'left_hip': (60, 100), 'right_hip': (40, 100),
      'left_knee': (61, 130), 'right_knee': (39, 130),
      'left_ankle': (62, 160), 'right_ankle': (38, 160)}
  return np.array([k[n] for n in keypoints.COCO_NAMES], np.float64)


def tiny_config(data_dir, model_dir, **overrides):
  """The settings of a tiny run on `data_dir`: 32-pixel crops, one-stack networks of 8
  channels, batches of 4, epochs of 2 steps, one epoch each of pose2d and the generator;
  `overrides` replace any of them."""
  values = dict(
      data_dir=data_dir, model_dir=model_dir, image_size=32, batch_size=4,
      steps_per_epoch=2, val_steps=0, eval_split='train', hg_stacks=1, hg_channels=8,
      hg_depth=2, pose2d_epochs=1, gen_stacks=1, gen_channels=8, gen_depth=2, depth_bins=4,
      fbi_channels=(8, 8, 8, 8), generator_epochs=1)
  values.update(overrides)
  return config_lib.make(**values)


@pytest.fixture
def tiny_dataset(tmp_path):
  examples = write_tiny_dataset(str(tmp_path / 'records'))
  return str(tmp_path / 'records'), examples


@pytest.fixture
def bfloat16_policy():
  """Builds models under the mixed_bfloat16 policy, restoring float32 afterwards."""
  tf.keras.backend.clear_session()
  tf.keras.mixed_precision.set_global_policy('mixed_bfloat16')
  yield
  tf.keras.mixed_precision.set_global_policy('float32')
  tf.keras.backend.clear_session()


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
  """Every phase of a tiny run, trained once per test session (labelled train and val
  splits, an unlabelled test split); returns its Config. Tests may add phases and
  folders to its model_dir but must copy it before changing anything in it."""
  # pylint: disable=import-outside-toplevel
  from fbi3d.training import phases
  from fbi3d.training import trainer
  root = tmp_path_factory.mktemp('trained_run')
  data_dir = str(root / 'records')
  write_tiny_dataset(data_dir, splits=('train', 'val', 'test'), unlabelled=('test',))
  # With flip averaging and the regressors' mirror images, as both flag files run.
  cfg = tiny_config(data_dir, str(root / 'model'), adversarial_epochs=1, base_epochs=2,
                    refine_epochs=2, disc_units=16, flip_test=True, regressor_mirror=True,
                    regressor_mirror_average=True)
  for name in phases.PHASES:
    trainer.run_phase(phases.make_task(name, cfg), log=lambda *args: None)
  return cfg


@pytest.fixture(scope='session')
def exported(trained_run, tmp_path_factory):
  """The session's tiny trained run, its in-process PoseModel and its SavedModel:
  (model_dir, PoseModel, version folder)."""
  from fbi3d import inference  # pylint: disable=import-outside-toplevel
  model = inference.PoseModel(trained_run.model_dir)
  path = inference.export(model, str(tmp_path_factory.mktemp('export')))
  return trained_run.model_dir, model, path


@pytest.fixture(scope='session')
def tiny_lifter(tmp_path_factory):
  """A pose-bank lifter trained for one epoch on 32 synthetic poses (hidden 16), saved;
  returns its folder."""
  # pylint: disable=import-outside-toplevel
  from fbi3d import lifter
  from fbi3d.data import synthetic
  rng = np.random.default_rng(0)
  poses = np.stack([body.sample_pose(rng, i % skeleton.NUM_ACTIONS) for i in range(32)])
  network, info = lifter.train(poses, epochs=1, batch_size=16, hidden=16)
  return lifter.save(network, info, str(tmp_path_factory.mktemp('lifter')))


@pytest.fixture(scope='session')
def exported_with_lifter(trained_run, tiny_lifter, tmp_path_factory):
  """The session's tiny run exported with `tiny_lifter` behind lift: (PoseModel, version
  folder)."""
  from fbi3d import inference  # pylint: disable=import-outside-toplevel
  model = inference.PoseModel(trained_run.model_dir, lifter_dir=tiny_lifter)
  path = inference.export(model, str(tmp_path_factory.mktemp('export_lifter')))
  return model, path

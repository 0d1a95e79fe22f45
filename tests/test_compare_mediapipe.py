"""Tests of tools/compare_mediapipe.py: the aligned distance, exact on hand-made poses, and
the command without and with the optional MediaPipe extra."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fbi3d import prediction
from tests.conftest import SHARED_DATA
from tests.conftest import tiny_pose
from tests.conftest import REPO

_SPEC = importlib.util.spec_from_file_location(
    'compare_mediapipe', os.path.join(REPO, 'tools', 'compare_mediapipe.py'))
compare = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare)

try:
  import mediapipe  # pylint: disable=unused-import
  HAS_MEDIAPIPE = True
except ImportError:
  HAS_MEDIAPIPE = False


@pytest.fixture(scope='module')
def exported_model(exported):
  return prediction.ExportedModel(os.path.dirname(exported[2]))


def test_a_turned_scaled_shifted_copy_is_zero_apart():
  ours = tiny_pose(np.random.default_rng(0)).astype(np.float64)
  c, s = np.cos(0.7), np.sin(0.7)
  turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
  theirs = 0.001 * ours @ turn.T + np.array([5.0, -2.0, 9.0])    # metres, elsewhere
  aligned, distance = compare.aligned_distance(ours, theirs)
  np.testing.assert_allclose(aligned, ours, atol=1e-9)
  assert distance == pytest.approx(0.0, abs=1e-9)


def test_the_distance_over_some_joints_aligns_on_those_alone():
  ours = tiny_pose(np.random.default_rng(1)).astype(np.float64)
  theirs = ours.copy()
  theirs[3] += [0.0, 0.0, 400.0]             # one joint 400 mm off in depth
  seen = np.ones(17, bool)
  seen[3] = False
  aligned, distance = compare.aligned_distance(ours, theirs, seen)
  assert aligned.shape == (16, 3)
  assert distance == pytest.approx(0.0, abs=1e-9)
  _, everywhere = compare.aligned_distance(ours, theirs)
  assert everywhere > 10.0


@pytest.mark.slow
@pytest.mark.skipif(HAS_MEDIAPIPE, reason='the optional MediaPipe extra is installed')
def test_without_mediapipe_the_command_says_what_to_install(exported_model, tmp_path):
  picture = os.path.join(SHARED_DATA, 'photos', 'skimage_astronaut.png')
  if not os.path.exists(picture):
    pytest.skip('../shared/data/photos is absent')
  proc = subprocess.run(
      [sys.executable, 'tools/compare_mediapipe.py', picture,
       f'--export_dir={exported_model.path}', f'--out={tmp_path / "out"}'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert 'needs the optional extra: pip install "fbi3d[mediapipe]"' in proc.stderr
  assert 'Traceback' not in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MEDIAPIPE, reason='the optional extra fbi3d[mediapipe] '
                    '(mediapipe==0.10.21) is not installed')
def test_both_skeletons_for_the_shared_photos(exported_model, tmp_path):
  photos = os.path.join(SHARED_DATA, 'photos')
  if not os.path.isdir(photos):
    pytest.skip('../shared/data/photos is absent')
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, 'tools/compare_mediapipe.py', photos,
       f'--export_dir={exported_model.path}', f'--out={out}'],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = json.load(open(out / 'compare.json'))['pictures']
  assert sorted(os.path.basename(r['picture']) for r in rows) == [
      'coco_000000000785.jpg', 'skimage_astronaut.png']
  for r in rows:
    assert os.path.getsize(r['figure']) > 0
    assert np.array(r['fbi3d_pose3d_mm']).shape == (17, 3)

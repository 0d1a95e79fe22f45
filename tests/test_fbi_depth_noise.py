"""tools/fbi_depth_noise.py: the coarse depth's equivalent noise and the noise that gives
an accuracy, on hand-made poses."""

import importlib.util
import os
import sys

import numpy as np
import pytest

from fbi3d import fbi
from tests.conftest import REPO
from tests.test_fbi import pose_from_bones

# The tool imports tools/bench.py as `bench`, its own folder being first on its path.
sys.path.insert(0, os.path.join(REPO, 'tools'))
_SPEC = importlib.util.spec_from_file_location(
    'fbi_depth_noise', os.path.join(REPO, 'tools', 'fbi_depth_noise.py'))
tool = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tool)


def test_equivalent_sigma_of_the_bones_depth_differences():
  pose = pose_from_bones([np.array([0.0, 200.0, 0.0])] * 16)[None]
  # Every joint 30 mm deeper: no bone's depth difference changes.
  assert tool.equivalent_sigma(pose + [0.0, 0.0, 30.0], pose) == 0.0
  # The right ankle (joint 3, child of FBI bone 1 alone) 40 mm deeper: one of the 14 bones
  # is 40 mm off, so sqrt(40^2 / 14 / 2) = 7.559289460 mm.
  coarse = pose.copy()
  coarse[0, 3, 2] += 40.0
  assert tool.equivalent_sigma(coarse, pose) == pytest.approx(np.sqrt(1600 / 28), abs=1e-9)


def test_sigma_for_inverts_the_expected_accuracy():
  vectors = [np.array([0.0, 200.0, 0.0])] * 16
  vectors[1] = np.array([0.0, 200.0, 400.0])
  pose = pose_from_bones(vectors)[None]
  accuracy = fbi.accuracy_under_depth_noise(pose, 100.0 * np.sqrt(2.0), 45.0)
  assert tool.sigma_for(pose, accuracy, 45.0) == pytest.approx(100.0 * np.sqrt(2.0),
                                                                abs=1e-6)

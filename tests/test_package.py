"""What importing the package does before TensorFlow loads."""

import os
import subprocess
import sys

import pytest

PROBE = ('import os, fbi3d, tensorflow\n'
         'from tensorflow.python.util import _pywrap_util_port as port\n'
         'print(os.environ["TF_ENABLE_ONEDNN_OPTS"], port.IsMklEnabled())\n')


@pytest.mark.parametrize('given, expected', [
    (None, '1 True'),      # unset: fbi3d asks for oneDNN, and TensorFlow uses it
    ('0', '0 False'),      # the user's choice is kept
])
def test_importing_fbi3d_turns_onednn_on_unless_the_environment_says(given, expected):
  env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
  if given is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = given
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  out = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True,
                       text=True, check=True).stdout
  assert out.strip() == expected

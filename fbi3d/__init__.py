"""fbi3d: 3D human pose from one image with multimodal depth supervision."""

import os

__version__ = '0.1.0'

# TensorFlow uses its oneDNN CPU kernels by default only where the CPU has AVX-512 VNNI,
# BF16 or AMX. On an AVX2-only CPU they make the quickstart's convnet training steps about
# a quarter faster (README, Quick start), so fbi3d asks for them everywhere. TensorFlow
# reads this when it is first imported, which every `python -m fbi3d....` command does
# after this line; TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps them off.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')

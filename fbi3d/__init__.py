"""fbi3d: 3D human pose from one image with multimodal depth supervision."""

from fbi3d import cpu as _cpu

__version__ = '0.1.0'

# Before any fbi3d module loads TensorFlow: its CPU kernels by this CPU (fbi3d/cpu.py).
_cpu.configure()

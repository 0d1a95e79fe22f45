"""fbi3d: 3D human pose from one image with multimodal depth supervision."""

__version__ = '0.1.0'

"""fbi3d: 3D human pose from one image with multimodal depth supervision."""

import setuptools

INSTALL_REQUIRES = [
    'tensorflow==2.15.1',
    'keras==2.15.0',
    'tensorflow-addons==0.23.0',
    'numpy==1.26.4',
    'h5py==3.16.0',
    'cdflib==1.3.16',
    'opencv-python-headless==4.11.0.86',
    'absl-py==2.5.1',
    'pandas==3.0.6',
    'matplotlib==3.11.2',
    'pytest==9.2.0',
]

setuptools.setup(
    name='fbi3d',
    version='0.1.0',
    description='3D human pose estimation with multimodal depth supervision (FBI).',
    packages=setuptools.find_packages(include=['fbi3d', 'fbi3d.*']),
    python_requires='>=3.11,<3.12',
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # On a GPU machine: pip install -e .[gpu]
        'gpu': ['tensorflow[and-cuda]==2.15.1'],
        # python -m fbi3d.predict --detector=mediapipe. 0.10.21 is the last release whose
        # wheel carries the pose model (complexity 1), so nothing is downloaded at run time.
        'mediapipe': ['mediapipe==0.10.21'],
    },
)

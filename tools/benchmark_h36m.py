"""Conversion speed of tools/convert_h36m.py's paths, in frames (records) per second.

  python tools/benchmark_h36m.py --frames=100 --out=runs/benchmarks/h36m.json

Writes a small Human3.6M layout (synthetic poses; 1 subject, 2 takes, the 4 cameras,
--frames frames each; videos of 1000 px pictures for the original release) into a
temporary folder, then converts each source --repeats times and reports the median: the
original release with video decoding and 256 px crops, the same without videos, and the
VideoPose3D and Martinez archives. Prints a table and writes JSON.
"""

import json
import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import skeleton   # pylint: disable=g-import-not-at-top
from fbi3d.data import body   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_layout   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_martinez   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_original   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_records   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_videopose3d   # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_integer('frames', 100, 'Frames per take and camera.', lower_bound=1)
flags.DEFINE_integer('repeats', 3, 'Conversions per source; the median is reported.',
                     lower_bound=1)
flags.DEFINE_integer('crop_size', 256, 'Crop side.', lower_bound=16)
flags.DEFINE_string('out', os.path.join('runs', 'benchmarks', 'h36m.json'), 'JSON output.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  rng = np.random.default_rng(0)
  takes = {(1, take): np.stack([body.sample_pose(
      rng, skeleton.action_index(h36m.parse_action(take)[0])) for _ in range(FLAGS.frames)])
           for take in ('Directions 1', 'Walking 1')}
  tmp = tempfile.mkdtemp(prefix='fbi3d-bench-h36m-')
  try:
    h36m_layout.write_original(os.path.join(tmp, 'original'), takes)
    h36m_layout.write_videopose3d(os.path.join(tmp, 'videopose3d'), takes)
    h36m_layout.write_martinez(os.path.join(tmp, 'martinez'), takes, detections=False)
    cases = [('original, videos decoded and cropped', h36m_original, 'original', True),
             ('original, poses only', h36m_original, 'original', False),
             ('videopose3d archives', h36m_videopose3d, 'videopose3d', False),
             ('martinez h5 files', h36m_martinez, 'martinez', False)]
    rows = []
    for label, reader, folder, images in cases:
      times = []
      for r in range(FLAGS.repeats):
        out = os.path.join(tmp, f'records-{folder}-{images}-{r}')
        start = time.perf_counter()
        manifest = h36m_records.write_records(
            reader.sequences(os.path.join(tmp, folder), images=images), out,
            source=folder, input_dir=os.path.join(tmp, folder), crop_size=FLAGS.crop_size,
            train_subjects=(1,), test_subjects=(), log=lambda _: None)
        times.append(time.perf_counter() - start)
      n = manifest['splits']['train']['num_examples']
      rows.append(dict(source=label, frames=n, seconds=float(np.median(times)),
                       frames_per_s=n / float(np.median(times))))
      print(f'{label}: {n} frames, median {np.median(times):.2f} s', flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  print('\n| source | frames | seconds (median) | frames/s |\n|---|---|---|---|')
  for row in rows:
    print(f'| {row["source"]} | {row["frames"]} | {row["seconds"]:.2f} | '
          f'{row["frames_per_s"]:.0f} |')
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, 'w') as f:
    json.dump(dict(frames_per_take_camera=FLAGS.frames, crop_size=FLAGS.crop_size,
                   repeats=FLAGS.repeats, rows=rows), f, indent=1)
  print(f'wrote {FLAGS.out}')


if __name__ == '__main__':
  sys.exit(app.run(main))

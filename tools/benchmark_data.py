"""Benchmark of the data path: rendering, conversion and the tf.data pipeline.

Spawned worker processes each import TensorFlow (about 2.5 s) before they start, so
the 2-worker conversion only pays off on data sets of a few thousand images or more.

Prints a table and writes JSON. Measures, on this machine:
  - synthetic rendering: images rendered, JPEG-encoded and written per second, in one
    process (per core) and with --workers processes;
  - conversion to TFRecords at --crop_size: examples per second with 1 and 2 workers;
  - the training pipeline with augmentation: examples per second on 1 and 2 threads.

  python tools/benchmark_data.py --num_images=2000 --out=runs/benchmarks/data.json
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

import bench
from fbi3d.data import convert
from fbi3d.data import pipeline
from fbi3d.data import synthetic

FLAGS = flags.FLAGS
flags.DEFINE_integer('num_images', 2000, 'Synthetic images to render and convert.',
                     lower_bound=1)
flags.DEFINE_integer('image_size', 384, 'Side of the rendered images in pixels.',
                     lower_bound=64)
flags.DEFINE_integer('crop_size', 256, 'Crop size of the conversion and the pipeline.',
                     lower_bound=16)
flags.DEFINE_integer('batch_size', 64, 'Pipeline batch size.', lower_bound=1)
flags.DEFINE_integer('pipeline_batches', 40, 'Batches timed per pipeline setting.',
                     lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/data.json', 'Where to write the JSON.')
bench.require_file_out()
flags.DEFINE_string('work_dir', None, 'Scratch folder (default: a temporary folder).')


def _time(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _pipeline_rate(data_dir, threads):
  ds = pipeline.make_dataset(data_dir, 'train', FLAGS.batch_size, augment=True,
                             repeat=True, threads=threads)
  return bench.stream_rate(ds, FLAGS.batch_size, FLAGS.pipeline_batches, warmup=5)


def main(argv):
  bench.no_arguments(argv)
  work = FLAGS.work_dir or tempfile.mkdtemp(prefix='fbi3d_bench_')
  n = FLAGS.num_images
  rows = []
  try:
    # Rendering on one core, in this process: the per-core rate.
    # Made afresh each time: make_synthetic finds a complete data set and does nothing.
    out = os.path.join(work, 'synthetic_w1')
    shutil.rmtree(out, ignore_errors=True)
    seconds = _time(lambda: synthetic.write_split(
        out, 'Train', n, 0, FLAGS.image_size, workers=1))
    rows.append(dict(stage='render + write', setting='1 core, in process', items=n,
                     seconds=seconds, per_second=n / seconds, per_second_per_core=n / seconds))
    # The tool end to end with 2 worker processes (start-up included).
    out = os.path.join(work, 'synthetic_w2')
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, os.path.join(os.path.dirname(__file__), 'make_synthetic.py'),
               f'--out_dir={out}', f'--num_train={n}', '--num_val=0', '--num_test=0',
               f'--image_size={FLAGS.image_size}', '--workers=2']
    def make_synthetic():
      proc = subprocess.run(command, check=False, capture_output=True, text=True)
      if proc.returncode:
        raise RuntimeError(f'make_synthetic.py failed ({proc.returncode}): '
                           f'{proc.stderr.strip()[-2000:]}')
    seconds = _time(make_synthetic)
    rows.append(dict(stage='make_synthetic.py', setting='2 workers, end to end', items=n,
                     seconds=seconds, per_second=n / seconds,
                     per_second_per_core=n / seconds / 2))
    source = os.path.join(work, 'synthetic_w2')
    for workers in (1, 2):
      out = os.path.join(work, f'records_w{workers}')
      shutil.rmtree(out, ignore_errors=True)
      seconds = _time(lambda: convert.convert(
          source, out, splits=('Train',), crop_size=FLAGS.crop_size, workers=workers,
          strict=True, log=lambda *a: None))   # strict: a skipped item would inflate the rate
      rows.append(dict(stage=f'convert (crop {FLAGS.crop_size})',
                       setting=f'{workers} worker(s)' + (' (spawned)' if workers > 1 else ''), items=n, seconds=seconds,
                       per_second=n / seconds, per_second_per_core=n / seconds / workers))
    records = os.path.join(work, 'records_w2')
    for threads in (1, 2):
      rate = _pipeline_rate(records, threads)
      items = FLAGS.pipeline_batches * FLAGS.batch_size
      rows.append(dict(stage='pipeline + augmentation', setting=f'{threads} thread(s)',
                       items=items, seconds=items / rate, per_second=rate,
                       per_second_per_core=rate / threads))
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(work, ignore_errors=True)

  print(f'\n{"stage":<28} {"setting":<24} {"items":>6} {"seconds":>8} {"items/s":>9} '
        f'{"per core":>9}')
  for r in rows:
    print(f'{r["stage"]:<28} {r["setting"]:<24} {r["items"]:>6} {r["seconds"]:>8.2f} '
          f'{r["per_second"]:>9.1f} {r["per_second_per_core"]:>9.1f}')
  result = dict(image_size=FLAGS.image_size, crop_size=FLAGS.crop_size,
                batch_size=FLAGS.batch_size, cpu_count=os.cpu_count(), rows=rows)
  bench.write_json(FLAGS.out, result)


if __name__ == '__main__':
  app.run(main)

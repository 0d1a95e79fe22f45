"""Benchmark of the exported SavedModel: latency and throughput of each signature.

At the quickstart and the paper scale (the settings of flags/quickstart.cfg and
flags/paper.cfg), it builds the inference module with freshly initialised networks
(speed does not depend on the weights), exports it to a temporary folder, loads it back
with tf.saved_model.load and times each signature, with flip averaging of the image
models on and off (--flip; the flag files turn it on):
  - latency: milliseconds per call at batch 1, after one untimed call;
  - throughput: examples per second at batch 32.
serving_default reads uint8 crops, serving_jpeg JPEG bytes of the same crops (quality 90,
decoded and resized in the graph), lift 2D joints. The paper scale is slow on a CPU: few
timed calls (and its batch of 32 is timed once, after one batch-32 warm-up call only
where --paper_runs allows). Prints a table and writes JSON.

  python tools/benchmark_export.py --out=runs/benchmarks/export.json
  python tools/benchmark_export.py --scales=quickstart
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

import bench
from fbi3d import inference
from fbi3d.models import count_params

# Each scale's flag file and how many calls to time there.
SCALES = {
    'quickstart': dict(flagfile='flags/quickstart.cfg', b1_runs=20, b32_runs=5),
    'paper': dict(flagfile='flags/paper.cfg', b1_runs=3, b32_runs=1),
}
SIGNATURES = ('serving_default', 'serving_jpeg', 'lift')
FLIPS = {'both': (True, False), 'flag_file': (None,), 'on': (True,), 'off': (False,)}

FLAGS = flags.FLAGS
flags.DEFINE_list('scales', list(SCALES), f'Scales to run, from {list(SCALES)}.')
flags.DEFINE_integer('paper_runs', None, 'Timed batch-1 calls at the paper scale (default 3).',
                     lower_bound=1)
flags.DEFINE_enum('flip', 'both', list(FLIPS), 'Flip averaging of the image models in the '
                  'module timed: both (on, then off), flag_file (as the scale\'s flag file '
                  'sets it), on or off.')
flags.DEFINE_string('out', 'runs/benchmarks/export.json', 'Where to write the JSON.')
bench.require_file_out()
bench.require_items('scales')


def _inputs(signature, size, batch, rng):
  crops = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
  if signature == 'serving_default':
    return {'images': tf.constant(crops)}
  if signature == 'serving_jpeg':
    return {'images': tf.constant([tf.io.encode_jpeg(c, quality=90).numpy() for c in crops])}
  return {'pose2d': tf.constant(rng.uniform(0, size - 1, (batch, 17, 2)).astype(np.float32))}


def _time(fn, inputs, runs):
  def run():
    tf.nest.map_structure(lambda t: t.numpy(), fn(**inputs))
  start = time.perf_counter()
  for _ in range(runs):
    run()
  return (time.perf_counter() - start) / runs


def _bench(scale_name, flip):
  """The rows of one scale with flip averaging `flip` (None: the flag file's)."""
  scale = SCALES[scale_name]
  b1_runs = scale['b1_runs']
  if scale_name == 'paper' and FLAGS.paper_runs:
    b1_runs = FLAGS.paper_runs
  tf.keras.backend.clear_session()
  tf.keras.utils.set_random_seed(0)
  cfg = bench.flag_file_config(scale['flagfile'])
  if flip is not None:
    cfg = cfg.replace(flip_test=flip)
  module = inference.PoseModel.untrained(cfg)
  params = sum(count_params(n) for n in (module.pose2d_net, module.generator_net,
                                         module.base_net, module.refine_net))
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    path = inference.export(module, tmp)
    export_seconds = time.perf_counter() - start
    size_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
                  for f in files) / 2**20
    start = time.perf_counter()
    loaded = tf.saved_model.load(path)
    load_seconds = time.perf_counter() - start
    rows = []
    rng = np.random.default_rng(0)
    for name in SIGNATURES:
      fn = loaded.signatures[name]
      one = _inputs(name, cfg.image_size, 1, rng)
      _time(fn, one, 1)                              # first call: untimed
      latency = _time(fn, one, b1_runs)
      many = _inputs(name, cfg.image_size, 32, rng)
      runs = scale['b32_runs'] if name != 'lift' else 20
      if runs > 1 or name == 'lift':
        _time(fn, many, 1)                           # warm-up at batch 32
      rate = 32 / _time(fn, many, runs)
      rows.append(dict(scale=scale_name, signature=name, image_size=cfg.image_size,
                       flagfile=scale['flagfile'], flip_test=bool(cfg.flip_test),
                       params=params, export_seconds=export_seconds,
                       savedmodel_mb=size_mb, load_seconds=load_seconds,
                       latency_ms_b1=1000.0 * latency, b1_runs=b1_runs,
                       examples_per_s_b32=rate, b32_runs=runs))
      print(f'{scale_name} {name} (flip {"on" if cfg.flip_test else "off"}): '
            f'{1000.0 * latency:.1f} ms at batch 1, {rate:.1f} ex/s at '
            f'batch 32', flush=True)
  return rows


def main(argv):
  bench.no_arguments(argv)
  unknown = set(FLAGS.scales) - set(SCALES)
  if unknown:
    raise app.UsageError(f'--scales: unknown {sorted(unknown)}; choose from {list(SCALES)}.')
  rows = []
  for scale_name in FLAGS.scales:
    for flip in FLIPS[FLAGS.flip]:
      rows.extend(_bench(scale_name, flip))
  print(f'\n{"scale":<11} {"signature":<16} {"flip":>4} {"params":>11} {"MB":>6} {"b1 ms":>8} '
        f'{"b32 ex/s":>9} {"timed (b1/b32)":>14}')
  for r in rows:
    print(f'{r["scale"]:<11} {r["signature"]:<16} {"on" if r["flip_test"] else "off":>4} '
          f'{r["params"]:>11,} {r["savedmodel_mb"]:>6.0f} '
          f'{r["latency_ms_b1"]:>8.1f} {r["examples_per_s_b32"]:>9.1f} '
          f'{r["b1_runs"]:>7}/{r["b32_runs"]:<6}')
  bench.write_json(FLAGS.out, bench.tensorflow_result(rows))


if __name__ == '__main__':
  app.run(main)

"""Benchmark of the image models: size, training and inference speed on this machine.

For the 2D stacked hourglass and the multimodal generator, at the quickstart and the
paper scale, in float32 and mixed_bfloat16, it measures:
  - parameters;
  - training examples per second: a compiled Keras train step (Adam, MSE on every
    output) on random data, after warm-up steps that include tracing;
  - inference milliseconds per example at batch 1 and examples per second at batch 32
    (one traced function with a free batch axis, so batch 32 is not traced again).

Each (scale, precision) starts from a clean Keras session with its policy set before
the models are built. Prints a table and writes JSON.

  python tools/benchmark_models.py --out=runs/benchmarks/models.json
  python tools/benchmark_models.py --scales=quickstart --precisions=float32 --steps=5
"""

import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

import bench
from fbi3d import skeleton
from fbi3d.models import count_params
from fbi3d.models import generator
from fbi3d.models import hourglass

# Model settings and how much to time at each scale. The paper scale is slow on a CPU:
# small training batches, few steps and one timed batch of 32.
SCALES = {
    'quickstart': dict(
        input_size=64,
        hourglass=dict(num_stacks=2, channels=64, depth=3),
        generator=dict(coarse_stacks=1, coarse_channels=64, coarse_depth=3, depth_bins=16,
                       fbi_channels=(32, 64, 128, 256)),
        train_batch=32, warmup_steps=2, steps=10, infer_runs=20, batch32_runs=5),
    'paper': dict(
        input_size=256,
        hourglass=dict(num_stacks=8, channels=256, depth=4),
        generator=dict(coarse_stacks=2, coarse_channels=256, coarse_depth=4, depth_bins=64,
                       fbi_channels=(64, 128, 256, 512)),
        train_batch=4, warmup_steps=1, steps=2, infer_runs=3, batch32_runs=1),
}
PRECISIONS = ('float32', 'mixed_bfloat16')
MODELS = ('hourglass', 'generator')

FLAGS = flags.FLAGS
flags.DEFINE_list('scales', list(SCALES), f'Scales to run, from {list(SCALES)}.')
flags.DEFINE_list('precisions', list(PRECISIONS), f'Policies to run, from {PRECISIONS}.')
flags.DEFINE_list('models', list(MODELS), f'Models to run, from {MODELS}.')
flags.DEFINE_integer('steps', None, 'Timed training steps (default: each scale\'s own, '
                     'quickstart 10, paper 2).', lower_bound=1)
flags.DEFINE_integer('paper_batch', None, 'Training batch at the paper scale (default 4).',
                     lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/models.json', 'Where to write the JSON.')


def _build(model_name, scale):
  size = scale['input_size']
  if model_name == 'hourglass':
    return hourglass.build_stacked_hourglass(size, num_joints=skeleton.NUM_JOINTS,
                                             **scale['hourglass'])
  return generator.build_generator(size, num_joints=skeleton.NUM_JOINTS,
                                   **scale['generator'])


def _random_targets(model, batch):
  """Random float32 targets shaped like the model's outputs."""
  rng = np.random.default_rng(0)

  def like(tensor):
    return rng.random((batch,) + tuple(tensor.shape[1:]), dtype=np.float32)

  return tf.nest.map_structure(like, model.output)


def _train_rate(model, scale, batch, steps):
  size = scale['input_size']
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-4),
                loss=tf.nest.map_structure(lambda _: 'mse', model.output))
  images = np.random.default_rng(1).random((batch, size, size, 3), dtype=np.float32)
  targets = _random_targets(model, batch)
  for _ in range(scale['warmup_steps']):
    model.train_on_batch(images, targets)
  start = time.perf_counter()
  for _ in range(steps):
    model.train_on_batch(images, targets)
  seconds = time.perf_counter() - start
  return batch * steps / seconds, seconds


def _inference(model, scale):
  size = scale['input_size']
  spec = tf.TensorSpec([None, size, size, 3], tf.float32)
  infer = tf.function(lambda x: model(x, training=False), input_signature=[spec])

  def run(x):
    tf.nest.map_structure(lambda t: t.numpy(), infer(x))

  one = tf.random.uniform([1, size, size, 3])
  run(one)
  start = time.perf_counter()
  for _ in range(scale['infer_runs']):
    run(one)
  ms_per_example = 1000.0 * (time.perf_counter() - start) / scale['infer_runs']
  many = tf.random.uniform([32, size, size, 3])
  if scale['batch32_runs'] > 1:
    run(many)  # Warm-up at this shape; with a single timed batch, it is the timed one.
  start = time.perf_counter()
  for _ in range(scale['batch32_runs']):
    run(many)
  rate = 32 * scale['batch32_runs'] / (time.perf_counter() - start)
  return ms_per_example, rate


def _bench(scale_name, precision, model_name):
  scale = dict(SCALES[scale_name])
  if FLAGS.steps:
    scale['steps'] = FLAGS.steps
  batch = scale['train_batch']
  if scale_name == 'paper' and FLAGS.paper_batch:
    batch = FLAGS.paper_batch
  tf.keras.backend.clear_session()
  tf.keras.mixed_precision.set_global_policy(precision)
  tf.keras.utils.set_random_seed(0)
  model = _build(model_name, scale)
  params = count_params(model, trainable_only=True)
  train_rate, train_seconds = _train_rate(model, scale, batch, scale['steps'])
  ms_per_example, batch32_rate = _inference(model, scale)
  return dict(model=model_name, scale=scale_name, precision=precision,
              input_size=scale['input_size'], params=params, train_batch=batch,
              train_steps=scale['steps'], train_seconds=train_seconds,
              train_examples_per_s=train_rate, infer_ms_per_example_b1=ms_per_example,
              infer_examples_per_s_b32=batch32_rate, batch32_batches=scale['batch32_runs'])


def main(argv):
  del argv
  for name, allowed in (('scales', SCALES), ('precisions', PRECISIONS), ('models', MODELS)):
    unknown = set(getattr(FLAGS, name)) - set(allowed)
    if unknown:
      raise app.UsageError(f'--{name}: unknown {sorted(unknown)}; choose from {list(allowed)}.')
  rows = []
  header = (f'{"model":<10} {"scale":<11} {"precision":<15} {"params":>11} {"batch":>5} '
            f'{"train ex/s":>10} {"b1 ms/ex":>9} {"b32 ex/s":>9}')
  try:
    for scale_name in FLAGS.scales:
      for precision in FLAGS.precisions:
        for model_name in FLAGS.models:
          row = _bench(scale_name, precision, model_name)
          rows.append(row)
          print(f'{model_name} {scale_name} {precision}: {row["params"]:,} params, '
                f'{row["train_examples_per_s"]:.2f} train ex/s, '
                f'{row["infer_ms_per_example_b1"]:.1f} ms at batch 1, '
                f'{row["infer_examples_per_s_b32"]:.2f} ex/s at batch 32', flush=True)
  finally:
    tf.keras.mixed_precision.set_global_policy('float32')
  print('\n' + header)
  for r in rows:
    print(f'{r["model"]:<10} {r["scale"]:<11} {r["precision"]:<15} {r["params"]:>11,} '
          f'{r["train_batch"]:>5} {r["train_examples_per_s"]:>10.2f} '
          f'{r["infer_ms_per_example_b1"]:>9.1f} {r["infer_examples_per_s_b32"]:>9.2f}')
  bench.write_json(FLAGS.out, bench.tensorflow_result(rows))


if __name__ == '__main__':
  app.run(main)

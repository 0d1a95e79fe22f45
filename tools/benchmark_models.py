"""Benchmark of the image models: size, training and inference speed on this machine.

For the 2D stacked hourglass (`pose2d`) and the multimodal generator, built by the
phases themselves from flags/quickstart.cfg and flags/paper.cfg (so the benchmark times
the networks those flag files train), in float32 and, where this machine computes it
natively (runtime.cpu_has_bfloat16, or a GPU), mixed_bfloat16, it measures:
  - parameters;
  - training examples per second: a compiled Keras train step (Adam, MSE on every
    output) on random data at the flag file's batch, after warm-up steps that include
    tracing;
  - inference milliseconds per example at batch 1, and examples per second at the flag
    file's batch and at the batch the phases run inference with over a whole split
    (split_outputs.inference_batch_size), from one traced function with a free batch
    axis, each batch size warmed up once before it is timed.

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
from fbi3d.models import count_params
from fbi3d.training import phases
from fbi3d.training import runtime
from fbi3d.training import split_outputs

# Each scale's flag file and how much to time there. The paper scale is slow on a CPU:
# a small training batch (--paper_batch), few steps and one timed inference batch.
SCALES = {
    'quickstart': dict(flagfile='flags/quickstart.cfg', train_batch=None, warmup_steps=2,
                       steps=10, infer_runs=20, batch_runs=5),
    'paper': dict(flagfile='flags/paper.cfg', train_batch=4, warmup_steps=1, steps=2,
                  infer_runs=3, batch_runs=1),
}
PRECISIONS = ('float32', 'mixed_bfloat16')
MODELS = ('pose2d', 'generator')

FLAGS = flags.FLAGS
flags.DEFINE_list('scales', list(SCALES), f'Scales to run, from {list(SCALES)}.')
flags.DEFINE_list('precisions', None, f'Policies to run, from {PRECISIONS} (default: '
                  'float32, and mixed_bfloat16 where this machine has native bfloat16 '
                  'or a GPU; emulated bfloat16 is several times slower).')
flags.DEFINE_list('models', list(MODELS), f'Models to run, from {MODELS}.')
flags.DEFINE_integer('steps', None, 'Timed training steps (default: each scale\'s own, '
                     'quickstart 10, paper 2).', lower_bound=1)
flags.DEFINE_integer('paper_batch', None, 'Training batch at the paper scale (default 4).',
                     lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/models.json', 'Where to write the JSON.')
bench.require_file_out()
bench.require_items('scales', 'precisions', 'models')


def scale_config(scale):
  """The run settings of a scale's flag file."""
  return bench.flag_file_config(scale['flagfile'])


def _build(model_name, cfg):
  """The phase's own network (random weights) under the current policy."""
  return phases.make_task(model_name, cfg).build_network()


def _random_targets(model, batch):
  """Random float32 targets shaped like the model's outputs."""
  rng = np.random.default_rng(0)

  def like(tensor):
    return rng.random((batch,) + tuple(tensor.shape[1:]), dtype=np.float32)

  return tf.nest.map_structure(like, model.output)


def _train_rate(model, size, scale, batch, steps):
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


def _inference(model, size, batches, scale):
  """ms per example at batch 1, and examples/s at each batch size of `batches`."""
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
  rates = {}
  for batch in batches:
    many = tf.random.uniform([batch, size, size, 3])
    run(many)  # Warm-up at this shape: its first batch pays for buffers of that size.
    start = time.perf_counter()
    for _ in range(scale['batch_runs']):
      run(many)
    rates[batch] = batch * scale['batch_runs'] / (time.perf_counter() - start)
  return ms_per_example, rates


def _bench(scale_name, precision, model_name):
  scale = dict(SCALES[scale_name])
  if FLAGS.steps:
    scale['steps'] = FLAGS.steps
  cfg = scale_config(scale)
  batch = scale['train_batch'] or cfg.batch_size
  if scale_name == 'paper' and FLAGS.paper_batch:
    batch = FLAGS.paper_batch
  tf.keras.backend.clear_session()
  tf.keras.mixed_precision.set_global_policy(precision)
  tf.keras.utils.set_random_seed(0)
  model = _build(model_name, cfg)
  params = count_params(model, trainable_only=True)
  train_rate, train_seconds = _train_rate(model, cfg.image_size, scale, batch,
                                          scale['steps'])
  inference_batch = split_outputs.inference_batch_size(cfg)
  ms_per_example, rates = _inference(model, cfg.image_size,
                                     sorted({cfg.batch_size, inference_batch}), scale)
  return dict(model=model_name, scale=scale_name, flagfile=scale['flagfile'],
              precision=precision, input_size=cfg.image_size, params=params,
              train_batch=batch, train_steps=scale['steps'], train_seconds=train_seconds,
              train_examples_per_s=train_rate, infer_ms_per_example_b1=ms_per_example,
              flag_file_batch=cfg.batch_size,
              infer_examples_per_s_flag_file_batch=rates[cfg.batch_size],
              inference_batch=inference_batch,
              infer_examples_per_s_inference_batch=rates[inference_batch],
              timed_inference_batches=scale['batch_runs'])


def main(argv):
  bench.no_arguments(argv)
  precisions = FLAGS.precisions
  if precisions is None:
    native = runtime.cpu_has_bfloat16() or tf.config.list_physical_devices('GPU')
    precisions = list(PRECISIONS) if native else ['float32']
  for name, chosen, allowed in (('scales', FLAGS.scales, SCALES),
                                ('precisions', precisions, PRECISIONS),
                                ('models', FLAGS.models, MODELS)):
    unknown = set(chosen) - set(allowed)
    if unknown:
      raise app.UsageError(f'--{name}: unknown {sorted(unknown)}; choose from {list(allowed)}.')
  rows = []
  header = (f'{"model":<10} {"scale":<11} {"precision":<15} {"params":>11} {"batch":>5} '
            f'{"train ex/s":>10} {"b1 ms/ex":>9} {"infer ex/s at flag file batch":>29} '
            f'{"at inference batch":>19}')
  try:
    for scale_name in FLAGS.scales:
      for precision in precisions:
        for model_name in FLAGS.models:
          row = _bench(scale_name, precision, model_name)
          rows.append(row)
          print(f'{model_name} {scale_name} {precision}: {row["params"]:,} params, '
                f'{row["train_examples_per_s"]:.2f} train ex/s, '
                f'{row["infer_ms_per_example_b1"]:.1f} ms at batch 1, '
                f'{row["infer_examples_per_s_flag_file_batch"]:.2f} ex/s at batch '
                f'{row["flag_file_batch"]}, {row["infer_examples_per_s_inference_batch"]:.2f} '
                f'at batch {row["inference_batch"]}', flush=True)
  finally:
    tf.keras.mixed_precision.set_global_policy('float32')
  print('\n' + header)
  for r in rows:
    print(f'{r["model"]:<10} {r["scale"]:<11} {r["precision"]:<15} {r["params"]:>11,} '
          f'{r["train_batch"]:>5} {r["train_examples_per_s"]:>10.2f} '
          f'{r["infer_ms_per_example_b1"]:>9.1f} '
          f'{r["infer_examples_per_s_flag_file_batch"]:>20.2f} (b{r["flag_file_batch"]:<3}) '
          f'{r["infer_examples_per_s_inference_batch"]:>12.2f} (b{r["inference_batch"]})')
  bench.write_json(FLAGS.out, bench.tensorflow_result(rows))


if __name__ == '__main__':
  app.run(main)

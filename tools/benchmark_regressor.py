"""Benchmark of the lifting regressor's training: examples per second against the bound.

In one run, for each width and precision, it measures (median of --repeats):
  - train, fused Adam: the regressor phases' own path (build_regressor, the weighted
    loss of WeightedRegressionModel, fbi3d.optimizers.FusedAdam, Keras fit over
    shuffled batches held in memory);
  - train, Keras Adam: the same with tf.keras.optimizers.Adam (the path before FusedAdam),
    its epochs alternating with the fused path's;
  - step: the traced training step alone (no fit loop, no input stream) on one batch, as
    many times as an epoch has batches, for either optimizer;
  - bound: the same network's matrix multiplications alone, forward and backward (three
    per Dense layer: x W, dy W^T, x^T dy) at the same shapes and precision, in one traced
    function: no training step can be faster on this machine.
and prints the ratios of the fused path to the bound and to the Keras Adam path. On this
2-core CPU the machine's speed changes by half from hour to hour: compare the ratios.

  python tools/benchmark_regressor.py --out=runs/benchmarks/regressor.json
  python tools/benchmark_regressor.py --units=1024 --precisions=float32 --repeats=5
"""

import statistics
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

import bench
from fbi3d import optimizers
from fbi3d import skeleton
from fbi3d.models import regressor
from fbi3d.training import regression_model

PRECISIONS = ('float32', 'mixed_bfloat16')
ADAM = {'fused': optimizers.FusedAdam, 'keras': tf.keras.optimizers.Adam}

FLAGS = flags.FLAGS
flags.DEFINE_list('units', ['1024', '512'], 'Hidden widths to run (1024: the paper, '
                  '512: the quickstart).')
flags.DEFINE_list('precisions', list(PRECISIONS), f'Policies to run, from {PRECISIONS}.')
flags.DEFINE_integer('input_dim', 34 + 51 + 42, 'Input length (127: Final; 34: Base).',
                     lower_bound=1)
flags.DEFINE_integer('batch', 64, 'Training batch.', lower_bound=1)
flags.DEFINE_integer('examples', 4096, 'Training examples per timed epoch.', lower_bound=1)
flags.DEFINE_integer('repeats', 5, 'Timed epochs per path; the median is reported.',
                     lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/regressor.json', 'Where to write the JSON.')
bench.require_file_out()
bench.require_items('units', 'precisions')
flags.register_multi_flags_validator(
    ['examples', 'batch'], lambda v: v['examples'] >= v['batch'],
    message='--examples must be at least --batch: an epoch of no whole batch times nothing.')


def _data(examples, input_dim):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(examples, input_dim)).astype(np.float32)
  y = rng.normal(scale=100.0, size=(examples, skeleton.NUM_JOINTS, 3)).astype(np.float32)
  return x, y


def _trainer(units, optimizer_name, data, steps):
  """A function that trains one epoch of `steps` batches and returns its examples/s,
  after one untimed epoch (tracing)."""
  x, y = data
  tf.keras.utils.set_random_seed(0)
  network = regressor.build_regressor(FLAGS.input_dim, hidden=units)
  optimizer = regressor.regressor_optimizer(1e-3, adam=ADAM[optimizer_name])
  model = regression_model.compile_on_arrays(network, x, y, 'weighted', optimizer)
  optimizer.build(network.trainable_variables)
  batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).repeat()
  batches = batches.batch(FLAGS.batch, drop_remainder=True).prefetch(2)
  callbacks = [regression_model.UpdateAlpha(model)]
  step = tf.function(model.train_step)
  batch = (tf.constant(x[:FLAGS.batch]), tf.constant(y[:FLAGS.batch]))

  def epoch():
    """(examples/s of an epoch of fit, of as many traced steps on one batch)."""
    start = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    fit_rate = steps * FLAGS.batch / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(steps):
      logs = step(batch)
    float(logs['loss'])
    return fit_rate, steps * FLAGS.batch / (time.perf_counter() - start)

  epoch()
  return epoch


def _train_rates(units):
  """{path: examples/s of each of FLAGS.repeats epochs}; the paths' epochs alternate, so
  that a change of the machine's speed meets both."""
  data = _data(FLAGS.examples, FLAGS.input_dim)
  steps = FLAGS.examples // FLAGS.batch
  trainers = {name: _trainer(units, name, data, steps) for name in ADAM}
  rates = {f'{name}_{kind}': [] for name in trainers for kind in ('fit', 'step')}
  for _ in range(FLAGS.repeats):
    for name, epoch in trainers.items():
      fit_rate, step_rate = epoch()
      rates[f'{name}_fit'].append(fit_rate)
      rates[f'{name}_step'].append(step_rate)
  return rates


def _layer_shapes(units):
  """(inputs, outputs) of every Dense layer of build_regressor's network."""
  return ([(FLAGS.input_dim, units)] + [(units, units)] * 4 +
          [(units, skeleton.NUM_JOINTS * 3)])


def _bound_rates(units, dtype):
  """Examples/s of the network's forward and backward matrix products alone."""
  rng = np.random.default_rng(0)
  shapes = _layer_shapes(units)
  weights = [tf.constant(rng.normal(size=s), dtype) for s in shapes]
  xs = [tf.constant(rng.normal(size=(FLAGS.batch, s[0])), dtype) for s in shapes]
  dys = [tf.constant(rng.normal(size=(FLAGS.batch, s[1])), dtype) for s in shapes]

  @tf.function
  def products():
    total = []
    for w, x, dy in zip(weights, xs, dys):
      total.append(tf.reduce_sum(tf.matmul(x, w)[0]))
      total.append(tf.reduce_sum(tf.matmul(dy, w, transpose_b=True)[0]))
      total.append(tf.reduce_sum(tf.matmul(x, dy, transpose_a=True)[0]))
    return tf.add_n(total)

  steps = FLAGS.examples // FLAGS.batch
  products().numpy()
  rates = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    for _ in range(steps):
      products()
    products().numpy()
    rates.append((steps + 1) * FLAGS.batch / (time.perf_counter() - start))
  return rates


def _flops_per_example(units):
  return 6 * sum(a * b for a, b in _layer_shapes(units))


def main(argv):
  bench.no_arguments(argv)
  bad = [p for p in FLAGS.precisions if p not in PRECISIONS]
  if bad:
    raise app.UsageError(f'--precisions: {", ".join(bad)} not in {PRECISIONS}.')
  try:
    widths = [int(u) for u in FLAGS.units]
  except ValueError:
    raise app.UsageError(f'--units: whole numbers, got {",".join(FLAGS.units)}.') from None
  if min(widths) < 1:
    raise app.UsageError(f'--units: at least 1, got {",".join(FLAGS.units)}.')
  rows = []
  for units in widths:
    for precision in FLAGS.precisions:
      tf.keras.backend.clear_session()
      tf.keras.mixed_precision.set_global_policy(precision)
      print(f'units {units}, {precision}: training with fused Adam, Keras Adam, bound',
            flush=True)
      rates = _train_rates(units)
      fused, keras = rates['fused_fit'], rates['keras_fit']
      dtype = tf.bfloat16 if precision == 'mixed_bfloat16' else tf.float32
      bound = _bound_rates(units, dtype)
      row = dict(units=units, precision=precision, input_dim=FLAGS.input_dim,
                 batch=FLAGS.batch, mflop_per_example=_flops_per_example(units) / 1e6,
                 fused_examples_per_s=statistics.median(fused),
                 keras_adam_examples_per_s=statistics.median(keras),
                 bound_examples_per_s=statistics.median(bound),
                 fused_step_examples_per_s=statistics.median(rates['fused_step']),
                 keras_adam_step_examples_per_s=statistics.median(rates['keras_step']),
                 runs=rates, bound_runs=bound)
      row['fused_over_bound'] = row['fused_examples_per_s'] / row['bound_examples_per_s']
      row['fused_over_keras_adam'] = (row['fused_examples_per_s'] /
                                      row['keras_adam_examples_per_s'])
      row['fused_step_over_keras_adam_step'] = (row['fused_step_examples_per_s'] /
                                                row['keras_adam_step_examples_per_s'])
      row['bound_gflops'] = row['bound_examples_per_s'] * row['mflop_per_example'] / 1e3
      rows.append(row)
  header = (f'{"units":>5} {"precision":<15} {"fused ex/s":>10} {"Keras Adam":>10} '
            f'{"bound":>8} {"bound GFLOP/s":>13} {"fused/bound":>11} {"fused/Keras":>11} '
            f'{"step: fused":>11} {"Keras":>6} {"ratio":>5}')
  print(header)
  for r in rows:
    print(f'{r["units"]:>5} {r["precision"]:<15} {r["fused_examples_per_s"]:>10.0f} '
          f'{r["keras_adam_examples_per_s"]:>10.0f} {r["bound_examples_per_s"]:>8.0f} '
          f'{r["bound_gflops"]:>13.0f} {r["fused_over_bound"]:>11.2f} '
          f'{r["fused_over_keras_adam"]:>11.2f} {r["fused_step_examples_per_s"]:>11.0f} '
          f'{r["keras_adam_step_examples_per_s"]:>6.0f} '
          f'{r["fused_step_over_keras_adam_step"]:>5.2f}')
  bench.write_json(FLAGS.out, bench.tensorflow_result(
      rows, examples=FLAGS.examples, repeats=FLAGS.repeats))


if __name__ == '__main__':
  app.run(main)

"""Benchmark of multi-worker training: the pose2d phase's examples/s with one process
and with 1 and 2 workers of --strategy=multi_worker on this machine.

Each setting trains pose2d from scratch at the quickstart flags (global batch
--batch_size) for --epochs epochs of --steps steps into a folder of its own, and reads
its training time from results.json (tracing included, the same for every setting).
On one machine the workers share its cores, so 2 workers measure the strategy's cost
(gradients summed between processes every step), not a gain; across machines each
worker brings its own cores.

  python tools/benchmark_multiworker.py --data_dir=data/synthetic_records
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

from fbi3d.data import manifest as manifest_lib

import bench

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', 'data/synthetic_records', 'Converted records to train on.')
flags.DEFINE_string('flagfile_path', 'flags/quickstart.cfg', 'Flag file of the settings.')
flags.DEFINE_integer('steps', 20, 'Steps per epoch.', lower_bound=1)
flags.DEFINE_integer('epochs', 2, 'Epochs per setting.', lower_bound=1)
flags.DEFINE_integer('batch_size', 32, 'Global batch.', lower_bound=2)
flags.DEFINE_string('out', 'runs/benchmarks/multiworker.json', 'Where to write the JSON.')
bench.require_file_out()


def _args(model_dir):
  return [f'--flagfile={FLAGS.flagfile_path}', '--phase=pose2d',
          f'--data_dir={FLAGS.data_dir}', f'--model_dir={model_dir}',
          f'--steps_per_epoch={FLAGS.steps}', f'--pose2d_epochs={FLAGS.epochs}',
          f'--batch_size={FLAGS.batch_size}', '--val_steps=0']


def _rate(model_dir):
  with open(os.path.join(model_dir, 'pose2d', 'results.json')) as f:
    seconds = json.load(f)['train_seconds']
  return FLAGS.steps * FLAGS.epochs * FLAGS.batch_size / seconds, seconds


def main(argv):
  bench.no_arguments(argv)
  if not os.path.exists(manifest_lib.path_in(FLAGS.data_dir)):
    raise app.UsageError(f'--data_dir={FLAGS.data_dir} holds no converted records '
                         '(manifest.json); run bash quickstart.sh first.')
  root = tempfile.mkdtemp(prefix='fbi3d-multiworker-')
  rows = []
  try:
    for name, workers in (('one process', 0), ('1 worker', 1), ('2 workers', 2)):
      model_dir = os.path.join(root, name.replace(' ', '_'))
      os.makedirs(model_dir)
      print(f'{name}: training pose2d, {FLAGS.epochs} x {FLAGS.steps} steps', flush=True)
      if workers:
        procs, logs = bench.start_local_workers(_args(model_dir), workers, model_dir,
                                                env=dict(TF_CPP_MIN_LOG_LEVEL='2'))
        codes = bench.wait_all(procs, timeout=3600)
      else:
        logs = [os.path.join(model_dir, 'worker0.log')]
        with open(logs[0], 'w') as out:
          codes = [subprocess.call([sys.executable, '-m', 'fbi3d.train',
                                    *_args(model_dir)], stdout=out,
                                   stderr=subprocess.STDOUT)]
      if any(codes):
        raise RuntimeError(f'{name}: exit codes {codes}; see the end of {logs[-1]}:\n' +
                           open(logs[-1]).read()[-2000:])
      rate, seconds = _rate(model_dir)
      rows.append(dict(setting=name, workers=workers, examples_per_s=rate,
                       train_seconds=seconds))
  finally:
    shutil.rmtree(root, ignore_errors=True)
  base = rows[0]['examples_per_s']
  print(f'{"setting":<12} {"examples/s":>10} {"seconds":>8} {"vs one process":>14}')
  for r in rows:
    r['ratio'] = r['examples_per_s'] / base
    print(f'{r["setting"]:<12} {r["examples_per_s"]:>10.1f} {r["train_seconds"]:>8.1f} '
          f'{r["ratio"]:>14.2f}')
  bench.write_json(FLAGS.out, bench.tensorflow_result(
      rows, steps=FLAGS.steps, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size))


if __name__ == '__main__':
  app.run(main)

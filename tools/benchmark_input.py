r"""Benchmark: is an image phase ever waiting on its data?

For each scale (the settings of flags/quickstart.cfg or flags/paper.cfg), in one run:
  - the training pipeline (decode, augmentation, heatmaps; pipeline.make_dataset as
    the image phases call it): examples per second on 1 and on 2 threads;
  - the training step of `pose2d` and of `generator` (the phases' own training models,
    losses and optimizer, on one real batch held in memory, so no input is read):
    examples per second;
and the ratio of each pipeline rate to the faster step, which should be at least 1.5.
The paper scale reads 256-px crops: give --paper_data_dir, or --synthetic_dir (a data
set in the challenge layout, e.g. the quickstart's data/synthetic) and the first
--paper_images of its training split are converted at crop 256 into a scratch folder.
Its steps are timed at --paper_batch (default 4) and are only indicative on a CPU.

  python tools/benchmark_input.py --data_dir=data/synthetic_records \
      --synthetic_dir=data/synthetic --out=runs/benchmarks/input.json
"""

import dataclasses
import os
import shutil
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

import bench
from fbi3d.data import convert
from fbi3d.data import pipeline
from fbi3d.training import config as config_lib
from fbi3d.training import phases
from fbi3d.training import runtime

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', 'data/synthetic_records', 'Converted data set at the '
                    'quickstart\'s crop size (128), for the quickstart scale.')
flags.DEFINE_string('paper_data_dir', None, 'Converted data set at crop 256 for the paper '
                    'scale (default: converted from --synthetic_dir).')
flags.DEFINE_string('synthetic_dir', 'data/synthetic', 'Challenge-layout data set the paper '
                    'scale\'s crops are converted from when --paper_data_dir is not given.')
flags.DEFINE_integer('paper_images', 200, 'Training images converted for the paper scale.',
                     lower_bound=16)
flags.DEFINE_list('scales', ['quickstart', 'paper'], 'Scales to run: quickstart, paper.')
flags.DEFINE_integer('pipeline_batches', 20, 'Batches timed per pipeline setting.',
                     lower_bound=1)
flags.DEFINE_integer('steps', 10, 'Training steps timed at the quickstart scale.',
                     lower_bound=1)
flags.DEFINE_integer('paper_steps', 2, 'Training steps timed at the paper scale.',
                     lower_bound=1)
flags.DEFINE_integer('paper_batch', 4, 'Batch of the paper scale\'s training steps (the '
                     'pipeline runs at paper.cfg\'s batch).', lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/input.json', 'Where to write the JSON.')
bench.require_file_out()
bench.require_items('scales')

FLAG_FILES = {'quickstart': 'flags/quickstart.cfg', 'paper': 'flags/paper.cfg'}
MIN_RATIO = 1.5


def read_flag_file(path):
  """The Config a flag file gives (`python -m fbi3d.train --flagfile=path`), parsed by
  absl into flag values of its own, apart from this tool's flags."""
  values = flags.FlagValues()
  config_lib.define_flags(values)
  values(['benchmark_input', f'--flagfile={path}'])
  return config_lib.from_flags(values)


def pipeline_rate(cfg, threads, batches):
  """Examples/s of the image phases' own training stream (ImagePhase.train_data)."""
  manifest = pipeline.load_manifest(cfg.data_dir)
  stream = phases.make_task('pose2d', cfg).train_data(manifest, cfg.seed, threads=threads)
  return bench.stream_rate(stream, cfg.batch_size, batches, warmup=3)


def step_rate(cfg, phase, steps):
  """Examples/s of the phase's own training step on one batch held in memory."""
  tf.keras.backend.clear_session()
  runtime.set_precision(cfg.mixed_precision)
  task = phases.make_task(phase, cfg)
  network = task.build_network()
  model, _ = task.build_training(network, 1000)
  batch = next(iter(task.train_data(pipeline.load_manifest(cfg.data_dir), cfg.seed)))
  batch = {k: v for k, v in batch.items() if v.dtype != tf.string}
  model.create_trackers(tf.nest.map_structure(tf.TensorSpec.from_tensor, batch))
  step = tf.function(model.train_step)
  step(batch)                     # tracing
  step(batch)
  start = time.perf_counter()
  for _ in range(steps):
    logs = step(batch)
  float(logs['loss'])             # waits for the last step
  return steps * cfg.batch_size / (time.perf_counter() - start)


def paper_data(work):
  if FLAGS.paper_data_dir:
    return FLAGS.paper_data_dir
  if not os.path.isdir(FLAGS.synthetic_dir):
    raise app.UsageError(f'--synthetic_dir={FLAGS.synthetic_dir} is not a folder: give a '
                         'challenge-layout data set (bash quickstart.sh makes one) or '
                         '--paper_data_dir.')
  source = os.path.join(work, 'source')
  for sub in ('IMG', 'POSE'):
    os.makedirs(os.path.join(source, 'Train', sub))
  names = sorted(os.listdir(os.path.join(FLAGS.synthetic_dir, 'Train', 'IMG')))
  names = names[:FLAGS.paper_images]
  keep = {os.path.splitext(n)[0] for n in names}
  for name in names:
    stem = os.path.splitext(name)[0]
    shutil.copy(os.path.join(FLAGS.synthetic_dir, 'Train', 'IMG', name),
                os.path.join(source, 'Train', 'IMG', name))
    shutil.copy(os.path.join(FLAGS.synthetic_dir, 'Train', 'POSE', stem + '.csv'),
                os.path.join(source, 'Train', 'POSE', stem + '.csv'))
  meta = os.path.join(FLAGS.synthetic_dir, 'Train', 'META.csv')
  with open(meta) as f, open(os.path.join(source, 'Train', 'META.csv'), 'w') as out:
    lines = f.read().splitlines()
    out.write('\n'.join([lines[0]] + [l for l in lines[1:] if l.split(',')[0] in keep])
              + '\n')
  records = os.path.join(work, 'records256')
  convert.convert(source, records, splits='Train', crop_size=256, log=lambda *a: None)
  return records


def main(argv):
  bench.no_arguments(argv)
  unknown = set(FLAGS.scales) - set(FLAG_FILES)
  if unknown:
    raise app.UsageError(f'--scales: unknown {sorted(unknown)}; choose from '
                         f'{list(FLAG_FILES)}.')
  logging.set_verbosity(logging.ERROR)
  work = tempfile.mkdtemp(prefix='fbi3d_input_')
  rows = []
  print(f'{"scale":<11} {"what":<34} {"batch":>5} {"ex/s":>9} {"pipeline / step":>16}')
  try:
    for scale in FLAGS.scales:
      cfg = read_flag_file(FLAG_FILES[scale])
      if scale == 'quickstart':
        cfg = dataclasses.replace(cfg, data_dir=FLAGS.data_dir)
        steps, step_batch = FLAGS.steps, cfg.batch_size
      else:
        cfg = dataclasses.replace(cfg, data_dir=paper_data(work))
        steps, step_batch = FLAGS.paper_steps, FLAGS.paper_batch
      manifest = pipeline.load_manifest(cfg.data_dir)
      found = []
      for phase in ('pose2d', 'generator'):
        rate = step_rate(dataclasses.replace(cfg, batch_size=step_batch), phase, steps)
        found.append(dict(scale=scale, what=f'{phase} training step', batch=step_batch,
                          examples_per_s=rate, crop_size=manifest['crop_size'],
                          image_size=cfg.image_size))
      fastest = max(r['examples_per_s'] for r in found)
      for threads in (1, 2):
        rate = pipeline_rate(cfg, threads, FLAGS.pipeline_batches)
        found.append(dict(scale=scale, what=f'pipeline, {threads} thread(s)',
                          batch=cfg.batch_size, examples_per_s=rate,
                          ratio_to_fastest_step=rate / fastest,
                          crop_size=manifest['crop_size'], image_size=cfg.image_size))
      for r in found:
        ratio = r.get('ratio_to_fastest_step')
        print(f'{r["scale"]:<11} {r["what"]:<34} {r["batch"]:>5} '
              f'{r["examples_per_s"]:>9.1f} {"" if ratio is None else f"{ratio:.1f}":>16}')
      rows.extend(found)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  short = [r for r in rows if r.get('ratio_to_fastest_step', MIN_RATIO) < MIN_RATIO]
  print('the pipeline keeps up everywhere (>= 1.5x the faster step)' if not short else
        'the pipeline is short of 1.5x the faster step: ' + '; '.join(
            f'{r["scale"]} {r["what"]} {r["ratio_to_fastest_step"]:.2f}x' for r in short))
  bench.write_json(FLAGS.out, bench.tensorflow_result(rows, min_ratio=MIN_RATIO))


if __name__ == '__main__':
  app.run(main)

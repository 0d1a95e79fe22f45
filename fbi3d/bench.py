"""Shared output of the benchmarks under tools/: every result is printed and saved."""

import json
import os
import time

import tensorflow as tf


def write_json(path, result):
  """Writes `result` as indented JSON to `path` (creating its folder) and says where."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'wrote {path}')


def tensorflow_result(rows, **fields):
  """The JSON result of a TensorFlow benchmark: the machine (cores, TensorFlow version,
  devices), any other `fields`, and the table's rows."""
  return dict(cpu_count=os.cpu_count(), tensorflow=tf.__version__,
              devices=[d.name for d in tf.config.list_physical_devices()], **fields,
              rows=rows)


def stream_rate(dataset, batch_size, batches, warmup):
  """Examples per second read from `dataset` (batches of batch_size): `warmup` batches
  first (tracing, buffers), then `batches` timed."""
  it = iter(dataset)
  for _ in range(warmup):
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch_size / (time.perf_counter() - start)

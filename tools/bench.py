"""Shared plumbing of the benchmarks under tools/ (imported there as `bench`, the scripts'
own folder being first on the path): every result is printed and saved, and local
multi-worker clusters are started and awaited."""

import json
import os
import socket
import subprocess
import sys
import time

import tensorflow as tf

# The project root (tools/ is one folder below it).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flag_file_config(flagfile):
  """The run settings (fbi3d.training.config.Config) of a flag file, a path relative to
  the project root."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from fbi3d.training import config  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  config.define_flags(values)
  values(['benchmark', f'--flagfile={os.path.join(ROOT, flagfile)}'])
  return config.from_flags(values)


def require_items(*names):
  """Refuses, when the flags are read, an empty value of each list flag in `names`: a
  benchmark of no scale (or model, precision, width) would print an empty table and a
  verdict on nothing."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  for name in names:
    flags.register_validator(name, lambda value: value is None or len(value) > 0,
                             message=f'--{name} needs at least one value.')


def writable_file(path):
  """Whether `path` can be made as a file: not a folder, its nearest existing ancestor a
  folder."""
  if not path or os.path.isdir(path):
    return False
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  return os.path.isdir(parent)


def require_file_out(name='out'):
  """Refuses, when the flags are read, an --out that cannot be written as a file (a
  folder, or a path under a file): found before the benchmark runs, not after."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.register_validator(name, lambda value: value is None or writable_file(value),
                           message=f'--{name} is the JSON file to write: give a file path '
                                   '(not a folder, nor a path under a file).')


def no_arguments(argv):
  """Refuses stray arguments: a benchmark takes flags alone (a data folder given as an
  argument would be ignored, and the default data measured)."""
  from absl import app  # pylint: disable=import-outside-toplevel
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])} (the benchmark takes '
                         'flags alone; see --help)')


def write_json(path, result):
  """Writes `result` as indented JSON to `path` (creating its folder) and says where."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temp = f'{path}.tmp{os.getpid()}'
  with open(temp, 'w') as f:
    json.dump(result, f, indent=2, allow_nan=False)
  os.replace(temp, path)
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


def free_ports(count):
  """`count` TCP ports free on localhost now."""
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def start_local_workers(args, count, logs_dir, env=None, cwd=None):
  """Starts `count` processes of `python -m fbi3d.train ARGS --strategy=multi_worker`,
  one multi-worker cluster on localhost ports (TF_CONFIG; worker 0 is the chief), each
  writing its output to logs_dir/worker<i>.log (appended). Returns (processes, logs)."""
  cluster = {'worker': [f'localhost:{p}' for p in free_ports(count)]}
  procs, logs = [], []
  for index in range(count):
    worker_env = dict(os.environ, **(env or {}), TF_CONFIG=json.dumps(
        {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}))
    log = os.path.join(logs_dir, f'worker{index}.log')
    with open(log, 'a') as out:
      procs.append(subprocess.Popen(
          [sys.executable, '-m', 'fbi3d.train', '--strategy=multi_worker', *args],
          env=worker_env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd))
    logs.append(log)
  return procs, logs


def wait_all(procs, timeout):
  """Exit codes of `procs`; kills every one and raises TimeoutExpired past `timeout` s."""
  deadline = time.time() + timeout
  codes = []
  for p in procs:
    try:
      codes.append(p.wait(timeout=max(1, deadline - time.time())))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  return codes

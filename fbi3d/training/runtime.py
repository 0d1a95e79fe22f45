"""Where and in which precision a phase runs: the tf.distribute strategy, the worker
that writes the run, and the Keras precision policy (bfloat16 where the CPU has it)."""

import os

import tensorflow as tf

from fbi3d.training import run as run_lib

# The multi-worker strategy of this process, made once (see make_strategy).
_MULTI_WORKER = []


def make_strategy(name):
  """The strategy of --strategy: default (one device), mirrored (all local GPUs, else
  the CPUs) or multi_worker (reads TF_CONFIG)."""
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    gpus = tf.config.list_logical_devices('GPU')
    if gpus:
      return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices('CPU')]
    return tf.distribute.MirroredStrategy(devices=cpus)
  if name == 'multi_worker':
    if not os.environ.get('TF_CONFIG'):
      raise run_lib.PhaseError('--strategy=multi_worker needs the TF_CONFIG environment '
                               'variable (cluster and task) on every worker.')
    # One per process: it starts this worker's server, which cannot start twice (every
    # phase of --phase=all shares it).
    if not _MULTI_WORKER:
      _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
    return _MULTI_WORKER[0]
  raise run_lib.PhaseError(f'unknown --strategy={name!r}: use default, mirrored or '
                           'multi_worker.')


def _multi_worker(strategy):
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
  """Whether this process writes the run: always, but for a multi-worker strategy's
  workers other than the chief (the task of type chief, else worker 0)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if not _multi_worker(strategy) or resolver is None or resolver.task_type is None:
    return True
  cluster = resolver.cluster_spec().as_dict()
  if 'chief' in cluster:
    return resolver.task_type == 'chief'
  return resolver.task_type == 'worker' and resolver.task_id == 0


def barrier(strategy):
  """Waits until every worker of a multi-worker strategy gets here (a collective sum of
  ones); nothing elsewhere."""
  if _multi_worker(strategy):

    @tf.function
    def count():
      ones = strategy.run(lambda: tf.constant(1.0))
      return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    count().numpy()


def cpu_has_bfloat16():
  """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
  try:
    with open('/proc/cpuinfo') as f:
      flags_line = next((ln for ln in f if ln.startswith('flags')), '')
  except OSError:
    return False
  return any(flag in flags_line.split() for flag in ('avx512_bf16', 'amx_bf16'))


def set_precision(name):
  """Sets the Keras policy: none (float32), bfloat16 (mixed_bfloat16), or auto: bfloat16
  on a CPU-only machine whose CPU has native bfloat16 (where it trains about twice as
  fast), float32 elsewhere (emulated bfloat16 is slow). Returns the policy name."""
  if name == 'auto':
    bf16 = cpu_has_bfloat16() and not tf.config.list_physical_devices('GPU')
    name = 'bfloat16' if bf16 else 'none'
  policy = {'none': 'float32', 'bfloat16': 'mixed_bfloat16'}.get(name)
  if policy is None:
    raise run_lib.PhaseError(f'unknown --mixed_precision={name!r}: use none, bfloat16 or '
                             'auto.')
  tf.keras.mixed_precision.set_global_policy(policy)
  return policy

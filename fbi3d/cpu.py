"""What this machine's CPU offers, read without TensorFlow, and the one TensorFlow
setting that depends on it before TensorFlow loads (`fbi3d/__init__.py`).

oneDNN (TF_ENABLE_ONEDNN_OPTS). TensorFlow 2.15 runs its CPU convolutions through oneDNN
by default on x86. On an AMD EPYC with AVX2 and no AVX-512 (2 cores), the quick-scale
training steps ran faster with oneDNN off: in one run of each after the other,
`pose2d` 228 to 275 against 191 to 228 examples/s and `generator` 155 to 165 against
127 to 149 (README, Quick start). With AVX-512 or native bfloat16, where the quick
scale trains in bfloat16 through oneDNN, nothing is changed. A value the user set is
always kept.
"""

import os

ONEDNN_VARIABLE = 'TF_ENABLE_ONEDNN_OPTS'


def cpu_flags(cpuinfo='/proc/cpuinfo'):
  """The set of flags on the first `flags` line of `cpuinfo` (empty when unreadable)."""
  try:
    with open(cpuinfo) as f:
      line = next((ln for ln in f if ln.startswith('flags')), '')
  except OSError:
    return set()
  return set(line.partition(':')[2].split())


def has_native_bfloat16(flags):
  """Whether CPU `flags` include native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
  return bool({'avx512_bf16', 'amx_bf16'} & set(flags))


def onednn_setting(flags, environ):
  """The value to give TF_ENABLE_ONEDNN_OPTS, or None to leave it: '0' on an x86 CPU
  with AVX2 and no AVX-512 when the variable is unset in `environ`."""
  if ONEDNN_VARIABLE in environ:
    return None
  flags = set(flags)
  if 'avx2' in flags and 'avx512f' not in flags:
    return '0'
  return None


def configure(environ=None, cpuinfo='/proc/cpuinfo'):
  """Sets TF_ENABLE_ONEDNN_OPTS in `environ` (default os.environ) by `onednn_setting`;
  returns the value set, or None. Takes effect only before TensorFlow is imported."""
  environ = os.environ if environ is None else environ
  value = onednn_setting(cpu_flags(cpuinfo), environ)
  if value is not None:
    environ[ONEDNN_VARIABLE] = value
  return value

"""The worker processes of the converter: each runs `python -m fbi3d.data.crop_worker`,
which imports neither TensorFlow nor the caller's main module, so it starts in a fraction
of a second; tasks and results go through pipes, and a worker that dies (killed, out of
memory, a crashing decoder) is reported as a convert_plan.ConversionError instead of hanging the
conversion.
"""

import os
import signal
import subprocess
import sys
from multiprocessing import connection

from fbi3d.data import convert_plan
from fbi3d.data import crop_worker

# The folder holding the fbi3d package, put on a worker's PYTHONPATH.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(crop_worker.__file__))))


def _exit_description(code):
  if code is None:
    return 'still running'
  if code < 0:
    try:
      return f'killed by signal {signal.Signals(-code).name}'
    except ValueError:
      return f'killed by signal {-code}'
  return f'exit code {code}'


class Worker:
  """A process running `python -m fbi3d.data.crop_worker`, with a task and a result pipe.

  The worker runs only crop_worker and what it imports: neither the caller's main module
  nor TensorFlow is loaded in it.
  """

  def __init__(self):
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, env.get('PYTHONPATH')) if p)
    try:
      self.process = subprocess.Popen(
          [sys.executable, '-m', crop_worker.__name__, str(task_r), str(result_w)],
          stdin=subprocess.DEVNULL, pass_fds=(task_r, result_w), env=env)
    except BaseException:
      os.close(task_w)
      os.close(result_r)
      raise
    finally:
      os.close(task_r)
      os.close(result_w)
    self.tasks = connection.Connection(task_w, readable=False)
    self.results = connection.Connection(result_r, writable=False)

  def _died(self, shard):
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      pass
    return convert_plan.ConversionError(
        f'a worker process ({_exit_description(self.process.poll())}) died while '
        f'converting {shard}; finished shards are kept, run again to resume')

  def send(self, task):
    try:
      self.tasks.send(task)
    except OSError:
      raise self._died(task['shard']) from None

  def receive(self, shard):
    """The prepared shard; convert_plan.ConversionError when the worker died or failed."""
    try:
      prepared = self.results.recv()
    except (EOFError, OSError):
      raise self._died(shard) from None
    if 'worker_error' in prepared:
      raise convert_plan.ConversionError(
          f'{shard}: a worker process failed:\n{prepared["worker_error"]}')
    return prepared

  def close(self, kill):
    """Ends the worker: an idle one exits when its task pipe closes; `kill` ends it now."""
    self.tasks.close()
    self.results.close()
    if kill and self.process.poll() is None:
      self.process.terminate()
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()


class WorkerPool:
  """Worker processes that prepare shard tasks; the results come back in task order."""

  def __init__(self, num_workers):
    self.workers = []
    try:
      for _ in range(num_workers):
        self.workers.append(Worker())
    except OSError as e:
      self.close(kill=True)
      raise convert_plan.ConversionError(f'cannot start a worker process ({e})') from e

  def imap(self, tasks, lookahead):
    """Yields crop_worker.prepare_items(task) for each task, in order.

    At most `lookahead` tasks (>= 1) are handed out ahead of the one yielded next, which
    bounds the prepared shards held in memory.
    """
    done = {}
    idle = list(reversed(self.workers))
    busy = {}
    sent = 0
    for index in range(len(tasks)):
      while index not in done:
        while idle and sent < len(tasks) and sent - index < lookahead:
          worker = idle.pop()
          worker.send(tasks[sent])
          busy[worker.results] = (worker, sent)
          sent += 1
        for ready in connection.wait(list(busy)):
          worker, k = busy.pop(ready)
          done[k] = worker.receive(tasks[k]['shard'])
          idle.append(worker)
      yield done.pop(index)

  def close(self, kill=False):
    for worker in self.workers:
      worker.close(kill)

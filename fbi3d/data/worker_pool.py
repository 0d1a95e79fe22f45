"""Worker processes for the data tools: the converter's crops (`crop_worker.prepare_items`)
and the synthetic writer's images (`synthetic.write_range`).

A worker is `python -m fbi3d.data.worker_pool MODULE:FUNCTION TASK_FD RESULT_FD`: it
imports that module and what it imports, never the caller's main module (which for the
converter loads TensorFlow), so it starts in a fraction of a second. It reads tasks from
the pipe TASK_FD and sends FUNCTION(task) back on RESULT_FD until the task pipe closes.
A worker that dies (killed, out of memory, a crashing decoder) is noticed when its pipe
closes and raised as WorkerDied, where a `multiprocessing.Pool` would wait for it for
ever; a task that raises comes back as WorkerFailed with the worker's traceback.
"""

import importlib
import os
import pickle
import signal
import subprocess
import sys
import traceback
from multiprocessing import connection

import cv2

# The folder holding the fbi3d package, put on a worker's PYTHONPATH.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXIT_WAIT_S = 10   # how long a dead or closed worker is waited for before it is killed


class WorkerError(Exception):
  """A worker process could not start, died or failed; the message says which."""


class WorkerDied(WorkerError):
  """A worker process ended while it held `task`; `exit` describes how it ended."""

  def __init__(self, exit_description, task):
    super().__init__(f'a worker process ({exit_description}) died')
    self.exit = exit_description
    self.task = task


class WorkerFailed(WorkerError):
  """`task` raised in a worker process: `traceback` is the worker's text, `exception`
  the exception itself (None when it could not be sent back)."""

  def __init__(self, traceback_text, exception, task):
    super().__init__(f'a worker process failed:\n{traceback_text}')
    self.traceback = traceback_text
    self.exception = exception
    self.task = task


def _exit_description(code):
  if code is None:
    return 'still running'
  if code < 0:
    try:
      return f'killed by signal {signal.Signals(-code).name}'
    except ValueError:
      return f'killed by signal {-code}'
  return f'exit code {code}'


class _Worker:
  """A process serving `function` ('module:name'), with a task and a result pipe."""

  def __init__(self, function):
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, env.get('PYTHONPATH')) if p)
    try:
      self.process = subprocess.Popen(
          [sys.executable, '-m', __name__, function, str(task_r), str(result_w)],
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

  def _died(self, task):
    try:
      self.process.wait(timeout=_EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
      pass
    return WorkerDied(_exit_description(self.process.poll()), task)

  def send(self, task):
    try:
      self.tasks.send(task)
    except OSError:
      raise self._died(task) from None

  def receive(self, task):
    """The function's result for `task`; WorkerDied or WorkerFailed."""
    try:
      answer = self.results.recv()
    except (EOFError, OSError):
      raise self._died(task) from None
    if 'worker_error' in answer:
      raise WorkerFailed(answer['worker_error'], answer.get('exception'), task)
    return answer['result']

  def close(self, kill):
    """Ends the worker: an idle one exits when its task pipe closes; `kill` ends it now."""
    self.tasks.close()
    self.results.close()
    if kill and self.process.poll() is None:
      self.process.terminate()
    try:
      self.process.wait(timeout=_EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()


class WorkerPool:
  """Worker processes that run `function` ('module:name') on tasks; the results come
  back in task order."""

  def __init__(self, num_workers, function):
    self.workers = []
    try:
      for _ in range(num_workers):
        self.workers.append(_Worker(function))
    except OSError as e:
      self.close(kill=True)
      raise WorkerError(f'cannot start a worker process ({e})') from e

  def imap(self, tasks, lookahead):
    """Yields function(task) for each task, in order.

    At most `lookahead` tasks (>= 1) are handed out ahead of the one yielded next, which
    bounds the results held in memory.
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
          done[k] = worker.receive(tasks[k])
          idle.append(worker)
      yield done.pop(index)

  def close(self, kill=False):
    for worker in self.workers:
      worker.close(kill)


def _answer(function, task):
  """function(task) as a message: dict(result=...), or for a task that raised
  dict(worker_error=traceback text, exception=the exception when it pickles)."""
  try:
    return dict(result=function(task))
  except Exception as e:  # pylint: disable=broad-except
    answer = dict(worker_error=traceback.format_exc())
    try:
      pickle.loads(pickle.dumps(e))
      answer['exception'] = e
    except Exception:  # pylint: disable=broad-except
      pass
    return answer


def serve(function, task_fd, result_fd):
  """The worker loop: runs `function` on each task read from task_fd and sends the
  answer back (see `_answer`). Returns when the task pipe is closed or a task is None."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  cv2.setNumThreads(1)
  tasks = connection.Connection(task_fd, writable=False)
  results = connection.Connection(result_fd, readable=False)
  while True:
    try:
      task = tasks.recv()
    except EOFError:
      return
    if task is None:
      return
    try:
      results.send(_answer(function, task))
    except (BrokenPipeError, ConnectionResetError):
      return


def main(argv):
  if len(argv) != 4 or ':' not in argv[1]:
    print(f'usage: {os.path.basename(argv[0])} MODULE:FUNCTION TASK_FD RESULT_FD',
          file=sys.stderr)
    return 2
  module, name = argv[1].split(':')
  serve(getattr(importlib.import_module(module), name), int(argv[2]), int(argv[3]))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))

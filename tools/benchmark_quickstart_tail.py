r"""Benchmark: the end of the quickstart, export and evaluation one after the other or side
by side.

Both commands only read a finished run; each spends most of its time in one Python thread
(start-up, tracing, saving), so on a 2-core machine quickstart.sh runs them together. This
measures what that saves: for --repeats rounds, in alternating order, the wall-clock
seconds of
  - sequential: python -m fbi3d.export, then python -m fbi3d.evaluate --split=test;
  - side by side: both started at once, until both have ended;
each as the quickstart runs them, into a scratch folder (the run itself is not changed:
the evaluation writes to --out_dir there). Prints a table of the medians and their ratio
and writes JSON.

  python tools/benchmark_quickstart_tail.py --model_dir=runs/quickstart/model \
      --out=runs/benchmarks/quickstart_tail.json
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

import bench

flags.DEFINE_string('model_dir', None, 'A finished run of python -m fbi3d.train (every '
                    'phase through refine), e.g. runs/quickstart/model.')
flags.DEFINE_integer('repeats', 2, 'Rounds of each arrangement (alternating).',
                     lower_bound=1)
flags.DEFINE_string('out', 'runs/benchmarks/quickstart_tail.json', 'Where to write the JSON.')
bench.require_file_out()
flags.mark_flag_as_required('model_dir')

ARRANGEMENTS = ('sequential', 'side by side')


def _commands(model_dir, scratch):
  export = [sys.executable, '-m', 'fbi3d.export', f'--model_dir={model_dir}',
            f'--export_dir={os.path.join(scratch, "export")}', '--version=1']
  evaluate = [sys.executable, '-m', 'fbi3d.evaluate', f'--model_dir={model_dir}',
              '--split=test', f'--out_dir={os.path.join(scratch, "eval")}']
  return export, evaluate


def _run(arrangement, model_dir):
  """Wall-clock seconds of one arrangement; RuntimeError when a command fails.

  Each command writes its output to a file, as quickstart.sh does: side by side, a pipe
  that nobody reads until the other command ends could fill and stall its writer.
  """
  scratch = tempfile.mkdtemp(prefix='fbi3d-tail-')
  failures = []
  try:
    commands = _commands(model_dir, scratch)
    logs = [open(os.path.join(scratch, f'command{i}.log'), 'w+') for i in range(len(commands))]
    try:
      start = time.perf_counter()
      if arrangement == 'sequential':
        codes = [subprocess.run(c, stdout=log, stderr=subprocess.STDOUT).returncode
                 for c, log in zip(commands, logs)]
      else:
        procs = [subprocess.Popen(c, stdout=log, stderr=subprocess.STDOUT)
                 for c, log in zip(commands, logs)]
        codes = [p.wait() for p in procs]
      seconds = time.perf_counter() - start
      for command, code, log in zip(commands, codes, logs):
        if code:
          log.seek(0)
          failures.append(f'{" ".join(command[1:3])} failed (exit {code}):\n'
                          f'{log.read()[-2000:]}')
    finally:
      for log in logs:
        log.close()
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  if failures:
    raise RuntimeError('\n'.join(failures))
  return seconds


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  f = flags.FLAGS
  if not os.path.isfile(os.path.join(f.model_dir, 'refine', 'results.json')):
    print(f'benchmark_quickstart_tail: error: {f.model_dir} has no finished refine phase; '
          'give a run whose every phase has finished (bash quickstart.sh makes one).',
          file=sys.stderr)
    sys.exit(1)
  times = {a: [] for a in ARRANGEMENTS}
  try:
    for r in range(f.repeats):
      order = ARRANGEMENTS if r % 2 == 0 else ARRANGEMENTS[::-1]
      for arrangement in order:
        seconds = _run(arrangement, f.model_dir)
        times[arrangement].append(seconds)
        print(f'round {r + 1}/{f.repeats}: {arrangement} {seconds:.1f} s', flush=True)
  except RuntimeError as e:
    print(f'benchmark_quickstart_tail: error: {e}', file=sys.stderr)
    sys.exit(1)
  rows = [dict(arrangement=a, median_s=round(statistics.median(t), 1),
               seconds=[round(s, 1) for s in t]) for a, t in times.items()]
  ratio = rows[1]['median_s'] / rows[0]['median_s']
  print(f'\n{"arrangement":<14} {"median s":>9}  each')
  for row in rows:
    print(f'{row["arrangement"]:<14} {row["median_s"]:>9.1f}  '
          + ', '.join(f'{s:.1f}' for s in row['seconds']))
  print(f'side by side / sequential: {ratio:.2f}')
  bench.write_json(f.out, dict(cpu_count=os.cpu_count(), model_dir=os.path.abspath(f.model_dir),
                               repeats=f.repeats, rows=rows,
                               side_by_side_over_sequential=round(ratio, 3)))


if __name__ == '__main__':
  app.run(main)

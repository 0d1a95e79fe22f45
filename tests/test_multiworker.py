"""--strategy=multi_worker with two worker processes on this machine (TF_CONFIG on
localhost ports): a killed pair resumes from the chief's last checkpoint, both end with
equal weights, and only the chief writes the run."""

import glob
import json
import os
import signal
import time

import pytest

from tools import bench
from tests.conftest import write_tiny_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 4
STEPS = 2


def _start_workers(data_dir, model_dir, logs_dir, tmp_dir):
  """Two workers of one tiny pose2d run; returns their processes and log paths."""
  args = ['--phase=pose2d', f'--data_dir={data_dir}', f'--model_dir={model_dir}',
          '--image_size=32', '--batch_size=4', f'--steps_per_epoch={STEPS}',
          '--val_steps=0', '--eval_split=train', '--hg_stacks=1', '--hg_channels=8',
          '--hg_depth=2', f'--pose2d_epochs={EPOCHS}', '--mixed_precision=none']
  return bench.start_local_workers(args, 2, logs_dir, cwd=REPO, env=dict(
      TMPDIR=tmp_dir, TF_CPP_MIN_LOG_LEVEL='2'))


def _wait(procs):
  return bench.wait_all(procs, timeout=300)


@pytest.mark.slow
def test_two_workers_resume_after_a_kill_and_train_alike(tmp_path):
  data_dir = str(tmp_path / 'records')
  write_tiny_dataset(data_dir, num_examples=16)
  tmp_dir = tmp_path / 'tmp'
  tmp_dir.mkdir()
  logs_dir = str(tmp_path / 'logs')
  os.makedirs(logs_dir)
  model = tmp_path / 'model'
  phase = model / 'pose2d'

  # Killed after the first checkpoint, then started again with the same command.
  procs, logs = _start_workers(data_dir, str(model), logs_dir, str(tmp_dir))
  # The manager's state file names a checkpoint once its files are complete.
  state = phase / 'checkpoints' / 'checkpoint'
  deadline = time.time() + 240
  while not state.exists() and time.time() < deadline and procs[0].poll() is None:
    time.sleep(0.02)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  _wait(procs)
  assert state.exists(), open(logs[0]).read()[-3000:]
  assert not (phase / 'results.json').exists(), 'finished before the kill'
  killed_logs = [open(log).read() for log in logs]
  procs, logs = _start_workers(data_dir, str(model), logs_dir, str(tmp_dir))
  assert _wait(procs) == [0, 0], open(logs[1]).read()[-3000:]
  # Each worker's log holds both of its runs: the second resumed from the chief's
  # checkpoint, and both workers end with the same weights.
  resumed = [open(log).read()[len(before):] for log, before in zip(logs, killed_logs)]
  for text in resumed:
    assert 'pose2d: resuming from ' in text
  lines = [[line.strip() for line in text.splitlines() if line.startswith('pose2d: weights ')]
           for text in resumed]
  assert len(lines[0]) == 1 and lines[0] == lines[1]
  assert lines[0][0].endswith(f'after optimizer step {EPOCHS * STEPS}')
  results = json.loads((phase / 'results.json').read_text())
  assert results['replicas'] == 2 and results['optimizer_steps'] == EPOCHS * STEPS
  assert lines[0][0].split()[2] == results['weights_sha256']
  # Only the chief wrote the run: one TensorBoard file per run of the pair, the chief's
  # checkpoints. The other worker's temporary folder of the second run is gone; only the
  # killed one's is left (a SIGKILL gives no chance to remove it).
  assert len(glob.glob(str(phase / 'logs' / '**' / 'events.out.tfevents.*'),
                       recursive=True)) == 2
  assert sorted(os.listdir(phase)) == ['checkpoints', 'flags.json', 'logs', 'results.json']
  assert len([n for n in os.listdir(tmp_dir) if n.startswith('fbi3d-')]) == 1
  # Not bit for bit where an uninterrupted pair ends: the strategy splits each global
  # batch between the workers, so the step count that seeds a batch's augmentation
  # counts other batches after a resume (README, Training).

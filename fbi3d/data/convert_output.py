"""The output folder of a conversion (see `fbi3d.data.convert`): its lock, the sidecar of
every finished shard, the removal of temporaries and of an earlier conversion, and the
check of the shards already there against a new plan (kept, to resume, or refused).
"""

import json
import os
import shutil

from fbi3d.data import convert_plan
from fbi3d.data import manifest

# 2: the input fingerprint covers file content (version 1: names and sizes).
SIDECAR_VERSION = 2
LOCK = 'LOCK'
SHARD_PATTERN = manifest.SHARD_NAME


class Lock:
  """<output>/.parts/LOCK while a conversion runs: another conversion into the same folder
  is refused with the process id that holds it; a lock whose process has died is taken
  over."""

  def __init__(self, output_dir, log):
    self.path = os.path.join(output_dir, convert_plan.PARTS_DIR, LOCK)
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        holder = self._holder()
        if holder is not None and _alive(holder):
          raise convert_plan.ConversionError(
              f'{output_dir} is being converted by process {holder} (lock {self.path}); '
              'wait for it to finish, or use another --output_dir. If no such conversion '
              f'runs, remove {self.path}.') from None
        log(f'taking over the lock {self.path} of process {holder}, which no longer runs')
        os.remove(self.path)
        continue
      with os.fdopen(fd, 'w') as f:
        f.write(str(os.getpid()))
      return
    raise convert_plan.ConversionError(
        f'could not take the lock {self.path}; remove it and run again.')

  def _holder(self):
    try:
      with open(self.path) as f:
        return int(f.read().strip())
    except (OSError, ValueError):
      return None

  def release(self):
    if self._holder() == os.getpid():
      os.remove(self.path)


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True



def sidecar_path(output_dir, shard):
  return os.path.join(output_dir, convert_plan.PARTS_DIR, shard + '.json')


def load_sidecar(output_dir, shard):
  try:
    with open(sidecar_path(output_dir, shard)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def remove_temporaries(output_dir):
  for folder in (output_dir, os.path.join(output_dir, convert_plan.PARTS_DIR)):
    for name in os.listdir(folder):
      if name.endswith(manifest.TMP_SUFFIX):
        os.remove(os.path.join(folder, name))


STAGING_DIR = '.overwrite'


def make_staging(output_dir, afresh=False):
  """The folder in which --overwrite converts, <output>/.overwrite with its .parts;
  returns its path. What an earlier --overwrite that failed or was stopped left there is
  kept (the conversion resumes from it) unless `afresh`; a new one starts with the input
  hashes already known, so that unchanged inputs are not read twice."""
  staging = os.path.join(output_dir, STAGING_DIR)
  if afresh:
    shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(os.path.join(staging, convert_plan.PARTS_DIR), exist_ok=True)
  hashes = os.path.join(output_dir, convert_plan.PARTS_DIR, convert_plan.HASHES)
  staged = os.path.join(staging, convert_plan.PARTS_DIR, convert_plan.HASHES)
  if os.path.exists(hashes) and not os.path.exists(staged):
    shutil.copy2(hashes, staged)
  return staging


def remove_staging(output_dir):
  shutil.rmtree(os.path.join(output_dir, STAGING_DIR), ignore_errors=True)


def replace_with_staging(output_dir, log):
  """Replaces the conversion in `output_dir` by the finished one in its staging folder:
  the old manifest goes first (an interruption then leaves no manifest, and the data set
  is refused as unconverted, never one that lists other shards), then the old shards and
  their records, then the new ones move in, and the manifest last."""
  staging = os.path.join(output_dir, STAGING_DIR)
  parts = os.path.join(output_dir, convert_plan.PARTS_DIR)
  new_parts = os.path.join(staging, convert_plan.PARTS_DIR)
  path = manifest.path_in(output_dir)
  removed = 0
  if os.path.exists(path):
    os.remove(path)
    removed += 1
  for name in os.listdir(output_dir):
    if SHARD_PATTERN.match(name):
      os.remove(os.path.join(output_dir, name))
      removed += 1
  for name in os.listdir(parts):
    if name.endswith('.json'):
      os.remove(os.path.join(parts, name))
  for name in os.listdir(new_parts):
    os.replace(os.path.join(new_parts, name), os.path.join(parts, name))
  for name in os.listdir(staging):
    if SHARD_PATTERN.match(name):
      os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
  os.replace(manifest.path_in(staging), path)
  if removed:
    log(f'--overwrite: replaced {removed} files of an earlier conversion in {output_dir}')


def _settings_diff(old, new):
  old = old or {}
  keys = sorted(set(old) | set(new))
  changes = [f'{k} {old.get(k)} -> {new.get(k)}' for k in keys if old.get(k) != new.get(k)]
  return 'settings changed: ' + ', '.join(changes)


class PlanMismatch(convert_plan.ConversionError):
  """A folder holds shards of another conversion than the one planned."""


def _plan_mismatch(output_dir, shard, why):
  return PlanMismatch(
      f'{output_dir} holds {shard} from a different conversion ({why}); use a new '
      f'--output_dir or pass --overwrite to replace it')


def check_existing(output_dir, tasks, run_splits, settings):
  """Splits tasks into (done sidecars, tasks to run); raises on a changed plan.

  Shards of splits outside this run are kept when they were made with the same
  settings; their names are returned as kept.
  """
  planned = {t['shard']: t for t in tasks}
  existing = set()
  for name in os.listdir(output_dir):
    if SHARD_PATTERN.match(name):
      existing.add(name)
  for name in os.listdir(os.path.join(output_dir, convert_plan.PARTS_DIR)):
    if name.endswith('.tfrecord.json') and SHARD_PATTERN.match(name[:-len('.json')]):
      existing.add(name[:-len('.json')])
  kept = []
  for name in sorted(existing - set(planned)):
    split = SHARD_PATTERN.match(name).group(1)
    if split in run_splits:
      raise _plan_mismatch(output_dir, name, 'the new plan has other shards for '
                           f'{split}: changed input or --shard_size')
    sidecar = load_sidecar(output_dir, name)
    if sidecar is None or not os.path.exists(os.path.join(output_dir, name)):
      raise _plan_mismatch(output_dir, name, 'it is incomplete and not in this run')
    if sidecar.get('settings') != settings:
      raise _plan_mismatch(output_dir, name, _settings_diff(sidecar.get('settings'), settings))
    kept.append(name)
  done, todo = {}, []
  for task in tasks:
    sidecar = load_sidecar(output_dir, task['shard'])
    if sidecar is not None:
      if sidecar.get('settings') != settings:
        raise _plan_mismatch(output_dir, task['shard'],
                             _settings_diff(sidecar.get('settings'), settings))
      if sidecar.get('planned_ids') != [it['id'] for it in task['items']]:
        raise _plan_mismatch(output_dir, task['shard'], 'its planned ids differ')
      legacy = sidecar.get('version', 1) < SIDECAR_VERSION
      if sidecar.get('input_digest') != task['legacy_digest' if legacy else 'input_digest']:
        raise _plan_mismatch(output_dir, task['shard'], 'its input files changed')
      if legacy:
        task['legacy'] = True
      if os.path.exists(os.path.join(output_dir, task['shard'])):
        done[task['shard']] = sidecar
        continue
    todo.append(task)
  return done, todo, kept

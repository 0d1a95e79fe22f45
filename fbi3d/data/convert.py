"""Converts a folder in the challenge layout into sharded TFRecords and a manifest.

    <out>/manifest.json
    <out>/<split>-NNNNN-of-MMMMM.tfrecord      split lower case: train, val, test
    <out>/.parts/<shard>.json                   one sidecar per finished shard

The shard plan is deterministic: a split's ids (image and POSE file stems) are sorted
and cut into chunks of `shard_size`; shard k holds items [k*S, (k+1)*S) less the ones
skipped as bad input. Every shard is written under a temporary name and renamed when
complete; its sidecar (planned ids, written ids, skipped items, counts and running sums)
is written atomically after it. A second run over the same output keeps the shards whose
sidecar matches the new plan and converts the rest; shards of splits left out of the run
are kept when made with the same settings. The manifest is rebuilt from the sidecars at
the end.

Crop, in order of preference: a square box around the 2D joints (META.csv or a
keypoint side file), the square around a person box (box side file), the whole image.

The plan is made by `fbi3d.data.convert_plan`, the output folder kept by
`fbi3d.data.convert_output`. The work per item (decoding, cropping, labels, JPEG
encoding, the checks of bad input) is done by `fbi3d.data.crop_worker`: in this process
with one worker, else in worker processes (`fbi3d.data.worker_pool`) that run only that
module and never load TensorFlow. This process serializes the prepared examples and
writes every shard and sidecar, in plan order, while the workers prepare the next shards.
"""

import os
import time

import numpy as np
import tensorflow as tf

from fbi3d import fbi
from fbi3d import geometry
from fbi3d import skeleton
from fbi3d.data import convert_output
from fbi3d.data import convert_plan
from fbi3d.data import crop_worker
from fbi3d.data import layout
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import schema
from fbi3d.data import worker_pool

# Items a worker process prepares at a time, and the parts handed out per worker ahead
# of the one written next (this bounds the prepared crops held in memory).
PIECE_SIZE = 100
LOOKAHEAD_PER_WORKER = 3
# What the worker processes run (see fbi3d.data.worker_pool).
PREPARE_ITEMS = f'{crop_worker.__name__}:{crop_worker.prepare_items.__name__}'


# ---------------------------------------------------------------------------------------
# Writing a shard prepared by crop_worker (always in this process).


def _write_shard(output_dir, task, pieces):
  """Writes a shard from its prepared pieces (crop_worker.prepare_items results, in plan
  order), then its sidecar; returns the sidecar.

  The shard is written under a temporary name, synced and renamed when complete. A piece
  with an error (--strict) raises convert_plan.ConversionError; the shard is then not written.
  """
  final = os.path.join(output_dir, task['shard'])
  tmp = final + manifest_lib.TMP_SUFFIX
  has_pose = task['settings']['has_pose']
  written, skipped = [], []
  crop_modes = dict.fromkeys(crop_worker.CROP_MODES, 0)
  actions = [0] * (skeleton.NUM_ACTIONS + 1)
  fbi_counts = np.zeros((skeleton.NUM_FBI_BONES, fbi.NUM_CLASSES), np.int64)
  sums2d, sums3d = manifest_lib.PoseSums(2), manifest_lib.PoseSums(3)
  bones = np.arange(skeleton.NUM_FBI_BONES)
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for piece in pieces:
        for prepared in piece['examples']:
          example = prepared['example']
          writer.write(schema.serialize_example(**example))
          written.append(example['source_id'])
          crop_modes[prepared['crop_mode']] += 1
          actions[example['action'] if example['action'] >= 0 else -1] += 1
          if example['pose2d_valid']:
            sums2d.add(example['pose2d'])
          if has_pose:
            sums3d.add(example['pose3d'])
            fbi_counts[bones, example['fbi']] += 1
        skipped.extend(piece['skipped'])
        if piece['error'] is not None:
          raise convert_plan.ConversionError(piece['error'])
    with open(tmp, 'rb') as f:
      os.fsync(f.fileno())
    os.replace(tmp, final)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  histogram = dict(zip(skeleton.ACTIONS, actions[:-1]))
  histogram['unknown'] = actions[-1]
  sidecar = dict(
      version=convert_output.SIDECAR_VERSION, shard=task['shard'], split=task['split'],
      index=task['index'], num_shards=task['num_shards'], has_pose3d=has_pose,
      settings=task['plan_settings'], input_digest=task['input_digest'],
      input_dir=task.get('input_dir'),
      planned_ids=[it['id'] for it in task['items']], written_ids=written,
      skipped=skipped, num_written=len(written), num_skipped=len(skipped),
      crop_modes=crop_modes, action_histogram=histogram, fbi_counts=fbi_counts.tolist(),
      pose2d_sums=sums2d.to_json(), pose3d_sums=sums3d.to_json())
  manifest_lib.write_json_atomic(
      convert_output.sidecar_path(output_dir, task['shard']), sidecar)
  return sidecar


# ---------------------------------------------------------------------------------------
# The manifest.


def _split_summary(parts):
  parts = sorted(parts, key=lambda p: p['index'])
  num = sum(p['num_written'] for p in parts)
  crop_modes = {m: sum(p['crop_modes'][m] for p in parts) for m in crop_worker.CROP_MODES}
  histogram = {a: sum(p['action_histogram'][a] for p in parts)
               for a in skeleton.ACTIONS + ('unknown',)}
  has_pose3d = bool(parts and parts[0]['has_pose3d'])
  balance = None
  if has_pose3d and num:
    counts = sum(np.asarray(p['fbi_counts'], np.float64) for p in parts)
    balance = (counts / num).tolist()
  return dict(shards=[p['shard'] for p in parts], num_examples=num,
              shard_examples=[p['num_written'] for p in parts],
              num_skipped=sum(p['num_skipped'] for p in parts), has_pose3d=has_pose3d,
              crop_modes=crop_modes, action_histogram=histogram,
              fbi_class_balance=balance)


def _content_notes(key, summary):
  notes = []
  num, modes = summary['num_examples'], summary['crop_modes']
  if not summary['has_pose3d']:
    notes.append(f'{key}: no POSE folder: unlabelled split (pose3d/valid 0, FBI zeros)')
  if num and modes['joints2d'] < num:
    notes.append(f'{key}: no 2D joints (META.csv or --keypoints2d) for '
                 f'{num - modes["joints2d"]} of {num} examples: pose2d/valid 0')
  if modes['whole_image']:
    notes.append(f'{key}: no 2D joints and no person box (--boxes) for '
                 f'{modes["whole_image"]} examples: the crop is the whole image')
  unknown = summary['action_histogram']['unknown']
  if num and unknown:
    notes.append(f'{key}: no action label (META.csv or --actions) for {unknown} of '
                 f'{num} examples: action -1')
  return notes


def _build_manifest(output_dir, input_dir, shard_names, settings, side_paths,
                    plan_notes):
  parts_by_split = {}
  for name in shard_names:
    sidecar = convert_output.load_sidecar(output_dir, name)
    if sidecar is None:
      raise convert_plan.ConversionError(
          f'{convert_output.sidecar_path(output_dir, name)}: missing or unreadable')
    parts_by_split.setdefault(sidecar['split'], []).append(sidecar)
  splits, skipped, notes = {}, [], list(plan_notes)
  for split in layout.SPLITS:
    if split not in parts_by_split:
      continue
    parts = parts_by_split[split]
    summary = _split_summary(parts)
    splits[split.lower()] = summary
    notes.extend(_content_notes(split.lower(), summary))
    for p in sorted(parts, key=lambda p: p['index']):
      skipped.extend(p['skipped'])
  by_reason = {}
  for s in skipped:
    kind = convert_plan.reason_kind(s['reason'])
    by_reason[kind] = by_reason.get(kind, 0) + 1
  train = parts_by_split.get('Train', [])
  normalisation = manifest_lib.normalisation(
      sum(p['num_written'] for p in train),
      manifest_lib.PoseSums.merged([p['pose2d_sums'] for p in train], 2),
      manifest_lib.PoseSums.merged([p['pose3d_sums'] for p in train], 3))
  if not train:
    notes.append('no train split: normalisation statistics are empty')
  return dict(
      schema_version=schema.SCHEMA_VERSION, crop_size=settings['crop_size'],
      margin=settings['margin'], fbi_threshold_deg=settings['fbi_threshold_deg'],
      jpeg_quality=settings['jpeg_quality'], input_dir=os.path.abspath(input_dir),
      side_files={k: (os.path.abspath(v) if v else None) for k, v in side_paths.items()},
      notes=notes, splits=splits, skipped=skipped, skipped_by_reason=by_reason,
      normalisation=normalisation)


# ---------------------------------------------------------------------------------------
# The driver.


def _resolve_splits(input_dir, splits, log):
  if isinstance(splits, str):
    splits = [s for s in splits.split(',') if s.strip()]
  present = []
  for name in splits:
    split = convert_plan.canonical_split(name)
    if split is None:
      # A misspelt name (Vall) would leave that split out of a conversion that ends well.
      raise convert_plan.ConversionError(
          f'--splits: {name.strip()!r} is not a split of the layout; give some of '
          f'{", ".join(layout.SPLITS)}')
    path = layout.split_dir(input_dir, split)
    if not (os.path.isdir(os.path.join(path, layout.IMG_DIR))
            or os.path.isdir(os.path.join(path, layout.POSE_DIR))):
      log(f'warning: split {split} not found in {input_dir} (no {split}/{layout.IMG_DIR}); '
          'skipped')
      continue
    if split not in present:
      present.append(split)
  if not present:
    raise convert_plan.ConversionError(
        f'{input_dir}: no split of the challenge layout found (looked for '
        f'{", ".join(f"{s}/{layout.IMG_DIR}" for s in splits)})')
  return present


def _check_arguments(crop_size, margin, shard_size, workers, jpeg_quality,
                     fbi_threshold_deg):
  if crop_size < 1:
    raise convert_plan.ConversionError(f'--crop_size must be positive, got {crop_size}')
  if not 0 <= margin < geometry.MAX_MARGIN:   # NaN and infinity fail too
    raise convert_plan.ConversionError(
        f'--margin must be a finite number in [0, {geometry.MAX_MARGIN:g}) (the fraction '
        f'of the joints\' box side added on each side; {geometry.MAX_MARGIN:g} would leave '
        f'the person a fifth of the crop), got {margin}')
  if shard_size < 1:
    raise convert_plan.ConversionError(f'--shard_size must be positive, got {shard_size}')
  if workers < 1:
    raise convert_plan.ConversionError(f'--workers must be positive, got {workers}')
  if not 1 <= jpeg_quality <= 100:
    raise convert_plan.ConversionError(f'--jpeg_quality must be in 1..100, got {jpeg_quality}')
  if not 0 <= fbi_threshold_deg < 90:
    raise convert_plan.ConversionError(
        f'--fbi_threshold_deg must be in [0, 90), got {fbi_threshold_deg}')


def _pieces(task, size):
  """The task cut into consecutive parts of at most `size` items, for crop_worker."""
  return [dict(shard=task['shard'], items=task['items'][k:k + size],
               settings=task['settings'], strict=task['strict'])
          for k in range(0, len(task['items']), size)]


def _start_pool(workers):
  """Worker processes that run crop_worker.prepare_items."""
  try:
    return worker_pool.WorkerPool(workers, PREPARE_ITEMS)
  except worker_pool.WorkerError as e:
    raise convert_plan.ConversionError(str(e)) from e


def _from_workers(results):
  """The prepared pieces of `results` (WorkerPool.imap); a worker's death or failure
  becomes the ConversionError that says what to do."""
  try:
    yield from results
  except worker_pool.WorkerDied as e:
    raise convert_plan.ConversionError(
        f'a worker process ({e.exit}) died while converting {e.task["shard"]}; finished '
        'shards are kept, run again to resume') from None
  except worker_pool.WorkerFailed as e:
    raise convert_plan.ConversionError(
        f'{e.task["shard"]}: a worker process failed:\n{e.traceback}') from None


def _run_tasks(tasks, pool, output_dir, log, skipped_before):
  """Prepares shard tasks (in worker processes with a pool, else in this process) and
  writes each shard with its sidecar, in plan order; yields each sidecar.

  Workers prepare parts of PIECE_SIZE items, so this process writes the parts of a shard
  while they prepare the next ones. With --strict, a shard that meets a bad item raises
  ConversionError and is not written; the shards before it are.
  """
  start = time.time()
  written = 0
  skipped = skipped_before
  if pool is None:
    pieces = [_pieces(task, max(len(task['items']), 1)) for task in tasks]
    results = map(crop_worker.prepare_items, (p for ps in pieces for p in ps))
  else:
    pieces = [_pieces(task, PIECE_SIZE) for task in tasks]
    results = _from_workers(pool.imap([p for ps in pieces for p in ps],
                                      lookahead=LOOKAHEAD_PER_WORKER * len(pool.workers)))
  for task, task_pieces in zip(tasks, pieces):
    sidecar = _write_shard(output_dir, task, (next(results) for _ in task_pieces))
    written += sidecar['num_written']
    skipped += sidecar['num_skipped']
    rate = written / max(time.time() - start, 1e-9)
    log(f'{sidecar["split"].lower()} shard {sidecar["index"] + 1}/'
        f'{sidecar["num_shards"]}: {sidecar["num_written"]} written, {skipped} skipped '
        f'so far, {rate:.1f} examples/s')
    yield sidecar


def convert(input_dir, output_dir, *, splits=layout.SPLITS, crop_size=256, margin=0.2,
            shard_size=500, workers=2, strict=False, overwrite=False, keypoints2d=None,
            boxes=None, actions=None, fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG,
            jpeg_quality=90, log=print):
  """Converts a challenge-layout folder into TFRecord shards; returns the manifest.

  Raises ConversionError on fatal problems (and, with `strict`, on the first bad item).
  """
  _check_arguments(crop_size, margin, shard_size, workers, jpeg_quality, fbi_threshold_deg)
  if not os.path.isdir(input_dir):
    raise convert_plan.ConversionError(f'--input_dir {input_dir}: no such folder')
  if os.path.exists(os.path.join(input_dir, layout.WRITING_FILE)):
    raise convert_plan.ConversionError(
        f'--input_dir {input_dir} was being written when its writer stopped '
        f'({layout.WRITING_FILE} is there): it may hold new pictures beside old ones and '
        'labels. Run the command that made it (tools/make_synthetic.py) again to finish it.')
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise convert_plan.ConversionError(
        f'--output_dir {output_dir} is a file; give a folder (it is made if missing).')
  run_splits = _resolve_splits(input_dir, splits, log)
  # Worker processes start while the plan is made; unused, they exit when closed.
  pool = _start_pool(workers) if workers > 1 else None
  finished = False
  try:
    manifest = _convert(input_dir, output_dir, pool, run_splits, crop_size, margin,
                        shard_size, strict, overwrite, keypoints2d, boxes, actions,
                        fbi_threshold_deg, jpeg_quality, log)
    finished = True
  finally:
    if pool is not None:
      pool.close(kill=not finished)
  return manifest


def _convert(input_dir, output_dir, pool, run_splits, crop_size, margin, shard_size,
             strict, overwrite, keypoints2d, boxes, actions, fbi_threshold_deg,
             jpeg_quality, log):
  """convert() after the checks of its arguments, with the worker pool (or None)."""
  side = convert_plan.SideFiles(keypoints2d, boxes, actions)
  settings = dict(schema_version=schema.SCHEMA_VERSION, crop_size=int(crop_size),
                  margin=float(margin), shard_size=int(shard_size),
                  fbi_threshold_deg=float(fbi_threshold_deg),
                  jpeg_quality=int(jpeg_quality))
  os.makedirs(os.path.join(output_dir, convert_plan.PARTS_DIR), exist_ok=True)
  lock = convert_output.Lock(output_dir, log)
  try:
    if not overwrite:
      return _convert_locked(input_dir, output_dir, pool, run_splits, shard_size, strict,
                             side, settings, log)
    # --overwrite converts into a folder of its own inside the output folder and replaces
    # the earlier conversion only once it has succeeded: a failed or stopped conversion
    # leaves the earlier one as it was, and the same command resumes it.
    convert_output.remove_temporaries(output_dir)
    staging = convert_output.make_staging(output_dir)
    try:
      manifest = _convert_locked(input_dir, staging, pool, run_splits, shard_size, strict,
                                 side, settings, log)
    except convert_output.PlanMismatch:
      log(f'--overwrite: the unfinished conversion in {staging} was of other settings or '
          'inputs; starting it afresh')
      staging = convert_output.make_staging(output_dir, afresh=True)
      manifest = _convert_locked(input_dir, staging, pool, run_splits, shard_size, strict,
                                 side, settings, log)
    convert_output.replace_with_staging(output_dir, log)
    convert_output.remove_staging(output_dir)
    return manifest
  finally:
    lock.release()


def _convert_locked(input_dir, output_dir, pool, run_splits, shard_size, strict, side,
                    settings, log):
  """_convert() while holding the output folder's lock."""
  content = convert_plan.ContentHashes(input_dir, output_dir)
  tasks, plan_notes, matched = [], list(side.notes), set()
  for split in run_splits:
    items, has_pose, notes = convert_plan.plan_split(input_dir, split, side, strict)
    plan_notes.extend(notes)
    matched.update(tuple(it['key']) for it in items)
    num_shards = -(-len(items) // shard_size)
    for k in range(num_shards):
      chunk = items[k * shard_size:(k + 1) * shard_size]
      tasks.append(dict(
          split=split, index=k, num_shards=num_shards,
          shard=convert_plan.shard_name(split, k, num_shards), items=chunk, strict=bool(strict),
          plan_settings=settings, input_digest=convert_plan.input_digest(chunk, content),
          legacy_digest=convert_plan.input_digest(chunk),
          input_dir=os.path.abspath(input_dir),
          settings=dict(settings, has_pose=has_pose)))
  plan_notes.extend(side.unmatched_notes(matched))

  convert_output.remove_temporaries(output_dir)
  content.save()
  done, todo, kept = convert_output.check_existing(
      output_dir, tasks, {s.lower() for s in run_splits}, settings)
  if done:
    log(f'resuming: {len(done)} of {len(tasks)} shards already converted')
  legacy = sum(1 for t in tasks if t.get('legacy'))
  if legacy:
    log(f'{legacy} shards were converted by an earlier version that fingerprinted input '
        'names and sizes only; their content is not checked: pass --overwrite to convert '
        'them again')
  if kept:
    _check_kept_source(output_dir, input_dir, kept)
    log(f'keeping {len(kept)} shards of splits not in this run')
  skipped_before = sum(s['num_skipped'] for s in done.values())
  try:
    for _ in _run_tasks(todo, pool, output_dir, log, skipped_before):
      pass
  finally:
    convert_output.remove_temporaries(output_dir)

  manifest = _build_manifest(output_dir, input_dir, [t['shard'] for t in tasks] + kept,
                             settings, side.paths, plan_notes)
  if not any(entry['num_examples'] for entry in manifest['splits'].values()):
    raise convert_plan.ConversionError(
        f'{input_dir}: nothing converted in {", ".join(run_splits)} '
        f'({len(manifest["skipped"])} item(s) skipped'
        + (f', e.g. {manifest["skipped"][0]["reason"]}' if manifest['skipped'] else
           ': no pictures found') + '); no manifest written.')
  manifest_lib.write_json_atomic(manifest_lib.path_in(output_dir), manifest)
  return manifest


def _check_kept_source(output_dir, input_dir, kept):
  """Refuses to keep shards of other splits that the folder's manifest says were
  converted from another input folder (its input_dir): one data set would mix two."""
  before = manifest_lib.json_field(manifest_lib.path_in(output_dir), 'input_dir')
  # Without a manifest (a conversion stopped before writing it) each shard's sidecar
  # says where it came from; with one, the manifest does (a resume from a moved input
  # folder rewrites the manifest, not the sidecars of the shards it found done).
  sources = ([(kept[0], before)] if before else
             [(name, (convert_output.load_sidecar(output_dir, name) or {}).get('input_dir'))
              for name in kept])
  for name, source in sources:
    if source and os.path.realpath(source) != os.path.realpath(input_dir):
      # A plan mismatch: an --overwrite that meets it in its staging folder starts afresh.
      raise convert_output.PlanMismatch(
          f'{output_dir} holds {name} (and the rest of its split) converted from '
          f'{source}, not from {input_dir}; one data set would mix the two. Use a new '
          '--output_dir, or pass --overwrite to replace it.')

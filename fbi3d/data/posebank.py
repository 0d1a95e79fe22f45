"""The pose bank: every shared motion-capture clip as 17-joint poses in one set, with
near-identical consecutive frames removed, split by subject, and its joint-angle coverage.

A bank holds, for N poses: `poses` [N, 17, 3] (world frame of `fbi3d.data.mocap`: mm,
z up, as the clip places the person), `subject` [N] (CMU subject id), `clip` [N] (index
into `clips`, one entry per motion file, in `mocap.find_motion_files` order) and `frame`
[N] (the pose's frame index in its file, counted from 0), plus `split` [N] ('train',
'val' or 'test').

De-duplication (`dedup_indices`). Within a clip, the first frame is kept; a later frame
is kept when some joint of its root-relative pose lies at least `threshold_mm` from the
same joint of the last KEPT frame (the maximum over joints of the Euclidean distance),
and dropped otherwise. Comparing with the last kept frame, not the previous one, means a
slow drift is kept once it adds up to the threshold. Root-relative: walking at constant
posture is not new information for a lifter whose targets are root-relative. The default,
DEFAULT_DEDUP_MM = 20 mm, is well below a lifter's error (50 mm and more), so a dropped
frame differs from a kept one by less than the lifter can resolve; at 120 fps it keeps
most frames of fast motion (a hand swinging at 1.2 to 3.6 m/s moves 10 to 30 mm a frame)
and drops long stretches of standing still (159,599 frames of the shared folders give
70,033 poses). `tools/pose_bank.py` reports the counts for other
thresholds next to the chosen one.

Splits (`split_names`). Subjects TEST_SUBJECTS = (11, 131) are the test split, always:
no option puts them in training. The val subjects (default DEFAULT_VAL_SUBJECTS: 2, everyday
behaviours, and 8, walking, 6,883 poses at 20 mm) choose settings; every other subject
trains. Val subjects have bodies of their own, as the test subjects do: the Daz folder's
subjects 10, 12 to 14 and 35 to 39 share one retargeted body (identical bone lengths), so
a Daz subject held out still has its body in training and flatters a lifter (52.7 mm on
Daz subjects 13 and 39 where the test subjects gave 76 mm).

Joint-angle coverage (`coverage`). Each pose is put in its root-aligned frame: origin at
the pelvis, z up (the world's vertical), x along the horizontal direction from the right
hip to the left hip, y = z cross x (the way the body faces). Each of the 16 bones
(skeleton.BONES) has a unit direction parent->child in that frame; the unit sphere is cut
into `azimuth_bins` x `height_bins` cells of equal area (equal steps of azimuth times
equal steps of the direction's z, which by Archimedes' theorem gives equal areas: 12 x 6 =
72 cells of about 0.17 sr, some 24 degrees across, by default). A bone's coverage is the
fraction of cells that at least `min_count` poses fall in; a set's coverage is the mean
over the 16 bones. The two hip bones stay near +x / -x in this frame by construction, so
no set reaches 1; the number compares sets measured the same way.
"""

import dataclasses
import json
import os
import time

import numpy as np

from fbi3d import skeleton
from fbi3d.data import joint_maps
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import mocap
from fbi3d.data import motion

TEST_SUBJECTS = (11, 131)
DEFAULT_VAL_SUBJECTS = (2, 8)
DEFAULT_DEDUP_MM = 20.0
SPLITS = ('train', 'val', 'test')
AZIMUTH_BINS = 12
HEIGHT_BINS = 6
REPORTED_THRESHOLDS_MM = (0.0, 10.0, 20.0, 40.0, 80.0)


@dataclasses.dataclass
class PoseBank:
  """Poses of many clips; see the module docstring for the fields."""
  poses: np.ndarray
  subject: np.ndarray
  clip: np.ndarray
  frame: np.ndarray
  split: np.ndarray
  clips: list

  def __len__(self):
    return int(len(self.poses))

  def select(self, split):
    """The poses [M, 17, 3] of one split ('train', 'val' or 'test')."""
    if split not in SPLITS:
      raise ValueError(f'unknown split {split!r}: use one of {", ".join(SPLITS)}.')
    return self.poses[self.split == split]

  def subset(self, mask):
    """A PoseBank of the poses where `mask` [N] is true (same clip list)."""
    mask = np.asarray(mask, bool)
    return PoseBank(self.poses[mask], self.subject[mask], self.clip[mask], self.frame[mask],
                    self.split[mask], self.clips)


# ---------------------------------------------------------------------------------------
# De-duplication.


def dedup_indices(poses, threshold_mm=DEFAULT_DEDUP_MM):
  """Indices of the frames of one clip [F, 17, 3] (mm) to keep: the first, then each
  frame whose root-relative pose has a joint at least `threshold_mm` from the last kept
  frame's. threshold_mm 0 keeps every frame."""
  if not (np.isfinite(threshold_mm) and threshold_mm >= 0.0):
    raise ValueError(f'the de-duplication threshold must be a finite number >= 0 mm, got '
                     f'{threshold_mm} (an infinite one keeps one frame of each clip).')
  poses = np.asarray(poses, np.float64)
  if poses.ndim != 3 or poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'dedup_indices: expected poses [F, {skeleton.NUM_JOINTS}, 3], got '
                     f'{poses.shape}.')
  if not len(poses):
    return np.zeros(0, np.int64)
  rel = poses - poses[:, skeleton.ROOT:skeleton.ROOT + 1]
  kept = [0]
  last = rel[0]
  for i in range(1, len(rel)):
    if np.max(np.linalg.norm(rel[i] - last, axis=-1)) >= threshold_mm:
      kept.append(i)
      last = rel[i]
  return np.asarray(kept, np.int64)


# ---------------------------------------------------------------------------------------
# Splits.


def check_val_subjects(val_subjects):
  """The val subjects as a sorted tuple of ints; ValueError when one is a test subject."""
  val = tuple(sorted({int(s) for s in val_subjects}))
  clash = [s for s in val if s in TEST_SUBJECTS]
  if clash:
    raise ValueError(f'val subject(s) {", ".join(map(str, clash))} are test subjects; '
                     f'subjects {" and ".join(map(str, TEST_SUBJECTS))} are held out for the '
                     'test split: choose other val subjects.')
  return val


def split_names(subjects, val_subjects=DEFAULT_VAL_SUBJECTS):
  """The split of each subject id [N]: 'test' for TEST_SUBJECTS, 'val' for
  `val_subjects`, 'train' otherwise (a string array [N])."""
  val = check_val_subjects(val_subjects)
  subjects = np.asarray(subjects, np.int64)
  out = np.full(subjects.shape, 'train', dtype='<U5')
  out[np.isin(subjects, val)] = 'val'
  out[np.isin(subjects, TEST_SUBJECTS)] = 'test'
  return out


# ---------------------------------------------------------------------------------------
# Coverage.


def root_aligned(poses):
  """Poses [N, 17, 3] (world, z up) in their root-aligned frames (module docstring)."""
  poses = np.asarray(poses, np.float64)
  rel = poses - poses[:, skeleton.ROOT:skeleton.ROOT + 1]
  across = rel[:, 4, :2] - rel[:, 1, :2]          # right hip -> left hip, horizontal
  norm = np.linalg.norm(across, axis=-1, keepdims=True)
  across = np.where(norm > 1e-9, across / np.maximum(norm, 1e-9), [1.0, 0.0])
  c, s = across[:, 0], across[:, 1]
  # Rows: the new x (across), y (z cross x) and z axes in world coordinates.
  zeros, ones = np.zeros_like(c), np.ones_like(c)
  rotation = np.stack([np.stack([c, s, zeros], -1), np.stack([-s, c, zeros], -1),
                       np.stack([zeros, zeros, ones], -1)], axis=1)
  return np.einsum('nij,nkj->nki', rotation, rel)


def direction_cells(poses, azimuth_bins=AZIMUTH_BINS, height_bins=HEIGHT_BINS):
  """The sphere cell of every bone of every pose [N, 16] (int, in
  [0, azimuth_bins * height_bins)), from the root-aligned bone directions."""
  aligned = root_aligned(poses)
  parents = [p for p, _ in skeleton.BONES]
  children = [c for _, c in skeleton.BONES]
  vec = aligned[:, children] - aligned[:, parents]
  vec = vec / np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-9)
  azimuth = np.mod(np.arctan2(vec[..., 1], vec[..., 0]), 2.0 * np.pi)
  a = np.minimum((azimuth / (2.0 * np.pi) * azimuth_bins).astype(np.int64), azimuth_bins - 1)
  h = np.clip(((vec[..., 2] + 1.0) / 2.0 * height_bins).astype(np.int64), 0, height_bins - 1)
  return h * azimuth_bins + a


def coverage(poses, azimuth_bins=AZIMUTH_BINS, height_bins=HEIGHT_BINS, min_count=1):
  """Joint-angle coverage of poses [N, 17, 3] (module docstring): dict(mean, the mean
  over bones of the fraction of occupied cells; per_bone {child joint name: fraction};
  cells, the number of cells)."""
  if azimuth_bins < 1 or height_bins < 1 or min_count < 1:
    raise ValueError('coverage: azimuth_bins, height_bins and min_count must be >= 1.')
  cells = azimuth_bins * height_bins
  per_bone = {}
  poses = np.asarray(poses, np.float64)
  idx = direction_cells(poses, azimuth_bins, height_bins) if len(poses) else None
  for b, (_, child) in enumerate(skeleton.BONES):
    if idx is None:
      per_bone[skeleton.JOINT_NAMES[child]] = 0.0
      continue
    counts = np.bincount(idx[:, b], minlength=cells)
    per_bone[skeleton.JOINT_NAMES[child]] = float(np.sum(counts >= min_count)) / cells
  return dict(mean=float(np.mean(list(per_bone.values()))), per_bone=per_bone,
              cells=int(cells))


# ---------------------------------------------------------------------------------------
# Building, saving and loading.


def build(mocap_dir, *, threshold_mm=DEFAULT_DEDUP_MM, val_subjects=DEFAULT_VAL_SUBJECTS,
          strict=False, log=None):
  """Reads every motion file under `mocap_dir` (all its folders) into a PoseBank.

  Each clip is mapped to the 17 joints (`mocap.load_clip`, `joint_maps.to_h36m`, units
  checked) and de-duplicated (`dedup_indices`). A file that cannot be read is skipped and
  listed, or, with `strict`, stops the build. Returns (bank, summary dict).
  """
  say = log or (lambda _: None)
  if not os.path.isdir(mocap_dir):
    raise ValueError(f'{mocap_dir}: motion capture folder not found (set --mocap_dir).')
  val = check_val_subjects(val_subjects)
  files = mocap.find_motion_files(mocap_dir)
  if not files:
    raise ValueError(f'{mocap_dir}: no .amc or .bvh file found.')
  start = time.time()
  poses, subjects, clip_ids, frames, clips, skipped = [], [], [], [], [], []
  kept_at = {float(t): 0 for t in set(REPORTED_THRESHOLDS_MM) | {float(threshold_mm)}}
  for path in files:
    rel = os.path.relpath(path, mocap_dir)
    try:
      subject = mocap.subject_of(path)
      if subject < 0:
        # Without a subject a clip cannot be kept out of the test or val split.
        raise ValueError(f'{rel}: its name does not start with a subject number; name it '
                         'as CMU does (SUBJECT_CLIP.bvh or .amc, e.g. 11_01.amc)')
      clip = mocap.load_clip(path)
      clip_poses = joint_maps.to_h36m(clip)
    except (motion.MocapError, ValueError, OSError) as e:
      if strict:
        raise
      skipped.append(dict(file=rel, error=str(e)))
      say(f'skipped {rel}: {e}')
      continue
    keep = dedup_indices(clip_poses, threshold_mm)
    for t in kept_at:
      kept_at[t] += len(keep) if t == threshold_mm else len(dedup_indices(clip_poses, t))
    poses.append(clip_poses[keep])
    subjects.append(np.full(len(keep), subject, np.int64))
    clip_ids.append(np.full(len(keep), len(clips), np.int64))
    frames.append(keep)
    fmt = joint_maps.clip_format(clip)
    clips.append(dict(file=rel, subject=subject, folder=rel.split(os.sep)[0],
                      skeleton=joint_maps.find_joint_map(clip.joint_names, fmt),
                      frame_rate=clip.frame_rate, frames=int(clip.num_frames),
                      kept=int(len(keep))))
    say(f'{rel}: {clip.num_frames} frames, {len(keep)} kept '
        f'({time.time() - start:.0f} s)')
  if not clips:
    raise ValueError(f'{mocap_dir}: no motion file could be read '
                     f'({len(skipped)} skipped).')
  subject = np.concatenate(subjects)
  bank = PoseBank(np.concatenate(poses), subject, np.concatenate(clip_ids),
                  np.concatenate(frames), split_names(subject, val), clips)
  warnings = []
  for name, wanted in (('test', TEST_SUBJECTS), ('val', val)):
    missing = [s for s in wanted if s not in set(subject.tolist())]
    if missing:
      warnings.append(f'{name} subject(s) {", ".join(map(str, missing))} have no clip in '
                      f'{mocap_dir}: the {name} split lacks them')
      say(f'warning: {warnings[-1]}')
  # One capture in two releases (CMU's ASF/AMC and a BVH conversion of it) counts twice.
  by_stem = {}
  for clip in clips:
    by_stem.setdefault(os.path.splitext(os.path.basename(clip['file']))[0], []).append(
        clip['file'])
  twice = {stem: files for stem, files in sorted(by_stem.items()) if len(files) > 1}
  if twice:
    stem, files = next(iter(twice.items()))
    warnings.append(f'{len(twice)} clip name(s) are read from more than one file, their '
                    f'poses kept once per file (the same capture in two releases?), '
                    f'e.g. {stem}: {", ".join(files)}')
    say(f'warning: {warnings[-1]}')
  summary = summarise(bank, threshold_mm=threshold_mm, val_subjects=val)
  summary.update(mocap_dir=os.path.abspath(mocap_dir), skipped=skipped, warnings=warnings,
                 kept_at_threshold_mm={f'{t:g}': int(n) for t, n in sorted(kept_at.items())},
                 seconds=round(time.time() - start, 1))
  return bank, summary


def summarise(bank, *, threshold_mm, val_subjects):
  """Counts and coverage per split and in all, as a JSON-ready dict."""
  splits = {}
  for name in SPLITS:
    mask = bank.split == name
    cov = coverage(bank.poses[mask])
    splits[name] = dict(
        poses=int(mask.sum()),
        subjects=sorted({int(s) for s in bank.subject[mask]}),
        clips=int(len(set(bank.clip[mask].tolist()))),
        coverage=round(cov['mean'], 4),
        coverage_per_bone={k: round(v, 4) for k, v in cov['per_bone'].items()})
  total = coverage(bank.poses)
  return dict(
      poses=len(bank), frames_read=int(sum(c.get('frames', 0) for c in bank.clips)),
      dedup_threshold_mm=float(threshold_mm),
      test_subjects=list(TEST_SUBJECTS), val_subjects=[int(s) for s in val_subjects],
      splits=splits, coverage_all=round(total['mean'], 4),
      coverage_definition=(
          f'mean over the 16 bones of the fraction of {AZIMUTH_BINS} x {HEIGHT_BINS} '
          'equal-area sphere cells that the bone direction (parent to child, in the '
          'root-aligned frame: z up, x from the right hip to the left hip) falls in for at '
          'least one pose'),
      dedup_rule=('a frame is kept when some root-relative joint lies at least the '
                  'threshold from the same joint of the last kept frame of its clip'),
      clips=bank.clips)


def save(bank, summary, path):
  """Writes the bank as `path` (.npz) and its summary as the same name with .json."""
  if not path.endswith('.npz'):
    raise ValueError(f'{path}: the bank is an .npz file; give a path ending in .npz.')
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = path[:-4] + f'.tmp{os.getpid()}.npz'
  np.savez_compressed(tmp, poses=bank.poses.astype(np.float32), subject=bank.subject,
                      clip=bank.clip, frame=bank.frame, split=bank.split,
                      clip_files=np.array([c['file'] for c in bank.clips]))
  os.replace(tmp, path)
  json_path = path[:-4] + '.json'
  manifest_lib.write_json_atomic(json_path, summary, indent=1, final_newline=True)
  return path, json_path


def skipped_report(skipped, json_path, shown=5):
  """The lines that say which motion files the bank left out, and why: the first
  `shown` of them, and where the rest are listed."""
  if not skipped:
    return 'pose_bank: every motion file was read.'
  lines = [f'pose_bank: {len(skipped)} motion file(s) could not be read and are not in '
           f'the bank (all of them under "skipped" in {json_path}; --strict stops at '
           'the first):']
  lines += [f'  {s["file"]}: {s["error"]}' for s in skipped[:shown]]
  if len(skipped) > shown:
    lines.append(f'  ... and {len(skipped) - shown} more')
  return '\n'.join(lines)


def load(path):
  """A PoseBank from an .npz written by `save` (its clips from the JSON beside it when
  present, else only their file names)."""
  if not os.path.isfile(path):
    raise ValueError(f'{path}: pose bank not found; make it with python '
                     'tools/pose_bank.py --out=PATH.')
  try:
    fields = manifest_lib.read_npz(path, ('poses', 'subject', 'clip', 'frame', 'split'),
                                   ('clip_files',))
  except ValueError as e:
    raise ValueError(f'{path}: not a readable pose bank ({e}); make it again with python '
                     'tools/pose_bank.py --out=PATH.') from None
  files = [str(f) for f in fields.pop('clip_files', [])]
  clips = [dict(file=f) for f in files]
  json_path = path[:-4] + '.json'
  if os.path.isfile(json_path):
    try:
      with open(json_path) as f:
        summary = json.load(f)
      clips = summary.get('clips', clips) if isinstance(summary, dict) else None
      if not isinstance(clips, list):
        raise ValueError('no list of clips')
    except (ValueError, OSError, UnicodeDecodeError) as e:
      raise ValueError(f'{json_path}: the summary beside the pose bank is not readable '
                       f'({e}); make the bank again with python tools/pose_bank.py, or '
                       'delete the summary (the bank then names its clips by file '
                       'alone).') from None
  fields['poses'] = fields['poses'].astype(np.float64)
  fields['split'] = fields['split'].astype(str)
  poses = fields['poses']
  if poses.ndim != 3 or poses.shape[1:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'{path}: poses have shape {poses.shape}, not [N, '
                     f'{skeleton.NUM_JOINTS}, 3]; make the pose bank again.')
  short = [k for k in ('subject', 'clip', 'frame', 'split') if len(fields[k]) != len(poses)]
  if short:
    raise ValueError(f'{path}: {", ".join(short)} hold(s) another number of entries than '
                     f'the {len(poses)} poses; make the pose bank again.')
  bad = np.flatnonzero(~np.isfinite(poses).all(axis=(1, 2)))
  if len(bad):
    i = int(bad[0])
    raise ValueError(f'{path}: {len(bad)} pose(s) hold NaN or infinite coordinates, the '
                     f'first at row {i} (subject {fields["subject"][i]}, clip '
                     f'{fields["clip"][i]}, frame {fields["frame"][i]}); make the pose '
                     'bank again.')
  _check_rows(path, fields, len(files))
  return PoseBank(clips=clips, **fields)


def _check_rows(path, fields, num_files):
  """Refuses a bank whose rows a reader would take wrongly: a split name outside SPLITS
  (its poses would drop out of every split unseen), a test subject outside the test
  split or another subject inside it (held-out poses trained on, or the reverse), a clip
  index outside the bank's clip list, a negative frame."""
  split, subject = fields['split'], fields['subject']
  again = 'make the pose bank again with python tools/pose_bank.py.'

  def first(mask, what):
    i = int(np.flatnonzero(mask)[0])
    raise ValueError(f'{path}: {int(mask.sum())} row(s) {what}, the first row {i} (subject '
                     f'{subject[i]}, split {split[i]!r}, clip {fields["clip"][i]}, frame '
                     f'{fields["frame"][i]}); {again}')
  unknown = ~np.isin(split, SPLITS)
  if unknown.any():
    first(unknown, f'name a split other than {", ".join(SPLITS)}')
  held_out = np.isin(subject, TEST_SUBJECTS)
  if (held_out != (split == 'test')).any():
    first(held_out != (split == 'test'),
          f'put a test subject ({", ".join(map(str, TEST_SUBJECTS))}) outside the test '
          'split or another subject inside it')
  if num_files and ((fields['clip'] < 0) | (fields['clip'] >= num_files)).any():
    first((fields['clip'] < 0) | (fields['clip'] >= num_files),
          f'name a clip outside the bank\'s {num_files} clip files')
  if (fields['frame'] < 0).any():
    first(fields['frame'] < 0, 'have a negative frame')


def format_table(summary):
  """Markdown table of a bank summary: poses, subjects and coverage per split."""
  lines = ['| split | subjects | clips | poses | joint-angle coverage |', '|---|---|---|---|---|']
  for name in SPLITS:
    s = summary['splits'][name]
    lines.append(f'| {name} | {", ".join(map(str, s["subjects"]))} | {s["clips"]} | '
                 f'{s["poses"]} | {s["coverage"]:.3f} |')
  lines.append(f'| all | | {len(summary["clips"])} | {summary["poses"]} | '
               f'{summary["coverage_all"]:.3f} |')
  kept = ', '.join(f'{t} mm: {n}' for t, n in summary['kept_at_threshold_mm'].items())
  lines.append(f'\n{summary["frames_read"]} frames read; de-duplication at '
               f'{summary["dedup_threshold_mm"]:g} mm. Poses kept by threshold: {kept}.')
  return '\n'.join(lines)

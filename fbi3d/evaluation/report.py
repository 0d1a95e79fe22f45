"""The evaluation report: tables from predictions, and their CSV, JSON and markdown.

Everything here is NumPy and pandas on arrays already collected (fbi3d/evaluation/
challenge.py runs the networks), so each table can be checked on hand-made predictions.
Rows are methods (Base, Final, ablations); Table 1 has the paper's columns A1..A15 and
Avg, in millimetres; a cell of an action with no examples is empty, never zero.
"""

import math
import os

import numpy as np
import pandas as pd

from fbi3d import fbi as fbi_lib
from fbi3d import metrics
from fbi3d import skeleton
from fbi3d.data import manifest as manifest_lib

CROPS_TEXT = {
    'estimated': 'Crops: found by the system. The 2D estimator runs on each converted crop '
                 '(cut around the ground-truth 2D with the converter\'s margin, standing '
                 'in for a person detector\'s box), and every model below reads the '
                 'square around the joints it found, as `predict` crops a picture; 2D '
                 'errors are measured in that crop.',
    'gt': 'Crops: the converted crops, cut around the ground-truth 2D joints (an '
          'optimistic protocol: no estimate decides where the models look).',
}


def regressor_tables(predictions, targets, actions):
  """Tables of 3D predictions against the ground truth.

  Args:
    predictions: {row name: [N, 17, 3] mm}, in the order of the rows.
    targets: [N, 17, 3] ground truth, mm.
    actions: [N] action index per example (-1: unknown, counted in Avg only).

  Returns:
    dict of DataFrames: 'mpjpe' and 'pa_mpjpe' (rows x A1..A15, Avg), 'per_joint'
    (joint names x rows, protocol 1), and 'per_example': {row: [N] MPJPE} (arrays).
  """
  per_example = {k: metrics.mpjpe_per_example(v, targets) for k, v in predictions.items()}
  pa = {k: metrics.pa_mpjpe_per_example(v, targets) for k, v in predictions.items()}
  per_joint = pd.DataFrame(
      {k: metrics.joint_errors(v, targets).mean(axis=0) for k, v in predictions.items()},
      index=list(skeleton.JOINT_NAMES))
  return dict(mpjpe=metrics.per_action_table(per_example, actions),
              pa_mpjpe=metrics.per_action_table(pa, actions),
              per_joint=per_joint, per_example=per_example)


def implied_fbi(predictions, fbi_targets, threshold_deg=fbi_lib.DEFAULT_THRESHOLD_DEG):
  """FBI accuracy of the labels implied by each row's 3D output.

  Returns (overall {row: accuracy}, per-bone DataFrame of bone names x rows).
  """
  overall, per_bone = {}, {}
  for name, pred in predictions.items():
    overall[name], per_bone[name] = fbi_lib.fbi_accuracy(
        fbi_lib.fbi_labels(pred, threshold_deg), fbi_targets)
  return overall, pd.DataFrame(per_bone, index=list(skeleton.FBI_BONE_NAMES))


def pose_difficulty(targets, mean_pose):
  """How unusual each pose is: MPJPE [N] (mm) between it and the mean training pose."""
  mean = np.broadcast_to(np.asarray(mean_pose, np.float64), np.shape(targets))
  return metrics.mpjpe_per_example(mean, targets)


def error_by_difficulty(difficulty, errors, bins=5):
  """Mean error of each row in `bins` equal-count bins of difficulty.

  Returns a DataFrame with columns low, high (the bin's difficulty range, mm), count, and
  one column per row of `errors` ({row: [N]}).
  """
  difficulty = np.asarray(difficulty, np.float64)
  order = np.argsort(difficulty, kind='stable')
  records = []
  for part in np.array_split(order, min(bins, len(order))):
    record = dict(low=float(difficulty[part].min()), high=float(difficulty[part].max()),
                  count=int(len(part)))
    for name, err in errors.items():
      record[name] = float(np.asarray(err)[part].mean())
    records.append(record)
  return pd.DataFrame.from_records(records)


def write_csv(frame, path):
  """CSV of a table; NaN cells are left empty."""
  frame.to_csv(path, na_rep='', float_format='%.4f')
  return path


def _jsonable(value):
  if isinstance(value, pd.DataFrame):
    return {str(k): _jsonable(v) for k, v in value.to_dict(orient='index').items()}
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, (np.floating, float)):
    return None if math.isnan(float(value)) else float(value)
  if isinstance(value, np.integer):
    return int(value)
  return value


def write_json(obj, path):
  """JSON of nested dicts, lists and DataFrames (NaN as null), written atomically."""
  manifest_lib.write_json_atomic(path, _jsonable(obj), indent=2)
  return path


def _left_out_note(coarse):
  """The sentences that say how many labelled examples the coarse-3D table leaves out
  (without true 2D; and, of those with it, without camera intrinsics)."""
  count = max((m.get('num_without_2d', 0) for m in coarse.values()), default=0)
  note = ''
  if count:
    note = (f' {count} labelled examples have no true 2D (pose2d/valid 0): MPJPE, '
            'PA-MPJPE, the 2D error and the asymmetry leave them out (the root is solved '
            'from the true 2D); the depth error and FBI count them.')
  count = max((m.get('num_without_intrinsics', 0) for m in coarse.values()), default=0)
  if count:
    note += (f' {count} examples with true 2D have no camera intrinsics: MPJPE, PA-MPJPE '
             'and the asymmetry leave them out (the root is solved through the camera).')
  return note


def _pct(value):
  return '' if value is None else f'{100 * value:.1f}%'


def fbi_breakdown_lines(m, threshold_deg):
  """Report lines for where the FBI branch's errors lie, from its measures `m`
  (`fbi_confusion`, `fbi_by_angle`); [] for measures made before they existed."""
  if 'fbi_confusion' not in m or 'fbi_by_angle' not in m:
    return []
  counts = np.asarray(m['fbi_confusion'], np.float64)
  total = max(counts.sum(), 1.0)
  names = fbi_lib.CLASS_NAMES
  lines = ['Share of all bones (%) by true class (rows) and the branch\'s class (columns); '
           'the diagonal adds up to the accuracy:', '',
           '| true \\ predicted | ' + ' | '.join(names) + ' | all |',
           '|---' * (len(names) + 2) + '|']
  for i, name in enumerate(names):
    lines.append(f'| {name} | ' + ' | '.join(f'{100 * c / total:.1f}' for c in counts[i])
                 + f' | {100 * counts[i].sum() / total:.1f} |')
  lines += ['', f'By the bone\'s true angle out of the image plane (the classes part at '
            f'{threshold_deg:g} degrees):', '',
            '| angle (degrees) | bones (%) | FBI branch accuracy (%) |', '|---|---|---|']
  for row in m['fbi_by_angle']:
    accuracy = '' if row['accuracy'] is None else f'{100 * row["accuracy"]:.1f}'
    lines.append(f'| {row["low"]:g} to {row["high"]:g} | {100 * row["bones"]:.1f} | '
                 f'{accuracy} |')
  return lines + ['']


def _unknown_action_note(r, counts):
  """', and N of unknown action (in Avg only)' when the listed counts miss some of the
  labelled examples, else ''."""
  unknown = int(r.get('num_labelled', 0)) - sum(int(v) for v in counts.values())
  return f', and {unknown} of unknown action (in Avg only)' if unknown > 0 else ''


def write_markdown(r, path):
  """report.md: every table of the evaluation's results `r` laid out, with the figures."""
  lines = [f'# Evaluation on the {r["split"]} split', '',
           f'Run `{r["model_dir"]}`, data `{r["data_dir"]}`: {r["num_examples"]} examples, '
           f'{r["num_labelled"]} with 3D ground truth. Millimetres throughout.', '',
           CROPS_TEXT[r.get('crops', 'gt')]
           + (' Flip averaging: every image model\'s outputs are the mean over the crop '
              'and its mirror image.' if r.get('flip_test') else '')
           + (' The regressors read the true 2D joints (--regressor_2d=gt), not the 2D '
              'estimator\'s: their rows bound the method, they do not measure it.'
              if r.get('regressor_2d') == 'gt' else ''), '']
  if 'submission' in r['files']:
    lines += [f'Final\'s predictions, one CSV per image as the evaluation server reads '
              f'them: `{r["files"]["submission"]}/` and `{r["files"]["submission_zip"]}`.',
              '']
  lines += ['Checkpoints read (relative to the run folder; sha256 of each index file): '
            + ', '.join(f'{p} `{c["path"]}` ({c["sha256"]})'
                        for p, c in r['checkpoints'].items()) + '.', '']
  if 'table1_mpjpe' not in r:
    lines.append(r.get('note', ''))
    _write_text(path, lines)
    return
  counts = r['per_action_counts']
  lines += ['## Table 1: MPJPE per action (protocol 1)', '',
            metrics.format_table(r['table1_mpjpe']), '',
            'Examples per action: ' + ', '.join(f'{k} {v}' for k, v in counts.items())
            + _unknown_action_note(r, counts)
            + '. An empty cell: no example of that action. Avg is the mean over all '
            'examples (not the mean of the actions\' cells).', '',
            '![MPJPE per action](per_action.png)', '',
            '## PA-MPJPE per action (protocol 2)', '',
            metrics.format_table(r['table1_pa_mpjpe']), '']
  if r['ablations']:
    lines += ['## Ablations of Final', '', '| variant | MPJPE | PA-MPJPE | MPJPE - Final |',
              '|---|---|---|---|']
    row = r.get('final_row', 'Final')
    final = r['table1_mpjpe'].loc[row]
    lines.append(f'| {row} | {final["Avg"]:.1f} | '
                 f'{r["table1_pa_mpjpe"].loc[row, "Avg"]:.1f} | |')
    for a in r['ablations']:
      lines.append(f'| {a["row"]} | {a["mpjpe_mm"]:.1f} | {a["pa_mpjpe_mm"]:.1f} | '
                   f'{a["change_vs_final_mm"]:+.1f} |')
    lines.append('')
  if r.get('seed_spread'):
    lines += [f'## Over {len(r["seeds"])} seeds', '', f'Every regressor row trained under '
              f'seeds {", ".join(map(str, r["seeds"]))} (the first is the run\'s own; the '
              'others in `seeds/<seed>/`), on the same features: MPJPE mean and sample '
              'standard deviation (n - 1), and the row minus Final paired by seed.', '',
              '| row | MPJPE per seed | mean +- sd | row - Final, mean +- sd |',
              '|---|---|---|---|']
    for row in r['seed_spread']:
      lines.append(f'| {row["row"]} | {", ".join(f"{v:.1f}" for v in row["mpjpe_mm"])} | '
                   f'{row["mean_mm"]:.1f} +- {row["std_mm"]:.1f} | '
                   f'{row["minus_final_mean_mm"]:+.1f} +- {row["minus_final_std_mm"]:.1f} |')
    lines.append('')
  if r.get('oracles'):
    lines += ['## Oracle bounds', '', 'The regressor fed ground truth in place of what the '
              'image models estimate: how far Final is from what its inputs allow.', '',
              '| oracle | MPJPE | PA-MPJPE | Final - oracle |', '|---|---|---|---|']
    for o in r['oracles']:
      lines.append(f'| {o["row"]} | {o["mpjpe_mm"]:.1f} | {o["pa_mpjpe_mm"]:.1f} | '
                   f'{o["final_minus_oracle_mm"]:+.1f} |')
    lines.append('')
  lines += ['## MPJPE per joint', '',
            metrics.format_table(r['per_joint_mpjpe'], index_name='joint'), '']
  p2 = r['pose2d']
  lines += ['## 2D estimator', '',
            f'2D error {p2["error_px"]:.2f} px on {p2["image_size"]}-px crops '
            f'({p2["error_px_at_record_crop"]:.2f} px at the converted crop size); '
            f'PCK@{p2["pck_threshold_px"]:.1f} px {_pct(p2["pck"])}, '
            f'PCK@{p2["pck_threshold_px"] / 2:.1f} px {_pct(p2["pck_half"])}.', '']
  lines += ['## Coarse-3D branch before and after adversarial fine-tuning', '',
            '| weights | MPJPE | PA-MPJPE | depth error | 2D error (px) | bone asymmetry |',
            '|---|---|---|---|---|---|']
  for phase, m in r['coarse3d'].items():
    if 'coarse3d_mpjpe_mm' in m:
      asym = m.get('coarse3d_bone_asymmetry_mm')
      lines.append(f'| {phase} | {m["coarse3d_mpjpe_mm"]:.1f} | '
                   f'{m["coarse3d_pa_mpjpe_mm"]:.1f} | {m["depth_error_mm"]:.1f} | '
                   f'{m["xy_error_px"]:.2f} | '
                   f'{"" if asym is None else f"{asym:.1f}"} |')
  truth = next((m['true_bone_asymmetry_mm'] for m in r['coarse3d'].values()
                if 'true_bone_asymmetry_mm' in m), None)
  lines += ['', 'The 2.5D output is turned into millimetres with the ground-truth root '
            'position (as integral-regression evaluations do). Bone asymmetry: the mean '
            '|left - right| length of the six paired bones (mm), a plausibility measure'
            + ('' if truth is None else f'; the ground truth\'s own: {truth:.1f} mm')
            + '.' + _left_out_note(r['coarse3d']), '']
  # The branch Final reads (after adversarial fine-tuning, when the run has it).
  phase = r.get('fbi_branch_phase')
  coarse = r['coarse3d'].get(phase) or next(iter(r['coarse3d'].values()))
  lines += ['## FBI accuracy (%)', '',
            f'FBI branch{f" ({phase})" if phase in r["coarse3d"] else ""} '
            f'{_pct(coarse.get("fbi_accuracy"))}; always each bone\'s most '
            f'frequent {coarse.get("fbi_majority_of", "training")} class '
            f'{_pct(coarse.get("fbi_majority_accuracy"))}; implied '
            'by the 3D output: '
            + ', '.join(f'{k} {_pct(v)}' for k, v in r['implied_fbi_accuracy'].items())
            + '.', '', metrics.format_table(r['fbi_per_bone_pct'], index_name='bone'),
            '', '![FBI accuracy per bone](fbi_per_bone.png)', '']
  lines += fbi_breakdown_lines(coarse, r.get('fbi_threshold_deg',
                                             fbi_lib.DEFAULT_THRESHOLD_DEG))
  lines += ['## Error against pose difficulty', '',
            'Difficulty: MPJPE between the true pose and the mean training pose. '
            'Equal-count bins:', '',
            metrics.format_table(
                _difficulty_frame(r['error_by_difficulty']), index_name='bin'), '',
            '![Error against pose difficulty](error_vs_difficulty.png)', '']
  if 'gallery_figure' in r['files']:
    lines += ['## Gallery', '', 'From Final\'s best to its worst example: the crop with the '
              'detected 2D joints (bones coloured by the predicted FBI), the true 3D pose '
              'and Final\'s.', '', '![Gallery](gallery.png)', '']
  _write_text(path, lines)


def _difficulty_frame(records):
  frame = pd.DataFrame.from_records(records)
  frame.index = [f'{a:.0f}-{b:.0f} mm' for a, b in zip(frame['low'], frame['high'])]
  return frame.drop(columns=['low', 'high'])


def _write_text(path, lines):
  with open(path + '.tmp', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  os.replace(path + '.tmp', path)

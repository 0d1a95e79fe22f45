"""The evaluation report: tables from predictions, and their CSV, JSON and markdown.

Everything here is NumPy and pandas on arrays already collected (fbi3d/evaluation/
challenge.py runs the networks), so each table can be checked on hand-made predictions.
Rows are methods (Base, Final, ablations); Table 1 has the paper's columns A1..A15 and
Avg, in millimetres; a cell of an action with no examples is empty, never zero.
"""

import json
import math
import os

import numpy as np
import pandas as pd

from fbi3d import fbi as fbi_lib
from fbi3d import metrics
from fbi3d import skeleton


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
  with open(path + '.tmp', 'w') as f:
    json.dump(_jsonable(obj), f, indent=2)
  os.replace(path + '.tmp', path)
  return path

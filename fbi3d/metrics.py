"""Metrics named after the protocols they implement, and the per-action table.

- MPJPE ("protocol 1"): mean Euclidean joint error after aligning the roots; in NumPy
  (float64, the measurements) and, for the training logs, as a float32 graph op
  (mpjpe_tensor: the same protocol, equal to float32 precision, tests/test_regressor.py).
- PA-MPJPE ("protocol 2"): mean joint error after Procrustes alignment.
- 2D: mean pixel error and PCK (fraction of joints within a pixel threshold).
"""

import numpy as np
import pandas as pd
import tensorflow as tf

from fbi3d import geometry
from fbi3d import skeleton


def _check(pred, target, name):
  pred = np.asarray(pred, dtype=np.float64)
  target = np.asarray(target, dtype=np.float64)
  if pred.shape != target.shape:
    raise ValueError(f'{name}: shapes differ: {pred.shape} vs {target.shape}.')
  return pred, target


def joint_errors(pred, target, root=skeleton.ROOT):
  """Root-aligned Euclidean error per joint: [N, J, 3] -> [N, J]."""
  pred, target = _check(pred, target, 'joint_errors')
  pred = geometry.root_relative(pred, root)
  target = geometry.root_relative(target, root)
  return np.linalg.norm(pred - target, axis=-1)


def mpjpe_per_example(pred, target):
  """Protocol 1, per example: [N, J, 3] -> [N] (units of the input)."""
  return joint_errors(pred, target).mean(axis=-1)


def mpjpe(pred, target):
  return float(np.mean(mpjpe_per_example(pred, target)))


def mpjpe_tensor(pred, target, root=skeleton.ROOT):
  """Protocol 1 of a batch of poses [B, J, 3] as a float32 scalar tensor (inside a
  training step, where the NumPy mpjpe cannot run)."""
  pred = tf.cast(pred, tf.float32)
  target = tf.cast(target, tf.float32)
  pred = pred - pred[:, root:root + 1]
  target = target - target[:, root:root + 1]
  return tf.reduce_mean(tf.norm(pred - target, axis=-1))


def pa_mpjpe_per_example(pred, target):
  """Protocol 2, per example: error after the best similarity transform."""
  pred, target = _check(pred, target, 'pa_mpjpe')
  aligned = geometry.procrustes_align(pred, target)
  return np.linalg.norm(aligned - target, axis=-1).mean(axis=-1)


def pa_mpjpe(pred, target):
  return float(np.mean(pa_mpjpe_per_example(pred, target)))


def error_2d(pred, target):
  """Per-joint 2D pixel error: [N, J, 2] -> [N, J]."""
  pred, target = _check(pred, target, 'error_2d')
  return np.linalg.norm(pred - target, axis=-1)


def pck(pred, target, threshold):
  """Fraction of 2D joints within `threshold` pixels of the target."""
  return float(np.mean(error_2d(pred, target) <= threshold))


def per_action_table(errors, actions):
  """The paper's Table 1 layout: one row per method, columns A1..A15 and Avg.

  errors: {row name: per-example errors [N]}; actions: action index per example [N]
  (-1 for unknown). A cell is the mean error of that action's examples, NaN (shown
  empty) when the action has none. Avg is the mean over all examples, the challenge's
  score; with unequal action counts it differs from the mean of the 15 columns.
  """
  actions = np.asarray(actions)
  rows = {}
  for name, err in errors.items():
    err = np.asarray(err, dtype=np.float64)
    if err.shape != actions.shape:
      raise ValueError(
          f'per_action_table: row {name!r} has {err.shape[0]} errors for '
          f'{actions.shape[0]} actions.')
    row = {}
    for i, column in enumerate(skeleton.ACTION_COLUMNS):
      mask = actions == i
      row[column] = float(err[mask].mean()) if mask.any() else np.nan
    row['Avg'] = float(err.mean()) if err.size else np.nan
    rows[name] = row
  columns = list(skeleton.ACTION_COLUMNS) + ['Avg']
  return pd.DataFrame.from_dict(rows, orient='index', columns=columns)


def format_table(table, digits=1, index_name=''):
  """Markdown text of a table (a per-action table or any DataFrame): NaN cells empty
  (an action with no examples), floats with `digits` decimals."""
  def cell(v):
    if isinstance(v, (float, np.floating)):
      return '' if np.isnan(v) else f'{v:.{digits}f}'
    return str(v)
  lines = [f'| {index_name} | ' + ' | '.join(str(c) for c in table.columns) + ' |',
           '|' + '---|' * (len(table.columns) + 1)]
  for name, *values in table.itertuples(name=None):
    lines.append(f'| {name} | ' + ' | '.join(cell(v) for v in values) + ' |')
  return '\n'.join(lines)


def bone_asymmetry(poses):
  """Plausibility: mean over examples and the 6 left/right bone pairs (hip, thigh, shin,
  shoulder, upper arm, forearm; skeleton.LEFT_RIGHT_PAIRS) of |left length - right
  length|, in the units of poses [N, 17, 3]. 0 for any real body of symmetric build."""
  poses = np.asarray(poses, np.float64)
  parents = skeleton.PARENTS

  def length(j):
    return np.linalg.norm(poses[:, j] - poses[:, parents[j]], axis=-1)

  return float(np.mean([np.abs(length(l) - length(r)) for l, r in skeleton.LEFT_RIGHT_PAIRS]))

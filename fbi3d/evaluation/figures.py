"""The evaluation's figures: bars per action and per bone, error against pose
difficulty, and a gallery of examples from the best to the worst (matplotlib, no
screen; the drawing of skeletons is fbi3d.viz's)."""

import math

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from fbi3d import fbi  # pylint: disable=wrong-import-position
from fbi3d import geometry  # pylint: disable=wrong-import-position
from fbi3d import keys  # pylint: disable=wrong-import-position
from fbi3d import skeleton  # pylint: disable=wrong-import-position
from fbi3d import viz  # pylint: disable=wrong-import-position
from fbi3d.data import pipeline  # pylint: disable=wrong-import-position


def per_action_bars(table, path, title=None, rows=None):
  """Grouped bars of a per-action table (rows x A1..A15, Avg): one colour per row.
  Actions without examples have no bar."""
  rows = [r for r in (rows or table.index)]
  columns = list(table.columns)
  width = 0.8 / max(1, len(rows))
  fig, ax = plt.subplots(figsize=(min(16.0, 6.0 + 0.12 * len(columns) * len(rows)), 4.0))
  x = np.arange(len(columns))
  for i, row in enumerate(rows):
    values = table.loc[row, columns].to_numpy(dtype=np.float64)
    ax.bar(x + (i - (len(rows) - 1) / 2) * width, np.nan_to_num(values, nan=0.0),
           width, label=row)
  labels = [f'{c}\n{skeleton.ACTIONS[i][:8]}' if i < skeleton.NUM_ACTIONS else c
            for i, c in enumerate(columns)]
  ax.set_xticks(x)
  ax.set_xticklabels(labels, fontsize=6)
  ax.set_ylabel('MPJPE (mm)')
  ax.legend(fontsize=7, ncol=min(3, len(rows)))
  ax.grid(axis='y', alpha=0.3)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def fbi_accuracy_bars(frame, path, title='FBI accuracy per bone'):
  """Horizontal grouped bars of accuracies in percent (bones x series)."""
  bones = list(frame.index)
  series = list(frame.columns)
  height = 0.8 / max(1, len(series))
  fig, ax = plt.subplots(figsize=(7.0, 0.25 * len(bones) * max(2, len(series)) / 2 + 1.2))
  y = np.arange(len(bones))
  for i, name in enumerate(series):
    ax.barh(y + (i - (len(series) - 1) / 2) * height, frame[name].to_numpy(np.float64),
            height, label=name)
  ax.set_yticks(y)
  ax.set_yticklabels(bones, fontsize=7)
  ax.invert_yaxis()
  ax.set_xlim(0, 100)
  ax.set_xlabel('accuracy (%)')
  ax.axvline(100 / fbi.NUM_CLASSES, color='k', lw=0.8, ls=':', label='chance (3 classes)')
  ax.legend(fontsize=7, loc='lower right')
  ax.grid(axis='x', alpha=0.3)
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def error_vs_difficulty(difficulty, errors, binned, path):
  """Per-example MPJPE of each method against pose difficulty (dots), with the mean of
  each equal-count bin (lines). binned: DataFrame with low, high and one column per
  method, as from report.error_by_difficulty."""
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  centres = (binned['low'].to_numpy() + binned['high'].to_numpy()) / 2
  for i, (name, err) in enumerate(errors.items()):
    colour = f'C{i}'
    ax.scatter(difficulty, err, s=5, alpha=0.25, color=colour)
    ax.plot(centres, binned[name].to_numpy(), '-o', color=colour, label=f'{name} (bin mean)')
  ax.set_xlabel('pose difficulty: MPJPE of the true pose to the mean training pose (mm)')
  ax.set_ylabel('MPJPE (mm)')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def pose_gallery(examples, path, per_row=2):
  """Examples side by side: the crop with its 2D skeleton (bones coloured by FBI), the
  true 3D pose and the predicted one. examples: dicts with image, pose2d [17, 2], fbi
  [14], truth and prediction [17, 3] (mm), caption."""
  rows = max(1, math.ceil(len(examples) / per_row))
  fig = plt.figure(figsize=(3 * 2.3 * per_row, 2.5 * rows))
  for i, ex in enumerate(examples):
    r, c = divmod(i, per_row)
    base = r * 3 * per_row + c * 3
    ax = fig.add_subplot(rows, 3 * per_row, base + 1)
    ax.imshow(ex['image'])
    viz.draw_skeleton(ax, ex['pose2d'], ex.get('fbi'), linewidth=1.4, marker_size=5)
    size = ex['image'].shape[0]
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.axis('off')
    ax.set_title(ex.get('caption', ''), fontsize=7)
    for k, (key, title) in enumerate((('truth', 'true 3D'), ('prediction', 'predicted'))):
      ax3 = fig.add_subplot(rows, 3 * per_row, base + 2 + k, projection='3d')
      viz.draw_skeleton_3d(ax3, ex[key])
      viz.set_3d_view(ax3, [ex['truth'], ex['prediction']], 10, -80, title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def gallery_examples(cfg, split, manifest, cache, predictions, labelled, errors, count,
                     boxes):
  """`count` examples for `pose_gallery`, spread from Final's best to its worst
  (`errors`: Final's MPJPE of each labelled example), with their crops cut to `boxes`
  (None: the converted crops)."""
  if count <= 0 or not labelled.any():
    return []
  order = np.argsort(errors, kind='stable')
  picks = order[np.unique(np.linspace(0, len(order) - 1, count).round().astype(int))]
  positions = np.flatnonzero(labelled)[picks]
  crop = manifest['crop_size']
  wanted = set(positions.tolist())
  images = {}
  ds = pipeline.make_dataset(cfg.data_dir, split, 64, image_size=crop, deterministic=True,
                             boxes=boxes)
  start = 0
  for batch in ds:
    size = int(batch[keys.IMAGE].shape[0])
    for p in range(start, start + size):
      if p in wanted:
        images[p] = (batch[keys.IMAGE][p - start].numpy() * 255).round().astype(np.uint8)
    start += size
    if start > positions.max():
      break
  examples = []
  for rank, p in zip(picks, positions):
    examples.append(dict(
        image=images[int(p)],
        pose2d=geometry.resize_points(cache[keys.DETECTED2D][p], cfg.image_size, crop),
        fbi=np.argmax(cache[keys.FBI_PROBS][p], axis=-1),
        truth=cache[keys.POSE3D][p], prediction=predictions['refine'][p],
        caption=f'{cache["source_id"][p]}: Final {errors[rank]:.0f} mm'))
  return examples

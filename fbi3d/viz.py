"""Figures: skeletons over crops, FBI labels, contact sheets (matplotlib, no screen)."""

import math

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from fbi3d import fbi  # pylint: disable=wrong-import-position
from fbi3d import skeleton  # pylint: disable=wrong-import-position

SIDE_COLOURS = {'L': '#1f77b4', 'R': '#d62728', 'C': '#7f7f7f'}
FBI_COLOURS = {fbi.FORWARD: '#2ca02c', fbi.BACKWARD: '#e377c2', fbi.PARALLEL: '#ffdd33'}


def draw_skeleton(ax, joints2d, fbi_labels=None, linewidth=2.0, marker_size=12):
  """Draws 2D joints [17, 2] on a matplotlib axis.

  Joints are coloured by side (left blue, right red). Bones are coloured by their FBI
  class when labels [14] are given (forward green, backward pink, parallel yellow; the
  two pelvis bones, which have no FBI label, in grey), else by side.
  """
  joints2d = np.asarray(joints2d)
  fbi_of_bone = {}
  if fbi_labels is not None:
    fbi_of_bone = dict(zip(skeleton.FBI_BONES, np.asarray(fbi_labels).tolist()))
  for bone in skeleton.BONES:
    parent, child = bone
    if bone in fbi_of_bone:
      colour = FBI_COLOURS[fbi_of_bone[bone]]
    elif fbi_labels is not None:
      colour = SIDE_COLOURS['C']
    else:
      colour = SIDE_COLOURS[skeleton.JOINT_SIDES[child]]
    ax.plot(joints2d[[parent, child], 0], joints2d[[parent, child], 1], '-',
            color=colour, linewidth=linewidth, solid_capstyle='round')
  colours = [SIDE_COLOURS[s] for s in skeleton.JOINT_SIDES]
  ax.scatter(joints2d[:, 0], joints2d[:, 1], s=marker_size, c=colours, zorder=3,
             edgecolors='white', linewidths=0.5)


def contact_sheet(examples, path, columns=6, title=None):
  """Writes a PNG grid: each crop (RGB uint8) with its 2D skeleton and FBI labels.

  examples: dicts with 'image' [S, S, 3], 'pose2d' [17, 2], 'fbi' [14] (or None),
  'caption' (str).
  """
  rows = max(1, math.ceil(len(examples) / columns))
  fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.35 * rows + 0.6),
                           squeeze=False)
  for ax in axes.flat:
    ax.axis('off')
  for ax, ex in zip(axes.flat, examples):
    ax.imshow(ex['image'])
    draw_skeleton(ax, ex['pose2d'], ex.get('fbi'), linewidth=1.6, marker_size=6)
    size = ex['image'].shape[0]
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.set_title(ex.get('caption', ''), fontsize=7)
  handles = [plt.Line2D([], [], color=FBI_COLOURS[c], lw=3, label=f'FBI {fbi.CLASS_NAMES[c]}')
             for c in range(fbi.NUM_CLASSES)]
  handles += [plt.Line2D([], [], color=SIDE_COLOURS[s], marker='o', lw=0, label=name)
              for s, name in (('L', 'left joint'), ('R', 'right joint'))]
  fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=8,
             frameon=False)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout(rect=(0, 0.04, 1, 0.97 if title else 1))
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def figure_to_array(fig):
  """RGB uint8 array of a matplotlib figure (closes it)."""
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return image


def prediction_strip(images, predicted, target=None, captions=None):
  """A row of crops with predicted 2D skeletons (and targets as faint lines), as an RGB
  uint8 array, for TensorBoard."""
  n = len(images)
  fig, axes = plt.subplots(1, n, figsize=(2.0 * n, 2.2), squeeze=False)
  for i, ax in enumerate(axes[0]):
    ax.imshow(np.clip(images[i], 0, 1) if images[i].dtype != np.uint8 else images[i])
    if target is not None:
      ax.plot(*np.asarray(target[i]).T, 'w.', markersize=3, alpha=0.7)
    draw_skeleton(ax, predicted[i], linewidth=1.4, marker_size=5)
    size = images[i].shape[0]
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.axis('off')
    if captions:
      ax.set_title(captions[i], fontsize=7)
  fig.tight_layout()
  return figure_to_array(fig)

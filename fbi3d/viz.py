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


def draw_skeleton_3d(ax, pose3d, fbi_labels=None, colour=None, linewidth=2.0, alpha=1.0):
  """Draws a camera-frame 3D pose [17, 3] (x right, y down, z away) on a 3D axis as
  x across, depth into the plot and height (-y) up."""
  pose3d = np.asarray(pose3d, np.float64)
  fbi_of_bone = {}
  if fbi_labels is not None:
    fbi_of_bone = dict(zip(skeleton.FBI_BONES, np.asarray(fbi_labels).tolist()))
  for bone in skeleton.BONES:
    parent, child = bone
    if colour is not None:
      c = colour
    elif bone in fbi_of_bone:
      c = FBI_COLOURS[fbi_of_bone[bone]]
    else:
      c = SIDE_COLOURS[skeleton.JOINT_SIDES[child]] if fbi_labels is None else SIDE_COLOURS['C']
    p = pose3d[[parent, child]]
    ax.plot(p[:, 0], p[:, 2], -p[:, 1], '-', color=c, linewidth=linewidth, alpha=alpha,
            solid_capstyle='round')
  if colour is None:
    ax.scatter(pose3d[:, 0], pose3d[:, 2], -pose3d[:, 1], s=10, alpha=alpha,
               c=[SIDE_COLOURS[s] for s in skeleton.JOINT_SIDES], depthshade=False)


def set_3d_view(ax, poses, elev, azim, title, grid_mm=200.0):
  """Equal axes around the poses, a grid every `grid_mm` and no tick labels."""
  points = np.concatenate([np.asarray(p, np.float64).reshape(-1, 3) for p in poses])
  centre = (points.min(0) + points.max(0)) / 2.0
  half = max(float(np.max(points.max(0) - points.min(0))) / 2.0, 300.0) * 1.05
  ticks = lambda c: np.arange(np.ceil((c - half) / grid_mm), np.floor((c + half) / grid_mm) + 1) * grid_mm
  ax.set_xlim(centre[0] - half, centre[0] + half)
  ax.set_ylim(centre[2] - half, centre[2] + half)
  ax.set_zlim(-centre[1] - half, -centre[1] + half)
  ax.set_xticks(ticks(centre[0]))
  ax.set_yticks(ticks(centre[2]))
  ax.set_zticks(ticks(-centre[1]))
  ax.set_xticklabels([])
  ax.set_yticklabels([])
  ax.set_zticklabels([])
  ax.set_box_aspect((1, 1, 1), zoom=1.15)
  ax.view_init(elev=elev, azim=azim)
  ax.set_xlabel('x', fontsize=8, labelpad=-12)
  ax.set_ylabel('depth', fontsize=8, labelpad=-12)
  ax.set_zlabel('height', fontsize=8, labelpad=-12)
  ax.set_title(title, fontsize=9, y=0.98)


def pose_figure(image, pose2d, pose3d, fbi_probs, crop_box=None, path=None, title=None,
                keypoints2d=None, lifted3d=None, names=None):
  """The picture of one prediction: the person crop of the image with the 2D skeleton
  (bones coloured by the predicted FBI class), the 3D pose seen from the camera and from
  the subject's left (grid every 200 mm), and a bar per FBI bone with its class and
  probability.

  image: RGB uint8 [H, W, 3]; pose2d [17, 2] image pixels; pose3d [17, 3] mm camera
  frame root-relative; fbi_probs [14, 3]; crop_box (x0, y0, size), the part of the image
  shown (default: all of it); keypoints2d [17, 2] given 2D joints (NaN where missing),
  drawn as white rings; lifted3d [17, 3] a second 3D pose drawn grey in the 3D views
  (by default the Base regressor's lift of the given 2D); names (main, grey): what the
  coloured and the grey 3D poses are, for the legend (default: the image model and '3D
  lifted from given 2D'). Writes a PNG to `path` when given; returns the figure as an RGB
  uint8 array.
  """
  main_name, grey_name = names or (None, '3D lifted from given 2D')
  fbi_probs = np.asarray(fbi_probs, np.float64)
  labels = fbi_probs.argmax(-1)
  fig = plt.figure(figsize=(15.0, 4.8))
  ax = fig.add_axes((0.01, 0.1, 0.25, 0.78))
  ax.imshow(image)
  if crop_box is not None:
    x0, y0, size = (float(v) for v in crop_box)
  else:
    x0, y0, size = -0.5, -0.5, float(max(image.shape[:2]))
  if keypoints2d is not None:
    k = np.asarray(keypoints2d, np.float64)
    ax.scatter(k[:, 0], k[:, 1], s=45, facecolors='none', edgecolors='white',
               linewidths=1.2, zorder=4, label='given 2D')
    ax.legend(loc='lower right', fontsize=7)
  draw_skeleton(ax, pose2d, labels, linewidth=2.5, marker_size=18)
  ax.set_xlim(x0, x0 + size)
  ax.set_ylim(y0 + size, y0)
  ax.set_facecolor('black')
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title('the crop: 2D joints, bones coloured by FBI', fontsize=9)
  poses = [pose3d] + ([lifted3d] if lifted3d is not None else [])
  for i, (elev, azim, name) in enumerate(((10, -90, 'from the camera'),
                                          (10, 0, 'from the subject\'s left'))):
    ax3 = fig.add_axes((0.27 + 0.22 * i, 0.08, 0.24, 0.84), projection='3d')
    ax3.patch.set_alpha(0.0)
    if lifted3d is not None:
      draw_skeleton_3d(ax3, lifted3d, colour='#999999', linewidth=1.2, alpha=0.8)
    draw_skeleton_3d(ax3, pose3d, labels)
    set_3d_view(ax3, poses, elev, azim, f'3D {name}')
  axb = fig.add_axes((0.81, 0.14, 0.18, 0.74))
  y = np.arange(skeleton.NUM_FBI_BONES)
  chosen = fbi_probs[y, labels]
  axb.barh(y, chosen, color=[FBI_COLOURS[c] for c in labels], edgecolor='#444444',
           linewidth=0.5)
  for yi, p, c in zip(y, chosen, labels):
    axb.text(0.02, yi, f'{fbi.CLASS_NAMES[c]} {p:.0%}', va='center', ha='left', fontsize=6.5)
  axb.set_yticks(y)
  axb.set_yticklabels(skeleton.FBI_BONE_NAMES, fontsize=7)
  axb.invert_yaxis()
  axb.set_xlim(0, 1)
  axb.axvline(1.0 / fbi.NUM_CLASSES, color='#888888', linewidth=0.6, linestyle=':')
  axb.set_xlabel('probability of the predicted class', fontsize=7)
  axb.tick_params(axis='x', labelsize=7)
  axb.set_title('FBI per bone', fontsize=9)
  handles = [plt.Line2D([], [], color=FBI_COLOURS[c], lw=3, label=fbi.CLASS_NAMES[c])
             for c in range(fbi.NUM_CLASSES)]
  if lifted3d is not None:
    handles.append(plt.Line2D([], [], color='#999999', lw=2, label=grey_name))
  if main_name:
    handles.append(plt.Line2D([], [], color='#333333', lw=2, label=f'coloured: {main_name}'))
  fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=8,
             frameon=False)
  if title:
    fig.suptitle(title, fontsize=10)
  if path:
    fig.savefig(path, dpi=100)
  return figure_to_array(fig)

r"""Lays out the pose bank's captured motion as Human3.6M, in one of the three forms
tools/convert_h36m.py reads, to try the readers and lifting-only training end to end
without the data set itself.

  python tools/pose_bank.py
  python tools/make_h36m_layout.py --format=videopose3d --out=data/h36m_mocap/videopose3d
  python tools/convert_h36m.py --source=videopose3d --input=data/h36m_mocap/videopose3d \
      --output_dir=data/h36m_mocap/records --noimages --every_nth=5

Subjects: the bank's train subjects are dealt to S1, S5, S6, S7 and S8 in turn; its test
subjects 11 and 131 become S9 and S11 (the protocol's test subjects); its val subjects
are left out. Each clip becomes one take of one of the 15 actions (in turn: the names
only label the takes), seen by the subject's four cameras as published. Every pose is
moved so that its pelvis stands above the capture volume's centre (the cameras frame the
middle of the room), at its own height.
"""

import os
import sys

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import skeleton   # pylint: disable=g-import-not-at-top
from fbi3d.data import h36m_layout   # pylint: disable=g-import-not-at-top
from fbi3d.data import layout   # pylint: disable=g-import-not-at-top
from fbi3d.data import posebank   # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_string('bank', os.path.join('data', 'posebank', 'bank.npz'),
                    'Pose bank of tools/pose_bank.py (.npz).')
flags.DEFINE_enum('format', 'videopose3d', ['original', 'videopose3d', 'martinez'],
                  'Which form to write.')
flags.DEFINE_string('out', None, 'Folder to write into.')
flags.DEFINE_boolean('videos', False, 'original: also write the videos (bones drawn on '
                     'grey, 1000 px pictures: slow and large).')
flags.DEFINE_integer('max_poses_per_take', 0, 'Keep at most this many poses of each clip '
                     '(evenly spaced; 0: all).', lower_bound=0)
flags.mark_flag_as_required('out')

TRAIN_TARGETS = (1, 5, 6, 7, 8)
TEST_TARGETS = {11: 9, 131: 11}


def layout_takes(bank, max_poses=0):
  """{(H36M subject, take): world poses [F, 17, 3]} of a PoseBank, as described above."""
  train = sorted({int(s) for s, p in zip(bank.subject, bank.split) if p == 'train'})
  target = {s: TRAIN_TARGETS[i % len(TRAIN_TARGETS)] for i, s in enumerate(train)}
  target.update(TEST_TARGETS)
  takes, counts = {}, {}
  for clip in np.unique(bank.clip):
    rows = np.flatnonzero(bank.clip == clip)
    subject = int(bank.subject[rows[0]])
    if subject not in target:
      continue
    if max_poses and len(rows) > max_poses:
      rows = rows[np.linspace(0, len(rows) - 1, max_poses).round().astype(int)]
    h36m_subject = target[subject]
    n = counts.get(h36m_subject, 0)
    counts[h36m_subject] = n + 1
    action = skeleton.ACTIONS[n % len(skeleton.ACTIONS)]
    poses = bank.poses[rows].copy()
    poses[:, :, :2] -= poses[:, :1, :2]
    takes[(h36m_subject, f'{action} {n // len(skeleton.ACTIONS) + 1}')] = poses
  return takes


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.videos and FLAGS.format != 'original':
    raise app.UsageError(f'--videos writes the original layout\'s videos; --format='
                         f'{FLAGS.format} holds no pictures.')
  try:
    if os.path.isdir(FLAGS.out) and os.listdir(FLAGS.out):
      raise ValueError(f'--out={FLAGS.out} is not empty: an earlier layout\'s takes and '
                       'videos there would be converted with this one\'s. Give a new or '
                       'empty folder.')
    bank = posebank.load(FLAGS.bank)
    takes = layout_takes(bank, FLAGS.max_poses_per_take)
    # Until the last file is written: convert_h36m refuses a layout that holds it.
    os.makedirs(FLAGS.out, exist_ok=True)
    writing = os.path.join(FLAGS.out, layout.WRITING_FILE)
    with open(writing, 'w') as f:
      f.write('tools/make_h36m_layout.py is writing this folder\n')
    if FLAGS.format == 'original':
      h36m_layout.write_original(FLAGS.out, takes, videos=FLAGS.videos)
    elif FLAGS.format == 'videopose3d':
      h36m_layout.write_videopose3d(FLAGS.out, takes)
    else:
      h36m_layout.write_martinez(FLAGS.out, takes)
    os.remove(writing)
  except (ValueError, OSError) as e:
    print(f'make_h36m_layout: error: {e}', file=sys.stderr)
    sys.exit(1)
  per_subject = {}
  for (subject, _), poses in takes.items():
    per_subject[subject] = per_subject.get(subject, 0) + len(poses)
  print(f'wrote {len(takes)} takes ({", ".join(f"S{s}: {n} poses" for s, n in sorted(per_subject.items()))}) '
        f'as {FLAGS.format} to {FLAGS.out}')


if __name__ == '__main__':
  app.run(main)

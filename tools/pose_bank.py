"""Builds the pose bank: every motion file under --mocap_dir (all four shared folders by
default) mapped to the 17 joints, near-identical consecutive frames removed, split by
subject (fbi3d/data/posebank.py says how).

  python tools/pose_bank.py --out=data/posebank/bank.npz
  python tools/pose_bank.py --dedup_mm=40 --val_subjects=13,39 --out=data/posebank/b40.npz

Writes the bank (.npz: poses [N, 17, 3] mm in the world frame, z up; subject, clip and
frame index per pose; split) and a JSON summary beside it (same name, .json): poses,
subjects, clips and joint-angle coverage per split, the poses kept at other thresholds,
and every clip. Subjects 11 and 131 are always the test split. Prints the per-split table.
(`tools/convert_mocap.py` writes per-clip arrays and lifting-only TFRecords instead.)
"""

import math
import os
import sys

from absl import app
from absl import flags

from fbi3d.data import posebank

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string('mocap_dir', os.path.join(ROOT, '..', 'shared', 'data', 'mocap'),
                    'Folder searched recursively for .amc (with its .asf) and .bvh files.')
flags.DEFINE_string('out', os.path.join('data', 'posebank', 'bank.npz'),
                    'The bank to write (.npz); its summary goes beside it as .json.')
flags.DEFINE_float('dedup_mm', posebank.DEFAULT_DEDUP_MM,
                   'A frame is dropped when no root-relative joint lies this far (mm) from '
                   'the last kept frame of its clip; 0 keeps every frame.')
flags.DEFINE_list('val_subjects', [str(s) for s in posebank.DEFAULT_VAL_SUBJECTS],
                  'Subject ids of the val split (not 11 or 131, which are the test split).')
flags.DEFINE_boolean('strict', False, 'Stop at the first unreadable file instead of '
                     'skipping it.')
flags.DEFINE_boolean('verbose', False, 'Print a line per clip.')


def _subjects(values, flag):
  try:
    return [int(v) for v in values]
  except ValueError:
    raise ValueError(f'--{flag} takes subject numbers separated by commas, got '
                     f'{",".join(values)!r}.') from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    if not (math.isfinite(FLAGS.dedup_mm) and FLAGS.dedup_mm >= 0):
      raise ValueError(f'--dedup_mm must be a finite number >= 0 mm, got {FLAGS.dedup_mm}.')
    if not FLAGS.out.endswith('.npz'):
      raise ValueError(f'--out must name an .npz file, got {FLAGS.out!r}.')
    val = _subjects(FLAGS.val_subjects, 'val_subjects')
    bank, summary = posebank.build(
        FLAGS.mocap_dir, threshold_mm=FLAGS.dedup_mm, val_subjects=val,
        strict=FLAGS.strict,
        log=(lambda line: print(line, flush=True)) if FLAGS.verbose else None)
    npz, json_path = posebank.save(bank, summary, FLAGS.out)
  except (ValueError, OSError) as e:
    print(f'pose_bank: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(posebank.format_table(summary))
  print(f'\nWrote {npz} and {json_path} ({summary["seconds"]:.0f} s).')
  print(posebank.skipped_report(summary['skipped'], json_path), file=sys.stderr)
  for warning in summary['warnings']:
    print(f'pose_bank: warning: {warning}', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)

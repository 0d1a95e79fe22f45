r"""How precisely depth must be known for an FBI accuracy, and how precisely a run knows it.

For the camera-frame 3D of a converted split, the expected FBI accuracy of labels read
from depths with independent Gaussian noise of each std in --sigmas (exact, no sampling:
fbi.accuracy_under_depth_noise). With --model_dir, from the run's features cache of the
split (python -m fbi3d.train --phase=features): the FBI branch's accuracy; the accuracy
of the labels its coarse 3D implies (the true x and y, the coarse depth); the coarse
depth's equivalent noise (the rms error of the bones' depth differences over sqrt 2, a
per-joint std) and the accuracy expected at it; and the noise at which the expected
accuracy equals the branch's. Prints a table and writes JSON.

  python tools/fbi_depth_noise.py --data_dir=data/synthetic_records --split=val \
      --model_dir=runs/quickstart/model --out=runs/quickstart/fbi_depth_noise.json
"""

import math
import os
import sys

from absl import app
from absl import flags
import numpy as np

from fbi3d import fbi
from fbi3d.data import pipeline
from fbi3d.training import run as run_lib
import bench

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', 'data/synthetic_records', 'Converted data set (TFRecords '
                    'and manifest.json).')
flags.DEFINE_string('split', 'val', 'Split to measure.')
flags.DEFINE_list('sigmas', ['0', '10', '20', '25', '30', '40', '60', '80'], 'Per-joint '
                  'depth noise stds to tabulate, mm.')
flags.DEFINE_string('model_dir', None, 'A run whose features cache of --split to measure '
                    'against the table (default: none).')
flags.DEFINE_string('out', None, 'JSON file of the table (default: none).')
bench.require_file_out()
flags.register_validator(
    'sigmas', lambda v: bool(v) and all(_is_sigma(s) for s in v),
    message='--sigmas: give one or more finite numbers >= 0 (mm), comma-separated.')


def _is_sigma(text):
  try:
    value = float(text)
  except ValueError:
    return False
  return math.isfinite(value) and value >= 0


def measure_run(model_dir, split, pose3d, threshold):
  """A run's FBI branch and coarse depth on `split`, from its features cache, set against
  the noise table: a dict for the JSON. ValueError when the run has no finished features
  cache, holds no image branches (lifting-only) or cached other examples than `pose3d`."""
  run = run_lib.Run.of(model_dir)
  results = run.results('features') or {}
  if not results.get('finished'):
    raise ValueError(f'{model_dir} has no finished features cache: run python -m fbi3d.train '
                     f'--phase=features --model_dir={model_dir} first.')
  if (results.get('made_from') or {}).get('records'):
    raise ValueError(f'{model_dir} was trained on lifting-only records: it has no FBI '
                     'branch nor coarse 3D to measure (its cache holds zeros there).')
  path = os.path.join(run.phase_dir('features'), f'{split}.npz')
  if not os.path.exists(path):
    raise ValueError(f'{path} not found: the features cache of {model_dir} has no {split} '
                     'split.')
  with np.load(path) as cache:
    cache = dict(cache)
  valid = cache['pose3d_valid'] > 0
  if cache['pose3d'].shape != pose3d.shape or not np.allclose(
      cache['pose3d'][valid], pose3d[valid], atol=1e-3):
    raise ValueError(f'{path} holds other examples than {FLAGS.data_dir} {split}: give the '
                     'data set the run was trained on (or cached with).')
  truth = cache['pose3d'][valid]
  coarse = np.concatenate([truth[..., :2], cache['coarse3d'][valid][..., 2:]], axis=-1)
  labels = fbi.fbi_labels(truth, threshold)
  branch = float(np.mean(np.argmax(cache['fbi_probs'][valid], -1) == labels))
  sigma = fbi.depth_equivalent_sigma(coarse, truth)
  return dict(features_cache=path, examples=int(valid.sum()), branch_accuracy=branch,
              coarse3d_implied_accuracy=float(np.mean(fbi.fbi_labels(coarse, threshold)
                                                      == labels)),
              coarse3d_equivalent_sigma_mm=sigma,
              expected_accuracy_at_that_sigma=fbi.accuracy_under_depth_noise(
                  truth, sigma, threshold),
              sigma_matching_branch_mm=fbi.sigma_for_accuracy(truth, branch, threshold))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    manifest = pipeline.load_manifest(FLAGS.data_dir)
    split = FLAGS.split.lower()
    if split not in manifest['splits']:
      raise ValueError(f'{FLAGS.data_dir} has no split {split!r}; it has '
                       f'{", ".join(sorted(manifest["splits"]))}.')
    threshold = float(manifest.get('fbi_threshold_deg', fbi.DEFAULT_THRESHOLD_DEG))
    arrays = pipeline.read_arrays(FLAGS.data_dir, split)
    valid = arrays['pose3d/valid'] > 0
    if not valid.any():
      raise ValueError(f'{FLAGS.data_dir} {split} has no 3D poses.')
    pose3d = arrays['pose3d/camera']
    rows = [dict(sigma_mm=float(s), expected_accuracy=fbi.accuracy_under_depth_noise(
        pose3d[valid], float(s), threshold)) for s in FLAGS.sigmas]
    run = measure_run(FLAGS.model_dir, split, pose3d, threshold) if FLAGS.model_dir else None
  except (ValueError, OSError, pipeline.DataError, run_lib.PhaseError) as e:
    print(f'fbi_depth_noise: error: {e}', file=sys.stderr)
    sys.exit(1)
  print(f'{FLAGS.data_dir} {split}: {int(valid.sum())} poses, FBI threshold '
        f'{threshold:g} deg')
  print(f'{"depth noise (mm, per joint)":>28} {"expected FBI accuracy":>22}')
  for row in rows:
    print(f'{row["sigma_mm"]:>28g} {100 * row["expected_accuracy"]:>21.1f}%')
  if run:
    print(f'{FLAGS.model_dir} ({run["examples"]} examples of its features cache):')
    matching = run['sigma_matching_branch_mm']
    print(f'  FBI branch {100 * run["branch_accuracy"]:.1f}%, '
          + ('below what any depth noise up to 1000 mm gives' if matching is None
             else f'as from depth noise of {matching:.1f} mm'))
    print(f'  labels implied by the coarse 3D {100 * run["coarse3d_implied_accuracy"]:.1f}%; '
          f'its depth is as good as noise of {run["coarse3d_equivalent_sigma_mm"]:.1f} mm '
          f'(expected {100 * run["expected_accuracy_at_that_sigma"]:.1f}%)')
  if FLAGS.out:
    bench.write_json(FLAGS.out, dict(data_dir=FLAGS.data_dir, split=split,
                                     threshold_deg=threshold, poses=int(valid.sum()),
                                     table=rows, run=run))


if __name__ == '__main__':
  app.run(main)

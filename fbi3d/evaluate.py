"""Evaluates a trained run the way the challenge did.

  python -m fbi3d.evaluate --model_dir=runs/quickstart/model --split=test --ablations

Writes to <model_dir>/eval/<split>/: Table 1 (MPJPE per action for Base, Final and the
ablations that python -m fbi3d.train --phase=ablations trained), PA-MPJPE, per-joint
error, the 2D estimator, the coarse-3D branch before and after adversarial fine-tuning,
FBI accuracy per bone, with --seeds=N each row's mean and spread over the seeds that
python -m fbi3d.train --phase=seeds --seeds=N trained, as CSV and JSON, a markdown report
with figures, and, for a split
without 3D ground truth, Final's predictions as the evaluation server reads them
(submission/ and submission.zip). The run's own settings are read from its phases;
nothing needs repeating. A run trained on lifting-only records (tools/convert_h36m.py
--noimages, motion capture) is measured by fbi3d/evaluation/lifting.py: its 2D-only
regressors per action, protocols 1 and 2.
"""

import sys

from absl import app
from absl import flags
import tensorflow as tf

from fbi3d import metrics
from fbi3d.data import pipeline
from fbi3d.evaluation import challenge
from fbi3d.evaluation import lifting
from fbi3d.training import run as run_lib

flags.DEFINE_string('model_dir', None, 'Run folder written by python -m fbi3d.train.')
flags.DEFINE_string('data_dir', None, 'Converted data set; default: the one the run was '
                    'trained on. For another one, the image models run over it once into '
                    '<out_dir>/features_cache; the run itself is not changed.')
flags.DEFINE_string('split', 'val', 'Split to evaluate: train, val or test.')
flags.DEFINE_boolean('ablations', False, 'Expect the ablations of Final (without FBI, '
                     'without coarse 3D, without adversarial fine-tuning, L2 loss) and the '
                     'two oracle rows (Base on the true 2D; the true 2D and FBI) in the '
                     'tables: when python -m fbi3d.train --phase=ablations has not '
                     'finished them, say which are missing and the command that trains '
                     'them. Finished ones are in the tables either way.')
flags.DEFINE_integer('seeds', 1, 'Report each regressor row\'s (Base, Final and the '
                     'trained ablations and oracles) mean and spread over this many seeds '
                     'in all, the run\'s own and the next ones, as python -m fbi3d.train '
                     '--phase=seeds --seeds=N trained them into <model_dir>/seeds/<seed>/: '
                     'when some row is missing under some seed, say which and the command '
                     'that trains them.', lower_bound=1)
flags.DEFINE_boolean('submission', False, 'Also write Final\'s predictions in the '
                     'evaluation server\'s form when the split has ground truth (always '
                     'written when it has none).')
flags.DEFINE_integer('gallery', 8, 'Examples in the gallery figure (0: none).',
                     lower_bound=0)
flags.DEFINE_string('out_dir', None, 'Output folder; default <model_dir>/eval/<split>, or '
                    '<model_dir>/eval/<data set folder>-<split> for another --data_dir.')
flags.mark_flag_as_required('model_dir')


def _lifting(f):
  """A run trained on lifting-only records: its 2D-only regressors per action, protocols
  1 and 2."""
  if f.ablations or f.seeds > 1 or f.submission or f.data_dir:
    raise ValueError('--ablations, --seeds, --submission and --data_dir need image '
                     'models; this run was trained on lifting-only records.')
  results = lifting.evaluate(f.model_dir, f.split, out_dir=f.out_dir)
  t1, t2 = results['tables']
  print(f'\nProtocol 1, MPJPE (mm) per action on the {results["split"]} split')
  print(metrics.format_table(t1))
  print(f'\nProtocol 2, PA-MPJPE (mm) per action on the {results["split"]} split')
  print(metrics.format_table(t2))
  print(f'\nreport: {results["report"]}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  f = flags.FLAGS
  try:
    if lifting.is_lifting_run(f.model_dir):
      _lifting(f)
      return
    results = challenge.evaluate(
        f.model_dir, f.split, data_dir=f.data_dir, ablations=f.ablations,
        out_dir=f.out_dir, write_submission=f.submission, gallery=f.gallery,
        seeds=f.seeds)
  except tf.errors.DataLossError as e:
    data_dir = f.data_dir or challenge.load_config(f.model_dir).data_dir
    print(f'fbi3d.evaluate: error: {pipeline.explain_data_loss(data_dir, e)}',
          file=sys.stderr)
    sys.exit(1)
  except (run_lib.PhaseError, pipeline.DataError, ValueError, OSError) as e:
    print(f'fbi3d.evaluate: error: {e}', file=sys.stderr)
    sys.exit(1)
  if 'table1_mpjpe' in results:
    print(f'\nTable 1: MPJPE (mm) per action on the {results["split"]} split '
          f'({results["num_labelled"]} examples)')
    print(metrics.format_table(results['table1_mpjpe']))
    for row in results.get('seed_spread', []):
      print(f'{row["row"]:<28} over seeds {results["seeds"]}: {row["mean_mm"]:.1f} +- '
            f'{row["std_mm"]:.1f} mm; minus Final {row["minus_final_mean_mm"]:+.1f} +- '
            f'{row["minus_final_std_mm"]:.1f} mm')
  else:
    print(results.get('note', ''))
  print(f'\nreport: {results["report"]}')


if __name__ == '__main__':
  app.run(main)

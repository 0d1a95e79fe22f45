"""Trains the pose-bank lifter and measures it on the held-out subjects (fbi3d/lifter.py).

  python tools/pose_bank.py --out=data/posebank/bank.npz
  python tools/train_lifter.py --bank=data/posebank/bank.npz --out=runs/lifter

Trains on the bank's train split through photographer's cameras with detector-like 2D
noise; measures MPJPE and PA-MPJPE on the val split and on the test split (subjects 11
and 131, each and together), one camera per pose from fixed seeds, with ground-truth 2D
and with --noise_px Gaussian noise. Writes the lifter (weights and lifter.json with the
settings and figures) into --out; while it trains, each epoch is checkpointed in
--out/checkpoints, and the same command run again after a stop resumes from the last
epoch there. Export it with
  python -m fbi3d.export --model_dir=RUN --export_dir=EXPORT --lifter=runs/lifter
"""

import math
import os
import shutil
import sys

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from fbi3d import lifter   # pylint: disable=g-import-not-at-top
from fbi3d import losses   # pylint: disable=g-import-not-at-top
from fbi3d.data import posebank   # pylint: disable=g-import-not-at-top

D = lifter.DEFAULTS
FLAGS = flags.FLAGS
flags.DEFINE_string('bank', os.path.join('data', 'posebank', 'bank.npz'),
                    'Pose bank of tools/pose_bank.py (.npz).')
flags.DEFINE_string('out', os.path.join('runs', 'lifter'), 'Folder for the lifter.')
flags.DEFINE_integer('epochs', D['epochs'], 'Epochs; every epoch draws new cameras and '
                     'noise for each training pose.', lower_bound=1)
flags.DEFINE_integer('max_train_poses', D['max_train_poses'], 'At most this many training '
                     'poses, evenly spaced through the train split.', lower_bound=1)
flags.DEFINE_integer('batch_size', D['batch_size'], 'Batch size.', lower_bound=1)
flags.DEFINE_float('learning_rate', D['learning_rate'], 'Initial Adam rate (decays to a '
                   'tenth over the run).', lower_bound=0.0)
flags.DEFINE_integer('hidden', D['hidden'], 'Units of every hidden layer.', lower_bound=1)
flags.DEFINE_integer('blocks', D['blocks'], 'Residual blocks.', lower_bound=1)
flags.DEFINE_float('dropout_rate', D['dropout_rate'], 'Probability of dropping a unit, '
                   'in [0, 1).', lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_enum('loss', D['loss'], list(losses.LOSSES), 'Regression loss: the weighted '
                  'regression loss, plain L2 on normalised coordinates, or the mean joint '
                  'distance in mm (joint).')
flags.DEFINE_float('noise_max_px', D['noise_max_px'], 'Training 2D noise: per-example std '
                   'drawn uniformly in [0, this] image pixels.', lower_bound=0.0)
flags.DEFINE_float('swap_prob', D['swap_prob'], 'Training 2D noise: probability of '
                   'swapping each left/right joint pair.', lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float('missing_prob', D['missing_prob'], 'Training 2D noise: probability of '
                   'each joint being missing (filled by lifter_inputs.fill_missing).',
                   lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float('truncate_prob', D['truncate_prob'], 'Training 2D noise: probability '
                   'that the picture\'s lower edge cuts the person, every joint below a '
                   'random line between 30% and 80% of the way down being missing (a '
                   'portrait cut at the chest or waist).', lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float('bone_scale_std', D['bone_scale_std'], 'Training: multiply every bone '
                   'length by exp(N(0, this)), a bone and its mirror alike (0: off).',
                   lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float('limb_mix_prob', D['limb_mix_prob'], 'Training: probability that each '
                   'limb (either arm, either leg) of a pose is bent as the same limb of '
                   'another training pose (lifter_cameras.mix_limbs), for poses the bank '
                   'lacks; 0 for none.')
flags.DEFINE_float('bend_std_deg', D['bend_std_deg'], 'Training: turn each arm and leg '
                   'bone about its parent joint by an angle drawn from N(0, this) degrees '
                   'about a random axis, the joints below carried along '
                   '(lifter_cameras.bend_limbs); 0 for none.')
flags.DEFINE_float('trunk_bend_std_deg', D['trunk_bend_std_deg'], 'Training: the same '
                   'for the trunk: the thorax turned about the spine joint (arms and head '
                   'carried along) and the head about the neck; 0 for none.')
flags.DEFINE_boolean('mirror', D['mirror'], 'Mirror each training pose left/right with '
                     'probability 1/2 every epoch.')
flags.DEFINE_boolean('mirror_average', D['mirror_average'], 'Measure (and, through the '
                     'saved lifter.json, serve) the mean of the pose for the 2D and, '
                     'mirrored back, for the 2D mirrored left/right (lifter.mirror_averaged).')
flags.DEFINE_enum('frame', D['frame'], list(lifter.FRAMES), 'Output frame: ray (the '
                  'crop\'s ray-aligned frame, turned back into the camera frame for the '
                  'figures) or camera.')
flags.DEFINE_float('noise_px', lifter.TEST_NOISE_PX, 'Std (image pixels) of the Gaussian '
                   'noise of the noisy val and test columns.', lower_bound=0.0)
flags.DEFINE_boolean('train_on_test', False, 'A bound, not a lifter to use: also train on '
                     'the test subjects\' poses (through other cameras than those they are '
                     'measured with), so that the test rows say what a lifter that has '
                     'seen that very motion reaches. Needs its own --out; lifter.json and '
                     'the table say so, and the export refuses such a lifter.')
flags.DEFINE_integer('seed', D['seed'], 'Seed of training draws and of the fixed val and '
                     'test cameras and noise (>= 0).', lower_bound=0)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  say = lambda line: print(line, flush=True)
  try:
    # What would only fail after the training: the test noise and the output folder.
    if not (math.isfinite(FLAGS.noise_px) and FLAGS.noise_px >= 0):
      raise ValueError(f'--noise_px must be a finite number >= 0 (got {FLAGS.noise_px}).')
    if FLAGS.train_on_test and not FLAGS['out'].present:
      raise ValueError('--train_on_test trains a bound, not a lifter to serve: give it a '
                       'folder of its own with --out (runs/lifter_insample, say), so that '
                       'it does not replace the lifter in runs/lifter.')
    if os.path.exists(FLAGS.out) and not os.path.isdir(FLAGS.out):
      raise ValueError(f'--out={FLAGS.out} is a file; give a folder for the lifter.')
    bank = posebank.load(FLAGS.bank)
    sets = {name: bank.poses[bank.split == name] for name in posebank.SPLITS}
    for name in ('train', 'test'):
      if not len(sets[name]):
        raise ValueError(f'{FLAGS.bank} has no {name} poses; build it again with '
                         'tools/pose_bank.py.')
    test_subjects = [s for s in posebank.TEST_SUBJECTS
                     if np.any((bank.split == 'test') & (bank.subject == s))]
    missing = [str(s) for s in posebank.TEST_SUBJECTS if s not in test_subjects]
    if missing:
      say(f'warning: {FLAGS.bank} has no poses of test subject(s) {", ".join(missing)}; '
          'the test row covers ' + ' and '.join(map(str, test_subjects)) + ' alone.')
    overrides = {k: getattr(FLAGS, k) for k in lifter.DEFAULTS}
    checkpoints = os.path.join(FLAGS.out, lifter.TRAINING_DIR)
    train = sets['train']
    if FLAGS.train_on_test:
      say(f'training on the {len(sets["test"])} test poses as well: the test rows are a '
          'bound (in-sample poses), not a held-out measure.')
      train = np.concatenate([train, sets['test']])
    network, info = lifter.train(train, log=say, checkpoint_dir=checkpoints, **overrides)
    if FLAGS.train_on_test:
      info['trained_on_test'] = True
    results = {}
    groups = [('val', sets['val'])] if len(sets['val']) else []
    for subject in test_subjects:
      groups.append((f'test subject {subject}',
                     bank.poses[(bank.split == 'test') & (bank.subject == subject)]))
    groups.append((f'test ({" + ".join(map(str, test_subjects))})', sets['test']))
    for name, poses in groups:
      if len(poses):
        results[name] = lifter.evaluate_split(network, poses, FLAGS.seed, FLAGS.noise_px,
                                              frame=FLAGS.frame,
                                              mirror_average=FLAGS.mirror_average)
        say(f'{name}: {lifter.format_result(results[name])}')
    info.update(bank=os.path.abspath(FLAGS.bank), results=results)
    lifter.save(network, info, FLAGS.out)
    # The lifter is saved whole: the per-epoch checkpoints are no longer needed.
    shutil.rmtree(checkpoints, ignore_errors=True)
  except (ValueError, OSError) as e:
    print(f'train_lifter: error: {e}', file=sys.stderr)
    sys.exit(1)
  print()
  print(lifter.format_table(info))
  print(f'\nWrote {FLAGS.out} (training {info["train_seconds"]:.0f} s).')


if __name__ == '__main__':
  app.run(main)

"""The names `python -m fbi3d.train --phase=...` takes, without TensorFlow: the command
checks its flags against them before it loads anything heavy, so a wrong flag is
answered at once. fbi3d/training/phases.py maps each name to its task."""

# The phases, in the order `all` trains them.
PHASES = ('pose2d', 'generator', 'adversarial', 'features', 'base', 'refine')
ALL = 'all'
# The ablations of Final and the oracle rows, in the order `ablations` trains them.
ABLATIONS = ('features_noadv', 'refine_nofbi', 'refine_nocoarse3d', 'refine_noadv',
             'refine_l2', 'oracle_gt2d', 'oracle_gt2d_fbi')
ALL_ABLATIONS = 'ablations'
# `seeds` trains every finished regressor row again under other seeds, at least this many
# seeds in all (the run's own and the next ones).
SEEDS = 'seeds'
MIN_SEEDS = 2

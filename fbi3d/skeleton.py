"""The skeleton: Human3.6M's 17 joints, their bones, the 14 FBI bones and the actions.

Every other module takes joint order, bone lists and action indices from here.
"R" and "L" are the subject's own right and left.
"""

import re

JOINT_NAMES = (
    'Hip',        # 0  pelvis, the root: midpoint of the two hips
    'RHip',       # 1
    'RKnee',      # 2
    'RAnkle',     # 3
    'LHip',       # 4
    'LKnee',      # 5
    'LAnkle',     # 6
    'Spine',      # 7
    'Thorax',     # 8
    'Neck',       # 9  Neck/Nose in Human3.6M
    'Head',       # 10
    'LShoulder',  # 11
    'LElbow',     # 12
    'LWrist',     # 13
    'RShoulder',  # 14
    'RElbow',     # 15
    'RWrist',     # 16
)
NUM_JOINTS = len(JOINT_NAMES)
ROOT = 0
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Every bone as (parent, child), ordered by child index: 16 bones.
BONES = tuple((parent, child) for child, parent in enumerate(PARENTS) if parent >= 0)

# Left/right joint pairs and the permutation that a horizontal flip applies.
LEFT_RIGHT_PAIRS = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))


def _flip_permutation(pairs, n):
  perm = list(range(n))
  for a, b in pairs:
    perm[a], perm[b] = b, a
  return tuple(perm)


JOINT_FLIP_PERMUTATION = _flip_permutation(LEFT_RIGHT_PAIRS, NUM_JOINTS)

# The 14 FBI bones: every bone except the two pelvis bones Hip->RHip and Hip->LHip.
# Why these two: the pelvis joint is the midpoint of the hips, so the two pelvis bones
# are exact opposites (s_left = -s_right) and carry one number between them, which the
# shoulder bones largely repeat (which way the body faces); they are also the shortest
# bones (about 130 mm), so their depth order is the hardest to see in a picture. The
# remaining 14 are the eight limb bones, the two shoulder bones and the four bones of the
# spine and head. Dropping both keeps the set closed under a left/right flip.
FBI_BONES = tuple(b for b in BONES if b not in ((0, 1), (0, 4)))
NUM_FBI_BONES = len(FBI_BONES)
FBI_BONE_NAMES = tuple(
    f'{JOINT_NAMES[p]}->{JOINT_NAMES[c]}' for p, c in FBI_BONES)


def _fbi_flip_permutation():
  perm = []
  for parent, child in FBI_BONES:
    mirrored = (JOINT_FLIP_PERMUTATION[parent], JOINT_FLIP_PERMUTATION[child])
    perm.append(FBI_BONES.index(mirrored))
  return tuple(perm)


# Under a horizontal flip, the label of FBI bone i moves to FBI_FLIP_PERMUTATION[i]
# (a left bone takes its right twin's label); depth order is unchanged by the flip.
FBI_FLIP_PERMUTATION = _fbi_flip_permutation()

# The 15 Human3.6M actions in the ECCV 2018 challenge's A1..A15 order.
ACTIONS = (
    'Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo', 'Posing',
    'Purchases', 'Sitting', 'SittingDown', 'Smoking', 'Waiting', 'WalkDog', 'Walking',
    'WalkTogether')
NUM_ACTIONS = len(ACTIONS)
UNKNOWN_ACTION = -1
ACTION_COLUMNS = tuple(f'A{i + 1}' for i in range(NUM_ACTIONS))


# Action names as the Human3.6M releases spell them for some subjects (S1's TakingPhoto
# and WalkingDog are the Photo and WalkDog actions).
ACTION_ALIASES = {'takingphoto': 'Photo', 'walkingdog': 'WalkDog'}


def action_index(name):
  """Index of an action name (case-insensitive, spaces and underscores ignored), also
  as a Human3.6M take spells it ('Directions 1', 'Directions_1', 'TakingPhoto'); -1
  when it is none of the 15."""
  key = re.sub(r'\d+$', '', re.sub(r'[\s_]+', '', str(name))).lower()
  key = ACTION_ALIASES.get(key, key).lower()
  for i, action in enumerate(ACTIONS):
    if action.lower() == key:
      return i
  return UNKNOWN_ACTION


# Mean Human3.6M bone lengths in millimetres, by child joint (the bone to its parent).
MEAN_BONE_LENGTHS_MM = {
    1: 133.0, 4: 133.0,      # pelvis -> hips
    2: 454.0, 5: 454.0,      # thighs
    3: 446.0, 6: 446.0,      # shins
    7: 234.0,                # pelvis -> spine
    8: 257.0,                # spine -> thorax
    9: 121.0,                # thorax -> neck/nose
    10: 115.0,               # neck -> head
    11: 151.0, 14: 151.0,    # thorax -> shoulders
    12: 279.0, 15: 279.0,    # upper arms
    13: 250.0, 16: 250.0,    # forearms
}

# Which side each joint is on, for drawing: 'L', 'R' or 'C' (centre).
JOINT_SIDES = tuple(
    'L' if n.startswith('L') else 'R' if n.startswith('R') else 'C' for n in JOINT_NAMES)

from fbi3d import skeleton


def test_joint_order_and_parents_match_design():
  assert skeleton.NUM_JOINTS == 17
  assert skeleton.JOINT_NAMES[0] == 'Hip'
  assert skeleton.JOINT_NAMES[13] == 'LWrist'
  assert skeleton.JOINT_NAMES[16] == 'RWrist'
  assert skeleton.PARENTS == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
  assert len(skeleton.BONES) == 16
  assert skeleton.BONES[0] == (0, 1)
  assert skeleton.BONES[-1] == (15, 16)


def test_fbi_bones_are_the_fourteen_non_pelvis_bones():
  assert skeleton.NUM_FBI_BONES == 14
  assert (0, 1) not in skeleton.FBI_BONES
  assert (0, 4) not in skeleton.FBI_BONES
  assert skeleton.FBI_BONES[0] == (1, 2)
  assert skeleton.FBI_BONE_NAMES[0] == 'RHip->RKnee'
  assert skeleton.FBI_BONE_NAMES[4] == 'Hip->Spine'


def test_flip_permutations_swap_left_and_right():
  perm = skeleton.JOINT_FLIP_PERMUTATION
  assert perm == (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
  assert all(perm[perm[i]] == i for i in range(17))
  # RHip->RKnee (0) <-> LHip->LKnee (2); LShoulder->LElbow (9) <-> RShoulder->RElbow (12).
  fperm = skeleton.FBI_FLIP_PERMUTATION
  assert fperm == (2, 3, 0, 1, 4, 5, 6, 7, 11, 12, 13, 8, 9, 10)


def test_actions_in_challenge_order():
  assert skeleton.NUM_ACTIONS == 15
  assert skeleton.ACTIONS[0] == 'Directions'
  assert skeleton.ACTIONS[14] == 'WalkTogether'
  assert skeleton.ACTION_COLUMNS[0] == 'A1' and skeleton.ACTION_COLUMNS[-1] == 'A15'
  assert skeleton.action_index('sitting down') == 9
  assert skeleton.action_index('Dancing') == -1
  # Take names as the Human3.6M releases spell them.
  assert skeleton.action_index('Directions 1') == 0
  assert skeleton.action_index('SittingDown_2') == 9
  assert skeleton.action_index('TakingPhoto') == 5
  assert skeleton.action_index('WalkingDog 1') == 12
  assert skeleton.action_index('Walking 3') == 13
  assert skeleton.action_index('Dancing 1') == -1

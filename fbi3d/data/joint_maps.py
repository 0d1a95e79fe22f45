"""The 17-joint mapping: which joints of each known motion capture skeleton make
Human3.6M's 17 (`skeleton.JOINT_NAMES`), the check of a file's length unit against an
adult femur, and retargeting to Human3.6M's mean bone lengths.

`to_h36m` maps a clip to the 17 joints through the tables of `JOINT_MAPS` (one per
skeleton variant: CMU's ASF, and the cgspeed BVH releases "3dsMax", "MotionBuilder" and
"Daz" friendly), which list the approximations. A BVH file's length unit is declared per
skeleton (`BVH_UNITS_MM`) and checked on load against an adult femur's length
(`FEMUR_RANGE_MM`).
"""

import os

import numpy as np

from fbi3d import skeleton
from fbi3d.data import motion

# CMU ASF/AMC (joint = END of the named bone):
#   Hip (pelvis) = midpoint of the hips, as in Human3.6M; CMU's root lies about 100 mm
#     above it, so the root is not used.
#   RHip / LHip = rhipjoint / lhipjoint ends (the femur starts).
#   RKnee / LKnee = rfemur / lfemur ends; RAnkle / LAnkle = rtibia / ltibia ends.
#   Spine = lowerback end (about 215 mm above the pelvis; Human3.6M: 234 mm).
#   Thorax = thorax end: the base of the neck, where the clavicles start.
#   Neck (Neck/Nose) = upperneck end: the base of the skull, near the height of the nose.
#   Head = head end (the top of the head).
#   LShoulder / RShoulder = lclavicle / rclavicle ends (the humerus starts).
#   LElbow / RElbow = lhumerus / rhumerus ends; LWrist / RWrist = lradius / rradius ends.
CMU_ASF_MAP = {
    'Hip': ('lhipjoint', 'rhipjoint'),
    'RHip': ('rhipjoint',), 'RKnee': ('rfemur',), 'RAnkle': ('rtibia',),
    'LHip': ('lhipjoint',), 'LKnee': ('lfemur',), 'LAnkle': ('ltibia',),
    'Spine': ('lowerback',), 'Thorax': ('thorax',), 'Neck': ('upperneck',),
    'Head': ('head',),
    'LShoulder': ('lclavicle',), 'LElbow': ('lhumerus',), 'LWrist': ('lradius',),
    'RShoulder': ('rclavicle',), 'RElbow': ('rhumerus',), 'RWrist': ('rradius',),
}

# The cgspeed CMU BVH release (joint = origin of the named joint):
#   Hip = midpoint of LeftHip and RightHip (the femur starts; Hips is CMU's root).
#   RHip / RKnee / RAnkle = RightHip / RightKnee / RightAnkle, and likewise on the left.
#   Spine = Chest (the lowerback end).
#   Thorax = Chest2 (the upperback end). The release drops CMU's thorax bone (about
#     116 mm): the neck and shoulders hang from the upper back's end, about 117 mm lower
#     than in the ASF/AMC originals. `to_h36m` puts the bone back (`restore_thorax`).
#   Neck = Head (the upperneck end); Head = Head_end (the End Site above it).
#   LShoulder / LElbow / LWrist = LeftShoulder / LeftElbow / LeftWrist (clavicle,
#     humerus and radius ends), and likewise on the right.
CGSPEED_BVH_MAP = {
    'Hip': ('LeftHip', 'RightHip'),
    'RHip': ('RightHip',), 'RKnee': ('RightKnee',), 'RAnkle': ('RightAnkle',),
    'LHip': ('LeftHip',), 'LKnee': ('LeftKnee',), 'LAnkle': ('LeftAnkle',),
    'Spine': ('Chest',), 'Thorax': ('Chest2',), 'Neck': ('Head',), 'Head': ('Head_end',),
    'LShoulder': ('LeftShoulder',), 'LElbow': ('LeftElbow',), 'LWrist': ('LeftWrist',),
    'RShoulder': ('RightShoulder',), 'RElbow': ('RightElbow',), 'RWrist': ('RightWrist',),
}

# The cgspeed "MotionBuilder-friendly" CMU BVH release (joint = origin of the named
# joint; CMU's length unit):
#   Hip = midpoint of LeftUpLeg and RightUpLeg (the femur starts; Hips is CMU's root).
#   RHip / RKnee / RAnkle = RightUpLeg / RightLeg / RightFoot, and likewise on the left.
#   Spine = Spine (the lowerback end). Thorax = Spine1 (the upperback end): this release
#     too drops CMU's thorax bone, put back as in CGSPEED_BVH_MAP.
#   Neck = Head (the upperneck end); Head = Head_end.
#   LShoulder / LElbow / LWrist = LeftArm / LeftForeArm / LeftHand, likewise on the right.
CGSPEED_MB_BVH_MAP = {
    'Hip': ('LeftUpLeg', 'RightUpLeg'),
    'RHip': ('RightUpLeg',), 'RKnee': ('RightLeg',), 'RAnkle': ('RightFoot',),
    'LHip': ('LeftUpLeg',), 'LKnee': ('LeftLeg',), 'LAnkle': ('LeftFoot',),
    'Spine': ('Spine',), 'Thorax': ('Spine1',), 'Neck': ('Head',), 'Head': ('Head_end',),
    'LShoulder': ('LeftArm',), 'LElbow': ('LeftForeArm',), 'LWrist': ('LeftHand',),
    'RShoulder': ('RightArm',), 'RElbow': ('RightForeArm',), 'RWrist': ('RightHand',),
}

# The cgspeed "Daz-friendly" CMU BVH release (joint = origin of the named joint; lengths
# in centimetres, not CMU units):
#   Hip = midpoint of lThigh and rThigh (the femur starts; the root 'hip' lies about
#     26 mm below them).
#   RHip / RKnee / RAnkle = rThigh / rShin / rFoot, and likewise on the left.
#   Spine = abdomen (the lowerback end, about 180 mm above the hips).
#   Thorax = neck (the base of the neck, on the spine's axis; the collars start about
#     30 mm lower and 30 mm further back).
#   Neck = head (the base of the skull).
#   Head = midpoint of leftEye and rightEye: the release has no joint at the top of the
#     head, so this head bone ends about 80 mm above and 80 mm in front of the base of
#     the skull, leaning forward by about 45 degrees where Human3.6M's points up.
#   LShoulder / LElbow / LWrist = lShldr / lForeArm / lHand, likewise on the right.
DAZ_BVH_MAP = {
    'Hip': ('lThigh', 'rThigh'),
    'RHip': ('rThigh',), 'RKnee': ('rShin',), 'RAnkle': ('rFoot',),
    'LHip': ('lThigh',), 'LKnee': ('lShin',), 'LAnkle': ('lFoot',),
    'Spine': ('abdomen',), 'Thorax': ('neck',), 'Neck': ('head',),
    'Head': ('leftEye', 'rightEye'),
    'LShoulder': ('lShldr',), 'LElbow': ('lForeArm',), 'LWrist': ('lHand',),
    'RShoulder': ('rShldr',), 'RElbow': ('rForeArm',), 'RWrist': ('rHand',),
}

# CMU's ASF bone names written as BVH joints (the clips 16_01 and 16_02 of the Daz
# folder, 30 fps; joint = origin of the named joint, that is the END of the bone before
# it; CMU units):
#   Hip = midpoint of lfemur and rfemur (the femur starts). RHip / RKnee / RAnkle =
#     rfemur / rtibia / rfoot, likewise on the left.
#   Spine = upperback (the lowerback end). Thorax = lowerneck, which sits on the
#     upperback end: this release too drops the thorax bone (lowerneck's OFFSET is 0),
#     put back as in CGSPEED_BVH_MAP.
#   Neck = head (the upperneck end); Head = head_end.
#   LShoulder / LElbow / LWrist = lhumerus / lradius / lwrist, likewise on the right.
CMU_BVH_MAP = {
    'Hip': ('lfemur', 'rfemur'),
    'RHip': ('rfemur',), 'RKnee': ('rtibia',), 'RAnkle': ('rfoot',),
    'LHip': ('lfemur',), 'LKnee': ('ltibia',), 'LAnkle': ('lfoot',),
    'Spine': ('upperback',), 'Thorax': ('lowerneck',), 'Neck': ('head',),
    'Head': ('head_end',),
    'LShoulder': ('lhumerus',), 'LElbow': ('lradius',), 'LWrist': ('lwrist',),
    'RShoulder': ('rhumerus',), 'RElbow': ('rradius',), 'RWrist': ('rwrist',),
}

# The releases that drop CMU's thorax bone (their Thorax sits at the upper back's end):
# `to_h36m` puts the bone back (`restore_thorax`), so that Thorax means the base of the
# neck in every variant, as in CMU's ASF and in Human3.6M.
THORAX_DROPPED = ('cgspeed_bvh', 'cgspeed_mb_bvh', 'cmu_bvh')


def _subtree(root):
  """A joint and every joint hanging from it, in skeleton order."""
  joints = [root]
  for j, parent in enumerate(skeleton.PARENTS):   # parents come before their children
    if parent in joints:
      joints.append(j)
  return tuple(joints)


_SPINE = skeleton.JOINT_NAMES.index('Spine')
_THORAX = skeleton.JOINT_NAMES.index('Thorax')
# Thorax and every joint hanging from it: Neck, Head, the shoulders and arms.
ABOVE_THORAX = _subtree(_THORAX)

JOINT_MAPS = {'cmu_asf': CMU_ASF_MAP, 'cgspeed_bvh': CGSPEED_BVH_MAP,
              'cgspeed_mb_bvh': CGSPEED_MB_BVH_MAP, 'daz_bvh': DAZ_BVH_MAP,
              'cmu_bvh': CMU_BVH_MAP}

# The file format each map is for: an ASF clip's joints are bone ENDS, a BVH clip's are
# joint ORIGINS, so the same names mean other points (CMU_ASF_MAP and CMU_BVH_MAP).
MAP_FORMATS = {'cmu_asf': 'asf', 'cgspeed_bvh': 'bvh', 'cgspeed_mb_bvh': 'bvh',
               'daz_bvh': 'bvh', 'cmu_bvh': 'bvh'}

# Millimetres per BVH file unit, declared per skeleton (BVH has no unit field; ASF says
# its own in the header). Checked on every loaded clip by FEMUR_RANGE_MM.
BVH_UNITS_MM = {'cgspeed_bvh': motion.CMU_UNIT_MM, 'cgspeed_mb_bvh': motion.CMU_UNIT_MM,
                'daz_bvh': 10.0, 'cmu_bvh': motion.CMU_UNIT_MM}

# An adult femur (hip to knee) is 350 to 550 mm long: a mean outside this range means a
# wrong length unit.
FEMUR_RANGE_MM = (350.0, 550.0)


def clip_format(clip):
  """'asf' for a clip read from ASF/AMC, 'bvh' from BVH, None when the source says
  neither."""
  ext = os.path.splitext(clip.source)[1].lower()
  return {'.amc': 'asf', '.asf': 'asf', '.bvh': 'bvh'}.get(ext)


def find_joint_map(joint_names, fmt=None):
  """The name of the first map in JOINT_MAPS whose source joints a skeleton has (of the
  maps for `fmt`, 'asf' or 'bvh', when given)."""
  names = set(joint_names)
  for key, table in JOINT_MAPS.items():
    if fmt is not None and MAP_FORMATS[key] != fmt:
      continue
    if all(src in names for sources in table.values() for src in sources):
      return key
  raise motion.MocapError(
      'no 17-joint mapping fits this skeleton (joints: '
      f'{", ".join(list(joint_names)[:8])} ...); known: {", ".join(JOINT_MAPS)}')


def check_units(clip, poses):
  """Raises motion.MocapError when the mean femur of 17-joint `poses` [F, 17, 3] (mm) is outside
  FEMUR_RANGE_MM: the file's length unit is not the one assumed."""
  femurs = [i for i, bone in enumerate(skeleton.BONES) if bone in ((1, 2), (4, 5))]
  femur = bone_lengths(poses)[:, femurs].mean()
  low, high = FEMUR_RANGE_MM
  if not low <= femur <= high:
    raise motion.MocapError(f'{clip.source}: the femur is {femur:.0f} mm long, outside '
                            f'{low:.0f} to {high:.0f} mm: the length unit is wrong; pass the '
                            'millimetres per file unit (unit_mm, --unit_mm)')


def restore_thorax(poses):
  """17-joint poses [..., 17, 3] of a release without CMU's thorax bone, with the bone put
  back: Thorax and every joint above it (ABOVE_THORAX) move by the upper back's own
  vector (Spine -> Thorax), so that Spine -> Thorax spans upper back and thorax.

  Why this vector: in CMU's ASF skeletons the thorax bone continues the upper back
  nearly straight and about as long (subject 01: 2.06 against 2.05 units, 2.6 degrees
  apart at rest; subject 11: 2.21 against 2.12, 5.2 degrees), and the releases fold its
  rotation into the joints above it. Every bone stays rigid: the upper body moves as one.
  On clip 01_01, held in both forms, this brings the MotionBuilder release's Thorax
  from 117 mm to 12 mm of the ASF original's, every joint above the upper back alike,
  the lower body within 1 mm (tests/test_mocap.py)."""
  poses = np.array(poses, np.float64, copy=True)
  shift = poses[..., _THORAX, :] - poses[..., _SPINE, :]
  poses[..., list(ABOVE_THORAX), :] += shift[..., None, :]
  return poses


def to_h36m(clip, joint_map=None):
  """Human3.6M's 17 joints [F, 17, 3] (world frame, mm) of a clip.

  joint_map: a key of JOINT_MAPS, a table {h36m name: source joint names whose mean is
  taken}, or None to pick the map that fits the clip's joint names. The maps of
  THORAX_DROPPED put the missing thorax bone back (`restore_thorax`); a table is used as
  it is.
  """
  if joint_map is None:
    joint_map = find_joint_map(clip.joint_names, clip_format(clip))
  table = JOINT_MAPS[joint_map] if isinstance(joint_map, str) else joint_map
  out = np.zeros((clip.num_frames, skeleton.NUM_JOINTS, 3))
  for j, name in enumerate(skeleton.JOINT_NAMES):
    sources = table[name]
    missing = [s for s in sources if s not in clip.joint_names]
    if missing:
      raise motion.MocapError(f'{clip.source}: joint map needs {missing[0]!r}, which the '
                              'skeleton lacks')
    out[:, j] = np.mean([clip.joint(s) for s in sources], axis=0)
  if isinstance(joint_map, str) and joint_map in THORAX_DROPPED:
    out = restore_thorax(out)
  return out


def bone_lengths(poses):
  """Lengths of skeleton.BONES: [..., 17, 3] -> [..., 16] (in BONES order)."""
  poses = np.asarray(poses, np.float64)
  parents = [p for p, _ in skeleton.BONES]
  children = [c for _, c in skeleton.BONES]
  return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


# The shortest bone a pose may have: below it two joints sit in one place (a collapsed
# or zeroed pose). The shortest bone of the shared motion capture's 70,638 bank poses is
# 68.6 mm (a pelvis-to-hip bone).
MIN_BONE_MM = 10.0


def first_short_bone(poses, min_mm=MIN_BONE_MM):
  """(pose index, bone name, length) of the first bone under `min_mm` in poses
  [N, 17, 3] (mm), or None when every bone is long enough."""
  lengths = bone_lengths(np.asarray(poses, np.float64).reshape(-1, skeleton.NUM_JOINTS, 3))
  short = np.argwhere(lengths < min_mm)
  if not len(short):
    return None
  i, b = (int(v) for v in short[0])
  parent, child = skeleton.BONES[b]
  return (i, f'{skeleton.JOINT_NAMES[parent]} -> {skeleton.JOINT_NAMES[child]}',
          float(lengths[i, b]))


def retarget(poses, lengths=None, frame_numbers=None):
  """Gives every bone of 17-joint poses [..., 17, 3] the length lengths[child]
  (default skeleton.MEAN_BONE_LENGTHS_MM), keeping every bone's direction and the root
  position; the tree is walked from the root. ValueError when a bone has zero length,
  naming the first pose's frame (frame_numbers[i] for poses [F, 17, 3] when given, else
  its index)."""
  lengths = skeleton.MEAN_BONE_LENGTHS_MM if lengths is None else lengths
  poses = np.asarray(poses, np.float64)
  out = np.empty_like(poses)
  out[..., skeleton.ROOT, :] = poses[..., skeleton.ROOT, :]
  for child, parent in enumerate(skeleton.PARENTS):
    if parent < 0:
      continue
    vec = poses[..., child, :] - poses[..., parent, :]
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    if np.any(norm <= 0):
      first = np.argwhere(norm[..., 0] <= 0)[0]
      where = ''
      if len(first):
        frame = int(first[0]) if frame_numbers is None else int(frame_numbers[first[0]])
        where = f' in frame {frame}'
      raise ValueError(f'retarget: the bone {skeleton.JOINT_NAMES[parent]} -> '
                       f'{skeleton.JOINT_NAMES[child]} has zero length{where}: no direction '
                       'to give the mean length.')
    out[..., child, :] = out[..., parent, :] + lengths[child] * vec / norm
  return out

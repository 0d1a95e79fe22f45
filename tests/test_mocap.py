# Over 400 lines: the four shared skeleton variants, each read, mapped and checked bone by bone.
"""Motion capture: the ASF/AMC and BVH readers, the maps to the 17 joints, the units."""

import collections
import os
import re

import numpy as np
import pytest

from fbi3d import skeleton
from fbi3d.data import asf_amc
from fbi3d.data import body
from fbi3d.data import bvh
from fbi3d.data import cameras
from fbi3d.data import joint_maps
from fbi3d.data import mocap
from fbi3d.data import motion
from tests.conftest import MOCAP_DIR
from tests.conftest import needs_shared_mocap


# One length unit is 25.4 / 0.254 = 100 mm. Bone 'upper' has its local axes turned 90
# degrees about z; 'lower' rotates x then z.
TINY_ASF = """\
# a tiny skeleton
:version 1.10
:name tiny
:units
  mass 1.0
  length 0.254
  angle deg
:documentation
  root and two bones
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 0 0 1
     length 2
     axis 0 0 90  XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 2
     name lower
     direction 0 1 0
     length 1
     axis 0 0 0  XYZ
    dof rx rz
    limits (-180.0 180.0)
           (-180.0 180.0)
  end
:hierarchy
  begin
    root upper
    upper lower
  end
"""

TINY_AMC = """\
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 0 0 0
upper 0
lower 0 0
2
root 0 0 0 0 90 0
upper 90
lower 90 90
"""

# Root with ZXY rotations, a child with XYZ; in centimetres.
TINY_BVH = """\
HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 3 0 0 0 0 0 0
0 0 0 90 90 0 0 90 90
"""


def _write(folder, name, text):
  path = os.path.join(str(folder), name)
  with open(path, 'w') as f:
    f.write(text)
  return path


def test_asf_amc_forward_kinematics_is_exact(tmp_path):
  asf = _write(tmp_path, 'tiny.asf', TINY_ASF)
  amc = _write(tmp_path, 'tiny_01.amc', TINY_AMC)
  clip = asf_amc.asf_amc_clip(asf, amc)
  assert clip.joint_names == ('root', 'upper', 'lower')
  assert clip.parents == (-1, 0, 1)
  assert clip.frame_rate == 120.0
  # Source (y up) points by hand, in units:
  # frame 1, rest pose moved to (1, 2, 3): upper end (1, 2, 5), lower end (1, 3, 5).
  # frame 2: root Ry(90); upper C Rx(90) C^-1 = Ry(90), so W = Ry(180) and its end is
  # (0, 0, -2); lower Rz(90) Rx(90) (0, 1, 0) = (0, 0, 1), turned by Ry(180): (0, 0, -1).
  source = np.array([[[1, 2, 3], [1, 2, 5], [1, 3, 5]],
                     [[0, 0, 0], [0, 0, -2], [0, 0, -3]]], np.float64) * 100.0
  world = np.stack([source[..., 0], -source[..., 2], source[..., 1]], axis=-1)
  np.testing.assert_allclose(clip.positions, world, atol=1e-6)
  assert mocap.asf_for_amc(amc) == asf


def test_bvh_forward_kinematics_is_exact(tmp_path):
  path = _write(tmp_path, 'tiny.bvh', TINY_BVH)
  clip = bvh.read_bvh(path, unit_mm=10.0)
  assert clip.joint_names == ('Hips', 'Chest', 'Chest_end')
  assert clip.parents == (-1, 0, 1)
  assert clip.frame_rate == 25.0
  # Frame 2: W_hips = Rz(90) Rx(90); Chest at W_hips (0, 10, 0) = (0, 0, 10); the end at
  # Chest + W_hips Ry(90) Rz(90) (0, 5, 0) = Chest + (5, 0, 0).
  source = np.array([[[1, 2, 3], [1, 12, 3], [1, 17, 3]],
                     [[0, 0, 0], [0, 0, 10], [5, 0, 10]]], np.float64) * 10.0
  world = np.stack([source[..., 0], -source[..., 2], source[..., 1]], axis=-1)
  np.testing.assert_allclose(clip.positions, world, atol=1e-6)


@pytest.mark.parametrize('text,cut,pattern', [
    (TINY_BVH, lambda t: t.rsplit('\n', 2)[0] + '\n', r'tiny\.bvh:\d+: .*truncated'),
    (TINY_BVH, lambda t: t.replace('0 0 0 90 90 0 0 90 90', '0 0 0 90 x 0 0 90 90'),
     r'tiny\.bvh:20: .*numbers'),
    (TINY_BVH, lambda t: t.replace('0 0 0 90 90 0 0 90 90', '0 0 0 90 90'),
     r'tiny\.bvh:20: frame 2: expected 9 values, got 5'),
    (TINY_BVH, lambda t: t.replace('OFFSET 0 10 0', 'OFFSET 0 10'),
     r'tiny\.bvh:9: .*OFFSET'),
    (TINY_BVH, lambda t: t.split('MOTION')[0], r'tiny\.bvh:\d+: expected a MOTION'),
    (TINY_BVH, lambda t: re.sub(r'Frame Time: *\S+', 'Frame Time: nan', t),
     r'tiny\.bvh:\d+: expected "Frame Time: <seconds > 0>", got \'Frame Time: nan\''),
    (TINY_BVH, lambda t: re.sub(r'Frame Time: *\S+', 'Frame Time: inf', t),
     r'tiny\.bvh:\d+: expected "Frame Time: <seconds > 0>", got \'Frame Time: inf\''),
    # One channel twice; an End Site whose name (Chest_end) a joint already has; a root
    # order with a token twice (each overwrote the other's value unseen).
    (TINY_BVH, lambda t: t.replace('CHANNELS 3 Xrotation Yrotation Zrotation',
                                   'CHANNELS 3 Xrotation Xrotation Zrotation'),
     r"tiny\.bvh:9: joint 'Chest': channel 'Xrotation' given twice"),
    (TINY_BVH, lambda t: t.replace('JOINT Chest', 'JOINT Chest_end').replace(
        '    End Site', '    JOINT Chest\n    {\n      OFFSET 0 1 0\n      CHANNELS 0\n'
        '      End Site\n      {\n        OFFSET 0 1 0\n      }\n    }\n    End Site'),
     r"tiny\.bvh:\d+: the End Site of 'Chest' would be named 'Chest_end', a name the file "
     r'already uses'),
    # A damaged count is refused before any array of its size is made.
    (TINY_BVH, lambda t: t.replace('Frames: 2', 'Frames: 100000000000000'),
     r'tiny\.bvh:20: expected 100000000000000 frames \(Frames: line 17\), found 2: file '
     r'truncated'),
])
def test_bad_bvh_names_file_and_line(tmp_path, text, cut, pattern):
  path = _write(tmp_path, 'tiny.bvh', cut(text))
  with pytest.raises(motion.MocapError, match=pattern):
    bvh.read_bvh(path)


def test_bad_asf_amc_names_file_and_line(tmp_path):
  asf = _write(tmp_path, 'tiny.asf', TINY_ASF)
  amc = _write(tmp_path, 'tiny_01.amc', TINY_AMC.rsplit('\n', 2)[0] + '\n')
  with pytest.raises(motion.MocapError, match=r"tiny_01\.amc:\d+: frame 2 .*missing 'lower'"):
    asf_amc.asf_amc_clip(asf, amc)
  amc = _write(tmp_path, 'tiny_02.amc', TINY_AMC.replace('upper 90', 'upper 90 1'))
  with pytest.raises(motion.MocapError, match=r"tiny_02\.amc:9: bone 'upper': expected 1"):
    asf_amc.asf_amc_clip(asf, amc)
  # One bone's line twice in a frame (the second would replace the first unseen).
  amc = _write(tmp_path, 'tiny_03.amc', TINY_AMC.replace('upper 90\n', 'upper 90\nupper 0\n'))
  with pytest.raises(motion.MocapError, match=r"tiny_03\.amc:10: bone 'upper' given twice "
                     r'in frame 2'):
    asf_amc.asf_amc_clip(asf, amc)
  dup = _write(tmp_path, 'dup.asf', TINY_ASF.replace('order TX TY TZ', 'order TX TX TZ'))
  with pytest.raises(motion.MocapError, match=r'dup\.asf:11: expected "order" followed by '
                     r'TX TY TZ RX RY RZ tokens, each once'):
    asf_amc.read_asf(dup)
  # A bare "length" under :units (was an IndexError that ended a whole pose bank).
  bare = _write(tmp_path, 'bare.asf', TINY_ASF.replace('  length 0.254\n', '  length\n'))
  with pytest.raises(motion.MocapError, match=r'bare\.asf:6: expected "length <positive '
                     r'number>"'):
    asf_amc.read_asf(bare)
  bad = _write(tmp_path, 'bad.asf', TINY_ASF.replace('     length 1\n', '     length one\n'))
  with pytest.raises(motion.MocapError, match=r'bad\.asf:\d+: expected a length'):
    asf_amc.read_asf(bad)
  cut = _write(tmp_path, 'cut.asf', TINY_ASF.split(':hierarchy')[0])
  with pytest.raises(motion.MocapError, match=r'cut\.asf:\d+: expected a :hierarchy'):
    asf_amc.read_asf(cut)


def test_retarget_gives_mean_lengths_and_keeps_directions():
  rng = np.random.default_rng(0)
  poses = rng.normal(0, 300, (5, 17, 3))
  out = joint_maps.retarget(poses)
  lengths = joint_maps.bone_lengths(out)
  expected = [skeleton.MEAN_BONE_LENGTHS_MM[c] for _, c in skeleton.BONES]
  np.testing.assert_allclose(lengths, np.broadcast_to(expected, lengths.shape), atol=1e-9)
  for p, c in skeleton.BONES:
    a = poses[:, c] - poses[:, p]
    b = out[:, c] - out[:, p]
    np.testing.assert_allclose(a / np.linalg.norm(a, axis=-1, keepdims=True),
                               b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-12)
  np.testing.assert_allclose(out[:, 0], poses[:, 0])


def test_camera_frame_has_y_down_and_ground_placement():
  pose = np.zeros((17, 3))
  for parent, child in skeleton.BONES:
    pose[child] = pose[parent] + [0.0, 0.0, 100.0 if child in (7, 8, 9, 10) else -100.0]
  pose[[1, 4], 0] = [100.0, -100.0]
  placed = body.place_on_ground(pose, yaw=np.pi / 2, ankle_height_mm=80.0)
  assert min(placed[3, 2], placed[6, 2]) == pytest.approx(80.0)
  np.testing.assert_allclose(placed[0, :2], 0.0, atol=1e-9)
  np.testing.assert_allclose(placed[1, :2], [0.0, 100.0], atol=1e-9)
  camera = dict(rotation=np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),
                centre=np.array([0.0, -5000.0, 1000.0]))
  cam = cameras.world_to_camera(placed, camera)
  assert cam[10, 1] < cam[3, 1]            # the head is above (smaller y) the ankle
  assert np.all(cam[:, 2] > 4000.0)


# ---------------------------------------------------------------------------------------
# The real files.

# Bones of the mapping that are one rigid segment of the source skeleton keep their
# length to within 1 mm. The others span a bending joint of the source (Pelvis->Spine
# where the spine's first joint sits at the root; Thorax->Neck where the neck has
# joints of its own; Spine->Thorax where Thorax is not the next joint of the spine), so
# their length changes as the back bends: at most 10% longer and 50% shorter than its
# median (a dancer's deepest bend in cmu_bvh_mb folds Pelvis->Spine to 0.6 of it).
_SPANNING = {'cmu_asf': (7, 8, 9), 'cgspeed_bvh': (7, 9), 'cgspeed_mb_bvh': (7, 9),
             'cmu_bvh': (7, 9), 'daz_bvh': (8,)}

# The shared folders: clips and frames as their files say (the data README gives them
# for the first two folders file by file, for the others about 121,000 and 32,000).
_FOLDERS = {
    'cmu_asf_amc': {'01_01.amc': 2751, '11_01.amc': 597},
    'cmu_bvh': {'131_01.bvh': 994, '131_02.bvh': 1247, '131_03.bvh': 1102},
}
_FOLDER_TOTALS = {'cmu_bvh_mb': (98, 121380), 'cmu_bvh_daz': (61, 31528)}
_MAPS = {'cmu_asf_amc': {'cmu_asf'}, 'cmu_bvh': {'cgspeed_bvh'},
         'cmu_bvh_mb': {'cgspeed_mb_bvh'}, 'cmu_bvh_daz': {'daz_bvh', 'cmu_bvh'}}


@pytest.fixture(scope='module')
def real_clips():
  if not os.path.isdir(MOCAP_DIR):
    pytest.skip(f'shared motion capture data not found at {MOCAP_DIR}')
  return {os.path.relpath(p, MOCAP_DIR): mocap.load_clip(p)
          for p in mocap.find_motion_files(MOCAP_DIR)}


@needs_shared_mocap
def test_every_shared_file_parses_with_constant_bones(real_clips):
  folders = {name.split(os.sep)[0] for name in real_clips}
  assert folders == set(_FOLDERS) | set(_FOLDER_TOTALS)
  for folder, counts in _FOLDERS.items():
    assert sorted(n for n in real_clips if n.startswith(folder + os.sep)) == sorted(
        os.path.join(folder, f) for f in counts)
  for name, clip in real_clips.items():
    # 30 fps for the two clips of subject 16, 120 fps for every other.
    assert clip.frame_rate == (30.0 if '16_0' in name else 120.0), name
    # Every bone of the source skeleton is rigid: forward kinematics keeps its length.
    for k, parent in enumerate(clip.parents):
      if parent >= 0:
        length = np.linalg.norm(clip.positions[:, k] - clip.positions[:, parent], axis=-1)
        assert length.max() - length.min() < 1.0, (name, clip.joint_names[k])
    key = joint_maps.find_joint_map(clip.joint_names, joint_maps.clip_format(clip))
    assert key in _MAPS[name.split(os.sep)[0]], (name, key)
    poses = joint_maps.to_h36m(clip)
    assert np.all(np.isfinite(poses))
    lengths = joint_maps.bone_lengths(poses)
    spread = lengths.max(axis=0) - lengths.min(axis=0)
    for i, (_, child) in enumerate(skeleton.BONES):
      if child in _SPANNING[key]:
        median = np.median(lengths[:, i])
        assert 0.5 * median < lengths[:, i].min(), (name, child)
        assert lengths[:, i].max() < 1.1 * median, (name, child)
      else:
        assert spread[i] < 1.0, (name, skeleton.JOINT_NAMES[child], spread[i])
    # The length unit: an adult femur.
    femur = lengths[:, [1, 4]].mean()
    assert joint_maps.FEMUR_RANGE_MM[0] < femur < joint_maps.FEMUR_RANGE_MM[1], (name, femur)
    # World frame: z up, a standing person's head above the pelvis above the ankles.
    assert np.median(poses[:, 10, 2] - poses[:, 0, 2]) > 400.0, name
    assert np.median(poses[:, 0, 2] - poses[:, [3, 6], 2].min(axis=1)) > 600.0, name


@needs_shared_mocap
def test_frame_counts_match_the_files(real_clips):
  for folder, counts in _FOLDERS.items():
    for name, frames in counts.items():
      assert real_clips[os.path.join(folder, name)].num_frames == frames
  for folder, (num_clips, frames) in _FOLDER_TOTALS.items():
    clips = [c for n, c in real_clips.items() if n.startswith(folder + os.sep)]
    assert (len(clips), sum(c.num_frames for c in clips)) == (num_clips, frames), folder


def _right_dot(poses, forward):
  """(RHip - LHip) and (RShoulder - LShoulder) against the subject's right, forward x up."""
  forward = forward.copy()
  forward[:, 2] = 0.0
  right = np.cross(forward, [0.0, 0.0, 1.0])
  return (np.einsum('ij,ij->i', poses[:, 1] - poses[:, 4], right),
          np.einsum('ij,ij->i', poses[:, 14] - poses[:, 11], right))


@needs_shared_mocap
def test_right_side_is_the_subjects_right(real_clips):
  # Knees bend forward only: the knee's offset from the hip-ankle line is the facing
  # direction, whatever the labels say. Frame by frame this misleads in a few poses
  # (legs raised while climbing, a dancer's turned-out knees), so each clip must agree
  # in at least 80% of its frames (a skeleton with its sides swapped agrees in almost
  # none) and each folder in at least 95%.
  agree = collections.defaultdict(list)
  for name, clip in real_clips.items():
    poses = joint_maps.to_h36m(clip)
    forward = sum(poses[:, k] - 0.5 * (poses[:, h] + poses[:, a])
                  for h, k, a in ((1, 2, 3), (4, 5, 6)))
    bent = np.linalg.norm(forward[:, :2], axis=1) > 30.0
    hips, shoulders = _right_dot(poses[bent], forward[bent])
    assert bent.mean() > 0.5
    assert (hips > 0).mean() > 0.8 and (shoulders > 0).mean() > 0.8, name
    agree[name.split(os.sep)[0]].extend((hips > 0) & (shoulders > 0))
  for folder, frames in agree.items():
    assert np.mean(frames) > 0.95, folder
  # Walking and jumping forward: the direction of travel over one second.
  for name in ('cmu_bvh/131_02.bvh', 'cmu_asf_amc/11_01.amc'):
    clip = real_clips[name]
    poses = joint_maps.to_h36m(clip)
    n = int(clip.frame_rate / 2)
    velocity = (poses[2 * n:, 0] - poses[:-2 * n, 0]) * clip.frame_rate / (2 * n)
    moving = np.linalg.norm(velocity[:, :2], axis=1) > 250.0
    hips, shoulders = _right_dot(poses[n:-n][moving], velocity[moving])
    assert moving.sum() > 100
    assert (hips > 0).mean() > 0.95 and (shoulders > 0).mean() > 0.95, name


@needs_shared_mocap
def test_thorax_bone_put_back_where_the_bvh_release_dropped_it(real_clips):
  # Clip 01_01 is held in two forms: CMU's ASF/AMC and the MotionBuilder BVH release,
  # which starts with one extra frame (its T-pose) and drops the thorax bone.
  asf = joint_maps.to_h36m(real_clips['cmu_asf_amc/01_01.amc'])
  clip = real_clips['cmu_bvh_mb/01_01.bvh']
  raw = joint_maps.to_h36m(clip, joint_maps.CGSPEED_MB_BVH_MAP)[1:]
  bvh = joint_maps.to_h36m(clip)[1:]
  assert len(asf) == len(bvh) == 2751

  def per_joint_error(poses):
    return np.linalg.norm((poses - poses[:, :1]) - (asf - asf[:, :1]), axis=-1).mean(axis=0)

  upper = list(joint_maps.ABOVE_THORAX)
  lower = [j for j in range(skeleton.NUM_JOINTS) if j not in upper]
  before, after = per_joint_error(raw), per_joint_error(bvh)
  # Without the bone, every joint above the upper back sits 117 mm off; with it put
  # back, 12 mm (the thorax bone's own bend, which the release lost); the lower body,
  # untouched, agrees within 1 mm in both.
  assert np.all((before[upper] > 110.0) & (before[upper] < 125.0))
  assert np.all(after[upper] < 15.0)
  assert np.all(after[lower] < 1.0) and np.array_equal(before[lower], after[lower])
  # Spine->Thorax now spans upper back and thorax, as in the ASF original.
  asf_len = np.linalg.norm(asf[:, 8] - asf[:, 7], axis=-1).mean()
  bvh_len = np.linalg.norm(bvh[:, 8] - bvh[:, 7], axis=-1).mean()
  assert abs(asf_len - bvh_len) < 5.0


def test_restore_thorax_moves_the_upper_body_by_the_upper_back():
  pose = np.zeros((17, 3))
  pose[7] = (0.0, 0.0, 200.0)              # Spine
  pose[8] = (0.0, 30.0, 300.0)             # Thorax: the upper back is (0, 30, 100)
  for j in range(9, 17):
    pose[j] = (j, -j, 400.0 + j)
  out = joint_maps.restore_thorax(pose[None])[0]
  assert joint_maps.ABOVE_THORAX == (8, 9, 10, 11, 12, 13, 14, 15, 16)
  np.testing.assert_array_equal(out[:8], pose[:8])
  np.testing.assert_array_equal(out[8:], pose[8:] + np.array([0.0, 30.0, 100.0]))
  np.testing.assert_array_equal(pose[8], (0.0, 30.0, 300.0))   # the input is not changed


def _rest_bvh(joints):
  """A one-frame BVH with zero rotations: joints [(name, parent or None, offset)], every
  parent listed before its children; End Sites are not written."""
  children = collections.defaultdict(list)
  for name, parent, offset in joints:
    children[parent].append((name, offset))

  def block(name, offset, depth, root=False):
    pad = '  ' * depth
    channels = ('6 Xposition Yposition Zposition Zrotation Yrotation Xrotation' if root
                else '3 Zrotation Yrotation Xrotation')
    lines = [f'{pad}{"ROOT" if root else "JOINT"} {name}', pad + '{',
             f'{pad}  OFFSET {offset[0]} {offset[1]} {offset[2]}',
             f'{pad}  CHANNELS {channels}']
    for child, child_offset in children[name]:
      lines += block(child, child_offset, depth + 1)
    return lines + [pad + '}']

  (root, offset), = children[None]
  values = ' '.join(['0'] * (3 + 3 * len(joints)))
  return '\n'.join(['HIERARCHY'] + block(root, offset, 0, root=True) +
                   ['MOTION', 'Frames: 1', 'Frame Time: 0.0083333', values]) + '\n'


# The Daz-friendly skeleton standing in its rest pose, in centimetres; each side's leg
# and arm point straight down and out, so every mapped joint is known by hand.
_DAZ_REST = [('hip', None, (0, 0, 0)), ('abdomen', 'hip', (0, 20, 0)),
             ('chest', 'abdomen', (0, 12, 0)), ('neck', 'chest', (0, 22, 0)),
             ('head', 'neck', (0, 7, 0)), ('leftEye', 'head', (3, 8, 8)),
             ('rightEye', 'head', (-3, 8, 8))]
for _side, _sign in (('l', 1), ('r', -1)):
  _DAZ_REST += [(f'{_side}Collar', 'chest', (_sign * 3, 19, 0)),
                (f'{_side}Shldr', f'{_side}Collar', (_sign * 9, 0, 0)),
                (f'{_side}ForeArm', f'{_side}Shldr', (_sign * 28, 0, 0)),
                (f'{_side}Hand', f'{_side}ForeArm', (_sign * 23, 0, 0)),
                (f'{_side}Buttock', 'hip', (_sign * 9, 4, 0)),
                (f'{_side}Thigh', f'{_side}Buttock', (0, -2, 0)),
                (f'{_side}Shin', f'{_side}Thigh', (0, -40, 0)),
                (f'{_side}Foot', f'{_side}Shin', (0, -45, 0))]


def test_daz_skeleton_maps_in_centimetres_and_a_wrong_unit_is_refused(tmp_path):
  path = _write(tmp_path, '35_99.bvh', _rest_bvh(_DAZ_REST))
  clip = mocap.load_clip(path)
  assert joint_maps.find_joint_map(clip.joint_names, joint_maps.clip_format(clip)) == 'daz_bvh'
  poses = joint_maps.to_h36m(clip)
  # Source (x, y up, z forward) in cm -> world (x, -z, y) in mm. The pelvis is the
  # midpoint of the thighs at y = 4 - 2 = 2 cm; Head is the eyes' midpoint.
  source = {'Hip': (0, 2, 0), 'RHip': (-9, 2, 0), 'RKnee': (-9, -38, 0),
            'RAnkle': (-9, -83, 0), 'LHip': (9, 2, 0), 'LKnee': (9, -38, 0),
            'LAnkle': (9, -83, 0), 'Spine': (0, 20, 0), 'Thorax': (0, 54, 0),
            'Neck': (0, 61, 0), 'Head': (0, 69, 8), 'LShoulder': (12, 51, 0),
            'LElbow': (40, 51, 0), 'LWrist': (63, 51, 0), 'RShoulder': (-12, 51, 0),
            'RElbow': (-40, 51, 0), 'RWrist': (-63, 51, 0)}
  expected = np.array([[10.0 * x, -10.0 * z, 10.0 * y]
                       for x, y, z in (source[n] for n in skeleton.JOINT_NAMES)])
  np.testing.assert_allclose(poses[0], expected, atol=1e-9)
  # Read as CMU units (56.444 mm) the femur would be 2258 mm: refused, with what to do.
  with pytest.raises(motion.MocapError, match=r'35_99\.bvh: the femur is 2258 mm long, '
                     r'outside 350 to 550 mm.*unit_mm'):
    mocap.load_clip(path, unit_mm=motion.CMU_UNIT_MM)


def test_a_value_that_is_not_finite_is_refused_with_its_line(tmp_path):
  text = _rest_bvh(_DAZ_REST).splitlines()
  # The one frame is the last line: its second root position channel made NaN, then
  # infinite. Before, NaN passed the reader and was refused as a wrong length unit.
  for bad in ('nan', 'inf'):
    values = text[-1].split()
    values[1] = bad
    path = _write(tmp_path, '35_98.bvh', '\n'.join(text[:-1] + [' '.join(values)]) + '\n')
    with pytest.raises(motion.MocapError, match=rf'35_98\.bvh:{len(text)}: expected '
                       rf'\d+ channel values \(finite numbers\), got {bad!r}'):
      mocap.load_clip(path)


def test_a_clip_without_frames_is_refused_as_such(tmp_path):
  # "Frames: 0": before, the unit check's mean femur of no frames was NaN ("the femur is
  # nan mm long ... the length unit is wrong").
  text = _rest_bvh(_DAZ_REST).splitlines()
  frames = text.index('Frames: 1')
  path = _write(tmp_path, '35_97.bvh', '\n'.join(text[:frames] + ['Frames: 0']
                                                 + text[frames + 1:-1]) + '\n')
  with pytest.raises(motion.MocapError) as e:
    mocap.load_clip(path)
  assert str(e.value) == (f'{path}: the clip holds no frames ("Frames: 0"): there is no '
                          'pose in it to read')


def test_asf_bone_names_in_a_bvh_use_the_bvh_map():
  # In a BVH a joint is where its bone STARTS: 'lfemur' is the hip, not the knee, so the
  # ASF map (bone ENDS) must not be taken for a BVH with ASF bone names.
  asf_names = {s for sources in joint_maps.CMU_ASF_MAP.values() for s in sources}
  bvh_names = {s for sources in joint_maps.CMU_BVH_MAP.values() for s in sources}
  both = asf_names | bvh_names
  assert joint_maps.find_joint_map(both, 'bvh') == 'cmu_bvh'
  assert joint_maps.find_joint_map(both, 'asf') == 'cmu_asf'
  with pytest.raises(motion.MocapError, match='no 17-joint mapping fits'):
    joint_maps.find_joint_map({'Hips', 'Spine'}, 'bvh')

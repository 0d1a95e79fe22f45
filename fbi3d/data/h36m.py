"""Human3.6M as researchers hold it: cameras, joints, action names and the standard
protocol, which the three readers and the records writer share.

The readers, one module per source, each yield `Sequence`s (one subject, take and camera)
or `Skip`s (what could not be read, and why):
  h36m_original     the original release: CDF poses, mp4 videos
  h36m_videopose3d  VideoPose3D's archives: data_3d_h36m.npz, data_2d_h36m_*.npz
  h36m_martinez     Martinez et al.'s h5 files: 3D_positions, cameras.h5, StackedHourglass
`h36m_records.write_records` turns them into the TFRecord schema of fbi3d/data/schema.py and a
manifest like the challenge converter's, split by subject (the standard protocol: train on
S1, S5, S6, S7, S8; test on S9 and S11).

Camera parameters are the ones published with the data set (the same numbers are in
Martinez et al.'s cameras.h5 and in VideoPose3D's common/h36m_dataset.py): per camera the
focal length and centre (pixels), radial (k1, k2, k3) and tangential (p1, p2) distortion
and the picture size; per subject and camera the orientation (a unit quaternion w, x, y,
z that turns camera coordinates into world coordinates) and the camera centre in world
millimetres. World coordinates are z up, millimetres.
"""

import dataclasses
import os
import re

import numpy as np

from fbi3d import geometry
from fbi3d import skeleton

CAMERAS = ('54138969', '55011271', '58860488', '60457274')

# focal (fx, fy), centre (cx, cy), radial (k1, k2, k3), tangential (p1, p2), size (w, h).
INTRINSICS = {
    '54138969': dict(focal=(1145.0494384765625, 1143.7811279296875),
                     centre=(512.54150390625, 515.4514770507812),
                     radial=(-0.20709891617298126, 0.24777518212795258,
                             -0.0030751503072679043),
                     tangential=(-0.0009756988729350269, -0.00142447161488235),
                     size=(1000, 1002)),
    '55011271': dict(focal=(1149.6756591796875, 1147.5916748046875),
                     centre=(508.8486328125, 508.0649108886719),
                     radial=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
                     tangential=(-0.0016190266469493508, -0.0027408944442868233),
                     size=(1000, 1000)),
    '58860488': dict(focal=(1149.1407470703125, 1148.7989501953125),
                     centre=(519.8158569335938, 501.40264892578125),
                     radial=(-0.2083381861448288, 0.25548800826072693,
                             -0.0024604974314570427),
                     tangential=(0.0014843869721516967, -0.0007599993259645998),
                     size=(1000, 1000)),
    '60457274': dict(focal=(1145.5113525390625, 1144.77392578125),
                     centre=(514.9682006835938, 501.88201904296875),
                     radial=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
                     tangential=(-0.0005872055771760643, -0.0018133620033040643),
                     size=(1000, 1002)),
}

# Per subject, per camera in CAMERAS order: (orientation w, x, y, z), (centre x, y, z mm).
EXTRINSICS = {
    1: (((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         (-1794.7896728515625, -3722.698974609375, 1574.8927001953125))),
    5: (((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
         (2097.3916015625, 4880.94482421875, 1605.732421875)),
        ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
         (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
         (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
         (-1637.1737060546875, -3867.3173828125, 1547.033203125))),
    6: (((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
         (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
         (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
         (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
         (-1721.668701171875, -3884.13134765625, 1540.4879150390625))),
    7: (((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
         (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
         (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
         (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
         (-1734.7105712890625, -3832.42138671875, 1548.5830078125))),
    8: (((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
         (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
         (2219.965576171875, -5148.453125, 1613.0440673828125)),
        ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
         (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
         (-1476.913330078125, -3896.7412109375, 1547.97216796875))),
    9: (((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
         (2044.45849609375, 4935.1171875, 1481.2275390625)),
        ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
         (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
         (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
         (-1696.04345703125, -3827.099853515625, 1591.4127197265625))),
    11: (((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
          (2098.440185546875, 4926.5546875, 1500.278564453125)),
         ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
          (2083.182373046875, -4912.1728515625, 1561.07861328125)),
         ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
          (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
         ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
          (-1590.738037109375, -3854.1689453125, 1578.017578125))),
}

TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)
FRAME_RATE = 50.0

# The 17 of the 32 joints of the original release (and of VideoPose3D's 3D archive), in
# the order of fbi3d/skeleton.py.
JOINTS_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
NUM_SOURCE_JOINTS = 32

# Why an item was skipped: the manifest counts skips by these kinds.
SKIP_KINDS = ('missing_camera', 'unknown_action', 'unknown_subject', 'short_video',
              'short_2d', 'bad_file', 'empty_subject', 'bad_frame', 'bad_units')


class H36MError(ValueError):
  """A Human3.6M file or folder that cannot be read; the message names it, `kind` (one
  of SKIP_KINDS) is how the manifest counts it when it is skipped."""

  def __init__(self, message, kind='bad_file'):
    super().__init__(message)
    self.kind = kind


@dataclasses.dataclass
class Sequence:
  """One subject, take and camera.

  pose3d: [F, 17, 3] camera frame, mm. pose2d: [F, 17, 2] picture pixels, or None (then
  projected from pose3d through the camera). video: the mp4 to crop from, or None. cam:
  the camera (camera_parameters' dict; by default the published one of this subject).
  """
  subject: int
  take: str
  camera: str
  pose3d: np.ndarray
  pose2d: object = None
  video: object = None
  source: str = ''
  cam: object = None

  def camera_dict(self):
    return self.cam if self.cam is not None else camera_parameters(self.subject, self.camera)

  @property
  def action(self):
    return parse_action(self.take)[0]


@dataclasses.dataclass
class Skip:
  """What a reader could not use: `kind` one of SKIP_KINDS, `reason` names the file."""
  kind: str
  reason: str


def subject_number(name):
  """11 for 'S11' (a folder name or an archive key); H36MError otherwise."""
  m = re.fullmatch(r'S(\d+)', str(name))
  if not m:
    raise H36MError(f'{name!r} is not a subject name (S1, S5, ..., S11)', 'unknown_subject')
  return int(m.group(1))


def parse_action(take):
  """(action, take) of a take name as the releases spell it: 'Directions 1',
  'Directions_1', 'TakingPhoto' -> ('Directions', 'Directions 1'), ..., ('Photo',
  'TakingPhoto'). H36MError for a name that is none of the 15 actions."""
  take = str(take).replace('_', ' ').strip()
  index = skeleton.action_index(take)
  if index == skeleton.UNKNOWN_ACTION:
    raise H36MError(f'unknown action {take!r}: not one of the 15 Human3.6M actions '
                    f'({", ".join(skeleton.ACTIONS)})', 'unknown_action')
  return skeleton.ACTIONS[index], take


def select_joints(poses):
  """[..., 32, D] -> [..., 17, D] (JOINTS_32_TO_17)."""
  poses = np.asarray(poses)
  if poses.ndim < 2 or poses.shape[-2] != NUM_SOURCE_JOINTS:
    raise H36MError(f'expected 32 joints, got an array of shape {poses.shape}')
  return poses[..., list(JOINTS_32_TO_17), :]


def quaternion_matrix(q):
  """The rotation matrix of a unit quaternion (w, x, y, z)."""
  w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
  return np.array([
      [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def camera_parameters(subject, camera):
  """A camera of a subject's recordings: dict(rotation [3, 3] world->camera, centre [3]
  mm, intrinsics (fx, fy, cx, cy), distortion (k1, k2, k3, p1, p2), size (w, h)).
  H36MError for a subject or camera without published parameters."""
  if camera not in INTRINSICS:
    raise H36MError(f'unknown camera {camera!r}: Human3.6M has {", ".join(CAMERAS)}')
  if subject not in EXTRINSICS:
    raise H36MError(f'no published camera placement for subject S{subject} (known: '
                    f'{", ".join(f"S{s}" for s in EXTRINSICS)})')
  q, centre = EXTRINSICS[subject][CAMERAS.index(camera)]
  return camera_from(INTRINSICS[camera], quaternion_matrix(q).T, centre)


def camera_from(intr, rotation, centre):
  return dict(rotation=np.asarray(rotation, np.float64), centre=np.asarray(centre, np.float64),
              intrinsics=np.array(intr['focal'] + intr['centre'], np.float64),
              distortion=np.array(intr['radial'] + intr['tangential'], np.float64),
              size=tuple(intr['size']))


def to_camera(poses_world, cam):
  """World poses [..., 3] mm -> the camera frame of `cam` (camera_parameters)."""
  return geometry.world_to_camera(poses_world, cam['rotation'], cam['centre'])


def to_image(poses_cam, cam):
  """Camera-frame points [..., 3] -> picture pixels [..., 2], with the lens distortion."""
  return geometry.project(poses_cam, cam['intrinsics'], cam['distortion'])


def split_of(subject, train_subjects, val_subjects, test_subjects):
  """'Train', 'Val', 'Test' or None (a subject the protocol does not use)."""
  for name, subjects in (('Val', val_subjects), ('Test', test_subjects),
                         ('Train', train_subjects)):
    if subject in subjects:
      return name
  return None


def check_subjects(train_subjects, val_subjects, test_subjects):
  groups = dict(train=set(train_subjects), val=set(val_subjects), test=set(test_subjects))
  for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
    both = groups[a] & groups[b]
    if both:
      raise ValueError(f'subject(s) {sorted(both)} are in both the {a} and the {b} '
                       'subjects; give each subject one split.')
  if not groups['train'] and not groups['test'] and not groups['val']:
    raise ValueError('no subjects: give --train_subjects and/or --test_subjects.')


def subject_folders(root):
  """The S<n> folders under root, in subject order; H36MError when there are none."""
  if not os.path.isdir(root):
    raise H36MError(f'{root}: not a folder')
  found = []
  for name in os.listdir(root):
    try:
      found.append((subject_number(name), os.path.join(root, name)))
    except H36MError:
      continue
  if not found:
    raise H36MError(f'{root}: no subject folders (S1, S5, ...): give the folder that '
                    'holds them')
  return sorted(found)


def pose_files(root, pose_dir, extension, subjects=None):
  """Per subject folder under root (only `subjects` when given): (subject, folder, path)
  for every <folder>/<pose_dir>/*<extension>, in name order, or a Skip for a subject
  folder without any."""
  for subject, folder in subject_folders(root):
    if subjects is not None and subject not in subjects:
      continue
    where = os.path.join(folder, pose_dir)
    files = sorted(f for f in os.listdir(where) if f.endswith(extension)) if os.path.isdir(
        where) else []
    if not files:
      yield Skip('empty_subject', f'{where}: no 3D pose files ({extension})')
    for filename in files:
      yield subject, folder, os.path.join(where, filename)

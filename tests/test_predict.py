"""Tests of python -m fbi3d.predict: crops from a box, keypoints or the estimator, the JSON
and figure per picture, and bad pictures refused without partial outputs."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fbi3d import geometry
from fbi3d import keypoints
from fbi3d import pictures
from fbi3d import prediction
from fbi3d import skeleton
from tests.conftest import SHARED_DATA
from tests.conftest import REPO
from tests.conftest import png_with_exif_orientation
from tests.conftest import upright_coco


@pytest.fixture(scope='session')
def exported_model(exported):
  return prediction.ExportedModel(os.path.dirname(exported[2]))


def _picture(h=90, w=120, seed=0):
  rng = np.random.default_rng(seed)
  return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 0)


class _GreyLevelModel(prediction.ExportedModel):
  """An export stand-in whose estimator's confidence in every joint is 0.1 plus the
  crop's mean grey level / 1000, with its joints spread over the crop's middle."""

  def __init__(self):  # pylint: disable=super-init-not-called
    self.crop_size, self.path = 32, 'grey-level stand-in'
    self._blank_confidence = None
    self.calls = 0

  def predict(self, crops):
    self.calls += 1
    n = len(crops)
    level = crops.reshape(n, -1).mean(axis=1)
    joints = np.stack(np.meshgrid(np.linspace(8, 24, 17), [16.0]), -1).reshape(17, 2)
    return dict(pose2d_confidence=np.repeat((0.1 + level / 1000.0)[:, None], 17, 1),
                pose2d=np.repeat(joints[None], n, 0), pose3d=np.zeros((n, 17, 3)),
                fbi=np.full((n, 14, 3), 1 / 3), coarse3d=np.zeros((n, 17, 3)))


def test_the_default_person_threshold_is_1_4_times_the_confidence_on_blank_pictures():
  model = _GreyLevelModel()
  # Black, grey 128 and white: 0.1, 0.228 and 0.355; the threshold 1.4 x 0.355 = 0.497.
  threshold, how = prediction.person_threshold(model)
  assert threshold == pytest.approx(1.4 * 0.355)
  assert how == '1.4 times its 0.355 on blank pictures'
  assert prediction.person_threshold(model, 0.3) == (0.3, 'given')
  assert model.calls == 1                     # measured once per model
  dim, bright = np.full((40, 40, 3), 200, np.uint8), np.full((40, 40, 3), 250, np.uint8)
  got = prediction.predict_pictures(model, [('dim.png', dim), ('bright.png', bright)])
  # 0.1 + 0.2 = 0.3 is below 0.497; 0.1 + 0.25 = 0.35 too; with a fixed 0.3 the bright
  # one is found (the second call crops it again around its joints).
  assert str(got[0]) == ('no detectable person: the 2D estimator\'s mean joint confidence is '
                         '0.300 on the whole picture, below 0.497 (1.4 times its 0.355 on '
                         'blank pictures).')
  assert str(got[1]).startswith('no detectable person: ') and '0.350' in str(got[1])
  got = prediction.predict_pictures(model, [('dim.png', dim), ('bright.png', bright)],
                                    min_confidence=0.32)
  assert str(got[0]) == ('no detectable person: the 2D estimator\'s mean joint confidence is '
                         '0.300 on the whole picture, below 0.320.')
  assert got[1]['crop_from'] == 'estimator'


@pytest.mark.parametrize('values,message', [
    (['a', 'b', 'c', 'd'], '--bbox needs four numbers x,y,w,h in image pixels; got a,b,c,d.'),
    (['1', '2', '3'], '--bbox needs four numbers x,y,w,h in image pixels; got 3 values '
                      '(1,2,3).'),
    (['1', '2', '0', '4'], '--bbox=1,2,0,4: x and y must be finite and the width and height '
                           'above 0.'),
    (['nan', '2', '3', '4'], '--bbox=nan,2,3,4: x and y must be finite and the width and '
                             'height above 0.')])
def test_parse_bbox_says_what_is_wrong(values, message):
  with pytest.raises(ValueError) as raised:
    pictures.parse_bbox(values)
  assert str(raised.value) == message
  assert pictures.parse_bbox(['1', '2.5', '3', '4']) == [1.0, 2.5, 3.0, 4.0]


def test_output_names_never_repeat():
  taken = set()
  paths = ['x/a.jpg', 'y/a.png', 'a_2.jpg', 'b.jpeg', 'z/a.jpg', 'a_2_2.png']
  assert [prediction.unique_stem(p, taken) for p in paths] == [
      'a', 'a_2', 'a_2_2', 'b', 'a_3', 'a_2_2_2']
  assert taken == {'a', 'a_2', 'a_2_2', 'b', 'a_3', 'a_2_2_2'}


def test_an_earlier_runs_outputs_of_another_picture_are_not_replaced(tmp_path, monkeypatch):
  (tmp_path / 'x').mkdir()
  (tmp_path / 'y').mkdir()
  mine, other = str(tmp_path / 'x' / 'a.jpg'), str(tmp_path / 'y' / 'a.jpg')
  for path in (mine, other):
    open(path, 'w').close()
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'a.json').write_text(json.dumps({'image': other}))
  (out / 'b.json').write_text('{not json')
  # Another picture's outputs, and a JSON that is not ours, keep their names.
  assert prediction.holds_another_picture(str(out), 'a', mine) == other
  assert prediction.unique_stem(mine, set(), str(out)) == 'a_2'
  assert prediction.holds_another_picture(str(out), 'b', mine) == str(out / 'b.json')
  assert prediction.unique_stem(str(tmp_path / 'b.png'), set(), str(out)) == 'b_2'
  # A recorded picture that is gone from where it was (a moved checkout) is taken for
  # the picture of its file name.
  (out / 'c.json').write_text(json.dumps({'image': str(tmp_path / 'old' / 'c.jpg')}))
  assert prediction.holds_another_picture(str(out), 'c', str(tmp_path / 'x' / 'c.jpg')) is None
  assert prediction.unique_stem(str(tmp_path / 'x' / 'c.jpg'), set(), str(out)) == 'c'
  # The same picture's outputs are replaced, however its path is spelled.
  assert prediction.holds_another_picture(str(out), 'a', other) is None
  monkeypatch.chdir(tmp_path)
  assert prediction.unique_stem(os.path.join('y', 'a.jpg'), set(), str(out)) == 'a'
  # A PNG that is no output keeps its name: the picture itself when --out is its folder,
  # or any PNG without its JSON; a figure of an earlier run beside its JSON is replaced.
  picture = out / 'd.png'
  picture.write_bytes(b'picture')
  assert prediction.figure_not_ours(str(out), 'd', str(picture))
  assert prediction.unique_stem(str(picture), set(), str(out)) == 'd_2'
  # Predicting again into the pictures' own folder: the earlier figures (a PNG beside a
  # JSON naming another picture) are left out, the pictures are read.
  folder = tmp_path / 'pics'
  folder.mkdir()
  (folder / 'e.jpg').write_bytes(b'')
  (folder / 'e.png').write_bytes(b'figure')
  (folder / 'e.json').write_text(json.dumps({'image': str(folder / 'e.jpg')}))
  (folder / 'f.png').write_bytes(b'picture')
  assert prediction.earlier_figure(str(folder / 'e.png'))
  assert not prediction.earlier_figure(str(folder / 'f.png'))
  assert not prediction.earlier_figure(str(folder / 'e.jpg'))
  (folder / 'f.json').write_text(json.dumps({'image': str(folder / 'f.png')}))
  assert not prediction.earlier_figure(str(folder / 'f.png'))    # its own outputs' JSON
  lines = []
  (folder / 'e.jpg').unlink()
  (folder / 'f.png').unlink()
  with pytest.raises(ValueError, match='no image files in'):
    prediction.predict_files(None, [str(folder)], str(folder), log=lines.append)
  assert lines[-1] == (f'predict: 1 figure(s) of earlier predictions left out (a PNG '
                       f'beside the JSON that names its picture): {folder / "e.png"}')
  assert prediction.unique_stem(str(tmp_path / 'x' / 'd.jpg'), set(), str(out)) == 'd_2'
  (out / 'd.json').write_text(json.dumps({'image': str(tmp_path / 'x' / 'd.jpg')}))
  assert not prediction.figure_not_ours(str(out), 'd', str(tmp_path / 'x' / 'd.jpg'))
  assert prediction.unique_stem(str(tmp_path / 'x' / 'd.jpg'), set(), str(out)) == 'd'
  assert prediction.unique_stem(str(picture), set(), str(out)) == 'd_2'


def test_pictures_sharing_a_file_name_are_refused_with_named_keypoints(tmp_path):
  for folder in ('a', 'b'):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / '0001.jpg').write_bytes(b'not read before the check')
  row = ','.join(f'{v:g}' for v in upright_coco().reshape(-1))
  named, anyone = tmp_path / 'named.csv', tmp_path / 'any.csv'
  named.write_text(f'0001.jpg,{row}\n')
  anyone.write_text(f'*,{row}\n')
  folders = [str(tmp_path / 'a'), str(tmp_path / 'b')]
  with pytest.raises(ValueError) as e:
    # The model is never reached: the names are checked first.
    prediction.predict_files(None, folders, str(tmp_path / 'out'),
                             keypoint_file=keypoints.KeypointFile(str(named)))
  assert str(e.value) == (
      f'{tmp_path}/a/0001.jpg and {tmp_path}/b/0001.jpg have the same file name, and '
      f'{named} matches keypoints to pictures by file name alone: predict them in separate '
      'calls.')
  assert not (tmp_path / 'out').exists()
  # Keypoints for any picture, or a box, do not depend on the name: no refusal there
  # (the unreadable pictures then fail one by one).
  for options in ({'keypoint_file': keypoints.KeypointFile(str(anyone))},
                  {'keypoint_file': keypoints.KeypointFile(str(named)), 'bbox': [0, 0, 9, 9]}):
    written, failed = prediction.predict_files(None, folders, str(tmp_path / 'out'),
                                               log=lambda _: None, **options)
    assert (written, len(failed)) == ([], 2)


def test_given_keypoints_must_be_in_the_pictures_pixels():
  shape = (90, 120, 3)                           # W 120, H 90: 12 px of margin around it
  i = np.arange(17.0)
  # Shape = [17, 2]: x 10..90, y 20..68, inside the picture.
  joints = np.stack([10 + 5 * i, 20 + 3 * i], axis=1)
  valid = np.ones(17, bool)
  joints[16], valid[16] = (5000, 5000), False    # an unknown joint is not looked at
  assert pictures.check_joints_fit(joints, valid, shape, 'kp.csv') is None
  # Three times too large (keypoints of another resolution): x 30..240, y 60..195;
  # inside the widened picture (x <= 131, y <= 101) are i = 0..4 only.
  with pytest.raises(pictures.PredictError) as e:
    pictures.check_joints_fit(3 * joints, valid, shape, 'kp.csv')
  assert str(e.value) == (
      'kp.csv: 11 of the 16 known joints lie outside the 120x90 picture (x from 30 to 255, '
      'y from 60 to 195): give keypoints in this picture\'s pixels, as it is shown (after '
      'any EXIF rotation).')
  # Normalised to 0..1 by the width: x 0.083..0.708, y 0.167..0.542.
  with pytest.raises(pictures.PredictError) as e:
    pictures.check_joints_fit(joints / 120, valid, shape, 'kp.csv')
  assert str(e.value) == ('kp.csv: the known joints span 0.62 px in the 120x90 picture: '
                          'give keypoints in pixels, not normalised to 0..1.')
  # One wrong value far away: the rest fit, but a joint 1e6 px away is no joint.
  far = joints.copy()
  far[13] = (1e6, 1e6)
  with pytest.raises(pictures.PredictError) as e:
    pictures.check_joints_fit(far, valid, shape, 'kp.csv')
  assert str(e.value) == (
      'kp.csv: 1 known joint(s) lie more than 1 of the picture\'s longer side outside the '
      '120x90 picture, the first LWrist at (1000000, 1000000): no detector puts a joint '
      'there. Mark it missing (visibility 0 or an empty value) or correct it.')
  # 119 px to the right of the picture's last column (W - 1 + 120 = 239) still passes.
  far[13] = (239, 20)
  assert pictures.check_joints_fit(far, valid, shape, 'kp.csv') is None


def test_keypoints_of_the_stored_frame_of_an_exif_turned_photo_are_refused(tmp_path):
  # A file stored 40 wide and 30 high, turned by its EXIF orientation 6 (90 degrees
  # clockwise): shown 30 wide and 40 high.
  rgba = np.full((30, 40, 4), 255, np.uint8)
  path = tmp_path / 'turned.png'
  path.write_bytes(png_with_exif_orientation(rgba, 6))
  assert pictures.read_image(str(path)).shape == (40, 30, 3)
  assert pictures.stored_shape(str(path)) == (30, 40)
  assert pictures.stored_shape(str(tmp_path / 'none.png')) is None
  # Keypoints in the stored frame: x 2..37.2, y 2..26. In the shown picture widened by 4
  # px (x <= 33) all but i = 15, 16 lie, so the half-inside rule lets them pass; all lie
  # in the stored one.
  i = np.arange(17.0)
  joints, valid = np.stack([2 + 2.2 * i, 2 + 1.5 * i], axis=1), np.ones(17, bool)
  shown = (40, 30, 3)
  assert pictures.check_joints_fit(joints, valid, shown, 'kp.csv') is None
  with pytest.raises(pictures.PredictError) as e:
    pictures.check_joints_fit(joints, valid, shown, 'kp.csv', stored=(30, 40))
  assert str(e.value) == (
      'kp.csv: the known joints all lie in the picture as its file stores it (40x30, before '
      'its EXIF turn) but 2 of the 17 lie outside it as it is shown (30x40, by more than 0.1 '
      'of its longer side; x from 2 to 37, y from 2 to 26): give keypoints in the pixels of '
      'the picture as it is shown (turned by its EXIF orientation, as a viewer shows it).')
  # A joint a detector put just outside the shown picture (x 31 to 33 here) is no sign
  # of the stored frame.
  near = joints.copy()
  near[13:] = (31, 20)
  assert pictures.check_joints_fit(near, valid, shown, 'kp.csv', stored=(30, 40)) is None
  # The same keypoints turned into the shown frame (x' = 29 - y, y' = x) pass, and so do
  # the stored-frame ones when the file was not turned, or turned half round.
  turned = np.stack([29 - joints[:, 1], joints[:, 0]], axis=1)
  assert pictures.check_joints_fit(turned, valid, shown, 'kp.csv', stored=(30, 40)) is None
  assert pictures.check_joints_fit(joints, valid, (30, 40, 3), 'kp.csv',
                                   stored=(30, 40)) is None
  # A person partly outside the shown picture whose joints do not all fit the stored one
  # either is left to the other rules.
  joints[0] = (2, 35)
  assert pictures.check_joints_fit(joints, valid, shown, 'kp.csv', stored=(30, 40)) is None


def test_a_picture_opencv_refuses_to_decode_fails_with_a_message(tmp_path):
  # A JPEG whose frame header says 40000 x 40000: more pixels than OpenCV decodes.
  data = bytearray(cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))[1].tobytes())
  sof = data.find(b'\xff\xc0')
  data[sof + 5:sof + 9] = (40000).to_bytes(2, 'big') * 2
  path = tmp_path / 'huge.jpg'
  path.write_bytes(bytes(data))
  with pytest.raises(pictures.PredictError) as e:
    pictures.read_image(str(path))
  # OpenCV's own reason, between the brackets, names its source file and version.
  assert str(e.value).startswith(f'{path}: OpenCV cannot decode it (OpenCV(')
  assert 'pixels <= CV_IO_MAX_IMAGE_PIXELS' in str(e.value)
  assert str(e.value).endswith(
      "); OpenCV takes pictures of at most 2**30 pixels: scale a larger one down, or cut out "
      'the part with the person.')
  assert pictures.stored_shape(str(path)) is None
  from fbi3d.data import crop_worker  # pylint: disable=g-import-not-at-top
  with pytest.raises(crop_worker.BadItem, match=r'huge.jpg: OpenCV cannot decode it \(OpenCV'):
    crop_worker.read_image(str(path))


def test_a_person_box_must_be_in_pixels_and_finite():
  shape = (90, 120, 3)
  # A box of another resolution: 6400 x 4800 reaches 6280 px beyond the 120 px width.
  with pytest.raises(pictures.PredictError) as e:
    pictures.box_from_bbox([0, 0, 6400, 4800], shape)
  assert str(e.value) == ('--bbox 0,0,6400,4800: the box reaches 6280 px beyond the 120x90 '
                          "picture, more than its longer side; give the box in this picture's "
                          'pixels.')
  # 120 px beyond (x + w = 240) is still taken.
  np.testing.assert_allclose(pictures.box_from_bbox([0, 0, 240, 90], shape, margin=0.0),
                             [0, -75, 240])
  with pytest.raises(pictures.PredictError) as e:
    pictures.box_from_bbox([0.1, 0.2, 0.5, 0.7], shape)
  assert str(e.value) == ('--bbox 0.1,0.2,0.5,0.7: a box of 0.7 px cannot hold a person: '
                          'give x, y, width and height in the picture\'s pixels, not '
                          'normalised to 0..1.')
  with pytest.raises(pictures.PredictError, match='a box of 1 px'):
    pictures.box_from_bbox([30, 20, 1, 1], shape)
  with pytest.raises(pictures.PredictError, match='give four finite numbers'):
    pictures.box_from_bbox([30, 20, float('inf'), 10], shape)
  # A box of 4 px is the least taken: its square crop box with the margin of 0.2.
  np.testing.assert_allclose(pictures.box_from_bbox([30, 20, 4, 2], shape),
                             geometry.square_box([[30, 20], [34, 22]], pictures.MARGIN))


def test_command_line_refuses_an_out_folder_it_cannot_make_before_predicting(tmp_path):
  (tmp_path / 'a_file').write_text('')
  picture = tmp_path / 'p.png'
  cv2.imwrite(str(picture), _picture())
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.predict', str(picture),
       f'--export_dir={tmp_path / "no_export"}', f'--out={tmp_path / "a_file" / "out"}'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr
  assert (f'fbi3d.predict: error: --out={tmp_path / "a_file" / "out"}: '
          f'{tmp_path / "a_file"} is a file, so the folder cannot be made; give a folder.'
          in proc.stderr)
  # A layout without the file it says how to read would be dropped without a word.
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.predict', str(picture),
       f'--export_dir={tmp_path / "no_export"}', f'--out={tmp_path / "out"}',
       '--keypoints_layout=h36m17'], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr
  assert ('fbi3d.predict: error: --keypoints_layout says how to read --keypoints2d, which is '
          'not given: give both, or neither.' in proc.stderr)
  # An empty path (--out=$UNSET) is refused, not read as the current folder or as no
  # keypoints.
  for flags, name in [([f'--out='], 'out'),
                      ([f'--out={tmp_path / "out"}', '--keypoints2d='], 'keypoints2d')]:
    proc = subprocess.run(
        [sys.executable, '-m', 'fbi3d.predict', str(picture),
         f'--export_dir={tmp_path / "no_export"}'] + flags,
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().endswith(
        f'fbi3d.predict: error: --{name} is empty; give a path (or leave the flag out).')


def test_folders_say_what_they_leave_out_and_pictures_too_wide_to_crop_fail(tmp_path):
  for name in ('b.jpg', 'a.PNG', 'clip.heic', 'notes.txt', '.hidden'):
    (tmp_path / name).write_bytes(b'')
  (tmp_path / 'sub').mkdir()
  lines = []
  assert pictures.list_images([str(tmp_path)], log=lines.append) == [
      str(tmp_path / 'a.PNG'), str(tmp_path / 'b.jpg')]
  assert lines == [f'{tmp_path}: 2 file(s) left out, not of a picture type read here (.jpg, '
                   '.jpeg, .png, .bmp, .tif, .tiff, .webp): clip.heic, notes.txt; convert '
                   'them (to .jpg or .png) or give them by name.']
  wide = tmp_path / 'wide.png'
  cv2.imwrite(str(wide), np.zeros((2, pictures.MAX_IMAGE_SIDE + 1, 3), np.uint8))
  with pytest.raises(pictures.PredictError) as e:
    pictures.read_image(str(wide))
  assert str(e.value) == (f'{wide}: 32767x2 pixels, more than 32766 on a side, which OpenCV '
                          'cannot crop; scale it down or cut out the part with the person.')


def test_pictures_are_cut_with_the_exports_margin_and_lifted_with_the_lifts():
  class Model(_GreyLevelModel):
    crop_margin, lift_margin, lift_missing_joints = 0.5, 0.25, 'estimator'
    joint_names, fbi_bone_names = skeleton.JOINT_NAMES, skeleton.FBI_BONE_NAMES
    fbi_class_names = ('forward', 'backward', 'parallel')
    lift_model, lift_frame, pose3d_frame = 'lifter', 'camera', 'camera'
    lift_mirror_average = image_flip_average = False

    def lift(self, pose2d):
      self.lifted = pose2d
      return np.zeros((len(pose2d), 17, 3))

  # Joint j at (40 + 2.5 j, 20 + 5 j): a box 40 wide and 80 tall around (60, 60); the
  # left wrist (13) is not given.
  joints = np.stack([40 + 2.5 * np.arange(17), 20 + 5.0 * np.arange(17)], -1)
  valid = np.arange(17) != 13
  class Keypoints:
    path = 'kp.json'
    def joints(self, name):
      return joints, valid
  model = Model()
  entry = prediction.predict_pictures(model, [('a.png', _picture(160, 120))],
                                     keypoint_file=Keypoints())[0]
  # The image models' crop: margin 0.5, side 80 * 2 = 160.
  np.testing.assert_allclose(entry['crop_box'], [-20.0, -20.0, 160.0])
  # The lift's: margin 0.25, side 80 * 1.5 = 120 from (0, 0), resized to 32 px; the wrist
  # from the estimator, crop (21, 16) of the first box: (85, 60) in the picture.
  expected = joints * 32 / 120
  expected[13] = [85 * 32 / 120, 60 * 32 / 120]
  np.testing.assert_allclose(model.lifted[0], expected, rtol=1e-6)
  np.testing.assert_allclose(entry['lift_input2d'][13], [85.0, 60.0], rtol=1e-6)
  entry['image'] = _picture(160, 120)
  assert prediction.result_json(model, entry)['crop_margin'] == 0.5


def test_crop_image_follows_image_to_crop():
  # A linear image I(x, y) = 2x + 3y: every crop pixel must hold I at crop_to_image of it.
  ys, xs = np.mgrid[0:400, 0:400].astype(np.float32)
  image = 2.0 * xs + 3.0 * ys
  for box in (np.array([10.0, 20.0, 32.0]), np.array([50.5, 40.0, 300.0])):  # k = 1, 8
    crop = pictures.crop_image(image, box, 32)
    v, u = np.mgrid[1:31, 1:31]
    x, y = geometry.crop_to_image(np.stack([u, v], -1).reshape(-1, 2), box, 32).T
    np.testing.assert_allclose(crop[1:31, 1:31].reshape(-1), 2.0 * x + 3.0 * y, atol=1e-2)


@pytest.mark.slow
def test_bbox_crop_and_json(exported_model, tmp_path):
  image = _picture()
  results = prediction.predict_pictures(exported_model, [('a.png', image)],
                                       bbox=[10, 20, 30, 40])
  entry = results[0]
  # Square around (10, 20)-(40, 60) with 0.2 margin: side 40 * 1.4 = 56, centre (25, 40).
  np.testing.assert_allclose(entry['crop_box'], [-3.0, 12.0, 56.0])
  out = exported_model.predict(pictures.crop_image(image, entry['crop_box'], 32)[None])
  np.testing.assert_allclose(entry['pose3d'], out['pose3d'][0])
  np.testing.assert_allclose(entry['pose2d'], out['pose2d'][0] * 56.0 / 32.0 + [-3.0, 12.0],
                             atol=1e-9)
  entry['image'] = image
  json_path, png_path = prediction.write_outputs(exported_model, entry, str(tmp_path), 'a')
  doc = json.load(open(json_path))
  assert list(doc['pose3d_mm']) == list(skeleton.JOINT_NAMES)
  assert doc['crop_box'] == {'x': -3.0, 'y': 12.0, 'size': 56.0}
  assert doc['crop_from'] == 'bbox' and doc['crop_size'] == 32
  # The tiny run's data were converted with the default margin; the export keeps it.
  assert doc['crop_margin'] == 0.2 and exported_model.lift_margin == 0.2
  assert doc['pose3d_model'] == 'final' and doc['pose2d_source'] == 'estimator'
  assert 'final_pose3d_mm' not in doc and 'keypoints2d' not in doc
  # The tiny run averages its image models over each crop and its mirror (--flip_test).
  assert doc['image_model_note'].endswith('; every output of the image models (the 2D '
                                          'estimator\'s joints and confidences, coarse 3D '
                                          'and FBI, and so Final) is the mean over the crop '
                                          'and its mirror image')
  assert doc['pose2d_px']['Hip'] == [round(float(v), 2) for v in entry['pose2d'][0]]
  assert [b['bone'] for b in doc['fbi']] == list(skeleton.FBI_BONE_NAMES)
  for bone, probs in zip(doc['fbi'], entry['fbi']):
    assert bone['fbi'] == ('forward', 'backward', 'parallel')[int(np.argmax(probs))]
    assert bone['probability'] == round(float(probs.max()), 4)
  assert cv2.imread(png_path).shape[:2] == (480, 1500)
  assert sorted(os.listdir(tmp_path)) == ['a.json', 'a.png']


@pytest.mark.slow
def test_keypoints_lift_with_missing_joints_from_the_estimator(exported_model, tmp_path):
  coco = upright_coco()
  triplets = np.concatenate([coco, np.full((17, 1), 2.0)], axis=1)
  triplets[keypoints.COCO['left_wrist'], 2] = 0
  path = tmp_path / 'kp.json'
  path.write_text(json.dumps({'annotations': [{'keypoints': triplets.reshape(-1).tolist()}]}))
  entry = prediction.predict_pictures(exported_model, [('b.jpg', _picture(200, 120))],
                                     keypoint_file=keypoints.KeypointFile(str(path)))[0]
  joints, valid = keypoints.from_coco(coco, triplets[:, 2] > 0)
  box = geometry.square_box(joints[valid], 0.2)
  np.testing.assert_allclose(entry['crop_box'], box)
  two_d = geometry.image_to_crop(joints, box, 32)
  two_d[13] = entry['pose2d_crop'][13]          # LWrist: not in the keypoints
  lifted = exported_model.lift(two_d[None].astype(np.float32))[0]
  np.testing.assert_allclose(entry['lifted3d'], lifted, atol=1e-4)
  # The lift is the main pose; the image-based Final stands beside it.
  np.testing.assert_allclose(entry['pose3d'], lifted, atol=1e-4)
  crop = pictures.crop_image(_picture(200, 120), box, 32)
  np.testing.assert_allclose(entry['final3d'], exported_model.predict(crop[None])['pose3d'][0],
                             atol=1e-4)
  entry['image'] = _picture(200, 120)
  doc = prediction.result_json(exported_model, entry)
  assert doc['pose3d_model'] == 'lift'
  assert doc['pose3d_from'] == ('the Base regressor (lift signature), averaged with its '
                                f'left/right mirror image, on the 2D from keypoints2d file {path}')
  assert doc['pose2d_source'] == f'keypoints2d file {path}'
  assert doc['pose3d_mm']['LWrist'] == [round(float(v), 1) + 0.0 for v in lifted[13]]
  assert doc['final_pose3d_mm']['LWrist'] == [round(float(v), 1) + 0.0
                                              for v in entry['final3d'][13]]
  assert doc['keypoints2d']['missing'] == ['LWrist']
  assert doc['keypoints2d']['missing_filled_with'].startswith('the exported model\'s own 2D')
  assert doc['keypoints2d']['given_px']['Head'] == [50.0, 10.0]
  assert doc['pose2d_px']['Head'] == [50.0, 10.0]
  assert doc['estimator_pose2d_px']['Hip'] == [round(float(v), 2) for v in entry['pose2d'][0]]


@pytest.mark.slow
def test_no_person_cases(exported_model, tmp_path):
  image = _picture()
  empty_file = tmp_path / 'none.csv'
  empty_file.write_text('image,x0\n')
  got = prediction.predict_pictures(
      exported_model, [('a.png', image)], keypoint_file=keypoints.KeypointFile(str(empty_file)))
  assert isinstance(got[0], pictures.PredictError)
  assert 'no person: ' in str(got[0]) and 'has no keypoints for a.png' in str(got[0])
  got = prediction.predict_pictures(exported_model, [('a.png', image)], min_confidence=1e9)
  assert str(got[0]).startswith('no detectable person: the 2D estimator\'s mean joint')
  got = prediction.predict_pictures(exported_model, [('a.png', image)], bbox=[500, 0, 10, 10])
  assert 'no person: the box 500,0,10,10 lies outside the 120x90 image' in str(got[0])
  # A picture too small to hold a person is refused whatever gives the crop.
  for options in ({}, {'bbox': [0, 0, 1, 1]}, {'min_confidence': 0.0}):
    got = prediction.predict_pictures(exported_model, [('a.png', image[:31, :200])],
                                      **options)
    assert str(got[0]) == ('no person: the picture is 120x31 pixels, too small to hold one '
                           '(at least 32 on a side).')
  # With the estimator and no threshold every picture gets a crop around its 2D joints.
  got = prediction.predict_pictures(exported_model, [('a.png', image), ('b.png', image)],
                                   min_confidence=0.0)
  assert [g['crop_from'] for g in got] == ['estimator', 'estimator']


@pytest.mark.slow
def test_command_line_bad_files_and_no_person_write_nothing(exported_model, tmp_path):
  folder = tmp_path / 'in'
  folder.mkdir()
  (folder / 'notes.jpg').write_text('not an image')
  (folder / 'empty.png').write_bytes(b'')
  cv2.imwrite(str(folder / 'person.png'), _picture())
  (folder / 'readme.txt').write_text('')
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.predict', str(folder), f'--export_dir={exported_model.path}',
       f'--out={out}', '--min_confidence=1', '--batch_size=2'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert 'empty.png: empty file' in proc.stdout
  assert (f'predict: {folder}: 1 file(s) left out, not of a picture type read here (.jpg, '
          '.jpeg, .png, .bmp, .tif, .tiff, .webp): readme.txt; convert them') in proc.stdout
  assert 'notes.jpg: not a readable image' in proc.stdout
  assert 'person.png: no detectable person' in proc.stdout
  assert 'predict: 2/3 pictures (0 written, 2 failed)' in proc.stdout
  assert 'predict: 3/3 pictures (0 written, 3 failed)' in proc.stdout
  assert 'fbi3d.predict: 3 picture(s) failed' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not out.exists() or os.listdir(out) == []
  # The same picture with a box is written, JSON and figure.
  proc = subprocess.run(
      [sys.executable, '-m', 'fbi3d.predict', str(folder / 'person.png'),
       f'--export_dir={exported_model.path}', f'--out={out}', '--bbox=10,20,30,40'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert sorted(os.listdir(out)) == ['person.json', 'person.png']


@pytest.mark.slow
@pytest.mark.parametrize('flag,message', [
    ('--bbox=a,b,c,d', 'fbi3d.predict: error: --bbox needs four numbers x,y,w,h in image '
                       'pixels; got a,b,c,d.'),
    ('--min_confidence=nan', '--min_confidence must be a finite number from 0 to 1.'),
    ('--out=FILE', 'is a file; give a folder (it is made if missing).'),
    ('--bbox=10,20,30,40 --min_confidence=0.2',
     'fbi3d.predict: error: --min_confidence turns away pictures in which the 2D estimator '
     'finds no person; with --bbox, --keypoints2d or --detector=mediapipe the person is '
     'given, and it would be ignored: leave it out.')])
def test_command_line_flags_out_of_sense(exported_model, tmp_path, flag, message):
  picture = tmp_path / 'person.png'
  cv2.imwrite(str(picture), _picture())
  out = tmp_path / 'out'
  if flag == '--out=FILE':
    out.write_text('a file')
    flag = f'--out={out}'
  args = [sys.executable, '-m', 'fbi3d.predict', str(picture),
          f'--export_dir={exported_model.path}', f'--out={out}'] + flag.split(' ')
  proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert message in proc.stderr
  assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_command_line_refuses_the_17_joints_read_as_coco_unless_the_layout_is_given(tmp_path):
  picture = tmp_path / 'person.png'
  cv2.imwrite(str(picture), _picture())
  # The 17 joints in their own order (pelvis first), hand-placed: the right ankle (38,
  # 160) lies 0.40 of the body's size from the pelvis (tests/test_keypoints.py).
  joints = [(50, 100), (40, 100), (39, 130), (38, 160), (60, 100), (61, 130), (62, 160),
            (50, 71.4), (50, 40), (50, 25), (50, 10), (62, 40), (66, 60), (68, 80),
            (38, 40), (34, 60), (32, 80)]
  path = tmp_path / 'joints.csv'
  path.write_text('person.png,' + ','.join(f'{v:g}' for p in joints for v in p) + '\n')
  missing = tmp_path / 'no_export'
  args = [sys.executable, '-m', 'fbi3d.predict', str(picture), f'--keypoints2d={path}',
          f'--export_dir={missing}', f'--out={tmp_path / "out"}']
  proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert (f'fbi3d.predict: error: {path}:1: no keypoint layout was given, and these 17 '
          'points do not look like COCO\'s') in proc.stderr
  assert 'pass --keypoints_layout=h36m17' in proc.stderr
  # Given the layout, the file is read and the command goes on to the (missing) model.
  proc = subprocess.run(args + ['--keypoints_layout=h36m17'], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 1
  assert 'keypoint layout' not in proc.stderr and str(missing) in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'out').exists()


@pytest.mark.slow
@pytest.mark.parametrize('flags', [['--bbox=0,0,9,9', '--keypoints2d=kp.csv'],
                                   ['--keypoints2d=kp.csv', '--detector=mediapipe'],
                                   ['--bbox=0,0,9,9', '--detector=mediapipe']])
def test_command_line_takes_one_source_of_the_person(tmp_path, flags):
  # Refused when the flags are read, before any file or model is opened.
  args = [sys.executable, '-m', 'fbi3d.predict', str(tmp_path / 'person.png'),
          f'--export_dir={tmp_path / "no_export"}', f'--out={tmp_path / "out"}'] + flags
  proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert ('--bbox, --keypoints2d and --detector=mediapipe each say where the person is (and '
          'the last two give the 2D that is lifted); give one of them.') in proc.stderr
  assert not (tmp_path / 'out').exists()


PHOTO = os.path.join(SHARED_DATA, 'photos', 'coco_000000000785.jpg')


@pytest.mark.skipif(not os.path.exists(PHOTO), reason='../shared/data/photos is absent')
@pytest.mark.slow
def test_real_photo_with_its_coco_keypoints(exported_model):
  kp = keypoints.KeypointFile(PHOTO.replace('.jpg', '_keypoints.json'))
  image = pictures.read_image(PHOTO)
  assert image.shape == (425, 640, 3)
  entry = prediction.predict_pictures(exported_model, [(PHOTO, image)], keypoint_file=kp)[0]
  # Joints span x 309..466, y 60..362 (head at y 60): side 302 * 1.4 around (387.5, 211).
  np.testing.assert_allclose(entry['crop_box'], [387.5 - 211.4, 211.0 - 211.4, 422.8])


@pytest.mark.slow
def test_mediapipe_detector(exported_model):
  mediapipe = pytest.importorskip(
      'mediapipe', reason='the optional extra fbi3d[mediapipe] (mediapipe==0.10.21) is not '
      'installed')
  del mediapipe
  astronaut = os.path.join(SHARED_DATA, 'photos', 'skimage_astronaut.png')
  if not os.path.exists(astronaut):
    pytest.skip('../shared/data/photos is absent')
  entry = prediction.predict_pictures(exported_model,
                                      [(astronaut, pictures.read_image(astronaut))],
                                      detector='mediapipe')[0]
  assert entry['crop_from'] == 'mediapipe'
  assert 100 < entry['crop_box'][2] < 900


@pytest.mark.slow
def test_keypoints_lift_with_the_pose_bank_lifter(exported_with_lifter, tmp_path):
  model = prediction.ExportedModel(os.path.dirname(exported_with_lifter[1]))
  assert (model.lift_model, model.lift_missing_joints, model.lift_frame) == (
      'lifter', 'ancestor', 'ray')
  coco = upright_coco()
  triplets = np.concatenate([coco, np.full((17, 1), 2.0)], axis=1)
  triplets[keypoints.COCO['left_wrist'], 2] = 0
  triplets[keypoints.COCO['left_elbow'], 2] = 0
  path = tmp_path / 'kp.json'
  path.write_text(json.dumps({'annotations': [{'keypoints': triplets.reshape(-1).tolist()}]}))
  image = _picture(200, 120)
  entry = prediction.predict_pictures(model, [('b.jpg', image)],
                                     keypoint_file=keypoints.KeypointFile(str(path)))[0]
  joints, valid = keypoints.from_coco(coco, triplets[:, 2] > 0)
  box = geometry.square_box(joints[valid], 0.2)
  two_d = geometry.image_to_crop(joints, box, 32)
  two_d[12] = two_d[13] = two_d[11]      # LElbow and LWrist: the left shoulder's 2D
  lifted = model.lift(two_d[None].astype(np.float32))[0]
  np.testing.assert_allclose(entry['pose3d'], lifted, atol=1e-4)
  entry['image'] = image
  json_path, png_path = prediction.write_outputs(model, entry, str(tmp_path / 'out'), 'b')
  doc = json.load(open(json_path))
  assert doc['pose3d_model'] == 'lift'
  assert doc['pose3d_from'].startswith('the pose-bank lifter (lift signature), averaged '
                                       'with its left/right mirror image, on the 2D')
  # The lifter predicts in the crop's ray-aligned frame; the image-based Final in the
  # tiny run's own (the camera frame).
  assert doc['pose3d_frame'].startswith("the crop's ray-aligned camera frame")
  assert doc['final_pose3d_frame'].startswith('camera frame')
  assert doc['keypoints2d']['missing'] == ['LElbow', 'LWrist']
  assert doc['keypoints2d']['missing_filled_with'].startswith('the 2D of the nearest known')
  assert doc['pose2d_px']['LWrist'] == doc['pose2d_px']['LShoulder']
  assert set(doc['final_pose3d_mm']) == set(skeleton.JOINT_NAMES)
  assert cv2.imread(png_path).shape[:2] == (480, 1500)


def test_whole_picture_confidence_averages_each_pictures_joint_confidence():
  class Model:   # picture i's joint j: (i + 1) (j + 1) / 9, a mean of i + 1 over joints
    crop_size = 4
    shapes = []

    def predict(self, crops):
      self.shapes.append(crops.shape)
      n = len(crops)
      return {'pose2d_confidence': np.arange(1, n + 1)[:, None] * np.arange(1, 18) / 9}

  grey = np.full((8, 8, 3), 0.25, np.float32)
  wide = np.full((4, 8, 3), 1.0, np.float32)
  model = Model()
  out = prediction.whole_picture_confidence(model, [('grey', grey), ('wide', wide)])
  assert out == {'grey': 1.0, 'wide': 2.0}
  assert model.shapes == [(2, 4, 4, 3)]      # one batch of whole-picture crops


def test_measure_confidence_refuses_a_folder_for_its_json_before_measuring(tmp_path):
  proc = subprocess.run([sys.executable, 'tools/measure_confidence.py', f'--out={tmp_path}',
                         f'--export_dir={tmp_path / "none"}'], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert ('--out is the JSON file to write: give a file path (not a folder, nor a path '
          'under a file).') in proc.stderr
  assert 'SavedModel' not in proc.stderr        # refused before the export is looked at

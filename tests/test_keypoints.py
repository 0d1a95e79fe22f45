"""Tests of the 2D keypoint adapters (COCO-17, MediaPipe-33) and keypoint files, with
hand-computed joints."""

import json
import os

import numpy as np
import pytest

from fbi3d import keypoints
from fbi3d import skeleton
from tests.conftest import SHARED_DATA
from tests.conftest import upright_coco

COCO_PHOTO_KEYPOINTS = os.path.join(SHARED_DATA, 'photos', 'coco_000000000785_keypoints.json')


# Shape = [17, 2]: the 17 joints expected from upright_coco(), by hand.
SPINE_Y = 100.0 - 60.0 * 234.0 / 491.0   # 71.40529531568228
EXPECTED = np.array([
    (50, 100),        # Hip: midpoint of the hips
    (40, 100), (39, 130), (38, 160),   # RHip, RKnee, RAnkle
    (60, 100), (61, 130), (62, 160),   # LHip, LKnee, LAnkle
    (50, SPINE_Y),    # Spine: 234/491 of the way from pelvis to thorax
    (50, 40),         # Thorax: midpoint of the shoulders
    (50, 25),         # Neck/Nose: the nose
    (50, 10),         # Head: thorax + 1.5 * ((50, 20) - (50, 40))
    (62, 40), (66, 60), (68, 80),      # LShoulder, LElbow, LWrist
    (38, 40), (34, 60), (32, 80),      # RShoulder, RElbow, RWrist
], np.float64)


def test_coco_to_17_joints_by_hand():
  joints, valid = keypoints.from_coco(upright_coco())
  assert SPINE_Y == pytest.approx(71.40529531568228)
  np.testing.assert_allclose(joints, EXPECTED, atol=1e-12)
  assert valid.all()


def test_coco_head_from_eyes_when_an_ear_is_missing():
  points = upright_coco()
  valid = np.ones(17, bool)
  valid[keypoints.COCO['left_ear']] = False
  joints, ok = keypoints.from_coco(points, valid)
  # Eyes' midpoint (50, 21): head = (50, 40) + 1.5 * (0, -19) = (50, 11.5).
  np.testing.assert_allclose(joints[10], [50.0, 11.5])
  assert ok.all()


def test_coco_missing_points_make_their_joints_missing():
  valid = np.ones(17, bool)
  valid[keypoints.COCO['left_hip']] = False
  valid[keypoints.COCO['nose']] = False
  joints, ok = keypoints.from_coco(upright_coco(), valid)
  missing = [skeleton.JOINT_NAMES[j] for j in np.flatnonzero(~ok)]
  assert missing == ['Hip', 'LHip', 'Spine', 'Neck']
  assert np.isnan(joints[~ok]).all()
  np.testing.assert_allclose(joints[ok], EXPECTED[ok])


def test_mediapipe_33_goes_through_its_coco_subset():
  coco = upright_coco()
  points = np.full((33, 2), 999.0)          # the landmarks COCO lacks are not read
  visibility = np.full(33, 0.9)
  for i, name in enumerate(keypoints.COCO_NAMES):
    points[keypoints.MEDIAPIPE_NAMES.index(name)] = coco[i]
  joints, valid = keypoints.from_mediapipe(points, visibility)
  np.testing.assert_allclose(joints, EXPECTED)
  assert valid.all()
  assert keypoints.MEDIAPIPE_TO_COCO[:6] == (0, 2, 5, 7, 8, 11)
  visibility[keypoints.MEDIAPIPE_NAMES.index('right_wrist')] = 0.49
  _, valid = keypoints.from_mediapipe(points, visibility)
  assert list(np.flatnonzero(~valid)) == [16]   # RWrist


def test_3d_world_landmarks_map_like_2d_ones():
  # A depth of z = 2x - y + 7 per point: every joint is an affine mix of points whose
  # weights sum to one, so each joint's depth is that of its own (x, y).
  coco = upright_coco()
  coco3 = np.concatenate([coco, 2 * coco[:, :1] - coco[:, 1:] + 7], axis=1)
  points = np.full((33, 3), 999.0)
  for i, name in enumerate(keypoints.COCO_NAMES):
    points[keypoints.MEDIAPIPE_NAMES.index(name)] = coco3[i]
  joints, valid = keypoints.from_mediapipe(points)
  np.testing.assert_allclose(joints[:, :2], EXPECTED, atol=1e-12)
  np.testing.assert_allclose(joints[:, 2], 2 * EXPECTED[:, 0] - EXPECTED[:, 1] + 7,
                             atol=1e-12)
  assert valid.all()
  with pytest.raises(ValueError, match=r'expected shape \[33, 2\] \(or \[33, 3\]\), got '
                     r'\(33, 4\)'):
    keypoints.from_mediapipe(np.zeros((33, 4)))


def test_flat_rows_of_each_layout():
  coco = upright_coco()
  triplets = np.concatenate([coco, np.full((17, 1), 2.0)], axis=1)
  triplets[keypoints.COCO['right_ankle'], 2] = 0    # COCO: not labelled
  joints, valid = keypoints.to_joints(triplets.reshape(-1), 'coco17')
  np.testing.assert_allclose(joints[valid], EXPECTED[valid])
  assert list(np.flatnonzero(~valid)) == [3]        # RAnkle
  joints, valid = keypoints.to_joints(EXPECTED.reshape(-1), 'h36m17')
  np.testing.assert_array_equal(joints, EXPECTED)
  with pytest.raises(ValueError, match='coco17 keypoints: expected 34 values'):
    keypoints.to_joints(np.zeros(35), 'coco17')
  with pytest.raises(ValueError, match='unknown keypoint layout'):
    keypoints.to_joints(np.zeros(34), 'openpose25')
  # COCO's third value: any score above 0 is a known point (detectors write raw scores);
  # a NaN one is a missing point.
  scores = np.concatenate([coco, np.full((17, 1), 3.5)], axis=1)
  scores[keypoints.COCO['right_ankle'], 2] = np.nan
  scores[keypoints.COCO['left_ankle'], 2] = -1.0
  assert list(np.flatnonzero(~keypoints.to_joints(scores.reshape(-1), 'coco17')[1])) == [3, 6]
  # MediaPipe's visibility is a probability: outside 0..1 the values are x, y, z.
  mp = np.concatenate([np.arange(66.0).reshape(33, 2), np.full((33, 1), 0.9)], axis=1)
  mp[20, 2] = 1.5
  with pytest.raises(ValueError) as e:
    keypoints.to_joints(mp.reshape(-1), 'mediapipe33')
  assert str(e.value) == (
      'mediapipe33 keypoints: the third value of each point is read as its visibility (0 to '
      '1), but point 20 has 1.5: these look like x, y, z. Give x, y pairs (66 values) or x, '
      'y, visibility.')


def test_coco_json_matches_images_by_name_and_takes_the_fullest_person(tmp_path):
  coco = upright_coco()
  full = np.concatenate([coco, np.full((17, 1), 2.0)], axis=1)
  partial = full.copy()
  partial[:5, 2] = 0
  shifted = full.copy()
  shifted[:, 0] += 100
  data = {
      'images': [{'id': 1, 'file_name': 'a.jpg'}, {'id': 2, 'file_name': 'b.jpg'}],
      'annotations': [
          {'image_id': 1, 'keypoints': (partial + [1000, 0, 0]).reshape(-1).tolist(),
           'bbox': [0, 0, 500, 500]},
          {'image_id': 1, 'keypoints': full.reshape(-1).tolist(), 'bbox': [0, 0, 50, 50]},
          {'image_id': 2, 'keypoints': shifted.reshape(-1).tolist()}]}
  path = tmp_path / 'kp.json'
  path.write_text(json.dumps(data))
  file = keypoints.KeypointFile(str(path))
  joints, _ = file.joints('/somewhere/a.jpg')
  np.testing.assert_allclose(joints, EXPECTED)
  joints, _ = file.joints('b.jpg')
  np.testing.assert_allclose(joints, EXPECTED + [100, 0])
  assert file.joints('c.jpg') is None


def test_x_y_pairs_at_exactly_0_0_are_missing_joints():
  # OpenPose, AlphaPose and MMPose write a joint they did not find as (0, 0).
  pairs = EXPECTED.copy()
  pairs[13] = 0.0                                     # LWrist
  joints, valid = keypoints.to_joints(pairs.reshape(-1), 'h36m17')
  assert list(np.flatnonzero(~valid)) == [13] and np.isnan(joints[13]).all()
  coco = upright_coco()
  coco[keypoints.COCO['right_ankle']] = 0.0
  assert list(np.flatnonzero(~keypoints.to_joints(coco.reshape(-1), 'coco17')[1])) == [3]
  # A point at x = 0 alone, or (0, 0) given with a visibility, is a point.
  triplets = np.concatenate([pairs, np.ones((17, 1))], axis=1)
  assert keypoints.to_joints(triplets.reshape(-1), 'h36m17')[1].all()
  pairs[13] = (0.0, 5.0)
  assert keypoints.to_joints(pairs.reshape(-1), 'h36m17')[1].all()


def test_a_coco_results_list_without_boxes_takes_the_surer_then_the_larger_person(tmp_path):
  # Detections of one picture mark every keypoint known, and carry no "bbox": the
  # detector's score decides, then the box around the keypoints, whichever comes first.
  full = np.concatenate([upright_coco(), np.full((17, 1), 0.9)], axis=1)
  small, large = full.copy(), full.copy()
  small[:, :2] = small[:, :2] / 4.0
  large[:, :2] = large[:, :2] * 2.0
  path = tmp_path / 'results.json'
  for detections, expected in [
      ([(small, 0.2), (full, 0.95)], EXPECTED),
      ([(large, 0.1), (full, 0.95)], EXPECTED),         # a large false detection
      ([(small, None), (full, None)], EXPECTED),         # no scores: the larger
      ([(full, None), (large, None)], EXPECTED * 2.0)]:
    path.write_text(json.dumps([
        dict(image_id=7, keypoints=k.reshape(-1).tolist(),
             **({} if score is None else {'score': score})) for k, score in detections]))
    joints, _ = keypoints.KeypointFile(str(path)).joints('any.jpg')
    np.testing.assert_allclose(joints, expected)


@pytest.mark.parametrize('data,message', [
    ({'annotations': None}, '"annotations" must be a list, not NoneType.'),
    ({'annotations': 5, 'images': []}, '"annotations" must be a list, not int.'),
    ({'annotations': [], 'images': {'id': 1}}, '"images" must be a list, not dict.'),
    ({'annotations': [], 'images': [{'id': [1], 'file_name': 'a.jpg'}]},
     'an image id must be a number or a string, not [1].'),
    ({'annotations': [{'image_id': [7], 'keypoints': [0] * 51}]},
     "an annotation's image_id must be a number or a string, not [7].")])
def test_a_malformed_coco_file_is_refused_with_what_is_wrong(tmp_path, data, message):
  path = tmp_path / 'kp.json'
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path))
  assert str(e.value) == f'{path}: {message}'


def test_a_coco_results_list_over_several_images_without_file_names_is_refused(tmp_path):
  full = np.concatenate([upright_coco(), np.full((17, 1), 2.0)], axis=1)
  shifted = full + [100, 0, 0]
  path = tmp_path / 'results.json'
  # A detector's results list for images 1 and 2: nothing names their files.
  path.write_text(json.dumps([
      {'image_id': 1, 'keypoints': full.reshape(-1).tolist()},
      {'image_id': 2, 'keypoints': shifted.reshape(-1).tolist()}]))
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path))
  assert str(e.value) == (
      f'{path}: annotations of 2 images (image_id 1, 2) but no "images" list that names '
      'their files, so they cannot be matched to pictures. Add COCO\'s "images" list '
      '({"id": ..., "file_name": ...} for each) or give one image\'s annotations per file.')
  # Two people of one image still serve any picture: the one with more keypoints.
  partial = shifted.copy()
  partial[:5, 2] = 0
  path.write_text(json.dumps([
      {'image_id': 7, 'keypoints': partial.reshape(-1).tolist()},
      {'image_id': 7, 'keypoints': full.reshape(-1).tolist()}]))
  joints, _ = keypoints.KeypointFile(str(path)).joints('any.jpg')
  np.testing.assert_allclose(joints, EXPECTED)


def test_csv_keypoints_with_header_and_wildcard(tmp_path):
  path = tmp_path / 'kp.csv'
  row = ','.join(f'{v:g}' for v in upright_coco().reshape(-1))
  path.write_text(f'image,x0,y0\nb.png,{row}\n*,{row.replace("50,25", "51,26", 1)}\n')
  file = keypoints.KeypointFile(str(path))
  np.testing.assert_allclose(file.joints('b.png')[0], EXPECTED)
  np.testing.assert_allclose(file.joints('other.jpg')[0][9], [51, 26])   # the nose row
  bad = tmp_path / 'bad.csv'
  bad.write_text(f'a.png,{row}\nb.png,1,2,3\n')
  with pytest.raises(ValueError, match=r'bad.csv:2: coco17 keypoints: expected 34'):
    keypoints.KeypointFile(str(bad))


@pytest.mark.skipif(not os.path.exists(COCO_PHOTO_KEYPOINTS),
                    reason='../shared/data/photos is absent (real COCO annotation)')
def test_real_coco_annotation():
  joints, valid = keypoints.KeypointFile(COCO_PHOTO_KEYPOINTS).joints('any.jpg')
  assert valid.all()
  np.testing.assert_allclose(joints[0], [408.5, 208.5])     # hips (424, 203), (393, 214)
  np.testing.assert_allclose(joints[8], [378.5, 118.5])     # shoulders (399, 108), (358, 129)
  np.testing.assert_allclose(joints[9], [367, 81])          # nose
  np.testing.assert_allclose(joints[10], [367.25, 60.0])    # ears' midpoint (371, 79.5)
  np.testing.assert_allclose(joints[3], [396, 341])         # right ankle


def test_synthetic_meta_csv_gives_the_17_joints_of_each_image(tmp_path):
  header = 'id,action,subject,' + ','.join(f'x{i},y{i}' for i in range(17)) + ',fx,fy,cx,cy'
  values = ','.join(f'{v:g}' for v in EXPECTED.reshape(-1))
  path = tmp_path / 'META.csv'
  path.write_text(f'{header}\n00007,Walking,3,{values},500,500,128,128\n')
  file = keypoints.KeypointFile(str(path))
  joints, valid = file.joints('/data/Test/IMG/00007.jpg')
  np.testing.assert_allclose(joints, EXPECTED)
  assert valid.all()
  assert file.joints('00008.jpg') is None


def test_face_spread_by_hand():
  # COCO's person: the ears (55, 20) and (45, 20) lie sqrt(50) from the nose (50, 25); the
  # box around every point is 36 x 140 (x 32..68, y 20..160).
  coco = upright_coco().reshape(-1)
  assert keypoints.face_spread(coco) == pytest.approx(np.sqrt(50.0) / np.sqrt(36 ** 2 + 140 ** 2))
  # The 17 joints in their order: point 3, the right ankle (38, 160), lies sqrt(12**2 +
  # 60**2) from the pelvis (50, 100); the box is 36 x 150 (x 32..68, y 10..160).
  joints = EXPECTED.reshape(-1)
  assert keypoints.face_spread(joints) == pytest.approx(np.sqrt(3744.0) / np.sqrt(23796.0))
  assert round(keypoints.face_spread(joints), 2) == 0.40
  # Triplets: a visibility of 0 leaves a point out. Without the right ankle (point 3) the
  # farthest is point 2, the right knee (39, 130): sqrt(11**2 + 30**2).
  triplets = np.concatenate([EXPECTED, np.ones((17, 1))], axis=1)
  triplets[3, 2] = 0
  assert keypoints.face_spread(triplets.reshape(-1)) == pytest.approx(
      np.sqrt(1021.0) / np.sqrt(23796.0))
  pairs = EXPECTED.copy()
  pairs[3, 0] = np.nan                       # a non-finite coordinate: the same
  assert keypoints.face_spread(pairs.reshape(-1)) == pytest.approx(
      np.sqrt(1021.0) / np.sqrt(23796.0))
  # Not measurable: point 0 missing, points 1 to 4 all missing, or 3 of the 17 missing.
  for missing in ([0], [1, 2, 3, 4], [14, 15, 16]):
    row = np.concatenate([EXPECTED, np.ones((17, 1))], axis=1)
    row[missing, 2] = 0
    assert keypoints.face_spread(row.reshape(-1)) is None, missing
  row = np.concatenate([EXPECTED, np.ones((17, 1))], axis=1)
  # 15 of 17 are enough. Without the right elbow and wrist (x 34 and 32) the box is 30 x
  # 150 (x 38..68: the right shoulder and ankle lie at 38).
  row[[15, 16], 2] = 0
  assert keypoints.face_spread(row.reshape(-1)) == pytest.approx(
      np.sqrt(3744.0) / np.sqrt(30 ** 2 + 150 ** 2))
  assert keypoints.face_spread(np.full(34, 5.0)) is None   # a box of one point


def test_empty_csv_fields_are_missing_joints_as_nan_is(tmp_path):
  values = [repr(float(v)) for v in EXPECTED.reshape(-1)]
  values[2 * 13:2 * 13 + 2] = ['', ' ']            # joint 13 (LWrist) as two empty fields
  values[2 * 16:2 * 16 + 2] = ['nan', 'nan']       # joint 16 (RWrist) as nan
  path = tmp_path / 'kp.csv'
  path.write_text('any.png,' + ','.join(values) + '\n')
  joints, valid = keypoints.KeypointFile(str(path), 'h36m17').joints('any.png')
  assert np.flatnonzero(~valid).tolist() == [13, 16]
  np.testing.assert_array_equal(joints[valid], EXPECTED[valid])
  path.write_text('any.png,' + ','.join(['x'] + values[1:]) + '\n')
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path), 'h36m17')
  assert str(e.value) == (f'{path}:1: expected image,x,y,... with numbers (an empty field '
                          'or nan for a missing joint).')


def test_a_csv_of_the_17_joints_read_as_coco_by_default_is_refused(tmp_path):
  path = tmp_path / 'joints.csv'
  path.write_text('image,x0,y0\nany.png,' + ','.join(f'{v:g}' for v in EXPECTED.reshape(-1))
                  + '\n')
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path))
  assert str(e.value) == (
      f'{path}:2: no keypoint layout was given, and these 17 points do not look like '
      'COCO\'s: points 1 to 4 (COCO\'s eyes and ears) lie up to 0.40 of the body\'s size '
      'from point 0 (the nose), where a face keeps them within 0.2. If they are the 17 '
      'joints of fbi3d/skeleton.py (pelvis first), pass --keypoints_layout=h36m17; if '
      'they are COCO keypoints, pass --keypoints_layout=coco17.')
  joints, valid = keypoints.KeypointFile(str(path), 'h36m17').joints('any.png')
  np.testing.assert_allclose(joints, EXPECTED)
  assert valid.all()
  # A layout given is taken at its word: read as COCO, the pelvis is the nose.
  joints, _ = keypoints.KeypointFile(str(path), 'coco17').joints('any.png')
  np.testing.assert_allclose(joints[9], EXPECTED[0])
  # COCO's own person passes the default.
  coco = tmp_path / 'coco.csv'
  coco.write_text('any.png,' + ','.join(f'{v:g}' for v in upright_coco().reshape(-1)) + '\n')
  np.testing.assert_allclose(keypoints.KeypointFile(str(coco)).joints('any.png')[0], EXPECTED)


def test_a_csv_with_several_people_for_one_picture_uses_the_most_complete_then_the_largest(
    tmp_path):
  coco = np.concatenate([upright_coco(), np.full((17, 1), 2.0)], axis=1)
  partial = coco * [3, 3, 1]                 # three times as large, its left ankle unlabelled
  partial[keypoints.COCO['left_ankle'], 2] = 0
  small = coco + [500, 0, 0]                 # all 17 known, box 36 x 150 (EXPECTED's)
  large = coco * [2, 2, 1]                   # all 17 known, box 72 x 300
  rows = [('a.png', partial), ('a.png', small), ('a.png', large), ('b.png', partial),
          ('b.png', small)]
  path = tmp_path / 'people.csv'
  path.write_text(''.join(f'{name},' + ','.join(f'{v:g}' for v in row.reshape(-1)) + '\n'
                          for name, row in rows))
  file = keypoints.KeypointFile(str(path))
  np.testing.assert_allclose(file.joints('a.png')[0], EXPECTED * 2)
  # b.png: 17 joints known against 16 (the left ankle's joint missing), whatever the size.
  np.testing.assert_allclose(file.joints('b.png')[0], EXPECTED + [500, 0])


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
  row = 'any.png,' + ','.join(f'{v:g}' for v in upright_coco().reshape(-1)) + '\n'
  csv_path = tmp_path / 'bom.csv'
  csv_path.write_bytes(b'\xef\xbb\xbf' + ('image,x0,y0\n' + row).encode())
  np.testing.assert_allclose(keypoints.KeypointFile(str(csv_path)).joints('any.png')[0],
                             EXPECTED)
  full = np.concatenate([upright_coco(), np.full((17, 1), 2.0)], axis=1)
  json_path = tmp_path / 'bom.json'
  json_path.write_bytes(b'\xef\xbb\xbf' + json.dumps(
      {'annotations': [{'keypoints': full.reshape(-1).tolist()}]}).encode())
  np.testing.assert_allclose(keypoints.KeypointFile(str(json_path)).joints('x.jpg')[0],
                             EXPECTED)


def test_a_coco_file_of_one_image_ignores_other_images_annotations_and_names_bad_ones(
    tmp_path):
  full = np.concatenate([upright_coco(), np.full((17, 1), 2.0)], axis=1)
  other = full.copy()
  other[:, 0] += 100
  data = {'images': [{'id': 1, 'file_name': 'a.jpg'}],
          'annotations': [{'image_id': 2, 'keypoints': other.reshape(-1).tolist(),
                           'bbox': [0, 0, 900, 900]},
                          {'image_id': 1, 'keypoints': full.reshape(-1).tolist(),
                           'bbox': [0, 0, 10, 10]}]}
  path = tmp_path / 'one.json'
  path.write_text(json.dumps(data))
  # Image 2's larger person is not a.jpg's (nor any picture's).
  np.testing.assert_allclose(keypoints.KeypointFile(str(path)).joints('b.jpg')[0], EXPECTED)
  # Its one person is one picture's, never several pictures' at once, and never that of
  # a picture of another name; a renamed copy whose name holds the file's is taken.
  file = keypoints.KeypointFile(str(path))
  file.check_names(['/x/copy_of_a.jpg'])
  for picture, taken in (('frame_12.jpg', False), ('frame_1.png', True),
                         ('coco_frame_1.jpg', True), ('frame_10.jpg', False)):
    data['images'][0]['file_name'] = 'frame_1.jpg'
    path.write_text(json.dumps(data))
    if taken:
      keypoints.KeypointFile(str(path)).check_names([f'/x/{picture}'])
    else:
      with pytest.raises(ValueError, match='another picture\'s person'):
        keypoints.KeypointFile(str(path)).check_names([f'/x/{picture}'])
  data['images'][0]['file_name'] = 'a.jpg'
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError) as e:
    file.check_names(['/x/b.jpg'])
  assert str(e.value) == (
      f'{path} holds the keypoints of a.jpg, and the picture given is /x/b.jpg: another '
      'picture\'s person. Give the file of this picture, or, if it is the same picture '
      'under another name, rename one of them so that one name holds the other.')
  with pytest.raises(ValueError) as e:
    file.check_names(['/x/a.jpg', '/x/b.jpg'])
  assert str(e.value) == (
      f'{path} holds the keypoints of one image (a.jpg) and 2 pictures were given: every '
      'one would get that image\'s person. Predict that picture alone, or give a file that '
      'names each picture (COCO\'s "images" with their file names, or a CSV with one row '
      'per picture).')
  del data['annotations'][1]
  path.write_text(json.dumps(data))
  assert keypoints.KeypointFile(str(path)).joints('a.jpg') is None
  for bad, what in [({'bbox': [1, 2]}, 'bbox'), ({'keypoints': 5}, 'keypoints')]:
    ann = dict({'id': 7, 'image_id': 1, 'keypoints': full.reshape(-1).tolist()}, **bad)
    path.write_text(json.dumps({'annotations': [ann]}))
    with pytest.raises(ValueError) as e:
      keypoints.KeypointFile(str(path))
    assert str(e.value) == (
        f'{path}: annotation 7 (image_id 1): "keypoints" must be 51 numbers and "bbox" 4 '
        'numbers (x, y, width, height).' if what == 'bbox' else
        f'{path}: every annotation needs "keypoints", 51 numbers (17 COCO keypoints as x, '
        'y, visibility).')


def test_the_17_joints_with_few_points_are_told_by_the_pelvis_between_the_hips(tmp_path):
  # Head and both wrists missing: 14 points, too few for face_spread.
  values = EXPECTED.copy()
  values[[10, 13, 16]] = np.nan
  assert keypoints.face_spread(values.reshape(-1)) is None
  assert keypoints.pelvis_between_hips(values.reshape(-1))
  path = tmp_path / 'joints.csv'
  path.write_text('any.png,' + ','.join(f'{v:g}' for v in values.reshape(-1)) + '\n')
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path))
  assert str(e.value) == (
      f'{path}:1: no keypoint layout was given, and these points do not look like COCO\'s: '
      'point 0 lies halfway between points 1 and 4, as the pelvis of the 17 joints of '
      'fbi3d/skeleton.py lies between the hips (COCO\'s nose is not halfway between the '
      'left eye and the right ear). If they are those 17 joints, pass '
      '--keypoints_layout=h36m17; if they are COCO keypoints, pass '
      '--keypoints_layout=coco17.')
  joints, valid = keypoints.KeypointFile(str(path), 'h36m17').joints('any.png')
  assert valid.sum() == 14
  # COCO's own person with its legs and one wrist missing still passes the default: its
  # nose is 0.57 of the left eye to right ear distance from their midpoint.
  coco = upright_coco().copy()
  coco[[10, 13, 14, 15, 16]] = np.nan
  assert not keypoints.pelvis_between_hips(coco.reshape(-1))
  path.write_text('any.png,' + ','.join(f'{v:g}' for v in coco.reshape(-1)) + '\n')
  assert keypoints.KeypointFile(str(path)).joints('any.png') is not None


def test_a_file_naming_one_file_name_in_two_folders_is_refused(tmp_path):
  coco = np.concatenate([upright_coco(), np.full((17, 1), 2.0)], axis=1)
  row = ','.join(f'{v:g}' for v in coco.reshape(-1))
  path = tmp_path / 'frames.csv'
  # Two people of one picture, and the same picture named as ./seqA/0001.jpg: fine.
  path.write_text(f'seqA/0001.jpg,{row}\nseqA/0001.jpg,{row}\n./seqA/0001.jpg,{row}\n')
  file = keypoints.KeypointFile(str(path))
  np.testing.assert_allclose(file.joints('/data/seqA/0001.jpg')[0], EXPECTED)
  # Another folder's 0001.jpg: matched by file name, one would get the other's person.
  path.write_text(f'seqA/0001.jpg,{row}\nseqA/0002.jpg,{row}\nseqB/0001.jpg,{row}\n')
  with pytest.raises(ValueError) as e:
    keypoints.KeypointFile(str(path))
  assert str(e.value) == (
      f'{path}:3: names seqA/0001.jpg and seqB/0001.jpg, pictures of one file name in '
      'different folders; keypoints are matched to pictures by file name alone, so one '
      'would get the other\'s person. Give one keypoint file per folder.')
  data = {'images': [{'id': 1, 'file_name': 'a/x.jpg'}, {'id': 2, 'file_name': 'b/x.jpg'}],
          'annotations': [{'image_id': 1, 'keypoints': coco.reshape(-1).tolist()},
                          {'image_id': 2, 'keypoints': coco.reshape(-1).tolist()}]}
  coco_path = tmp_path / 'frames.json'
  coco_path.write_text(json.dumps(data))
  with pytest.raises(ValueError, match=r'names a/x.jpg and b/x.jpg, pictures of one'):
    keypoints.KeypointFile(str(coco_path))

"""Flip averaging at test time: exact hand-computed cases of fbi3d/flip_test.py, of a
whole split read with it, and of the export's image outputs."""

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import flip_test
from fbi3d import inference
from fbi3d import keys
from fbi3d.training import split_outputs
from tests.conftest import tiny_config


def test_mirror_images_reverses_columns_and_swaps_red_and_blue_when_asked():
  # One row of two pixels: (1, 2, 3) then (4, 5, 6).
  images = tf.constant([[[[1., 2., 3.], [4., 5., 6.]]]])
  np.testing.assert_array_equal(flip_test.mirror_images(images, False).numpy(),
                                [[[[4., 5., 6.], [1., 2., 3.]]]])
  np.testing.assert_array_equal(flip_test.mirror_images(images, True).numpy(),
                                [[[[6., 5., 4.], [3., 2., 1.]]]])
  both = flip_test.with_mirror(images, True).numpy()
  np.testing.assert_array_equal(both, [[[[1., 2., 3.], [4., 5., 6.]]],
                                       [[[6., 5., 4.], [3., 2., 1.]]]])


def test_points_of_a_mirror_turn_back_to_x_at_s_minus_1_with_sides_exchanged():
  # Joint j of the mirror at (j, 10 + j, 100 j) in a crop of 64 px.
  j = np.arange(17, dtype=np.float32)
  mirrored = np.stack([j, 10 + j, 100 * j], axis=-1)[None]
  back = flip_test.unmirror(flip_test.POINTS, mirrored, 64).numpy()[0]
  np.testing.assert_array_equal(back[0], [63., 10., 0.])          # Hip stays Hip
  np.testing.assert_array_equal(back[1], [59., 14., 400.])        # RHip <- LHip (4)
  np.testing.assert_array_equal(back[4], [62., 11., 100.])        # LHip <- RHip (1)
  np.testing.assert_array_equal(back[10], [53., 20., 1000.])      # Head stays Head
  np.testing.assert_array_equal(back[16], [50., 23., 1300.])      # RWrist <- LWrist (13)
  # Twice is the identity.
  again = flip_test.unmirror(flip_test.POINTS, back[None], 64).numpy()
  np.testing.assert_array_equal(again, mirrored)


def test_joint_values_and_fbi_bones_of_a_mirror_take_their_twins_places():
  confidence = np.arange(17, dtype=np.float32)[None]
  back = flip_test.unmirror(flip_test.JOINTS, confidence, 64).numpy()[0]
  assert back.tolist() == [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
  # Bone i of the mirror says class i % 3 with certainty.
  probs = np.eye(3, dtype=np.float32)[np.arange(14) % 3][None]
  back = flip_test.unmirror(flip_test.BONES, probs, 64).numpy()[0]
  # RHip->RKnee (0) takes LHip->LKnee's (2) answer, Thorax->LShoulder (8) that of
  # Thorax->RShoulder (11), Hip->Spine (4) its own.
  np.testing.assert_array_equal(back[0], [0., 0., 1.])
  np.testing.assert_array_equal(back[2], [1., 0., 0.])
  np.testing.assert_array_equal(back[4], [0., 1., 0.])
  np.testing.assert_array_equal(back[8], [0., 0., 1.])
  np.testing.assert_array_equal(back[11], [0., 0., 1.])
  assert np.argmax(back, -1).tolist() == [2, 0, 0, 1, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]


def test_average_of_a_network_that_ignores_the_picture_is_its_answer_and_its_mirror():
  # The same answer for a crop and its mirror: Hip at x = 10 becomes (10 + 63 - 10) / 2,
  # LHip at x = 20 becomes (20 + 63 - RHip's 30) / 2, RHip (30 + 63 - LHip's 20) / 2.
  pose = np.zeros((1, 17, 2), np.float32)
  pose[0, 0], pose[0, 1], pose[0, 4] = (10., 5.), (30., 6.), (20., 7.)
  out = flip_test.average_halves({'pose2d': np.concatenate([pose, pose])}, 64)
  result = out['pose2d'].numpy()[0]
  np.testing.assert_array_equal(result[0], [31.5, 5.])
  np.testing.assert_array_equal(result[4], [26.5, 6.5])
  np.testing.assert_array_equal(result[1], [36.5, 6.5])


def test_average_of_an_answer_that_mirrors_with_the_picture_is_that_answer():
  rng = np.random.default_rng(0)
  pose = rng.uniform(0, 63, (3, 17, 3)).astype(np.float32)
  probs = rng.dirichlet(np.ones(3), (3, 14)).astype(np.float32)
  # What a network exactly equivariant to the mirror says of the mirror images.
  mirror_pose = flip_test.unmirror(flip_test.POINTS, pose, 64).numpy()
  mirror_probs = flip_test.unmirror(flip_test.BONES, probs, 64).numpy()
  out = flip_test.average_halves({'coarse3d': np.concatenate([pose, mirror_pose]),
                                  'fbi': np.concatenate([probs, mirror_probs])}, 64)
  np.testing.assert_allclose(out['coarse3d'].numpy(), pose, atol=1e-5)
  np.testing.assert_allclose(out['fbi'].numpy(), probs, atol=1e-7)


def test_an_output_without_a_rule_is_refused():
  with pytest.raises(ValueError, match=r"no rule to turn back the output\(s\) \['heatmaps'\]"):
    flip_test.average_halves({'heatmaps': np.zeros((2, 4, 4, 17))}, 16)
  with pytest.raises(ValueError, match='unknown kind'):
    flip_test.unmirror('pixels', np.zeros((1, 17)), 16)


def test_collect_with_flip_test_averages_each_crop_with_its_mirror(tiny_dataset):
  data_dir, examples = tiny_dataset   # 6 crops of 32 px
  image = tf.keras.Input((32, 32, 3))
  # Every joint at x = the crop's mean red (0 to 1), y = its mean blue: a crop and its
  # mirror (red and blue swapped) give (r, b) and (b, r), so the average is
  # ((r + 31 - b) / 2, (b + r) / 2).
  red = tf.reduce_mean(image[..., 0], axis=[1, 2])
  blue = tf.reduce_mean(image[..., 2], axis=[1, 2])
  joints = tf.tile(tf.stack([red, blue], -1)[:, None, :], [1, 17, 1])
  network = tf.keras.Model(image, joints)
  outputs_fn = lambda out: {'pose2d': out.numpy()}
  plain, _ = split_outputs.collect(network, tiny_config(data_dir, 'unused'), 'train',
                                   outputs_fn, verbose=0)
  cfg = tiny_config(data_dir, 'unused', flip_test=True)
  averaged, _ = split_outputs.collect(network, cfg, 'train', outputs_fn, verbose=0)
  r = np.array([e['decoded'][..., 0].mean() / 255.0 for e in examples['train']])
  b = np.array([e['decoded'][..., 2].mean() / 255.0 for e in examples['train']])
  np.testing.assert_allclose(plain['pose2d'][:, 3], np.stack([r, b], -1), rtol=1e-5)
  expected = np.stack([(r + 31.0 - b) / 2.0, (b + r) / 2.0], -1)
  for j in range(17):
    np.testing.assert_allclose(averaged['pose2d'][:, j], expected, rtol=1e-5)


def test_export_image_outputs_with_flip_are_the_mean_over_crop_and_mirror():
  cfg = tiny_config('unused', 'unused', flip_test=True)
  model = inference.PoseModel.untrained(cfg)
  assert bool(model.image_flip_average.numpy())
  images = tf.constant(np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)), tf.float32)
  got = model._image_outputs(images)   # pylint: disable=protected-access
  model.flip_average = False
  plain = model._image_outputs(images)   # pylint: disable=protected-access
  mirrored_images = flip_test.mirror_images(images, True)
  mirror = model._image_outputs(mirrored_images)   # pylint: disable=protected-access
  for name, kind in (('pose2d', flip_test.POINTS), ('coarse3d', flip_test.POINTS),
                     ('pose2d_confidence', flip_test.JOINTS), ('fbi', flip_test.BONES)):
    expected = 0.5 * (plain[name] + flip_test.unmirror(kind, mirror[name], 32))
    np.testing.assert_allclose(got[name].numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


class _Run:
  """A run stand-in whose features phase finished with `made_from` (None: no phase)."""

  def __init__(self, made_from):
    self.made_from = made_from

  def results(self, phase):
    assert phase == 'features'
    return None if self.made_from is None else dict(finished=True, made_from=self.made_from)


def test_the_export_averages_as_the_features_cache_was_made_not_as_the_flags_say():
  flip_on = tiny_config('d', 'm', flip_test=True)
  flip_off = tiny_config('d', 'm', flip_test=False)
  setting = inference._flip_setting   # pylint: disable=protected-access
  made = dict(flip_test=True, flip_swaps_red_blue=True)
  assert setting(_Run(made), flip_off) == (True, True)
  assert setting(_Run(dict(flip_test=True, flip_swaps_red_blue=False)), flip_on) == (True, False)
  # A cache made before flip averaging existed read every crop once.
  assert setting(_Run(dict(crops='estimated')), flip_on) == (False, False)
  # No features phase: the flags.
  assert setting(_Run(None), flip_on) == (True, True)
  assert setting(_Run(None), flip_off) == (False, False)


def test_regressor_inputs_of_the_mirror_image_part_by_part():
  # Final's input: 2D joint j at (j, 100 + j), coarse 3D joint j at (j, 200 + j, 300 + j),
  # FBI bone i (i, 0.5, 0.25); crops of 64 px.
  j = np.arange(17, dtype=np.float32)
  two_d = np.stack([j, 100 + j], -1)
  coarse = np.stack([j, 200 + j, 300 + j], -1)
  bones = np.stack([np.arange(14.0), np.full(14, 0.5), np.full(14, 0.25)], -1)
  row = np.concatenate([two_d.ravel(), coarse.ravel(), bones.ravel()])[None]
  mirrored = flip_test.mirror_regressor_inputs(row, keys.FINAL_INPUTS, 64).numpy()[0]
  two_d_m = mirrored[:34].reshape(17, 2)
  coarse_m = mirrored[34:85].reshape(17, 3)
  bones_m = mirrored[85:].reshape(14, 3)
  np.testing.assert_array_equal(two_d_m[0], [63., 100.])         # Hip
  np.testing.assert_array_equal(two_d_m[1], [59., 104.])         # RHip <- LHip
  np.testing.assert_array_equal(coarse_m[13], [47., 216., 316.])  # LWrist <- RWrist (16)
  np.testing.assert_array_equal(bones_m[0], [2., 0.5, 0.25])      # RHip->RKnee <- left twin
  np.testing.assert_array_equal(bones_m[5], [5., 0.5, 0.25])      # Spine->Thorax stays
  np.testing.assert_allclose(flip_test.mirror_regressor_inputs(mirrored[None], keys.FINAL_INPUTS,
                                                               64), row)
  with pytest.raises(ValueError, match=r"the parts \['2d'\] are 34 wide, the inputs 127"):
    flip_test.mirror_regressor_inputs(row, keys.BASE_INPUTS, 64)


def test_a_mirrored_pose_has_x_negated_and_sides_exchanged():
  pose = np.zeros((1, 17, 3))
  pose[0, 1], pose[0, 4], pose[0, 10] = (100., 1., 2.), (-90., 3., 4.), (5., -600., 7.)
  got = flip_test.mirror_pose3d(pose)[0]
  np.testing.assert_array_equal(got[1], [90., 3., 4.])
  np.testing.assert_array_equal(got[4], [-100., 1., 2.])
  np.testing.assert_array_equal(got[10], [-5., -600., 7.])


def test_export_final_and_lift_with_regressor_mirror_average_are_the_mean_of_both_answers():
  cfg = tiny_config('unused', 'unused', regressor_mirror_average=True)
  model = inference.PoseModel.untrained(cfg)
  assert bool(model.regressor_mirror_average.numpy()) and bool(model.lift_mirror_average.numpy())
  rng = np.random.default_rng(4)
  images = tf.constant(rng.uniform(0, 1, (2, 32, 32, 3)), tf.float32)
  got = model._infer(images)   # pylint: disable=protected-access
  out = model._image_outputs(images)   # pylint: disable=protected-access
  features = keys.regressor_input({keys.INPUT_2D: out['pose2d'],
                                   keys.INPUT_COARSE3D: out['coarse3d'],
                                   keys.INPUT_FBI: out['fbi']}, keys.FINAL_INPUTS)
  direct = model.refine_net(features, training=False).numpy()
  mirrored = model.refine_net(flip_test.mirror_regressor_inputs(features, keys.FINAL_INPUTS, 32),
                              training=False).numpy()
  np.testing.assert_allclose(got['pose3d'].numpy(),
                             0.5 * (direct + flip_test.mirror_pose3d(mirrored)), atol=1e-4)
  two_d = rng.uniform(4, 28, (3, 17, 2)).astype(np.float32)
  flat = two_d.reshape(3, 34)
  direct = model.base_net(flat, training=False).numpy()
  mirrored = model.base_net(flip_test.mirror_regressor_inputs(flat, keys.BASE_INPUTS, 32),
                            training=False).numpy()
  np.testing.assert_allclose(model.lift_2d(two_d),
                             0.5 * (direct + flip_test.mirror_pose3d(mirrored)), atol=1e-4)

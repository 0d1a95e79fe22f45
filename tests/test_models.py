"""Tests of the image models: shapes, exact decoding, precision and branch separation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from fbi3d import skeleton
from fbi3d.models import count_params
from fbi3d.models import generator
from fbi3d.models import hourglass

TINY_GENERATOR = dict(coarse_channels=8, depth_bins=4, fbi_channels=(4, 8),
                      fbi_blocks_per_stage=1)


@pytest.mark.parametrize('size, depth', [(32, 2), (64, 3)])
def test_stacked_hourglass_shapes(size, depth):
  model = hourglass.build_stacked_hourglass(size, num_joints=5, num_stacks=2, channels=8,
                                            depth=depth)
  outputs = model(np.random.rand(2, size, size, 3).astype(np.float32))
  assert isinstance(outputs, list) and len(outputs) == 2
  for h in outputs:
    assert h.shape == (2, size // 4, size // 4, 5)
    assert h.dtype == tf.float32


@pytest.mark.parametrize('size, depth', [(32, 2), (64, 3)])
def test_generator_shapes(size, depth):
  model = generator.build_generator(size, coarse_depth=depth, return_features=True,
                                    **TINY_GENERATOR)
  out = model(np.random.rand(3, size, size, 3).astype(np.float32))
  assert out['coarse3d'].shape == (3, skeleton.NUM_JOINTS, 3)
  assert out['fbi'].shape == (3, skeleton.NUM_FBI_BONES, 3)
  assert out['coarse3d_volume'].shape == (3, size // 4, size // 4, skeleton.NUM_JOINTS, 4)
  assert out['coarse3d_features'].shape == (3, size // 4, size // 4, 8)
  np.testing.assert_allclose(out['fbi'].numpy().sum(-1), 1.0, atol=1e-5)


def test_bad_input_size():
  with pytest.raises(ValueError, match='multiple of 4'):
    hourglass.build_stacked_hourglass(40, depth=3)
  with pytest.raises(ValueError, match='multiple of 4'):
    generator.build_generator(48, coarse_depth=3, **TINY_GENERATOR)


def test_soft_argmax_one_peak_is_exact():
  depth_bins, depth_range = 16, 1000.0
  # Shape = [B=1, H=4, W=5, J=2, D=16].
  volume = np.full((1, 4, 5, 2, depth_bins), -1e4, np.float32)
  volume[0, 1, 2, 1, 3] = 0.0
  volume[0, 3, 0, 0, 15] = 0.0
  pose = generator.soft_argmax_3d(volume, 4, depth_range).numpy()
  assert pose.shape == (1, 2, 3) and pose.dtype == np.float32
  # Joint 1: x = 2 * 4 + 1.5, y = 1 * 4 + 1.5, z = ((3 + 0.5) / 16 * 2 - 1) * 1000.
  np.testing.assert_array_equal(pose[0, 1], [9.5, 5.5, -562.5])
  # Joint 0: x = 0 * 4 + 1.5, y = 3 * 4 + 1.5, z = ((15 + 0.5) / 16 * 2 - 1) * 1000.
  np.testing.assert_array_equal(pose[0, 0], [1.5, 13.5, 937.5])


def test_soft_argmax_two_peaks_gives_midpoint():
  # Shape = [B=1, H=4, W=4, J=1, D=8]; equal peaks at (h, w, d) = (0, 1, 1) and (2, 3, 5).
  volume = np.full((1, 4, 4, 1, 8), -1e4, np.float32)
  volume[0, 0, 1, 0, 1] = 0.0
  volume[0, 2, 3, 0, 5] = 0.0
  pose = generator.soft_argmax_3d(volume, 4, 800.0).numpy()
  # Mean cell (u, v, d) = (2, 1, 3): x = 9.5, y = 5.5, z = (3.5 / 8 * 2 - 1) * 800 = -100.
  np.testing.assert_array_equal(pose[0, 0], [9.5, 5.5, -100.0])


def test_soft_argmax_layer_matches_function_and_is_float32(bfloat16_policy):
  layer = generator.SoftArgmax3D(4, 1000.0)
  volume = tf.random.normal([2, 3, 3, 2, 4])
  np.testing.assert_allclose(layer(volume).numpy(),
                             generator.soft_argmax_3d(volume, 4, 1000.0).numpy(), rtol=1e-6)
  assert layer(tf.cast(volume, tf.bfloat16)).dtype == tf.float32


def test_decode_heatmaps_exact():
  # Shape = [B=1, H=6, W=8, J=3].
  maps = np.zeros((1, 6, 8, 3), np.float32)
  # Joint 0: peak 1 at (row 2, col 3); left 0.2, right 0.5, up 0.4, down 0.1:
  # u = 3 + (ln 0.5 - ln 0.2) / (2 (0 - ln 0.2 - ln 0.5)),
  # v = 2 + (ln 0.1 - ln 0.4) / (2 (0 - ln 0.4 - ln 0.1)).
  maps[0, 2, 3, 0] = 1.0
  maps[0, 2, 4, 0] = 0.5
  maps[0, 2, 2, 0] = 0.2
  maps[0, 1, 3, 0] = 0.4
  maps[0, 3, 3, 0] = 0.1
  u0 = 3 + math.log(0.5 / 0.2) / (2 * -math.log(0.2 * 0.5))
  v0 = 2 + math.log(0.1 / 0.4) / (2 * -math.log(0.4 * 0.1))
  # Joint 1: peak at (row 4, col 6) with equal neighbours: no shift.
  maps[0, 4, 6, 1] = 0.9
  # Joint 2: peak on the left border (col 0), row 5 = bottom border: no shift at all.
  maps[0, 5, 0, 2] = 0.7
  maps[0, 5, 1, 2] = 0.6
  maps[0, 4, 0, 2] = 0.6
  coords, conf = hourglass.decode_heatmaps(maps, stride=4, return_confidence=True)
  np.testing.assert_allclose(coords.numpy()[0], [
      [u0 * 4 + 1.5, v0 * 4 + 1.5],
      [6 * 4 + 1.5, 4 * 4 + 1.5],
      [0 * 4 + 1.5, 5 * 4 + 1.5]], rtol=0, atol=1e-5)
  np.testing.assert_allclose(conf.numpy()[0], [1.0, 0.9, 0.7])
  graph_fn = tf.function(lambda m: hourglass.decode_heatmaps(m, stride=4),
                         input_signature=[tf.TensorSpec([None, None, None, 3])])
  np.testing.assert_array_equal(graph_fn(maps).numpy(), coords.numpy())


def test_decode_finds_a_gaussian_centre_between_cells():
  # A Gaussian target (sigma 1 cell, as the pipeline draws) centred at cell (u, v) =
  # (3.3, 1.8) decodes to exactly that point: x = 3.3 * 4 + 1.5, y = 1.8 * 4 + 1.5.
  rows, cols = np.mgrid[0:6, 0:8]
  gauss = np.exp(-((cols - 3.3) ** 2 + (rows - 1.8) ** 2) / 2.0).astype(np.float32)
  coords = hourglass.decode_heatmaps(gauss[None, :, :, None], stride=4).numpy()
  np.testing.assert_allclose(coords[0, 0], [3.3 * 4 + 1.5, 1.8 * 4 + 1.5], atol=1e-4)


def test_decode_inverts_pipeline_cell_centres():
  # A heatmap peaked exactly on cell (i, j) decodes to the pipeline's cell centre.
  maps = np.zeros((1, 4, 4, 1), np.float32)
  maps[0, 1, 2, 0] = 1.0
  np.testing.assert_array_equal(hourglass.decode_heatmaps(maps, stride=4).numpy(),
                                [[[2 * 4 + 1.5, 1 * 4 + 1.5]]])


def test_branches_share_no_weights():
  model = generator.build_generator(32, coarse_depth=2, **TINY_GENERATOR)
  coarse = {id(v) for v in generator.branch_variables(model, 'coarse3d')}
  fbi = {id(v) for v in generator.branch_variables(model, 'fbi')}
  assert coarse and fbi and not coarse & fbi
  assert coarse | fbi == {id(v) for v in model.trainable_variables}
  for layer in model.layers:
    assert layer.name == 'image' or layer.name.startswith(('coarse3d', 'fbi'))
  assert count_params(model) == (
      sum(count_params(generator.branch_model(model, b)) for b in generator.BRANCHES))


def test_freezing_fbi_branch_leaves_only_coarse3d_trainable():
  model = generator.build_generator(32, coarse_depth=2, **TINY_GENERATOR)
  generator.set_branch_trainable(model, 'fbi', False)
  coarse = {id(v) for v in generator.branch_variables(model, 'coarse3d')}
  assert {id(v) for v in model.trainable_variables} == coarse
  generator.set_branch_trainable(model, 'fbi', True)
  fbi = {id(v) for v in generator.branch_variables(model, 'fbi')}
  assert {id(v) for v in model.trainable_variables} == coarse | fbi


def test_outputs_float32_under_mixed_bfloat16(bfloat16_policy):
  hg = hourglass.build_stacked_hourglass(32, num_joints=3, num_stacks=2, channels=8, depth=2)
  assert hg.get_layer('hourglass_s0_hg_up_a_conv').compute_dtype == 'bfloat16'
  assert all(h.dtype == tf.float32 for h in hg(tf.random.uniform([1, 32, 32, 3])))
  model = generator.build_generator(32, coarse_depth=2, return_features=True,
                                    **TINY_GENERATOR)
  out = model(tf.random.uniform([2, 32, 32, 3]))
  for key, value in out.items():
    assert value.dtype == tf.float32, key
  np.testing.assert_allclose(out['fbi'].numpy().sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_one_step_changes_both_branches():
  tf.keras.utils.set_random_seed(0)
  model = generator.build_generator(32, coarse_depth=2, **TINY_GENERATOR)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                loss={'coarse3d': 'mse', 'fbi': 'categorical_crossentropy'})
  images = np.random.rand(4, 32, 32, 3).astype(np.float32)
  targets = {
      'coarse3d': np.random.rand(4, skeleton.NUM_JOINTS, 3).astype(np.float32) * 32,
      'fbi': np.eye(3, dtype=np.float32)[np.random.randint(0, 3, (4, 14))],
  }
  before = {b: [v.numpy().copy() for v in generator.branch_variables(model, b)]
            for b in generator.BRANCHES}
  model.fit(images, targets, batch_size=4, epochs=1, verbose=0)
  for branch in generator.BRANCHES:
    after = generator.branch_variables(model, branch)
    changed = [not np.array_equal(a, b.numpy()) for a, b in zip(before[branch], after)]
    # Every variable gets a gradient; allow a stray exact zero on other hardware.
    assert sum(changed) >= 0.95 * len(changed), branch
  for layer_name in ('coarse3d_stem_conv', 'coarse3d_volume_conv', 'fbi_stem_conv',
                     'fbi_logits'):
    kernel = model.get_layer(layer_name).kernel
    branch = 'fbi' if layer_name.startswith('fbi') else 'coarse3d'
    index = [v.ref() for v in generator.branch_variables(model, branch)].index(kernel.ref())
    assert not np.array_equal(before[branch][index], kernel.numpy()), layer_name


def test_soft_argmax_2d_exact():
  # Shape = [B=1, H=2, W=3, J=1]. Logits ln 1, ln 2, ln 1 in row 0 and ln 4 (col 2) in
  # row 1, -inf elsewhere: probabilities 1/8, 2/8, 1/8 and 4/8.
  maps = np.full((1, 2, 3, 1), -np.inf, np.float32)
  maps[0, 0, :, 0] = np.log([1.0, 2.0, 1.0])
  maps[0, 1, 2, 0] = np.log(4.0)
  coords, conf = hourglass.soft_argmax_2d(maps, stride=4, return_confidence=True)
  # u = (0 * 1 + 1 * 2 + 2 * 1 + 2 * 4) / 8 = 1.5, v = 4 / 8 = 0.5.
  np.testing.assert_allclose(coords.numpy(), [[[1.5 * 4 + 1.5, 0.5 * 4 + 1.5]]], atol=1e-6)
  # Every cell is inside the 3x3 block around (row 0 or 1, col 1): all the mass.
  np.testing.assert_allclose(conf.numpy(), [[1.0]], atol=1e-6)


def test_joint_pooling_reads_each_joints_features_under_its_heatmap():
  # Shape = [B=1, H=2, W=2, J=2, D=2] logits: joint 0 all at cell (row 1, col 0) over both
  # depth bins; joint 1 split evenly between (0, 0, d=1) and (1, 1, d=0).
  volume = np.full((1, 2, 2, 2, 2), -1e9, np.float32)
  volume[0, 1, 0, 0, :] = 0.0
  volume[0, 0, 0, 1, 1] = 5.0
  volume[0, 1, 1, 1, 0] = 5.0
  features = np.arange(1 * 2 * 2 * 3, dtype=np.float32).reshape(1, 2, 2, 3)
  pooled = generator.joint_pooling(tf.constant(volume), tf.constant(features)).numpy()
  np.testing.assert_allclose(pooled[0, 0], features[0, 1, 0])          # [6, 7, 8]
  np.testing.assert_allclose(pooled[0, 1], (features[0, 0, 0] + features[0, 1, 1]) / 2)


def test_bone_features_are_child_parent_and_their_difference():
  j = skeleton.NUM_JOINTS
  volume = np.full((1, 1, 1, j, 1), 0.0, np.float32)          # one cell: every weight 1
  features = np.float32([[[[2.0, -1.0]]]])                    # Shape = [1, 1, 1, C=2]
  pose = np.zeros((1, j, 3), np.float32)
  pose[0, :, 2] = np.arange(j) * 100.0                         # z = 100 * joint index
  out = generator.BoneFeatures((64.0, 64.0, 1000.0))(volume, features, pose).numpy()
  assert out.shape == (1, skeleton.NUM_FBI_BONES, 2 + 2 + 3)
  for b, (parent, child) in enumerate(skeleton.FBI_BONES):
    np.testing.assert_allclose(out[0, b], [2.0, -1.0, 2.0, -1.0, 0.0, 0.0,
                                           (child - parent) * 0.1], rtol=1e-6)


def test_the_joint_fbi_head_lives_in_the_fbi_branch_on_the_shared_backbone():
  model = generator.build_generator(32, coarse_depth=2, fbi_head='joints',
                                    **TINY_GENERATOR)
  assert model(tf.zeros([2, 32, 32, 3]))['fbi'].shape == (2, 14, 3)
  names = [layer.name for layer in generator.branch_layers(model, 'fbi')]
  assert names == ['fbi_bones', 'fbi_hidden', 'fbi_bone_embedding', 'fbi_relu',
                   'fbi_logits', 'fbi']
  generator.set_branch_trainable(model, 'fbi', False)
  coarse = {id(v) for v in generator.branch_variables(model, 'coarse3d')}
  assert {id(v) for v in model.trainable_variables} == coarse
  with pytest.raises(ValueError, match="unknown fbi_head 'global'"):
    generator.build_generator(32, coarse_depth=2, fbi_head='global', **TINY_GENERATOR)


def test_bilinear_sample_reads_cells_and_between_them():
  # grid value = 10 y + x (one channel), a second channel 1.
  y, x = np.mgrid[0:3, 0:4].astype(np.float32)
  grid = np.stack([10 * y + x, np.ones_like(x)], axis=-1)[None]
  points = np.array([[[0, 0], [3, 2], [1.25, 0.5], [-2, 1], [9, 9]]], np.float32)
  out = generator.bilinear_sample(tf.constant(grid), tf.constant(points)).numpy()
  # Bilinear in a linear grid is the linear value; beyond the edge it is clamped.
  np.testing.assert_allclose(out[0, :, 0], [0.0, 23.0, 6.25, 10.0, 23.0], rtol=0, atol=1e-5)
  np.testing.assert_allclose(out[0, :, 1], 1.0)


def test_bone_samples_read_the_crop_and_features_along_each_bone():
  # Crop value = crop pixel x (red), y (green), 0 (blue); features = cell x, cell y.
  size, stride, points = 16, 4, 2
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  image = np.stack([xx, yy, np.zeros_like(xx)], axis=-1)[None]
  cy, cx = np.mgrid[0:size // stride, 0:size // stride].astype(np.float32)
  features = np.stack([cx, cy], axis=-1)[None]
  pose = np.zeros((1, skeleton.NUM_JOINTS, 3), np.float32)
  pose[0, :, 0] = np.arange(skeleton.NUM_JOINTS) % 8            # x of joint j
  pose[0, :, 1] = 5.5                                          # every joint at y = 5.5
  out = generator.BoneSamples(points, stride)(tf.constant(image), tf.constant(features),
                                              tf.constant(pose)).numpy()
  assert out.shape == (1, skeleton.NUM_FBI_BONES, points * (3 + 2))
  for b, (parent, child) in enumerate(skeleton.FBI_BONES):
    x0, x1 = parent % 8, child % 8
    for k, t in enumerate((0.25, 0.75)):
      x = x0 + t * (x1 - x0)
      # Colour at crop pixel (x, 5.5); feature at cell ((x - 1.5) / 4, (5.5 - 1.5) / 4).
      expected = [x, 5.5, 0.0, max(0.0, (x - 1.5) / 4), 1.0]
      np.testing.assert_allclose(out[0, b, 5 * k:5 * k + 5], expected, atol=1e-5,
                                 err_msg=f'bone {b}, point {k}')


def test_the_bones_fbi_head_reads_along_the_bones_in_the_fbi_branch():
  model = generator.build_generator(32, coarse_depth=2, fbi_head='bones', **TINY_GENERATOR)
  assert model(tf.zeros([2, 32, 32, 3]))['fbi'].shape == (2, 14, 3)
  names = [layer.name for layer in generator.branch_layers(model, 'fbi')]
  assert names == ['fbi_bones', 'fbi_bone_samples', 'fbi_bone_inputs', 'fbi_hidden',
                   'fbi_bone_embedding', 'fbi_relu', 'fbi_logits', 'fbi']
  generator.set_branch_trainable(model, 'fbi', False)
  coarse = {id(v) for v in generator.branch_variables(model, 'coarse3d')}
  assert {id(v) for v in model.trainable_variables} == coarse


def _random_estimator(stacks, channels, depth, joints=skeleton.NUM_JOINTS):
  """A 2D estimator whose weights and batch statistics are all random (nothing at zero
  or one), so that a copy that misses any of them shows."""
  net = hourglass.build_stacked_hourglass(16, num_joints=joints, num_stacks=stacks,
                                          channels=channels, depth=depth, name='hourglass2d')
  rng = np.random.default_rng(0)
  for v in net.weights:
    shape = tuple(v.shape)
    if 'moving_variance' in v.name:
      v.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
    else:
      v.assign(rng.normal(0.0, 0.3, shape).astype(np.float32))
  return net


@pytest.mark.parametrize('estimator_stacks', [1, 2])
def test_generator_from_estimator_gives_its_2d_and_depth_zero(estimator_stacks):
  """The coarse-3D branch started from a 2D estimator returns that estimator's
  soft-argmax 2D of the stack it copies (the last, or the first of two), depth 0."""
  tf.keras.utils.set_random_seed(1)
  estimator = _random_estimator(estimator_stacks, 8, 1)
  net = generator.build_generator(16, coarse_stacks=1, coarse_channels=8, coarse_depth=1,
                                  depth_bins=4, depth_range_mm=1000.0,
                                  fbi_channels=(4, 4))
  # Layers with weights: the stem's conv and bn, its residuals 2->4 (3 bn, 3 conv and a
  # skip conv), 4->4 (6) and 4->8 (7); the depth-1 hourglass's 4 residuals of 6; the
  # output residual (6); the lin conv and bn; and the volume conv.
  assert generator.init_from_estimator(net, estimator) == 2 + 7 + 6 + 7 + 24 + 6 + 2 + 1
  images = tf.constant(np.random.default_rng(2).uniform(0, 1, (3, 16, 16, 3)), tf.float32)
  heads = estimator(images, training=False)
  want = hourglass.soft_argmax_2d(heads[0] if estimator_stacks > 1 else heads)
  got = net(images, training=False)['coarse3d']
  np.testing.assert_allclose(got[..., :2].numpy(), want.numpy(), atol=1e-4)
  np.testing.assert_allclose(got[..., 2].numpy(), 0.0, atol=1e-3)


def test_generator_init_refuses_an_estimator_of_another_shape_and_changes_nothing():
  estimator = _random_estimator(1, 16, 1)
  net = generator.build_generator(16, coarse_stacks=1, coarse_channels=8, coarse_depth=1,
                                  depth_bins=4, fbi_channels=(4, 4))
  before = [v.numpy().copy() for v in net.weights]
  with pytest.raises(ValueError, match='coarse3d_stem_conv.*as many channels'):
    generator.init_from_estimator(net, estimator)
  for a, v in zip(before, net.weights):
    np.testing.assert_array_equal(a, v.numpy())
  two_stacks = generator.build_generator(16, coarse_stacks=2, coarse_channels=8,
                                         coarse_depth=1, depth_bins=4, fbi_channels=(4, 4))
  with pytest.raises(ValueError, match='coarse3d_s0_feat_back'):
    generator.init_from_estimator(two_stacks, _random_estimator(1, 8, 1))

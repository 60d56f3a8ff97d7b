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
INT8 extractor: NNCF post-training quantization of the extractor IR.

The calibration images are synthesized from scikit-image's sample photos (shipped in its
wheel, never downloaded): random perspective warps, crops, blur and lighting changes at the
network input size. They never come from an evaluation set: scikit-image's Middlebury
``motorcycle_*`` images are left out because ../shared/eval holds the same scene.
nncf is imported here only (the `convert` extra).
"""

import hashlib
import json
import logging
import os
from pathlib import Path
import shutil

import cv2
from lightglue_ros.export.convert import up_to_date
from lightglue_ros.runtime.extractors.superpoint import to_grey
from lightglue_ros.runtime.manifest import check_extractor_precision
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.manifest import MANIFEST_NAME
from lightglue_ros.runtime.manifest import sha256_file
import numpy as np

logger = logging.getLogger(__name__)

# Natural and textured photos of scikit-image's wheel; not the Middlebury motorcycle pair.
CALIBRATION_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'brick', 'grass',
                      'gravel', 'page', 'hubble_deep_field')
CALIBRATION_SIZE = (480, 640)  # (height, width) when the IR input is dynamic
CALIBRATION_COUNT = 48
CALIBRATION_SEED = 0
INT8_XML = 'extractor_int8.xml'


def _photo(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise ValueError("the INT8 calibration images come from scikit-image's sample "
                         'photos: pip install scikit-image (the test extra)') from None
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def calibration_images(height: int, width: int, count: int = CALIBRATION_COUNT,
                       seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """
    Return `count` synthetic (height, width, 3) float32 RGB images in [0, 1].

    Each is a random perspective view of one sample photo (zoom 0.6-1.6, rotation up to
    25 degrees, perspective), with a random gain, gamma, blur and sensor noise, so that the
    activation ranges cover camera frames of textured and flat scenes. Deterministic for a
    seed.
    """
    rng = np.random.default_rng(seed)
    photos = [_photo(name).astype(np.float32) / 255.0 for name in CALIBRATION_PHOTOS]
    images = []
    for i in range(count):
        src = photos[i % len(photos)]
        h, w = src.shape[:2]
        scale = rng.uniform(0.6, 1.6) * max(height / h, width / w)
        angle = np.deg2rad(rng.uniform(-25, 25))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
        centred = (corners - [width / 2, height / 2]) / scale
        jitter = rng.uniform(-0.12, 0.12, size=(4, 2)) * [width, height] / scale
        src_pts = (centred + jitter) @ rot.T + [w / 2, h / 2]
        mat = cv2.getPerspectiveTransform(src_pts.astype(np.float32),
                                          corners.astype(np.float32))
        view = cv2.warpPerspective(src, mat, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.3:
            view = cv2.GaussianBlur(view, (0, 0), rng.uniform(0.5, 1.5))
        view = np.clip(view * rng.uniform(0.6, 1.3), 0, 1) ** rng.uniform(0.7, 1.4)
        view = view + rng.normal(0, rng.uniform(0, 0.02), view.shape)
        images.append(np.clip(view, 0, 1).astype(np.float32))
    return images


def calibration_description(height: int, width: int, count: int = CALIBRATION_COUNT,
                            seed: int = CALIBRATION_SEED) -> dict:
    """Return the manifest's record of the calibration data."""
    return {
        'source': 'synthetic views of scikit-image sample photos (export/quantize.py)',
        'photos': list(CALIBRATION_PHOTOS),
        'count': count,
        'size': [height, width],
        'seed': seed,
    }


def to_network_input(image: np.ndarray, channels: int) -> np.ndarray:
    """Return a (1, C, H, W) float32 tensor of an RGB image (C=1: grey as SuperPoint sees it)."""
    if channels == 1:
        image = to_grey(image)[..., None]
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def quantize_extractor(xml_in: Path | str, xml_out: Path | str, channels: int,
                       height: int | None = None, width: int | None = None,
                       count: int = CALIBRATION_COUNT, seed: int = CALIBRATION_SEED) -> dict:
    """
    Quantize the extractor IR `xml_in` to INT8 with NNCF and save it as `xml_out`.

    :param channels: network input channels (3 RGB, 1 grey).
    :param height: calibration height (the IR's own for a static input; default 480).
    :param width: calibration width (default 640).
    :return: the manifest's `quantization` record (tool, preset, calibration, op counts).
    :raises ValueError: when nncf or scikit-image is missing.
    """
    try:
        import nncf
    except ImportError:
        raise ValueError('--extractor-precision int8 needs nncf (the convert extra): '
                         'pip install -c constraints.txt nncf') from None
    import openvino as ov

    height, width = height or CALIBRATION_SIZE[0], width or CALIBRATION_SIZE[1]
    model = ov.Core().read_model(str(xml_in))
    images = calibration_images(height, width, count, seed)
    dataset = nncf.Dataset(images, lambda image: to_network_input(image, channels))
    # MIXED: symmetric weights, asymmetric activations (ALIKED's SELU outputs reach -1.76).
    # Same speed as PERFORMANCE here (102.7 vs 101.8 ms), keypoints closer to f32 (93.8% vs
    # 92.8% repeated within 1 px); see docs/performance.md.
    quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.MIXED,
                              subset_size=len(images))
    ov.save_model(quantized, str(xml_out), compress_to_fp16=False)
    counts = quantized_op_counts(quantized)
    logger.info('extractor quantized to INT8: %s', counts)
    return {
        'tool': 'nncf',
        'nncf': nncf.__version__,
        'method': 'post-training quantization (nncf.quantize, preset mixed)',
        'calibration': calibration_description(height, width, count, seed),
        'ops': counts,
    }


def quantized_op_counts(model) -> dict:
    """Return the FakeQuantize and convolution counts of an ov.Model, and what FQs feed."""
    ops = model.get_ordered_ops()
    fake = [op for op in ops if op.get_type_name() == 'FakeQuantize']
    quantized_inputs = set()
    for op in fake:
        for target in op.output(0).get_target_inputs():
            quantized_inputs.add(target.get_node().get_type_name())
    kinds = ('Convolution', 'GroupConvolution', 'DeformableConvolution', 'MatMul')
    convs = [op for op in ops if op.get_type_name() in kinds]
    return {'fake_quantize': len(fake), 'convolutions': len(convs),
            'quantized_consumers': sorted(quantized_inputs)}


def _digest() -> str:
    """Hash this module: a change of the calibration or the NNCF call rebuilds the INT8 IR."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def int8_extractor_entry(output: Path, float_entry: dict, old_entry: dict | None = None) -> dict:
    """
    Quantize the f32 extractor IR of `float_entry` (in `output`) and return its INT8 entry.

    The entry lists `extractor_int8.xml/.bin` (what the runtime loads), a `quantization`
    record (tool, versions, calibration data, quantized op counts) and, as `float_ir`, the
    f32 entry it was made from, which stays in `output` so that a rerun or a switch back to
    f32 rebuilds nothing. An unchanged `old_entry` is reused.
    """
    output = Path(output)
    shape = float_entry['inputs'][0]['shape']  # (1, C, H, W), -1 where dynamic
    channels = int(shape[1])
    height, width = (int(shape[2]), int(shape[3])) if min(shape[2:4]) > 0 else (None, None)
    key = hashlib.sha256(json.dumps([float_entry['build_key'], float_entry['sha256'],
                                     CALIBRATION_COUNT, CALIBRATION_SEED, _digest()])
                         .encode()).hexdigest()
    if up_to_date(output, old_entry, key):
        logger.info('extractor INT8: up to date, skipping')
        return old_entry
    xml = output / INT8_XML
    record = quantize_extractor(output / float_entry['xml'], xml, channels, height, width)
    return {
        **{k: v for k, v in float_entry.items() if k not in ('onnx',)},
        'xml': xml.name,
        'bin': xml.with_suffix('.bin').name,
        'sha256': {'xml': sha256_file(xml), 'bin': sha256_file(xml.with_suffix('.bin'))},
        'build_key': key,
        'quantization': record,
        'float_ir': float_entry,
    }


def derive_model_set(source: Path | str, output: Path | str, extractor_precision: str) -> Path:
    """
    Write a copy of the model set `source` whose extractor runs at `extractor_precision`.

    Without torch: the IR files are copied and, for 'int8', the
    f32 extractor IR of `source` is quantized. `lightglue-ros convert --extractor-precision`
    does the same while converting from PyTorch.

    :return: the path of the written manifest.json.
    :raises ValueError: for an unknown precision or a source set that is not f32.
    """
    check_extractor_precision(extractor_precision)
    manifest = load_manifest(source)
    if manifest.get('extractor_precision', 'f32') != 'f32':
        raise ValueError(f'{source} already has a {manifest["extractor_precision"]} '
                         'extractor; derive from an f32 model set')
    source, output = Path(source), Path(output)
    output.mkdir(parents=True, exist_ok=True)
    old = {}
    if (output / MANIFEST_NAME).is_file():
        old = {e['stage']: e for e in json.loads((output / MANIFEST_NAME).read_text())['files']}
    names = [manifest['params']['file']] if manifest.get('params') else []
    for entry in manifest['files']:
        names += [entry['xml'], entry['bin']] + ([entry['onnx']] if 'onnx' in entry else [])
    for name in names:
        _copy(source / name, output / name)
    files = manifest['files']
    if extractor_precision == 'int8':
        at = [e['stage'] for e in files].index('extractor')
        files[at] = int8_extractor_entry(output, files[at], old.get('extractor'))
    manifest['extractor_precision'] = extractor_precision
    del manifest['model_dir']
    path = output / MANIFEST_NAME
    tmp = path.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(manifest, indent=2) + '\n')
    os.replace(tmp, path)
    return path


def _copy(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size and \
            sha256_file(dst) == sha256_file(src):
        return
    # A copy, not a hard link: a rebuild of the source set may rewrite its files in place.
    shutil.copyfile(src, dst)

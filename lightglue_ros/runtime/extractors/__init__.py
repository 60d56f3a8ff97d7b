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

"""Runtime feature extractors: OpenVINO IR + numpy and numba post-processing. No torch or ROS."""

import contextlib
import ctypes
import functools
import importlib
import logging
from pathlib import Path

from lightglue_ros.runtime.cpu import bf16_advice
from lightglue_ros.runtime.cpu import describe_cpu
from lightglue_ros.runtime.manifest import check_extractor_precision
from lightglue_ros.runtime.manifest import stage_entry
from lightglue_ros.runtime.manifest import stage_path
from lightglue_ros.runtime.ovcore import shared_core
import numpy as np
import openvino as ov

logger = logging.getLogger(__name__)
# What the runtime may ask of an extractor: the OpenVINO inference precision hint of the IR's
# float ops. An INT8 IR (convert --extractor-precision int8) keeps its quantized ops INT8
# under either hint.


@functools.lru_cache(maxsize=1)
def _openblas_thread_controls() -> tuple:
    """Return (get, set) thread-count functions of every OpenBLAS loaded here (Linux)."""
    try:
        maps = Path('/proc/self/maps').read_text()
    except OSError:
        return ()
    controls = []
    for path in sorted({line.split()[-1] for line in maps.splitlines()
                        if 'openblas' in line.lower() and '.so' in line}):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (('scipy_openblas', '64_'), ('openblas', '64_'), ('openblas', '')):
            get = getattr(lib, f'{prefix}_get_num_threads{suffix}', None)
            set_ = getattr(lib, f'{prefix}_set_num_threads{suffix}', None)
            if get is not None and set_ is not None:
                controls.append((get, set_))
                break
    return tuple(controls)


@contextlib.contextmanager
def single_thread_blas():
    """
    Run numpy's BLAS calls single-threaded inside the block (best effort; else a no-op).

    After a threaded call, OpenBLAS workers busy-wait for new work: beside OpenVINO on two
    cores they took a core from the next inference (measured: a pair 650 -> 545 ms, the
    matcher right after an extraction 230 -> 172 ms). The small matrix products of keypoint
    post-processing gain nothing from a second thread (extraction time unchanged).
    """
    controls = _openblas_thread_controls()
    previous = [get() for get, _ in controls]
    for _, set_ in controls:
        set_(1)
    try:
        yield
    finally:
        for (_, set_), count in zip(controls, previous):
            set_(count)


class Extractor:
    """
    Base class: compiles the extractor IR once per input resolution and caches it.

    Subclasses implement `extract(image)`; `self.conf` is the manifest's extractor section
    updated with the caller's overrides (e.g. ``max_keypoints``, ``detection_threshold``).
    `precision` (default: the model set's `extractor_precision`, f32 unless converted
    otherwise) is 'f32', 'bf16' (bf16 inference precision hint; keypoints move, see
    docs/performance.md) or 'int8' (only for a set converted with --extractor-precision
    int8; its float ops run f32, or bf16 when 'bf16' is asked of an INT8 set).
    """

    def __init__(self, manifest: dict, core: ov.Core | None = None, device: str = 'CPU',
                 config: dict | None = None, precision: str | None = None,
                 **overrides) -> None:
        self.manifest = manifest
        self.core = core or shared_core()
        self.device = device
        self.precision = resolve_precision(manifest, precision)
        hint = 'bf16' if self.precision == 'bf16' else 'f32'
        if hint == 'bf16':
            warn_without_bf16(self.core, device)
        self.compile_config = {'INFERENCE_PRECISION_HINT': hint,
                               'PERFORMANCE_HINT': 'LATENCY', **(config or {})}
        unknown = set(overrides) - set(manifest['extractor'])
        if unknown:
            raise ValueError(f'unknown extractor option(s) {sorted(unknown)}; known: '
                             f'{sorted(manifest["extractor"])}')
        self.conf = {**manifest['extractor'], **overrides}
        self.entry = stage_entry(manifest, 'extractor')
        self._model = None
        self._compiled = {}
        self._requests = {}
        self._closed = False
        params = manifest.get('params')
        self.params = {}
        if params:
            with np.load(Path(manifest['model_dir']) / params['file']) as data:
                self.params = {k: data[k] for k in data.files}

    def compiled(self, height: int, width: int) -> ov.CompiledModel:
        """Return the extractor compiled for a (height, width) input, compiling on first use."""
        key = (height, width)
        if self._closed:
            raise RuntimeError('this extractor was closed (Engine.close); create a new Engine')
        if key not in self._compiled:
            if self._model is None:
                self._model = self._read_model()
            model = self._model.clone()
            shape = [d.get_length() if d.is_static else -1
                     for d in model.inputs[0].get_partial_shape()]
            layout = self.conf.get('input', {}).get('layout', 'NCHW')
            hw = (layout.index('H'), layout.index('W'))
            # A static IR (convert --height/--width) takes only the size it was built for,
            # which may be padded beyond the camera size; subclasses word the user-facing error.
            fixed = (shape[hw[0]], shape[hw[1]])
            if min(fixed) > 0 and fixed != key:
                raise ValueError(f'this model set was converted for a {fixed[0]}x{fixed[1]} '
                                 f'network input, got {height}x{width}; re-run convert without '
                                 '--height/--width for any size')
            shape[hw[0]], shape[hw[1]] = height, width
            model.reshape({model.inputs[0]: ov.PartialShape(shape)})
            self._compiled[key] = self.core.compile_model(model, self.device,
                                                          self.compile_config)
            info = compiled_precision(self._compiled[key])
            logger.info('%s extractor compiled for %dx%d: inference precision %s, %d INT8 '
                        'ops', self.conf.get('name'), height, width,
                        info['inference_precision'], info['int8_ops'])
            asked = self.compile_config['INFERENCE_PRECISION_HINT']
            if info['inference_precision'] not in ('unknown', asked):
                logger.warning('the extractor was asked for %s but compiled with %s on %s',
                               asked, info['inference_precision'], self.device)
        return self._compiled[key]

    def precision_info(self, height: int, width: int) -> dict:
        """
        Return how the extractor really runs at (height, width), compiling on first use.

        :return: dict with `requested` (this extractor's precision), `model_set` (the
            manifest's extractor_precision), `inference_precision` (the compiled model's
            INFERENCE_PRECISION_HINT, e.g. 'f32', 'bf16'), `int8_ops` (ops OpenVINO runs in
            INT8: >0 only for a quantized IR) and `quantization` (the manifest's record).
        """
        entry = self.entry
        return {'requested': self.precision,
                'model_set': self.manifest.get('extractor_precision', 'f32'),
                **compiled_precision(self.compiled(height, width)),
                'quantization': entry.get('quantization')}

    def _read_model(self) -> ov.Model:
        """Read the extractor IR and check that it has the outputs this extractor reads."""
        path = stage_path(self.manifest, 'extractor')
        try:
            model = self.core.read_model(path)
        except RuntimeError as exc:  # a truncated or garbled IR file
            first = str(exc).strip().splitlines()[:1] or ['']
            raise ValueError(f'cannot load {path} ({first[0][:200]}); re-run convert') from None
        expected = self.conf.get('outputs') or []
        names = sorted(n for port in model.outputs for n in port.get_names())
        if len(model.inputs) != 1 or any(name not in names for name in expected):
            raise ValueError(f'{path} has outputs {names}, expected {expected} (an IR of '
                             f'another extractor?); re-run convert')
        return model

    def close(self) -> None:
        """Release the infer requests, then the compiled models (see `Engine.close`)."""
        self._closed = True
        self._requests.clear()
        self._compiled.clear()
        self._model = None

    def request(self, height: int, width: int) -> ov.InferRequest:
        """Return the reusable infer request for a (height, width) input (one per size)."""
        key = (height, width)
        if key not in self._requests:
            self._requests[key] = self.compiled(height, width).create_infer_request()
        return self._requests[key]

    def extract(self, image: np.ndarray) -> dict:
        """
        Detect and describe keypoints.

        :param image: (H, W, 3) float32 RGB in [0, 1], already at processing resolution.
        :return: dict with `keypoints` (N, 2) float32 (x, y) pixels with pixel centres at
            integer coordinates, `scores` (N,) float32, `descriptors` (N, D) float32.
        """
        raise NotImplementedError


def resolve_precision(manifest: dict, precision: str | None) -> str:
    """
    Return the extractor precision to run: `precision`, or the model set's when None.

    :raises ValueError: for an unknown precision, int8 asked of a float set, or f32 asked of
        an INT8 set (its IR is quantized: use an f32 set).
    """
    stored = manifest.get('extractor_precision', 'f32')
    precision = precision or stored
    check_extractor_precision(precision)
    if precision == 'int8' and stored != 'int8':
        raise ValueError(f'extractor precision int8 needs an INT8 model set, '
                         f'{manifest.get("model_dir")} is {stored}: re-run convert with '
                         '--extractor-precision int8')
    if precision == 'f32' and stored == 'int8':
        raise ValueError(f'{manifest.get("model_dir")} has an INT8-quantized extractor, it '
                         'cannot run f32: use a model set converted with '
                         '--extractor-precision f32')
    return precision


def warn_without_bf16(core: ov.Core, device: str) -> bool:
    """
    Log a warning when a CPU `device` has no native bf16; return True when it has.

    Without bf16 arithmetic (AVX-512 BF16 or AMX; `runtime.cpu`) a bf16 hint runs f32 or
    emulated: it gains nothing.
    """
    if not device.upper().startswith('CPU'):
        return True
    advice = bf16_advice(describe_cpu(core))
    if advice is None:
        return True
    logger.warning('extractor: %s', advice)
    return False


def compiled_precision(compiled: ov.CompiledModel) -> dict:
    """
    Return `inference_precision` and `int8_ops` of a compiled model (what really runs).

    `int8_ops` counts the convolutions and matrix products that the device runs with INT8
    or UINT8 as their runtime precision (the CPU plugin's runtime model).
    """
    try:
        hint = compiled.get_property('INFERENCE_PRECISION_HINT')
        ops = compiled.get_runtime_model().get_ordered_ops()
    except RuntimeError:  # a device (e.g. AUTO) without these properties
        return {'inference_precision': 'unknown', 'int8_ops': 0}
    count = 0
    for op in ops:
        info = op.get_rt_info()
        if 'layerType' not in info or 'runtimePrecision' not in info:
            continue
        if info['layerType'].astype(str) in ('Convolution', 'GroupConvolution', 'MatMul',
                                             'FullyConnected', 'Deconvolution') and \
                info['runtimePrecision'].astype(str).lower() in ('i8', 'u8'):
            count += 1
    return {'inference_precision': getattr(hint, 'get_type_name', lambda: str(hint))(),
            'int8_ops': count}


def create_extractor(manifest: dict, **kwargs) -> Extractor:
    """Instantiate the runtime extractor named in the manifest."""
    name = manifest['extractor']['name']
    module = importlib.import_module(f'lightglue_ros.runtime.extractors.{name}')
    return module.EXTRACTOR_CLASS(manifest, **kwargs)

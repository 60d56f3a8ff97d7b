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

"""Runtime feature extractors: OpenVINO IR + numpy post-processing. No torch, no ROS."""

import contextlib
import ctypes
import functools
import importlib
from pathlib import Path

from lightglue_ros.runtime.manifest import stage_entry
from lightglue_ros.runtime.manifest import stage_path
from lightglue_ros.runtime.ovcore import shared_core
import numpy as np
import openvino as ov


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
    """

    def __init__(self, manifest: dict, core: ov.Core | None = None, device: str = 'CPU',
                 config: dict | None = None, **overrides) -> None:
        self.manifest = manifest
        self.core = core or shared_core()
        self.device = device
        # Keep the extractor in f32: bf16 moves keypoints (top-k changes), see DESIGN.md.
        self.compile_config = {'INFERENCE_PRECISION_HINT': 'f32',
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
        return self._compiled[key]

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


def create_extractor(manifest: dict, **kwargs) -> Extractor:
    """Instantiate the runtime extractor named in the manifest."""
    name = manifest['extractor']['name']
    module = importlib.import_module(f'lightglue_ros.runtime.extractors.{name}')
    return module.EXTRACTOR_CLASS(manifest, **kwargs)

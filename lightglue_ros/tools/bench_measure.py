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
Measurements for `lightglue-ros bench`: FLOP counts, match comparisons and interleaved timing.

numpy + openvino only (no torch): the counting functions are unit-tested on their own.
"""

from collections import defaultdict
import time

import numpy as np
import openvino as ov

STAGES = ('input', 'layers', 'assign')


def layer_flops(m: int, n: int, dim: int = 256) -> float:
    """
    Return the FLOPs of one LightGlue layer with m and n points (multiply-add = 2).

    Self-attention per image: q, k, v (6 k d^2), output projection (2 k d^2), MLP on 2d
    (12 k d^2), scores and weighted sum (4 k^2 d). Cross-attention: projections (4 (m+n)
    d^2), output and MLP (14 (m+n) d^2), one similarity and two weighted sums (6 m n d).
    Token-confidence and matchability heads: 4 (m+n) d.
    """
    def self_block(k):
        return 20 * k * dim * dim + 4 * k * k * dim
    return float(self_block(m) + self_block(n) + 18 * (m + n) * dim * dim
                 + 6 * m * n * dim + 4 * (m + n) * dim)


def layer_counts(prune: np.ndarray, stop: int) -> list[int]:
    """Return how many points each run layer saw (`prune` counts layers a point was in)."""
    prune = np.asarray(prune)
    return [int(np.count_nonzero(prune > i)) for i in range(stop)]


def matcher_flops(result: dict, conf: dict) -> dict:
    """Return FLOPs per stage ('input', 'layers', 'assign') of one match from point counts."""
    dim, in_dim = conf['descriptor_dim'], conf['input_dim']
    m, n = len(result['prune0']), len(result['prune1'])
    counts = list(zip(layer_counts(result['prune0'], result['stop_layer']),
                      layer_counts(result['prune1'], result['stop_layer'])))
    counts = [(a, b) for a, b in counts if a and b]  # a layer with an empty side never ran
    flops = {'input': 0.0, 'layers': 0.0, 'assign': 0.0}
    if m and n:
        head = dim // conf['num_heads']
        proj = 2 * in_dim * dim if in_dim != dim else 0
        flops['input'] = float((m + n) * (proj + 2 * 2 * head // 2))
    flops['layers'] = sum(layer_flops(a, b, dim) for a, b in counts)
    if counts:
        a, b = counts[-1]
        flops['assign'] = float(2 * (a + b) * dim * dim + 2 * a * b * dim + 2 * (a + b) * dim)
    return flops


def pruned_fraction(result: dict) -> float:
    """Return the fraction of points dropped before the exit layer."""
    total = len(result['prune0']) + len(result['prune1'])
    if not total:
        return 0.0
    stop = result['stop_layer']
    kept = np.count_nonzero(np.asarray(result['prune0']) >= stop) + \
        np.count_nonzero(np.asarray(result['prune1']) >= stop)
    return float(1 - kept / total)


def same_matches(ours: dict, ref: dict) -> float:
    """Return the fraction of points (both images) whose match equals the reference's."""
    total = len(ref['matches0']) + len(ref['matches1'])
    if not total:
        return 1.0
    same = np.count_nonzero(np.asarray(ours['matches0']) == np.asarray(ref['matches0'])) + \
        np.count_nonzero(np.asarray(ours['matches1']) == np.asarray(ref['matches1']))
    return float(same / total)


def match_iou(ours: np.ndarray, ref: np.ndarray) -> float:
    """Return |A & B| / |A | B| of two (K, 2) match lists (1 when both are empty)."""
    a, b = set(map(tuple, np.asarray(ours).tolist())), set(map(tuple, np.asarray(ref).tolist()))
    return float(len(a & b) / len(a | b)) if a | b else 1.0


def pair_points(ours: np.ndarray, ref: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """
    Pair each of our keypoints with the nearest reference keypoint within `tol` pixels.

    Top-k orders near-equal scores differently per backend, so points are paired by position.

    :return: (index into `ref` or -1 per point of `ours`, largest distance of a pair).
    """
    if not len(ours) or not len(ref):
        return np.full(len(ours), -1, np.int64), 0.0
    dist = np.linalg.norm(ours[:, None].astype(np.float32) - ref[None].astype(np.float32),
                          axis=-1)
    nearest = dist.argmin(1)
    best = dist[np.arange(len(ours)), nearest]
    index = np.where(best <= tol, nearest, -1)
    # Keep a reference point's first claimant only: the pairing must be one to one.
    _, first = np.unique(index, return_index=True)
    unique = np.full(len(ours), -1, np.int64)
    unique[first] = index[first]
    unique[index < 0] = -1
    paired = unique >= 0
    return unique, float(best[paired].max()) if paired.any() else 0.0


def in_ref_space(result: dict, perm0: np.ndarray, perm1: np.ndarray, n0: int, n1: int) -> dict:
    """Express our matches0/matches1 over the reference keypoints (-2: point not paired)."""
    out = {}
    for side, perm, other, size in ((0, perm0, perm1, n0), (1, perm1, perm0, n1)):
        mapped = np.full(size, -2, np.int64)
        ours = np.asarray(result[f'matches{side}'])
        target = other[np.maximum(ours, 0)]
        # -1 stays unmatched; a match to a point without a reference twin cannot agree (-3).
        target = np.where(ours < 0, -1, np.where(target < 0, -3, target))
        valid = perm >= 0
        mapped[perm[valid]] = target[valid]
        out[f'matches{side}'] = mapped
    return out


# ---------------------------------------------------------------------------- timing

def median(values) -> float:
    """Return the median of a non-empty list, or nan."""
    return float(np.median(values)) if len(values) else float('nan')


# Pause before each timed call. Thread pools keep spinning after their work (measured here:
# ONNX Runtime ~30 ms, PyTorch's OpenMP ~5 ms, numpy's OpenBLAS >= 100 ms of a core); in one
# process that would bill the next method for the previous one's spinning.
SETTLE_S = 0.04


def interleaved(methods: dict, repeat: int, warmup: bool = True) -> dict:
    """
    Call every method `repeat` times, rotating the order each round (SETTLE_S apart).

    :param methods: name -> zero-argument callable returning a result dict (with optional
        'timings_ms').
    :return: name -> {'runs': [wall ms], 'stages': {stage: [ms]}, 'result': last result}.
    """
    names = list(methods)
    stats = {name: {'runs': [], 'stages': defaultdict(list), 'result': None} for name in names}
    if warmup:  # first calls compile shape-specific kernels
        for name in names:
            methods[name]()
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            result = methods[name]()
            stats[name]['runs'].append(1e3 * (time.perf_counter() - start))
            for stage, ms in (result.get('timings_ms') or {}).items():
                stats[name]['stages'][stage].append(ms)
            stats[name]['result'] = result
    return stats


class RateProbe:
    """
    One OpenVINO graph timed as a rate: `flops` per call, median of back-to-back calls.

    One call runs it `inner_runs` times back to back and reports the median: a single
    millisecond-long product right after another method's work measures thread wake-up and
    cold caches, not the arithmetic rate (seen: half the rate of a warm loop).
    """

    def __init__(self, core: ov.Core, device: str, precision: str, model: ov.Model,
                 inputs: list, flops: float, threads: int | None = None) -> None:
        config = {'INFERENCE_PRECISION_HINT': precision, 'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        self.request = core.compile_model(model, device, config).create_infer_request()
        self.inputs = dict(enumerate(inputs))
        self.flops = float(flops)

    def __call__(self, inner_runs: int = 8) -> dict:
        """Run `inner_runs` times; return {'timings_ms': {'total': median ms of one run}}."""
        times = []
        for _ in range(inner_runs):
            start = time.perf_counter()
            self._run()
            times.append(1e3 * (time.perf_counter() - start))
        return {'timings_ms': {'total': median(times)}}

    def _run(self) -> None:
        self.request.infer(self.inputs, share_inputs=True)


class MatmulPeak(RateProbe):
    """An OpenVINO MatMul (rows x inner) @ (inner x cols): the attainable GFLOP/s."""

    def __init__(self, core: ov.Core, device: str, precision: str, rows: int,
                 inner: int = 512, cols: int = 512, threads: int | None = None) -> None:
        from openvino import opset13 as ops
        rng = np.random.default_rng(0)
        param = ops.parameter([rows, inner], np.float32)
        weight = ops.constant(rng.standard_normal((inner, cols)).astype(np.float32))
        model = ov.Model([ops.matmul(param, weight, False, False)], [param])
        super().__init__(core, device, precision, model,
                         [rng.standard_normal((rows, inner)).astype(np.float32)],
                         2.0 * rows * inner * cols, threads)


class AttentionRate(RateProbe):
    """
    One multi-head attention alone, close to the form the matcher layers give OpenVINO.

    softmax(q k^T * scale) v on contiguous (1, heads, points, head_dim) inputs, which the CPU
    plugin fuses into one kernel (Snippets) as it does the layers' four attentions (there
    the inputs come through transposes OpenVINO folds in, and the folded cross-attention
    has its scale in the weights). Its FLOPs are the two products (4 points^2 head_dim per
    head); the softmax between them is work the count leaves out, so this rate estimates
    what the layers' attention can reach on this machine at points x points.
    """

    def __init__(self, core: ov.Core, device: str, precision: str, points: int,
                 heads: int = 4, head_dim: int = 64, threads: int | None = None) -> None:
        from openvino import opset13 as ops
        rng = np.random.default_rng(0)
        shape = [1, heads, points, head_dim]
        q, k, v = (ops.parameter(shape, np.float32) for _ in range(3))
        sim = ops.multiply(ops.matmul(q, k, False, True),
                           ops.constant(np.float32(head_dim ** -0.5)))
        out = ops.matmul(ops.softmax(sim, -1), v, False, False)
        model = ov.Model([out], [q, k, v])
        super().__init__(core, device, precision, model,
                         [rng.standard_normal(shape).astype(np.float32) for _ in range(3)],
                         4.0 * heads * points * points * head_dim, threads)


def layer_ceiling(m: int, n: int, attention_rate: float, peak: float, dim: int = 256,
                  folded: bool = False) -> float:
    """
    Return the share of `peak` one layer (m + n points) could reach at best with this attention.

    The best case: the layer's four attentions (self in each image, cross in each direction)
    run at `attention_rate`, every other executed FLOP (projections, MLPs, heads) at `peak`
    and nothing else costs time. The share counts `layer_flops` (the reference's ops), as the
    bench's layer rates do; executed differs: the fused cross-attention computes the shared
    similarity once per direction (attention 4 dim (m^2 + n^2 + 2 m n), 2 m n dim more than
    counted), and `folded` layers (convert's default, fold_layer) skip the two message
    projections (4 (m + n) dim^2 fewer). The two differences cancel at m = n = 4 dim (1024
    points for dim 256): there counted and executed FLOPs are equal; at fewer points the
    bench's layer rates (counted FLOPs over time) read above the executed rate of folded
    layers, at more points below. Rates in the same unit.
    """
    counted = layer_flops(m, n, dim)
    counted_attention = 4 * (m * m + n * n) * dim + 6 * m * n * dim
    executed_attention = 4 * (m * m + n * n + 2 * m * n) * dim
    other = counted - counted_attention - (4 * (m + n) * dim * dim if folded else 0)
    seconds = executed_attention / attention_rate + other / peak
    return float(counted / seconds / peak)

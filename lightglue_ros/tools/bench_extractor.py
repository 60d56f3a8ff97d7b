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
`lightglue-ros bench-extractor`: extractor speed and agreement per extractor precision.

In one run on the same images: the extractor of an f32 model set compiled f32 and bf16, and
(with --int8-models) the INT8 model set's, timed interleaved per repetition (medians; the
machine may be shared, so read the ratios to f32): the inference (the extraction's OpenVINO
calls, timed inside it: the CNN and, for ALIKED, the descriptor head's dense layers) and the
whole extraction (inference + detection and the head's sparse part in numpy / numba).
Agreement with f32: the fraction of f32 keypoints that the other precision also finds within
1 px, and the cosine of the descriptors of those keypoints.
"""

import logging
from pathlib import Path

import cv2
from lightglue_ros.runtime.cpu import describe_cpu
from lightglue_ros.runtime.engine import Engine
from lightglue_ros.runtime.manifest import EXTRACTOR_PRECISIONS
from lightglue_ros.runtime.ovcore import inference_clock
from lightglue_ros.tools.common import UsageError
import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODELS = Path('models') / 'aliked'


def add_bench_extractor_parser(subparsers) -> None:
    """Register `bench-extractor`."""
    p = subparsers.add_parser('bench-extractor', help='extractor speed and keypoint agreement '
                              'per extractor precision (f32, bf16, int8)')
    p.add_argument('--models', type=Path, default=DEFAULT_MODELS,
                   help=f'f32 model set (default {DEFAULT_MODELS})')
    p.add_argument('--int8-models', type=Path,
                   help='the same model set converted with --extractor-precision int8')
    p.add_argument('--extractor-precision', default='f32,bf16,int8',
                   help='comma-separated precisions to compare with f32 (default all)')
    p.add_argument('--height', type=int, default=480, help='image height (default 480)')
    p.add_argument('--width', type=int, default=640, help='image width (default 640)')
    p.add_argument('--max-keypoints', type=int, default=1024, help='keypoints (default 1024)')
    p.add_argument('--repeat', type=int, default=10, help='timed repetitions (default 10)')
    p.add_argument('--images', type=Path, nargs='*',
                   help='images for the agreement (default: rendered desk frames)')
    p.add_argument('--eval-root', type=Path,
                   help='use the images of every set in this folder for the agreement')
    p.add_argument('--per-set', type=int, default=2, help='images per set of --eval-root')
    p.set_defaults(func=run_bench_extractor)


def load_images(args) -> list[tuple[str, np.ndarray]]:
    """Return (name, float32 RGB image at height x width) pairs for the agreement."""
    from lightglue_ros.runtime.pipeline import read_image
    paths = list(args.images or [])
    if args.eval_root:
        for folder in sorted(p for p in args.eval_root.iterdir() if p.is_dir()):
            found = sorted(f for f in folder.rglob('*') if f.suffix.lower() in
                           ('.png', '.jpg', '.jpeg', '.ppm', '.pgm'))
            paths += found[:args.per_set]
    if paths:
        images = [(str(p), read_image(p)) for p in paths]
    else:
        from lightglue_ros.tools import samples
        frames = samples.handheld_sequence(4, size=(args.width, args.height)).frames
        images = [(f'desk frame {i}', f) for i, f in enumerate(frames)]
    return [(name, fit(image, args.height, args.width)) for name, image in images]


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (keeping the aspect) and centre-crop a uint8 RGB image to height x width."""
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width],
                                dtype=np.float32) / 255.0


def agreement(ref: dict, other: dict, radius: float = 1.0) -> tuple[float, float]:
    """
    Return (repeated fraction, mean descriptor cosine) of `other` against `ref` features.

    A ref keypoint is repeated when `other` has a keypoint within `radius` pixels; the cosine
    is that of the descriptors of the nearest such pairs (descriptors are L2-normalised).
    """
    k0, k1 = ref['keypoints'], other['keypoints']
    if len(k0) == 0 or len(k1) == 0:
        return 0.0, float('nan')
    d2 = ((k0[:, None, :] - k1[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    close = d2[np.arange(len(k0)), nearest] <= radius ** 2
    if not close.any():
        return 0.0, float('nan')
    cos = (ref['descriptors'][close] * other['descriptors'][nearest[close]]).sum(1)
    return float(close.mean()), float(cos.mean())


def bench(args) -> tuple[list[dict], int]:
    """Run the comparison; return one row per precision (f32 first) and the image count."""
    wanted = [p.strip() for p in args.extractor_precision.split(',') if p.strip()]
    unknown = sorted(set(wanted) - set(EXTRACTOR_PRECISIONS))
    if unknown:
        raise UsageError(f'unknown --extractor-precision {",".join(unknown)}; choose from '
                         f'{", ".join(EXTRACTOR_PRECISIONS)}')
    if 'int8' in wanted and args.int8_models is None:
        raise UsageError('int8 needs --int8-models DIR (built with `lightglue-ros convert '
                         '--extractor-precision int8`), or leave int8 out of '
                         '--extractor-precision')
    sets = {'f32': (args.models, 'f32'), 'bf16': (args.models, 'bf16'),
            'int8': (args.int8_models, 'int8')}
    order = ['f32'] + [p for p in wanted if p != 'f32']
    engines = {p: Engine(sets[p][0], extractor_precision=sets[p][1],
                         max_keypoints=args.max_keypoints) for p in order}
    images = load_images(args)
    h, w = args.height, args.width
    rows = {p: {'precision': p, 'inference': [], 'extract': [], 'repeat': [], 'cosine': [],
                'keypoints': [], **engines[p].extractor.precision_info(h, w)} for p in order}
    for p in order:  # warm-up
        engines[p].extract(images[0][1])
    for _ in range(max(1, args.repeat)):
        for p in order:
            image = images[len(rows[p]['extract']) % len(images)][1]
            with inference_clock() as clock:  # the extractor's OpenVINO calls
                rows[p]['extract'].append(engines[p].extract(image)['timing_ms'])
            rows[p]['inference'].append(clock.seconds * 1e3)
    for _, image in images:
        feats = {p: engines[p].extract(image) for p in order}
        for p in order:
            repeated, cosine = agreement(feats['f32'], feats[p])
            rows[p]['repeat'].append(repeated)
            rows[p]['cosine'].append(cosine)
            rows[p]['keypoints'].append(len(feats[p]['keypoints']))
    name = engines['f32'].name
    for engine in engines.values():
        engine.close()
    return [{**rows[p], 'name': name} for p in order], len(images)


def format_table(rows: list[dict], args, n_images: int) -> str:
    """Return the Markdown table of `bench` rows."""
    f32 = rows[0]
    inf0, ext0 = np.median(f32['inference']), np.median(f32['extract'])
    lines = [f'{f32["name"]} extractor of {args.models}, {args.height}x{args.width}, '
             f'max {args.max_keypoints} keypoints, {args.repeat} interleaved repetitions '
             f'(medians), agreement on {n_images} images; CPU {describe_cpu().label()}',
             '',
             '| extractor | compiled as | INT8 ops | inference ms (x f32) | extract ms (x f32) '
             '| keypoints | f32 keypoints repeated <= 1 px | descriptor cosine |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        inf, ext = np.median(row['inference']), np.median(row['extract'])
        lines.append(f'| {row["precision"]} | {row["inference_precision"]} | '
                     f'{row["int8_ops"]} | {inf:.1f} ({inf0 / inf:.2f}x) | '
                     f'{ext:.1f} ({ext0 / ext:.2f}x) | {np.mean(row["keypoints"]):.0f} | '
                     f'{np.mean(row["repeat"]) * 100:.1f}% (min '
                     f'{np.min(row["repeat"]) * 100:.1f}%) | {np.nanmean(row["cosine"]):.4f} |')
    return '\n'.join(lines)


def run_bench_extractor(args) -> int:
    """Run `lightglue-ros bench-extractor`."""
    rows, n_images = bench(args)
    print(format_table(rows, args, n_images))
    for row in rows:
        if row.get('quantization'):
            calib = row['quantization']['calibration']
            print(f'{row["precision"]}: {row["quantization"]["method"]}, nncf '
                  f'{row["quantization"]["nncf"]}; calibration: {calib["count"]} '
                  f'{calib["source"]}')
    return 0

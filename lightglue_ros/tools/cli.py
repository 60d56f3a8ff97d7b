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
`lightglue-ros` command line.

Subcommands: convert, match, demo, eval, bench, replay, record-images, stream-check,
stress.
"""

import argparse
import json
import logging
from pathlib import Path
import signal
import subprocess
import sys
import threading

from lightglue_ros.ros import bag
from lightglue_ros.ros import bag_record
from lightglue_ros.tools.common import add_engine_args
from lightglue_ros.tools.common import make_pipeline
from lightglue_ros.tools.common import UsageError
import numpy as np

logger = logging.getLogger('lightglue_ros')


def add_convert_parser(subparsers) -> None:
    """Register `convert`; its flags mirror `lightglue_ros.export.convert.convert`."""
    p = subparsers.add_parser('convert', help='build an OpenVINO model set from PyTorch weights')
    p.add_argument('--extractor', required=True,
                   help='aliked, disk or superpoint (superpoint needs your weight files)')
    p.add_argument('--output', required=True, type=Path, help='model set directory to write')
    p.add_argument('--extractor-weights', type=Path, help='extractor checkpoint (.pth)')
    p.add_argument('--matcher-weights', type=Path, help='LightGlue checkpoint (.pth)')
    p.add_argument('--max-keypoints', type=int, default=2048,
                   help='keypoint cap per image (default 2048)')
    p.add_argument('--height', type=int, help='fixed extractor input height (default dynamic)')
    p.add_argument('--width', type=int, help='fixed extractor input width (default dynamic)')
    p.add_argument('--precision', default='fp32', help='fp32 (default) or fp16 weights')
    p.add_argument('--extractor-precision', default='f32',
                   help='f32 (default), bf16 (bf16 inference hint) or int8 (NNCF '
                   'post-training quantization of the extractor IR)')
    p.add_argument('--via', default='direct',
                   help='direct (PyTorch -> IR, default, faster) or onnx (PyTorch -> ONNX -> IR)')
    p.add_argument('--static-pipeline', action='store_true',
                   help='also write the monolithic static model (batch 2, fixed size, top-K)')
    p.add_argument('--force', action='store_true', help='rebuild even if up to date')
    p.set_defaults(func=run_convert)


def run_convert(args) -> int:
    """Run `lightglue-ros convert`."""
    try:
        from lightglue_ros.export.convert import convert
    except ImportError as exc:
        raise UsageError(f'convert needs the convert extra ({exc.name} is missing): '
                         'pip install "lightglue_ros[convert]" or run `make setup`') from None
    path = convert(args.extractor, args.output, args.extractor_weights, args.matcher_weights,
                   max_keypoints=args.max_keypoints, height=args.height, width=args.width,
                   precision=args.precision, via=args.via,
                   static_pipeline=args.static_pipeline, force=args.force,
                   extractor_precision=args.extractor_precision)
    print(path)
    return 0


def add_match_parser(subparsers) -> None:
    """Register `match`."""
    p = subparsers.add_parser('match', help='match two images')
    p.add_argument('image0', type=Path)
    p.add_argument('image1', type=Path)
    add_engine_args(p)
    p.add_argument('--json', type=Path, help='write the result JSON here')
    p.add_argument('--viz', type=Path, help='write a match PNG here')
    p.add_argument('--repeat', type=int, default=1, help='runs for median timings')
    p.add_argument('--refine', action='store_true',
                   help='refine the image-1 position of each match to sub-pixel accuracy '
                   '(adds refined_keypoints1 and refined to the JSON)')
    p.set_defaults(func=run_match)


def result_json(result: dict) -> dict:
    """Convert a pipeline result to the JSON contract of `lightglue-ros match`."""
    return {
        'keypoints0': np.asarray(result['keypoints0']).round(3).tolist(),
        'keypoints1': np.asarray(result['keypoints1']).round(3).tolist(),
        'matches': np.asarray(result['matches']).tolist(),
        'scores': np.asarray(result['scores']).round(5).tolist(),
        'stop_layer': int(result['stop_layer']),
        **({'refined_keypoints1': np.asarray(result['refined_keypoints1']).round(3).tolist(),
            'refined': np.asarray(result['refined']).tolist()}
           if 'refined_keypoints1' in result else {}),
        'timings_ms': {k: round(float(v), 3) for k, v in result['timings_ms'].items()},
    }


def match_images(pipeline, image0, image1, repeat: int = 1) -> dict:
    """Match (repeatedly, without the feature cache) and keep median timings."""
    runs = [pipeline.match_pair(image0, image1) for _ in range(max(1, repeat))]
    result = runs[-1]
    result['timings_ms'] = {k: float(np.median([r['timings_ms'][k] for r in runs]))
                            for k in result['timings_ms']}
    return result


def write_outputs(result: dict, image0, image1, json_path: Path | None,
                  viz_path: Path | None) -> None:
    """Write the JSON and the PNG a match command asked for."""
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result_json(result)) + '\n')
    if viz_path:
        import cv2
        from lightglue_ros.runtime.viz import draw_matches
        viz_path.parent.mkdir(parents=True, exist_ok=True)
        canvas = draw_matches(image0, image1, result['keypoints0'], result['keypoints1'],
                              result['matches'], result['scores'])
        if not cv2.imwrite(str(viz_path), canvas):
            raise UsageError(f'could not write {viz_path}')


def summary(result: dict) -> str:
    """One line describing a match result."""
    t = result['timings_ms']
    return (f'{len(result["keypoints0"])} / {len(result["keypoints1"])} keypoints, '
            f'{len(result["matches"])} matches, stopped after layer {result["stop_layer"]}; '
            f'extract {t["extract0"]:.0f} + {t["extract1"]:.0f} ms, match {t["match"]:.0f} ms, '
            f'total {t["total"]:.0f} ms')


def run_match(args) -> int:
    """Run `lightglue-ros match`."""
    from lightglue_ros.runtime.pipeline import read_image
    image0, image1 = read_image(args.image0), read_image(args.image1)
    pipeline = make_pipeline(args)
    result = match_images(pipeline, image0, image1, args.repeat)
    write_outputs(result, image0, image1, args.json, args.viz)
    print(summary(result))
    return 0


def add_demo_parser(subparsers) -> None:
    """Register `demo`."""
    p = subparsers.add_parser('demo', help='convert the default model set if missing, then '
                              'match a sample photo with a known warp of it')
    add_engine_args(p)
    p.add_argument('--photo', default='astronaut', help='scikit-image sample photo')
    p.add_argument('--out', type=Path, default=Path('demo_out'), help='output directory')
    p.add_argument('--no-ros', dest='ros', action='store_false',
                   help='skip the ROS part (rosbag2 replay into the node)')
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    """Run `lightglue-ros demo`."""
    from lightglue_ros.tools import samples
    from lightglue_ros.runtime.manifest import MANIFEST_NAME
    if not (args.models / MANIFEST_NAME).is_file():
        logger.info('no model set in %s: converting the default (aliked + lightglue)',
                    args.models)
        # In a child process: torch stays out of the runtime process (seen here: torch,
        # OpenVINO and numpy's OpenBLAS in one process once left a BLAS call spinning).
        proc = subprocess.run([sys.executable, '-m', 'lightglue_ros.tools.cli', 'convert',
                               '--extractor', 'aliked', '--output', str(args.models)])
        if proc.returncode != 0:
            raise UsageError(f'converting the default model set into {args.models} failed '
                             '(see above)')
    image0, image1, mat = samples.warped_pair(args.photo)
    pipeline = make_pipeline(args)
    result = match_images(pipeline, image0, image1, repeat=3)
    write_outputs(result, image0, image1, args.out / 'matches.json', args.out / 'matches.png')
    m = result['matches']
    err = samples.reprojection_error(result['keypoints0'][m[:, 0]],
                                     result['keypoints1'][m[:, 1]], mat)
    print(f'demo: scikit-image "{args.photo}" vs a known homography warp of it')
    print(summary(result))
    if len(err):
        print(f'{(err < 3).mean() * 100:.1f}% of matches within 3 px of the true warp '
              f'(median error {np.median(err):.2f} px)')
    print(f'wrote {args.out / "matches.png"} and {args.out / "matches.json"}')
    if args.ros:
        return run_ros_demo(args)
    return 0


def run_ros_demo(args) -> int:
    """Replay a rendered camera motion into the node and compare its poses with the truth."""
    try:
        import rclpy  # noqa: F401
    except ImportError:
        print('ROS demo skipped: rclpy is not importable (source a ROS 2 install or '
              'run `make setup`)')
        return 0
    from lightglue_ros.tools import demo_ros
    print()
    result = demo_ros.run_replay_demo(args.models, args.out, params={
        'precision': args.precision, 'device': args.device})
    demo_ros.print_report(result)
    if result['returncode'] != 0 or len(result['pairs']) != result['expected_pairs']:
        print(result['output'], file=sys.stderr)
        raise UsageError('the ROS demo did not get every pair through the node (its output '
                         'is above)')
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the `lightglue-ros` argument parser."""
    parser = argparse.ArgumentParser(prog='lightglue-ros', description=__doc__)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    subparsers = parser.add_subparsers(dest='command', required=True)
    add_convert_parser(subparsers)
    add_match_parser(subparsers)
    add_demo_parser(subparsers)
    bag.add_replay_parser(subparsers)
    bag_record.add_record_parser(subparsers)
    from lightglue_ros.tools.evaluate import add_eval_parser
    add_eval_parser(subparsers)
    from lightglue_ros.tools.bench import add_bench_parser
    add_bench_parser(subparsers)
    from lightglue_ros.tools.bench_extractor import add_bench_extractor_parser
    add_bench_extractor_parser(subparsers)
    from lightglue_ros.tools.bench_node import add_bench_node_parser
    add_bench_node_parser(subparsers)
    from lightglue_ros.tools.stream_check import add_stream_check_parser
    add_stream_check_parser(subparsers)
    from lightglue_ros.tools.stress import add_stress_parser
    add_stress_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lightglue-ros` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='[ %(levelname)s ] %(message)s',
                        stream=sys.stderr)
    logger.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if threading.current_thread() is threading.main_thread():
        # Python leaves SIGINT ignored when the parent ignored it (a shell's background job,
        # nohup ... &): then Ctrl-C or a launcher's SIGINT would not stop e.g. a --loop
        # replay short of SIGKILL. Like `ros2 bag play` and the ROS nodes, which install their
        # own handler, take it back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except ValueError as exc:  # includes UsageError: user input, not a bug
        print(f'lightglue-ros {args.command}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())

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
What the `lightglue-ros` commands share: the usage error and the engine options.

Each command's parser lives with its command (cli, bench, evaluate, stream_check); they all
import this module, and none imports another command's module for these.
"""

from pathlib import Path

DEFAULT_MODELS = Path('models') / 'aliked'


class UsageError(ValueError):
    """A user mistake: printed as one line, exit code 2."""


def add_engine_args(p) -> None:
    """Add the options shared by commands that run the engine."""
    p.add_argument('--models', type=Path, default=DEFAULT_MODELS,
                   help=f'model set directory (default {DEFAULT_MODELS})')
    p.add_argument('--device', default='CPU', help='OpenVINO device (default CPU)')
    p.add_argument('--precision', default='f32', help='matcher precision f32 | bf16 | f16')
    p.add_argument('--max-keypoints', type=int, help='keypoint cap (default: model set)')
    p.add_argument('--resize', type=int, help='long side for extraction (default: model set, '
                   '0 = none)')
    p.add_argument('--depth-confidence', type=float, help='early exit (-1 disables)')
    p.add_argument('--width-confidence', type=float, help='point pruning (-1 disables)')
    p.add_argument('--threshold', type=float, help='match score threshold')
    p.add_argument('--cache-dir', type=Path, help='OpenVINO compiled-model cache directory')


def make_pipeline(args):
    """Build an Engine + Pipeline from parsed engine arguments."""
    from lightglue_ros.runtime.engine import Engine
    from lightglue_ros.runtime.pipeline import Pipeline
    overrides = {}
    if args.max_keypoints is not None:
        if args.max_keypoints < 1:
            raise UsageError(f'--max-keypoints must be positive, got {args.max_keypoints}')
        overrides['max_keypoints'] = args.max_keypoints
    engine = Engine(args.models, device=args.device, precision=args.precision,
                    cache_dir=args.cache_dir, depth_confidence=args.depth_confidence,
                    width_confidence=args.width_confidence, filter_threshold=args.threshold,
                    **overrides)
    return Pipeline(engine, resize=args.resize, refine=getattr(args, 'refine', False))

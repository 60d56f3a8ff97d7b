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
`lightglue-ros bench-node`: the node's throughput over DDS, and its cost over the engine.

The node runs the plain way in its own process (`python -m lightglue_ros.node --params-file
config/matcher.yaml`, overrides with `-p`), fed 640x480 rgb8 frames of a real photo panning
(one camera in temporal mode, two with equal stamps in stereo) from this process at rising
rates. For each rate: the pairs per second the node published `~/matches` for, the share of
frames it dropped (latest wins), and the latency from a frame's stamp (its publication time)
to the arrival of its matches, p50 / p99.

Then, with the node stopped, the engine alone (this process, same model set and settings,
`Pipeline`: extract + match, no ROS, no decoding, no pose) does the same pairs the node did at
the top rate, back to back, from the same frames. The node's overhead is its time per pair at
saturation (1 / sustained pairs/s) over the engine's; the node's own diagnostics split its
time into matching and the rest.
"""

import json
import logging
from pathlib import Path
import time

from lightglue_ros.tools import demo_ros
from lightglue_ros.tools.bench_report import format_table
from lightglue_ros.tools.common import UsageError
from lightglue_ros.tools.soak import node_args
from lightglue_ros.tools.soak import percentile
from lightglue_ros.tools.soak import SoakProbe
from lightglue_ros.tools.stream_check import shipped_file
import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_RATES = (2.0, 4.0, 8.0, 15.0)
SETTLE_S = 2.0  # after each rate: the queue drains, late matches arrive


def add_bench_node_parser(subparsers) -> None:
    """Register `bench-node`."""
    p = subparsers.add_parser(
        'bench-node', help="the node's throughput over DDS at rising rates, and its "
        'overhead over the engine alone on the same frames')
    p.add_argument('--models', type=Path, required=True, help='model set (convert output)')
    p.add_argument('--mode', nargs='+', default=['temporal'], choices=('temporal', 'stereo'),
                   help='node modes to measure (default temporal)')
    p.add_argument('--rates', nargs='+', type=float, default=list(DEFAULT_RATES),
                   help=f'publish rates in Hz (default {" ".join(map(str, DEFAULT_RATES))})')
    p.add_argument('--seconds', type=float, default=15.0, help='seconds per rate (default 15)')
    p.add_argument('--params-file', type=Path, default=None,
                   help="the node's parameters (default: the shipped config/matcher.yaml)")
    p.add_argument('-p', '--param', action='append', default=[], metavar='NAME:=VALUE',
                   help='a node parameter override, as after --ros-args -p (repeatable)')
    p.add_argument('--timeout', type=float, default=120.0, help='node start-up timeout (s)')
    p.add_argument('--json', type=Path, help='write every number here')
    p.set_defaults(func=run_bench_node)


class NodeProbe(SoakProbe):
    """The soak probe, keeping stamp0 of each pair too (which frames the node matched)."""

    def matches_callback(self, msg) -> None:
        """Keep (arrival ns, stamp1 ns, stamp0 ns) of a pair's matches."""
        from lightglue_ros.ros import messages
        arrival = time.time_ns()
        stamp0 = messages.decode_matches(msg)['stamp0_ns']
        with self._lock:
            self.matches.append((arrival, messages.stamp_to_ns(msg.header.stamp), stamp0))


def rate_row(rate: float, stamps: list, matches: list, span_s: float) -> dict:
    """Figures of one rate: frames sent, pairs published, drops, latency."""
    sent = set(stamps)
    mine = [(arrival, stamp1) for arrival, stamp1, _ in matches if stamp1 in sent]
    latency = [(arrival - stamp1) / 1e6 for arrival, stamp1 in mine]
    return {'rate_hz': rate, 'frames': len(stamps), 'pairs': len(mine),
            'pairs_per_s': round(len(mine) / span_s, 2) if span_s > 0 else None,
            'processed_share': round(len(mine) / max(len(stamps), 1), 3),
            'latency_p50_ms': percentile(latency, 50), 'latency_p99_ms': percentile(latency, 99)}


def _diagnostics_medians(values: list) -> dict:
    out = {}
    for key in ('processing_ms', 'match_ms', 'latency_ms'):
        numbers = [float(v[key]) for _, v in values if v.get(key) not in (None, '')]
        out[key] = round(float(np.median(numbers)), 1) if numbers else None
    return out


def run_node_rates(models: Path, mode: str, rates: list, seconds: float, params_file: Path,
                   overrides: list, timeout: float) -> dict:
    """Start the node, stream each rate for `seconds`; return rows, pairs and diagnostics."""
    cameras = 2 if mode == 'stereo' else 1
    ros_args = ['--params-file', str(params_file), *node_args(models, mode, cameras)]
    for override in overrides:
        ros_args += ['-p', override]
    node = demo_ros.start_node(ros_args)
    probe, rows, top = None, [], {}
    try:
        probe = NodeProbe(cameras)
        probe.wait_for_node(node, timeout)
        # Warm-up: the first frames at 640x480 compile for that size.
        stamps = probe.stream(5.0, timeout, until=lambda: len(probe.matches) >= 3)
        # Which frame each stamp carried (a pair's reference can be from an earlier rate).
        frame_of = {stamp: k % len(probe.frames[0]) for k, stamp in enumerate(stamps)}
        time.sleep(SETTLE_S)
        for rate in rates:
            start = time.monotonic()
            stamps = probe.stream(rate, seconds)
            frame_of.update((stamp, k % len(probe.frames[0])) for k, stamp in enumerate(stamps))
            span = time.monotonic() - start
            time.sleep(SETTLE_S)
            with probe._lock:
                matches = list(probe.matches)
            row = rate_row(rate, stamps, matches, span)
            row.update(_diagnostics_medians(probe.values_between(start + 1.0, start + span)))
            rows.append(row)
            logger.info('%s %.1f Hz: %s pairs/s', mode, rate, row['pairs_per_s'])
            sent = set(stamps)
            top = {'stamps': stamps, 'matches': [m for m in matches if m[1] in sent]}
        alive = node.poll() is None
    finally:
        if probe is not None:
            frames = probe.frames
            probe.close()
        output = demo_ros.stop_node(node)
    if not alive:
        raise UsageError(f'the node died during the benchmark:\n{output[-2000:]}')
    # The frames each pair of the top rate matched.
    pairs = [(frame_of.get(stamp0), frame_of[stamp1]) for _, stamp1, stamp0 in top['matches']]
    return {'mode': mode, 'rows': rows, 'pairs': pairs, 'frames': frames,
            'node_exit_code': node.returncode}


def engine_alone(models: Path, mode: str, frames: list, pairs: list, settings: dict) -> dict:
    """
    Time the engine on the node's pairs of the top rate (extract + match, back to back).

    Temporal: each pair extracts its new frame and matches it with its reference's features
    (extracted before and kept, as the node keeps them); stereo: both images of the pair.
    `pairs` holds frame indices into `frames` (per camera), a reference None when unknown.
    """
    from lightglue_ros.ros.ros_image import image_to_numpy
    from lightglue_ros.runtime.engine import Engine
    from lightglue_ros.runtime.pipeline import Pipeline
    engine = Engine(models, device=settings['device'], precision=settings['precision'],
                    threads=settings['threads'] or None)
    if settings['max_keypoints'] > 0:  # as the node applies its parameters
        engine.extractor.conf['max_keypoints'] = settings['max_keypoints']
    for name in ('depth_confidence', 'width_confidence'):
        setattr(engine.matcher, name, float(settings[name]))
    engine.matcher.filter_threshold = float(settings['score_threshold'])
    default = settings['resize'] == -1
    pipeline = Pipeline(engine, resize=None if default else settings['resize'],
                        upscale=not default)

    def match(feats0, feats1):
        return engine.match(feats0, feats0['image_size'], feats1, feats1['image_size'])
    images = [[image_to_numpy(msg) for msg in camera] for camera in frames]
    match(pipeline.features(images[0][0]), pipeline.features(images[-1][1]))  # warm
    times, kept = [], None
    for i, j in pairs:
        if mode == 'temporal':
            if i is None:
                continue
            if kept is None or kept[0] != i:  # the node kept this reference's features
                kept = (i, pipeline.features(images[0][i]))
            start = time.perf_counter()
            feats1 = pipeline.features(images[0][j])
            match(kept[1], feats1)
            times.append(time.perf_counter() - start)
        else:
            start = time.perf_counter()
            match(pipeline.features(images[0][j]), pipeline.features(images[1][j]))
            times.append(time.perf_counter() - start)
    engine.close()
    if not times:
        raise UsageError('the node published no pairs at the top rate: nothing to compare')
    ms = 1e3 * float(np.median(times))
    return {'pairs': len(times), 'ms_per_pair': round(ms, 1), 'pairs_per_s': round(1e3 / ms, 2)}


def node_settings(params_file: Path, overrides: list) -> dict:
    """Read what the engine alone must share with the node (the file, then overrides)."""
    import yaml
    from lightglue_ros.ros.params import PARAMETERS
    values = {param.name: param.default for param in PARAMETERS}
    data = yaml.safe_load(Path(params_file).read_text()) or {}
    for section in data.values():
        values.update((section or {}).get('ros__parameters', {}))
    for override in overrides:
        name, _, text = override.partition(':=')
        values[name] = yaml.safe_load(text)
    keys = ('device', 'precision', 'threads', 'max_keypoints', 'resize', 'depth_confidence',
            'width_confidence', 'score_threshold', 'temporal_reference')
    return {key: values[key] for key in keys}


RATE_COLUMNS = [(header, (lambda r, k=key: r[k]), fmt) for header, key, fmt in (
    ('rate Hz', 'rate_hz', '.1f'), ('frames', 'frames', 'd'), ('pairs', 'pairs', 'd'),
    ('pairs/s', 'pairs_per_s', '.2f'), ('share', 'processed_share', '.2f'),
    ('p50 ms', 'latency_p50_ms', '.0f'), ('p99 ms', 'latency_p99_ms', '.0f'),
    ('node ms', 'processing_ms', '.0f'), ('match ms', 'match_ms', '.0f'))]


def format_report(report: dict) -> str:
    """Return the tables of a bench-node report."""
    lines = [f'lightglue-ros bench-node: {report["cpu"]}; 640x480 rgb8; parameters '
             f'{report["params_file"]} {" ".join(report["overrides"])}'.rstrip()]
    for result in report['results']:
        lines.append(f'\n{result["mode"]}: node in its own process, fed over DDS')
        lines.append(format_table(result['rows'], RATE_COLUMNS))
        alone, sustained = result['engine'], result['sustained_pairs_per_s']
        lines.append(f'sustained: {sustained:.2f} pairs/s ({1e3 / sustained:.0f} ms per pair); '
                     f'engine alone on the same {alone["pairs"]} pairs: '
                     f'{alone["pairs_per_s"]:.2f} pairs/s ({alone["ms_per_pair"]:.0f} ms); '
                     f'node overhead {100 * result["overhead"]:+.1f}%')
    return '\n'.join(lines)


def run_bench_node(args) -> int:
    """Run `lightglue-ros bench-node`."""
    from lightglue_ros.runtime.cpu import describe_cpu
    params_file = args.params_file or shipped_file('matcher.yaml')
    if params_file is None or not Path(params_file).is_file():
        raise UsageError(f'no node parameters file {params_file or "config/matcher.yaml"}; '
                         'pass --params-file')
    if not (args.models / 'manifest.json').is_file():
        raise UsageError(f'{args.models}: no manifest.json; pass --models <convert output>')
    if any(rate <= 0 for rate in args.rates) or args.seconds <= 0:
        raise UsageError('--rates and --seconds must be positive')
    settings = node_settings(params_file, args.param)
    report = {'cpu': describe_cpu().label(), 'params_file': str(params_file),
              'overrides': args.param, 'settings': settings, 'results': []}
    for mode in args.mode:
        result = run_node_rates(args.models, mode, sorted(args.rates), args.seconds,
                                Path(params_file).resolve(), args.param, args.timeout)
        result['engine'] = engine_alone(args.models, mode, result.pop('frames'),
                                        result['pairs'], settings)
        result['sustained_pairs_per_s'] = max(r['pairs_per_s'] for r in result['rows'])
        result['overhead'] = result['engine']['pairs_per_s'] / result['sustained_pairs_per_s'] - 1
        report['results'].append(result)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for result in report['results']:
            result['pairs'] = [list(p) for p in result['pairs']]
        args.json.write_text(json.dumps(report, indent=1) + '\n')
        print(f'\nwrote {args.json}')
    return 0

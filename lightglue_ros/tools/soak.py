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
`lightglue-ros stress soak`: the node's capacity, then minutes of overload (its own process).

The node runs the plain way. The command measures how many pairs per second it processes
(640x480 rgb8), then publishes at `--overload` times that rate for `--minutes`, on one camera
(temporal) or two with equal stamps (stereo), and reports the node's RSS over time (growth
after warm-up), latency p50 / p99, drops by cause, parameter service response times under
load and the largest gap between /diagnostics messages (the executor never blocked).
"""

import json
import logging
from pathlib import Path
import threading
import time

from lightglue_ros.tools import demo_ros
from lightglue_ros.tools.common import UsageError
from lightglue_ros.tools.stress import camera_info
import numpy as np

logger = logging.getLogger(__name__)

SOAK_SIZE = (640, 480)  # (width, height) of the soak frames, rgb8
SOAK_IMAGES = ('/soak/left/image_raw', '/soak/right/image_raw')
SOAK_INFOS = ('/soak/left/camera_info', '/soak/right/camera_info')
DIAGNOSTICS_PERIOD = 0.5  # s, set on the node
PROBE_RATE = 30.0  # Hz while the capacity is measured: more than a CPU matches at 640x480
WARMUP_S = 60.0  # RSS growth counts after the first minute (half of shorter runs)
LATENCY_WINDOW_S = 60.0  # p99 per minute (per quarter of shorter runs)
PARAM_PERIOD = 2.0  # s between parameter service rounds
# Pass/fail thresholds of a soak.
PARAM_MAX_S = 1.0
DIAGNOSTICS_GAP_S = 3 * DIAGNOSTICS_PERIOD
RSS_GROWTH_MB = 50.0  # after warm-up, over the rest of the run
MIN_MINUTES_FOR_RSS = 1.0  # RSS growth is judged in runs of at least this long
# Latest-wins bounds the wait: a frame waits for the pair in progress, then its own; p99 of
# every window stays within this many pair times (1 / capacity), however long the run.
LATENCY_BOUND_PAIRS = 4.0


class SoakProbe(demo_ros.PrivateNode):
    """Pre-built image publishers, `~/matches` and /diagnostics arrivals, parameter clients."""

    def __init__(self, cameras: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from lightglue_ros.ros.ros_image import numpy_to_image
        from lightglue_ros.tools.stream_check import FrameSource
        from rcl_interfaces.srv import GetParameters
        from rcl_interfaces.srv import SetParameters
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import Image
        from sensor_msgs.msg import PointCloud2
        super().__init__('lightglue_soak')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pubs = [self.node.create_publisher(Image, t, qos)
                           for t in SOAK_IMAGES[:cameras]]
        self.info_pubs = [self.node.create_publisher(CameraInfo, t, qos)
                          for t in SOAK_INFOS[:cameras]]
        self.infos = [camera_info(*SOAK_SIZE) for _ in range(cameras)]
        if cameras == 2:  # the right camera 10 cm to the right (P[3] = -f * baseline)
            self.infos[1].p[3] = -0.1 * self.infos[1].p[0]
        # Messages built once (the pan repeats every 40 frames): the probe shares the CPU with
        # the node, so publishing should cost little more than the copy into DDS.
        source = FrameSource(*SOAK_SIZE)
        self.frames = [[numpy_to_image(np.ascontiguousarray(source(i + 2 * c)), 'rgb8')
                        for i in range(40)] for c in range(cameras)]
        self._lock = threading.Lock()
        self.matches = []  # (arrival ns, stamp1 ns), host clock
        self.diagnostics = []  # (arrival time.monotonic(), {key: value})
        self.node.create_subscription(PointCloud2, '/lightglue/matches', self.matches_callback,
                                      QoSProfile(depth=100,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics_callback, qos)
        self.get_client = self.node.create_client(GetParameters, '/lightglue/get_parameters')
        self.set_client = self.node.create_client(SetParameters, '/lightglue/set_parameters')
        self.start()

    def matches_callback(self, msg) -> None:
        """Keep the arrival time and stamp1 of a pair's matches."""
        from lightglue_ros.ros import messages
        arrival = time.time_ns()
        with self._lock:
            self.matches.append((arrival, messages.stamp_to_ns(msg.header.stamp)))

    def diagnostics_callback(self, msg) -> None:
        """Keep the arrival time and key/values of the matcher's status."""
        for status in msg.status:
            if status.name.startswith('lightglue:'):
                with self._lock:
                    self.diagnostics.append(
                        (time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def wait_for_node(self, process, timeout: float) -> None:
        """Wait until the node subscribes, publishes diagnostics and offers its services."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UsageError(f'the node exited with code {process.returncode}:\n'
                                 + demo_ros.stop_node(process))
            if (all(p.get_subscription_count() for p in self.image_pubs) and self.diagnostics
                    and self.get_client.service_is_ready()
                    and self.set_client.service_is_ready()):
                time.sleep(1.0)  # let the node's side match the publishers too
                return
            time.sleep(0.05)
        raise UsageError(f'the node did not subscribe to {", ".join(SOAK_IMAGES)} within '
                         f'{timeout:.0f} s')

    def send(self, index: int, stamp_ns: int) -> None:
        """Publish frame `index` of every camera with CameraInfo, all stamped `stamp_ns`."""
        from lightglue_ros.ros import messages
        stamp = messages.ns_to_stamp(stamp_ns)
        for frames, image_pub, info, info_pub in zip(self.frames, self.image_pubs, self.infos,
                                                     self.info_pubs):
            msg = frames[index % len(frames)]
            msg.header.stamp = info.header.stamp = stamp
            msg.header.frame_id = info.header.frame_id
            info_pub.publish(info)
            image_pub.publish(msg)

    def stream(self, rate: float, seconds: float, until=None) -> list[int]:
        """
        Publish at `rate` on a fixed schedule for `seconds` (or until `until()` is true).

        :return: the stamps sent (ns, host clock: the time each was published).
        """
        start, stamps = time.monotonic(), []
        for index in range(max(1, round(rate * seconds))):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if until is not None and until():
                break
            stamps.append(time.time_ns())
            self.send(index, stamps[-1])
        return stamps

    def call(self, client, request, timeout: float):
        """Call a service; return (seconds to the response, response), (None, None) if late."""
        start = time.monotonic()
        future = client.call_async(request)
        while not future.done():
            if time.monotonic() - start > timeout:
                client.remove_pending_request(future)
                return None, None
            time.sleep(0.001)
        return time.monotonic() - start, future.result()

    def parameter_round(self, timeout: float) -> tuple:
        """Get score_threshold, then set it to that value; return (get_s, set_s, set_ok)."""
        from rcl_interfaces.msg import Parameter
        from rcl_interfaces.srv import GetParameters
        from rcl_interfaces.srv import SetParameters
        get_s, got = self.call(self.get_client, GetParameters.Request(names=['score_threshold']),
                               timeout)
        if got is None or not got.values:
            return get_s, None, False
        request = SetParameters.Request(
            parameters=[Parameter(name='score_threshold', value=got.values[0])])
        set_s, result = self.call(self.set_client, request, timeout)
        return get_s, set_s, bool(result and all(r.successful for r in result.results))

    def values_between(self, start: float, end: float) -> list:
        """Return the (arrival, values) of diagnostics that arrived in [start, end]."""
        with self._lock:
            return [(t, v) for t, v in self.diagnostics if start <= t <= end]


class _Sampler(threading.Thread):
    """Call `sample()` every `period` s until `stop` is set, keeping (seconds, result)."""

    def __init__(self, sample, period: float) -> None:
        super().__init__(daemon=True)
        self.sample, self.period = sample, period
        self.stop, self.results = threading.Event(), []

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            tick = time.monotonic()
            self.results.append((round(tick - start, 2), self.sample()))
            self.stop.wait(max(0.0, self.period - (time.monotonic() - tick)))


def rss_mb(pid: int) -> float | None:
    """Return VmRSS of process `pid` in MB (None once it has gone)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def measure_capacity(probe: SoakProbe, seconds: float) -> dict:
    """
    Publish at `PROBE_RATE` for `seconds`; return pairs/s the node processed meanwhile.

    Counted between the first diagnostics after a third of the time and the last one before
    the end: the first frames at a new resolution include compiling for it (see the warm-up).
    """
    start = time.monotonic()
    sent = len(probe.stream(PROBE_RATE, seconds))
    end = time.monotonic()
    window = probe.values_between(start + seconds / 3, end)
    if len(window) < 2:
        raise UsageError(f'fewer than 2 diagnostics in {seconds:.0f} s of capacity probe')
    (t0, v0), (t1, v1) = window[0], window[-1]
    pairs = int(v1['pairs_processed']) - int(v0['pairs_processed'])
    return {'probe_rate_hz': PROBE_RATE, 'probe_s': seconds, 'probe_frames': sent,
            'pairs_per_s': round(pairs / (t1 - t0), 2)}


def percentile(values, q: float) -> float | None:
    """Return the q-th percentile rounded to 0.1 (None without values)."""
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def node_args(models: Path, mode: str, cameras: int) -> list:
    """ROS arguments of a measured node: model set, mode, diagnostics period, topics."""
    args = ['-p', f'model_dir:={models}', '-p', f'mode:={mode}',
            '-p', f'diagnostics_period:={DIAGNOSTICS_PERIOD}']
    for camera in range(cameras):
        args += ['-r', f'image{camera}:={SOAK_IMAGES[camera]}',
                 '-r', f'camera_info{camera}:={SOAK_INFOS[camera]}']
    return args


def latency_windows(pairs: list, first_stamp: int, duration: float) -> list[dict]:
    """
    Split (stamp ns, latency ms) pairs into windows of the overload; figures of each.

    Windows are a minute long, or a quarter of a shorter run: with latest-wins a backlog
    shows as p99 rising from window to window.
    """
    length = min(LATENCY_WINDOW_S, duration / 4) if duration > 0 else 1.0
    count = max(1, int(np.ceil(duration / length - 1e-9)))
    windows = []
    for k in range(count):
        values = [ms for stamp, ms in pairs
                  if k * length <= (stamp - first_stamp) / 1e9 < (k + 1) * length
                  or (k == count - 1 and (stamp - first_stamp) / 1e9 >= count * length)]
        windows.append({'start_s': round(k * length, 1), 'pairs': len(values),
                        'p50_ms': percentile(values, 50), 'p99_ms': percentile(values, 99)})
    return windows


def _soak_figures(probe: SoakProbe, stamps: list, span: tuple, rss: list,
                  params_log: list) -> dict:
    """Return latency, diagnostics gap, RSS and parameter figures of the overload."""
    sent = set(stamps)
    with probe._lock:
        pairs = [(stamp, (arrival - stamp) / 1e6) for arrival, stamp in probe.matches
                 if stamp in sent]
    latency = [ms for _, ms in pairs]
    arrivals = [t for t, _ in probe.values_between(*span)]
    gaps = np.diff(arrivals) if len(arrivals) > 1 else [float('inf')]
    samples = [(t, round(mb, 1)) for t, mb in rss if mb is not None]
    duration = span[1] - span[0]
    warmup_s = min(WARMUP_S, duration / 2)
    index = next((i for i, (t, _) in enumerate(samples) if t >= warmup_s), 0)
    # Medians of 3 samples: single samples jump by tens of MB (allocator, DDS buffers).
    warm = float(np.median([mb for _, mb in samples[max(0, index - 1):index + 2]]))
    end_mb = float(np.median([mb for _, mb in samples[-3:]]))
    growth = end_mb - warm
    minutes = max(samples[-2][0] - samples[index][0], 1.0) / 60.0 if len(samples) > 2 else 1.0
    get_s = [r[0] for _, r in params_log if r[0] is not None]
    set_s = [r[1] for _, r in params_log if r[1] is not None]
    answered = sum(r[0] is not None and r[1] is not None and r[2] for _, r in params_log)
    return {
        'latency_samples': len(latency), 'latency_p50_ms': percentile(latency, 50),
        'latency_p99_ms': percentile(latency, 99),
        'latency_windows': latency_windows(pairs, stamps[0] if stamps else 0, duration),
        'warmup_s': round(warmup_s, 1),
        'diagnostics_messages': len(arrivals),
        'diagnostics_max_gap_s': round(float(max(gaps)), 3),
        'rss_mb': samples, 'rss_start_mb': samples[0][1], 'rss_after_warmup_mb': warm,
        'rss_end_mb': end_mb, 'rss_max_mb': max(mb for _, mb in samples),
        'rss_growth_mb': round(growth, 1), 'rss_growth_mb_per_min': round(growth / minutes, 2),
        'param_rounds': len(params_log), 'param_rounds_answered': answered,
        'get_parameters_p50_ms': percentile([1e3 * s for s in get_s], 50),
        'get_parameters_max_ms': round(1e3 * max(get_s), 1) if get_s else None,
        'set_parameters_p50_ms': percentile([1e3 * s for s in set_s], 50),
        'set_parameters_max_ms': round(1e3 * max(set_s), 1) if set_s else None,
    }


def _soak_failures(report: dict) -> list[str]:
    """Return the pass/fail criteria a soak report misses."""
    failures = []
    if not report['node_alive_at_end'] or report['node_exit_code'] != 0:
        failures.append(f'node died or exited {report["node_exit_code"]} after SIGINT:\n'
                        + report['node_output_tail'])
    limit_ms = 1e3 * PARAM_MAX_S
    worst = max(report['get_parameters_max_ms'] or float('inf'),
                report['set_parameters_max_ms'] or float('inf'))
    if (report['param_rounds_answered'] < report['param_rounds'] or not report['param_rounds']
            or worst >= limit_ms):
        failures.append(f'parameter services: {report["param_rounds_answered"]} of '
                        f'{report["param_rounds"]} rounds answered and accepted, slowest '
                        f'{worst:.0f} ms (limit {limit_ms:.0f} ms)')
    if report['diagnostics_max_gap_s'] >= DIAGNOSTICS_GAP_S:
        failures.append(f'/diagnostics gap {report["diagnostics_max_gap_s"]} s (period '
                        f'{DIAGNOSTICS_PERIOD} s, limit {DIAGNOSTICS_GAP_S} s): the executor '
                        'was blocked')
    # Shorter runs cannot judge memory: the node's RSS builds up over its first ~40 s of
    # load (60-90 MB, OpenVINO's and the allocator's working set, measured; then flat).
    if report['minutes'] >= MIN_MINUTES_FOR_RSS and report['rss_growth_mb'] >= RSS_GROWTH_MB:
        failures.append(f'RSS grew {report["rss_growth_mb"]} MB after the first '
                        f'{report["warmup_s"]:g} s (limit {RSS_GROWTH_MB:g} MB)')
    if not report['latency_samples']:
        failures.append('no ~/matches of the overload frames arrived')
    bound = report['latency_bound_ms']
    over = [w for w in report['latency_windows'] if w['p99_ms'] is not None
            and w['p99_ms'] > bound]
    if over:
        failures.append(f'latency p99 {", ".join(str(w["p99_ms"]) for w in over)} ms in the '
                        f'window(s) from {", ".join(str(w["start_s"]) for w in over)} s, above '
                        f'{bound:.0f} ms ({LATENCY_BOUND_PAIRS:g} pair times at the measured '
                        'capacity): frames queue up')
    return failures


def run_soak(models: Path, overload: float = 2.0, minutes: float = 5.0,
             mode: str = 'temporal', timeout: float = 120.0) -> dict:
    """
    Measure the node's capacity, overload it for `minutes`; return the report.

    :return: dict with the settings, capacity, rate_hz, frames_sent (all cameras, warm-up and
        probe included), overload_frames, publish_s, the figures of `_soak_figures`, the final
        diagnostics and drops, node_alive_at_end, node_exit_code, passed and failures.
    """
    cameras = 2 if mode == 'stereo' else 1
    ros_args = ['-p', 'image_reliability:=reliable', *node_args(models, mode, cameras)]
    node = demo_ros.start_node(ros_args)
    probe, output, report = None, '', {}
    try:
        probe = SoakProbe(cameras)
        probe.wait_for_node(node, timeout)
        # Warm-up: the first frames at 640x480 compile the extractor for that size.
        warmup = len(probe.stream(5.0, timeout, until=lambda: bool(probe.matches)))
        capacity = measure_capacity(probe, 10.0 if minutes >= 1.0 else 5.0)
        rate = overload * capacity['pairs_per_s']
        if rate <= 0:
            raise UsageError(f'the node processed no pairs in the capacity probe: {capacity}')
        time.sleep(2.0)  # the probe's backlog drains
        logger.info('capacity %.2f pairs/s: publishing %.2f Hz for %g min', rate / overload,
                    rate, minutes)
        rss = _Sampler(lambda: rss_mb(node.pid), 1.0)
        params_log = _Sampler(lambda: probe.parameter_round(5.0), PARAM_PERIOD)
        start = time.monotonic()
        rss.start()
        params_log.start()
        stamps = probe.stream(rate, 60.0 * minutes)
        end = time.monotonic()
        for sampler in (params_log, rss):
            sampler.stop.set()
            sampler.join()
        figures = _soak_figures(probe, stamps, (start, end), rss.results, params_log.results)
        # The queue drains within a pair or two; then one more diagnostics period counts all.
        final = probe.values_between(end + 3.0, float('inf'))
        while not final and time.monotonic() < end + 15.0:
            time.sleep(0.1)
            final = probe.values_between(end + 3.0, float('inf'))
        final = final[0][1] if final else {}
        alive = node.poll() is None
    finally:
        if probe is not None:
            probe.close()
        output = demo_ros.stop_node(node)
    frames_sent = cameras * (warmup + capacity['probe_frames'] + len(stamps))
    drops = {key: int(final.get(key, 0)) for key in
             ('dropped_queue', 'dropped_sync', 'frames_lost_transport', 'frames_skipped')}
    report = {'mode': mode, 'overload': overload, 'minutes': minutes, **capacity,
              'capacity_pairs_per_s': capacity['pairs_per_s'], 'rate_hz': round(rate, 2),
              'frames_sent': frames_sent, 'overload_frames': cameras * len(stamps),
              'publish_s': round(end - start, 2), **figures,
              'frames_received': int(final.get('frames_received', -1)),
              'pairs_processed': int(final.get('pairs_processed', -1)),
              'queue_length': int(final.get('queue_length', -1)), **drops,
              'diagnostics': final, 'node_alive_at_end': alive,
              'node_exit_code': node.returncode, 'node_output_tail': output[-2000:],
              'latency_bound_ms': round(1e3 * LATENCY_BOUND_PAIRS / capacity['pairs_per_s'], 1),
              'limits': {'param_max_s': PARAM_MAX_S, 'diagnostics_gap_s': DIAGNOSTICS_GAP_S,
                         'rss_growth_mb': RSS_GROWTH_MB,
                         'latency_bound_pairs': LATENCY_BOUND_PAIRS}}
    # The JSON contract's names (a check outside the test suite reads them).
    get_max, set_max = report['get_parameters_max_ms'], report['set_parameters_max_ms']
    report.update(
        capacity_hz=report['capacity_pairs_per_s'], latency_ms_p50=report['latency_p50_ms'],
        latency_ms_p99=report['latency_p99_ms'],
        param_max_ms=None if get_max is None or set_max is None else max(get_max, set_max),
        dropped={'queue': drops['dropped_queue'], 'sync': drops['dropped_sync'],
                 'transport': drops['frames_lost_transport'],
                 'not_received': max(0, frames_sent - report['frames_received'])},
        crashes=int(not alive or node.returncode != 0))
    report['failures'] = _soak_failures(report)
    report['passed'] = not report['failures']
    return report


def format_soak_report(r: dict) -> str:
    """Return a table: one row per figure of a soak."""
    sent = max(r['frames_sent'], 1)
    rows = [('figure', 'value'),
            ('mode, overload', f'{r["mode"]}, {r["overload"]:g}x for {r["minutes"]:g} min'),
            ('capacity (pairs/s)', f'{r["capacity_pairs_per_s"]:.2f} (probe '
             f'{r["probe_rate_hz"]:g} Hz for {r["probe_s"]:g} s)'),
            ('overload rate (Hz)', f'{r["rate_hz"]:.2f}'),
            ('overload frames sent / s', f'{r["overload_frames"]} in {r["publish_s"]:.1f} s'),
            ('frames sent (all)', str(r['frames_sent'])),
            ('frames received', str(r['frames_received'])),
            ('not received (uncounted)', f'{r["frames_sent"] - r["frames_received"]} '
             '(sent - received: overwritten in the DDS reader history)'),
            ('pairs processed', str(r['pairs_processed']))]
    for key in ('dropped_queue', 'dropped_sync', 'frames_lost_transport', 'frames_skipped'):
        rows.append((key, f'{r[key]} ({100 * r[key] / sent:.1f}% of sent)'))
    rows += [('latency p50 / p99 (ms)', f'{r["latency_p50_ms"]} / {r["latency_p99_ms"]} '
              f'({r["latency_samples"]} pairs; bound {r["latency_bound_ms"]:.0f})'),
             ('latency p99 by window (ms)', ', '.join(
                 f'{w["start_s"]:g}s: {w["p99_ms"]}' for w in r['latency_windows'])),
             ('get_parameters p50 / max (ms)',
              f'{r["get_parameters_p50_ms"]} / {r["get_parameters_max_ms"]}'),
             ('set_parameters p50 / max (ms)',
              f'{r["set_parameters_p50_ms"]} / {r["set_parameters_max_ms"]}'),
             ('param rounds answered', f'{r["param_rounds_answered"]} / {r["param_rounds"]} '
              f'(limit {1e3 * PARAM_MAX_S:.0f} ms)'),
             ('diagnostics max gap (s)', f'{r["diagnostics_max_gap_s"]} over '
              f'{r["diagnostics_messages"]} msgs (limit {DIAGNOSTICS_GAP_S})'),
             ('RSS start / warm-up / end / max (MB)', f'{r["rss_start_mb"]} / '
              f'{r["rss_after_warmup_mb"]} / {r["rss_end_mb"]} / {r["rss_max_mb"]}'),
             (f'RSS growth after {r["warmup_s"]:g} s', f'{r["rss_growth_mb"]} MB (medians '
              f'of 3; limit {RSS_GROWTH_MB:g} MB, judged from {MIN_MINUTES_FOR_RSS:g} min), '
              f'{r["rss_growth_mb_per_min"]} MB/min'),
             ('node exit code (SIGINT)', str(r['node_exit_code'])),
             ('result', 'pass' if r['passed'] else 'FAIL')]
    width = max(len(name) for name, _ in rows)
    return '\n'.join(f'{name.ljust(width)}  {value}' for name, value in rows)


def run_soak_command(args) -> int:
    """Run `lightglue-ros stress soak`; exit code 1 when a criterion fails."""
    if not Path(args.models).is_dir():
        raise UsageError(f'no model set directory {args.models}; run `lightglue-ros convert`')
    if args.overload <= 0 or args.minutes <= 0:
        raise UsageError('--overload and --minutes must be positive')
    demo_ros.local_ros_environment()  # before this process's first participant
    report = run_soak(Path(args.models).resolve(), args.overload, args.minutes, args.mode)
    print(format_soak_report(report))
    print('RSS samples (s, MB): ' + ', '.join(f'{t:g}:{mb}' for t, mb in report['rss_mb']))
    for failure in report['failures']:
        print(f'FAIL: {failure}')
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + '\n')
    return 0 if report['passed'] else 1

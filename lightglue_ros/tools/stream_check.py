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
`lightglue-ros stream-check`: how many camera frames reach the node over DDS, as deployed.

The `lightglue` node runs as its own process (temporal mode, as `ros2 run` starts it). This
process publishes rgb8 frames of a real photo, shifted a little each frame so consecutive
frames match, with CameraInfo, at a fixed rate; then the node's /diagnostics are compared with
what was sent: frames received, frames lost in transport, frames dropped by the latest-wins
queue, pairs processed and the image QoS the node chose.

Fast DDS settings are part of what is measured: the package's profile
(FASTDDS_DEFAULT_PROFILES_FILE) is given to this process, to the node, to both or to neither
(`--profile`). Fast DDS reads the variable once per process, when the first participant is
created, so `run_stream_check` decides it before rclpy is initialised here.
"""

import json
import logging
import os
from pathlib import Path
import subprocess
import sys
import threading
import time

import cv2
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
from lightglue_ros.tools.common import UsageError
import numpy as np

logger = logging.getLogger(__name__)

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
PROFILES = ('none', 'publisher', 'node', 'both')
RELIABILITIES = ('reliable', 'best_effort')
DEFAULT_SIZES = ('640x480', '1280x720')
IMAGE_TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'  # the node's default: the image topic's sibling
# Horizontal shift between consecutive frames and its range (pixels): the view pans back and
# forth, so every pair of consecutive frames overlaps almost entirely.
SHIFT_STEP = 3
SHIFT_RANGE = 60
SETTLE_S = 3.0
COLUMNS = (('size', 'size'), ('publisher', 'publisher_reliability'), ('profile', 'profile'),
           ('sent', 'frames_sent'), ('frames_received', 'frames_received'),
           ('frames_lost_transport', 'frames_lost_transport'),
           ('dropped_queue', 'dropped_queue'), ('pairs_processed', 'pairs_processed'),
           ('image_reliability', 'image_reliability'), ('received/sent', 'received_pct'))
DIAGNOSTIC_KEYS = ('frames_received', 'frames_lost_transport', 'dropped_queue',
                   'pairs_processed', 'image_reliability', 'latency_ms', 'input_rate_hz')


def add_stream_check_parser(subparsers) -> None:
    """Register `stream-check`."""
    p = subparsers.add_parser(
        'stream-check', help='publish camera frames to the node (own process) and report how '
        'many it received, lost in transport and processed')
    p.add_argument('--models', type=Path, required=True, help='model set directory')
    p.add_argument('--size', action='append', dest='sizes', metavar='WxH',
                   help='frame size, width x height; repeat for several runs '
                   f'(default {" and ".join(DEFAULT_SIZES)})')
    p.add_argument('--rate', type=float, default=10.0, help='frames per second (default 10)')
    p.add_argument('--seconds', type=float, default=30.0,
                   help='publishing time per size (default 30)')
    p.add_argument('--publisher-reliability', choices=RELIABILITIES, default='reliable',
                   help='QoS reliability of the image publisher (default reliable)')
    p.add_argument('--profile', choices=PROFILES, default='none',
                   help='processes given the package Fast DDS profile via '
                   f'{PROFILE_VARIABLE}: none (default: Fast DDS defaults everywhere), '
                   'publisher (this process), node, both')
    p.add_argument('--params-file', type=Path, default=None,
                   help='node parameters YAML (default: the package config/matcher.yaml)')
    p.add_argument('--timeout', type=float, default=120.0,
                   help='seconds to wait for the node to start and subscribe (default 120)')
    p.add_argument('--json', type=Path, help='write every number here')
    p.set_defaults(func=run_stream_check)


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. 640x480) into (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise UsageError(f'--size must be WxH, e.g. 640x480, got {text!r}') from None
    if width < 32 or height < 32:
        raise UsageError(f'--size must be at least 32x32, got {text}')
    return width, height


def shipped_file(name: str) -> Path | None:
    """Return config/<name> of the package (source tree or installed share), if found."""
    candidates = [demo_ros.ROOT / 'config' / name]
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('lightglue_ros')) / 'config' / name)
    except (ImportError, LookupError, ValueError, OSError):  # no ament index here
        pass
    return next((path for path in candidates if path.is_file()), None)


def profile_environment(env: dict, use_profile: bool) -> dict:
    """Set or remove the Fast DDS profile variable in `env` (changed in place and returned)."""
    if use_profile:
        profile = demo_ros.fastdds_profile()
        if profile is None:
            raise UsageError('the package Fast DDS profile (config/fastdds_profile.xml) was '
                             'not found; use --profile none')
        env[PROFILE_VARIABLE] = str(profile)
    else:
        env.pop(PROFILE_VARIABLE, None)
    return env


class FrameSource:
    """Frames of a real photo panning back and forth by `SHIFT_STEP` pixels per frame."""

    def __init__(self, width: int, height: int, name: str = 'astronaut') -> None:
        image = samples.photo(name)
        scale = max((width + SHIFT_RANGE) / image.shape[1], height / image.shape[0])
        size = (int(np.ceil(image.shape[1] * scale)), int(np.ceil(image.shape[0] * scale)))
        self.canvas = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        self.width, self.height = width, height

    def __call__(self, index: int) -> np.ndarray:
        """Return frame `index` as (H, W, 3) uint8 RGB."""
        period = 2 * (SHIFT_RANGE // SHIFT_STEP)
        step = index % period
        x = SHIFT_STEP * (step if step <= period // 2 else period - step)
        return self.canvas[:self.height, x:x + self.width]


class StreamProbe(demo_ros.PrivateNode):
    """Image and CameraInfo publishers plus a /diagnostics reader, in a private rclpy context."""

    def __init__(self, reliability: str) -> None:
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import Image
        super().__init__('lightglue_stream_check')
        policy = (ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                  else ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.node.create_publisher(
            Image, IMAGE_TOPIC, QoSProfile(depth=10, reliability=policy))
        self.info_pub = self.node.create_publisher(
            CameraInfo, INFO_TOPIC, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._lock = threading.Lock()
        self.diagnostics = []  # (monotonic receive time, {key: value}) of the node's status
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics_callback,
                                      QoSProfile(depth=10,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        self.start()

    def diagnostics_callback(self, msg) -> None:
        """Keep the key/value pairs of the matcher's status."""
        for status in msg.status:
            if status.name.startswith('lightglue'):
                with self._lock:
                    self.diagnostics.append(
                        (time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def wait_for_node(self, process: subprocess.Popen, timeout: float) -> None:
        """
        Wait until the node subscribes to the images and publishes diagnostics.

        :raises UsageError: when the node exits or the timeout passes first.
        """
        deadline = time.monotonic() + timeout
        stable_since = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = demo_ros.stop_node(process)
                raise UsageError(f'the node exited with code {process.returncode} before '
                                 f'subscribing to {IMAGE_TOPIC}:\n{output}')
            if self.image_pub.get_subscription_count() and self.diagnostics:
                # Matched for a second: the node's side has discovered this publisher too.
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since > 1.0:
                    return
            else:
                stable_since = None
            time.sleep(0.05)
        raise UsageError(f'no subscription on {IMAGE_TOPIC} and diagnostics from the node '
                         f'within {timeout:.0f} s (see --timeout)')

    def stream(self, source: FrameSource, rate: float, seconds: float) -> int:
        """Publish frames (and CameraInfo) at `rate` for `seconds`; return the frames sent."""
        from lightglue_ros.ros.ros_image import numpy_to_image
        from sensor_msgs.msg import CameraInfo
        width, height = source.width, source.height
        focal = 0.9 * width
        info = CameraInfo(width=width, height=height, distortion_model='plumb_bob',
                          d=[0.0] * 5,
                          k=[focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[focal, 0.0, width / 2, 0.0, 0.0, focal, height / 2, 0.0,
                             0.0, 0.0, 1.0, 0.0])
        info.header.frame_id = 'camera'
        start, sent = time.monotonic(), 0
        for index in range(max(1, round(rate * seconds))):
            delay = start + index / rate - time.monotonic()  # a fixed schedule, no drift
            if delay > 0:
                time.sleep(delay)
            msg = numpy_to_image(source(index), 'rgb8')
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.header.frame_id = info.header.frame_id
            info.header.stamp = msg.header.stamp
            self.info_pub.publish(info)
            self.image_pub.publish(msg)
            sent += 1
        return sent

    def diagnostics_after(self, since: float, timeout: float) -> dict:
        """Return the first diagnostics values received after `since` (monotonic), or {}."""
        deadline = max(since, time.monotonic()) + timeout
        while time.monotonic() < deadline:
            with self._lock:
                later = [values for t, values in self.diagnostics if t >= since]
            if later:
                return later[0]
            time.sleep(0.05)
        return {}


def run_once(models: Path, size: tuple[int, int], rate: float, seconds: float,
             reliability: str, profile: str, params_file: Path, timeout: float) -> dict:
    """
    Start the node, stream to it, read its diagnostics and stop it.

    This process's Fast DDS profile must already be decided (`run_stream_check`).

    :param size: (width, height) of the frames.
    :return: one table row: the settings, frames_sent, the node's diagnostics values (None
        when the node does not report a key), received_pct, node_exit_code and node_output.
    """
    env = profile_environment(os.environ.copy(), profile in ('node', 'both'))
    source = FrameSource(*size)
    probe = StreamProbe(reliability)
    node = None
    try:
        # The camera first, as on a robot where the driver runs before the matcher starts.
        node = demo_ros.start_node(['--params-file', str(params_file),
                                    '-p', f'model_dir:={models}', '-p', 'mode:=temporal',
                                    '-r', f'image0:={IMAGE_TOPIC}'], env)
        probe.wait_for_node(node, timeout)
        sent = probe.stream(source, rate, seconds)
        # Wait for the queue to drain and for a diagnostics period that counts everything.
        values = probe.diagnostics_after(time.monotonic() + SETTLE_S, timeout=15.0)
    finally:
        probe.close()
        output = demo_ros.stop_node(node) if node is not None and node.returncode is None \
            else ''
    row = {'size': f'{size[0]}x{size[1]}', 'publisher_reliability': reliability,
           'profile': profile, 'rate_hz': rate, 'seconds': seconds, 'frames_sent': sent,
           **{key: _value(values.get(key)) for key in DIAGNOSTIC_KEYS},
           'node_exit_code': node.returncode, 'node_output': output}
    if not values:
        logger.warning('no diagnostics from the node after streaming; its output:\n%s', output)
    received = row['frames_received']
    row['received_pct'] = (round(100.0 * received / sent, 1)
                           if isinstance(received, (int, float)) else None)
    return row


def _value(text: str | None) -> int | float | str | None:
    """Return a diagnostics value (a string) as int or float when it is a number."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def format_table(rows: list[dict]) -> str:
    """Return the rows as a text table ('n/a' where the node did not report a value)."""
    def cell(row, key):
        value = row.get(key)
        if value is None:
            return 'n/a'
        return f'{value:.1f}%' if key == 'received_pct' else str(value)

    cells = [[title for title, _ in COLUMNS]] + [[cell(r, key) for _, key in COLUMNS]
                                                 for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return '\n'.join('  '.join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths)))
                     for line in cells)


def run_stream_check(args) -> int:
    """Run `lightglue-ros stream-check`; exit code 1 if the node did not exit cleanly."""
    sizes = [parse_size(text) for text in (args.sizes or DEFAULT_SIZES)]
    if args.rate <= 0 or args.seconds <= 0:
        raise UsageError(f'--rate and --seconds must be positive, got {args.rate} and '
                         f'{args.seconds}')
    params_file = args.params_file or shipped_file('matcher.yaml')
    if params_file is None or not Path(params_file).is_file():
        raise UsageError(f'no node parameters file {params_file or "config/matcher.yaml"}; '
                         'pass --params-file')
    if not Path(args.models).is_dir():
        raise UsageError(f'no model set directory {args.models}; run `lightglue-ros convert`')
    # Before the first participant of this process: Fast DDS reads the variable only then.
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile_environment(os.environ, args.profile in ('publisher', 'both'))
    logger.info('domain %s, discovery %s, %s in this process: %s',
                os.environ.get('ROS_DOMAIN_ID', '0'),
                os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'], PROFILE_VARIABLE,
                os.environ.get(PROFILE_VARIABLE, 'unset'))
    rows = []
    for size in sizes:
        logger.info('%dx%d rgb8, %s publisher, %g Hz for %g s', *size,
                    args.publisher_reliability, args.rate, args.seconds)
        rows.append(run_once(Path(args.models).resolve(), size, args.rate, args.seconds,
                             args.publisher_reliability, args.profile,
                             Path(params_file).resolve(), args.timeout))
    print(format_table(rows))
    failed = [row for row in rows if row['node_exit_code'] != 0]
    for row in failed:
        print(f'{row["size"]}: the node exited with code {row["node_exit_code"]} after '
              f'SIGINT; its output:\n{row["node_output"]}', file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'rows': rows, 'params_file': str(params_file),
                                         'models': str(args.models)}, indent=1) + '\n')
    return 1 if failed else 0

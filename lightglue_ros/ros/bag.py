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
rosbag2 `replay`: publish a bag onto ROS topics with its stamps and bytes (plus /clock).

Bags are read with the pure-Python `rosbags` library (mcap and sqlite3), so replay needs only
rclpy and the message packages, not rosbag2; rclpy is imported inside `replay` only. Writing
bags from images is `bag_record`.
"""

import importlib
import logging
from pathlib import Path
import threading
import time
from typing import Any, Iterable

from lightglue_ros.ros.context import private_context


logger = logging.getLogger(__name__)

QOS_CHOICES = ('reliable', 'best_effort')
CLOCK_TOPIC = '/clock'
# After every publisher has matched a subscriber, give the subscriber side time to match the
# publisher too (discovery is not symmetric): best-effort samples sent before that are lost.
SETTLE_S = 0.25


def rosbags_api():
    """Return the rosbags modules (rosbag2, typesys), or say how to install them."""
    try:
        import rosbags.rosbag2
        import rosbags.typesys
    except ImportError:
        raise ValueError('reading and writing bags needs the rosbags library: '
                         'pip install rosbags') from None
    return rosbags.rosbag2, rosbags.typesys


def typestore():
    """Return the rosbags type store of the newest ROS 2 distribution it knows."""
    _, typesys = rosbags_api()
    for name in ('ROS2_KILTED', 'ROS2_JAZZY', 'LATEST'):
        if hasattr(typesys.Stores, name):
            return typesys.get_typestore(getattr(typesys.Stores, name))
    raise ValueError('this rosbags version has no ROS 2 type store; pip install -U rosbags')


def sibling_topic(topic: str, name: str = 'camera_info') -> str:
    """Return the topic next to `topic` (`/cam/image_raw` -> `/cam/camera_info`)."""
    head, sep, _ = topic.rpartition('/')
    return f'{head}{sep}{name}' if sep else name


# -- replay ------------------------------------------------------------------------------------

def open_bag(bag: Path | str):
    """Open a rosbag2 (directory, .mcap or .db3 file) for reading; return the rosbags Reader."""
    rosbag2, _ = rosbags_api()
    path = Path(bag)
    if not path.exists():
        raise ValueError(f'no rosbag2 at {path}: pass a bag directory (with metadata.yaml) or '
                         'an .mcap / .db3 file')
    try:
        reader = rosbag2.Reader(path)
        reader.open()
    except Exception as exc:
        raise ValueError(f'cannot read rosbag2 {path}: {exc}; is it a complete mcap or sqlite3 '
                         'bag?') from None
    return reader


def parse_remaps(remap: dict | Iterable[str] | None) -> dict[str, str]:
    """Return {from: to} from a dict or from `from:=to` strings."""
    if not remap:
        return {}
    if isinstance(remap, dict):
        return dict(remap)
    pairs = {}
    for item in remap:
        src, sep, dst = item.partition(':=')
        if not sep or not src or not dst:
            raise ValueError(f'bad remap {item!r}; write it as /from/topic:=/to/topic')
        pairs[src] = dst
    return pairs


def message_class(typename: str):
    """Return the Python class of a ROS message type such as `sensor_msgs/msg/Image`."""
    parts = typename.split('/')
    package, name = parts[0], parts[-1]
    interface = parts[1] if len(parts) == 3 else 'msg'
    try:
        from rosidl_runtime_py.utilities import get_message
        return get_message(f'{package}/{interface}/{name}')
    except (ImportError, AttributeError, ValueError):
        pass
    try:
        return getattr(importlib.import_module(f'{package}.{interface}'), name)
    except (ImportError, AttributeError):
        dashed = package.replace('_', '-')
        raise ValueError(f'no Python class for message type {typename}: install the ROS '
                         f'package {package} (apt ros-$ROS_DISTRO-{dashed}, pip ros-{dashed}), '
                         'or leave its topic out with --topics') from None


def _select(reader, topics: Iterable[str] | None, remap: dict[str, str]) -> list:
    connections = list(reader.connections)
    if topics:
        available = sorted({c.topic for c in connections})
        missing = sorted(set(topics) - set(available))
        if missing:
            raise ValueError(f'topics {missing} are not in the bag; it has {available}')
        connections = [c for c in connections if c.topic in set(topics)]
    types = {}
    for c in connections:
        fmt = getattr(c.ext, 'serialization_format', 'cdr')
        if fmt != 'cdr':
            raise ValueError(f'topic {c.topic} is stored as {fmt!r}; replay publishes CDR only')
        name = remap.get(c.topic, c.topic)
        if types.setdefault(name, c.msgtype) != c.msgtype:
            raise ValueError(f'topic {name} would carry both {types[name]} and {c.msgtype}; '
                             'remap one of them elsewhere')
        message_class(c.msgtype)  # fail before starting ROS when a type is missing
    return connections


def _qos(connection, reliability: str, depth: int):
    from rclpy.qos import DurabilityPolicy
    from rclpy.qos import QoSProfile
    from rclpy.qos import ReliabilityPolicy
    offered = getattr(connection.ext, 'offered_qos_profiles', None) or []
    # Latched topics (tf_static, maps) were recorded transient-local; keep that for late joiners.
    latched = any(getattr(q.durability, 'name', '') == 'TRANSIENT_LOCAL' for q in offered)
    return QoSProfile(
        depth=depth,
        reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
                     else ReliabilityPolicy.RELIABLE),
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class _Player:
    """Publish a bag's messages on schedule; `stop` (an Event) ends it from another thread."""

    def __init__(self, node, reader, connections, remap, qos, depth, clock, clock_hz, stop):
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock
        self.node, self.reader, self.connections = node, reader, connections
        self.stop, self.clock_period = stop, 1.0 / clock_hz if clock_hz > 0 else None
        self.time_class, self.clock_class = Time, Clock
        self.publishers, self.by_connection, self.clock = {}, {}, None
        self.last_clock = -1
        try:
            for c in connections:
                name = remap.get(c.topic, c.topic)
                if name not in self.publishers:
                    self.publishers[name] = node.create_publisher(
                        message_class(c.msgtype), name, _qos(c, qos, depth))
                self.by_connection[c.id] = self.publishers[name]
            if clock:
                self.clock = node.create_publisher(Clock, remap.get(CLOCK_TOPIC, CLOCK_TOPIC),
                                                   10)
        except BaseException:
            self.destroy()  # the caller's node must not keep half of our publishers
            raise

    def running(self) -> bool:
        return not self.stop.is_set() and self.node.context.ok()

    def destroy(self, ack_timeout: float = 5.0) -> None:
        """Destroy the publishers, first waiting up to `ack_timeout` s in all for acks."""
        from rclpy.duration import Duration
        deadline = time.monotonic() + ack_timeout
        for pub in [*self.publishers.values(), self.clock]:
            if pub is not None:
                # Destroying a reliable writer at once drops what subscribers have not
                # acknowledged yet: the last messages of a replay were lost that way.
                left = max(0.0, deadline - time.monotonic())
                pub.wait_for_all_acked(Duration(seconds=left))
                self.node.destroy_publisher(pub)

    def wait_for_subscribers(self, timeout: float, qos: str) -> None:
        deadline = time.monotonic() + timeout
        waiting = dict(self.publishers)
        while waiting and time.monotonic() < deadline and self.running():
            waiting = {n: p for n, p in waiting.items() if p.get_subscription_count() == 0}
            if waiting:
                self.stop.wait(0.02)
        if waiting:
            hint = (' (reliable subscribers do not match --qos best_effort)'
                    if qos == 'best_effort' else '')
            logger.warning('no subscriber on %s after %.1f s%s; publishing anyway',
                           ', '.join(sorted(waiting)), timeout, hint)
        elif timeout > 0:
            self.stop.wait(SETTLE_S)

    def publish_clock(self, stamp_ns: int) -> None:
        if self.clock is not None and stamp_ns > self.last_clock:
            self.last_clock = stamp_ns
            msg = self.clock_class()
            msg.clock = self.time_class(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
            self.clock.publish(msg)

    def sleep_until(self, wall: float, bag0: int, wall0: float, rate: float, until: int):
        """Wait for wall time `wall`, publishing the advancing bag time on /clock meanwhile."""
        ticking = self.clock is not None and self.clock_period is not None
        while self.running():
            left = wall - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, self.clock_period) if ticking else left)
            now = bag0 + int((time.monotonic() - wall0) * rate * 1e9)
            if ticking and now < until:
                self.publish_clock(now)

    def play(self, rate: float) -> int:
        """Publish the selected messages once; return how many were published."""
        count, bag0, wall0 = 0, None, time.monotonic()
        self.last_clock = -1  # a new round starts the clock again from the bag's start
        for connection, stamp, data in self.reader.messages(connections=self.connections):
            if bag0 is None:
                bag0 = stamp
            self.sleep_until(wall0 + (stamp - bag0) / 1e9 / rate, bag0, wall0, rate, stamp)
            if not self.running():
                break
            self.publish_clock(stamp)
            self.by_connection[connection.id].publish(bytes(data))
            count += 1
        return count


def replay(bag: Path | str, rate: float = 1.0, loop: bool = False,
           remap: dict | Iterable[str] | None = None, topics: Iterable[str] | None = None,
           clock: bool = True, node: Any = None, qos: str = 'reliable', depth: int = 10,
           wait_subscribers: float = 3.0, start_delay: float = 0.0, clock_hz: float = 100.0,
           stop: threading.Event | None = None) -> int:
    """
    Publish a rosbag2's messages with their original bytes, paced by their receive times.

    /clock carries the bag time (each message's receive time just before it is published, and
    the advancing time at `clock_hz` in between), so nodes with use_sim_time follow the bag.
    With `loop` the bag restarts and /clock jumps back, as with `ros2 bag play --loop`.

    :param bag: bag directory, .mcap or .db3 file.
    :param rate: playback speed factor (2 = twice as fast).
    :param remap: {bag topic: published topic}, or `from:=to` strings.
    :param topics: bag topics to publish (default all).
    :param node: an rclpy node to publish from; default a private context and node, which
        take no arguments from the process's command line (pass a node for remaps or an
        enclave).
    :param qos: reliable or best_effort; history keep-last `depth`.
    :param wait_subscribers: seconds to wait for a subscriber on every topic before the first
        message, so the first frames are not lost (0: do not wait).
    :param start_delay: seconds to wait after that before playing.
    :param stop: set it (from another thread) to end the replay.
    :return: number of messages published (/clock not counted).
    :raises ValueError: bad arguments, unreadable bag, or a message type without Python class.
    """
    if not rate > 0:
        raise ValueError(f'rate must be > 0, got {rate}')
    if qos not in QOS_CHOICES:
        raise ValueError(f'unknown qos {qos!r}; choose one of {QOS_CHOICES}')
    if depth < 1:
        raise ValueError(f'qos depth must be >= 1, got {depth}')
    remap = parse_remaps(remap)
    stop = stop or threading.Event()
    reader = open_bag(bag)
    try:
        connections = _select(reader, topics, remap)
        if not connections:
            logger.warning('bag %s has no topics to publish', bag)
            return 0
        logger.info('replaying %s: %s at rate %g', bag,
                    ', '.join(sorted({remap.get(c.topic, c.topic) for c in connections})), rate)
        return _run(reader, connections, remap, node, qos, depth, clock, clock_hz, stop,
                    wait_subscribers, start_delay, rate, loop)
    finally:
        reader.close()


def _run(reader, connections, remap, node, qos, depth, clock, clock_hz, stop,
         wait_subscribers, start_delay, rate, loop) -> int:
    try:
        import rclpy
    except ImportError:
        raise ValueError('replay needs rclpy: source a ROS 2 install, or pip install '
                         '"ros-rclpy[fastrtps]" ros-sensor-msgs on CPython 3.11') from None
    context = None
    if node is None:
        # A private context: replay can run in a thread beside the caller's own ROS nodes.
        context = private_context()
    player, finished = None, False
    try:
        if context is not None:
            node = rclpy.create_node('lightglue_replay', context=context)
        player = _Player(node, reader, connections, remap, qos, depth, clock, clock_hz, stop)
        player.wait_for_subscribers(wait_subscribers, qos)
        if start_delay > 0:
            stop.wait(start_delay)
        count, rounds = 0, 0
        while player.running():
            count += player.play(rate)
            rounds += 1
            logger.debug('played the bag %d time(s), %d messages', rounds, count)
            if not loop:
                break
        finished = True
        return count
    finally:
        if player is not None:
            # A replay that ran to its end waits for its last messages to be acknowledged;
            # one stopped (Ctrl-C, `stop`) exits at once: a reader that does not keep up
            # held a Ctrl-C for up to 5 s per topic.
            player.destroy(ack_timeout=5.0 if finished and not stop.is_set() else 0.2)
        if context is not None:
            if node is not None:
                node.destroy_node()
            context.try_shutdown()


# -- command line ------------------------------------------------------------------------------

def add_replay_parser(subparsers) -> None:
    """Register `replay`; its flags mirror `replay`."""
    p = subparsers.add_parser('replay', help='publish a rosbag2 (mcap or sqlite3) with its '
                              'stamps and bytes, plus /clock')
    p.add_argument('bag', type=Path, help='bag directory, .mcap or .db3 file')
    p.add_argument('--rate', type=float, default=1.0, help='speed factor (default 1)')
    p.add_argument('--loop', action='store_true', help='play again from the start until Ctrl-C')
    p.add_argument('--remap', nargs='+', action='extend', default=[], metavar='FROM:=TO',
                   help='publish bag topic FROM as TO')
    p.add_argument('--topics', nargs='+', action='extend', metavar='TOPIC',
                   help='bag topics to publish (default all)')
    p.add_argument('--no-clock', dest='clock', action='store_false',
                   help='do not publish /clock')
    p.add_argument('--start-delay', type=float, default=0.0,
                   help='seconds to wait before the first message')
    p.add_argument('--qos', choices=QOS_CHOICES, default='reliable',
                   help='publisher reliability (default reliable)')
    p.add_argument('--depth', type=int, default=10, help='publisher history depth (default 10)')
    p.add_argument('--wait-subscribers', type=float, default=3.0, metavar='S',
                   help='wait up to S seconds for a subscriber on every topic (default 3)')
    p.set_defaults(func=run_replay)


def run_replay(args) -> int:
    """Run `lightglue-ros replay`; SIGINT (Ctrl-C, a launcher's shutdown) stops it with 0."""
    try:
        count = replay(args.bag, rate=args.rate, loop=args.loop, remap=args.remap,
                       topics=args.topics, clock=args.clock, qos=args.qos, depth=args.depth,
                       wait_subscribers=args.wait_subscribers, start_delay=args.start_delay)
    except KeyboardInterrupt:
        print('replay: stopped')
        return 0
    print(f'replay: published {count} messages from {args.bag}')
    return 0

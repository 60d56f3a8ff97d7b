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
The ROS half of `lightglue-ros demo`: rosbag2 replay -> `lightglue` node -> outputs vs truth.

A short camera motion through a scene of real photos (`samples.write_sample_bag`) is written
as a bag, the node runs as its own process (as `ros2 run` would start it), the bag is replayed
with /clock, and the published matches and poses are compared with the known motion.
"""

import functools
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import threading
import time

from lightglue_ros import geometry
from lightglue_ros.ros import messages
from lightglue_ros.ros.context import private_context
from lightglue_ros.ros.features import decode_features
from lightglue_ros.tools import samples
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the source tree (config/ beside lightglue_ros/)


def fastdds_profile() -> Path | None:
    """Return the package's Fast DDS profile (source tree or installed share), if found."""
    candidates = [ROOT / 'config' / 'fastdds_profile.xml']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('lightglue_ros')) / 'config'
                          / 'fastdds_profile.xml')
    except (ImportError, LookupError, ValueError, OSError):  # no ament index here
        pass
    return next((path for path in candidates if path.is_file()), None)


def local_ros_environment() -> None:
    """Keep DDS traffic on this host and use the large-frame profile unless told otherwise."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    profile = fastdds_profile()
    if profile is not None:
        os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(profile))


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Return the rotation matrix of a quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def pose_errors(pose: dict, t_0to1: np.ndarray) -> tuple[float, float]:
    """
    Compare a decoded `~/pose` with a true T_0to1 (X1 = R X0 + t).

    :return: (rotation error, translation direction error) in degrees; the direction error is
        signed (0-180): a published pose has passed the cheirality check, so a flipped
        translation counts as 180 degrees off.
    """
    rot_gt, t_gt = t_0to1[:3, :3], t_0to1[:3, 3]
    # The message holds camera 1 in camera 0: orientation R^T, position -R^T t.
    rot_est = quaternion_to_rotation(pose['quaternion']).T
    return (geometry.rotation_error_deg(rot_est, rot_gt),
            geometry.translation_error_deg(pose['position'], -rot_gt.T @ t_gt, signed=True))


class PrivateNode:
    """An rclpy node in a context of its own, spun by a thread of its own (`start`, `close`)."""

    def __init__(self, name: str) -> None:
        import rclpy
        self.context = private_context()
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = self.thread = None

    def start(self) -> None:
        """Spin the node on a thread (call after creating its publishers and subscriptions)."""
        from rclpy.executors import SingleThreadedExecutor
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin)
        self.thread.start()

    def close(self) -> None:
        """Stop spinning (joining the thread) and shut the context down."""
        if self.executor is not None:
            self.executor.shutdown()
            self.thread.join()
        self.node.destroy_node()
        self.context.try_shutdown()


class OutputRecorder(PrivateNode):
    """Collect a matcher's `matches`, `pose`, `features` and /diagnostics (private context)."""

    def __init__(self, prefix: str = '/lightglue') -> None:
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from sensor_msgs.msg import PointCloud
        from sensor_msgs.msg import PointCloud2
        super().__init__('lightglue_recorder')
        self.received = {'matches': [], 'pose': [], 'features': [], 'diagnostics': []}
        self.first_arrival = {}  # kind -> time.monotonic() of its first message
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.matches_topic = f'{prefix}/matches'
        for kind, kind_type, topic in (('matches', PointCloud2, self.matches_topic),
                                       ('pose', PoseWithCovarianceStamped, f'{prefix}/pose'),
                                       ('features', PointCloud, f'{prefix}/features'),
                                       ('diagnostics', DiagnosticArray, '/diagnostics')):
            self.node.create_subscription(kind_type, topic,
                                          functools.partial(self._receive, kind), qos)
        self.start()

    def _receive(self, kind: str, msg) -> None:
        self.first_arrival.setdefault(kind, time.monotonic())
        self.received[kind].append(msg)

    def wait_for_publisher(self, timeout: float) -> bool:
        """Wait until the matcher's `matches` publisher is discovered (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_publishers(self.matches_topic):
                time.sleep(0.25)  # let the other side match this subscription too
                return True
            time.sleep(0.05)
        return False

    def wait(self, kind: str, count: int, timeout: float) -> list:
        """Wait for `count` messages of `kind` ('matches', 'pose', 'features', 'diagnostics')."""
        deadline = time.monotonic() + timeout
        while len(self.received[kind]) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received[kind])

    def diagnostics(self, node_name: str = 'lightglue') -> dict:
        """Return the key/values (and `_message`) of the newest status of `node_name`."""
        for msg in reversed(self.received['diagnostics']):
            for status in msg.status:
                if status.name.startswith(f'{node_name}:'):
                    return {kv.key: kv.value for kv in status.values} | {
                        '_message': status.message}
        return {}


def start_node(ros_args: list[str], env: dict | None = None,
               module: str = 'lightglue_ros.node') -> subprocess.Popen:
    """
    Start `python -m lightglue_ros.node --ros-args ...`; `stop_node` returns its output.

    Its stdout and stderr go to a temporary file, not a pipe: a pipe nobody reads while the
    node runs fills up and blocks the node's logging (and so its executor).

    :param module: the node's module (`lightglue_ros.ros.lifecycle_node`: the managed node).
    """
    log = tempfile.TemporaryFile('w+')
    process = subprocess.Popen([sys.executable, '-m', module, '--ros-args', *ros_args],
                               stdout=log, stderr=subprocess.STDOUT, text=True,
                               env=os.environ.copy() if env is None else env)
    process.log = log
    return process


def stop_node(process: subprocess.Popen, timeout: float = 30.0) -> str:
    """Ctrl-C the node (if running), wait for it and return its output (killed if it hangs)."""
    note = ''
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            note = f'\n(killed: no exit {timeout:.0f} s after SIGINT)'
    process.log.seek(0)
    output = process.log.read() + note
    process.log.close()
    return output


def replay_through_node(bag: Path, image_topic: str, info_topic: str, models: Path,
                        expected_pairs: int, params: dict | None = None,
                        params_file: Path | None = None, timeout: float = 300.0) -> dict:
    """
    Run the node (temporal mode, own process) on a replayed bag and collect its outputs.

    :param params: node parameters to set (e.g. ``{'precision': 'bf16'}``).
    :param params_file: a node parameters YAML to start from (e.g. config/matcher.yaml).
    :return: dict with ``matches`` (decoded `~/matches`, in order), ``poses`` ({stamp1 ns:
        decoded `~/pose`}), ``features`` (decoded `~/features`, in order; with
        ``publish_features``), ``returncode`` and ``output`` of the node process.
    """
    import yaml
    from lightglue_ros.ros.bag import replay
    local_ros_environment()
    # One merged params file. (rcl applies -p and --params-file in command-line order, the
    # later winning; one file leaves nothing to the order.)
    conf = yaml.safe_load(Path(params_file).read_text()) if params_file else {}
    values = conf.setdefault('/**', {}).setdefault('ros__parameters', {})
    # Queues that hold the whole bag: every frame is processed even if the first
    # extraction (which compiles the extractor for the bag's resolution) takes seconds.
    frames = min(expected_pairs + 1, 100)
    values.update({'model_dir': str(models), 'mode': 'temporal',
                   'processing_queue_size': frames, 'image_qos_depth': frames,
                   'use_sim_time': True, **(params or {})})
    merged = Path(bag).parent / f'{Path(bag).name}.params.yaml'
    merged.write_text(yaml.safe_dump(conf))
    node = start_node(['-r', '__ns:=/lightglue_demo', '--params-file', str(merged),
                       '-r', f'image0:={image_topic}', '-r', f'camera_info0:={info_topic}'])
    recorder = None
    try:
        recorder = OutputRecorder('/lightglue_demo/lightglue')
        recorder.wait_for_publisher(timeout)
        # Writer history as deep as the bag: a reliable keep-last writer drops samples that
        # are not yet acknowledged when the node's DDS threads are starved (CPU-bound start).
        replay(bag, rate=1.0, wait_subscribers=timeout, depth=1000)
        matches = recorder.wait('matches', expected_pairs, timeout)
        poses = recorder.wait('pose', expected_pairs, 10.0)
        features = recorder.wait('features', expected_pairs, 10.0) \
            if values.get('publish_features') else []
    finally:
        if recorder is not None:
            recorder.close()
        output = stop_node(node)
    return {'matches': [messages.decode_matches(m) for m in matches],
            'poses': {messages.stamp_to_ns(p.header.stamp): messages.decode_pose(p)
                      for p in poses},
            'features': [decode_features(f) for f in features],
            'returncode': node.returncode, 'output': output}


def compare_with_truth(outputs: dict, stamps_ns: np.ndarray, poses: np.ndarray) -> list:
    """
    Pair the node's outputs with ground truth.

    :param stamps_ns: (N,) frame stamps.
    :param poses: (N, 4, 4) world-to-camera transforms of the frames.
    :return: one dict per matched pair: frames (i, j), stamps, matches, rot/t errors (None
        without a pose), position and covariance of the pose.
    """
    pairs = []
    for decoded in outputs['matches']:
        i = int(np.searchsorted(stamps_ns, decoded['stamp0_ns']))
        j = int(np.searchsorted(stamps_ns, decoded['stamp1_ns']))
        pair = {'frames': (i, j), 'stamp0_ns': decoded['stamp0_ns'],
                'stamp1_ns': decoded['stamp1_ns'], 'matches': len(decoded['scores']),
                'min_score': float(decoded['scores'].min(initial=1.0)),
                'rot_err_deg': None, 't_err_deg': None}
        pose = outputs['poses'].get(decoded['stamp1_ns'])
        if pose is not None:
            pair['rot_err_deg'], pair['t_err_deg'] = pose_errors(
                pose, samples.relative_pose(poses, i, j))
            pair['position'] = pose['position']
            pair['covariance'] = pose['covariance']
        pairs.append(pair)
    return pairs


def run_replay_demo(models: Path, out: Path, n_frames: int = 8, rate: float = 5.0,
                    params: dict | None = None, params_file: Path | None = None,
                    timeout: float = 300.0) -> dict:
    """
    Write the sample bag, run the node on its replay and compare the outputs with the truth.

    :return: dict with ``pairs`` (see `compare_with_truth`), ``expected_pairs``, ``truth``,
        and the node's ``returncode`` and ``output``.
    """
    truth = samples.write_sample_bag(Path(out) / 'sample_bag', n_frames=n_frames, rate=rate,
                                     topic='/lightglue_demo/image_raw', frame_id='demo_camera',
                                     overwrite=True)
    outputs = replay_through_node(truth['bag'], truth['topic'], truth['camera_info_topic'],
                                  models, n_frames - 1, params, params_file, timeout)
    return {'pairs': compare_with_truth(outputs, truth['stamps_ns'], truth['poses']),
            'expected_pairs': n_frames - 1, 'truth': truth,
            'returncode': outputs['returncode'], 'output': outputs['output']}


def print_report(result: dict) -> None:
    """Print one line per frame pair and the medians."""
    print(f'ROS demo: {result["expected_pairs"] + 1} rendered frames of a known camera motion '
          'replayed from a rosbag2 into the lightglue node (temporal mode)')
    print(f'{"pair":>6} {"matches":>8} {"rot err":>9} {"dir err":>9}')
    for pair in result['pairs']:
        i, j = pair['frames']
        rot = '-' if pair['rot_err_deg'] is None else f'{pair["rot_err_deg"]:.3f}°'
        dirr = '-' if pair['t_err_deg'] is None else f'{pair["t_err_deg"]:.2f}°'
        print(f'{i:>2}->{j:<3} {pair["matches"]:>8} {rot:>9} {dirr:>9}')
    rot = [p['rot_err_deg'] for p in result['pairs'] if p['rot_err_deg'] is not None]
    dirr = [p['t_err_deg'] for p in result['pairs'] if p['t_err_deg'] is not None]
    print(f'{len(result["pairs"])}/{result["expected_pairs"]} pairs matched, {len(rot)} poses; '
          + (f'median rotation error {np.median(rot):.3f}°, translation direction '
             f'{np.median(dirr):.2f}°' if rot else 'no pose'))

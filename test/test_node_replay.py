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
End to end over real DDS: the node as its own process, fed by a replayed rosbag2.

The bag is a rendered camera motion through a scene of real photos (known poses), so the
published matches and poses are checked against ground truth.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

from geometry_msgs.msg import PoseWithCovarianceStamped
from lightglue_ros import bag
from lightglue_ros import geometry
from lightglue_ros import messages
from lightglue_ros import samples
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
import yaml

ROOT = Path(__file__).resolve().parent.parent
N_FRAMES = 6


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Return the rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class Probe:
    """A node of its own context collecting the matcher's outputs."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('probe', context=self.context)
        self.received = {'matches': [], 'pose': []}
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(PointCloud2, '/lightglue/matches',
                                      self.received['matches'].append, qos)
        self.node.create_subscription(PoseWithCovarianceStamped, '/lightglue/pose',
                                      self.received['pose'].append, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin)
        self.thread.start()

    def wait(self, kind: str, count: int, timeout: float) -> list:
        """Wait for `count` messages of `kind` (or the timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.received[kind]) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received[kind])

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown()
        self.thread.join()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def sample_bag(tmp_path):
    return samples.write_sample_bag(tmp_path / 'motion', n_frames=N_FRAMES, rate=5.0)


def _params_file(tmp_path: Path, models: Path, **values) -> Path:
    """Write the shipped config/matcher.yaml with a few values changed."""
    conf = yaml.safe_load((ROOT / 'config' / 'matcher.yaml').read_text())
    conf['/**']['ros__parameters'].update(model_dir=str(models), **values)
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump(conf))
    return path


def test_temporal_replay_matches_and_poses(sample_bag, aliked_models, tmp_path):
    """Every frame pair of the replayed bag gives matches and a pose close to the truth."""
    # Reliable images: this test is about what the node does with every frame, not about
    # best-effort delivery on a loaded 2-core machine.
    params = _params_file(tmp_path, aliked_models, mode='temporal', processing_queue_size=50,
                          image_reliability='reliable')
    topic, info_topic = sample_bag['topic'], sample_bag['camera_info_topic']
    node = subprocess.Popen(
        [sys.executable, '-m', 'lightglue_ros.node', '--ros-args', '--params-file', str(params),
         '-p', 'use_sim_time:=true', '-r', f'image0:={topic}',
         '-r', f'camera_info0:={info_topic}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    probe = Probe()
    try:
        published = bag.replay(sample_bag['bag'], rate=1.0, wait_subscribers=120)
        assert published == 2 * N_FRAMES  # images + camera infos
        matches = probe.wait('matches', N_FRAMES - 1, timeout=180)
        poses = probe.wait('pose', N_FRAMES - 1, timeout=30)
    finally:
        probe.close()
        node.send_signal(signal.SIGINT)
        try:
            output, _ = node.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            output, _ = node.communicate()
    assert node.returncode == 0, output
    got = [messages.decode_matches(m)['stamp1_ns'] for m in matches]
    assert len(matches) == N_FRAMES - 1, (got, output)
    assert len(poses) == N_FRAMES - 1, output
    stamps = sample_bag['stamps_ns']
    truth = sample_bag['poses']
    rot_err, dir_err = [], []
    for k, (cloud, pose) in enumerate(zip(matches, poses)):
        out = messages.decode_matches(cloud)
        assert (out['stamp0_ns'], out['stamp1_ns']) == (stamps[k], stamps[k + 1])
        assert out['frame_id'] == sample_bag['frame_id']
        assert len(out['scores']) > 200
        decoded = messages.decode_pose(pose)
        assert decoded['stamp_ns'] == stamps[k + 1]
        t_0to1 = samples.relative_pose(truth, k, k + 1)
        rot_gt, t_gt = t_0to1[:3, :3], t_0to1[:3, 3]
        # The message holds camera 1 in camera 0: orientation R^T, position -R^T t.
        rot_est = quaternion_to_rotation(decoded['quaternion']).T
        rot_err.append(geometry.rotation_error_deg(rot_est, rot_gt))
        dir_err.append(geometry.translation_error_deg(decoded['position'], -rot_gt.T @ t_gt))
        assert abs(np.linalg.norm(decoded['position']) - 1) < 1e-6  # monocular: unit norm
        cov = decoded['covariance']
        np.testing.assert_allclose(cov, cov.T, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert np.median(rot_err) < 1.0, rot_err
    assert np.median(dir_err) < 5.0, dir_err

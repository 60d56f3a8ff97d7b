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

"""Camera inputs as drivers publish them: QoS, CameraInfo topics, rectified stereo, stamps."""

import time

from conftest import wait_until
import cv2
from lightglue_ros import messages
from lightglue_ros.geometry import rotation_error_deg
from lightglue_ros.ros import inputs
from lightglue_ros.tools import samples
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from test_node import _diag_values
from test_node import _image
from test_node import _info
from test_node import _quat_to_matrix
from test_node import Harness

BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def ros():
    harness = Harness()
    yield harness
    harness.close()


def test_camera_info_topic_follows_the_image_topic():
    """The CameraInfo topic is the image topic's sibling unless remapped (a remap wins)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        def resolved(*remaps):
            args = ['--ros-args'] + [a for r in remaps for a in ('-r', r)]
            node = rclpy.create_node('lightglue', context=context, cli_args=args)
            try:
                return inputs.camera_info_topic(node, 0, node.resolve_topic_name('image0'))
            finally:
                node.destroy_node()

        assert resolved('image0:=/cam/left/image_raw') == '/cam/left/camera_info'
        assert resolved('image0:=/cam/image_rect', 'camera_info0:=/calib/info') == '/calib/info'
        assert resolved() == '/camera_info0'
        assert resolved('__ns:=/robot') == '/robot/camera_info0'
        assert resolved('__ns:=/robot', 'image0:=front/image_raw') == '/robot/front/camera_info'
    finally:
        rclpy.shutdown(context=context)


def test_reliability_follows_the_publishers(ros, aliked_models):
    """auto: wait for a publisher, then its reliability; mixed publishers: best effort."""
    image0, image1, _ = samples.warped_pair('astronaut')
    node = ros.start(aliked_models, mode='temporal', pose_method='none')
    assert wait_until(lambda: 'no publisher on /image0' in _diag_values(ros)['_message'])
    assert node.inputs[0].subscription is None  # nothing to match yet
    best_effort = ros.probe.create_publisher(Image, '/image0', BEST_EFFORT)
    assert wait_until(lambda: node.inputs[0].in_use == 'best_effort')
    assert wait_until(lambda: best_effort.get_subscription_count() == 1)
    # A reliable publisher joins: mixed, so best effort stays (it matches both).
    reliable = ros.probe.create_publisher(Image, '/image0', RELIABLE)
    assert wait_until(lambda: reliable.get_subscription_count() == 1)
    time.sleep(0.5)
    assert node.inputs[0].in_use == 'best_effort'
    # The best-effort publisher leaves: only reliable ones, so the node subscribes reliable.
    ros.probe.destroy_publisher(best_effort)
    assert wait_until(lambda: node.inputs[0].in_use == 'reliable')
    assert wait_until(lambda: _diag_values(ros)['image_reliability'] == 'reliable (auto)')
    assert wait_until(lambda: reliable.get_subscription_count() == 1)
    for k, image in enumerate((image0, image1)):
        reliable.publish(_image(image, 'rgb8', 1.0 + k))
    out = messages.decode_matches(ros.wait('matches', 1)[0])
    assert len(out['scores']) > 300
    assert _diag_values(ros)['frames_lost_transport'] == '0'


@pytest.mark.parametrize('reliability', ['reliable', 'best_effort'])
def test_explicit_reliability_subscribes_at_once(ros, aliked_models, reliability):
    """An explicit image_reliability subscribes at start, with that QoS."""
    node = ros.start(aliked_models, mode='temporal', image_reliability=reliability)
    assert node.inputs[0].in_use == reliability
    profile = node.get_subscriptions_info_by_topic('/image0')[0].qos_profile
    assert profile.reliability == inputs.RELIABILITY[reliability]


def test_sensor_qos_camera_info_on_the_sibling_topic(ros, aliked_models):
    """A driver's best-effort CameraInfo next to its image topic gives poses."""
    seq = samples.camera_motion_sequence(2)
    h, w = seq.frames[0].shape[:2]
    ros.start(aliked_models, remaps=('image0:=/cam/image_raw',), mode='temporal')
    info = _info(w, h, float(seq.K[0, 0]), 'cam')
    ros.publish('/cam/camera_info', info, CameraInfo, BEST_EFFORT)
    for k in range(5):  # best effort: a few copies, as a driver sends one per frame
        ros.publishers['/cam/camera_info'].publish(info)
        time.sleep(0.05)
    for k, frame in enumerate(seq.frames):
        ros.publish('/cam/image_raw', _image(frame, 'rgb8', 1.0 + k, 'cam'))
    got = ros.wait('pose', 1)
    assert len(got) == 1
    pose = messages.decode_pose(got[0])
    t_0to1 = samples.relative_pose(seq.poses)
    assert rotation_error_deg(_quat_to_matrix(*pose['quaternion']).T, t_0to1[:3, :3]) < 0.2
    values = _diag_values(ros)
    assert values['camera_info'].endswith(' on /cam/camera_info')
    assert int(values['camera_info'].split()[0]) >= 1


def _stereo_infos(K_rect: np.ndarray, w: int, h: int, baseline: float) -> list:
    """Return a usual stereo calibration: raw K and D, rectifying R, rectified P."""
    infos = []
    for camera, (raw_f, raw_c, yaw) in enumerate(((512.0, (314.0, 247.0), 1.7),
                                                  (506.0, (326.0, 236.0), -1.2))):
        msg = CameraInfo()
        msg.header.frame_id = ('left', 'right')[camera]
        msg.width, msg.height = w, h
        msg.distortion_model = 'plumb_bob'
        msg.d = [-0.28, 0.074, 0.0006, -0.0004, 0.0]
        msg.k = [raw_f, 0.0, raw_c[0], 0.0, raw_f * 1.003, raw_c[1], 0.0, 0.0, 1.0]
        msg.r = cv2.Rodrigues(np.deg2rad([0.2, yaw, 0.1]))[0].ravel().tolist()
        P = np.c_[K_rect, np.zeros(3)]
        P[0, 3] = -K_rect[0, 0] * baseline * camera  # ROS: P[0,3] = -fx * B on the right
        msg.p = P.ravel().tolist()
        infos.append(msg)
    return infos


def test_stereo_on_rectified_images_uses_the_projection(ros, aliked_models):
    """Rectified stereo with raw K/D, non-identity R and rectified P: pose from P."""
    baseline = 0.12
    seq = samples.camera_motion_sequence(2, step=(baseline, 0.0, 0.0), yaw_deg=0.0)
    h, w = seq.frames[0].shape[:2]
    info0, info1 = _stereo_infos(seq.K, w, h, baseline)
    ros.start(aliked_models, mode='stereo', sync_queue_size=2, sync_slop=0.01)
    ros.publish('/camera_info0', info0, CameraInfo)
    ros.publish('/camera_info1', info1, CameraInfo)
    ros.publish('/image0', _image(seq.frames[0], 'rgb8', 1.0, 'left'))
    ros.publish('/image1', _image(seq.frames[1], 'rgb8', 1.0, 'right'))
    got = ros.wait('pose', 1)
    assert len(got) == 1
    pose = messages.decode_pose(got[0])
    # Rectified cameras share one orientation; camera 1 sits `baseline` along x.
    assert rotation_error_deg(_quat_to_matrix(*pose['quaternion']), np.eye(3)) < 0.1
    np.testing.assert_allclose(pose['position'], [baseline, 0, 0], atol=0.005)


def test_repeated_stamps_never_reuse_features(ros, aliked_models):
    """A driver stamping every frame 0: each new image is matched with its own features."""
    image0 = samples.photo('astronaut')
    h, w = image0.shape[:2]
    mat_a = samples.homography(image0.shape, angle_deg=8.0, scale=0.9)
    mat_b = samples.homography(image0.shape, angle_deg=-10.0, scale=0.95, shift=(-25, 10))
    image_a = cv2.warpPerspective(image0, mat_a, (w, h))
    image_b = cv2.warpPerspective(image0, mat_b, (w, h))
    ros.start(aliked_models, mode='temporal', pose_method='none')
    for image in (image0, image_a, image_b):
        ros.publish('/image0', _image(image, 'rgb8', 0.0))
    got = ros.wait('matches', 2)
    assert len(got) == 2
    # Frame pairs 0 -> a (warp mat_a) and a -> b (warp mat_b mat_a^-1).
    for msg, mat in zip(got, (mat_a, mat_b @ np.linalg.inv(mat_a))):
        out = messages.decode_matches(msg)
        assert out['stamp0_ns'] == out['stamp1_ns'] == 0
        err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], mat)
        assert len(err) > 300 and np.mean(err < 3) > 0.95
    assert 'stamps repeat' in _diag_values(ros)['_message']


def test_warnings_are_throttled(ros, aliked_models):
    """A warning is logged at most every WARN_PERIOD s per key; diagnostics see the latest."""
    from lightglue_ros.ros import worker as worker_module
    node = ros.start(aliked_models, mode='temporal')
    logged = []
    node.get_logger = lambda: type('Logger', (), {'warning': staticmethod(logged.append)})()
    for count in range(1, 6):  # a running count: logged once, recorded every time
        node.warn('transport', f'{count} frame(s) lost', on_change=False)
    node.warn('input', 'bad encoding')
    node.warn('input', 'bad encoding')  # same text again: not logged
    node.warn('input', 'bad step')  # another problem under the same key: logged at once
    assert logged == ['1 frame(s) lost', 'bad encoding', 'bad step']
    assert node.stats.warnings['transport'][1] == '5 frame(s) lost'
    node.stats.logged['transport'] = (time.monotonic() - worker_module.WARN_PERIOD, '')
    node.warn('transport', '6 frame(s) lost', on_change=False)
    assert logged[-1] == '6 frame(s) lost'


def test_sim_time_without_clock_still_subscribes(ros, aliked_models):
    """
    With use_sim_time and no /clock yet, the QoS check and diagnostics still run.

    A bag player waits for the node's subscription before it publishes /clock.
    """
    node = ros.start(aliked_models, mode='temporal', use_sim_time=True)
    publisher = ros.probe.create_publisher(Image, '/image0', RELIABLE)
    assert wait_until(lambda: publisher.get_subscription_count() == 1)
    assert node.inputs[0].in_use == 'reliable'
    assert ros.wait('diagnostics', 1, timeout=5)

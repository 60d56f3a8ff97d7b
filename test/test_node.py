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

"""The `lightglue` node in-process over real rclpy/Fast DDS: encodings, parameters, bad input."""

from pathlib import Path
import threading
import time

from conftest import wait_until
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from lightglue_ros import messages
from lightglue_ros.ros import params
from lightglue_ros.ros.ros_image import numpy_to_image
from lightglue_ros.tools import samples
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
import yaml

ROOT = Path(__file__).resolve().parent.parent
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def test_yaml_lists_every_parameter_with_its_default():
    """config/matcher.yaml and the parameter table agree, and every default is valid."""
    conf = yaml.safe_load((ROOT / 'config' / 'matcher.yaml').read_text())['/**']
    values = conf['ros__parameters']
    assert list(values) == [p.name for p in params.PARAMETERS]
    for param in params.PARAMETERS:
        assert values[param.name] == param.default, param.name
        assert type(values[param.name]) is type(param.default), param.name
        assert params.check(param.name, param.default) is None


def test_readme_documents_every_parameter():
    """The node reference page (docs/node.md) has one parameter table row per parameter."""
    readme = (ROOT / 'docs' / 'node.md').read_text()
    rows = {line.split('|')[1].strip(' `'): line.split('|')[2].strip(' `')
            for line in readme.splitlines() if line.startswith('| `')}
    for param in params.PARAMETERS:
        default = param.default
        text = str(default).lower() if isinstance(default, bool) else str(default)
        assert rows.get(param.name) in (text, '""' if text == '' else text), param.name


def test_parameter_checks():
    """Ranges, choices, types and the off value are enforced with a message naming the value."""
    assert params.check('depth_confidence', -1.0) is None
    assert params.check('depth_confidence', 0) is None  # ints are accepted for floats
    assert 'in [0, 1]' in params.check('depth_confidence', 1.5)
    assert 'one of' in params.check('mode', 'mono')
    assert 'must be a int' in params.check('max_keypoints', 'many')
    assert 'finite' in params.check('sync_slop', float('nan'))
    assert params.check('resize', -1) is None and params.check('resize', -2)


def _stamp(seconds: float):
    return messages.ns_to_stamp(int(round(seconds * 1e9)))


@pytest.mark.parametrize('count', [0, 1, 57])
def test_matches_message_round_trip(count):
    """Every field decodes; both stamps survive even with no match."""
    rng = np.random.default_rng(count)
    kpts0, kpts1 = rng.uniform(0, 640, (80, 2)), rng.uniform(0, 480, (90, 2))
    matches = np.stack([rng.permutation(80)[:count], rng.permutation(90)[:count]], -1)
    scores = rng.uniform(0.1, 1, count)
    msg = messages.encode_matches(kpts0, kpts1, matches, scores, _stamp(10.25), _stamp(10.5),
                                  'cam0_optical')
    out = messages.decode_matches(msg)
    assert out['stamp0_ns'] == 10_250_000_000 and out['stamp1_ns'] == 10_500_000_000
    assert out['frame_id'] == 'cam0_optical'
    np.testing.assert_allclose(out['keypoints0'], kpts0[matches[:, 0]], atol=1e-4)
    np.testing.assert_allclose(out['keypoints1'], kpts1[matches[:, 1]], atol=1e-4)
    np.testing.assert_allclose(out['scores'], scores, atol=1e-6)
    assert out['indices0'].tolist() == matches[:, 0].tolist()
    assert msg.is_dense == bool(count) and msg.width == max(count, 1)


def test_decode_rejects_other_clouds():
    """A cloud of another layout is refused with a message, not misread."""
    msg = messages.encode_matches(np.zeros((1, 2)), np.zeros((1, 2)), [[0, 0]], [0.5],
                                  _stamp(1), _stamp(2), 'c')
    msg.fields = msg.fields[:3]
    with pytest.raises(ValueError, match='not a lightglue_ros matches cloud'):
        messages.decode_matches(msg)


class Harness:
    """One rclpy context with an executor thread, a probe node and the node under test."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        # Single-threaded, as the node's own run() spins it. (Kilted's MultiThreadedExecutor
        # can stop on InvalidHandle when a callback in another thread destroys a subscription
        # that has QoS event handlers, as the auto-reliability check does: rclpy #1284.)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node('probe', context=self.context)
        self.executor.add_node(self.probe)
        self.received = {'matches': [], 'pose': [], 'diagnostics': []}
        self.lock = threading.Lock()
        for kind, msg_type, topic in (('matches', PointCloud2, '/lightglue/matches'),
                                      ('pose', PoseWithCovarianceStamped, '/lightglue/pose'),
                                      ('diagnostics', DiagnosticArray, '/diagnostics')):
            self.probe.create_subscription(msg_type, topic, self._collector(kind), RELIABLE)
        self.publishers = {}
        self.node = None
        self.thread = threading.Thread(target=self.executor.spin)
        self.thread.start()

    def _collector(self, kind: str):
        def callback(msg):
            with self.lock:
                self.received[kind].append(msg)
        return callback

    def start(self, models, remaps: tuple = (), **overrides):
        """Create the node with `overrides` (and the test model set) and spin it."""
        from lightglue_ros.node import MatcherNode
        values = {'model_dir': str(models), 'resize': 0, 'processing_queue_size': 50,
                  'diagnostics_period': 0.2, **overrides}
        cli_args = ['--ros-args'] + [a for r in remaps for a in ('-r', r)] if remaps else None
        self.node = MatcherNode(context=self.context, cli_args=cli_args, parameter_overrides=[
            Parameter(k, value=v) for k, v in values.items()])
        self.executor.add_node(self.node)
        return self.node

    def publish(self, topic: str, msg, msg_type=Image, qos: QoSProfile = RELIABLE) -> None:
        """Publish once the node's subscription is matched (discovery)."""
        if topic not in self.publishers:
            pub = self.probe.create_publisher(msg_type, topic, qos)
            deadline = time.monotonic() + 10
            while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert pub.get_subscription_count(), f'nobody subscribes to {topic}'
            self.publishers[topic] = pub
        self.publishers[topic].publish(msg)

    def wait(self, kind: str, count: int, timeout: float = 60.0) -> list:
        """Wait until `count` messages of `kind` arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received[kind]) >= count:
                    return list(self.received[kind])
            time.sleep(0.02)
        with self.lock:
            return list(self.received[kind])

    def close(self) -> None:
        """Shut down cleanly (worker joined before the context goes)."""
        self.executor.shutdown()
        self.thread.join()
        if self.node is not None:
            self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def ros():
    harness = Harness()
    yield harness
    harness.close()


def _image(array: np.ndarray, encoding: str, seconds: float, frame_id: str = 'cam0'):
    msg = numpy_to_image(array, encoding)
    msg.header.stamp, msg.header.frame_id = _stamp(seconds), frame_id
    return msg


def _bayer_rggb(rgb: np.ndarray) -> np.ndarray:
    mosaic = np.empty(rgb.shape[:2], np.uint8)
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return mosaic


def _encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return {
        'mono8': grey, '8UC1': grey, 'mono16': grey.astype(np.uint16) * 257,
        'rgb8': rgb, 'bgr8': rgb[..., ::-1], 'rgba8': np.dstack([rgb, np.full_like(grey, 255)]),
        'bgra8': np.dstack([rgb[..., ::-1], np.full_like(grey, 255)]),
        'bayer_rggb8': _bayer_rggb(rgb),
    }[encoding]


ENCODINGS = ('mono8', 'mono16', 'rgb8', 'bgr8', 'rgba8', 'bgra8', '8UC1', 'bayer_rggb8')


def test_temporal_every_encoding(ros, aliked_models):
    """Each encoding's pair (a photo and a known warp of it) gives correct matches."""
    image0, image1, mat = samples.warped_pair('astronaut')
    ros.start(aliked_models, mode='temporal', pose_method='none')
    for k, encoding in enumerate(ENCODINGS):
        ros.publish('/image0', _image(_encode(image0, encoding), encoding, 2 * k, 'cam0'))
        ros.publish('/image0', _image(_encode(image1, encoding), encoding, 2 * k + 1, 'cam0'))
    # Consecutive frames alternate photo / warp: pairs 2k -> 2k+1 are warp pairs.
    got = ros.wait('matches', 2 * len(ENCODINGS) - 1, timeout=180)
    assert len(got) == 2 * len(ENCODINGS) - 1
    for k, encoding in enumerate(ENCODINGS):
        out = messages.decode_matches(got[2 * k])
        assert out['stamp0_ns'] == 2 * k * 10**9 and out['stamp1_ns'] == (2 * k + 1) * 10**9
        err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], mat)
        assert len(err) > 300, encoding
        assert np.mean(err < 3) > 0.95, encoding


def _info(width: int, height: int, fx: float = 500.0, frame_id: str = 'cam0') -> CameraInfo:
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width, msg.height = width, height
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, width / 2, 0.0, 0.0, fx, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def _diag_values(ros) -> dict:
    status = ros.wait('diagnostics', 1)[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    return values | {'_message': status.message, '_level': status.level}


def test_bad_input_never_stops_the_node(ros, aliked_models):
    """Malformed frames and camera infos are skipped with a diagnostic; matching goes on."""
    image0, image1, _ = samples.warped_pair('astronaut')
    h, w = image0.shape[:2]
    ros.start(aliked_models, mode='temporal')
    ros.publish('/camera_info0', _info(w, h, fx=float('nan')), CameraInfo)
    ros.publish('/image0', _image(image0, 'rgb8', 1.0))
    bad = _image(image0, 'rgb8', 2.0)
    bad.encoding = 'rgb42'  # unknown encoding
    ros.publish('/image0', bad)
    bad = _image(image0, 'rgb8', 3.0)
    bad.step = 7  # step smaller than a row
    ros.publish('/image0', bad)
    bad = _image(image0, 'rgb8', 4.0)
    bad.height, bad.width, bad.data = 0, 0, b''  # empty
    ros.publish('/image0', bad)
    ros.publish('/image0', _image(image1, 'rgb8', 5.0))
    got = ros.wait('matches', 1)
    assert len(got) == 1
    out = messages.decode_matches(got[0])
    assert out['stamp0_ns'] == 1 * 10**9 and out['stamp1_ns'] == 5 * 10**9
    assert len(out['scores']) > 300
    time.sleep(0.5)
    values = _diag_values(ros)
    assert int(values['frames_skipped']) == 3
    assert int(values['pairs_processed']) == 1
    assert ros.received['pose'] == []  # NaN intrinsics: no pose
    # A CameraInfo for another resolution: still no pose, still matches.
    ros.publish('/camera_info0', _info(w * 2, h * 2), CameraInfo)
    ros.publish('/image0', _image(image0, 'rgb8', 6.0))
    assert len(ros.wait('matches', 2)) == 2
    time.sleep(0.5)
    assert 'CameraInfo' in _diag_values(ros)['_message']
    assert ros.received['pose'] == []
    # Both CameraInfo messages were rejected on arrival (NaN focal length, other size).
    assert int(_diag_values(ros)['camera_info_rejected']) == 2
    # A uniform frame: a matches message with no match, then a flagged (unpublished) pose.
    ros.publish('/camera_info0', _info(w, h), CameraInfo)
    ros.publish('/image0', _image(np.full_like(image0, 128), 'rgb8', 7.0))
    got = ros.wait('matches', 3)
    assert len(got) == 3 and len(messages.decode_matches(got[2])['scores']) < 15
    # The node is alive: a good pair gives matches. A photo and its homography warp is a
    # plane seen twice: two poses explain it, so the pose is flagged, not guessed.
    ros.publish('/image0', _image(image0, 'rgb8', 8.0))
    ros.publish('/image0', _image(image1, 'rgb8', 9.0))
    got = ros.wait('matches', 5)
    assert len(got) == 5 and len(messages.decode_matches(got[4])['scores']) > 300
    time.sleep(0.5)
    values = _diag_values(ros)
    assert int(values['pairs_processed']) == 5 and 'planar' in values['pose']
    assert ros.received['pose'] == []


def test_parameters_live_and_read_only(ros, aliked_models):
    """Live changes apply to the next pair; read-only and out-of-range changes are refused."""
    image0, image1, mat = samples.warped_pair('astronaut')
    node = ros.start(aliked_models, mode='temporal', pose_method='none')
    results = node.set_parameters([Parameter('mode', value='stereo')])
    assert not results[0].successful
    results = node.set_parameters([Parameter('depth_confidence', value=1.5)])
    assert not results[0].successful
    results = node.set_parameters([Parameter('pose_method', value='magic')])
    assert not results[0].successful and 'one of' in results[0].reason
    ros.publish('/image0', _image(image0, 'rgb8', 1.0))
    ros.publish('/image0', _image(image1, 'rgb8', 2.0))
    ros.wait('matches', 1)
    time.sleep(0.4)
    adaptive = int(_diag_values(ros)['stop_layer'])
    assert adaptive < 9  # an easy pair exits early
    results = node.set_parameters([Parameter('depth_confidence', value=-1.0),
                                   Parameter('width_confidence', value=-1.0)])
    assert all(r.successful for r in results)
    ros.publish('/image0', _image(image0, 'rgb8', 3.0))
    ros.wait('matches', 2)
    time.sleep(0.4)
    assert int(_diag_values(ros)['stop_layer']) == 9
    assert _diag_values(ros)['refined_matches'] == 'off'
    # Sub-pixel refinement: the same warp pair again, image-1 positions moved to the truth.
    assert node.set_parameters([Parameter('refine_matches', value=True)])[0].successful
    ros.publish('/image0', _image(image1, 'rgb8', 4.0))
    got = ros.wait('matches', 3)
    time.sleep(0.4)
    assert int(_diag_values(ros)['refined_matches']) > 0.6 * len(
        messages.decode_matches(got[2])['indices0'])
    plain, refined = messages.decode_matches(got[0]), messages.decode_matches(got[2])
    err_plain = samples.reprojection_error(plain['keypoints0'], plain['keypoints1'], mat)
    err_refined = samples.reprojection_error(refined['keypoints0'], refined['keypoints1'], mat)
    inl_plain, inl_refined = err_plain[err_plain < 3], err_refined[err_refined < 3]
    assert np.median(inl_refined) < 0.5 * np.median(inl_plain)
    assert np.median(inl_refined) < 0.15
    assert node.get_parameter('mode').value == 'temporal'


def test_invalid_start_parameters(aliked_models, tmp_path):
    """A bad mode or model directory fails at construction with a clear message."""
    from lightglue_ros.node import MatcherNode
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ValueError, match='mode must be one of'):
            MatcherNode(context=context, parameter_overrides=[
                Parameter('mode', value='mono'), Parameter('model_dir', value=str(aliked_models))])
        with pytest.raises(ValueError, match=str(tmp_path)):
            MatcherNode(context=context, parameter_overrides=[
                Parameter('model_dir', value=str(tmp_path))])
    finally:
        rclpy.shutdown(context=context)


def test_stereo_pose_scaled_by_the_calibrated_baseline(ros, aliked_models):
    """Stereo: pairs within the slop are matched; the pose has the calibrated baseline."""
    baseline = 0.12  # camera 1 is 12 cm to the right of camera 0, rectified
    seq = samples.camera_motion_sequence(2, step=(baseline, 0.0, 0.0), yaw_deg=0.0)
    h, w = seq.frames[0].shape[:2]
    fx = float(seq.K[0, 0])
    info0, info1 = _info(w, h, fx, 'left'), _info(w, h, fx, 'right')
    info1.p[3] = -fx * baseline  # ROS convention for the right camera
    node = ros.start(aliked_models, mode='stereo', sync_queue_size=2, sync_slop=0.01)
    warnings, logger = [], node.get_logger()
    node.get_logger = lambda: type('Logger', (), {
        'warning': staticmethod(warnings.append), 'info': staticmethod(logger.info),
        'error': staticmethod(logger.error)})()
    ros.publish('/camera_info0', info0, CameraInfo)
    ros.publish('/camera_info1', info1, CameraInfo)
    # Stamps 50 ms apart never pair (slop 10 ms): diagnostics say so, nothing is matched.
    for k in range(3):
        ros.publish('/image0', _image(seq.frames[0], 'rgb8', 1.0 + k, 'left'))
        ros.publish('/image1', _image(seq.frames[1], 'rgb8', 1.05 + k, 'right'))
    time.sleep(1.0)
    assert 'no synchronized pairs' in _diag_values(ros)['_message']
    assert any('no synchronized pairs' in text for text in warnings), warnings  # logged too
    assert ros.received['matches'] == []
    # 3 ms apart: a pair.
    ros.publish('/image0', _image(seq.frames[0], 'rgb8', 10.0, 'left'))
    ros.publish('/image1', _image(seq.frames[1], 'rgb8', 10.003, 'right'))
    got = ros.wait('matches', 1)
    out = messages.decode_matches(got[0])
    assert out['stamp0_ns'] == 10 * 10**9 and out['stamp1_ns'] == 10_003_000_000
    assert out['frame_id'] == 'left' and len(out['scores']) > 200
    # Rectified pair: matches lie on the same row.
    assert np.median(np.abs(out['keypoints0'][:, 1] - out['keypoints1'][:, 1])) < 0.5
    pose = messages.decode_pose(ros.wait('pose', 1)[0])
    np.testing.assert_allclose(pose['position'], [baseline, 0, 0], atol=0.01)
    assert abs(np.linalg.norm(pose['position']) - baseline) < 1e-6  # scale from calibration
    time.sleep(0.5)
    assert float(_diag_values(ros)['baseline_angle_deg']) < 3.0


def test_compressed_transport(ros, aliked_models):
    """image_transport compressed: PNG and JPEG CompressedImage on <image0>/compressed."""
    from sensor_msgs.msg import CompressedImage
    image0, image1, mat = samples.warped_pair('astronaut')
    ros.start(aliked_models, mode='temporal', pose_method='none', image_transport='compressed')
    for k, (image, fmt) in enumerate(((image0, '.png'), (image1, '.jpg'))):
        msg = CompressedImage(format='rgb8; ' + fmt[1:] + ' compressed bgr8')
        msg.header.stamp, msg.header.frame_id = _stamp(1.0 + k), 'cam0'
        msg.data = cv2.imencode(fmt, image[..., ::-1])[1].tobytes()
        ros.publish('/image0/compressed', msg, CompressedImage)
    out = messages.decode_matches(ros.wait('matches', 1)[0])
    err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], mat)
    assert len(err) > 300 and np.mean(err < 3) > 0.9


def test_pure_rotation_published_only_when_asked(ros, aliked_models):
    """A camera turning on the spot: no pose by default; with publish_rotation_only, R."""
    from lightglue_ros.geometry import rotation_error_deg
    image0 = samples.photo('astronaut')
    h, w = image0.shape[:2]
    info = _info(w, h, 500.0)
    K = np.array(info.k).reshape(3, 3)
    R = cv2.Rodrigues(np.deg2rad([1.0, 4.0, 0.5]))[0]  # X1 = R X0: no translation
    image1 = cv2.warpPerspective(image0, K @ R @ np.linalg.inv(K), (w, h))
    node = ros.start(aliked_models, mode='temporal', pose_method='auto')
    ros.publish('/camera_info0', info, CameraInfo)
    assert wait_until(lambda: _diag_values(ros)['camera_info'].startswith('1 '))
    ros.publish('/image0', _image(image0, 'rgb8', 1.0))
    ros.publish('/image0', _image(image1, 'rgb8', 2.0))
    ros.wait('matches', 1)
    assert wait_until(lambda: 'pure rotation' in _diag_values(ros).get('pose', ''))
    assert ros.received['pose'] == []
    assert node.set_parameters([Parameter('publish_rotation_only', value=True)])[0].successful
    ros.publish('/image0', _image(image0, 'rgb8', 3.0))  # image1 -> image0: rotation R^T
    got = ros.wait('pose', 1)
    assert len(got) == 1
    pose = messages.decode_pose(got[0])
    assert pose['stamp_ns'] == 3 * 10**9
    np.testing.assert_array_equal(pose['position'], np.zeros(3))
    assert np.allclose(np.diag(pose['covariance'])[:3], 1e6)
    assert 0 < np.diag(pose['covariance'])[3:].max() < 1e-3  # the rotation is well measured
    orientation = _quat_to_matrix(*pose['quaternion'])
    # Camera 1 (image0) in camera 0's frame (image1): orientation R.
    assert rotation_error_deg(orientation, R) < 0.2
    assert wait_until(lambda: _diag_values(ros)['poses_published'] == '1')


def _quat_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])

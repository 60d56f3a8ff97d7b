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

"""Node features checked against known truth: pair mode, ~/debug_image, live resize and limits."""

import time

from conftest import wait_until
import cv2
from lightglue_ros import messages
from lightglue_ros.tools import samples
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from test_node import _diag_values
from test_node import _image
from test_node import _info
from test_node import _quat_to_matrix
from test_node import Harness

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Iterative undistortion to convergence (OpenCV's default stops after 5 iterations).
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
SIZE = (320, 240)  # (width, height) of the rendered pair-mode cameras


@pytest.fixture
def ros():
    harness = Harness()
    yield harness
    harness.close()


def _diagnostics_after(ros, pairs: int) -> dict:
    """Return the newest /diagnostics values once they count `pairs` processed pairs."""
    assert wait_until(lambda: int(_diag_values(ros).get('pairs_processed', 0)) >= pairs)
    return _diag_values(ros)


def _keypoint_counts(values: dict) -> tuple[int, int]:
    """Return the (image 0, image 1) keypoint counts of diagnostics' 'N0 / N1'."""
    n0, n1 = values['keypoints'].split(' / ')
    return int(n0), int(n1)


def _set_over_ros(ros, name: str, value) -> None:
    """Set a parameter of /lightglue through its parameter service, as `ros2 param set` does."""
    client = AsyncParameterClient(ros.probe, 'lightglue')
    assert client.wait_for_services(timeout_sec=10.0)
    future = client.set_parameters([Parameter(name, value=value)])
    assert wait_until(future.done), f'no answer to setting {name}'
    result = future.result().results[0]
    assert result.successful, result.reason


def _publish_pair(ros, image0: np.ndarray, image1: np.ndarray, seconds: float,
                  skew: float = 0.004) -> None:
    """Publish a synchronized pair: image1 stamped `skew` s after image0 (within sync_slop)."""
    ros.publish('/image0', _image(image0, 'rgb8', seconds, 'cam0'))
    ros.publish('/image1', _image(image1, 'rgb8', seconds + skew, 'cam1'))


def _stamp_ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


# -- pair mode ------------------------------------------------------------------------------
def _distort(image: np.ndarray, kmat: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Return the raw image of a plumb_bob camera (K, D) whose undistorted view is `image`."""
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    raw = np.stack([xs, ys], -1).reshape(-1, 1, 2)
    # Each raw pixel shows what its undistorted ray hits: sample the ideal view there.
    ideal = cv2.undistortPoints(raw, kmat, dist, P=kmat, criteria=CRITERIA).reshape(h, w, 2)
    return cv2.remap(image, ideal[..., 0].astype(np.float32), ideal[..., 1].astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _epipolar_px(kpts0: np.ndarray, kpts1: np.ndarray, cams: tuple,
                 t_0to1: np.ndarray) -> np.ndarray:
    """
    Return each match's distance (image-1 pixels) from its true epipolar line.

    :param cams: ((K0, D0), (K1, D1)) of the raw images.
    :param t_0to1: 4x4 true motion, X1 = R X0 + t.
    """
    (k0, d0), (k1, d1) = cams
    x0 = cv2.undistortPoints(kpts0.reshape(-1, 1, 2).astype(np.float64), k0, d0,
                             criteria=CRITERIA).reshape(-1, 2)
    x1 = cv2.undistortPoints(kpts1.reshape(-1, 1, 2).astype(np.float64), k1, d1,
                             criteria=CRITERIA).reshape(-1, 2)
    rot, t = t_0to1[:3, :3], t_0to1[:3, 3]
    essential = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ rot
    lines = np.c_[x0, np.ones(len(x0))] @ essential.T  # x1^T E x0 = 0
    residual = np.abs(np.sum(np.c_[x1, np.ones(len(x1))] * lines, axis=1))
    return residual / np.hypot(lines[:, 0], lines[:, 1]) * k1[0, 0]


def test_pair_mode_two_raw_cameras(ros, aliked_models):
    """
    Pair mode: two different raw cameras with unknown extrinsics, paired by time.

    Camera 0 (f 250 px) and camera 1 (f 230 px, radial distortion) see a rendered scene of
    photo planes from a known relative pose. The matches lie on the true epipolar lines, carry
    the pair's stamps, and the pose (unit-norm translation) is the true motion.
    """
    dist1 = np.array([0.12, -0.03, 0.0, 0.0, 0.0])
    # Camera 1 is 20 cm to the right of camera 0, 5 cm ahead and turned 2 degrees.
    motion = {'step': (0.2, 0.0, 0.05), 'yaw_deg': 2.0}
    seq0 = samples.camera_motion_sequence(2, size=SIZE, focal=250.0, **motion)
    seq1 = samples.camera_motion_sequence(2, size=SIZE, focal=230.0, **motion)  # other K
    image0, image1 = seq0.frames[0], _distort(seq1.frames[1], seq1.K, dist1)
    info0, info1 = _info(*SIZE, 250.0, 'cam0'), _info(*SIZE, 230.0, 'cam1')
    info1.d = dist1.tolist()
    ros.start(aliked_models, mode='pair', pose_method='auto')
    ros.publish('/camera_info0', info0, CameraInfo)
    ros.publish('/camera_info1', info1, CameraInfo)
    assert wait_until(lambda: _diag_values(ros)['camera_info']
                      == '1 on /camera_info0, 1 on /camera_info1')
    _publish_pair(ros, image0, image1, 10.0)
    got = ros.wait('matches', 1)
    assert len(got) == 1
    out = messages.decode_matches(got[0])
    assert out['stamp0_ns'] == _stamp_ns(10.0) and out['stamp1_ns'] == _stamp_ns(10.004)
    assert messages.stamp_to_ns(got[0].header.stamp) == _stamp_ns(10.004)
    assert out['frame_id'] == 'cam0'
    t_0to1 = samples.relative_pose(seq0.poses)
    err = _epipolar_px(out['keypoints0'], out['keypoints1'],
                       ((seq0.K, None), (seq1.K, dist1)), t_0to1)
    assert len(err) > 150
    assert np.mean(err < 2.0) >= 0.95, np.percentile(err, [50, 90, 95])
    poses = ros.wait('pose', 1, timeout=5.0)  # published right after the matches
    assert len(poses) == 1, _diag_values(ros)
    assert messages.stamp_to_ns(poses[0].header.stamp) == _stamp_ns(10.004)
    assert poses[0].header.frame_id == 'cam0'
    pose = messages.decode_pose(poses[0])
    # ~/pose is camera 1 in camera 0's frame: orientation R^T, position -R^T t.
    rot, t = t_0to1[:3, :3], t_0to1[:3, 3]
    rot_est = _quat_to_matrix(*pose['quaternion'])
    cos_rot = (np.trace(rot_est @ rot) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos_rot, -1, 1))) < 1.0
    centre = -rot.T @ t
    assert abs(np.linalg.norm(pose['position']) - 1.0) < 1e-6
    cos_dir = pose['position'] @ centre / np.linalg.norm(centre)
    assert np.degrees(np.arccos(np.clip(cos_dir, -1, 1))) < 10.0  # signed: a flip is 180


# -- ~/debug_image ---------------------------------------------------------------------------
def _near_matches(shape: tuple, kpts0: np.ndarray, kpts1: np.ndarray,
                  offset1: int) -> np.ndarray:
    """Return a mask of the canvas pixels within a few pixels of a match line or its ends."""
    mask = np.zeros(shape, np.uint8)
    for p0, p1 in zip(np.round(kpts0).astype(int), np.round(kpts1).astype(int)):
        p1 = (int(p1[0]) + offset1, int(p1[1]))
        cv2.line(mask, (int(p0[0]), int(p0[1])), p1, 1, thickness=3)
        cv2.circle(mask, (int(p0[0]), int(p0[1])), 3, 1, -1)
        cv2.circle(mask, p1, 3, 1, -1)
    return mask.astype(bool)


def test_debug_image_shows_both_inputs_side_by_side(ros, aliked_models):
    """
    ~/debug_image: drawn once subscribed; both inputs side by side with the pair's header.

    Away from the match lines (from ~/matches, not from the drawing code) its pixels are the
    input images' pixels, image 0 on the left, image 1 on the right.
    """
    gap = 10  # white columns between the two images (runtime/viz.py draw_matches)
    image0 = cv2.resize(samples.photo('astronaut'), SIZE, interpolation=cv2.INTER_AREA)
    mat = samples.homography(image0.shape, angle_deg=8.0, scale=0.9)
    image1 = cv2.warpPerspective(image0, mat, (272, 256))  # narrower and taller than image0
    (h0, w0), (h1, w1) = image0.shape[:2], image1.shape[:2]
    node = ros.start(aliked_models, mode='pair', pose_method='none', max_keypoints=64)
    drawn = []
    publish_debug = node._publish_debug

    def counting(*args):
        drawn.append(args)
        publish_debug(*args)

    node._publish_debug = counting
    _publish_pair(ros, image0, image1, 1.0)
    assert len(ros.wait('matches', 1)) == 1
    assert drawn == []  # nobody subscribed, publish_debug_image false: not drawn
    received = []
    ros.probe.create_subscription(Image, '/lightglue/debug_image', received.append, RELIABLE)
    assert wait_until(lambda: node.debug_pub.get_subscription_count() == 1)
    _publish_pair(ros, image0, image1, 2.0)
    got = ros.wait('matches', 2)
    assert len(got) == 2 and wait_until(lambda: len(received) == 1)
    assert len(drawn) == 1
    msg, out = received[0], messages.decode_matches(got[1])
    assert msg.encoding == 'bgr8'
    assert (msg.width, msg.height) == (w0 + gap + w1, max(h0, h1))
    assert msg.step == 3 * msg.width
    assert messages.stamp_to_ns(msg.header.stamp) == _stamp_ns(2.004)  # image 1's stamp
    assert msg.header.frame_id == 'cam0'  # image 0's frame
    canvas = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
    assert len(out['scores']) > 20
    drawn_near = _near_matches(canvas.shape[:2], out['keypoints0'], out['keypoints1'],
                               w0 + gap)
    for (h, w), image, left in (((h0, w0), image0, 0), ((h1, w1), image1, w0 + gap)):
        region = canvas[:h, left:left + w]
        same = (region == image[..., ::-1]).all(axis=2)  # input rgb8, canvas bgr8
        clear = ~drawn_near[:h, left:left + w]
        assert clear.mean() > 0.5  # most of the image is away from the lines
        # What remains differs at the unmatched keypoints' dots only (<= 64 small dots).
        assert same[clear].mean() > 0.98, (left, same[clear].mean())


# -- live parameters ------------------------------------------------------------------------
def test_live_max_keypoints_limits_the_next_pair(ros, aliked_models):
    """max_keypoints set at run time: the next pair's keypoint indices stay below it."""
    limit = 150
    image0, image1, mat = samples.warped_pair('astronaut')  # 512x512: ~800 keypoints each
    ros.start(aliked_models, mode='pair', pose_method='none')
    _publish_pair(ros, image0, image1, 1.0)
    got = ros.wait('matches', 1)
    before = messages.decode_matches(got[0])
    assert min(before['indices0'].max(), before['indices1'].max()) >= limit
    assert min(_keypoint_counts(_diagnostics_after(ros, 1))) > 2 * limit
    _set_over_ros(ros, 'max_keypoints', limit)
    _publish_pair(ros, image0, image1, 2.0)
    got = ros.wait('matches', 2)
    assert len(got) == 2
    after = messages.decode_matches(got[1])
    assert after['stamp0_ns'] == _stamp_ns(2.0)
    assert after['indices0'].max() < limit and after['indices1'].max() < limit
    assert max(_keypoint_counts(_diagnostics_after(ros, 2))) <= limit
    for out in (before, after):  # still the true correspondences
        err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], mat)
        assert len(err) > 0.5 * limit and np.mean(err < 3.0) >= 0.95


def test_live_resize_keeps_original_coordinates(ros, aliked_models):
    """
    Live resize: the next pair is extracted at the new size, reported in pixels.

    256 px halves each side of the 512x512 pair (about a quarter of the keypoints, in the
    diagnostics); the keypoints still follow the true warp in original-image pixels. -1
    (the model set's rule: shrink larger images to 1024, keep smaller ones) is native size.
    """
    image0, image1, mat = samples.warped_pair('astronaut')
    ros.start(aliked_models, mode='pair', pose_method='none', resize=0)
    results, counts = [], []
    for k, resize in enumerate((0, 256, -1)):
        if k:
            _set_over_ros(ros, 'resize', resize)
        _publish_pair(ros, image0, image1, 1.0 + k)
        got = ros.wait('matches', k + 1)
        assert len(got) == k + 1
        results.append(messages.decode_matches(got[k]))
        counts.append(_keypoint_counts(_diagnostics_after(ros, k + 1)))
    native, half, default = counts
    assert max(half) < 0.5 * min(native)
    assert default == native  # 512 px < 1024: not resized, the same extraction as resize 0
    for out in results:
        err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], mat)
        assert len(err) > 100 and np.mean(err < 3.0) >= 0.95, np.percentile(err, [50, 95])
        # Original-image pixels: the matches span the 512 px image, not 256.
        assert out['keypoints0'].max() > 400


@pytest.mark.parametrize('mode', ['temporal', 'stereo'])
def test_each_frame_is_extracted_once(ros, aliked_models, mode):
    """
    Every frame is extracted exactly once.

    Temporal: N frames, N extractions for N - 1 pairs (a frame's features serve both pairs it
    belongs to). Stereo: two extractions per pair, none repeated.
    """
    node = ros.start(aliked_models, mode=mode)
    extracted = []
    features = node.pipeline.features

    def counting(image):
        extracted.append(image.shape)
        return features(image)

    node.pipeline.features = counting
    seq = samples.camera_motion_sequence(4)
    for k, frame in enumerate(seq.frames):
        ros.publish('/image0', _image(frame, 'rgb8', 1.0 + k))
        if mode == 'stereo':
            ros.publish('/image1', _image(seq.frames[(k + 1) % 4], 'rgb8', 1.0 + k, 'cam1'))
        time.sleep(0.3)
    pairs = 3 if mode == 'temporal' else 4
    assert len(ros.wait('matches', pairs)) == pairs
    time.sleep(0.5)
    assert len(extracted) == (4 if mode == 'temporal' else 8), extracted


def test_destroy_frees_the_models_after_the_worker(ros, aliked_models):
    """destroy_node joins the worker, then frees the OpenVINO objects there and then."""
    image0, image1, _ = samples.warped_pair('astronaut')
    node = ros.start(aliked_models, mode='temporal', pose_method='none')
    for k, image in enumerate((image0, image1)):
        ros.publish('/image0', _image(image, 'rgb8', 1.0 + k))
    assert ros.wait('matches', 1)
    engine, worker = node.engine, node._worker
    assert engine.extractor._requests and engine.matcher._requests
    ros.executor.remove_node(node)
    node.destroy_node()
    ros.node = None
    assert not worker.is_alive()
    assert engine.extractor._requests == {} and engine.extractor._compiled == {}
    assert engine.matcher._requests == {}

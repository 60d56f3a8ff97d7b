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

"""Relative pose on synthetic scenes with known R, t, intrinsics and distortion."""

from types import SimpleNamespace

import cv2
from lightglue_ros import geometry
from lightglue_ros.geometry import relative_pose
from lightglue_ros.geometry.camera import CameraModel, stereo_baseline
import numpy as np
import pytest

K = np.array([[300.0, 0, 320], [0, 310, 240], [0, 0, 1]])
SIZE = (640, 480)
R_TRUE = cv2.Rodrigues(np.array([0.02, -0.03, 0.01]))[0]
T_TRUE = np.array([0.5, 0.1, 0.1])
DISTORTIONS = {
    'plumb_bob': [-0.25, 0.08, 0.001, -0.0005, -0.01],
    'rational_polynomial': [0.3, -0.1, 0.001, 0.0005, 0.01, 0.6, -0.1, 0.02],
    'equidistant': [-0.02, 0.01, -0.004, 0.001],
    '': [],
}


def project(X: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Project camera-frame points to pixels with OpenCV (the reference for undistort)."""
    zero = np.zeros(3)
    if camera.distortion_model == 'equidistant':
        return cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), zero, zero, camera.K,
                                         camera.D)[0].reshape(-1, 2)
    return cv2.projectPoints(X, zero, zero, camera.K, camera.D)[0].reshape(-1, 2)


def scene(R=R_TRUE, t=T_TRUE, n=300, planar=False, noise=0.3, camera=None, seed=0):
    """Return matched pixels of random points seen from two cameras (X1 = R X0 + t)."""
    rng = np.random.default_rng(seed)
    camera = camera or CameraModel(K, width=SIZE[0], height=SIZE[1])
    xy = rng.uniform(-5, 5, (4 * n, 2))
    depth = 5 + 0.2 * xy[:, 1] if planar else rng.uniform(4, 15, 4 * n)
    X0 = np.c_[xy * depth[:, None] / 6, depth]
    X1 = X0 @ R.T + t
    p0, p1 = project(X0, camera), project(X1, camera)
    keep = ((p0 >= 0) & (p0 < SIZE) & (p1 >= 0) & (p1 < SIZE)).all(1) & (X1[:, 2] > 0.5)
    p0, p1 = p0[keep][:n], p1[keep][:n]
    return (p0 + rng.normal(0, noise, p0.shape), p1 + rng.normal(0, noise, p1.shape), camera)


def errors(res, R=R_TRUE, t=T_TRUE):
    # Signed: relative_pose decides the sign of t (cheirality), so a flip is an error.
    return (geometry.rotation_error_deg(res.R, R),
            geometry.translation_error_deg(res.t, t, signed=True))


@pytest.mark.parametrize('model', list(DISTORTIONS))
def test_undistort_round_trip(model):
    """Undistorted pixels are the normalized coordinates OpenCV projected them from."""
    camera = CameraModel(K, DISTORTIONS[model], model, *SIZE)
    camera.validate()
    rng = np.random.default_rng(1)
    X = np.c_[rng.uniform(-0.9, 0.9, (200, 2)), np.ones(200)] * rng.uniform(1, 9, (200, 1))
    pix = project(X, camera)
    assert camera.distorted == bool(model)
    np.testing.assert_allclose(camera.undistort(pix), X[:, :2] / X[:, 2:], atol=1e-7)


def test_from_camera_info_and_stereo_baseline():
    """Flat CameraInfo lists map to K, D, P; the right P gives the baseline (P[0,3]=-fx B)."""
    p0 = [300.0, 0, 320, 0, 0, 300, 240, 0, 0, 0, 1, 0]
    p1 = [300.0, 0, 320, -300 * 0.12, 0, 300, 240, 0, 0, 0, 1, 0]
    msgs = [SimpleNamespace(k=list(K.ravel()), d=[0.0] * 5, distortion_model='plumb_bob',
                            width=640, height=480, p=p) for p in (p0, p1)]
    cam0, cam1 = (CameraModel.from_camera_info(m) for m in msgs)
    cam0.validate()
    assert cam0.K.shape == (3, 3) and cam0.D.shape == (5,) and cam0.width == 640
    assert not cam0.distorted
    np.testing.assert_allclose(stereo_baseline(cam0, cam1), [-0.12, 0, 0])
    msgs[1].p = [0.0] * 12  # uncalibrated P: no baseline
    assert stereo_baseline(cam0, CameraModel.from_camera_info(msgs[1])) is None


def test_from_real_camera_info_message():
    """A sensor_msgs/CameraInfo (numpy arrays for fixed-size fields) converts and validates."""
    from sensor_msgs.msg import CameraInfo  # a test dependency: a failed import must fail
    msg = CameraInfo(width=640, height=480, distortion_model='equidistant')
    msg.k = K.ravel().tolist()
    msg.d = DISTORTIONS['equidistant']
    camera = CameraModel.from_camera_info(msg)
    camera.validate()
    assert camera.P is None and camera.distorted and camera.D.shape == (4,)
    with pytest.raises(ValueError, match='positive focal'):
        CameraModel.from_camera_info(CameraInfo()).validate()


@pytest.mark.parametrize('kwargs, message', [
    ({'K': np.where(K == 300, np.nan, K)}, 'non-finite'),
    ({'K': np.diag([0.0, 310, 1])}, 'positive focal'),
    ({'K': np.diag([-300.0, 310, 1])}, 'positive focal'),
    ({'D': [0.1, np.inf, 0, 0, 0], 'distortion_model': 'plumb_bob'}, 'non-finite'),
    ({'D': [0.1, 0, 0, 0], 'distortion_model': 'kannala'}, 'unknown distortion model'),
    ({'D': [0.1, 0, 0], 'distortion_model': 'plumb_bob'}, 'plumb_bob needs 4 or 5'),
    ({'D': [0.1, 0, 0, 0, 0], 'distortion_model': 'equidistant'}, 'equidistant needs 4'),
    ({'D': [0.1, 0, 0, 0, 0]}, 'without a distortion model'),
])
def test_validate_names_the_bad_value(kwargs, message):
    """Bad calibration values raise ValueError saying what is wrong."""
    camera = CameraModel(**{'K': K, **kwargs})
    with pytest.raises(ValueError, match=message):
        camera.validate()


def test_general_scene_with_outliers_and_distortion():
    """A 3D scene through a distorted lens: essential model, accurate pose, outliers flagged."""
    camera = CameraModel(K, DISTORTIONS['plumb_bob'], 'plumb_bob', *SIZE)
    p0, p1, _ = scene(camera=camera)
    rng = np.random.default_rng(2)
    bad = rng.choice(len(p0), 60, replace=False)
    p1[bad] = rng.uniform(0, 480, (60, 2))
    res = relative_pose(p0, p1, camera, camera)
    assert res.ok and res.reason == '' and res.model == 'essential', res.reason
    err_R, err_t = errors(res)
    assert err_R < 0.1 and err_t < 1.0
    assert res.inliers.shape == (len(p0),) and res.n_inliers == res.inliers.sum()
    assert res.inliers[bad].mean() < 0.1 and np.delete(res.inliers, bad).mean() > 0.9
    assert abs(np.linalg.norm(res.t) - 1) < 1e-9 and not res.scale_known


def test_planar_scene_selects_homography():
    """A plane: auto picks the homography; its decomposition gives the pose."""
    p0, p1, camera = scene(planar=True)
    res = relative_pose(p0, p1, camera, camera)
    assert res.ok and res.model == 'homography', res.reason
    err_R, err_t = errors(res)
    assert err_R < 0.1 and err_t < 1.0


def test_planar_twofold_ambiguity_is_flagged():
    """Both decompositions of a plane's homography fit: flagged, not a guess."""
    t = np.array([0.3, 0.05, -0.2])
    p0, p1, camera = scene(t=t, planar=True)
    res = relative_pose(p0, p1, camera, camera)
    assert not res.ok and res.model == 'homography'
    assert res.reason.startswith('degenerate: planar scene, two poses')
    np.testing.assert_array_equal(res.R, np.eye(3))


def test_dominant_plane_with_off_plane_points_gets_essential_pose():
    """The twofold plane above plus 20 points off it (6 %): they single out the true pose."""
    t = np.array([0.3, 0.05, -0.2])
    p0, p1, camera = scene(t=t, planar=True)
    q0, q1, _ = scene(t=t, n=20, seed=5)
    res = relative_pose(np.r_[p0, q0], np.r_[p1, q1], camera, camera)
    assert res.ok and res.model == 'essential', res.reason
    err_R, err_t = errors(res, t=t)
    assert err_R < 0.1 and err_t < 1.0
    # The plane alone: the matches off it (none) cannot decide, and the reason says so.
    res = relative_pose(p0, p1, camera, camera)
    assert not res.ok and 'do not single one out' in res.reason, res.reason


def test_pure_rotation_and_zero_motion_are_flagged():
    """No parallax: not ok, translation zero, the rotation still recovered."""
    p0, p1, camera = scene(t=np.zeros(3))
    res = relative_pose(p0, p1, camera, camera)
    assert not res.ok and res.reason.startswith('pure rotation'), res.reason
    assert errors(res)[0] < 0.1 and not res.t.any() and res.rotation_known
    for method in ('essential', 'homography'):
        assert relative_pose(p0, p1, camera, camera, method=method).reason.startswith('pure')
    p0, p1, camera = scene(R=np.eye(3), t=np.zeros(3))
    res = relative_pose(p0, p1, camera, camera)
    assert not res.ok and res.reason.startswith('zero motion'), res.reason
    assert res.rotation_known


def test_degenerate_inputs_never_raise():
    """Few, collinear, NaN, empty and identical matches give ok=False with a reason."""
    p0, p1, camera = scene()
    line = np.c_[np.linspace(10, 600, 50), np.linspace(20, 400, 50)]
    cases = [
        (p0[:5], p1[:5], 'not enough matches (5 < 8)'),
        (line, line + [5.0, 1.0], 'degenerate: matches lie on a line in image 0'),
        (np.full((20, 2), np.nan), p1[:20], 'not enough matches (0 < 8)'),
        (np.zeros((0, 2)), np.zeros((0, 2)), 'not enough matches (0 < 8)'),
        (np.tile(p0[:1], (30, 1)), np.tile(p1[:1], (30, 1)), 'degenerate: matches lie on'),
    ]
    for kpts0, kpts1, reason in cases:
        res = relative_pose(kpts0, kpts1, camera, camera)
        assert not res.ok and res.reason.startswith(reason), res.reason
        assert res.inliers.shape == (len(kpts0),) and not res.inliers.any()
        assert res.R.shape == (3, 3) and not res.t.any() and res.covariance.shape == (6, 6)
        assert res.model == 'none' and res.n_inliers == 0 and not res.rotation_known


def test_nan_keypoints_are_outliers():
    """Non-finite keypoints are skipped, and marked as outliers in the mask."""
    p0, p1, camera = scene()
    p0[:10] = np.nan
    p1[10:15, 0] = np.inf
    res = relative_pose(p0, p1, camera, camera)
    assert res.ok and not res.inliers[:15].any() and errors(res)[0] < 0.1


def test_programmer_errors_raise():
    """Mismatched shapes and unknown methods are bugs in the caller: ValueError."""
    p0, p1, camera = scene()
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        relative_pose(p0, p1[:-1], camera, camera)
    with pytest.raises(ValueError, match='unknown pose method'):
        relative_pose(p0, p1, camera, camera, method='fundamental')


def test_stereo_baseline_scales_translation():
    """A rectified stereo pair: t in metres along the calibrated baseline."""
    baseline = np.array([-0.12, 0.0, 0.0])
    p0, p1, camera = scene(R=np.eye(3), t=baseline)
    res = relative_pose(p0, p1, camera, camera, baseline=baseline)
    assert res.ok and res.model == 'stereo' and res.scale_known, res.reason
    assert abs(np.linalg.norm(res.t) - 0.12) < 1e-9 and res.baseline_angle_deg < 1.0
    np.testing.assert_allclose(res.camera1_in_camera0()[0], [0.12, 0, 0], atol=2e-3)
    # Calibration says the baseline is vertical: the images disagree, the pair fails.
    res = relative_pose(p0, p1, camera, camera, baseline=[0.0, -0.12, 0.0])
    assert not res.ok and res.reason.startswith('stereo:') and res.baseline_angle_deg > 80
    with pytest.raises(ValueError, match='baseline'):
        relative_pose(p0, p1, camera, camera, baseline=[0.0, 0.0, 0.0])


def test_covariance_is_psd_and_grows_with_noise_and_fewer_inliers():
    """Symmetric PSD 6x6; rotation variance grows with noise and with fewer points."""
    def rot_var(**kwargs):
        p0, p1, camera = scene(**kwargs)
        res = relative_pose(p0, p1, camera, camera)
        assert res.ok, res.reason
        cov = res.covariance
        assert cov.shape == (6, 6) and np.allclose(cov, cov.T)
        assert np.linalg.eigvalsh(cov).min() > -1e-12
        # Unknown scale: huge variance along the position direction, small across it.
        c, _ = res.camera1_in_camera0()
        u = c / np.linalg.norm(c)
        assert u @ cov[:3, :3] @ u > 0.5 * geometry.UNKNOWN_VARIANCE
        across = np.linalg.svd(u.reshape(1, 3))[2][1:]
        assert np.trace(across @ cov[:3, :3] @ across.T) < 1e-2
        return np.trace(cov[3:, 3:])

    base = rot_var(noise=0.3)
    assert rot_var(noise=1.0) > 3 * base
    assert rot_var(noise=0.3, n=40) > 3 * base
    p0, p1, camera = scene(R=np.eye(3), t=[-0.12, 0, 0])
    res = relative_pose(p0, p1, camera, camera, baseline=[-0.12, 0, 0])
    assert res.covariance[0, 0] < 1e-4  # scale known: metres, from calibration


def test_camera1_in_camera0_convention():
    """Position -R^T t and orientation R^T, quaternion (x, y, z, w)."""
    R = cv2.Rodrigues(np.array([0.0, 0.0, np.pi / 2]))[0]
    t = np.array([1.0, 2.0, 3.0])
    res = geometry.PoseResult(True, '', 'essential', R, t, np.ones(3, bool), np.eye(6), True, 3)
    position, quat = res.camera1_in_camera0()
    np.testing.assert_allclose(position, -R.T @ t)
    # Camera 1 is rotated by -90 deg about z relative to camera 0.
    np.testing.assert_allclose(quat, [0, 0, -np.sin(np.pi / 4), np.cos(np.pi / 4)], atol=1e-12)
    for rvec in ([0.3, -2.0, 1.0], [np.pi, 0, 0], [0, 3.1, 0.2]):
        Rq = cv2.Rodrigues(np.array(rvec))[0]
        x, y, z, w = geometry.rotation_to_quaternion(Rq)
        back = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        np.testing.assert_allclose(back, Rq, atol=1e-12)


def test_error_metrics():
    """Rotation angle and translation direction errors (SuperGlue's min(e, 180 - e))."""
    R = cv2.Rodrigues(np.array([0.0, np.deg2rad(3.0), 0.0]))[0]
    assert geometry.rotation_error_deg(R, np.eye(3)) == pytest.approx(3.0)
    assert geometry.translation_error_deg([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert geometry.translation_error_deg([1, 0, 0], [-1, 0.01, 0]) == pytest.approx(
        np.rad2deg(np.arctan(0.01)))
    assert geometry.translation_error_deg(np.zeros(3), [1, 0, 0]) == np.inf
    assert geometry.translation_error_deg([1, 0, 0], [-1, 0.01, 0], signed=True) == \
        pytest.approx(180.0 - np.rad2deg(np.arctan(0.01)))

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
Camera calibration from ROS CameraInfo, for `geometry` (no ROS import, numpy + OpenCV).

Pinhole K with plumb_bob, rational_polynomial or equidistant distortion, checks that name the
bad value, undistortion to normalized coordinates, and the calibrated baseline of a rectified
stereo pair.
"""

import dataclasses

import cv2
import numpy as np

# ROS distortion_model -> accepted numbers of coefficients (sensor_msgs/distortion_models.hpp).
DISTORTION_MODELS = {'': None, 'none': None, 'plumb_bob': (4, 5),
                     'rational_polynomial': (8, 12, 14), 'equidistant': (4,)}
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@dataclasses.dataclass
class CameraModel:
    """Pinhole camera with ROS CameraInfo distortion (plumb_bob, rational_polynomial, fisheye)."""

    K: np.ndarray
    D: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    distortion_model: str = ''
    width: int = 0
    height: int = 0
    P: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            self.K = np.asarray(self.K, np.float64).reshape(3, 3)
            self.D = np.asarray(self.D if self.D is not None else [], np.float64).ravel()
            if self.P is not None:
                self.P = np.asarray(self.P, np.float64).reshape(3, 4)
                # CameraInfo leaves P all zeros when the camera is not calibrated for it.
                if not self.P.any():
                    self.P = None
        except ValueError:
            raise ValueError('camera K must have 9 values (3x3 row-major) and P 12 (3x4); '
                             f'got K of size {np.size(self.K)}, P of size {np.size(self.P)}'
                             ) from None
        self.distortion_model = (self.distortion_model or '').strip().lower()

    @classmethod
    def from_camera_info(cls, msg, rectified: bool = False) -> 'CameraModel':
        """
        Build from a sensor_msgs/CameraInfo (or any object with k, d, p, ... fields).

        :param rectified: the images are rectified (image_rect): the camera is the left 3x3
            of P without distortion, as image_geometry's rectified model; else K and D (raw
            images).
        :raises ValueError: for `rectified` when P is missing or all zeros.
        """
        # rclpy gives numpy arrays for fixed-size fields: no truth tests on them.
        P = None if getattr(msg, 'p', None) is None else list(msg.p)
        size = {'width': int(msg.width), 'height': int(msg.height)}
        if not rectified:
            return cls(K=list(msg.k), D=list(msg.d), distortion_model=msg.distortion_model,
                       P=P, **size)
        model = cls(K=np.eye(3), P=P, **size)
        if model.P is None:
            raise ValueError('rectified images need the projection P of CameraInfo, which is '
                             'all zeros here; calibrate the rectification or set image_type '
                             'to raw')
        model.K = model.P[:, :3].copy()
        return model

    def validate(self) -> None:
        """
        Check the calibration values.

        :raises ValueError: naming the bad value, for non-finite or non-positive focal
            lengths, non-finite K/D, an unknown distortion model or a wrong number of
            coefficients.
        """
        if not np.isfinite(self.K).all():
            raise ValueError(f'camera K has non-finite values {self.K.ravel().tolist()}; '
                             'check the camera calibration (CameraInfo.k)')
        fx, fy = self.K[0, 0], self.K[1, 1]
        if fx <= 0 or fy <= 0 or self.K[2, 2] != 1 or self.K[2, :2].any():
            raise ValueError(f'camera K must have positive focal lengths and last row 0 0 1, '
                             f'got fx={fx}, fy={fy}, last row {self.K[2].tolist()}; is the '
                             'camera calibrated (an uncalibrated CameraInfo has K all zeros)?')
        if not np.isfinite(self.D).all():
            raise ValueError(f'camera distortion D has non-finite values {self.D.tolist()}')
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f'unknown distortion model {self.distortion_model!r}; supported: '
                             'plumb_bob, rational_polynomial, equidistant (or empty)')
        sizes = DISTORTION_MODELS[self.distortion_model]
        if sizes is None and self.D.any():
            raise ValueError(f'distortion coefficients {self.D.tolist()} given without a '
                             'distortion model; set distortion_model (e.g. plumb_bob)')
        if sizes is not None and len(self.D) and len(self.D) not in sizes:
            raise ValueError(f'{self.distortion_model} needs {" or ".join(map(str, sizes))} '
                             f'distortion coefficients, got {len(self.D)}')
        if self.P is not None and not np.isfinite(self.P).all():
            raise ValueError(f'camera P has non-finite values {self.P.ravel().tolist()}')

    @property
    def distorted(self) -> bool:
        """Return True when undistortion changes points."""
        return bool(self.D.any()) and DISTORTION_MODELS.get(self.distortion_model) is not None

    def undistort(self, pts: np.ndarray) -> np.ndarray:
        """
        Map pixels to normalized image coordinates (x/z, y/z) of the undistorted ray.

        :param pts: (N, 2) pixel coordinates; non-finite rows stay NaN.
        :return: (N, 2) float64.
        """
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        out = np.full_like(pts, np.nan)
        good = np.isfinite(pts).all(axis=1)
        if not good.any():
            return out
        src = pts[good].reshape(-1, 1, 2)
        if not self.distorted:
            homo = np.linalg.solve(self.K, np.c_[pts[good], np.ones(good.sum())].T).T
            out[good] = homo[:, :2] / homo[:, 2:]
        elif self.distortion_model == 'equidistant':
            out[good] = cv2.fisheye.undistortPoints(src, self.K, self.D,
                                                    criteria=_CRITERIA).reshape(-1, 2)
        else:
            out[good] = cv2.undistortPoints(src, self.K, self.D,
                                            criteria=_CRITERIA).reshape(-1, 2)
        return out


def stereo_baseline(camera0: CameraModel, camera1: CameraModel) -> np.ndarray | None:
    """
    Return the calibrated t (X1 = R X0 + t, metres) of a rectified stereo pair, or None.

    ROS convention: the right camera's P has P[0, 3] = -fx * B (and P[1, 3] = -fy * By for
    vertical rigs); the left camera's P[:, 3] is normally zero.
    """
    if camera0.P is None or camera1.P is None:
        return None
    fx, fy = camera1.P[0, 0], camera1.P[1, 1]
    if fx <= 0 or fy <= 0:
        return None
    t = np.array([camera1.P[0, 3] / fx - camera0.P[0, 3] / camera0.P[0, 0],
                  camera1.P[1, 3] / fy - camera0.P[1, 3] / camera0.P[1, 1], 0.0])
    return t if np.linalg.norm(t) > 0 else None

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
Metric frame-to-frame motion of a rectified stereo sequence, for `eval --sequence` (numpy, cv2).

The reference frame's left keypoints matched in its right image are triangulated on the
rectified rows (`stereo_points`: depth Z = fx B / d with disparity d = x_left - x_right > 0 and
a small vertical error), then those 3D points and their matches in the current left image give
the motion by PnP (`pnp_motion`: `cv2.solvePnPRansac`, then Levenberg-Marquardt on the inliers).
The translation is in metres from the calibrated baseline: no ground truth is used.
Conventions as `relative_pose`: X_cur = R X_ref + t, pixel centres at integer coordinates.
"""

import dataclasses

import cv2
import numpy as np

# Stereo matches: rows of a rectified pair agree within this (pixels) ...
MAX_DY_PX = 1.5
# ... and the disparity is at least this (pixels): depth fx B / d stays finite and in front.
MIN_DISPARITY_PX = 1.0
# PnP: RANSAC threshold (pixels), and the fewest 3D-2D correspondences and inliers for a pose.
PNP_RANSAC_PX = 2.0
MIN_PNP_POINTS = 12


@dataclasses.dataclass
class StereoMotion:
    """Metric motion of the current frame from the reference's 3D points; check `ok`."""

    ok: bool
    reason: str
    R: np.ndarray  # (3, 3), identity when not ok
    t: np.ndarray  # (3,) metres, zero when not ok
    n_points: int  # 3D-2D correspondences offered to PnP
    n_inliers: int


def stereo_points(kpts_left: np.ndarray, kpts_right: np.ndarray, matches: np.ndarray,
                  K: np.ndarray, baseline_m: float, max_dy_px: float = MAX_DY_PX,
                  min_disparity_px: float = MIN_DISPARITY_PX) -> np.ndarray:
    """
    Triangulate the left keypoints matched in the right image of a rectified pair.

    :param kpts_left: (N, 2) left keypoints, pixels.
    :param kpts_right: (M, 2) right keypoints, pixels.
    :param matches: (L, 2) indices (left keypoint, right keypoint).
    :param K: (3, 3) rectified intrinsics, shared by both images.
    :param baseline_m: B > 0: the right camera sits at x = +B in the left camera's frame.
    :return: (N, 3) float64 points in the left camera's frame (metres), NaN for keypoints
        without a match that passes the row and disparity checks.
    """
    kpts_left = np.asarray(kpts_left, np.float64).reshape(-1, 2)
    out = np.full((len(kpts_left), 3), np.nan)
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    if not len(matches):
        return out
    left = kpts_left[matches[:, 0]]
    right = np.asarray(kpts_right, np.float64).reshape(-1, 2)[matches[:, 1]]
    disparity = left[:, 0] - right[:, 0]
    keep = (np.abs(left[:, 1] - right[:, 1]) <= max_dy_px) & (disparity >= min_disparity_px)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    z = fx * baseline_m / disparity[keep]
    u, v = left[keep, 0], left[keep, 1]
    out[matches[keep, 0]] = np.c_[(u - cx) * z / fx, (v - cy) * z / fy, z]
    return out


def pnp_motion(points3d: np.ndarray, pts2d: np.ndarray, K: np.ndarray,
               ransac_px: float = PNP_RANSAC_PX,
               min_points: int = MIN_PNP_POINTS) -> StereoMotion:
    """
    Return the motion X_cur = R X_ref + t of the reference's 3D points seen at `pts2d`.

    :param points3d: (M, 3) reference-camera points (metres; NaN rows are skipped).
    :param pts2d: (M, 2) their matches in the current (left) image, pixels.
    :param K: (3, 3) intrinsics of the current image (rectified, no distortion).
    """
    points3d = np.asarray(points3d, np.float64).reshape(-1, 3)
    pts2d = np.asarray(pts2d, np.float64).reshape(-1, 2)
    good = np.isfinite(points3d).all(axis=1) & np.isfinite(pts2d).all(axis=1)
    X, x = points3d[good], pts2d[good]
    n = len(X)

    def fail(reason: str, inliers: int = 0) -> StereoMotion:
        return StereoMotion(False, reason, np.eye(3), np.zeros(3), n, inliers)

    if n < min_points:
        return fail(f'{n} 3D-2D correspondences (stereo-triangulated reference points matched '
                    f'in this frame), fewer than {min_points}')
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        X, x, K, None, iterationsCount=1000, reprojectionError=ransac_px, confidence=0.999,
        flags=cv2.SOLVEPNP_ITERATIVE)
    count = 0 if inliers is None else len(inliers)
    if not ok or count < min_points:
        return fail(f'PnP RANSAC kept {count} inliers of {n}, fewer than {min_points}', count)
    inl = inliers.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(X[inl], x[inl], K, None, rvec, tvec)
    R = cv2.Rodrigues(rvec)[0]
    return StereoMotion(True, '', R, tvec.ravel().astype(np.float64), n, count)

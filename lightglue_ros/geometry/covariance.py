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
Least squares on the inliers of a relative pose: refinement and first-order covariance.

`refine_pose` refines (R, unit t) on all inliers (Gauss-Newton on Sampson errors with a Cauchy
loss, a damped retry when a step does not lower the cost); `pose_covariance` gives the 6x6
covariance of camera 1's pose in camera 0's frame, in ROS order. numpy and OpenCV only.
"""

from lightglue_ros.geometry.epipolar import exp_so3
from lightglue_ros.geometry.epipolar import homogeneous
from lightglue_ros.geometry.epipolar import sampson_px
from lightglue_ros.geometry.epipolar import skew
import numpy as np

# Variance (m^2 or unit^2, rad^2) that says "unknown": large, finite, so consumers can invert.
UNKNOWN_VARIANCE = 1e6
# Stereo: relative standard deviation of the calibrated baseline length.
STEREO_SCALE_REL_STD = 0.01
# Floor of the noise estimate (pixels): keeps the covariance finite on noise-free data.
MIN_SIGMA_PX = 0.05


def refine_pose(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray, f: float,
                scale_px: float = 1.0, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """
    Refine (R, unit t) on inlier matches: Gauss-Newton on Sampson errors, Cauchy weights.

    The minimal-sample estimate fits 5 points; this uses every inlier (5 DoF: rotation on the
    left, translation direction in the plane orthogonal to t). A step that does not lower the
    robust cost is retried with more damping (Levenberg-Marquardt); returns the input if none
    does.
    """
    def cost(r):
        return float(np.sum(np.log1p((r / scale_px) ** 2)))

    def residuals(R_, t_):
        return sampson_px(skew(t_) @ R_, x0, x1, f, signed=True)

    def step(R_, t_, p, dirs):
        t2 = t_ + dirs.T @ p[:2]
        return exp_so3(p[2:]) @ R_, t2 / np.linalg.norm(t2)

    r = residuals(R, t)
    best = cost(r)
    eps, damping = 1e-7, 1e-9
    for _ in range(iterations):
        # Central differences along the 5 directions, all 10 essential matrices in one pass.
        dirs = np.linalg.svd(t.reshape(1, 3))[2][1:]
        moved = [step(R, t, sign * e, dirs) for e in np.eye(5) * eps for sign in (1, -1)]
        sampson = sampson_px(np.stack([skew(t_) @ R_ for R_, t_ in moved]), x0, x1, f,
                             signed=True)
        J = ((sampson[0::2] - sampson[1::2]) / (2 * eps)).T
        w = 1.0 / (1.0 + (r / scale_px) ** 2)
        A = J.T @ (J * w[:, None])
        # A dominant plane leaves the cost nearly flat along its twin solution: a full step can
        # overshoot, a damped one still descends.
        while True:
            delta = -np.linalg.solve(A + damping * np.trace(A) * np.eye(5), J.T @ (w * r))
            R2, t2 = step(R, t, delta, dirs)
            r2 = residuals(R2, t2)
            c2 = cost(r2)
            if c2 < best or damping > 1e-2:
                break
            damping *= 100
        if not c2 < best:
            break
        R, t, r, improvement, best = R2, t2, r2, best - c2, c2
        damping = max(damping / 100, 1e-9)
        if improvement < 1e-6 * best:
            break
    return R, t


def pose_covariance(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray, f: float,
                    scale_known: bool = False, rotation_only: bool = False) -> np.ndarray:
    """
    Return the 6x6 covariance of camera 1's pose in camera 0's frame, ROS order.

    Parameters: position c = -R^T t and orientation Q = R^T perturbed about the fixed axes
    of camera 0 (Q' = exp([w]x) Q). Residuals: Sampson epipolar errors (pixels) of the inlier
    matches x0, x1 (normalized coordinates), or transfer errors for `rotation_only`. J is the
    numerical Jacobian; sigma^2 = sum(r^2) / (n - dof), floored at MIN_SIGMA_PX; the
    covariance is sigma^2 (J^T J)^-1 on the observable directions, eigenvalues clamped at
    UNKNOWN_VARIANCE. Unobservable: the scale of c (monocular, variance UNKNOWN_VARIANCE along
    c), or all of c (rotation only). With `scale_known` the variance along c is
    (STEREO_SCALE_REL_STD |c|)^2.
    """
    c0, Q0 = -R.T @ t, R.T

    def residuals(p):
        Q = exp_so3(p[3:]) @ Q0
        Rp, tp = Q.T, -Q.T @ (c0 + p[:3])
        if rotation_only:
            p1 = homogeneous(x0) @ Rp.T
            return (f * (p1[:, :2] / p1[:, 2:] - x1)).ravel()
        # Signed: |r| has no useful derivative at r = 0 (noise-free data).
        return sampson_px(skew(tp) @ Rp, x0, x1, f, signed=True)

    norm_c = np.linalg.norm(c0)
    if rotation_only:
        basis = np.vstack([np.zeros((3, 3)), np.eye(3)])
    else:
        dirs = np.linalg.svd(c0.reshape(1, 3) / max(norm_c, 1e-12))[2][1:]  # 2 rows, _|_ c
        basis = np.zeros((6, 5))
        basis[:3, :2], basis[3:, 2:] = dirs.T, np.eye(3)
    r0 = residuals(np.zeros(6))
    eps = 1e-6
    J = np.stack([(residuals(eps * b) - residuals(-eps * b)) / (2 * eps) for b in basis.T], 1)
    dof = basis.shape[1]
    sigma2 = max(float(r0 @ r0) / max(len(r0) - dof, 1), MIN_SIGMA_PX ** 2)
    w, v = np.linalg.eigh(J.T @ J / sigma2)
    cov_p = v @ np.diag(1.0 / np.maximum(w, 1.0 / UNKNOWN_VARIANCE)) @ v.T
    cov = basis @ cov_p @ basis.T
    if rotation_only:
        cov[:3, :3] = np.eye(3) * UNKNOWN_VARIANCE
    else:
        u = c0 / max(norm_c, 1e-12)
        var = (STEREO_SCALE_REL_STD * norm_c) ** 2 if scale_known else UNKNOWN_VARIANCE
        cov[:3, :3] += var * np.outer(u, u)
    return (cov + cov.T) / 2

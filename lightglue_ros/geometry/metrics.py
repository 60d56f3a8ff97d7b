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
Rotation and translation errors, quaternions and pose AUC (SuperGlue / LightGlue protocol).

numpy only; used by `pose` and by the evaluation and tests to score estimates.
"""

import numpy as np


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (x, y, z, w), w >= 0, of a rotation matrix."""
    m = R
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-300))
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Return the angle (degrees) of the rotation R_est^T R_gt."""
    cos = (np.trace(np.asarray(R_est).T @ np.asarray(R_gt)) - 1) / 2
    return float(np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0))))


def translation_error_deg(t_est: np.ndarray, t_gt: np.ndarray, signed: bool = False) -> float:
    """
    Return the angle (degrees) between translation directions, SuperGlue/LightGlue convention.

    min(err, 180 - err) (the sign ambiguity of essential matrices); inf for a zero vector.

    :param signed: the plain angle (0-180) instead: for poses whose sign was decided (by the
        cheirality check, as `relative_pose` does), where a flipped translation is an error.
    """
    n = np.linalg.norm(t_est) * np.linalg.norm(t_gt)
    if not np.isfinite(n) or n < 1e-12:
        return float('inf')
    err = np.rad2deg(np.arccos(np.clip(np.dot(t_est, t_gt) / n, -1.0, 1.0)))
    return float(err if signed else min(err, 180.0 - err))


def pose_auc(errors, thresholds) -> list[float]:
    """
    Return the area under the recall-vs-error curve up to each threshold, as fractions.

    As SuperGlue / LightGlue: errors sorted, recall (i + 1) / n, trapezoids from (0, 0) to the
    threshold, divided by the threshold. Unsolved pairs are `inf` (they lower the recall).
    """
    errors = np.sort(np.asarray(errors, np.float64).ravel())
    if len(errors) == 0:
        return [0.0 for _ in thresholds]
    recall = np.arange(1, len(errors) + 1) / len(errors)
    errors, recall = np.r_[0.0, errors], np.r_[0.0, recall]
    aucs = []
    for thr in thresholds:
        last = int(np.searchsorted(errors, thr))
        r = np.r_[recall[:last], recall[last - 1]]
        e = np.r_[errors[:last], thr]
        aucs.append(float(np.sum((e[1:] - e[:-1]) * (r[1:] + r[:-1]) / 2) / thr))
    return aucs

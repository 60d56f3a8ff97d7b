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
Scores of `lightglue-ros eval`: one pair's errors against the ground truth, and summaries.

Pose, homography and disparity errors of a pair, their per-set summary (AUC as SuperGlue /
LightGlue), and how far two methods' estimates are from each other. numpy + OpenCV only.
"""

import time

import cv2
from lightglue_ros import geometry
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.tools import samples
import numpy as np

POSE_THRESHOLDS = (5, 10, 20)
H_THRESHOLDS = (1, 3, 5)


def score_pose(match: dict, pair: dict, sizes: tuple, pose_method: str,
               ransac_px: float) -> dict:
    """Estimate the pose of one pair from its matches and compare with the ground truth."""
    cams = [CameraModel(pair[k], width=w, height=h)
            for k, (w, h) in zip(('K0', 'K1'), sizes)]
    start = time.perf_counter()
    res = geometry.relative_pose(match['kpts0'], match['kpts1'], *cams, method=pose_method,
                                 ransac_px=ransac_px)
    pose_ms = (time.perf_counter() - start) * 1e3
    T = pair['T_0to1']
    err_R = geometry.rotation_error_deg(res.R, T[:3, :3]) if res.ok else np.inf
    err_t = geometry.translation_error_deg(res.t, T[:3, 3]) if res.ok else np.inf
    return {'ok': res.ok, 'reason': res.reason, 'model': res.model, 'n_inliers': res.n_inliers,
            'err_R': err_R, 'err_t': err_t, 'err': max(err_R, err_t), 'pose_ms': pose_ms,
            'R_est': res.R.tolist() if res.ok else None,
            't_est': res.t.tolist() if res.ok else None}


def score_homography(match: dict, pair: dict, size0: tuple, ransac_px: float) -> dict:
    """Estimate H from the matches; mean corner error and match precision against the GT."""
    w, h = size0
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    H, inliers = geometry.homography_from_matches(match['kpts0'], match['kpts1'], ransac_px)
    gt = cv2.perspectiveTransform(corners[None], pair['H'])[0]
    err, estimated = np.inf, None
    if H is not None:
        estimated = cv2.perspectiveTransform(corners[None], H)[0]
        err = float(np.linalg.norm(estimated - gt, axis=1).mean())
    dist = samples.reprojection_error(np.asarray(match['kpts0'], np.float64),
                                      np.asarray(match['kpts1'], np.float64), pair['H'])
    return {'ok': H is not None, 'n_inliers': int(inliers.sum()), 'err': err,
            'precision3': float((dist < 3).mean()) if len(dist) else 0.0,
            'corners_est': estimated.tolist() if estimated is not None else None}


def agreement(kind: str, rows_a: list[dict], rows_b: list[dict]) -> dict | None:
    """
    Compare two methods' estimates with each other and with the ground truth, pair by pair.

    When two independent methods agree with each other much better than either agrees with
    the ground truth, the ground truth's own error sets the floor of the AUC, and an AUC
    difference between them says little. Pose sets: median rotation and translation-
    direction angles between the two estimates; homography sets: median mean distance
    between their projected image corners. Only pairs both solved count.
    """
    both = [(a, b) for a, b in zip(rows_a, rows_b) if a['ok'] and b['ok']]
    if not both:
        return None
    if kind == 'pose':
        rot = [geometry.rotation_error_deg(np.array(a['R_est']), np.array(b['R_est']))
               for a, b in both]
        trans = [geometry.translation_error_deg(np.array(a['t_est']), np.array(b['t_est']))
                 for a, b in both]
        return {'pairs': len(both), 'median_rot_between_deg': float(np.median(rot)),
                'median_t_between_deg': float(np.median(trans)),
                'median_t_err_a_deg': float(np.median([a['err_t'] for a, _ in both])),
                'median_t_err_b_deg': float(np.median([b['err_t'] for _, b in both]))}
    between = [np.linalg.norm(np.array(a['corners_est']) - np.array(b['corners_est']),
                              axis=1).mean() for a, b in both]
    return {'pairs': len(both), 'median_corner_between_px': float(np.median(between)),
            'median_corner_err_a_px': float(np.median([a['err'] for a, _ in both])),
            'median_corner_err_b_px': float(np.median([b['err'] for _, b in both]))}


def finite_or_none(x):
    """Return float(x), or None for inf / NaN (JSON has no infinity)."""
    return float(x) if np.isfinite(x) else None


def summarize(kind: str, rows: list[dict]) -> dict:
    """Aggregate per-pair rows of one method on one set (JSON-ready: inf becomes null)."""
    n_matches = np.array([r['n_matches'] for r in rows], np.float64)
    n_inl = np.array([r['n_inliers'] for r in rows], np.float64)
    err = np.array([r['err'] for r in rows])
    stops = [r['stop_layer'] for r in rows if r['stop_layer'] is not None]
    out = {'pairs': len(rows), 'solved': float(np.mean([r['ok'] for r in rows]) * 100),
           'keypoints': float(np.mean([r['n_kpts'] for r in rows])),
           'matches': float(n_matches.mean()),
           'inlier_ratio': float(np.mean(n_inl / np.maximum(n_matches, 1))),
           'ms_per_pair': float(np.mean([r['ms'] for r in rows])),
           'mean_stop_layer': float(np.mean(stops)) if stops else None}
    thresholds = POSE_THRESHOLDS if kind == 'pose' else H_THRESHOLDS
    for thr, auc in zip(thresholds, geometry.pose_auc(err, thresholds)):
        out[f'auc{thr}'] = auc * 100
    if kind == 'pose':
        out['median_rot_err_deg'] = finite_or_none(np.median([r['err_R'] for r in rows]))
        out['median_t_err_deg'] = finite_or_none(np.median([r['err_t'] for r in rows]))
        out['pose_ms'] = float(np.mean([r['pose_ms'] for r in rows]))
        if all('disp_checked' in r for r in rows):
            out['disparity_checked'] = float(np.mean([r['disp_checked'] for r in rows]))
            out['disparity_within1'] = float(np.mean([r['disp_within1'] for r in rows]) * 100)
            out['disparity_median_x_err_px'] = finite_or_none(np.median(
                [r['disp_med_x_err'] for r in rows]))
            out['disparity_median_y_err_px'] = finite_or_none(np.median(
                [r['disp_med_y_err'] for r in rows]))
    else:
        # Same keys in every set (null here), so consumers can read any set alike.
        out['median_rot_err_deg'] = out['median_t_err_deg'] = None
        out['mean_corner_err_px'] = finite_or_none(err.mean())
        out['median_corner_err_px'] = finite_or_none(np.median(err))
        out['precision3'] = float(np.mean([r['precision3'] for r in rows]) * 100)
    return out


def score_disparity(match: dict, disparity: np.ndarray) -> dict:
    """
    Check matches of a rectified left/right pair against the dense ground-truth disparity.

    For each match whose left keypoint has a known disparity d (nearest pixel): horizontal
    error (x_left - d) - x_right and vertical error y_right - y_left (0 when rectified).
    Returns the number checked, the fraction within 1 px (both errors together) and the
    median absolute errors.
    """
    kpts0 = np.asarray(match['kpts0'], np.float64).reshape(-1, 2)
    kpts1 = np.asarray(match['kpts1'], np.float64).reshape(-1, 2)
    h, w = disparity.shape
    cols = np.clip(np.round(kpts0[:, 0]), 0, w - 1).astype(int)
    rows = np.clip(np.round(kpts0[:, 1]), 0, h - 1).astype(int)
    d = disparity[rows, cols] if len(kpts0) else np.zeros(0)
    known = np.isfinite(d) & np.isfinite(kpts1).all(1)
    ex = (kpts0[known, 0] - d[known]) - kpts1[known, 0]
    ey = kpts1[known, 1] - kpts0[known, 1]
    if not known.any():
        return {'disp_checked': 0, 'disp_within1': 0.0, 'disp_med_x_err': np.inf,
                'disp_med_y_err': np.inf}
    return {'disp_checked': int(known.sum()),
            'disp_within1': float(np.mean(np.hypot(ex, ey) < 1.0)),
            'disp_med_x_err': float(np.median(np.abs(ex))),
            'disp_med_y_err': float(np.median(np.abs(ey)))}

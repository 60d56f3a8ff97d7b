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
Relative pose from matched keypoints: undistortion, model selection, covariance.

No ROS, no torch: numpy and OpenCV only. Conventions: pixel centres at integer coordinates;
`R, t` map camera-0 coordinates to camera-1 coordinates (X1 = R X0 + t), as OpenCV's
`recoverPose` and SuperGlue's `T_0to1`.

Models: `essential` (general scenes; USAC MAGSAC++, a cheirality check, then Gauss-Newton /
Levenberg-Marquardt on the Sampson errors of all inliers with a Cauchy loss), `homography`
(planar scenes; Malis decomposition, keeping the solutions that put the points in front of both
cameras, and failing when the plane's two-fold ambiguity remains) and a rotation-only model
(pure rotation / zero motion: no parallax, so the translation direction is unobservable and the
result is flagged). `method='auto'` first tells rotation-only from the models with a
translation by Torr's geometric robust information criterion (GRIC, Torr 1998), which trades
each model's residuals against its dimension and parameter count, so a pure rotation is not
mistaken for a scene whose extra freedom only fits the noise. A plane that carries most of the
essential inliers makes E two-fold ambiguous like H, so `auto` then asks whether the matches
off that plane single out one of its two poses (`_off_plane_support`, a sign test at
`SUPPORT_P`). If they do, the scene gets the essential pose, however dominant the plane (a desk
with objects on it); if they do not, it is treated as planar and flagged when both
decompositions remain. Otherwise (no dominant plane, or a homography with one solution) GRIC's
choice stands. The plane's decompositions, refined on all inliers, also seed the essential fit,
which rescues a RANSAC estimate stuck on the wrong twin.

Covariance (first order, documented in `covariance.pose_covariance`): sigma^2 (J^T J)^-1 of
the Sampson epipolar errors of the inliers over the 6-DoF pose of camera 1 in camera 0's frame,
sigma from the residuals. Monocular scale is unobservable: the position variance along the
translation direction is `UNKNOWN_VARIANCE` (1e6); with a stereo baseline it is the
calibration's `STEREO_SCALE_REL_STD` (1 %) of the baseline length, squared.
"""

import dataclasses
import logging
import math
from types import SimpleNamespace

import cv2
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.covariance import MIN_SIGMA_PX
from lightglue_ros.geometry.covariance import pose_covariance
from lightglue_ros.geometry.covariance import refine_pose
from lightglue_ros.geometry.covariance import UNKNOWN_VARIANCE
from lightglue_ros.geometry.epipolar import angle_deg
from lightglue_ros.geometry.epipolar import homogeneous
from lightglue_ros.geometry.epipolar import sampson_px
from lightglue_ros.geometry.epipolar import skew
from lightglue_ros.geometry.epipolar import transfer_px
from lightglue_ros.geometry.metrics import rotation_error_deg
from lightglue_ros.geometry.metrics import rotation_to_quaternion
import numpy as np

logger = logging.getLogger(__name__)

MIN_MATCHES = 8
# Stereo: estimated translation further than this from the calibrated baseline fails the pair.
STEREO_MAX_ANGLE_DEG = 10.0
# Matches whose spread across their main line is below this (pixels) are collinear.
MIN_SPREAD_PX = 1.0
# Off-plane support (`method='auto'`, see `_off_plane_support`): a match fits a pose within
# FIT_SIGMAS noise standard deviations (Sampson error) and is off the plane when its homography
# transfer error is at least OFF_PLANE_SIGMAS of them; the off-plane matches decide between
# the two poses when a sign test gives p < SUPPORT_P (noise alone would do so in 1 % of pairs).
FIT_SIGMAS = 3.0
OFF_PLANE_SIGMAS = 6.0
SUPPORT_P = 0.01


@dataclasses.dataclass
class PoseResult:
    """
    Relative pose of a pair; check `ok` before using `R`, `t`.

    `R` is the identity when not ok, except for pure rotation / zero motion
    (`rotation_known`, with at least min_inliers inliers): there it is the rotation that
    explains the matches, with its covariance, and `t` is zero: the rotation is known, the
    translation direction is not.
    """

    ok: bool
    reason: str
    model: str
    R: np.ndarray
    t: np.ndarray
    inliers: np.ndarray
    covariance: np.ndarray
    scale_known: bool
    n_inliers: int
    baseline_angle_deg: float | None = None
    rotation_known: bool = False

    def camera1_in_camera0(self) -> tuple[np.ndarray, np.ndarray]:
        """Return position (3,) and quaternion (x, y, z, w) of camera 1 in camera 0's frame."""
        return -self.R.T @ self.t, rotation_to_quaternion(self.R.T)


def failed(reason: str, n: int, model: str = 'none', R: np.ndarray | None = None,
           inliers: np.ndarray | None = None) -> PoseResult:
    """Return a not-ok result with `reason` for `n` input matches."""
    return PoseResult(False, reason, model, np.eye(3) if R is None else R, np.zeros(3),
                      np.zeros(n, bool) if inliers is None else inliers,
                      np.eye(6) * UNKNOWN_VARIANCE, False,
                      0 if inliers is None else int(inliers.sum()))


def homography_from_matches(kpts0: np.ndarray, kpts1: np.ndarray, ransac_px: float = 3.0,
                            confidence: float = 0.9999) -> tuple[np.ndarray | None, np.ndarray]:
    """Return (H or None, inlier mask) for pixel matches x1 ~ H x0 (USAC MAGSAC++)."""
    kpts0, kpts1 = np.asarray(kpts0, np.float64), np.asarray(kpts1, np.float64)
    inliers = np.zeros(len(kpts0), bool)
    good = np.isfinite(kpts0).all(1) & np.isfinite(kpts1).all(1)
    if good.sum() < 4:
        return None, inliers
    try:
        H, mask = cv2.findHomography(kpts0[good], kpts1[good], cv2.USAC_MAGSAC, ransac_px,
                                     maxIters=10000, confidence=confidence)
    except cv2.error:
        return None, inliers
    if H is None or mask is None or not np.isfinite(H).all():
        return None, inliers
    inliers[np.flatnonzero(good)] = mask.ravel() > 0
    return H / H[2, 2], inliers


def _gric(err_px: np.ndarray, sigma: float, dim: int, n_params: int) -> float:
    """Torr's GRIC for 4-D correspondence data: lower is better."""
    n = len(err_px)
    rho = np.minimum((err_px / sigma) ** 2, 2.0 * (4 - dim))
    return float(rho.sum() + np.log(4) * dim * n + np.log(4 * n) * n_params)


def _depths(R, t, x0, x1):
    """Return depths in both cameras and the parallax angle (rad) of triangulated matches."""
    a, b = homogeneous(x0) @ R.T, homogeneous(x1)
    aa, bb, ab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    at, bt = a @ t, b @ t
    det = ab * ab - aa * bb
    det = np.where(np.abs(det) < 1e-15, -1e-15, det)
    z0, z1 = (at * bb - ab * bt) / det, (ab * at - aa * bt) / det
    parallax = np.arcsin(np.clip(np.sqrt(np.maximum(-det, 0) / (aa * bb)), 0, 1))
    return z0, z1, parallax


def _in_front(R, t, x0, x1, min_parallax: float) -> np.ndarray:
    """Cheirality: False only for points confidently behind a camera (enough parallax)."""
    z0, z1, parallax = _depths(R, t, x0, x1)
    return ((z0 > 0) & (z1 > 0)) | (parallax < min_parallax)


def _kabsch(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Return the rotation R minimizing |b1 - R b0| over unit bearing vectors."""
    b0 = homogeneous(x0)
    b1 = homogeneous(x1)
    b0 /= np.linalg.norm(b0, axis=1, keepdims=True)
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    u, _, vt = np.linalg.svd(b1.T @ b0)
    return u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt


def _spread_px(x: np.ndarray, f: float) -> float:
    """Return the standard deviation (pixels) of points across their principal line."""
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    return float(f * s[-1] / np.sqrt(len(x)))


def _essential(x0, x1, f, ransac_px, confidence):
    """Return (E, inlier mask) in normalized coordinates, or (None, None)."""
    Kf = np.diag([f, f, 1.0])
    try:
        E, mask = cv2.findEssentialMat(x0 * f, x1 * f, Kf, method=cv2.USAC_MAGSAC,
                                       prob=confidence, threshold=ransac_px, maxIters=10000)
    except cv2.error as exc:
        logger.debug('findEssentialMat failed: %s', exc)
        return None, None
    if E is None or mask is None or E.shape[0] < 3 or not np.isfinite(E[:3]).all():
        return None, None
    return E[:3], mask.ravel() > 0


def _homography(x0, x1, f, ransac_px, confidence):
    """Return (H, inlier mask) in normalized coordinates, or (None, None)."""
    Hf, mask = homography_from_matches(x0 * f, x1 * f, ransac_px, confidence)
    if Hf is None or not mask.any():
        return None, None
    Kf = np.diag([f, f, 1.0])
    return np.linalg.inv(Kf) @ Hf @ Kf, mask


def _pose_from_essential(E, x0, x1, inl, min_parallax):
    """Return (R, t, in-front mask) of the cheirality-consistent decomposition of E."""
    R1, R2, t = cv2.decomposeEssentialMat(E)
    best = None
    for R, tt in ((R1, t), (R1, -t), (R2, t), (R2, -t)):
        front = _in_front(R, tt.ravel(), x0[inl], x1[inl], min_parallax)
        if best is None or front.sum() > best[2].sum():
            best = (R, tt.ravel(), front)
    R, t, front = best
    mask = inl.copy()
    mask[np.flatnonzero(inl)] = front
    return R, t / np.linalg.norm(t), mask


def _decompose(H: np.ndarray) -> list:
    """Return the (R, unit t) solutions of a normalized-coordinates homography (Malis)."""
    s = np.linalg.svd(H, compute_uv=False)
    _, rotations, translations, _ = cv2.decomposeHomographyMat(H / s[1], np.eye(3))
    return [(R, t.ravel() / np.linalg.norm(t)) for R, t in zip(rotations, translations)
            if np.linalg.norm(t) > 1e-12]


def _same_pose(a: tuple, b: tuple) -> bool:
    """Return whether two (R, t) are one solution (0.5 deg, 2 deg; the sign of t aside)."""
    angle = angle_deg(a[1], b[1])
    return rotation_error_deg(a[0], b[0]) <= 0.5 and min(angle, 180.0 - angle) <= 2.0


def _pose_from_homography(H, x0, x1, inl, min_parallax):
    """Return (R, t, mask, reason): the decomposition of H whose points are all visible."""
    cands = []
    for R, t in _decompose(H):
        front = _in_front(R, t, x0[inl], x1[inl], min_parallax)
        cands.append((front.mean(), R, t, front))
    if not cands:
        return None, None, None, 'degenerate: homography has no translation to decompose'
    best = max(c[0] for c in cands)
    cands = [c for c in cands if c[0] >= best - 0.02]
    distinct = [c for c in cands[1:] if not _same_pose(c[1:3], cands[0][1:3])]
    if distinct:
        a, b = cands[0], distinct[0]
        return None, None, None, (
            'degenerate: planar scene, two poses explain the matches (homography '
            f'decomposition ambiguity: rotations {rotation_error_deg(a[1], b[1]):.1f} deg, '
            f'translations {angle_deg(a[2], b[2]):.1f} deg apart); off-plane structure '
            'in view resolves it')
    _, R, t, front = cands[0]
    mask = inl.copy()
    mask[np.flatnonzero(inl)] = front
    return R, t, mask, ''


def _off_plane_support(fit, x0, x1, f, ransac_px, min_parallax):
    """
    Return the best essential pose and how strongly the off-plane matches single it out.

    A plane's homography has two decompositions (R, t, n), and both explain every match on
    the plane: the essential matrix of a planar scene is two-fold ambiguous, and a RANSAC fit
    on a dominant plane can settle on the wrong twin. Candidates: the essential solution and
    the homography's decompositions, each refined on all inliers of either model, which moves
    a twin to the true pose when off-plane matches pull it there. The lowest robust cost wins
    (B); the next best other solution, refined or (when refining merged it into B) as
    decomposed, is its twin (T).

    Support is a sign test, free of the shape of the noise distribution: a match
    discriminates when it fits one pose (Sampson error < FIT_SIGMAS sigma) and misses the
    other, and counts only when it is off the plane (homography transfer error >=
    OFF_PLANE_SIGMAS sigma). On a plane each such match is noise, as likely to favour either
    pose: n_B ~ Binomial(n_B + n_T, 1/2), and p = P(X >= n_B) is the chance that noise
    favours B this clearly. Structure off the plane fits only the true pose: n_T stays near
    zero while n_B grows with it. OFF_PLANE_SIGMAS is twice FIT_SIGMAS because real matchers'
    errors are not symmetric at a few sigma: blur and resampling shift keypoints along the
    image motion, that is along the true epipolar lines, which looks like shallow depth.

    :return: namespace with R, t, inl (B's pose and cheirality-checked inliers), p (None when
        the homography has no solution other than B) and counts (n_B, n_T).
    """
    pool, sigma = fit.pool, fit.sigma
    R, t, inl = _pose_from_essential(fit.E, x0, x1, fit.e_inl, min_parallax)
    if inl.sum() >= MIN_MATCHES:
        R, t = refine_pose(R, t, x0[inl], x1[inl], f, scale_px=ransac_px)
    refined, seeds = [(R, t)], []
    for pose in _decompose(fit.H):  # two solutions, each with t and -t: one epipolar geometry
        if not any(_same_pose(pose, c) for c in refined + seeds):
            seeds.append(pose)
    for pose in seeds:
        pose = refine_pose(*pose, x0[pool], x1[pool], f, scale_px=ransac_px, iterations=30)
        if not any(_same_pose(pose, c) for c in refined):
            refined.append(pose)

    def sampson(pose):
        return sampson_px(skew(pose[1]) @ pose[0], x0, x1, f)

    def cost(pose):
        return float(np.sum(np.log1p((sampson(pose)[pool] / ransac_px) ** 2)))

    best = min(refined, key=cost)
    if best is not refined[0]:  # twin-seeded: its own inliers, cheirality and refinement
        R, t, inl = _pose_from_essential(skew(best[1]) @ best[0], x0, x1,
                                         sampson(best) < ransac_px, min_parallax)
        if inl.sum() >= MIN_MATCHES:
            R, t = refine_pose(R, t, x0[inl], x1[inl], f, scale_px=ransac_px)
    others = [c for c in refined if c is not best]
    if not others and seeds:  # refining merged the twins: test the decomposed one
        others = [max(seeds, key=lambda c: rotation_error_deg(c[0], best[0]))]
        others = [c for c in others if not _same_pose(c, best)]
    if not others:
        return SimpleNamespace(R=R, t=t, inl=inl, p=None, counts=(0, 0))
    fit_b = sampson(best) < FIT_SIGMAS * sigma
    fit_t = sampson(min(others, key=cost)) < FIT_SIGMAS * sigma
    off = transfer_px(fit.H, x0, x1, f) >= OFF_PLANE_SIGMAS * sigma
    n_b, n_t = int(np.sum(off & fit_b & ~fit_t)), int(np.sum(off & fit_t & ~fit_b))
    p = sum(math.comb(n_b + n_t, k) for k in range(n_b, n_b + n_t + 1)) / 2 ** (n_b + n_t)
    return SimpleNamespace(R=R, t=t, inl=inl, p=float(p), counts=(n_b, n_t))


def _select_model(x0, x1, f, method, ransac_px, confidence):
    """
    Fit the candidate models and pick one by GRIC; return a reason string on failure.

    :return: namespace with E, e_inl, H, h_inl (None when not fitted), pool (inliers of any
        model), R_rot, err_rot (rotation-only model and its errors), sigma and choice.
    """
    E, e_inl = _essential(x0, x1, f, ransac_px, confidence) if method != 'homography' \
        else (None, None)
    H, h_inl = _homography(x0, x1, f, ransac_px, confidence) if method != 'essential' \
        else (None, None)
    if E is None and H is None:
        what = 'homography' if method == 'homography' else 'essential matrix'
        return f'degenerate: no {what} fits the matches'
    pool = np.zeros(len(x0), bool)
    for m in (e_inl, h_inl):
        if m is not None:
            pool |= m
    if pool.sum() < MIN_MATCHES:
        return f'not enough inliers ({pool.sum()} < {MIN_MATCHES})'

    # Rotation-only model, fit on the homography's (else the essential's) inliers.
    seed = h_inl if h_inl is not None and h_inl.sum() >= 3 else pool
    R_rot = _kabsch(x0[seed], x1[seed])
    err_rot = transfer_px(R_rot, x0, x1, f)
    if E is not None:
        # The median of a chi^2(1) variable is 0.455: Sampson errors are 1-D.
        e = sampson_px(E, x0[e_inl], x1[e_inl], f)
        sigma = max(float(np.sqrt(np.median(e ** 2) / 0.455)), MIN_SIGMA_PX)
    else:
        e = transfer_px(H, x0[h_inl], x1[h_inl], f)
        sigma = max(float(np.sqrt(np.median(e ** 2) / 1.386)), MIN_SIGMA_PX)
    gric = {'rotation': _gric(err_rot[pool], sigma, 2, 3)}
    if E is not None:
        gric['essential'] = _gric(sampson_px(E, x0[pool], x1[pool], f), sigma, 3, 5)
    if H is not None:
        gric['homography'] = _gric(transfer_px(H, x0[pool], x1[pool], f), sigma, 2, 8)
    choice = min(gric, key=gric.get)
    logger.debug('GRIC %s (sigma %.2f px) -> %s', gric, sigma, choice)
    return SimpleNamespace(E=E, e_inl=e_inl, H=H, h_inl=h_inl, pool=pool, R_rot=R_rot,
                           err_rot=err_rot, sigma=sigma, choice=choice)


def _rotation_result(fit, x0, x1, f, ransac_px, full, n, min_inliers) -> PoseResult:
    """
    Return the flagged result of a pure rotation / zero motion, with its rotation.

    The rotation counts as known (`rotation_known`) with at least `min_inliers` inliers.
    """
    inl = fit.pool & (fit.err_rot < 2.0 * ransac_px)
    angle = rotation_error_deg(fit.R_rot, np.eye(3))
    # Zero motion: the rotation moves the image by less than the inlier threshold.
    if f * np.deg2rad(angle) < ransac_px:
        flow = float(np.median(np.linalg.norm(x1[fit.pool] - x0[fit.pool], axis=1)) * f)
        reason = (f'zero motion: the matches do not move (median flow {flow:.2f} px); '
                  'pose unobservable')
    else:
        reason = (f'pure rotation ({angle:.2f} deg) without parallax: translation direction '
                  'is unobservable')
    res = failed(reason, n, 'homography', fit.R_rot, full(inl))
    res.rotation_known = bool(inl.sum() >= min_inliers)
    if inl.sum() >= 3:
        res.covariance = pose_covariance(fit.R_rot, np.zeros(3), x0[inl], x1[inl], f,
                                         rotation_only=True)
    return res


def _focal(camera0: CameraModel, camera1: CameraModel) -> float:
    return float(np.mean([camera0.K[0, 0], camera0.K[1, 1], camera1.K[0, 0], camera1.K[1, 1]]))


def relative_pose(kpts0: np.ndarray, kpts1: np.ndarray, camera0: CameraModel,
                  camera1: CameraModel, *, method: str = 'auto', ransac_px: float = 1.0,
                  confidence: float = 0.9999, min_inliers: int = 15,
                  baseline: np.ndarray | None = None) -> PoseResult:
    """
    Estimate the relative pose X1 = R X0 + t from matched pixels.

    :param kpts0: (N, 2) pixels in image 0 (original, distorted image).
    :param kpts1: (N, 2) matching pixels in image 1.
    :param method: 'auto' (rotation-only by GRIC, else the essential pose when off-plane
        matches single it out from the plane's twin, else the homography), 'essential' or
        'homography' (each still checked against rotation-only; 'essential' skips the planar
        check, as the papers' evaluation protocol does).
    :param ransac_px: inlier threshold in pixels (at the mean focal length of both cameras).
    :param min_inliers: fewer cheirality-consistent inliers fail the pair.
    :param baseline: (3,) calibrated t (metres) for stereo: t is scaled to its length.
    :return: a `PoseResult`; degenerate data gives ok=False and a reason, never an exception.
    :raises ValueError: for mismatched shapes, an unknown method or an invalid camera.
    """
    kpts0, kpts1 = np.asarray(kpts0, np.float64), np.asarray(kpts1, np.float64)
    if kpts0.ndim != 2 or kpts0.shape[-1] != 2 or kpts0.shape != kpts1.shape:
        raise ValueError(f'kpts0 and kpts1 must both be (N, 2) matched pixels, got '
                         f'{kpts0.shape} and {kpts1.shape}')
    if method not in ('auto', 'essential', 'homography'):
        raise ValueError(f'unknown pose method {method!r}; choose auto, essential or homography')
    if baseline is not None:
        baseline = np.asarray(baseline, np.float64).ravel()
        if baseline.shape != (3,) or not np.isfinite(baseline).all() or not baseline.any():
            raise ValueError(f'baseline must be a finite non-zero 3-vector, got {baseline}')
    camera0.validate()
    camera1.validate()
    n = len(kpts0)
    x0, x1 = camera0.undistort(kpts0), camera1.undistort(kpts1)
    good = np.isfinite(x0).all(1) & np.isfinite(x1).all(1)
    idx = np.flatnonzero(good)
    if len(idx) < MIN_MATCHES:
        return failed(f'not enough matches ({len(idx)} < {MIN_MATCHES})', n)
    x0, x1 = x0[idx], x1[idx]
    f = _focal(camera0, camera1)
    for i, x in enumerate((x0, x1)):
        if _spread_px(x, f) < MIN_SPREAD_PX:
            return failed(f'degenerate: matches lie on a line in image {i} (spread '
                          f'{_spread_px(x, f):.2f} px across it)', n)

    def full(mask):
        out = np.zeros(n, bool)
        out[idx[mask]] = True
        return out

    fit = _select_model(x0, x1, f, method, ransac_px, confidence)
    if isinstance(fit, str):
        return failed(fit, n)
    E, e_inl, H, h_inl, choice = fit.E, fit.e_inl, fit.H, fit.h_inl, fit.choice
    min_parallax = 2.0 * ransac_px / f

    if choice == 'rotation':
        return _rotation_result(fit, x0, x1, f, ransac_px, full, n, min_inliers)
    R = support = None
    # A plane can make E ambiguous only if it carries most of E's inliers (the median, as
    # sigma is their median-based noise scale); then, however dominant it is, the essential
    # pose holds when off-plane matches single it out from its planar twin.
    if E is not None and H is not None and np.median(
            transfer_px(H, x0[e_inl], x1[e_inl], f)) < OFF_PLANE_SIGMAS * fit.sigma:
        support = _off_plane_support(fit, x0, x1, f, ransac_px, min_parallax)
        if support.p is not None:
            choice = 'essential' if support.p < SUPPORT_P else 'homography'
        if choice == 'essential':
            R, t, inl = support.R, support.t, support.inl
        logger.debug('off-plane support p %s (%d for / %d against) -> %s', support.p,
                     *support.counts, choice)
    if choice == 'essential':
        if R is None:
            R, t, inl = _pose_from_essential(E, x0, x1, e_inl, min_parallax)
            if inl.sum() >= MIN_MATCHES:
                R, t = refine_pose(R, t, x0[inl], x1[inl], f, scale_px=ransac_px)
        model = 'essential'
    else:
        R, t, inl, reason = _pose_from_homography(H, x0, x1, h_inl, min_parallax)
        if R is None:
            if support is not None and support.p is not None:
                reason += (f', but the matches off this plane do not single one out '
                           f'({support.counts[0]} fit one pose, {support.counts[1]} the other: '
                           f'sign test p {support.p:.2g} >= {SUPPORT_P:g})')
            return failed(reason, n, 'homography', inliers=full(h_inl))
        model = 'homography'
    if inl.sum() < min_inliers:
        return failed(f'too few inliers ({inl.sum()} < {min_inliers}) after the '
                      f'{model} fit and cheirality check', n, model, inliers=full(inl))
    for i, x in enumerate((x0, x1)):
        if _spread_px(x[inl], f) < MIN_SPREAD_PX:
            return failed(f'degenerate: inliers lie on a line in image {i}', n, model,
                          inliers=full(inl))
    angle = None
    if baseline is not None:
        angle = angle_deg(t, baseline)
        t = t * np.linalg.norm(baseline)
        model = 'stereo'
    cov = pose_covariance(R, t, x0[inl], x1[inl], f, scale_known=baseline is not None)
    res = PoseResult(True, '', model, R, t, full(inl), cov, baseline is not None,
                     int(inl.sum()), angle)
    if angle is not None and angle > STEREO_MAX_ANGLE_DEG:
        res.ok, res.reason = False, (
            f'stereo: estimated baseline direction is {angle:.1f} deg from the calibrated one '
            f'(limit {STEREO_MAX_ANGLE_DEG:g}); check the extrinsic calibration')
    return res

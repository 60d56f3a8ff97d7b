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
Sub-pixel refinement of matches by photometric alignment (numpy + OpenCV, no ROS, no torch).

A detector places the same scene point a fraction of a pixel apart in two images (ALIKED: a
median of ~0.3-0.6 px on real pairs). Keeping the image-0 keypoint fixed, this moves the
image-1 keypoint so that the patch around it best matches the patch around the image-0
keypoint: Gauss-Newton on the zero-mean, unit-norm patch difference (a differentiable
ZNCC), with the patch of image 1 sampled through the local affine map between the images
(fitted on the neighbouring matches, so rotation, zoom and foreshortening do not bias it).
A match keeps its original position when its patch lacks texture in two directions, leaves
the image, moves by more than `max_shift_px` or ends below `min_zncc`. Those two defaults
(1 px, 0.9) were chosen on ../shared/eval: detector errors are sub-pixel (on KITTI 90% of
the accepted corrections are below 0.8 px, at ZNCC ~0.99), while on wide-baseline indoor
pairs the looser 2 px / 0.7 accepted 1-2 px "corrections" at ZNCC 0.6-0.85 that cost pose
accuracy.
"""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Refinement:
    """
    Result of `refine_matches`.

    :param kpts1: (M, 2) refined image-1 positions (unrefined matches keep theirs).
    :param refined: (M,) bool, True where the position was moved.
    :param zncc: (M,) final normalized cross-correlation of the patches (nan if not computed).
    """

    kpts1: np.ndarray
    refined: np.ndarray
    zncc: np.ndarray


def to_grey_float(image: np.ndarray) -> np.ndarray:
    """Return a float32 grey image (any 2-D or HxWxC uint8/uint16/float image)."""
    image = np.asarray(image)
    if image.ndim == 3:
        if image.shape[2] == 1:
            image = image[..., 0]
        else:
            image = image[..., :3].astype(np.float32)
            image = image @ np.array([0.299, 0.587, 0.114], np.float32)
    if image.ndim != 2:
        raise ValueError(f'expected an HxW or HxWxC image, got shape {image.shape}')
    return np.ascontiguousarray(image, np.float32)


def local_linear_maps(kpts0: np.ndarray, kpts1: np.ndarray, neighbours: int = 12) -> np.ndarray:
    """
    Return (M, 2, 2) linear parts A of the affine maps x1 ~ A x0 + b around each match.

    Fitted by iteratively reweighted least squares (Cauchy weights) on the match and its
    nearest matches in image 0, so one wrong neighbour does not tilt the map. Matches with
    too few neighbours get the identity.
    """
    count = len(kpts0)
    maps = np.tile(np.eye(2), (count, 1, 1))
    k = min(neighbours, count)
    if k < 4:
        return maps
    points = np.ascontiguousarray(kpts0, np.float32)
    # OpenCV's brute-force k-nearest search: O(M^2) distances, but in SIMD C++.
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(points, points, k=k)
    nearest = np.array([[m.trainIdx for m in row] for row in knn], np.int64)
    x = kpts0[nearest] - kpts0[:, None, :]
    y = kpts1[nearest] - kpts1[:, None, :]
    weights = np.ones((count, k))
    for _ in range(3):
        xw = x * weights[..., None]
        xtx = np.einsum('mki,mkj->mij', xw, x) + 1e-6 * np.eye(2)
        xty = np.einsum('mki,mkj->mij', xw, y)
        maps = np.linalg.solve(xtx, xty).transpose(0, 2, 1)
        resid = np.linalg.norm(y - np.einsum('mij,mkj->mki', maps, x), axis=-1)
        scale = 1.5 * np.median(resid, axis=1, keepdims=True) + 0.5
        weights = 1.0 / (1.0 + (resid / scale) ** 2)
    bad = ~np.isfinite(maps).all(axis=(1, 2)) | (np.abs(np.linalg.det(maps)) < 1e-3)
    maps[bad] = np.eye(2)
    return maps


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` at (M, P, 2) points -> (M, P) float32."""
    grid = points.astype(np.float32)
    rows = 30000  # cv2.remap's maps must have fewer than 32767 rows
    return np.concatenate([
        cv2.remap(image, block[..., 0], block[..., 1], cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE)
        for block in (grid[i:i + rows] for i in range(0, max(len(grid), 1), rows))
    ]) if len(grid) else np.zeros(points.shape[:2], np.float32)


def _normalize(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = patches - patches.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.maximum(norm, 1e-6), norm[:, 0]


def refine_matches(image0: np.ndarray, image1: np.ndarray, kpts0: np.ndarray,
                   kpts1: np.ndarray, radius: int = 5, iterations: int = 8,
                   max_shift_px: float = 1.0, min_zncc: float = 0.9,
                   neighbours: int = 12) -> Refinement:
    """
    Refine the image-1 positions of matches to sub-pixel accuracy (image-0 positions fixed).

    :param image0: image 0 (grey or colour, any dtype), the one `kpts0` were found in.
    :param image1: image 1.
    :param kpts0: (M, 2) matched keypoints in image 0, pixels (integer = pixel centre).
    :param kpts1: (M, 2) their matches in image 1.
    :param radius: patch half-size in pixels (patches are (2 radius + 1)^2).
    :param iterations: Gauss-Newton steps (each step is clipped to 0.5 px).
    :param max_shift_px: larger corrections are rejected (the match keeps its position).
    :param min_zncc: a final patch correlation below this rejects the correction.
    :param neighbours: matches used to fit each local affine map.
    """
    kpts0 = np.asarray(kpts0, np.float64).reshape(-1, 2)
    kpts1 = np.asarray(kpts1, np.float64).reshape(-1, 2)
    if len(kpts0) != len(kpts1):
        raise ValueError(f'{len(kpts0)} image-0 keypoints but {len(kpts1)} image-1 keypoints')
    count = len(kpts0)
    result = Refinement(kpts1.copy(), np.zeros(count, bool), np.full(count, np.nan))
    finite = np.isfinite(kpts0).all(1) & np.isfinite(kpts1).all(1)
    if not finite.any():
        return result
    grey0, grey1 = to_grey_float(image0), to_grey_float(image1)
    idx = np.flatnonzero(finite)
    k0, k1 = kpts0[idx], kpts1[idx]
    span = np.arange(-radius, radius + 1, dtype=np.float64)
    offsets = np.stack(np.meshgrid(span, span), -1).reshape(-1, 2)
    size = len(offsets)

    template, tnorm = _normalize(_sample(grey0, k0[:, None, :] + offsets[None]))
    maps = local_linear_maps(k0, k1, neighbours)
    warped = np.einsum('mij,pj->mpi', maps, offsets)
    grad_x = cv2.Sobel(grey1, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    grad_y = cv2.Sobel(grey1, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    shift = np.zeros_like(k1)
    # Texture needed in two directions: at every step, the smaller eigenvalue of the image-1
    # patch's structure tensor (normalized gradients) must be a fair share of the larger one.
    conditioned = np.ones(len(idx), bool)
    for _ in range(iterations):
        points = k1[:, None, :] + warped + shift[:, None, :]
        patch = _sample(grey1, points)
        centred = patch - patch.mean(axis=1, keepdims=True)
        norm = np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)
        gx = _sample(grad_x, points)
        gy = _sample(grad_y, points)
        gx = (gx - gx.mean(axis=1, keepdims=True)) / norm
        gy = (gy - gy.mean(axis=1, keepdims=True)) / norm
        resid = centred / norm - template
        hxx, hxy, hyy = (gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)
        bx, by = -(gx * resid).sum(1), -(gy * resid).sum(1)
        det = hxx * hyy - hxy ** 2
        trace = hxx + hyy
        small = trace / 2 - np.sqrt(np.maximum((hxx - hyy) ** 2 / 4 + hxy ** 2, 0))
        conditioned &= small > 0.05 * trace
        det = np.where(np.abs(det) > 1e-12, det, np.inf)
        step = np.stack([(hyy * bx - hxy * by) / det, (hxx * by - hxy * bx) / det], 1)
        shift += np.clip(step, -0.5, 0.5)
    final = k1[:, None, :] + warped + shift[:, None, :]
    zncc = (_normalize(_sample(grey1, final))[0] * template).sum(1)
    # Flat patches (std below 0.5% of image 0's range) carry no position.
    flat = tnorm / np.sqrt(size) <= 5e-3 * max(float(grey0.max() - grey0.min()), 1e-6)
    h1, w1 = grey1.shape
    h0, w0 = grey0.shape
    inside = ((final[..., 0] >= 0).all(1) & (final[..., 0] <= w1 - 1).all(1)
              & (final[..., 1] >= 0).all(1) & (final[..., 1] <= h1 - 1).all(1)
              & (k0[:, 0] >= radius) & (k0[:, 0] <= w0 - 1 - radius)
              & (k0[:, 1] >= radius) & (k0[:, 1] <= h0 - 1 - radius))
    ok = (conditioned & inside & ~flat & np.isfinite(shift).all(1)
          & (np.linalg.norm(shift, axis=1) <= max_shift_px) & (zncc >= min_zncc))
    result.kpts1[idx[ok]] = k1[ok] + shift[ok]
    result.refined[idx[ok]] = True
    result.zncc[idx] = zncc
    return result

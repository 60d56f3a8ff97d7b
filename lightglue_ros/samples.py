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

"""Embedded default inputs: real photos from scikit-image's wheel under known warps."""

import cv2
import numpy as np

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')


def photo(name: str = 'astronaut') -> np.ndarray:
    """
    Return a scikit-image sample photo as (H, W, 3) uint8 RGB.

    :raises ValueError: when scikit-image is missing or the name is unknown.
    """
    if name not in PHOTOS:
        raise ValueError(f'unknown sample photo {name!r}; choose one of {", ".join(PHOTOS)}')
    try:
        from skimage import data
    except ImportError:
        raise ValueError('the sample photos come from scikit-image: pip install scikit-image, '
                         'or pass your own images') from None
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def homography(shape: tuple, angle_deg: float = 12.0, scale: float = 0.85,
               shift: tuple = (20.0, -15.0), perspective: tuple = (2e-4, -1e-4)) -> np.ndarray:
    """Return a 3x3 homography x1 ~ H x0: rotation and scale about the centre, plus tilt."""
    h, w = shape[:2]
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    a = np.deg2rad(angle_deg)
    rot = np.array([[scale * np.cos(a), -scale * np.sin(a), 0],
                    [scale * np.sin(a), scale * np.cos(a), 0],
                    [0, 0, 1]], np.float64)
    back = np.array([[1, 0, w / 2 + shift[0]], [0, 1, h / 2 + shift[1]], [0, 0, 1]], np.float64)
    tilt = np.array([[1, 0, 0], [0, 1, 0], [perspective[0], perspective[1], 1]], np.float64)
    mat = back @ rot @ tilt @ centre
    return mat / mat[2, 2]


def warped_pair(name: str = 'astronaut', **warp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (image0, image1, H) where image1 = image0 warped by H (x1 ~ H x0)."""
    image0 = photo(name)
    mat = homography(image0.shape, **warp)
    image1 = cv2.warpPerspective(image0, mat, (image0.shape[1], image0.shape[0]),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return image0, image1, mat


def reprojection_error(kpts0: np.ndarray, kpts1: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Return |H x0 - x1| in pixels for matched keypoints (K, 2) each."""
    if len(kpts0) == 0:
        return np.zeros(0)
    pts = cv2.perspectiveTransform(kpts0.reshape(-1, 1, 2).astype(np.float64), mat)[:, 0]
    return np.linalg.norm(pts - kpts1, axis=1)

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
SuperPoint runtime: network IR, then max-pool NMS, top-k and descriptor sampling in numpy.

Follows cvg/LightGlue's superpoint.py: the image is converted to grey, keypoints are the
NMS-surviving pixels of the dense score map away from the border and above the threshold
(raster order, or by decreasing score when cut to `max_keypoints`); descriptors are sampled
bilinearly from the coarse map with the reference's coordinate normalisation, L2-normalised.
"""

import cv2
from lightglue_ros.runtime.extractors import Extractor
from lightglue_ros.runtime.ovcore import infer
import numpy as np

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # the reference's RGB -> grey
CELL = 8


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return the (H, W) float32 grey image of an (H, W, 3) RGB or (H, W[, 1]) grey image."""
    if image.ndim == 3 and image.shape[2] == 3:
        r, g, b = (np.float32(w) for w in GREY_WEIGHTS)
        return image[..., 0] * r + image[..., 1] * g + image[..., 2] * b
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return image.reshape(image.shape[:2])
    raise ValueError(f'SuperPoint expects an (H, W, 3) RGB or (H, W) grey image, got shape '
                     f'{image.shape}')


def simple_nms(scores: np.ndarray, radius: int) -> np.ndarray:
    """
    Max-pool NMS of SuperPoint: zero every score that is not a maximum in its window.

    Two extra rounds recover maxima that are only suppressed by a suppressed neighbour.

    :param scores: (H, W) float32, non-negative.
    :return: (H, W) float32, the scores at the kept maxima and 0 elsewhere.
    """
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    # cv2.dilate pads with the minimum value, as max_pool2d pads with -inf.
    max_mask = scores == cv2.dilate(scores, kernel)
    for _ in range(2):
        suppressed = cv2.dilate(max_mask.view(np.uint8), kernel).view(bool)
        rest = np.where(suppressed, np.float32(0), scores)
        max_mask |= (rest == cv2.dilate(rest, kernel)) & ~suppressed
    return np.where(max_mask, scores, np.float32(0))


def sample_descriptors(keypoints: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """
    Bilinearly sample the coarse descriptor map at keypoints, as the reference does.

    The reference maps pixel x to grid_sample's [-1, 1] with (x - 3.5) / (8 w - 4.5) and
    align_corners=True; out-of-map neighbours count as zero.

    :param keypoints: (N, 2) float32 (x, y) pixels.
    :param descriptors: (h, w, D) float32 coarse map.
    :return: (N, D) float32 descriptors, L2-normalised.
    """
    h, w, dim = descriptors.shape
    half = np.float32(CELL / 2 - 0.5)
    scale = np.array([w * CELL - CELL / 2 - 0.5, h * CELL - CELL / 2 - 0.5], np.float32)
    grid = (keypoints - half) / scale * np.float32(2) - np.float32(1)
    size = np.array([w - 1, h - 1], np.float32)
    pos = (grid + np.float32(1)) / np.float32(2) * size
    low = np.floor(pos)
    frac_high = pos - low
    frac_low = (low + np.float32(1)) - pos
    low = low.astype(np.int64)
    out = np.zeros((len(keypoints), dim), np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            x = low[:, 0] + dx
            y = low[:, 1] + dy
            weight = (frac_high[:, 0] if dx else frac_low[:, 0]) * \
                (frac_high[:, 1] if dy else frac_low[:, 1])
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            weight = np.where(inside, weight, np.float32(0))
            out += weight[:, None] * descriptors[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, np.float32(1e-12))


def detect(scores: np.ndarray, radius: int, border: int, threshold: float,
           max_keypoints: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return keypoints (N, 2) float32 (x, y) and scores (N,) from the dense score map."""
    scores = simple_nms(scores, radius)
    if border:
        scores[:border] = -1
        scores[:, :border] = -1
        scores[-border:] = -1
        scores[:, -border:] = -1
    rows, cols = np.nonzero(scores > threshold)
    values = scores[rows, cols]
    if max_keypoints is not None and max_keypoints < len(values):
        order = np.argsort(-values, kind='stable')[:max(max_keypoints, 0)]
        rows, cols, values = rows[order], cols[order], values[order]
    return np.stack([cols, rows], axis=-1).astype(np.float32), values


class SuperPointExtractor(Extractor):
    """
    SuperPoint keypoints and descriptors from the network IR.

    Options (manifest extractor section, overridable): `max_keypoints` (None keeps all),
    `detection_threshold` (0.0005), `nms_radius` (4), `remove_borders` (4). Any input size
    works; like the reference, only the top-left H // 8 * 8 x W // 8 * 8 pixels get scores.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def extract(self, image: np.ndarray) -> dict:
        """
        Detect and describe SuperPoint keypoints.

        :param image: (H, W, 3) float32 RGB in [0, 1] (or (H, W) grey), H and W >= 8.
        :return: `keypoints` (N, 2) float32 integer (x, y) pixels, `scores` (N,) float32,
            `descriptors` (N, 256) float32, unit length.
        """
        grey = to_grey(np.asarray(image, np.float32))
        height, width = grey.shape
        if height < CELL or width < CELL:
            raise ValueError(f'SuperPoint needs an image of at least {CELL}x{CELL} pixels, '
                             f'got {height}x{width}')
        request = self.request(height, width)
        infer(request, {0: grey[None, None]})
        scores = request.get_output_tensor(0).data[0].copy()
        coarse = request.get_output_tensor(1).data[0]

        keypoints, values = detect(scores, int(self.conf.get('nms_radius', 4)),
                                   int(self.conf.get('remove_borders', 4)),
                                   float(self.conf.get('detection_threshold', 0.0005)),
                                   self.conf.get('max_keypoints'))
        return {
            'keypoints': keypoints,
            'scores': values.astype(np.float32, copy=False),
            'descriptors': sample_descriptors(keypoints, coarse),
        }


EXTRACTOR_CLASS = SuperPointExtractor

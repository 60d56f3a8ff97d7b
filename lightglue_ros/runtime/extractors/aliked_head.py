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
The ALIKED descriptor head (SDDH): its descriptor map read at chosen pixels, and its dense part.

The reference's normalised descriptor map is cat(feat1, up2(feat2), up8(feat3), up32(feat4))
over channels, L2-normalised per pixel. The head reads it at each keypoint's KxK patch and at
the four corners of each deformable sample, so it is never built: `CompiledFeatures` computes
each pixel it reads with numba kernels (aliked_kernels), `DenseFeatures` with numpy gathers
and scipy sparse products (the fallback: same values to ~2e-6). `DenseHead` runs the dense
part (a 1x1 convolution per sample, SELU, the aggregation of the samples) in OpenVINO.
"""

import logging

from lightglue_ros.runtime.extractors import aliked_kernels
from lightglue_ros.runtime.ovcore import infer
import numpy as np
import openvino as ov
from openvino import opset13 as ops
from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)
SELU_ALPHA = np.float32(1.6732632423543772848170429916717)
SELU_SCALE = np.float32(1.0507009873554804934193349852946)


def selu(x: np.ndarray) -> np.ndarray:
    """Return SELU(x) = scale * (max(0, x) + alpha * expm1(min(0, x))) in float32."""
    neg = np.minimum(x, 0)
    np.expm1(neg, out=neg)
    neg *= SELU_ALPHA
    out = np.maximum(x, 0)
    out += neg
    out *= SELU_SCALE
    return out


def bilinear_weights(x: np.ndarray, y: np.ndarray, width: int, height: int) -> tuple:
    """
    Return corner flat indices (4, ...) and weights (4, ...) for zero-padded bilinear.

    Matches grid_sample(align_corners=True, padding_mode='zeros') after unnormalising:
    corners outside the (height, width) map get weight 0 (their index is clipped).
    """
    x0 = np.floor(x)
    y0 = np.floor(y)
    x1 = x0 + 1
    y1 = y0 + 1
    corners = ((x0, y0, (x1 - x) * (y1 - y)), (x1, y0, (x - x0) * (y1 - y)),
               (x0, y1, (x1 - x) * (y - y0)), (x1, y1, (x - x0) * (y - y0)))
    index = []
    weight = []
    for cx, cy, w in corners:
        inside = (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        cxi = np.clip(cx, 0, width - 1).astype(np.int64)
        cyi = np.clip(cy, 0, height - 1).astype(np.int64)
        index.append(cyi * width + cxi)
        weight.append(np.where(inside, w, np.float32(0)))
    return np.stack(index), np.stack(weight)


def _interp_table(size_out: int, size_in: int) -> tuple:
    """Return (i0, i1, w0, w1) of align_corners=True bilinear upsampling along one axis."""
    scale = np.float32((size_in - 1) / (size_out - 1)) if size_out > 1 else np.float32(0)
    src = np.arange(size_out, dtype=np.float32) * scale
    i0 = src.astype(np.int64)
    w1 = np.clip(src - i0, 0, 1).astype(np.float32)
    i1 = np.minimum(i0 + 1, size_in - 1)
    return i0, i1, np.float32(1) - w1, w1


class DenseFeatures:
    """
    The reference's normalised descriptor map, evaluated at chosen pixels only.

    The full map is cat(feat1, up2(feat2), up8(feat3), up32(feat4)) over channels at the
    padded resolution, cropped by the padding and L2-normalised per pixel.
    """

    def __init__(self, feats: list, pad_top: int, pad_left: int, width: int) -> None:
        self.pad = (pad_top, pad_left)
        self.width = width
        self.first = feats[0][0].reshape(-1, feats[0].shape[3])
        full_h, full_w = feats[0].shape[1:3]
        self.full_w = full_w
        self.dim = sum(f.shape[3] for f in feats)
        self.coarse = []  # (flat map, its width, row table or None, column table)
        for feat in feats[1:]:
            fmap = feat[0]
            rows = _interp_table(full_h, fmap.shape[0])
            if 4 * fmap.shape[0] <= full_h:
                # Small maps: interpolate every output row once, so that each pixel then
                # blends 2 entries instead of 4.
                fmap = rows[2][:, None, None] * fmap[rows[0]] \
                    + rows[3][:, None, None] * fmap[rows[1]]
                rows = None
            self.coarse.append((fmap.reshape(-1, fmap.shape[2]), fmap.shape[1], rows,
                                _interp_table(full_w, fmap.shape[1])))

    def at(self, pixels: np.ndarray) -> np.ndarray:
        """
        Return (P, D) normalised features at flat pixel indices of the unpadded image.

        Each coarse map's bilinear blend is a sparse (P, map pixels) matrix with 2 or 4
        entries per row times the map: about 3x faster than gathering the corners and
        blending them with small matrix products (measured at 480x640, 51k pixels).
        """
        ys, xs = np.divmod(pixels, self.width)
        ys += self.pad[0]
        xs += self.pad[1]
        out = np.empty((len(pixels), self.dim), np.float32)
        start = self.first.shape[1]
        out[:, :start] = self.first.take(ys * self.full_w + xs, axis=0)
        for fmap, width, rows, cols in self.coarse:
            c0, c1, wx0, wx1 = cols[0][xs], cols[1][xs], cols[2][xs], cols[3][xs]
            if rows is None:
                base = ys * width
                index = np.stack([base + c0, base + c1], 1)
                weight = np.stack([wx0, wx1], 1)
            else:
                r0, r1 = rows[0][ys] * width, rows[1][ys] * width
                wy0, wy1 = rows[2][ys], rows[3][ys]
                index = np.stack([r0 + c0, r0 + c1, r1 + c0, r1 + c1], 1)
                weight = np.stack([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], 1)
            end = start + fmap.shape[1]
            out[:, start:end] = _blend_rows(index, weight, len(fmap)) @ fmap
            start = end
        norm = np.sqrt(np.einsum('pc,pc->p', out, out))
        out /= np.maximum(norm, np.float32(1e-12))[:, None]
        return out

    def _unique(self, flat: np.ndarray) -> tuple:
        """Return (distinct pixels in order, position of each of `flat` among them)."""
        # A marker image beats sorting (np.unique) for many indices into a small image.
        marks = np.zeros(int(flat.max()) + 1, bool)
        marks[flat] = True
        unique = np.flatnonzero(marks)
        lookup = np.empty(len(marks), np.int64)
        lookup[unique] = np.arange(len(unique))
        return unique, lookup[flat]

    def gather(self, pixels: np.ndarray) -> np.ndarray:
        """
        Return features at flat pixel indices of any shape, each distinct pixel once.

        :return: pixels.shape + (D,) float32.
        """
        unique, positions = self._unique(pixels.ravel())
        return self.at(unique).take(positions, axis=0).reshape(*pixels.shape, self.dim)

    def sample(self, x: np.ndarray, y: np.ndarray, height: int, width: int,
               out: np.ndarray) -> None:
        """
        Write the map sampled bilinearly at image pixels (x, y), zeros outside, to out.

        The features of the distinct corners, then one sparse product of their weights (no
        (S, 4, D) copy).
        """
        index, weight = bilinear_weights(x, y, width, height)
        unique, positions = self._unique(index.T.ravel())
        out[:] = _blend_rows(positions.reshape(-1, 4), weight.T, len(unique)) @ self.at(unique)


class CompiledFeatures:
    """
    The same map as DenseFeatures, read by the compiled kernels (aliked_kernels).

    Nothing is precomputed but the (tiny) interpolation tables: each pixel's channels are
    computed where they are used.
    """

    def __init__(self, feats: list, pad_top: int, pad_left: int, width: int) -> None:
        self.pad = (pad_top, pad_left)
        self.width = width
        self.maps = [np.ascontiguousarray(feat[0]) for feat in feats]
        full_h, full_w = self.maps[0].shape[:2]
        channels = {fmap.shape[2] for fmap in self.maps}
        if len(channels) != 1 or not channels <= set(aliked_kernels.KERNELS):
            # The kernels index every map with one compiled-in count (no bounds checks).
            raise ValueError(f'the compiled head needs four maps of one channel count in '
                             f'{sorted(aliked_kernels.KERNELS)}, got {sorted(channels)}')
        self.dim = 4 * channels.pop()
        self.features_at, self.sample_at = aliked_kernels.KERNELS[self.dim // 4]
        rows = [_interp_table(full_h, fmap.shape[0]) for fmap in self.maps[1:]]
        cols = [_interp_table(full_w, fmap.shape[1]) for fmap in self.maps[1:]]
        self.tables = (np.array([[table[0], table[1]] for table in rows], np.int64),
                       np.array([[table[2], table[3]] for table in rows], np.float32),
                       np.array([[table[0], table[1]] for table in cols], np.int64),
                       np.array([[table[2], table[3]] for table in cols], np.float32))

    def gather(self, pixels: np.ndarray) -> np.ndarray:
        """Return features at flat pixel indices of any shape: pixels.shape + (D,)."""
        ys, xs = np.divmod(pixels.ravel(), self.width)
        out = np.empty((len(ys), self.dim), np.float32)
        self.features_at(ys + self.pad[0], xs + self.pad[1], *self.maps, *self.tables, out)
        return out.reshape(*pixels.shape, self.dim)

    def sample(self, x: np.ndarray, y: np.ndarray, height: int, width: int,
               out: np.ndarray) -> None:
        """Write the map sampled bilinearly at image pixels (x, y), zeros outside, to out."""
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            # The kernels would turn a NaN corner into an index: refuse instead.
            raise ValueError('non-finite descriptor sample positions (the extractor network '
                             'returned NaN or inf); check the model set')
        self.sample_at(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32),
                       height, width, self.pad[0], self.pad[1], *self.maps, *self.tables, out)


def _blend_rows(index: np.ndarray, weight: np.ndarray, columns: int):
    """
    Return the sparse (S, columns) matrix with weight[s, k] at (s, index[s, k]).

    Rows sum their entries in k order (as a written-out bilinear blend); a repeated index in
    a row (a clipped corner) is added twice, as the blend adds it.
    """
    rows, per_row = index.shape
    return csr_matrix((weight.ravel(), index.ravel(), np.arange(0, rows * per_row + 1, per_row)),
                      shape=(rows, columns))


def dense_head_model(sf_w: np.ndarray, agg_w: np.ndarray) -> ov.Model:
    """
    Build the SDDH head's dense part as an OpenVINO graph from its weights.

    Input (N * M, D) deformable samples; output (N, D') descriptors before the final L2
    normalisation: selu(samples @ sf_w) reshaped to (N, M * D) @ agg_w. SELU is written as
    scale * ELU(alpha), with the scale folded into agg_w, so that OpenVINO fuses the ELU
    into the first product (its SELU op ran as a reference kernel: 7 ms at 1024 keypoints).
    """
    samples = ops.parameter([-1, sf_w.shape[0]], np.float32, name='samples')
    hidden = ops.elu(ops.matmul(samples, ops.constant(sf_w), False, False), float(SELU_ALPHA))
    flat = ops.reshape(hidden, ops.constant(np.array([-1, agg_w.shape[0]], np.int64)), False)
    desc = ops.matmul(flat, ops.constant((agg_w * SELU_SCALE).astype(np.float32)), False, False)
    return ov.Model([desc], [samples], 'aliked_descriptor_head')


class DenseHead:
    """
    The head's dense part on an OpenVINO device, or in numpy where its graph cannot compile.

    Call with (N * M, D) samples; returns (N, D') descriptors before normalisation, valid until
    the next call.
    """

    def __init__(self, sf_w: np.ndarray, agg_w: np.ndarray, core: ov.Core, device: str,
                 config: dict) -> None:
        self.sf_w = sf_w
        self.agg_w = agg_w
        try:
            compiled = core.compile_model(dense_head_model(sf_w, agg_w), device, config)
            self._request = compiled.create_infer_request()
        except RuntimeError as exc:  # e.g. a device without dynamic shapes
            logger.warning('ALIKED descriptor head: its dense layers do not compile on %s (%s); '
                           'running them in numpy', device, str(exc).strip().splitlines()[0])
            self._request = None

    @property
    def in_openvino(self) -> bool:
        """Return whether the dense part runs in OpenVINO (else numpy)."""
        return self._request is not None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Return selu(samples @ sf_w) reshaped to (N, M * D) @ agg_w."""
        if self._request is None:
            return selu(samples @ self.sf_w).reshape(-1, self.agg_w.shape[0]) @ self.agg_w
        infer(self._request, {0: samples}, share_inputs=True, share_outputs=True)
        return self._request.get_output_tensor(0).data

    def close(self) -> None:
        """Release the infer request."""
        self._request = None

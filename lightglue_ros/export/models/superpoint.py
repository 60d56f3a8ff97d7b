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
SuperPoint (DeTone et al., CVPRW 2018), the Magic Leap network used by cvg/LightGlue.

Only the architecture is defined here. The trained weights (superpoint_v1.pth) are under
Magic Leap's non-commercial licence and are never shipped: the user passes the file. The IR
holds the network up to the dense scores (softmax, 8x8 depth-to-space) and the coarse,
L2-normalised descriptor map; NMS, top-k and descriptor sampling run in numpy.
"""

from pathlib import Path

from lightglue_ros.export.models.base import load_checkpoint
from lightglue_ros.export.models.base import load_strict
from lightglue_ros.export.models.base import Stage
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DESCRIPTOR_DIM = 256
CELL = 8  # the encoder downsamples 3 times by 2

default_conf = {
    'detection_threshold': 0.0005,  # keep scores strictly above this probability
    'nms_radius': 4,  # max-pool NMS window (2r+1)
    'remove_borders': 4,  # no keypoints this close to the image border
    'resize': 1024,  # long side the pipeline resizes to, as the reference extract()
}

MISSING_WEIGHTS = ('SuperPoint weights are not shipped (Magic Leap non-commercial licence): '
                   'pass --extractor-weights superpoint_v1.pth, e.g. from '
                   'https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/'
                   'superpoint_v1.pth, with --matcher-weights superpoint_lightglue.pth')


class SuperPoint(nn.Module):
    """
    SuperPoint for export: grey image (B, 1, H, W) in [0, 1].

    `forward` returns the dense keypoint probabilities (B, H8, W8), H8 = H // 8 * 8, and the
    coarse descriptors, L2-normalised, NHWC (B, H // 8, W // 8, 256).
    """

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = 64, 64, 128, 128, 256
        self.conv1a = nn.Conv2d(1, c1, 3, padding=1)
        self.conv1b = nn.Conv2d(c1, c1, 3, padding=1)
        self.conv2a = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv2b = nn.Conv2d(c2, c2, 3, padding=1)
        self.conv3a = nn.Conv2d(c2, c3, 3, padding=1)
        self.conv3b = nn.Conv2d(c3, c3, 3, padding=1)
        self.conv4a = nn.Conv2d(c3, c4, 3, padding=1)
        self.conv4b = nn.Conv2d(c4, c4, 3, padding=1)
        self.convPa = nn.Conv2d(c4, c5, 3, padding=1)
        self.convPb = nn.Conv2d(c5, CELL * CELL + 1, 1)
        self.convDa = nn.Conv2d(c4, c5, 3, padding=1)
        self.convDb = nn.Conv2d(c5, DESCRIPTOR_DIM, 1)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Return the shared encoder's output (B, 128, H / 8, W / 8)."""
        x = image
        pairs = ((self.conv1a, self.conv1b), (self.conv2a, self.conv2b),
                 (self.conv3a, self.conv3b), (self.conv4a, self.conv4b))
        for level, (first, second) in enumerate(pairs):
            if level:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(second(F.relu(first(x))))
        return x

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the dense scores (B, H8, W8) and the descriptor map NHWC (B, h, w, 256)."""
        x = self.encode(image)
        logits = self.convPb(F.relu(self.convPa(x)))
        # The 65th channel is "no keypoint in this cell"; 64 = one score per pixel of the cell.
        scores = F.pixel_shuffle(F.softmax(logits, 1)[:, :-1], CELL)[:, 0]
        descriptors = self.convDb(F.relu(self.convDa(x)))
        descriptors = F.normalize(descriptors, p=2.0, dim=1)
        return scores, descriptors.permute(0, 2, 3, 1)


def build(weights_path: Path | str | None, conf: dict) -> tuple[SuperPoint, dict]:
    """
    Load SuperPoint weights strictly and return the model and the manifest's section.

    :param weights_path: the user's superpoint_v1.pth (keys conv1a.weight ... convDb.bias).
    :param conf: needs 'max_keypoints'; may override keys of `default_conf`.
    :raises ValueError: when no file is given, it is missing, or it is not SuperPoint.
    """
    if weights_path is None or not Path(weights_path).is_file():
        where = '' if weights_path is None else f'{weights_path} does not exist. '
        raise ValueError(where + MISSING_WEIGHTS)
    model = SuperPoint()
    state = load_checkpoint(weights_path)
    load_strict(model, state, weights_path, 'SuperPoint')
    merged = {**default_conf, **{k: v for k, v in conf.items() if k in default_conf}}
    manifest_conf = {
        'name': 'superpoint',
        'descriptor_dim': DESCRIPTOR_DIM,
        'max_keypoints': conf['max_keypoints'],
        **merged,
        'input': {'channels': 1, 'layout': 'NCHW', 'divisible_by': CELL},
    }
    return model, manifest_conf


def stages(model: SuperPoint, height: int | None, width: int | None) -> list[Stage]:
    """Return the single 'extractor' stage (dynamic H and W when `height` is None)."""
    h, w = (height, width) if height is not None else (240, 320)
    dynamic = {} if height is not None else {'image': {2: 'H', 3: 'W'}}
    return [Stage(name='extractor', module=model,
                  example_inputs=(torch.rand(1, 1, h, w),),
                  input_names=['image'], output_names=['scores', 'descriptors'],
                  dynamic=dynamic)]


def numpy_params(model: SuperPoint) -> dict[str, np.ndarray]:
    """Return {}: the numpy post-processing needs no weights."""
    return {}

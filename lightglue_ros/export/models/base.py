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

"""What a model definition hands to the converter: stages and strict checkpoint loading."""

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import torch


@dataclass
class Stage:
    """
    One IR file to write: a module, example inputs and the names of its tensors.

    `dynamic` maps an input name to the axes that stay dynamic in the IR, e.g.
    ``{'desc0': {1: 'M'}}``. `onnx_ok=False` marks a stage whose ops ONNX -> OpenVINO
    cannot carry (deformable convolution): the converter takes the direct route for it.
    """

    name: str
    module: torch.nn.Module
    example_inputs: tuple
    input_names: list
    output_names: list
    dynamic: dict = field(default_factory=dict)
    onnx_ok: bool = True
    # Also keep `<name>.onnx` next to the IR (e.g. the static pipeline for ONNX Runtime).
    keep_onnx: bool = False


def load_checkpoint(path: Path | str) -> dict:
    """
    Load a state dict from a .pth file, unwrapping common containers.

    :param path: checkpoint file.
    :return: the state dict (name -> tensor).
    :raises ValueError: when the file is missing or is not a PyTorch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'weights file {path} does not exist')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises many types for a non-checkpoint file
        raise ValueError(f'{path} is not a PyTorch checkpoint ({type(exc).__name__}: '
                         f'{str(exc).splitlines()[0] if str(exc) else ""})') from None
    for key in ('extractor', 'model', 'state_dict', 'model_state_dict'):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors')
    return state


def load_strict(module: torch.nn.Module, state: dict, path: Path | str, what: str) -> None:
    """
    Load `state` into `module` requiring the exact key set and shapes; leave it in eval mode.

    :raises ValueError: naming missing/unexpected keys or shape mismatches and the file.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing (e.g. {missing[0]})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected (e.g. {unexpected[0]})')
        if shapes:
            k = shapes[0]
            parts.append(f'{len(shapes)} with other shapes (e.g. {k}: '
                         f'{tuple(state[k].shape)} vs {tuple(own[k].shape)})')
        raise ValueError(f'{path} does not fit the {what} model: keys ' + ', '.join(parts)
                         + f'; pass the {what} checkpoint that matches --extractor')
    module.load_state_dict(state, strict=True)
    module.eval()

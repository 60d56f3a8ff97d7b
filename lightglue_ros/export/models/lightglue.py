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
LightGlue (Lindenberger et al., ICCV 2023) for export, split into per-layer stages.

Module and parameter names follow cvg/LightGlue so its checkpoints load strictly. The runtime
(`lightglue_ros.runtime.matcher`) drives the stages: it normalizes keypoints, decides early
exit and pruning, and filters mutual nearest neighbours in numpy, as the reference `_forward`
does.
"""

import copy
import logging
import math
from pathlib import Path
import re

from lightglue_ros.export.models.base import load_checkpoint
from lightglue_ros.export.models.base import load_strict
from lightglue_ros.export.models.base import Stage
import torch
from torch import nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)

# Descriptor dimension of each extractor (the matcher's input_dim).
INPUT_DIMS = {'aliked': 128, 'disk': 128, 'superpoint': 256}
DEFAULT_CONF = {
    'descriptor_dim': 256,
    'num_heads': 4,
    'n_layers': 9,
    'depth_confidence': 0.95,  # early exit, -1 disables
    'width_confidence': 0.99,  # point pruning, -1 disables
    'filter_threshold': 0.1,  # minimum match score
}


def confidence_threshold(layer: int, n_layers: int) -> float:
    """Return the token-confidence threshold of `layer` (the reference's schedule)."""
    return min(max(0.8 + 0.1 * math.exp(-4.0 * layer / n_layers), 0.0), 1.0)


def rotate_half_matrix(dim: int) -> torch.Tensor:
    """Return R (dim, dim) with x @ R mapping each pair (a, b) of x's last axis to (-b, a)."""
    rot = torch.zeros(dim, dim)
    pairs = torch.arange(0, dim, 2)
    rot[pairs + 1, pairs] = -1.0
    rot[pairs, pairs + 1] = 1.0
    return rot


def apply_rotary(encoding: torch.Tensor, x: torch.Tensor,
                 rotation: torch.Tensor) -> torch.Tensor:
    """Rotate `x` by the cached (cos, sin) `encoding` of its points."""
    # The reference's rotate_half (stack of -b, a) as a matmul with `rotation`: the same
    # values (one +-1 per column), but OpenVINO ran the stack as a slow reference Concat
    # (measured ~1 ms per call at 1024 points).
    return x * encoding[0] + (x @ rotation) * encoding[1]


class LearnableFourierPositionalEncoding(nn.Module):
    """Fourier features of the keypoint positions, as rotary (cos, sin) pairs."""

    def __init__(self, in_dim: int, head_dim: int) -> None:
        super().__init__()
        self.Wr = nn.Linear(in_dim, head_dim // 2, bias=False)

    def forward(self, kpts: torch.Tensor) -> torch.Tensor:
        """Return (2, B, 1, N, head_dim) from normalized (B, N, 2) keypoints."""
        projected = self.Wr(kpts)
        emb = torch.stack([torch.cos(projected), torch.sin(projected)], 0).unsqueeze(-3)
        return emb.repeat_interleave(2, dim=-1)


class TokenConfidence(nn.Module):
    """Per-point confidence that its state will not change any more."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())

    def forward(self, desc: torch.Tensor) -> torch.Tensor:
        """Return (B, N) confidences in (0, 1)."""
        return self.token(desc).squeeze(-1)


def _ffn(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.LayerNorm(2 * dim), nn.GELU(),
                         nn.Linear(2 * dim, dim))


class SelfBlock(nn.Module):
    """Self-attention with rotary positional encoding, then the message MLP."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.Wqkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)
        self.register_buffer('rotation', rotate_half_matrix(dim // num_heads),
                             persistent=False)

    def _project(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Return q (0), k (1) or v (2) as (B, heads, N, head_dim)."""
        # The checkpoint interleaves q, k, v per channel: (heads, head_dim, 3). Taking each
        # one's rows of Wqkv (folded to constants in the IR) gives three plain projections
        # instead of gathers from the interleaved output: same values; with the rotation
        # matmul, OpenVINO layers at 1024 points took 68 instead of 74 ms in f32 and 25
        # instead of 34 ms in bf16 (measured).
        weight = self.Wqkv.weight.unflatten(0, (self.num_heads, -1, 3))[:, :, index]
        bias = self.Wqkv.bias.unflatten(0, (self.num_heads, -1, 3))[:, :, index]
        out = F.linear(x, weight.flatten(0, 1).contiguous(), bias.flatten(0, 1).contiguous())
        return out.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, encoding: torch.Tensor) -> torch.Tensor:
        """Update (B, N, D) states `x`."""
        q = apply_rotary(encoding, self._project(x, 0), self.rotation)
        k = apply_rotary(encoding, self._project(x, 1), self.rotation)
        # Contiguous inputs select the same PyTorch kernel as the reference (bitwise equal
        # states); OpenVINO decomposes the op into MatMul + Softmax + MatMul.
        context = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(),
                                                 self._project(x, 2).contiguous())
        message = self.out_proj(context.transpose(1, 2).flatten(start_dim=-2))
        return x + self.ffn(torch.cat([x, message], -1))


class CrossBlock(nn.Module):
    """Bidirectional cross-attention sharing one similarity matrix, then the message MLP."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.to_qk = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_out(x.transpose(1, 2).flatten(start_dim=-2))

    def _qk(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple:
        """Return both images' shared query-keys, scaled so that their products are scaled."""
        return (self._heads(self.to_qk(x0)) * self.scale ** 0.5,
                self._heads(self.to_qk(x1)) * self.scale ** 0.5)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple:
        """Update the (B, M, D) and (B, N, D) states of both images."""
        qk0, qk1 = self._qk(x0, x1)
        v0, v1 = self._heads(self.to_v(x0)), self._heads(self.to_v(x1))
        m0 = F.softmax(qk0 @ qk1.transpose(-1, -2), dim=-1) @ v1
        # The reference transposes sim; computing qk1 @ qk0^T gives the same values (same
        # dot products) and spares OpenVINO a transpose of (M, N) per head, which ran as a
        # slow reference kernel (17 ms of a 73 ms layer at 1024 points, measured).
        m1 = F.softmax(qk1 @ qk0.transpose(-1, -2), dim=-1) @ v0
        x0 = x0 + self.ffn(torch.cat([x0, self._merge(m0)], -1))
        x1 = x1 + self.ffn(torch.cat([x1, self._merge(m1)], -1))
        return x0, x1


class FoldedCrossBlock(CrossBlock):
    """
    CrossBlock with the similarity scale in image 0's query-key weights (see fold_layer).

    Both similarities are products of one qk0 and one qk1 row, so scaling qk0 alone by the
    full scale (1/8 for 64-channel heads: exact in binary) scales both once, and the two
    multiplications by sqrt(scale) per product go.
    """

    def __init__(self, block: CrossBlock) -> None:
        super().__init__(block.to_qk.in_features, block.heads)
        self.to(block.to_qk.weight)  # the block's dtype and device
        self.load_state_dict(block.state_dict())
        self.to_qk0 = nn.Linear(block.to_qk.in_features, block.to_qk.out_features)
        self.to_qk0.to(block.to_qk.weight)
        with torch.no_grad():
            self.to_qk0.weight.copy_(block.to_qk.weight * block.scale)
            self.to_qk0.bias.copy_(block.to_qk.bias * block.scale)
        self.train(block.training)

    def _qk(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple:
        return self._heads(self.to_qk0(x0)), self._heads(self.to_qk(x1))


class TransformerLayer(nn.Module):
    """Self-attention in each image, then cross-attention between them."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.self_attn = SelfBlock(dim, num_heads)
        self.cross_attn = CrossBlock(dim, num_heads)

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor, encoding0: torch.Tensor,
                encoding1: torch.Tensor) -> tuple:
        """Return the updated states of both images."""
        return self.cross_attn(self.self_attn(desc0, encoding0),
                               self.self_attn(desc1, encoding1))


def fold_message_projection(ffn_in: nn.Linear, projection: nn.Linear) -> nn.Linear:
    """
    Return `ffn_in` with `projection` folded into the columns that read the message.

    The message MLP reads cat([x, projection(context)]); its first product splits as
    W[:, :d] x + W[:, d:] (P context + p) + b, so cat([x, context]) through
    [W[:, :d], W[:, d:] P] with bias b + W[:, d:] p is the same map without one product.
    Computed in float64, stored float32.
    """
    width = ffn_in.in_features - projection.out_features  # of x, before the message
    if width < 0:
        raise ValueError(f'cannot fold a {projection.out_features}-wide message into an MLP '
                         f'that reads {ffn_in.in_features} channels')
    weight = ffn_in.weight.detach().double()
    folded = nn.Linear(width + projection.in_features, ffn_in.out_features)
    folded.to(ffn_in.weight)  # its dtype and device
    with torch.no_grad():
        folded.weight.copy_(torch.cat(
            [weight[:, :width], weight[:, width:] @ projection.weight.detach().double()], 1))
        folded.bias.copy_(ffn_in.bias.detach().double()
                          + weight[:, width:] @ projection.bias.detach().double())
    folded.train(ffn_in.training)
    return folded


def fold_layer(layer: TransformerLayer) -> TransformerLayer:
    """
    Return a copy of `layer` that computes the same map with fewer ops (what convert exports).

    Each block's message projection (`out_proj`, `to_out`) is folded into the first product of
    its MLP (fold_message_projection: 4 (M + N) d^2 FLOPs fewer per layer) and the
    cross-attention's scale into image 0's query-key weights (FoldedCrossBlock). Measured at
    1024 + 1024 points: layers 6-9% faster in f32 and bf16, states within 1.2e-5 of the
    unfolded layer's in f32 IR (rounding of the folded products).
    """
    layer = copy.deepcopy(layer)
    layer.cross_attn = FoldedCrossBlock(layer.cross_attn)
    for block, name in ((layer.self_attn, 'out_proj'), (layer.cross_attn, 'to_out')):
        block.ffn[0] = fold_message_projection(block.ffn[0], getattr(block, name))
        setattr(block, name, nn.Identity())
    return layer


class MatchAssignment(nn.Module):
    """Matchability and similarity heads building the log assignment."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.final_proj = nn.Linear(dim, dim)

    def get_matchability(self, desc: torch.Tensor) -> torch.Tensor:
        """Return (B, N) matchability in (0, 1)."""
        return torch.sigmoid(self.matchability(desc)).squeeze(-1)

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        """Return the (B, M, N) log assignment without the dustbin row and column."""
        d = desc0.shape[-1]
        mdesc0 = self.final_proj(desc0) / d ** 0.25
        mdesc1 = self.final_proj(desc1) / d ** 0.25
        sim = mdesc0 @ mdesc1.transpose(-1, -2)
        certainties = (F.logsigmoid(self.matchability(desc0))
                       + F.logsigmoid(self.matchability(desc1)).transpose(1, 2))
        scores0 = F.log_softmax(sim, 2)
        # Column-wise directly: the reference's transpose, log_softmax, transpose back ran as
        # two slow (M, N) copies in OpenVINO. Same values up to rounding (~2e-6, measured).
        scores1 = F.log_softmax(sim, 1)
        return scores0 + scores1 + certainties


class LightGlue(nn.Module):
    """LightGlue weights holder; the stages below run its parts."""

    def __init__(self, input_dim: int, descriptor_dim: int = 256, num_heads: int = 4,
                 n_layers: int = 9) -> None:
        super().__init__()
        self.conf = {'input_dim': input_dim, 'descriptor_dim': descriptor_dim,
                     'num_heads': num_heads, 'n_layers': n_layers}
        if input_dim != descriptor_dim:
            self.input_proj = nn.Linear(input_dim, descriptor_dim)
        else:
            self.input_proj = nn.Identity()
        self.posenc = LearnableFourierPositionalEncoding(2, descriptor_dim // num_heads)
        self.transformers = nn.ModuleList(
            [TransformerLayer(descriptor_dim, num_heads) for _ in range(n_layers)])
        self.log_assignment = nn.ModuleList(
            [MatchAssignment(descriptor_dim) for _ in range(n_layers)])
        self.token_confidence = nn.ModuleList(
            [TokenConfidence(descriptor_dim) for _ in range(n_layers - 1)])


class InputStage(nn.Module):
    """Stage 'matcher_input': project descriptors and encode normalized keypoints."""

    def __init__(self, model: LightGlue) -> None:
        super().__init__()
        self.input_proj = model.input_proj
        self.posenc = model.posenc

    def forward(self, keypoints: torch.Tensor, descriptors: torch.Tensor) -> tuple:
        """Return states (1, N, 256) and the rotary encoding (2, 1, 1, N, 64)."""
        return self.input_proj(descriptors), self.posenc(keypoints)


class LayerStage(nn.Module):
    """Stage 'layer_{i}': one transformer layer plus the heads deciding exit and pruning."""

    def __init__(self, model: LightGlue, index: int, fold: bool = True) -> None:
        super().__init__()
        self.layer = model.transformers[index]
        if fold:
            self.layer = fold_layer(self.layer)
        self.last = index == model.conf['n_layers'] - 1
        if not self.last:
            self.token = model.token_confidence[index]
            self.assignment = model.log_assignment[index]

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor, encoding0: torch.Tensor,
                encoding1: torch.Tensor) -> tuple:
        """Return new states, and except for the last layer token confidence and matchability."""
        desc0, desc1 = self.layer(desc0, desc1, encoding0, encoding1)
        if self.last:
            return desc0, desc1
        return (desc0, desc1, self.token(desc0), self.token(desc1),
                self.assignment.get_matchability(desc0),
                self.assignment.get_matchability(desc1))


class AssignStage(nn.Module):
    """Stage 'assign_{i}': row max/argmax and column argmax of the log assignment."""

    def __init__(self, model: LightGlue, index: int) -> None:
        super().__init__()
        self.assignment = model.log_assignment[index]

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor) -> tuple:
        """Return max0 (1, M) float, argmax0 (1, M) int64 and argmax1 (1, N) int64."""
        scores = self.assignment(desc0, desc1)
        max0, argmax0 = scores.max(2)
        return max0, argmax0, scores.max(1).indices


def _rename_legacy(state: dict, path: Path) -> dict:
    """Map old checkpoint names to the current ones and drop known inert entries."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r'^(self_attn|cross_attn)\.(\d+)\.', r'transformers.\2.\1.', key)
        renamed[key] = value
    for key in [k for k in renamed if re.fullmatch(r'log_assignment\.\d+\.r', k)]:
        # Old LightGlue releases (e.g. disk_lightglue.pth) store an unused scalar `r` per
        # assignment head; the reference ignores it (strict=False). It is always 1 there.
        value = renamed.pop(key)
        if value.numel() != 1 or float(value.reshape(-1)[0]) != 1.0:
            raise ValueError(f'{path}: {key} = {value.flatten()[:4].tolist()}, expected the '
                             'inert legacy value 1.0; this checkpoint is not a LightGlue '
                             'release this converter knows')
    # A state_dict() saved from the reference model also holds its recomputed buffer.
    renamed.pop('confidence_thresholds', None)
    return renamed


def build(extractor_name: str, weights_path: Path | str) -> tuple:
    """
    Build LightGlue for `extractor_name` and load `weights_path` strictly.

    :param extractor_name: 'aliked', 'disk' or 'superpoint' (sets the input descriptor dim).
    :param weights_path: LightGlue checkpoint (.pth) trained for that extractor.
    :return: (module in eval mode, manifest 'matcher' section).
    :raises ValueError: for an unknown extractor or a checkpoint that does not fit.
    """
    if extractor_name not in INPUT_DIMS:
        raise ValueError(f'unknown extractor {extractor_name!r} for LightGlue; choose one of '
                         f'{", ".join(INPUT_DIMS)}')
    state = _rename_legacy(load_checkpoint(weights_path), Path(weights_path))
    layers = {int(m.group(1)) for k in state
              if (m := re.match(r'transformers\.(\d+)\.', k))}
    # Fall back to the default depth so that a foreign file fails in load_strict, by name.
    n_layers = max(layers) + 1 if layers else DEFAULT_CONF['n_layers']
    input_dim = INPUT_DIMS[extractor_name]
    model = LightGlue(input_dim, DEFAULT_CONF['descriptor_dim'], DEFAULT_CONF['num_heads'],
                      n_layers)
    load_strict(model, state, weights_path, 'matcher')
    conf = {
        'name': 'lightglue',
        'n_layers': n_layers,
        'input_dim': input_dim,
        'descriptor_dim': DEFAULT_CONF['descriptor_dim'],
        'num_heads': DEFAULT_CONF['num_heads'],
        'depth_confidence': DEFAULT_CONF['depth_confidence'],
        'width_confidence': DEFAULT_CONF['width_confidence'],
        'filter_threshold': DEFAULT_CONF['filter_threshold'],
        'confidence_thresholds': [confidence_threshold(i, n_layers) for i in range(n_layers)],
    }
    return model, conf


def stages(model: LightGlue, fold: bool = True) -> list:
    """
    Return the matcher stages: 'matcher_input', 'layer_{i}' and 'assign_{i}'.

    Batch is 1; point counts M and N are dynamic. Example inputs use different, non-trivial
    M and N so that tracing specialises no dimension. `fold` exports the layers with their
    message projections and cross-attention scale folded into neighbouring weights
    (fold_layer; what convert does); False keeps the reference's ops one for one.
    """
    conf = model.conf
    dim, head_dim = conf['descriptor_dim'], conf['descriptor_dim'] // conf['num_heads']
    generator = torch.Generator().manual_seed(0)
    m, n = 7, 11

    def rand(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    desc0, desc1 = rand(1, m, dim), rand(1, n, dim)
    enc0, enc1 = rand(2, 1, 1, m, head_dim), rand(2, 1, 1, n, head_dim)
    result = [Stage(
        name='matcher_input', module=InputStage(model).eval(),
        example_inputs=(rand(1, n, 2), rand(1, n, conf['input_dim'])),
        input_names=['keypoints', 'descriptors'], output_names=['desc', 'encoding'],
        dynamic={'keypoints': {1: 'N'}, 'descriptors': {1: 'N'}})]
    layer_dynamic = {'desc0': {1: 'M'}, 'desc1': {1: 'N'}, 'encoding0': {3: 'M'},
                     'encoding1': {3: 'N'}}
    for i in range(conf['n_layers']):
        outputs = ['new_desc0', 'new_desc1']
        if i < conf['n_layers'] - 1:
            outputs += ['token0', 'token1', 'matchability0', 'matchability1']
        result.append(Stage(
            name=f'layer_{i}', module=LayerStage(model, i, fold).eval(),
            example_inputs=(desc0, desc1, enc0, enc1),
            input_names=['desc0', 'desc1', 'encoding0', 'encoding1'], output_names=outputs,
            dynamic=layer_dynamic))
    for i in range(conf['n_layers']):
        result.append(Stage(
            name=f'assign_{i}', module=AssignStage(model, i).eval(),
            example_inputs=(desc0, desc1), input_names=['desc0', 'desc1'],
            output_names=['max0', 'argmax0', 'argmax1'],
            dynamic={'desc0': {1: 'M'}, 'desc1': {1: 'N'}}))
    return result

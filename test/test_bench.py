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
`lightglue-ros bench`: one small real run (256 keypoints, one repetition) and its helpers.

The run includes the PyTorch reference and the static model on ONNX Runtime (built once at
240x320 into the test model cache, ~1 min cold). Timings are not asserted (the CI machine is
shared); what is computed from the results is.
"""

import contextlib
import io
import json
import os
from pathlib import Path

import cv2
from lightglue_ros.tools import bench_measure
from lightglue_ros.tools.cli import main
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get('LIGHTGLUE_ROS_TEST_MODELS', ROOT / '.cache' / 'test-models'))
K = 256


@pytest.fixture(scope='module')
def report(aliked_models, tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp('bench') / 'bench.json'
    args = ['bench', '--models', str(aliked_models), '--keypoints', str(K), '--repeat', '1',
            '--threads', '2', '--size', '240x320', '--extractor-keypoints', '256',
            '--static-cache', str(MODEL_CACHE / 'bench-static'), '--json', str(out)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(args) == 0
    return json.loads(out.read_text()), stdout.getvalue()


def rows(report: dict, **match) -> list:
    return [r for r in report['matcher'] if all(r[k] == v for k, v in match.items())]


def test_matcher_section(report):
    data, _ = report
    methods = {(r['pair'], r['method']) for r in data['matcher']}
    for pair in ('easy', 'hard'):
        for method in ('OpenVINO f32 adaptive', 'OpenVINO f32 full', 'OpenVINO bf16 adaptive',
                       'OpenVINO bf16 full', 'PyTorch f32 adaptive', 'PyTorch f32 full'):
            assert (pair, method) in methods
    for row in data['matcher']:
        assert row['points'] == [K, K]
        assert row['ms']['total'] > 0 and row['ms']['layers'] > 0
        assert row['ms']['input'] + row['ms']['layers'] + row['ms']['assign'] <= \
            row['ms']['total'] * 1.05 + 1
        assert 'same_as_reference' in row and 'speedup_vs_reference' in row
        if row['mode'] == 'full':
            assert row['stop_layer'] == 9 and row['pruned'] == 0
            # Nine layers at K points per image, as counted by layer_flops.
            full = 9 * bench_measure.layer_flops(K, K) / 1e9
            assert row['gflop']['layers'] == pytest.approx(full)
    # f32 reproduces the reference's decisions on the same features.
    easy = rows(data, pair='easy', backend='ov', precision='f32', mode='adaptive')[0]
    ref = rows(data, pair='easy', backend='torch', mode='adaptive')[0]
    assert easy['stop_layer'] == ref['stop_layer'] < 9 and easy['same_stop']
    assert easy['same_as_reference'] >= 0.99 and easy['match_iou'] >= 0.98
    assert easy['pruned'] == ref['pruned'] and easy['matches'] > 100
    assert easy['gflop']['layers'] < 9 * bench_measure.layer_flops(K, K) / 1e9  # exited early
    assert easy['speedup_vs_own_full'] > 1
    bf16 = rows(data, pair='easy', backend='ov', precision='bf16', mode='adaptive')[0]
    assert 0.9 <= bf16['same_as_reference'] <= 1
    # OpenVINO's MatMul per precision, and PyTorch's f32 product beside it for context.
    assert set(data['peaks'][str(K)]) == {'f32', 'bf16', 'f32 PyTorch'}
    assert all(v > 1 for v in data['peaks'][str(K)].values())
    assert 0 < easy['layers_of_peak'] < 10


def test_extractor_and_pair_sections(report):
    data, _ = report
    assert len(data['extractor']) == 2
    for row in data['extractor']:
        assert row['keypoints'] == row['reference_keypoints'] > 50
        assert row['paired_within_0.01px'] == 1 and row['max_keypoint_diff_px'] < 0.01
        assert row['speedup'] > 0
    methods = {r['method'] for r in data['pair']}
    assert methods == {'ours f32 adaptive', 'ours bf16 adaptive', 'static ONNX Runtime f32 full',
                       'static OpenVINO f32 full', 'PyTorch f32 adaptive'}
    for row in data['pair']:
        assert row['size'] == [240, 320] and row['matches'] > 20
        assert row['speedup_vs_static_ort'] > 0
    static = [r for r in data['pair'] if r['method'].startswith('static')]
    assert all(r['stop_layer'] == 9 for r in static)


def test_targets_and_table(report):
    data, text = report
    names = [t['target'] for t in data['targets']]
    assert any(n.startswith('f32 matcher >= 1.2x reference') for n in names)
    assert any(n.startswith('bf16 >= 97% identical') for n in names)
    assert any(n.startswith('end-to-end pair (ours f32 adaptive) >= 4x') for n in names)
    assert all(isinstance(t['holds'], bool) for t in data['targets'])
    layers = next(t for t in data['targets'] if t['target'].startswith('f32 layer compute'))
    assert "of PyTorch's matmul rate: easy" in layers['detail']
    assert data['environment']['threads'] == 2
    for header in ('matcher K=256, pair easy', 'identical %', 'GF/s layers', 'x static ORT',
                   'acceptance targets', 'MatMul peak'):
        assert header in text


@pytest.mark.parametrize('k', [512, 1024, 2048])
def test_flops_match_design(k):
    """Full depth at K points per image: 31.7 / 80.7 / 230 GFLOP (DESIGN.md section 4)."""
    expected = {512: 31.7, 1024: 80.7, 2048: 230}[k]
    conf = {'descriptor_dim': 256, 'input_dim': 128, 'num_heads': 4}
    result = {'prune0': np.full(k, 9), 'prune1': np.full(k, 9), 'stop_layer': 9}
    total = sum(bench_measure.matcher_flops(result, conf).values()) / 1e9
    assert total == pytest.approx(expected, rel=0.01)


def test_flops_follow_pruning():
    conf = {'descriptor_dim': 256, 'input_dim': 128, 'num_heads': 4}
    # 10 points; 4 of image 0 pruned after layer 0; exit after layer 2.
    result = {'prune0': np.array([1] * 4 + [3] * 6), 'prune1': np.full(10, 3), 'stop_layer': 3}
    flops = bench_measure.matcher_flops(result, conf)
    layer = bench_measure.layer_flops
    assert flops['layers'] == layer(10, 10) + 2 * layer(6, 10)
    assert bench_measure.pruned_fraction(result) == pytest.approx(4 / 20)


def test_parity_helpers():
    ours = np.array([[0.0, 0.0], [10.0, 10.0], [50.0, 50.0]])
    ref = np.array([[10.2, 10.0], [0.0, 0.1], [80.0, 80.0]])
    perm, worst = bench_measure.pair_points(ours, ref, 0.5)
    assert perm.tolist() == [1, 0, -1] and worst == pytest.approx(0.2, abs=1e-6)
    result = {'matches0': np.array([1, -1, 0]), 'matches1': np.array([2, -1])}
    perm1 = np.array([1, 0])  # our image-1 points 0, 1 are reference points 1, 0
    mapped = bench_measure.in_ref_space(result, perm, perm1, 3, 2)
    # Ours 0 -> 1 becomes ref 1 -> ref 0; our point 2 has no twin: its match cannot agree.
    assert mapped['matches0'].tolist() == [-1, 0, -2]
    assert mapped['matches1'].tolist() == [-1, -3]
    ref_result = {'matches0': np.array([-1, 0, -1]), 'matches1': np.array([-1, 1])}
    assert bench_measure.same_matches(mapped, ref_result) == pytest.approx(3 / 5)


def test_usage_errors(aliked_models, tmp_path, capsys):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    assert main(['bench', str(image), '--models', str(aliked_models)]) == 2
    assert 'pass image pairs (an even number of images), got 1' in capsys.readouterr().err
    assert main(['bench', '--models', str(aliked_models), '--size', '480']) == 2
    assert '--size must be HxW' in capsys.readouterr().err
    assert main(['bench', '--models', str(aliked_models), '--precision', 'int8']) == 2
    assert "unknown --precision 'int8'" in capsys.readouterr().err

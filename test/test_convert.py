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

"""Full conversions: the manifest lists only files that exist and compile; reruns skip."""

import json
import logging
import time

from lightglue_ros.export.convert import convert
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.manifest import sha256_file
import openvino as ov
import pytest


@pytest.mark.parametrize('name', ['aliked', 'disk'])
def test_model_set_compiles(name, request):
    """Every IR in the manifest exists, matches its checksum and compiles on OpenVINO CPU."""
    model_dir = request.getfixturevalue(f'{name}_models')
    manifest = load_manifest(model_dir)
    assert manifest['extractor']['name'] == name
    stages = [e['stage'] for e in manifest['files']]
    n_layers = manifest['matcher']['n_layers']
    assert stages[0] == 'extractor'
    assert 'matcher_input' in stages
    for i in range(n_layers):
        assert f'layer_{i}' in stages and f'assign_{i}' in stages
    assert len(stages) == 2 + 2 * n_layers
    core = ov.Core()
    for entry in manifest['files']:
        for key in ('xml', 'bin'):
            assert sha256_file(model_dir / entry[key]) == entry['sha256'][key]
        model = core.read_model(model_dir / entry['xml'])
        assert [sorted(p.get_names())[0] for p in model.inputs] == \
            [p['name'] for p in entry['inputs']]
        assert [sorted(p.get_names())[0] for p in model.outputs] == \
            [p['name'] for p in entry['outputs']]
        if entry['stage'] == 'extractor':  # dynamic H, W: compile at one size
            shape = [d if d > 0 else 64 for d in entry['inputs'][0]['shape']]
            model.reshape({model.inputs[0]: shape})
        core.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    assert manifest['precision'] == 'fp32'
    assert set(manifest['sources']) == {'extractor', 'matcher'}
    assert all(len(s['sha256']) == 64 for s in manifest['sources'].values())
    assert {'torch', 'openvino'} <= set(manifest['tools'])
    assert manifest['matcher']['input_dim'] == manifest['extractor']['descriptor_dim']
    # Layers exported folded (lightglue.fold_layer), and the manifest says so for the bench:
    # no message projection left in any layer IR (an unfolded layer_0 has 10 such ops).
    assert manifest['matcher']['folded_projections'] is True
    for i in range(n_layers):
        names = [op.get_friendly_name()
                 for op in core.read_model(model_dir / f'layer_{i}.xml').get_ops()]
        assert not [n for n in names if 'out_proj' in n or 'to_out' in n], i
        assert any('to_qk0' in n for n in names), i


def test_rerun_skips_up_to_date(aliked_models, caplog):
    """A second convert with the same inputs rewrites no IR file."""
    before = json.loads((aliked_models / 'manifest.json').read_text())
    mtimes = {e['xml']: (aliked_models / e['xml']).stat().st_mtime_ns for e in before['files']}
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger='lightglue_ros'):
        convert('aliked', aliked_models, max_keypoints=1024)
    elapsed = time.perf_counter() - start
    after = json.loads((aliked_models / 'manifest.json').read_text())
    assert [e['sha256'] for e in after['files']] == [e['sha256'] for e in before['files']]
    assert all((aliked_models / x).stat().st_mtime_ns == t for x, t in mtimes.items())
    assert sum('up to date' in r.message for r in caplog.records) == len(before['files'])
    assert elapsed < 60, f'idempotent rerun took {elapsed:.0f} s'

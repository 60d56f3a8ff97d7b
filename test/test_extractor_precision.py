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

"""Extractor precision: bf16 hint and NNCF INT8 sets, recorded in the manifest and obeyed."""

import importlib.util
import json
import logging
from pathlib import Path
import shutil

from conftest import MODEL_CACHE
from conftest import skip_or_fail
from conftest import skip_without_bf16
from lightglue_ros.runtime.engine import Engine
from lightglue_ros.runtime.extractors import warn_without_bf16
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.tools.bench_extractor import agreement
from lightglue_ros.tools.bench_extractor import fit
import openvino as ov
import pytest

SIZE = (480, 640)
# Measured on an AMD EPYC (AVX-512 BF16/VNNI) with the astronaut photo (890 keypoints): 90.3%
# of the f32 keypoints repeated within 1 px, descriptor cosine 0.996. The bars leave room for
# other CPUs' kernels; a broken quantization (calibration on blank images) fails them.
MIN_REPEATED = 0.8
MIN_COSINE = 0.97


@pytest.fixture(scope='session')
def int8_models(aliked_models) -> Path:
    """Return the ALIKED set with an INT8 extractor, quantized from the cached f32 IR."""
    if importlib.util.find_spec('nncf') is None:
        skip_or_fail('INT8 conversion needs nncf (the convert extra): `make setup`')
    from lightglue_ros.export.quantize import derive_model_set
    out = MODEL_CACHE / 'aliked-int8'
    derive_model_set(aliked_models, out, 'int8')
    return out


@pytest.fixture(scope='module')
def photo():
    """Return scikit-image's astronaut photo as float32 RGB at 480x640."""
    from lightglue_ros.tools import samples
    return fit(samples.photo('astronaut'), *SIZE)


def test_int8_set_records_quantization_and_has_quantized_ops(int8_models):
    """The manifest says int8 with its calibration; the IR holds FakeQuantize ops."""
    manifest = load_manifest(int8_models)
    assert manifest['extractor_precision'] == 'int8'
    entry = next(e for e in manifest['files'] if e['stage'] == 'extractor')
    record = entry['quantization']
    assert record['tool'] == 'nncf' and record['calibration']['count'] > 0
    assert 'scikit-image' in record['calibration']['source']
    assert not any('motorcycle' in name for name in record['calibration']['photos'])
    assert entry['float_ir']['xml'] != entry['xml']
    model = ov.Core().read_model(int8_models / entry['xml'])
    fake = [op for op in model.get_ordered_ops() if op.get_type_name() == 'FakeQuantize']
    assert len(fake) >= 10, f'{len(fake)} FakeQuantize ops in {entry["xml"]}'
    assert record['ops']['fake_quantize'] == len(fake)
    # The matcher files are the f32 set's.
    f32 = load_manifest(MODEL_CACHE / 'aliked')
    assert [e['sha256'] for e in manifest['files'] if e['stage'] != 'extractor'] == \
        [e['sha256'] for e in f32['files'] if e['stage'] != 'extractor']


def test_convert_records_the_option_and_reuses_builds(int8_models, tmp_path, caplog):
    """Convert records --extractor-precision int8; reruns and a switch to f32 rebuild nothing."""
    from lightglue_ros.export.convert import convert
    model_dir = tmp_path / 'set'
    shutil.copytree(int8_models, model_dir)
    mtimes = {f.name: f.stat().st_mtime_ns for f in model_dir.iterdir()}
    with caplog.at_level(logging.INFO, logger='lightglue_ros'):
        convert('aliked', model_dir, max_keypoints=1024, extractor_precision='int8')
    manifest = load_manifest(model_dir)
    entry = next(e for e in manifest['files'] if e['stage'] == 'extractor')
    assert manifest['extractor_precision'] == 'int8'
    assert entry['xml'] == 'extractor_int8.xml' and entry['quantization']['tool'] == 'nncf'
    assert any('INT8: up to date' in r.message for r in caplog.records)
    convert('aliked', model_dir, max_keypoints=1024)
    manifest = load_manifest(model_dir)
    entry = next(e for e in manifest['files'] if e['stage'] == 'extractor')
    assert manifest['extractor_precision'] == 'f32'
    assert entry['xml'] == 'extractor.xml' and 'quantization' not in entry
    changed = [n for n, t in mtimes.items() if n.endswith(('.xml', '.bin')) and
               (model_dir / n).stat().st_mtime_ns != t]
    assert changed == [], 'IR files rebuilt'


def test_int8_runtime_runs_int8_and_agrees_with_f32(aliked_models, int8_models, photo):
    """An INT8 set loads, compiles INT8 convolutions and finds the f32 keypoints."""
    f32 = Engine(aliked_models)
    int8 = Engine(int8_models)
    try:
        info = int8.extractor.precision_info(*SIZE)
        assert info['model_set'] == 'int8' and info['requested'] == 'int8'
        assert info['inference_precision'] == 'f32'  # the ops left in float
        assert info['int8_ops'] >= 10, info
        assert info['quantization']['tool'] == 'nncf'
        ref = f32.extract(photo)
        out = int8.extract(photo)
        repeated, cosine = agreement(ref, out)
        assert len(ref['keypoints']) > 500
        assert repeated >= MIN_REPEATED and cosine >= MIN_COSINE, (repeated, cosine)
    finally:
        f32.close()
        int8.close()


def test_f32_stays_the_default(aliked_models):
    """A set converted without the option records f32 and compiles f32 with no INT8 op."""
    manifest = json.loads((aliked_models / 'manifest.json').read_text())
    assert manifest['extractor_precision'] == 'f32'
    engine = Engine(aliked_models)
    try:
        info = engine.extractor.precision_info(64, 64)
        assert info['requested'] == 'f32' and info['inference_precision'] == 'f32'
        assert info['int8_ops'] == 0 and info['quantization'] is None
    finally:
        engine.close()


def test_bf16_request_compiles_bf16(aliked_models, tmp_path):
    """bf16, asked at run time or recorded by the set, compiles the extractor in bf16."""
    skip_without_bf16()
    engine = Engine(aliked_models, extractor_precision='bf16')
    try:
        info = engine.extractor.precision_info(64, 64)
        assert info['requested'] == 'bf16' and info['inference_precision'] == 'bf16'
    finally:
        engine.close()
    from lightglue_ros.export.quantize import derive_model_set
    derive_model_set(aliked_models, tmp_path, 'bf16')
    engine = Engine(tmp_path)
    try:
        assert engine.extractor.precision_info(64, 64)['inference_precision'] == 'bf16'
        # The matcher keeps its own precision (f32 unless asked).
        assert engine.matcher.precision == 'f32'
    finally:
        engine.close()


class _NoBf16Core:
    """A Core whose CPU lacks BF16 (as an AVX2-only CPU reports)."""

    def get_property(self, device, name):
        assert name == 'OPTIMIZATION_CAPABILITIES'
        return ['FP32', 'INT8', 'BIN', 'EXPORT_IMPORT']


def test_bf16_without_native_support_warns(caplog):
    """A bf16 request on a CPU without BF16 logs that it would be emulated or f32."""
    with caplog.at_level(logging.WARNING, logger='lightglue_ros'):
        assert warn_without_bf16(_NoBf16Core(), 'CPU') is False
    assert any('OpenVINO lists no BF16' in r.message for r in caplog.records)


def test_manifest_rejects_unknown_or_unbacked_precision(aliked_models, tmp_path):
    """An unknown extractor_precision, or int8 without its record, fails with a fix."""
    manifest = json.loads((aliked_models / 'manifest.json').read_text())
    manifest['extractor_precision'] = 'int4'
    (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"unknown extractor_precision 'int4' \(expected one "
                       r'of f32, bf16, int8\).*--extractor-precision'):
        load_manifest(tmp_path, check_files=False)
    manifest['extractor_precision'] = 'int8'  # a float IR claimed to be INT8
    (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match='no quantization record'):
        load_manifest(tmp_path, check_files=False)


def test_runtime_rejects_impossible_requests(aliked_models, int8_models):
    """int8 needs an INT8 set; an INT8 set cannot run f32; unknown names are refused."""
    with pytest.raises(ValueError, match='needs an INT8 model set'):
        Engine(aliked_models, extractor_precision='int8')
    with pytest.raises(ValueError, match='cannot run f32'):
        Engine(int8_models, extractor_precision='f32')
    with pytest.raises(ValueError, match="unknown extractor precision 'fp8'"):
        Engine(aliked_models, extractor_precision='fp8')


def test_convert_rejects_unknown_precision(tmp_path):
    """Convert refuses an unknown --extractor-precision before loading any weights."""
    from lightglue_ros.export.convert import convert
    with pytest.raises(ValueError, match="unknown extractor precision 'int4'"):
        convert('aliked', tmp_path, extractor_precision='int4')

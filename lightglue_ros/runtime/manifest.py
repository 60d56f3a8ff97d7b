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

"""Model set manifest (contract): read, validate and look up files. No torch, no ROS."""

import hashlib
import json
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
EXTRACTORS = ('aliked', 'disk', 'superpoint')
# How the extractor CNN runs: f32 IR compiled f32 (default), the same IR compiled with a bf16
# inference precision hint, or an IR quantized to INT8 by NNCF (export/quantize.py).
EXTRACTOR_PRECISIONS = ('f32', 'bf16', 'int8')


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(model_dir: Path | str, check_files: bool = True) -> dict:
    """
    Read and validate `model_dir/manifest.json`.

    :param model_dir: a directory written by `lightglue-ros convert`.
    :param check_files: also require every listed IR file to exist.
    :return: the manifest dict, with `model_dir` added as an absolute path string.
    :raises ValueError: with what is wrong and how to fix it.
    """
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f'no {MANIFEST_NAME} in {model_dir}; build a model set with '
                         f'`lightglue-ros convert --extractor aliked --output {model_dir}`')
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f'{path} is not valid JSON ({exc}); re-run convert') from None
    version = manifest.get('format_version')
    if version != FORMAT_VERSION:
        raise ValueError(f'{path} has format_version {version!r}, this lightglue_ros reads '
                         f'{FORMAT_VERSION}; re-run convert')
    for key in ('extractor', 'matcher', 'files', 'precision'):
        if key not in manifest:
            raise ValueError(f'{path} lacks the key {key!r}; re-run convert')
    name = manifest['extractor'].get('name')
    if name not in EXTRACTORS:
        raise ValueError(f'{path}: unknown extractor {name!r} (expected one of {EXTRACTORS})')
    _check_extractor_precision(manifest, path)
    if check_files:
        for entry in manifest['files']:
            for key in ('xml', 'bin'):
                _check_file(model_dir / entry[key], (entry.get('sha256') or {}).get(key), path)
        params = manifest.get('params')
        if params:
            _check_file(model_dir / params['file'], params.get('sha256'), path)
    manifest['model_dir'] = str(model_dir.resolve())
    return manifest


def _check_extractor_precision(manifest: dict, path: Path) -> None:
    """Require a known `extractor_precision` (absent: f32) and, for int8, its record."""
    precision = manifest.setdefault('extractor_precision', 'f32')
    if precision not in EXTRACTOR_PRECISIONS:
        raise ValueError(f'{path}: unknown extractor_precision {precision!r} (expected one of '
                         f'{", ".join(EXTRACTOR_PRECISIONS)}); re-run convert with '
                         '--extractor-precision f32, bf16 or int8')
    if precision == 'int8':
        if not stage_entry(manifest, 'extractor').get('quantization'):
            raise ValueError(f'{path}: extractor_precision is int8 but the extractor entry '
                             'has no quantization record (not an NNCF-quantized IR); re-run '
                             'convert with --extractor-precision int8')


def _check_file(file: Path, sha256: str | None, manifest_path: Path) -> None:
    """Require `file` to exist and, when the manifest records one, to match its checksum."""
    if not file.is_file():
        raise ValueError(f'{file} listed in {manifest_path} is missing; re-run convert')
    # A truncated copy, an overwritten or a swapped IR (another model set's extractor) would
    # otherwise fail later inside OpenVINO, or load and give wrong results. ~50 ms per set.
    if sha256 and sha256_file(file) != sha256:
        raise ValueError(f'{file} does not match its checksum in {manifest_path} (changed '
                         'since convert); re-run convert')


def check_extractor_precision(precision: str) -> None:
    """Raise ValueError unless `precision` is one of EXTRACTOR_PRECISIONS."""
    if precision not in EXTRACTOR_PRECISIONS:
        raise ValueError(f'unknown extractor precision {precision!r}; choose one of '
                         f'{", ".join(EXTRACTOR_PRECISIONS)}')


def stage_entry(manifest: dict, stage: str) -> dict:
    """
    Return the file entry of `stage` (e.g. 'extractor', 'layer_3').

    :raises ValueError: when the model set has no such stage.
    """
    for entry in manifest['files']:
        if entry['stage'] == stage:
            return entry
    raise ValueError(f'model set {manifest.get("model_dir")} has no stage {stage!r}; '
                     're-run convert')


def stage_path(manifest: dict, stage: str) -> Path:
    """Return the absolute path of the IR .xml of `stage`."""
    return Path(manifest['model_dir']) / stage_entry(manifest, stage)['xml']

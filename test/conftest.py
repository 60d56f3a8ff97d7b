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

"""Shared fixtures: model sets converted once per test session (and cached between runs)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ROS tests use real DDS: keep it on this host, in a domain of our own (one per test run, so
# parallel runs do not see each other), with the project's Fast DDS profile (large frames).
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                      str(ROOT / 'config' / 'fastdds_profile.xml'))
# Conversions are idempotent (checksums), so a warm cache makes reruns cheap; CI starts cold.
MODEL_CACHE = Path(os.environ.get('LIGHTGLUE_ROS_TEST_MODELS', ROOT / '.cache' / 'test-models'))


def _model_set(name: str) -> Path:
    from lightglue_ros.export.convert import convert
    out = MODEL_CACHE / name
    convert(name, out, max_keypoints=1024)
    return out


@pytest.fixture(scope='session')
def aliked_models() -> Path:
    """Return the default ALIKED + LightGlue model set (direct route, fp32)."""
    return _model_set('aliked')


@pytest.fixture(scope='session')
def disk_models() -> Path:
    """Return the DISK + LightGlue model set (direct route, fp32)."""
    return _model_set('disk')


@pytest.fixture(scope='session')
def kitti() -> Path:
    """
    Return ../shared/eval/kitti00 (KITTI 00 frames 100-119 with poses, times and K).

    Third-party data that the repository must not ship: without it beside the repository
    the test is skipped, except under CI (CI is set), where the folder is part of the setup
    and its absence is a failure, not a skip.
    """
    path = ROOT.parent / 'shared' / 'eval' / 'kitti00'
    if not (path / 'image_0').is_dir():
        message = (f'needs the third-party KITTI frames in {path} (not shipped with the '
                   'repository): put the shared eval folder beside the repository')
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)
    return path

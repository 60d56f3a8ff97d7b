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
ament_flake8, as `ros2 pkg create` ships it (PyPI wheel here, ament_lint in a ROS install).

It runs in a process of its own: flake8 checks files in forked worker processes, and a fork of
this test process (OpenVINO and DDS threads running) can deadlock.
"""

from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    proc = subprocess.run(
        [sys.executable, '-c', 'import sys; from ament_flake8.main import main; sys.exit(main())'],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, 'ament_flake8 found code style errors:\n' + proc.stdout[-5000:] \
        + proc.stderr[-2000:]

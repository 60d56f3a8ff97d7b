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

"""Lint with the PyPI equivalents of ament_flake8, ament_pep257 and ament_copyright."""

from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ['lightglue_ros', 'test', 'launch', 'setup.py']
# ament_pep257's default ignore list (ament_lint/ament_pep257/ament_pep257/main.py).
PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


def _python_files() -> list[Path]:
    files = [ROOT / 'setup.py']
    for folder in ('lightglue_ros', 'test', 'launch'):
        files += sorted((ROOT / folder).rglob('*.py'))
    return files


def test_flake8_ament_config():
    """flake8 with ament_flake8's plugins and settings (setup.cfg [flake8]) finds nothing."""
    proc = subprocess.run([sys.executable, '-m', 'flake8', *SOURCES], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pydocstyle_ament_ignore_list():
    """Docstrings pass pydocstyle with the ament_pep257 ignore list (D213: summary on line 2)."""
    proc = subprocess.run([sys.executable, '-m', 'pydocstyle', f'--ignore={PEP257_IGNORE}',
                           *SOURCES], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_copyright_headers():
    """Every Python file starts with the Apache-2.0 header (as ament_copyright checks)."""
    missing = [str(p.relative_to(ROOT)) for p in _python_files()
               if 'Licensed under the Apache License, Version 2.0' not in p.read_text()[:600]]
    assert not missing, f'files without the licence header: {missing}'

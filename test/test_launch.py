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

"""Launch files: convert.launch.py stays in sync with the CLI, matcher.launch.py with the node."""

import ast
import importlib.util
from pathlib import Path

from conftest import require_ros_tooling
from lightglue_ros.tools.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / 'launch' / 'convert.launch.py'
MATCHER_LAUNCH = ROOT / 'launch' / 'matcher.launch.py'


def launch_table(path: Path = LAUNCH, name: str = 'ARGUMENTS'):
    """Read a constant table from a launch file without importing `launch`."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f'no {name} in {path.name}')


def launch_arguments() -> list:
    """Return the ARGUMENTS table of convert.launch.py."""
    return launch_table(LAUNCH)


def convert_flags() -> dict:
    """Return {flag: default} of the convert subcommand."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command').choices['convert']
    return {a.option_strings[0]: (None if a.required else a.default) for a in sub._actions
            if a.option_strings and a.option_strings[0].startswith('--')
            and a.dest != 'help'}


def test_launch_arguments_match_cli_flags():
    """Every CLI flag has a launch argument and vice versa, with the same defaults."""
    args = launch_arguments()
    flags = convert_flags()
    assert {'--' + name.replace('_', '-') for name, _, _ in args} == set(flags)
    for name, default, _ in args:
        cli_default = flags['--' + name.replace('_', '-')]
        if cli_default is None and name in ('extractor', 'output'):
            assert default, f'{name} is required by the CLI: the launch file needs a default'
        elif cli_default in (None, False):
            assert default in ('', 'false'), name
        else:
            assert default == str(cli_default), name


def test_launch_file_builds_the_command():
    """With a real ROS install, the launch description resolves to the CLI command."""
    require_ros_tooling('launch')
    from launch import LaunchContext
    from launch.actions import ExecuteProcess
    spec = importlib.util.spec_from_file_location('convert_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities[:-1]:
        entity.visit(context)
    context.launch_configurations['extractor'] = 'disk'
    context.launch_configurations['static_pipeline'] = 'true'
    actions = module.convert_command(context)
    assert isinstance(actions[0], ExecuteProcess)
    cmd = [c[0].perform(context) if isinstance(c, list) else c for c in actions[0].cmd]
    assert cmd[:4] == ['lightglue-ros', 'convert', '--extractor', 'disk']
    assert '--static-pipeline' in cmd and '--force' not in cmd


def test_matcher_launch_arguments():
    """The matcher launch file remaps exactly the node's inputs and ships its defaults."""
    args = {name: default for name, default, _ in launch_table(MATCHER_LAUNCH)}
    remapped = launch_table(MATCHER_LAUNCH, 'REMAPPED')
    assert set(remapped) == {'image0', 'camera_info0', 'image1', 'camera_info1'}
    assert all(args[name] == name for name in remapped)  # identity unless remapped
    for name in ('params_file', 'fastdds_profile'):
        shipped = ROOT / args[name].replace('<share>/', '')
        assert shipped.is_file(), f'{name} default {args[name]} is not in the package'
    assert {'mode', 'model_dir', 'namespace', 'use_sim_time'} <= set(args)


def test_matcher_launch_builds_the_node(colcon_workspace, monkeypatch):
    """In the built workspace, the launch description resolves to the matcher node."""
    from launch import LaunchContext
    from launch_ros.actions import Node
    monkeypatch.setenv('AMENT_PREFIX_PATH', colcon_workspace.env['AMENT_PREFIX_PATH'])
    spec = importlib.util.spec_from_file_location('matcher_launch', MATCHER_LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities[:-1]:
        entity.visit(context)
    context.launch_configurations.update(mode='stereo', image0='/left/image_rect')
    actions = module.matcher_node(context)
    node = actions[-1]
    assert isinstance(node, Node)
    assert node.node_executable == 'matcher_node'

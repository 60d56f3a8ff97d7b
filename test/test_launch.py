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

"""launch/convert.launch.py stays in sync with `lightglue-ros convert`."""

import ast
import importlib.util
from pathlib import Path

from lightglue_ros.cli import build_parser
import pytest

LAUNCH = Path(__file__).resolve().parent.parent / 'launch' / 'convert.launch.py'


def launch_arguments() -> list:
    """Read the ARGUMENTS table from the launch file without importing `launch`."""
    tree = ast.parse(LAUNCH.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == 'ARGUMENTS':
            return ast.literal_eval(node.value)
    raise AssertionError('no ARGUMENTS in convert.launch.py')


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
    try:
        from launch import LaunchContext
        from launch.actions import ExecuteProcess
    except ImportError:
        pytest.skip('needs the ROS 2 `launch` package (a real ROS install)')
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

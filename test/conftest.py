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

import importlib.util
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

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


def skip_or_fail(message: str) -> None:
    """
    Skip a test that needs something from outside the repository; fail instead under CI.

    CI (CI is set) runs with ../shared beside the clone and `make setup` done, so anything
    missing there is a broken setup, not a reason to skip.
    """
    if os.environ.get('CI'):
        pytest.fail(message)
    pytest.skip(message)


def require_ros_tooling(*modules: str) -> None:
    """
    Skip (fail under CI) unless the ROS 2 Python tooling `modules` can be imported.

    launch, launch_ros, launch_testing, ros2cli and message_filters are not on PyPI: on a
    ROS install they come with it; here `make setup` installs them from ../shared/ros2-python.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        skip_or_fail(f'needs {", ".join(missing)} (not on PyPI): source a ROS 2 install, or '
                     'put the shared folder (with ros2-python/) beside the repository and run '
                     '`make setup`')


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
        skip_or_fail(f'needs the third-party KITTI frames in {path} (not shipped with the '
                     'repository): put the shared eval folder beside the repository')
    return path


@pytest.fixture(autouse=True)
def _python_logging_propagates():
    """
    Let caplog see the package's Python loggers again.

    `import launch` (done by launch_testing's pytest plugin at start-up, and by LaunchService)
    makes every logger created afterwards a LaunchLogger that does not propagate. The product
    never imports launch in its own processes; only this test process needs the repair.
    """
    logging.setLoggerClass(logging.Logger)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith('lightglue_ros') and isinstance(logger, logging.Logger):
            logger.propagate = True


class Workspace:
    """A colcon workspace with this checkout built and installed, and its sourced environment."""

    def __init__(self, root: Path, env: dict) -> None:
        self.root, self.install, self.env = root, root / 'install', env

    def run(self, args: list, timeout: float = 60.0, **kwargs) -> subprocess.CompletedProcess:
        """Run a command (e.g. `ros2 ...`) in the sourced workspace; return its result."""
        return subprocess.run(args, env=self.env, capture_output=True, text=True,
                              timeout=timeout, **kwargs)


@pytest.fixture(scope='session')
def colcon_workspace(tmp_path_factory) -> Workspace:
    """
    Return a colcon workspace holding this checkout, built and sourced, as a ROS user has it.

    `colcon build` of the package (its launch/config files land in share/, its executables in
    lib/lightglue_ros/ where `ros2 run` and launch_ros look), then the environment of
    `source install/setup.bash`. On this machine the ROS 2 base is the venv (PyPI wheels plus
    ../shared/ros2-python), so the venv is appended to AMENT_PREFIX_PATH (launch finds its own
    files through the ament index); a ROS install's setup.bash already has it.
    """
    require_ros_tooling('colcon_core', 'launch', 'launch_ros', 'ros2cli', 'ros2launch')
    venv_bin = str(Path(sys.executable).parent)
    colcon = shutil.which('colcon', path=venv_bin + os.pathsep + os.environ.get('PATH', ''))
    if colcon is None:
        skip_or_fail('needs colcon (`pip install colcon-common-extensions`; make setup does)')
    root = tmp_path_factory.mktemp('colcon_ws')
    build = subprocess.run(
        [colcon, '--log-base', str(root / 'log'), 'build', '--paths', str(ROOT),
         '--build-base', str(root / 'build'), '--install-base', str(root / 'install')],
        capture_output=True, text=True, timeout=300, cwd=root)
    assert build.returncode == 0, build.stdout + build.stderr
    env = os.environ.copy()
    env['PATH'] = venv_bin + os.pathsep + env.get('PATH', '')
    sourced = subprocess.run(
        ['bash', '-c', f'source {root / "install" / "setup.bash"} && env -0'],
        capture_output=True, env=env, timeout=60, check=True).stdout
    env = dict(item.split('=', 1) for item in sourced.decode().split('\0') if '=' in item)
    prefix = str(Path(sys.executable).parent.parent)
    paths = env.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
    if prefix not in paths:
        env['AMENT_PREFIX_PATH'] = os.pathsep.join([p for p in paths if p] + [prefix])
    return Workspace(root, env)


def wait_until(condition, timeout: float = 10.0):
    """Poll `condition()` every 50 ms for up to `timeout` s; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def skip_without_bf16(core=None) -> None:
    """Skip unless the CPU computes in bf16; without it OpenVINO would quietly run f32."""
    from lightglue_ros.runtime.ovcore import shared_core
    capabilities = (core or shared_core()).get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    if 'BF16' not in capabilities:
        pytest.skip('needs a CPU with bf16 arithmetic (AVX-512 BF16 or AMX): OpenVINO CPU '
                    f'OPTIMIZATION_CAPABILITIES {capabilities} lacks BF16, so a bf16 request '
                    'runs f32 and there is no bf16 result to check (the warning users get '
                    'there is tested in test_cpu.py and test_node_outputs.py)')

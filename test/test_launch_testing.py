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
The node under `launch_testing`, the ROS convention for integration tests.

A launch description starts the node the plain way (`python -m lightglue_ros.node` with the
shipped config/matcher.yaml); the active tests replay a recorded camera into it and read its
matches over DDS; the post-shutdown tests check what launch_testing saw when it stopped the
node with SIGINT: exit code 0, the shutdown logged, no traceback. Run it with pytest (the
launch_testing plugin collects it) or `launch_test test/test_launch_testing.py`.
"""

import os
from pathlib import Path
import subprocess
import sys
import tempfile
import unittest

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPIC = '/camera/image_raw'

try:
    import launch
    from launch.actions import ExecuteProcess
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
except ImportError:  # pragma: no cover - depends on the installation
    MESSAGE = ('needs launch and launch_testing (not on PyPI): source a ROS 2 install, or put '
               'the shared folder (with ros2-python/) beside the repository and run make setup')
    if os.environ.get('CI'):
        raise
    pytest.skip(MESSAGE, allow_module_level=True)


@pytest.mark.launch_test
def generate_test_description():
    """Start the matcher node on the default model set; ready once it is spinning."""
    from conftest import _model_set
    models = _model_set('aliked')
    node = ExecuteProcess(
        cmd=[sys.executable, '-m', 'lightglue_ros.node', '--ros-args',
             '--params-file', str(ROOT / 'config' / 'matcher.yaml'),
             '-p', f'model_dir:={models}', '-r', f'image0:={TOPIC}'],
        name='lightglue', output='screen', sigterm_timeout='5')
    return launch.LaunchDescription([node, launch_testing.actions.ReadyToTest()]), {
        'matcher': node}


class TestMatching(unittest.TestCase):
    """Active tests: they run while the node is up."""

    def test_started_and_matches_a_replayed_camera(self, proc_output, matcher):
        from lightglue_ros import messages
        from lightglue_ros.tools import demo_ros
        from lightglue_ros.tools import samples
        proc_output.assertWaitFor('publishing /lightglue/matches', process=matcher,
                                  timeout=120)
        recorder = demo_ros.OutputRecorder()
        try:
            self.assertTrue(recorder.wait_for_publisher(30))
            with tempfile.TemporaryDirectory() as tmp:
                truth = samples.write_sample_bag(Path(tmp) / 'bag', n_frames=4, rate=2.0,
                                                 topic=TOPIC, scene='desk')
                done = subprocess.run(
                    [sys.executable, '-m', 'lightglue_ros.tools.cli', 'replay',
                     str(truth['bag']), '--no-clock'], capture_output=True, text=True,
                    timeout=120)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            received = recorder.wait('matches', 1, 120)
            self.assertTrue(received, 'no match array within 120 s')
            decoded = messages.decode_matches(received[0])
            self.assertIn(decoded['stamp1_ns'], list(truth['stamps_ns']))
            self.assertGreaterEqual(len(decoded['keypoints0']), 100)
        finally:
            recorder.close()
        proc_output.assertWaitFor('subscribing reliable', process=matcher, timeout=10)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """Post-shutdown tests: launch_testing stopped the node with SIGINT."""

    def test_exit_code(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])

    def test_clean_shutdown_output(self, proc_output, matcher):
        # rclpy logs to stderr; launch_testing keeps both streams, in order of arrival.
        launch_testing.asserts.assertInStderr(proc_output, 'SIGINT: shutting down', matcher)
        text = ''.join(output.text.decode() for output in proc_output[matcher])
        started = text.index('publishing /lightglue/matches')
        self.assertGreater(text.index('SIGINT: shutting down'), started)
        self.assertNotIn('Traceback', text)

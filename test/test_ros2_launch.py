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
The package as a ROS user runs it: colcon build, `ros2 launch`, `ros2 run`, `ros2 topic/param`.

The checkout is built into a colcon workspace (conftest `colcon_workspace`) and every command
runs in its sourced environment, with the real launch / launch_ros / ros2cli (a ROS install, or
../shared/ros2-python installed by `make setup`). Frames come from recorded bags replayed by
`lightglue-ros replay` in another process; outputs are received over DDS by this process.
`ros2 launch` runs in a process group of its own and is stopped the way a terminal's Ctrl-C
does it: SIGINT to the whole group (launch and node both get it; launch forwards one more).
"""

import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import tempfile
import time

from lightglue_ros import messages
from lightglue_ros.ros import bag_record
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOPIC = '/camera/image_raw'
UP_TIMEOUT = 120.0  # s for the node to load and compile its model set on a busy machine
# ros2cli verbs without the daemon (it would outlive the test): discovery needs time here.
CLI_WAIT = ['--no-daemon', '--spin-time', '3', '--timeout', '10']

pytestmark = pytest.mark.slow


class Launched:
    """A command (`ros2 launch ...`) in a process group of its own, its output in a file."""

    def __init__(self, workspace, args: list) -> None:
        self.log = tempfile.TemporaryFile('w+')
        self.started = time.monotonic()
        self.process = subprocess.Popen(args, env=workspace.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)

    def output(self) -> str:
        """Return everything the command printed so far."""
        self.log.seek(0)
        return self.log.read()

    def child_pids(self) -> list[int]:
        """Return the pids launch reported for the processes it started."""
        return [int(p) for p in re.findall(r'process started with pid \[(\d+)\]', self.output())]

    def ctrl_c(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGINT to the whole group, as Ctrl-C in a terminal; return (exit code, seconds)."""
        start = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - start

    def close(self) -> str:
        """Kill whatever is left of the group; return the output."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        output = self.output()
        self.log.close()
        return output


def group_alive(pgid: int) -> bool:
    """Return True if any process of the group `pgid` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_clean_stop(launched: Launched, node_name: str = 'matcher_node-1') -> str:
    """Ctrl-C the launch: exit 0 within 2 s, the node finished cleanly, nothing left behind."""
    pids = launched.child_pids()
    code, seconds = launched.ctrl_c()
    output = launched.output()
    print(f'shutdown after Ctrl-C: {seconds:.2f} s (exit {code})')
    assert code == 0, output
    assert seconds < 2.0, f'{seconds:.2f} s\n{output}'
    assert f'[{node_name}]: process has finished cleanly' in output, output
    assert 'Traceback' not in output, output
    assert pids and not group_alive(launched.process.pid), output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    return output


def replay(workspace, bag: Path, *remaps: str, background: bool = False):
    """Publish a bag with `lightglue-ros replay` (its own process, no /clock)."""
    cmd = ['lightglue-ros', 'replay', str(bag), '--no-clock']
    if remaps:
        cmd += ['--remap', *remaps]
    if background:
        return subprocess.Popen(cmd, env=workspace.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    done = workspace.run(cmd, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def wait_quiet(recorder: demo_ros.OutputRecorder, kind: str, at_least: int,
               timeout: float = 180.0, quiet: float = 3.0) -> list:
    """Wait for `at_least` messages of `kind`, then until none came for `quiet` seconds."""
    received = recorder.wait(kind, at_least, timeout)
    assert len(received) >= at_least, f'{len(received)} {kind} message(s) in {timeout} s'
    count, last = len(received), time.monotonic()
    while time.monotonic() - last < quiet:
        time.sleep(0.2)
        if len(recorder.received[kind]) != count:
            count, last = len(recorder.received[kind]), time.monotonic()
    return list(recorder.received[kind])


@pytest.fixture(scope='module')
def workspace(colcon_workspace):
    """Return the built and sourced colcon workspace."""
    return colcon_workspace


@pytest.fixture(scope='module')
def sequence():
    """Return a hand-held camera's frames over a desk (rendered, known poses), 640x480."""
    return samples.handheld_sequence(7, 'desk')


@pytest.fixture(scope='module')
def temporal_bag(tmp_path_factory, sequence) -> dict:
    """Return a bag of the sequence on /camera/image_raw (+ camera_info) at 2 Hz."""
    out = tmp_path_factory.mktemp('bags') / 'temporal'
    stamps = [round((1.0 + i / 2.0) * 1e9) for i in range(len(sequence.frames))]
    bag = bag_record.write_images(out, sequence.frames, stamps, camera_info=sequence.K,
                                  topic=TOPIC, frame_id='camera', encoding='rgb8')
    return {'bag': bag, 'stamps': stamps}


def frame_stamp_ns(msg) -> int:
    """Return a message header's stamp in ns."""
    return messages.stamp_to_ns(msg.header.stamp)


def test_ros2_launch_temporal(workspace, aliked_models, temporal_bag, sequence):
    """
    `ros2 launch lightglue_ros matcher.launch.py` matches a replayed camera; Ctrl-C ends it.

    Prints the time from `ros2 launch` to the node being up and to the first published match.
    """
    launched = Launched(workspace, ['ros2', 'launch', 'lightglue_ros', 'matcher.launch.py',
                                    f'model_dir:={aliked_models}', f'image0:={TOPIC}'])
    recorder = demo_ros.OutputRecorder()
    try:
        assert recorder.wait_for_publisher(UP_TIMEOUT), launched.output()
        up = time.monotonic() - launched.started
        replay(workspace, temporal_bag['bag'])
        matches = wait_quiet(recorder, 'matches', 1)
        first = recorder.first_arrival['matches'] - launched.started
        poses = list(recorder.received['pose'])
        print(f'ros2 launch -> node up {up:.1f} s, -> first match {first:.1f} s '
              f'(replay started once up); {len(matches)} match arrays, {len(poses)} poses')
        stamps = temporal_bag['stamps']
        reference = {}
        for msg in matches:
            decoded = messages.decode_matches(msg)
            assert decoded['stamp1_ns'] in stamps and decoded['stamp0_ns'] in stamps
            assert decoded['stamp0_ns'] < decoded['stamp1_ns']
            assert len(decoded['keypoints0']) >= 100, decoded
            reference[decoded['stamp1_ns']] = decoded['stamp0_ns']
        assert poses, launched.output()
        for pose in poses:  # camera 1 in camera 0's frame: right against the rendered truth
            decoded = messages.decode_pose(pose)
            i = stamps.index(reference[decoded['stamp_ns']])
            j = stamps.index(decoded['stamp_ns'])
            truth = samples.relative_pose(sequence.poses, i, j)
            rot_err, _ = demo_ros.pose_errors(decoded, truth)
            assert rot_err < 1.0, (i, j, rot_err)
        assert_clean_stop(launched)
    finally:
        recorder.close()
        launched.close()


def test_ros2_launch_managed_node(workspace, aliked_models, temporal_bag):
    """`lifecycle:=true`: launch configures and activates the managed node; it matches."""
    launched = Launched(workspace, ['ros2', 'launch', 'lightglue_ros', 'matcher.launch.py',
                                    'lifecycle:=true', f'model_dir:={aliked_models}',
                                    f'image0:={TOPIC}'])
    recorder = demo_ros.OutputRecorder()
    try:
        assert recorder.wait_for_publisher(UP_TIMEOUT), launched.output()
        deadline = time.monotonic() + 60  # publishers exist from configure; wait for active
        while ']: active: ' not in launched.output():
            assert time.monotonic() < deadline, launched.output()
            time.sleep(0.2)
        up = time.monotonic() - launched.started
        replay(workspace, temporal_bag['bag'])
        matches = wait_quiet(recorder, 'matches', 1)
        print(f'ros2 launch lifecycle:=true -> active {up:.1f} s; {len(matches)} match arrays')
        stamps = temporal_bag['stamps']
        assert all(messages.decode_matches(m)['stamp1_ns'] in stamps for m in matches)
        output = assert_clean_stop(launched, 'matcher_lifecycle_node-1')
        assert 'finalized' in output, output
    finally:
        recorder.close()
        launched.close()


def test_ros2_launch_stereo_in_a_namespace(workspace, aliked_models, tmp_path, sequence):
    """`mode:=stereo namespace:=robot1` with two cameras: outputs under /robot1/lightglue."""
    stamps = [round((1.0 + i / 2.0) * 1e9) for i in range(len(sequence.frames) - 1)]
    bags = []
    for side, frames in (('left', sequence.frames[:-1]), ('right', sequence.frames[1:])):
        bags.append(bag_record.write_images(
            tmp_path / side, frames, stamps, camera_info=sequence.K,
            topic=f'/{side}/image_raw', frame_id=side, encoding='rgb8'))
    launched = Launched(workspace, [
        'ros2', 'launch', 'lightglue_ros', 'matcher.launch.py', 'mode:=stereo',
        'namespace:=robot1', f'model_dir:={aliked_models}', 'image0:=/left/image_raw',
        'image1:=/right/image_raw'])
    recorder = demo_ros.OutputRecorder(prefix='/robot1/lightglue')
    try:
        assert recorder.wait_for_publisher(UP_TIMEOUT), launched.output()
        players = [replay(workspace, bag, background=True) for bag in bags]
        for player in players:
            out, _ = player.communicate(timeout=120)
            assert player.returncode == 0, out
        matches = wait_quiet(recorder, 'matches', 1)
        pairs = {frame_stamp_ns(m) for m in matches}
        assert pairs <= set(stamps), pairs
        for msg in matches:
            decoded = messages.decode_matches(msg)
            assert decoded['stamp0_ns'] == decoded['stamp1_ns']  # a synchronized pair
            assert len(decoded['keypoints0']) >= 100
        assert recorder.received['pose'], launched.output()
        assert recorder.diagnostics('lightglue')['mode'] == 'stereo'
        names = recorder.node.get_node_names_and_namespaces()
        assert ('lightglue', '/robot1') in names, names
        assert_clean_stop(launched)
    finally:
        recorder.close()
        launched.close()


def _param_dump(workspace, node: str = '/lightglue') -> dict:
    done = workspace.run(['ros2', 'param', 'dump', node, *CLI_WAIT], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return yaml.safe_load(done.stdout)


def test_ros2_cli_against_the_running_node(workspace, aliked_models, temporal_bag, tmp_path):
    """
    `ros2 topic echo`, `ros2 param set/dump` as a user runs them against the launched node.

    echo shows the same match array the package's decoder reads; a live parameter applies to
    the next pair (full depth: the stop layer in /diagnostics becomes the last layer); a
    read-only one is refused; the dump starts the node again with the same parameters.
    """
    launched = Launched(workspace, ['ros2', 'launch', 'lightglue_ros', 'matcher.launch.py',
                                    f'model_dir:={aliked_models}', f'image0:={TOPIC}'])
    recorder = demo_ros.OutputRecorder()
    restarted = None
    try:
        assert recorder.wait_for_publisher(UP_TIMEOUT), launched.output()
        echo = subprocess.Popen(['ros2', 'topic', 'echo', '/lightglue/matches',
                                 'sensor_msgs/msg/PointCloud2', '--once', '--full-length',
                                 '--no-daemon'],
                                env=workspace.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30  # until echo's subscription is seen (+ the recorder's)
        while recorder.node.count_subscribers('/lightglue/matches') < 2:
            assert time.monotonic() < deadline and echo.poll() is None, echo.communicate()
            time.sleep(0.1)
        time.sleep(1.0)  # and the node's publisher has matched it
        replay(workspace, temporal_bag['bag'])
        echoed, errors = echo.communicate(timeout=120)
        assert echo.returncode == 0, errors
        wait_quiet(recorder, 'matches', 1)
        from rosidl_runtime_py.set_message import set_message_fields
        from sensor_msgs.msg import PointCloud2
        shown = PointCloud2()
        set_message_fields(shown, yaml.safe_load(echoed.split('\n---')[0]))
        sent = {frame_stamp_ns(m): m for m in recorder.received['matches']}
        from_echo = messages.decode_matches(shown)
        from_dds = messages.decode_matches(sent[frame_stamp_ns(shown)])
        assert len(from_echo['keypoints0']) >= 100
        for key in ('keypoints0', 'keypoints1', 'scores', 'indices0', 'indices1'):
            np.testing.assert_array_equal(from_echo[key], from_dds[key])

        stop_layers = _stop_layer(recorder)
        assert stop_layers < 9, 'the default depth confidence exits early on these pairs'
        done = workspace.run(['ros2', 'param', 'set', '/lightglue', 'depth_confidence', '-1.0',
                              *CLI_WAIT])
        assert 'Set parameter successful' in done.stdout, done.stdout + done.stderr
        count = len(recorder.received['matches'])
        replay(workspace, temporal_bag['bag'])
        wait_quiet(recorder, 'matches', count + 1)
        assert _stop_layer(recorder) == 9, 'depth_confidence -1 runs every layer'

        done = workspace.run(['ros2', 'param', 'set', '/lightglue', 'mode', 'stereo',
                              *CLI_WAIT])
        refused = done.stdout + done.stderr  # exit 0 either way: read what it says
        assert 'Setting parameter failed' in refused and 'read-only' in refused, refused

        dumped = _param_dump(workspace)
        params = dumped['/lightglue']['ros__parameters']
        assert params['depth_confidence'] == -1.0 and params['mode'] == 'temporal'
        assert_clean_stop(launched)
        dump_file = tmp_path / 'lightglue.yaml'
        dump_file.write_text(yaml.safe_dump(dumped))
        restarted = demo_ros.start_node(['--params-file', str(dump_file)], env=workspace.env)
        assert recorder.wait_for_publisher(UP_TIMEOUT)
        again = _param_dump(workspace)
        assert again == dumped
        daemon = subprocess.run(['pgrep', '-f', 'ros2-daemon --ros-domain-id '
                                 f'{os.environ["ROS_DOMAIN_ID"]} '], capture_output=True)
        assert daemon.returncode == 1, 'the ros2 CLI left a daemon behind'
    finally:
        recorder.close()
        launched.close()
        if restarted is not None:
            output = demo_ros.stop_node(restarted)
            assert restarted.returncode == 0, output


def _stop_layer(recorder: demo_ros.OutputRecorder, timeout: float = 10.0) -> int:
    """Return the stop layer of the newest pair from a /diagnostics message sent after now."""
    count = len(recorder.received['diagnostics'])
    recorder.wait('diagnostics', count + 1, timeout)
    return int(recorder.diagnostics()['stop_layer'])


def test_ros2_run(workspace, aliked_models):
    """`ros2 run lightglue_ros matcher_node --ros-args --params-file ...` starts the node."""
    share = workspace.install / 'lightglue_ros' / 'share' / 'lightglue_ros'
    launched = Launched(workspace, ['ros2', 'run', 'lightglue_ros', 'matcher_node',
                                    '--ros-args', '--params-file',
                                    str(share / 'config' / 'matcher.yaml'),
                                    '-p', f'model_dir:={aliked_models}'])
    recorder = demo_ros.OutputRecorder()
    try:
        assert recorder.wait_for_publisher(UP_TIMEOUT), launched.output()
        diagnostics = recorder.wait('diagnostics', 1, 10)
        assert diagnostics and recorder.diagnostics()['mode'] == 'temporal'
        code, seconds = launched.ctrl_c()
        output = launched.output()
        assert code == 0 and seconds < 2.0, (code, seconds, output)
        assert 'Traceback' not in output, output
        assert not group_alive(launched.process.pid)
    finally:
        recorder.close()
        launched.close()


def test_ros2_launch_convert(workspace, disk_models, tmp_path):
    """`ros2 launch lightglue_ros convert.launch.py extractor:=disk`: an up-to-date set is kept."""
    out = tmp_path / 'disk'
    shutil.copytree(disk_models, out)
    manifest = json.loads((out / 'manifest.json').read_text())
    keypoints = manifest['extractor']['max_keypoints']
    done = workspace.run(['ros2', 'launch', 'lightglue_ros', 'convert.launch.py',
                          'extractor:=disk', f'output:={out}', f'max_keypoints:={keypoints}'],
                         timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout + done.stderr
    assert 'process has finished cleanly' in text, text
    assert text.count('up to date') == len(manifest['files']), text
    assert json.loads((out / 'manifest.json').read_text())['files'] == manifest['files']

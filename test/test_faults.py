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
Faults a deployed node meets, each a test: the node in its own process over real DDS.

A broken or foreign model set and an absent device stop the plain node at start (one
`[FATAL]` line, exit 2) and fail the managed node's configure (the reason logged); a camera
without CameraInfo still gets matches (no pose, diagnostics say why); a camera driver that
dies and restarts with another QoS is followed; a bag replayed in a loop (/clock and stamps
jump back) restarts the temporal sequence. In-process checks of the same errors are in
test_engine.py (Engine) and test_node.py (MatcherNode constructor).
"""

import functools
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time

from conftest import wait_until
from lifecycle_msgs.msg import Transition
from lightglue_ros.ros import messages
from lightglue_ros.ros.ros_image import numpy_to_image
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import numpy as np
import pytest
from test_lifecycle import Manager

TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'  # the image topic's sibling
SIZE = (320, 240)  # small frames: fast extraction, one Fast DDS sample each
START_TIMEOUT = 60.0  # s for a node process to come up on a busy machine
REFUSAL_TIMEOUT = 30.0  # s for a refused start to exit (about 1 s here)
# Matching nodes: keep every frame (the first one compiles the extractor for its size).
MATCHER_ARGS = ['-p', 'processing_queue_size:=10', '-p', 'image_qos_depth:=10',
                '-p', 'diagnostics_period:=0.2', '-r', f'image0:={TOPIC}']


@functools.lru_cache(maxsize=1)
def _frames() -> tuple:
    """Return six frames of a hand-held camera over a desk (rendered, 320x240 rgb8)."""
    return tuple(samples.handheld_sequence(6, 'desk', size=SIZE).frames)


def _damaged(source: Path, dest: Path, files: dict) -> Path:
    """
    Return a copy of a model set with some files replaced.

    Untouched files are symlinks into the (cached) source, so nothing there is ever written.

    :param files: {name: bytes or a Path to copy}; the other files link to `source`.
    """
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in files:
            (dest / path.name).symlink_to(path)
    for name, content in files.items():
        (dest / name).write_bytes(content.read_bytes() if isinstance(content, Path)
                                  else content)
    return dest


def _without_checksums(models: Path) -> bytes:
    """Return a model set's manifest.json without the file checksums (hand-written sets)."""
    import json
    manifest = json.loads((models / 'manifest.json').read_text())
    for entry in manifest['files']:
        entry.pop('sha256', None)
    return json.dumps(manifest).encode()


def _without_stage(models: Path, stage: str) -> bytes:
    """Return a model set's manifest.json whose file list lacks `stage`."""
    import json
    manifest = json.loads((models / 'manifest.json').read_text())
    manifest['files'] = [e for e in manifest['files'] if e['stage'] != stage]
    return json.dumps(manifest).encode()


def _bad_model_set(fault: str, aliked: Path, disk: Path, tmp_path: Path) -> tuple[Path, list]:
    """
    Make the model set of `fault`; return it and what the refusal must say.

    :return: (model_dir, [texts the error line must contain: the problem, the fix]).
    """
    dest = tmp_path / fault
    truncated = (aliked / 'layer_3.bin').read_bytes()[:1000]
    if fault == 'missing':
        return dest, [f'no manifest.json in {dest}', f'lightglue-ros convert '
                      f'--extractor aliked --output {dest}']
    if fault == 'manifest-not-json':
        models = _damaged(aliked, dest, {'manifest.json': b'{"format_version": 1, '})
        return models, [f'{models}/manifest.json is not valid JSON', 're-run convert']
    if fault == 'manifest-not-an-object':  # valid JSON, another layout
        models = _damaged(aliked, dest, {'manifest.json': b'[]'})
        return models, [f'{models}/manifest.json is not laid out as `lightglue-ros convert` '
                        'writes it', 're-run convert']
    if fault == 'ir-truncated':
        models = _damaged(aliked, dest, {'layer_3.bin': truncated})
        return models, [f'{models}/layer_3.bin does not match its checksum', 're-run convert']
    if fault == 'extractor-of-disk':  # DISK's extractor IR under ALIKED's manifest
        models = _damaged(aliked, dest, {'extractor.xml': disk / 'extractor.xml',
                                         'extractor.bin': disk / 'extractor.bin'})
        return models, [f'{models}/extractor.xml does not match its checksum',
                        're-run convert']
    if fault == 'ir-truncated-no-checksums':  # a hand-written manifest: OpenVINO's error
        models = _damaged(aliked, dest, {'layer_3.bin': truncated,
                                         'manifest.json': _without_checksums(aliked)})
        return models, [f'cannot load {models}/layer_3.xml', 're-run convert']
    if fault == 'manifest-lacks-a-stage':  # the files listed do not make a model set
        models = _damaged(aliked, dest, {'manifest.json': _without_stage(aliked, 'layer_3')})
        return models, [f"model set {models} has no stage 'layer_3'", 're-run convert']
    raise ValueError(f'unknown fault {fault!r}')


def _start_refused(ros_args: list) -> tuple[int, str, float]:
    """Run the plain node until it exits by itself; return (exit code, output, seconds)."""
    started = time.monotonic()
    process = subprocess.run([sys.executable, '-m', 'lightglue_ros.node', '--ros-args',
                              *ros_args], capture_output=True, text=True,
                             timeout=REFUSAL_TIMEOUT)
    return process.returncode, process.stdout + process.stderr, time.monotonic() - started


def _single_fatal(output: str) -> str:
    """Assert the output is one `[FATAL] ... cannot start:` line and no traceback; return it."""
    fatal = [line for line in output.splitlines() if '[FATAL]' in line]
    assert len(fatal) == 1, output
    assert 'cannot start: ' in fatal[0], output
    assert 'Traceback' not in output, output
    return fatal[0]


@pytest.mark.parametrize('fault', [
    'missing', 'manifest-not-json', 'manifest-not-an-object', 'ir-truncated',
    'extractor-of-disk', 'ir-truncated-no-checksums', 'manifest-lacks-a-stage'])
def test_bad_model_set_stops_the_plain_node(aliked_models, disk_models, tmp_path, fault):
    """
    A missing, corrupt or mixed model set: one FATAL line naming the file and the fix, exit 2.

    test_node.py checks the constructor's exception for an empty directory; this is what a
    user of `python -m lightglue_ros.node` sees. A DISK set given for ALIKED is a valid set
    (the node runs DISK and says so in its start line): only files that do not fit their
    manifest are a fault, and the checksums catch them at start.
    """
    model_dir, expected = _bad_model_set(fault, aliked_models, disk_models, tmp_path)
    code, output, seconds = _start_refused(['-p', f'model_dir:={model_dir}'])
    print(f'{fault}: exit {code} in {seconds:.1f} s: {output.strip()}')
    assert code == 2, output
    line = _single_fatal(output)
    for text in expected:
        assert text in line, (text, line)


@pytest.mark.parametrize('device', ['GPU', 'NPU'])
def test_absent_device_stops_the_plain_node(aliked_models, device):
    """
    No fallback to CPU: a device this machine lacks is refused, naming the ones present.

    Engine checks `device` against `openvino.Core().available_devices` before compiling.
    """
    import openvino as ov
    available = ov.Core().available_devices
    if device in {d.split('.')[0] for d in available}:
        pytest.skip(f'this machine has an OpenVINO {device}')
    code, output, seconds = _start_refused(['-p', f'model_dir:={aliked_models}',
                                            '-p', f'device:={device}'])
    print(f'device {device}: exit {code} in {seconds:.1f} s: {output.strip()}')
    assert code == 2, output
    line = _single_fatal(output)
    assert f"OpenVINO device '{device}' is not present here" in line, line
    assert f'(available: {", ".join(available)}); use device CPU' in line, line


def test_unusable_cache_dir_stops_the_plain_node(aliked_models, tmp_path):
    """A cache_dir that cannot be created: one FATAL line saying what to pass, exit 2."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a directory')
    code, output, _ = _start_refused(['-p', f'model_dir:={aliked_models}',
                                      '-p', f'cache_dir:={blocker / "cache"}'])
    assert code == 2, output
    line = _single_fatal(output)
    assert f'cache_dir {blocker / "cache"} cannot be created' in line, line
    assert 'pass a writable directory' in line, line


def test_bad_model_set_fails_the_managed_configure(aliked_models, disk_models, tmp_path):
    """
    The managed node: each fault makes configure return FAILURE with its reason logged.

    One node process, the faults set in turn through set_parameters (as `ros2 param set`);
    it stays unconfigured after each, and configures once given a good set.
    """
    import openvino as ov
    faults = ['manifest-not-json', 'manifest-not-an-object', 'ir-truncated',
              'extractor-of-disk']
    if 'GPU' not in {d.split('.')[0] for d in ov.Core().available_devices}:
        faults.append('device')
    manager = Manager()
    node = demo_ros.start_node(['-p', f'model_dir:={tmp_path / "none"}'],
                               module='lightglue_ros.ros.lifecycle_node')
    expected = []
    try:
        for fault in faults:
            if fault == 'device':
                model_dir, device = aliked_models, 'GPU'
                expected.append(["OpenVINO device 'GPU' is not present here (available: ",
                                 'use device CPU'])
            else:
                (model_dir, texts), device = _bad_model_set(
                    fault, aliked_models, disk_models, tmp_path), 'CPU'
                expected.append(texts)
            assert manager.set_parameter('model_dir', str(model_dir)).successful
            assert manager.set_parameter('device', device).successful
            assert manager.transition(Transition.TRANSITION_CONFIGURE)[0] is False, fault
            assert manager.state() == 'unconfigured', fault
        assert manager.set_parameter('model_dir', str(aliked_models)).successful
        assert manager.set_parameter('device', 'CPU').successful
        assert manager.transition(Transition.TRANSITION_CONFIGURE)[0] is True
        assert manager.state() == 'inactive'
    finally:
        manager.close()
        output = demo_ros.stop_node(node)
    assert node.returncode == 0, output
    assert 'Traceback' not in output, output
    failures = [line for line in output.splitlines() if 'configure failed: ' in line]
    assert len(failures) == len(faults), output
    for fault, line, texts in zip(faults, failures, expected):
        for text in texts:
            assert text in line, (fault, text, line)


class Camera(demo_ros.PrivateNode):
    """A camera driver in a DDS participant of its own: rgb8 frames on TOPIC, no CameraInfo."""

    def __init__(self, reliability: str) -> None:
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        from sensor_msgs.msg import Image
        super().__init__('camera_driver')
        policy = {'reliable': ReliabilityPolicy.RELIABLE,
                  'best_effort': ReliabilityPolicy.BEST_EFFORT}[reliability]
        self.images = self.node.create_publisher(Image, TOPIC,
                                                 QoSProfile(depth=10, reliability=policy))
        self.start()

    def connected(self, timeout: float = 10.0) -> bool:
        """Wait until the node subscribes to this publisher (QoS compatible)."""
        if not wait_until(lambda: self.images.get_subscription_count() >= 1, timeout):
            return False
        time.sleep(0.25)  # let the subscription's side match this publisher too
        return True

    def publish(self, frame: np.ndarray, stamp_ns: int) -> None:
        """Publish an RGB frame stamped `stamp_ns`."""
        msg = numpy_to_image(frame, 'rgb8')
        msg.header.stamp = messages.ns_to_stamp(stamp_ns)
        msg.header.frame_id = 'camera'
        self.images.publish(msg)


def _start_matcher(models: Path, *ros_args: str) -> tuple:
    """Start the plain node (own process) and a recorder of its outputs; wait until up."""
    node = demo_ros.start_node(['-p', f'model_dir:={models}', *MATCHER_ARGS, *ros_args])
    recorder = demo_ros.OutputRecorder()
    if not recorder.wait_for_publisher(START_TIMEOUT):
        recorder.close()
        pytest.fail(f'the node did not come up: {demo_ros.stop_node(node)}')
    return node, recorder


def _pairs(recorder: demo_ros.OutputRecorder) -> list:
    """Return the (stamp0, stamp1) ns of every `~/matches` received so far."""
    return [(m['stamp0_ns'], m['stamp1_ns'])
            for m in map(messages.decode_matches, list(recorder.received['matches']))]


def _fresh_diagnostics(recorder: demo_ros.OutputRecorder, **values) -> dict:
    """Wait for a diagnostics status with these values (e.g. pairs_processed='2'); return it."""
    def current():
        diag = recorder.diagnostics()
        return diag if all(diag.get(k) == v for k, v in values.items()) else None
    assert wait_until(current, 10.0), (values, recorder.diagnostics())
    return current()


def test_no_camera_info_matches_without_pose(aliked_models):
    """
    No CameraInfo ever: matches are published, no pose, and diagnostics say why.

    Diagnostics: `camera_info` counts 0 on the sibling topic, the status message says no
    CameraInfo came on it, `pose` says 'no usable CameraInfo' ('off' is pose_method none).
    """
    frames, stamps = _frames()[:3], [10**9, 11 * 10**8, 12 * 10**8]
    node, recorder = _start_matcher(aliked_models)
    camera = Camera('reliable')
    try:
        assert camera.connected(), 'the node did not subscribe'
        for frame, stamp in zip(frames, stamps):
            camera.publish(frame, stamp)
        got = recorder.wait('matches', 2, timeout=60)
        diag = _fresh_diagnostics(recorder, pairs_processed='2')
        time.sleep(0.5)  # a pose, if one were published, would have arrived
        poses = list(recorder.received['pose'])
    finally:
        camera.close()
        recorder.close()
        output = demo_ros.stop_node(node)
    print('diagnostics without CameraInfo:', diag)
    assert node.returncode == 0, output
    pairs = [(m['stamp0_ns'], m['stamp1_ns']) for m in map(messages.decode_matches, got)]
    # Each frame matched with an earlier one (the previous frame or the keyframe).
    assert [s1 for _, s1 in pairs] == stamps[1:], (pairs, output)
    assert all(s0 in stamps and s0 < s1 for s0, s1 in pairs), pairs
    for msg in got:
        assert len(messages.decode_matches(msg)['scores']) > 100
    assert poses == [] and diag['poses_published'] == '0', diag
    assert diag['camera_info'] == f'0 on {INFO_TOPIC}', diag
    assert f'no CameraInfo received on {INFO_TOPIC}' in diag['_message'], diag
    assert diag['pose'] == 'no usable CameraInfo', diag
    assert f'no pose: no CameraInfo received on {INFO_TOPIC}' in output, output


# rclpy's default handler of the (expected) incompatible-QoS event logs with Logger.warn
@pytest.mark.filterwarnings('ignore:Deprecated in favor of')
def test_camera_driver_restart_is_followed(aliked_models):
    """
    The image publisher dies and comes back (a new participant), twice: matching resumes.

    The driver first publishes reliable, restarts with sensor-data QoS (best effort: a
    reliable subscription does not match it, so image_reliability auto must subscribe
    again), then restarts reliable again. Every frame after the first is matched with an
    earlier one (the frame before or the keyframe), across the restarts (stamps keep
    increasing): a restart of the driver is not a new sequence.
    """
    frames = _frames()
    stamps = [(10 + k) * 10**8 for k in range(len(frames))]
    node, recorder = _start_matcher(aliked_models, '-p', 'pose_method:=none')
    seen = []
    try:
        for phase, reliability in enumerate(('reliable', 'best_effort', 'reliable')):
            camera = Camera(reliability)
            try:
                assert camera.connected(), (f'phase {phase}: the node did not subscribe to '
                                            f'a {reliability} publisher', recorder.diagnostics())
                for k in (2 * phase, 2 * phase + 1):
                    camera.publish(frames[k], stamps[k])
                last = stamps[2 * phase + 1]
                assert wait_until(lambda: any(s1 == last for _, s1 in _pairs(recorder)), 60), (
                    phase, _pairs(recorder))
                seen.append(_fresh_diagnostics(
                    recorder, image_reliability=f'{reliability} (auto)')['image_reliability'])
            finally:
                camera.close()  # the driver dies: its participant leaves the graph
            assert wait_until(lambda: recorder.node.count_publishers(TOPIC) == 0), phase
        pairs = _pairs(recorder)
    finally:
        recorder.close()
        output = demo_ros.stop_node(node)
    print('image_reliability per driver start:', seen)
    assert node.returncode == 0, output
    assert [s1 for _, s1 in pairs] == stamps[1:], (pairs, output)
    # (The first frame after each restart has a pair too: no new sequence.)
    assert all(s0 in stamps and s0 < s1 for s0, s1 in pairs), pairs
    assert output.count(f'{TOPIC}: subscribing ') == 3, output


def test_bag_loop_restarts_the_sequence(aliked_models, tmp_path):
    """
    A bag replayed with --loop (use_sim_time: /clock and the stamps jump back at each loop).

    Every pair goes forward in time between two frames of one round (the frame before or the
    keyframe): none spans the jump; each round is matched again from its first frame, every
    later frame of it exactly once; no crash; SIGINT: exit 0.
    """
    n_frames = 4
    truth = samples.write_sample_bag(tmp_path / 'bag', n_frames=n_frames, rate=5.0,
                                     topic=TOPIC, frame_id='camera', scene='desk', size=SIZE)
    stamps = list(truth['stamps_ns'])
    node, recorder = _start_matcher(aliked_models, '-p', 'use_sim_time:=true')
    log = tempfile.TemporaryFile('w+')
    replay = subprocess.Popen([sys.executable, '-m', 'lightglue_ros.tools.cli', 'replay',
                               str(truth['bag']), '--loop'], stdout=log,
                              stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        # Into the third round: two jumps back seen.
        wait_until(lambda: len(recorder.received['matches']) > 2 * (n_frames - 1), 60)
        alive = node.poll() is None
        pairs = _pairs(recorder)
        # The node's ROS time (stamps of its diagnostics) follows /clock, back at each round.
        clock = [messages.stamp_to_ns(msg.header.stamp)
                 for msg in list(recorder.received['diagnostics'])
                 if any(status.name.startswith('lightglue:') for status in msg.status)]
    finally:
        replay.send_signal(signal.SIGINT)
        try:
            replay.wait(timeout=20)
        except subprocess.TimeoutExpired:
            replay.kill()
            replay.wait()
        recorder.close()
        output = demo_ros.stop_node(node)
        log.seek(0)
        replay_output = log.read()
        log.close()
    print(f'{len(pairs)} pairs over the loop:',
          [(stamps.index(s0), stamps.index(s1)) for s0, s1 in pairs])
    print('node clock (diagnostics stamps, s):', [round(t / 1e9, 2) for t in clock])
    assert alive, output
    assert any(later < earlier for earlier, later in zip(clock, clock[1:])), clock
    assert len(pairs) > 2 * (n_frames - 1), (pairs, output, replay_output)
    for stamp0, stamp1 in pairs:
        assert stamp0 < stamp1, (pairs, output)  # a pair across the jump goes backwards
    # Frames 1 .. n-1 of each round, in order: the first frame of a round has no pair (the
    # sequence restarts), so it is not matched with the last round's reference.
    later = [stamps.index(stamp1) for _, stamp1 in pairs]
    assert later == (list(range(1, n_frames)) * len(pairs))[:len(pairs)], pairs
    assert pairs.count((stamps[0], stamps[1])) >= 2, pairs  # each round starts afresh
    assert 'stamps went backwards' in output, output
    assert node.returncode == 0, output
    assert 'Traceback' not in output, output

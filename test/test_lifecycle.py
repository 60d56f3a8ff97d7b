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
The managed `lightglue` node in its own process, driven through its lifecycle services.

The node runs as `python -m lightglue_ros.ros.lifecycle_node --ros-args ...` (what `ros2 run
lightglue_ros matcher_lifecycle_node` starts); this process plays the lifecycle manager (rclpy
clients of /lightglue/change_state, get_state and set_parameters, as `ros2 lifecycle` and
`ros2 param` use them), the camera (an image publisher) and the consumer of the outputs.
"""

import importlib.util
from pathlib import Path
import signal
import time

from conftest import wait_until
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from lifecycle_msgs.srv import GetState
from lightglue_ros import messages
from lightglue_ros.ros.ros_image import numpy_to_image
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import numpy as np
import pytest
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image

ROOT = Path(__file__).resolve().parent.parent
MATCHER_LAUNCH = ROOT / 'launch' / 'matcher.launch.py'
TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'  # the image topic's sibling
MODULE = 'lightglue_ros.ros.lifecycle_node'
UP_TIMEOUT = 60.0  # s for the node's process to offer its services on a busy machine
# A queue of 10: the worker, busy with a pair's first frame, drops none (default 1: latest wins).
NODE_ARGS = ['-p', 'mode:=temporal', '-p', 'pose_method:=none', '-p', 'processing_queue_size:=10',
             '-p', 'diagnostics_period:=0.2', '-r', f'image0:={TOPIC}']


class Manager(demo_ros.OutputRecorder):
    """The node's outputs, plus lifecycle and parameter clients and an image publisher."""

    def __init__(self) -> None:
        super().__init__()
        node = self.node
        self.change_state = node.create_client(ChangeState, '/lightglue/change_state')
        self.get_state = node.create_client(GetState, '/lightglue/get_state')
        self.set_parameters = node.create_client(SetParameters, '/lightglue/set_parameters')
        self.images = node.create_publisher(
            Image, TOPIC, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    def call(self, client, request, timeout: float = 120.0, resend: float | None = None):
        """
        Call a service of the node and return the response.

        :param resend: for idempotent requests, send again after this many seconds without
            an answer: a server discovered a moment ago may not have matched this client's
            response reader yet, and DDS then drops its answer (a known ROS 2 race).
        """
        assert client.wait_for_service(timeout_sec=UP_TIMEOUT), f'no {client.srv_name}'
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            attempt_end = min(deadline, time.monotonic() + (resend or timeout))
            while not future.done() and time.monotonic() < attempt_end:
                time.sleep(0.01)
            if future.done() or time.monotonic() >= deadline:
                break
            client.remove_pending_request(future)
        assert future.done(), f'{client.srv_name}: no answer in {timeout} s'
        return future.result()

    def transition(self, transition_id: int) -> tuple[bool, float]:
        """Request a transition; return (success, seconds until the answer)."""
        request = ChangeState.Request()
        request.transition.id = transition_id
        assert self.change_state.wait_for_service(timeout_sec=UP_TIMEOUT)  # not timed
        started = time.monotonic()
        success = self.call(self.change_state, request).success
        return success, time.monotonic() - started

    def state(self) -> str:
        """Return the node's lifecycle state label ('unconfigured', 'inactive', ...)."""
        return self.call(self.get_state, GetState.Request(), resend=5.0).current_state.label

    def set_parameter(self, name: str, value):
        """Set one parameter as `ros2 param set` does; return its SetParametersResult."""
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(self.set_parameters, request, resend=5.0).results[0]

    def count(self, kind: str) -> int:
        """Return how many `kind` messages came (diagnostics: those of the lightglue node)."""
        if kind != 'diagnostics':
            return len(self.received[kind])
        return sum(status.name.startswith('lightglue:') for msg in self.received[kind]
                   for status in msg.status)

    def publish(self, image: np.ndarray, seconds: float) -> None:
        """Publish an RGB frame stamped `seconds` (whether or not anybody subscribes)."""
        msg = numpy_to_image(image, 'rgb8')
        msg.header.stamp = messages.ns_to_stamp(int(seconds * 1e9))
        msg.header.frame_id = 'camera'
        self.images.publish(msg)


def _subscribers(manager: Manager) -> tuple[int, int]:
    """Return the node's (image, CameraInfo) subscriptions as the graph shows them."""
    return (manager.node.count_subscribers(TOPIC), manager.node.count_subscribers(INFO_TOPIC))


def _match_pair(manager: Manager, stamps: tuple, pair: tuple) -> dict:
    """Publish a warp pair once subscribed; return the decoded matches it gave."""
    assert wait_until(lambda: _subscribers(manager) == (1, 1)), _subscribers(manager)
    assert wait_until(lambda: manager.images.get_subscription_count() == 1)
    before = manager.count('matches')
    for image, seconds in zip(pair[:2], stamps):
        manager.publish(image, seconds)
    got = manager.wait('matches', before + 1, timeout=120)
    assert len(got) == before + 1
    out = messages.decode_matches(got[-1])
    err = samples.reprojection_error(out['keypoints0'], out['keypoints1'], pair[2])
    assert len(err) > 300 and np.mean(err < 3) > 0.95
    return out


@pytest.fixture
def manager():
    manager = Manager()
    yield manager
    manager.close()


def test_transitions_subscribe_only_while_active(manager, aliked_models):
    """
    Configure, activate, deactivate (activate, deactivate again), clean up, shut down.

    Image and CameraInfo subscriptions exist only while active, although a camera publishes
    all along (image_reliability auto subscribes as soon as it sees one); matches and
    diagnostics come only while active. Prints the time of each transition.
    """
    pair = samples.warped_pair('astronaut')
    node = demo_ros.start_node(['-p', f'model_dir:={aliked_models}', *NODE_ARGS],
                               module=MODULE)
    times = {}
    try:
        assert manager.state() == 'unconfigured'
        assert manager.transition(Transition.TRANSITION_ACTIVATE)[0] is False  # not allowed
        assert manager.state() == 'unconfigured'
        assert manager.node.count_publishers(manager.matches_topic) == 0

        ok, times['configure'] = manager.transition(Transition.TRANSITION_CONFIGURE)
        assert ok and manager.state() == 'inactive'
        assert wait_until(lambda: manager.node.count_publishers(manager.matches_topic) == 1)
        time.sleep(1.5)  # QoS checks and diagnostics would have run by now
        assert _subscribers(manager) == (0, 0)
        assert manager.count('diagnostics') == 0

        ok, times['activate'] = manager.transition(Transition.TRANSITION_ACTIVATE)
        assert ok and manager.state() == 'active'
        out = _match_pair(manager, (1.0, 2.0), pair)
        assert (out['stamp0_ns'], out['stamp1_ns']) == (1 * 10**9, 2 * 10**9)
        assert manager.wait('diagnostics', 1, timeout=5) and manager.count('diagnostics')

        ok, times['deactivate'] = manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert ok and manager.state() == 'inactive'
        assert wait_until(lambda: _subscribers(manager) == (0, 0)), _subscribers(manager)
        time.sleep(0.5)  # anything sent before deactivate has arrived
        counts = manager.count('matches'), manager.count('diagnostics')
        manager.publish(pair[0], 5.0)
        manager.publish(pair[1], 6.0)
        time.sleep(2.0)
        assert (manager.count('matches'), manager.count('diagnostics')) == counts

        # Activated again: a new sequence (the frames before the pause are not matched).
        assert manager.transition(Transition.TRANSITION_ACTIVATE)[0]
        out = _match_pair(manager, (10.0, 11.0), pair)
        assert (out['stamp0_ns'], out['stamp1_ns']) == (10 * 10**9, 11 * 10**9)
        assert manager.transition(Transition.TRANSITION_DEACTIVATE)[0]

        ok, times['cleanup'] = manager.transition(Transition.TRANSITION_CLEANUP)
        assert ok and manager.state() == 'unconfigured'
        assert wait_until(lambda: manager.node.count_publishers(manager.matches_topic) == 0)
        ok, times['shutdown'] = manager.transition(
            Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert ok and manager.state() == 'finalized'
    finally:
        output = demo_ros.stop_node(node)
    print('transition times (service round trip): '
          + ', '.join(f'{name} {seconds:.2f} s' for name, seconds in times.items()))
    assert node.returncode == 0, output
    assert 'configured in' in output and 'active: temporal mode on ' + TOPIC in output, output
    assert 'finalized (from unconfigured)' in output, output


def test_failed_configure_stays_unconfigured(manager, aliked_models, tmp_path):
    """
    Invalid parameters, then an empty model directory: FAILURE, one line each, unconfigured.

    Fixed through set_parameters (as `ros2 param set`), configure succeeds; once configured
    the model directory is refused, a live parameter is not. SIGINT while active: exit 0.
    """
    empty = tmp_path / 'no_models'
    empty.mkdir()
    node = demo_ros.start_node(['-p', f'model_dir:={empty}', *NODE_ARGS, '-p', 'mode:=mono'],
                               module=MODULE)
    try:
        assert manager.state() == 'unconfigured'
        assert manager.transition(Transition.TRANSITION_CONFIGURE)[0] is False
        assert manager.state() == 'unconfigured'
        assert manager.set_parameter('mode', 'temporal').successful
        assert manager.transition(Transition.TRANSITION_CONFIGURE)[0] is False
        assert manager.state() == 'unconfigured'
        assert manager.node.count_publishers(manager.matches_topic) == 0

        assert manager.set_parameter('model_dir', str(aliked_models)).successful
        assert manager.transition(Transition.TRANSITION_CONFIGURE)[0] is True
        assert manager.state() == 'inactive'
        refused = manager.set_parameter('model_dir', str(empty))
        assert not refused.successful and 'read at configure' in refused.reason
        assert manager.set_parameter('score_threshold', 0.2).successful
        assert manager.transition(Transition.TRANSITION_ACTIVATE)[0] is True
        assert wait_until(lambda: _subscribers(manager) == (1, 1)), _subscribers(manager)
    finally:
        output = demo_ros.stop_node(node)
    assert node.returncode == 0, output
    failures = [line for line in output.splitlines() if 'configure failed' in line]
    assert len(failures) == 2, output
    assert 'mode must be one of' in failures[0], failures
    assert str(empty) in failures[1] and 'manifest' in failures[1], failures
    assert 'Traceback' not in output, output
    assert 'finalized (from active)' in output, output


def test_trigger_transitions_in_process(aliked_models, tmp_path):
    """In-process (as a component would be): what trigger_configure() etc. return."""
    from lightglue_ros.ros.lifecycle_node import MatcherLifecycleNode
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = MatcherLifecycleNode(context=context, parameter_overrides=[
            Parameter('model_dir', value=str(tmp_path)),
            Parameter('image_reliability', value='reliable')])  # subscribes at once
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.engine is None and node.matches_pub is None
        node.set_parameters([Parameter('model_dir', value=str(aliked_models))])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.engine is not None and node.inputs == []
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert len(node.inputs) == 1 and node.inputs[0].subscription is not None
        assert node._worker.is_alive()
        worker = node._worker
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert not worker.is_alive() and node.inputs[0].subscription is None
        engine = node.engine
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert engine.matcher._requests == {} and engine.extractor._compiled == {}  # freed
        assert node.engine is None and node.pipeline is None and node.matches_pub is None
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_repeated_sigint_exits_0(manager):
    """
    SIGINT repeated until the process is gone (Ctrl-C, then launch forwarding it): exit 0.

    Unconfigured, the node is through its shutdown in a moment, so later signals arrive while
    the interpreter exits (when Python restores default signal actions: exit -SIGINT).
    """
    node = demo_ros.start_node(['-p', 'model_dir:=/nonexistent'], module=MODULE)
    try:
        assert manager.state() == 'unconfigured'
        deadline = time.monotonic() + 30
        while node.poll() is None and time.monotonic() < deadline:
            node.send_signal(signal.SIGINT)
            time.sleep(0.02)
    finally:
        output = demo_ros.stop_node(node)
    assert node.returncode == 0, output
    assert 'finalized (from unconfigured)' in output, output


def _launch_actions(colcon_workspace, monkeypatch, **arguments) -> list:
    """Return the actions matcher.launch.py resolves to with these launch arguments."""
    from launch import LaunchContext  # colcon_workspace has checked for the ROS tooling
    monkeypatch.setenv('AMENT_PREFIX_PATH', colcon_workspace.env['AMENT_PREFIX_PATH'])
    spec = importlib.util.spec_from_file_location('matcher_launch', MATCHER_LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities[:-1]:
        entity.visit(context)
    context.launch_configurations.update(arguments)
    return module.matcher_node(context)


def _transition_event(action, start: str, goal: str):
    """Return the launch event of a TransitionEvent from `start` to `goal` (state labels)."""
    from launch_ros.events.lifecycle import StateTransition
    from lifecycle_msgs.msg import TransitionEvent
    msg = TransitionEvent()
    msg.start_state.label, msg.goal_state.label = start, goal
    return StateTransition(action=action, msg=msg)


def test_launch_lifecycle_starts_the_managed_node(colcon_workspace, monkeypatch):
    """lifecycle:=true: a LifecycleNode of the installed executable, configured at launch."""
    from launch.actions import EmitEvent
    from launch.actions import RegisterEventHandler
    from launch_ros.actions import LifecycleNode
    from launch_ros.events.lifecycle import ChangeState as ChangeStateEvent
    actions = _launch_actions(colcon_workspace, monkeypatch, lifecycle='true')
    nodes = [a for a in actions if isinstance(a, LifecycleNode)]
    assert len(nodes) == 1 and nodes[0].node_executable == 'matcher_lifecycle_node'
    executable = (colcon_workspace.install / 'lightglue_ros' / 'lib' / 'lightglue_ros'
                  / 'matcher_lifecycle_node')
    assert executable.is_file(), 'setup.py lacks the matcher_lifecycle_node entry point'
    events = [a.event for a in actions if isinstance(a, EmitEvent)]
    assert [e.transition_id for e in events] == [Transition.TRANSITION_CONFIGURE]
    assert isinstance(events[0], ChangeStateEvent) and events[0].lifecycle_node_matcher(nodes[0])
    handlers = [a.event_handler for a in actions if isinstance(a, RegisterEventHandler)]
    assert len(handlers) == 1 and handlers[0].handle_once
    assert [e.event.transition_id for e in handlers[0].entities] == [
        Transition.TRANSITION_ACTIVATE]
    # Activate after configure only: a deactivate by a lifecycle manager is not undone.
    assert handlers[0].matches(_transition_event(nodes[0], 'configuring', 'inactive'))
    assert not handlers[0].matches(_transition_event(nodes[0], 'deactivating', 'inactive'))
    # Without autostart the node is left unconfigured; without lifecycle, the plain node.
    actions = _launch_actions(colcon_workspace, monkeypatch, lifecycle='true',
                              autostart='false')
    assert [type(a) for a in actions if not type(a).__name__.startswith('SetEnv')] == [
        LifecycleNode]
    actions = _launch_actions(colcon_workspace, monkeypatch)
    assert not any(isinstance(a, LifecycleNode) for a in actions)
    assert actions[-1].node_executable == 'matcher_node'

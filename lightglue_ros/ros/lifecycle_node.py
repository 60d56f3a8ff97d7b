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
The managed (lifecycle) `lightglue` node: the plain node's phases behind ROS 2 transitions.

Run it with ``ros2 run lightglue_ros matcher_lifecycle_node --ros-args -p model_dir:=...``
(or ``python -m lightglue_ros.ros.lifecycle_node``); it starts unconfigured. Drive it with
``ros2 lifecycle set /lightglue configure`` then ``activate``, a lifecycle manager, or
``ros2 launch lightglue_ros matcher.launch.py lifecycle:=true`` (autostart by default).

- configure: read and check the parameters, load and compile the model set, create the
  (lifecycle) publishers. A bad parameter or model set logs one line and returns FAILURE:
  the node stays unconfigured; set the parameter and configure again.
- activate: create the image and CameraInfo subscriptions, the timers and the worker.
- deactivate: remove them and join the worker; nothing is published while inactive.
- cleanup: release the publishers and the model set. shutdown works from any state, and
  SIGINT / SIGTERM take the node through it before the process exits (0).

Parameters are declared at construction (`ros2 param` works while unconfigured). The ones
the plain node makes read-only can be set while unconfigured and are read at configure.
"""

import time

from lightglue_ros.ros import params
from lightglue_ros.ros.core import MatcherCore
from lightglue_ros.ros.core import NODE_NAME
from lightglue_ros.ros.node import run
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import LifecycleState
from rclpy.lifecycle import TransitionCallbackReturn


class MatcherLifecycleNode(MatcherCore, LifecycleNode):
    """LightGlue matching as a managed node: unconfigured until told otherwise."""

    def __init__(self, **kwargs) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._init_core()
        self._declare_parameters(read_only=False)
        self.add_on_set_parameters_callback(self.parameters_callback)
        self.add_post_set_parameters_callback(self.post_parameters_callback)
        self._finalized = False

    def _create_output(self, msg_type, topic: str, depth: int):
        return self.create_lifecycle_publisher(msg_type, topic, depth)

    def _destroy_output(self, publisher) -> None:
        self.destroy_lifecycle_publisher(publisher)

    def parameters_callback(self, changes) -> SetParametersResult:
        """Validate changes; once configured, refuse the ones only configure reads."""
        result = super().parameters_callback(changes)
        if result.successful and self.conf is not None:
            for change in changes:
                param = params.BY_NAME.get(change.name)
                if param is not None and not param.live:
                    return SetParametersResult(
                        successful=False, reason=f'{change.name} is read at configure: '
                        'deactivate and clean up the node, set it, then configure again')
        return result

    # -- transitions (executor thread) --------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model set and create the publishers; FAILURE keeps the node unconfigured."""
        started = time.perf_counter()
        try:
            self._configure()
        except Exception as exc:  # a bad value or model set: say why, stay unconfigured
            self._cleanup()
            reason = str(exc) if isinstance(exc, (ValueError, OSError)) \
                else f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'configure failed: {reason}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f'configured in {time.perf_counter() - started:.1f} s: {self._model_summary()}; '
            f'{self.matches_pub.topic_name} and {self.pose_pub.topic_name} publish once '
            'active')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, subscribe and start the worker."""
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        try:
            self._activate()
        except Exception as exc:  # e.g. a remap to an invalid topic name
            self._deactivate()
            super().on_deactivate(state)
            self.get_logger().error(f'activate failed: {type(exc).__name__}: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'active: {self._inputs_summary()}')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker, then disable the publishers."""
        self._deactivate()
        self.get_logger().info('inactive: image subscriptions removed, worker stopped')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the publishers and the model set."""
        self._cleanup()
        self.get_logger().info('unconfigured: model set and publishers released')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, whatever the state was (unconfigured, inactive or active)."""
        self._deactivate()
        self._cleanup()
        self._finalized = True
        self.get_logger().info(f'finalized (from {state.label})')
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After an unexpected error in a transition: release everything, be unconfigured."""
        self._deactivate()
        self._cleanup()
        return super().on_error(state)

    def destroy_node(self) -> None:
        """Take the node through shutdown (as Ctrl-C does) unless finalized, then destroy it."""
        if not getattr(self, '_finalized', True):
            self.trigger_shutdown()
        self._stop_worker()
        super().destroy_node()


def main(args=None) -> int:
    """Run the managed node until SIGINT / SIGTERM (exit 0); it starts unconfigured."""
    return run(MatcherLifecycleNode, args)


if __name__ == '__main__':
    raise SystemExit(main())

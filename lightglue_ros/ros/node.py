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
The `lightglue` node: synchronized images in, matches and relative pose out.

Run it with ``ros2 run lightglue_ros matcher_node --ros-args --params-file config/matcher.yaml``
or ``python -m lightglue_ros.node --ros-args --params-file config/matcher.yaml``. The
parameters, phases and inputs are in `core.py`, the per-pair work in `worker.py`; the managed
(lifecycle) variant is `lifecycle_node.py`.
"""

import signal
import threading

from lightglue_ros.ros.core import MatcherCore
from lightglue_ros.ros.core import NODE_NAME
import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

SPIN_SLICE = 0.1  # seconds the executor waits before the main thread checks for a stop signal


class MatcherNode(MatcherCore, Node):
    """
    LightGlue matching of synchronized camera pairs or consecutive frames.

    Configured and active from construction; the managed variant is
    `lightglue_ros.ros.lifecycle_node.MatcherLifecycleNode`.

    :raises ValueError: for invalid parameters or a model set that cannot be loaded.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._init_core()
        self._declare_parameters(read_only=True)
        self._configure()
        self.add_on_set_parameters_callback(self.parameters_callback)
        self.add_post_set_parameters_callback(self.post_parameters_callback)
        self._activate()
        self.get_logger().info(
            f'{self._inputs_summary()}; {self._model_summary()}; publishing '
            f'{self.matches_pub.topic_name} and {self.pose_pub.topic_name}')

    def destroy_node(self) -> None:
        """Stop the worker (finishing its current job), free the models, destroy the node."""
        self._release_models()
        super().destroy_node()


class _StopSignals:
    """
    SIGINT and SIGTERM request one orderly shutdown; any further one is noted, not raised.

    Ctrl-C under `ros2 launch` reaches the node twice (the terminal's process group, then
    launch forwarding it), and `docker stop` or systemd send SIGTERM: an exception raised while
    the worker is joined or the node destroyed would abort the shutdown with a traceback and
    a signal exit code. rclpy's own handlers are not installed (a second signal during its
    shutdown ended the process with -SIGINT); the executor spins in short slices so that the
    handler runs promptly. SIGKILL still ends the process at once.

    `ignore` is for the end of `run`: Python restores the default action of a signal with a
    Python handler while the interpreter exits, so launch's forwarded SIGINT, when it comes
    after a quick shutdown (~0.1 s after the first one), killed the process with -SIGINT.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, logger) -> None:
        self.logger = logger
        self.requested = threading.Event()
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        again = self.requested.is_set()
        self.requested.set()
        name = signal.Signals(signum).name
        try:
            self.logger.info(f'{name}: already shutting down' if again
                             else f'{name}: shutting down')
        except Exception:  # logging already finalised: nothing to add
            pass

    def ignore(self) -> None:
        """Ignore any further signal (the process is on its way out)."""
        for signum in self.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def run(node_class, args=None) -> int:
    """
    Construct `node_class()` and spin it until SIGINT / SIGTERM, then destroy it.

    :return: 0 after a signal, 2 when the constructor refused the parameters or model set.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(NODE_NAME)
    stop = _StopSignals(logger)
    try:
        node = node_class()
    except (ValueError, OSError, ParameterException) as exc:
        logger.fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        stop.ignore()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.requested.is_set():
            executor.spin_once(timeout_sec=SPIN_SLICE)
    except ExternalShutdownException:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        stop.ignore()
    return 0


def main(args=None) -> int:
    """Run the node until SIGINT / SIGTERM (exit 0); exit 2 on invalid parameters or model set."""
    return run(MatcherNode, args)


if __name__ == '__main__':
    raise SystemExit(main())

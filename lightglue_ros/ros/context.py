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

"""A private rclpy context, for replay and the tools' probes beside a caller's own ROS."""


def private_context():
    """
    Return an initialised rclpy Context of its own.

    No rclpy signal handlers (Ctrl-C stays a KeyboardInterrupt for the caller), and no
    arguments from the process's command line: rcl would read NAME:=VALUE there (a tool's
    own -p or --remap values) as global remaps for this context.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    return context

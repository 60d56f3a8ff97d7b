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
Start the `lightglue` matcher node: `ros2 launch lightglue_ros matcher.launch.py`.

For example (temporal mode on one camera, then stereo; CameraInfo is read from the image
topic's sibling, /camera/camera_info, unless camera_info0:= says otherwise):
  ros2 launch lightglue_ros matcher.launch.py image0:=/camera/image_raw
  ros2 launch lightglue_ros matcher.launch.py mode:=stereo image0:=/left/image_rect \
      image1:=/right/image_rect
The managed (lifecycle) node instead, configured and activated by this launch (autostart:=false
leaves it unconfigured for a lifecycle manager):
  ros2 launch lightglue_ros matcher.launch.py lifecycle:=true image0:=/camera/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import EmitEvent
from launch.actions import OpaqueFunction
from launch.actions import RegisterEventHandler
from launch.actions import SetEnvironmentVariable
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.actions import Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

# (launch argument, default, description); '<share>' is the package's share directory.
ARGUMENTS = [
    ('params_file', '<share>/config/matcher.yaml', 'node parameters (YAML)'),
    ('mode', '', 'temporal, stereo or pair (empty: the params file decides)'),
    ('model_dir', '', 'model set directory (empty: the params file decides)'),
    ('namespace', '', 'namespace of the node (outputs become /<ns>/lightglue/...)'),
    ('image0', 'image0', 'image topic of camera 0'),
    ('camera_info0', 'camera_info0', 'CameraInfo topic of camera 0 (unless set: the sibling '
     'of the image topic, /cam/image_raw -> /cam/camera_info)'),
    ('image1', 'image1', 'image topic of camera 1 (stereo/pair)'),
    ('camera_info1', 'camera_info1', 'CameraInfo topic of camera 1 (stereo/pair; unless set: '
     'the sibling of the image topic)'),
    ('use_sim_time', 'false', 'use /clock (rosbag replay)'),
    ('fastdds_profile', '<share>/config/fastdds_profile.xml',
     'Fast DDS profile for large images (empty: keep the environment)'),
    ('log_level', 'info', 'node log level'),
    ('lifecycle', 'false', 'start the managed (lifecycle) node matcher_lifecycle_node instead '
     'of matcher_node'),
    ('autostart', 'true', 'with lifecycle:=true: configure, then activate the node (false: '
     'leave it unconfigured for a lifecycle manager)'),
]
REMAPPED = ('image0', 'camera_info0', 'image1', 'camera_info1')


def _value(context, name: str) -> str:
    share = get_package_share_directory('lightglue_ros')
    return LaunchConfiguration(name).perform(context).strip().replace('<share>', share)


def _flag(context, name: str) -> bool:
    return _value(context, name).lower() in ('true', '1')


def _autostart(node: LifecycleNode) -> list:
    """Configure the managed node, then activate it once configure has made it inactive."""
    def change_state(transition: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition))

    # Only configuring -> inactive, once: a later deactivate (active -> inactive) by a
    # lifecycle manager is not undone.
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[change_state(Transition.TRANSITION_ACTIVATE)], handle_once=True))
    return [activate, change_state(Transition.TRANSITION_CONFIGURE)]


def matcher_node(context) -> list:
    """Resolve the launch arguments into the environment and the node action(s)."""
    actions = []
    profile = _value(context, 'fastdds_profile')
    if profile:
        actions.append(SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile))
    overrides = {name: _value(context, name) for name in ('mode', 'model_dir')
                 if _value(context, name)}
    overrides['use_sim_time'] = _flag(context, 'use_sim_time')
    node_args = {
        'package': 'lightglue_ros', 'name': 'lightglue', 'output': 'screen',
        'namespace': _value(context, 'namespace'),
        'parameters': [os.path.expanduser(_value(context, 'params_file')), overrides],
        'remappings': [(name, _value(context, name)) for name in REMAPPED],
        'arguments': ['--ros-args', '--log-level', _value(context, 'log_level')]}
    if not _flag(context, 'lifecycle'):
        return actions + [Node(executable='matcher_node', **node_args)]
    node = LifecycleNode(executable='matcher_lifecycle_node', **node_args)
    return actions + [node] + (_autostart(node) if _flag(context, 'autostart') else [])


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and start the node (plain, or managed with lifecycle:=true)."""
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=matcher_node)])

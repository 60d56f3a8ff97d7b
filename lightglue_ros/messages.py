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
Decode helpers for consumers of `~/matches`, `~/pose` and `~/features` (see docs/node.md).

The implementation lives in `lightglue_ros.ros.messages`; this module keeps the documented
import `from lightglue_ros.messages import decode_matches, decode_pose`.
"""

from lightglue_ros.ros.features import decode_features
from lightglue_ros.ros.messages import decode_matches
from lightglue_ros.ros.messages import decode_pose
from lightglue_ros.ros.messages import encode_matches
from lightglue_ros.ros.messages import encode_pose
from lightglue_ros.ros.messages import ns_to_stamp
from lightglue_ros.ros.messages import stamp_to_ns

__all__ = ['decode_features', 'decode_matches', 'decode_pose', 'encode_matches', 'encode_pose',
           'ns_to_stamp', 'stamp_to_ns']

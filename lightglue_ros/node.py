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
`python -m lightglue_ros.node`: the `lightglue` node's public entry point.

The node lives in `lightglue_ros.ros.node`; this module keeps the documented command.
"""

from lightglue_ros.ros.node import main
from lightglue_ros.ros.node import MatcherNode

__all__ = ['main', 'MatcherNode']

if __name__ == '__main__':
    raise SystemExit(main())

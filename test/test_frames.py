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

"""The node worker's latest-wins queue (no ROS needed)."""

import threading

from lightglue_ros.ros.frames import LatestQueue


def test_latest_queue_drops_the_oldest_and_counts():
    """A full queue drops its oldest item per new one; get is FIFO; close wakes the worker."""
    queue = LatestQueue(2)
    for item in range(5):
        queue.put(item)
    assert queue.dropped == 3
    assert [queue.get(), queue.get()] == [3, 4]
    got = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.close()
    worker.join(timeout=5)
    assert not worker.is_alive() and got == [None]

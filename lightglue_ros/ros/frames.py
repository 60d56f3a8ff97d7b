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
What the node's worker handles: decoded frames, the latest-wins queue and the counters.

No rclpy import: the queue and the counters are plain threading.
"""

from collections import deque
from dataclasses import dataclass
import threading
import time

import numpy as np

RATE_WINDOW = 5.0  # seconds over which input/processed rates are measured


class LatestQueue:
    """A bounded FIFO whose oldest item is dropped (and counted) when a new one arrives full."""

    def __init__(self, maxlen: int) -> None:
        self._items = deque()
        self._maxlen = maxlen
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item) -> None:
        """Add an item, dropping the oldest if full."""
        with self._cond:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get(self):
        """Block until an item is available; None once closed."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        """Return how many items wait for the consumer."""
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        """Wake the consumer and make `get` return None."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


@dataclass
class Frame:
    """A decoded image with what the worker needs to match and publish it."""

    camera: int
    header: object  # std_msgs/Header of the image message (not the message: its pixels go)
    image: np.ndarray
    stamp_ns: int
    frame_id: str
    features: dict


class Stats:
    """Counters and last-pair figures for /diagnostics (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inputs = deque()
        self.processed = deque()
        self.keyframes = deque()  # times a new temporal reference was taken
        self.input_count = 0
        self.processed_count = 0
        self.poses = 0
        self.skipped = 0  # frames or pairs skipped: bad input, or an internal error
        self.internal = 0  # of which internal errors (a bug: reported with a traceback)
        self.info_rejected = 0  # invalid CameraInfo messages ignored
        self.lost = 0
        self.last = {}
        self.warnings = {}  # key -> (monotonic time, text) of the latest warning
        self.logged = {}  # key -> (monotonic time, text) of the latest one logged

    @staticmethod
    def _rate(events: deque, now: float) -> float:
        while events and events[0] < now - RATE_WINDOW:
            events.popleft()
        return len(events) / RATE_WINDOW

    def rates(self) -> tuple[float, float, float]:
        """Return (input, processed, new reference) rates in Hz over `RATE_WINDOW` s."""
        now = time.monotonic()
        with self.lock:
            return (self._rate(self.inputs, now), self._rate(self.processed, now),
                    self._rate(self.keyframes, now))

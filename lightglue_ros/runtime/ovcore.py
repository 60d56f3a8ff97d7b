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

"""The process's one OpenVINO Core, the bound on oneDNN's primitive cache, the inference clock."""

from contextlib import contextmanager
import os
import threading
import time

import openvino as ov

# The matcher's stages see a new input shape on almost every pair (the keypoint counts, and
# the points left after pruning), and oneDNN keeps the primitives (with their JIT code) of
# each shape in a process-wide cache of 1024 by default: a node's memory grew ~8 MB a minute
# for ten minutes under load (`lightglue-ros stress soak --minutes 10`). 128 keeps the
# primitives of the recent shapes; the matcher also bounds OpenVINO's own per-model shape
# cache (matcher.RUNTIME_CACHE_CAPACITY). Read when the CPU plugin loads, i.e. before the first
# Core compiles anything; a value set by the user wins.
ONEDNN_PRIMITIVE_CACHE = 128
os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY', str(ONEDNN_PRIMITIVE_CACHE))

_lock = threading.Lock()
_core = None


def shared_core() -> ov.Core:
    """
    Return the process's OpenVINO Core, created on first use.

    A Core owns the device plugins. One per process (as OpenVINO's samples do) instead of one
    per model set: a node that reloads its models (lifecycle cleanup / configure), or a test
    process that starts many nodes, would otherwise create and drop plugins again and again.
    Per-model settings (cache directory, threads, precision) go to `compile_model`, never to
    the Core.
    """
    global _core
    with _lock:
        if _core is None:
            _core = ov.Core()
        return _core


class InferenceClock:
    """Seconds spent inside OpenVINO inference calls made through `infer` (all threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0

    def add(self, seconds: float) -> None:
        """Count one call of `seconds`."""
        with self._lock:
            self.seconds += seconds
            self.calls += 1


_clock = None


def infer(request: ov.InferRequest, inputs, **kwargs):
    """Run an infer request; its time counts when an `inference_clock` is active."""
    clock = _clock
    if clock is None:
        return request.infer(inputs, **kwargs)
    start = time.perf_counter()
    try:
        return request.infer(inputs, **kwargs)
    finally:
        clock.add(time.perf_counter() - start)


@contextmanager
def inference_clock():
    """
    Time every inference call of the runtime while the block runs (for benchmarks).

    Yields an `InferenceClock`; one at a time per process (an inner block replaces the outer
    one until it ends).
    """
    global _clock
    outer, _clock = _clock, InferenceClock()
    try:
        yield _clock
    finally:
        _clock = outer

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
Approximate-time pairing of N message streams (message_filters when importable, else ours).

Both backends behave like `message_filters.ApproximateTimeSynchronizer` (Python): each input keeps
a queue keyed by stamp (nanoseconds), at most `queue_size` entries, the smallest stamp evicted
first. Each arriving message is matched against the other queues once: for every other input the
candidates are the messages within `slop` of the new stamp, nearest first; the first combination
in that order whose spread (newest - oldest) is strictly below `slop` is emitted and removed.
Messages are never retried later, older messages are not purged by an emitted set, and a message
whose stamp equals a queued one of the same input replaces it. Headerless messages are dropped.
"""

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import functools
import itertools
import logging
import math
import threading
from typing import Any

logger = logging.getLogger(__name__)

BACKENDS = ('auto', 'message_filters', 'builtin')
# rclpy.duration.Duration(seconds=slop) truncates the same way.
_S_TO_NS = 1_000_000_000


@dataclass(frozen=True)
class SyncStats:
    """
    Counters of a synchronizer, one entry per input.

    Invariant: ``received[i] == emitted + dropped[i] + pending[i]``.

    :param received: messages handed to each input.
    :param dropped: messages discarded unpaired (evicted by queue overflow, replaced by a message
        with the same stamp, or headerless).
    :param pending: messages currently queued, waiting for partners.
    :param emitted: synchronized sets delivered to the callback.
    """

    received: tuple[int, ...]
    dropped: tuple[int, ...]
    pending: tuple[int, ...]
    emitted: int


def stamp_ns(msg: Any) -> int | None:
    """
    Return the header stamp of `msg` in nanoseconds, or None if it has no header stamp.

    :param msg: a ROS message with `header.stamp` (builtin_interfaces/Time or rclpy Time).
    :return: ``sec * 10**9 + nanosec``, or None.
    """
    stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
    if stamp is None:
        return None
    if hasattr(stamp, 'nanoseconds'):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * _S_TO_NS + int(stamp.nanosec)


def _check_args(num_inputs: int, queue_size: int, slop: float) -> None:
    if num_inputs < 1:
        raise ValueError(f'num_inputs {num_inputs} < 1; pass one input per synchronized topic')
    if queue_size < 1:
        raise ValueError(f'queue_size {queue_size} < 1; use at least 1 (message_filters '
                         'examples use 10)')
    if not math.isfinite(slop) or int(slop * _S_TO_NS) <= 0:
        raise ValueError(f'slop {slop} s is not a positive time; a set needs a spread < slop, '
                         'so use e.g. 0.01 s for hardware-synchronized cameras')


class _SyncInputs:
    """Input plumbing shared by both backends: index checks and subscription adapters."""

    num_inputs = 0

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_inputs:
            raise IndexError(f'input index {index} out of range; this synchronizer has '
                             f'{self.num_inputs} inputs (0..{self.num_inputs - 1})')

    def add(self, index: int, msg: Any) -> bool:
        """Feed `msg` to input `index`; return True if it completed a set."""
        raise NotImplementedError

    def input_callback(self, index: int) -> Callable[[Any], None]:
        """
        Return a one-argument callback feeding input `index`, for `create_subscription`.

        :param index: input number in [0, N).
        :return: ``callback(msg)``.
        """
        self._check_index(index)
        return functools.partial(_add_ignore_result, self, index)

    def connect_input(self, index: int, source: Any) -> None:
        """
        Feed input `index` from a message_filters-style source (has ``registerCallback``).

        :param index: input number in [0, N).
        :param source: e.g. a ``message_filters.Subscriber``.
        """
        source.registerCallback(self.input_callback(index))


def _add_ignore_result(sync: _SyncInputs, index: int, msg: Any) -> None:
    sync.add(index, msg)


def _deliver(callbacks: list, msgs: tuple) -> None:
    """Call every callback; log their exceptions instead of raising them."""
    # An exception escaping here would end the executor's spin, and inside message_filters it
    # would leave the synchronizer's lock held for good (it does not release it in a finally).
    for callback in callbacks:
        try:
            callback(*msgs)
        except Exception:
            logger.exception('synchronized-set callback %r failed', callback)


class ApproximateTimeSync(_SyncInputs):
    """
    Pair messages of N inputs by header stamp, like message_filters.ApproximateTimeSynchronizer.

    Usable without ROS subscriptions: feed input ``i`` with ``add(i, msg)``. Thread-safe: the
    callback runs on the thread whose message completed the set, with an internal re-entrant lock
    held (so sets come out in decision order); keep it short, e.g. hand the set to a queue.
    Exceptions raised by callbacks are logged, not propagated.

    :param num_inputs: number of inputs N (callback receives N messages, in input order).
    :param queue_size: messages kept per input while waiting for partners.
    :param slop: seconds; members of an emitted set differ by strictly less than this.
    :param callback: optional first callback, called as ``callback(msg0, ..., msgN-1)``.
    """

    backend = 'builtin'

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None] | None = None) -> None:
        _check_args(num_inputs, queue_size, slop)
        self.num_inputs = num_inputs
        self.queue_size = queue_size
        self.slop = slop
        self._slop_ns = int(slop * _S_TO_NS)
        # dicts keep insertion order, which breaks ties between equally near candidates.
        self._queues = [{} for _ in range(num_inputs)]
        self._lock = threading.RLock()
        self._callbacks = []
        self._received = [0] * num_inputs
        self._dropped = [0] * num_inputs
        self._emitted = 0
        self._warned_headerless = set()
        if callback is not None:
            self.register_callback(callback)

    def register_callback(self, callback: Callable[..., None]) -> None:
        """Call `callback(msg0, ..., msgN-1)` for every synchronized set."""
        with self._lock:
            self._callbacks.append(callback)

    def add(self, index: int, msg: Any) -> bool:
        """
        Feed `msg` to input `index`; emit a set if it completes one.

        :param index: input number in [0, N).
        :param msg: message with ``header.stamp``; headerless ones are dropped and counted.
        :return: True if a set was emitted by this call.
        """
        self._check_index(index)
        stamp = stamp_ns(msg)
        with self._lock:
            self._received[index] += 1
            if stamp is None:
                self._drop_headerless(index, msg)
                return False
            queue = self._queues[index]
            if stamp in queue:
                self._dropped[index] += 1
            queue[stamp] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
                self._dropped[index] += 1
            if stamp not in queue:
                return False  # the new message was the oldest one and was evicted
            stamps = self._find_set(index, stamp)
            if stamps is None:
                return False
            msgs = tuple(q.pop(s) for q, s in zip(self._queues, stamps))
            self._emitted += 1
            _deliver(self._callbacks, msgs)
            return True

    def _find_set(self, index: int, stamp: int) -> list[int] | None:
        """Return the stamps of the set completed by `stamp` on input `index`, or None."""
        per_input = []
        for other, queue in enumerate(self._queues):
            if other == index:
                continue
            near = [(abs(s - stamp), s) for s in queue if abs(s - stamp) <= self._slop_ns]
            if not near:
                return None
            near.sort(key=lambda c: c[0])  # stable: ties stay in arrival order
            per_input.append([s for _, s in near])
        # Lexicographic order over the per-input nearest-first lists, as message_filters does.
        for combo in itertools.product(*per_input):
            stamps = list(combo)
            stamps.insert(index, stamp)
            if max(stamps) - min(stamps) < self._slop_ns:
                return stamps
        return None

    def _drop_headerless(self, index: int, msg: Any) -> None:
        self._dropped[index] += 1
        level = logging.DEBUG if index in self._warned_headerless else logging.WARNING
        self._warned_headerless.add(index)
        logger.log(level, 'input %d: dropped a %s without header.stamp; approximate-time sync '
                   'needs stamped messages', index, type(msg).__name__)

    def pending(self) -> list[list[Any]]:
        """Return a snapshot of the queued messages per input, oldest stamp first."""
        with self._lock:
            return [[q[s] for s in sorted(q)] for q in self._queues]

    def stats(self) -> SyncStats:
        """Return a snapshot of the counters (see `SyncStats`)."""
        with self._lock:
            return SyncStats(tuple(self._received), tuple(self._dropped),
                             tuple(len(q) for q in self._queues), self._emitted)


class MessageFiltersSync(_SyncInputs):
    """
    Same API as `ApproximateTimeSync`, backed by message_filters.ApproximateTimeSynchronizer.

    Each input is a ``message_filters.SimpleFilter`` that `add` signals; drops are derived from
    ``received - emitted - pending`` because message_filters keeps no counters.

    :param num_inputs: number of inputs N.
    :param queue_size: messages kept per input.
    :param slop: seconds.
    :param callback: optional first callback, called as ``callback(msg0, ..., msgN-1)``.
    """

    backend = 'message_filters'

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None] | None = None) -> None:
        import message_filters
        _check_args(num_inputs, queue_size, slop)
        self.num_inputs = num_inputs
        self.queue_size = queue_size
        self.slop = slop
        self._inputs = [message_filters.SimpleFilter() for _ in range(num_inputs)]
        self._sync = message_filters.ApproximateTimeSynchronizer(self._inputs, queue_size, slop)
        self._sync.registerCallback(self._emit)
        self._lock = threading.Lock()
        self._callbacks = []
        self._received = [0] * num_inputs
        self._emitted = 0
        if callback is not None:
            self.register_callback(callback)

    def register_callback(self, callback: Callable[..., None]) -> None:
        """Call `callback(msg0, ..., msgN-1)` for every synchronized set."""
        self._callbacks.append(callback)

    def _emit(self, *msgs: Any) -> None:
        with self._lock:
            self._emitted += 1
        _deliver(self._callbacks, msgs)

    def add(self, index: int, msg: Any) -> bool:
        """
        Feed `msg` to input `index`; emit a set if it completes one.

        :param index: input number in [0, N).
        :param msg: message with ``header.stamp``.
        :return: True if a set was emitted by this call (exact when inputs are not concurrent).
        """
        self._check_index(index)
        with self._lock:
            self._received[index] += 1
            before = self._emitted
        self._inputs[index].signalMessage(msg)
        return self._emitted != before

    def pending(self) -> list[list[Any]]:
        """Return the queued messages per input, oldest stamp first; not from the callback."""
        with self._sync.lock:
            queues = [dict(q) for q in self._sync.queues]
        return [[q[s] for s in sorted(q)] for q in queues]

    def stats(self) -> SyncStats:
        """Return a snapshot of the counters (see `SyncStats`)."""
        # len() of message_filters' per-input dicts; not locked, to stay callable from callbacks.
        queues = getattr(self._sync, 'queues', [{}] * self.num_inputs)
        with self._lock:
            pending = tuple(len(q) for q in queues)
            dropped = tuple(max(0, r - self._emitted - p) for r, p in zip(self._received, pending))
            return SyncStats(tuple(self._received), dropped, pending, self._emitted)


def message_filters_available() -> bool:
    """Return True if ``message_filters`` (a ROS install) can be imported."""
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


def make_synchronizer(inputs: int | Sequence[Any], queue_size: int, slop: float,
                      callback: Callable[..., None] | None = None,
                      backend: str = 'auto') -> ApproximateTimeSync | MessageFiltersSync:
    """
    Create an approximate-time synchronizer of N inputs.

    :param inputs: N, then feed the inputs with ``add(i, msg)`` or ``input_callback(i)``; or a
        sequence of N message_filters-style sources (``registerCallback``), connected in order.
    :param queue_size: messages kept per input while waiting for partners.
    :param slop: seconds; members of a set differ by strictly less than this.
    :param callback: called as ``callback(msg0, ..., msgN-1)`` for every set.
    :param backend: 'auto' (message_filters when importable, else builtin), 'message_filters'
        or 'builtin'.
    :return: `MessageFiltersSync` or `ApproximateTimeSync` (same API; see ``.backend``).
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown sync backend {backend!r}; choose one of {", ".join(BACKENDS)}')
    sources = None if isinstance(inputs, int) else list(inputs)
    num_inputs = inputs if sources is None else len(sources)
    if backend == 'auto':
        backend = 'message_filters' if message_filters_available() else 'builtin'
    if backend == 'message_filters' and not message_filters_available():
        raise ImportError('sync backend message_filters requested but not importable; source '
                          'a ROS install with ros-$ROS_DISTRO-message-filters or use builtin')
    cls = MessageFiltersSync if backend == 'message_filters' else ApproximateTimeSync
    sync = cls(num_inputs, queue_size, slop, callback)
    for index, source in enumerate(sources or ()):
        sync.connect_input(index, source)
    logger.debug('approximate-time sync: %d inputs, queue %d, slop %.4f s, backend %s',
                 num_inputs, queue_size, slop, sync.backend)
    return sync


def subscribe(node: Any, sync: ApproximateTimeSync | MessageFiltersSync,
              topics: Sequence[tuple[type, str]], qos_profile: Any,
              callback_group: Any = None) -> list[Any]:
    """
    Create one rclpy subscription per input, each feeding `sync`.

    :param node: the rclpy node.
    :param sync: from `make_synchronizer` with ``len(topics)`` inputs.
    :param topics: ``(msg_type, topic)`` per input, in input order.
    :param qos_profile: QoS profile or history depth for every subscription.
    :param callback_group: e.g. a ReentrantCallbackGroup for a multi-threaded executor.
    :return: the subscriptions (destroy them with ``node.destroy_subscription``).
    """
    if len(topics) != sync.num_inputs:
        raise ValueError(f'{len(topics)} topics for a synchronizer of {sync.num_inputs} inputs; '
                         'give one (msg_type, topic) per input')
    return [node.create_subscription(msg_type, topic, sync.input_callback(index), qos_profile,
                                     callback_group=callback_group)
            for index, (msg_type, topic) in enumerate(topics)]

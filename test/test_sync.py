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
Approximate-time sync: message_filters semantics on real sensor_msgs/Image headers (no DDS).

Semantic tests run on the builtin backend and on the real message_filters as well, so
they also pin down what message_filters does.
"""

import itertools
import logging
import os
import random
import threading

from conftest import require_ros_tooling
from lightglue_ros.ros import sync as sync_mod
from lightglue_ros.ros.sync import ApproximateTimeSync
from lightglue_ros.ros.sync import make_synchronizer
from lightglue_ros.ros.sync import stamp_ns
from lightglue_ros.ros.sync import subscribe
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import String

NS = 1_000_000_000
MS = 1_000_000

BACKENDS = ['builtin', 'message_filters']


@pytest.fixture(autouse=True)
def _backend_available(request):
    """Skip the message_filters cases without the real package (fail under CI)."""
    callspec = getattr(request.node, 'callspec', None)
    if callspec is not None and callspec.params.get('backend') == 'message_filters':
        require_ros_tooling('message_filters')


def image(stamp: int, name: str) -> Image:
    """Return a header-only Image stamped `stamp` ns, identified by frame_id `name`."""
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, NS)
    msg.header.frame_id = name
    return msg


class Recorder:
    """Synchronizer callback that records the frame_ids of every emitted set."""

    def __init__(self) -> None:
        self.sets = []

    def __call__(self, *msgs: Image) -> None:
        self.sets.append(tuple(m.header.frame_id for m in msgs))


def make(backend: str, num_inputs: int = 2, queue_size: int = 10, slop: float = 0.01):
    rec = Recorder()
    return make_synchronizer(num_inputs, queue_size, slop, rec, backend=backend), rec


def feed(sync, events) -> None:
    """Feed (index, stamp_ns, name) events in order."""
    for index, stamp, name in events:
        sync.add(index, image(stamp, name))


def check_invariant(sync) -> None:
    st = sync.stats()
    for r, d, p in zip(st.received, st.dropped, st.pending):
        assert r == st.emitted + d + p, st


@pytest.mark.parametrize('backend', BACKENDS)
def test_exact_pairs(backend):
    sync, rec = make(backend)
    for t in range(10):
        assert not sync.add(0, image(t * NS, f'a{t}'))
        assert rec.sets == [(f'a{j}', f'b{j}') for j in range(t)]
        assert sync.add(1, image(t * NS, f'b{t}'))
    assert rec.sets == [(f'a{t}', f'b{t}') for t in range(10)]
    st = sync.stats()
    assert (st.received, st.dropped, st.pending, st.emitted) == ((10, 10), (0, 0), (0, 0), 10)
    assert sync.backend == backend


@pytest.mark.parametrize('backend', BACKENDS)
def test_jittered_pairs_within_slop(backend):
    sync, rec = make(backend, slop=0.005)
    rng = random.Random(1)
    for t in range(50):
        base = NS + t * 33 * MS  # 30 Hz
        sync.add(0, image(base + rng.randint(-2 * MS, 2 * MS), f'a{t}'))
        sync.add(1, image(base + rng.randint(-2 * MS, 2 * MS), f'b{t}'))
    assert rec.sets == [(f'a{t}', f'b{t}') for t in range(50)]
    check_invariant(sync)


@pytest.mark.parametrize('backend', BACKENDS)
def test_outside_slop_never_emitted(backend):
    sync, rec = make(backend, queue_size=100, slop=0.01)
    for t in range(20):
        sync.add(0, image(NS + t * 100 * MS, f'a{t}'))
        sync.add(1, image(NS + t * 100 * MS + 15 * MS, f'b{t}'))
    # The spread must be strictly below slop: a delta of exactly slop never pairs.
    sync.add(0, image(10 * NS, 'a_edge'))
    sync.add(1, image(10 * NS + 10 * MS, 'b_edge'))
    assert rec.sets == []
    assert sync.stats().pending == (21, 21)
    sync.add(1, image(10 * NS + 9_999_999, 'b_in'))
    assert rec.sets == [('a_edge', 'b_in')]


@pytest.mark.parametrize('backend', BACKENDS)
def test_queue_overflow_drops_oldest_stamp(backend):
    sync, rec = make(backend, queue_size=3)
    feed(sync, [(0, t * NS, f'a{t}') for t in (1, 2, 3, 4, 5)])
    st = sync.stats()
    assert (st.dropped, st.pending) == ((2, 0), (3, 0))
    assert [m.header.frame_id for m in sync.pending()[0]] == ['a3', 'a4', 'a5']
    sync.add(1, image(1 * NS, 'b1'))  # its partner a1 was evicted
    assert rec.sets == []
    sync.add(1, image(4 * NS, 'b4'))
    assert rec.sets == [('a4', 'b4')]
    # An out-of-order message older than a full queue evicts itself and never pairs.
    feed(sync, [(0, t * NS, f'a{t}') for t in (6, 7)])
    sync.add(0, image(2 * NS, 'a2_late'))
    assert [m.header.frame_id for m in sync.pending()[0]] == ['a5', 'a6', 'a7']
    st = sync.stats()
    assert st.dropped[0] == 2 + 1 + 1  # a1, a2, a3 (overflow by a7), a2_late
    check_invariant(sync)


@pytest.mark.parametrize('backend', BACKENDS)
def test_nearest_partner_chosen(backend):
    sync, rec = make(backend, slop=0.01)
    feed(sync, [(0, NS + d * MS, f'a{d}') for d in (0, 4, 8, 12)])
    sync.add(1, image(NS + 7 * MS, 'b7'))
    assert rec.sets == [('a8', 'b7')]
    # Equally near candidates: the one that arrived first wins.
    sync.add(1, image(NS + 2 * MS, 'b2'))
    assert rec.sets[-1] == ('a0', 'b2')
    assert [m.header.frame_id for m in sync.pending()[0]] == ['a4', 'a12']


@pytest.mark.parametrize('backend', BACKENDS)
def test_out_of_order_arrival(backend):
    rng = random.Random(0)
    for n in range(1, 10):
        sync, rec = make(backend, queue_size=n, slop=0.1)
        seq0 = [(0, t * NS, f'a{t}') for t in range(n)]
        seq1 = [(1, t * NS, f'b{t}') for t in range(n)]
        feed(sync, rng.sample(seq0, n))
        assert rec.sets == []
        feed(sync, rng.sample(seq1, n))
        assert sorted(rec.sets) == sorted((f'a{t}', f'b{t}') for t in range(n))


@pytest.mark.parametrize('backend', BACKENDS)
def test_interleaved_arrival_and_no_retry(backend):
    sync, rec = make(backend, queue_size=5, slop=0.01)
    feed(sync, [(1, 2 * NS, 'b2'), (0, 1 * NS, 'a1'), (0, 3 * NS, 'a3'), (1, 3 * NS + MS, 'b3'),
                (0, 2 * NS + 5 * MS, 'a2')])
    assert rec.sets == [('a3', 'b3'), ('a2', 'b2')]
    # a1 never finds a partner; it is not purged by later sets, only by queue overflow.
    assert [m.header.frame_id for m in sync.pending()[0]] == ['a1']
    feed(sync, [(0, t * NS, f'x{t}') for t in range(10, 15)])
    assert sync.stats().dropped == (1, 0)
    check_invariant(sync)


@pytest.mark.parametrize('backend', BACKENDS)
def test_same_stamp_replaces(backend):
    sync, rec = make(backend)
    feed(sync, [(0, NS, 'first'), (0, NS, 'second'), (1, NS, 'b')])
    assert rec.sets == [('second', 'b')]
    assert sync.stats().dropped == (1, 0)


@pytest.mark.parametrize('backend', BACKENDS)
def test_three_inputs(backend):
    sync, rec = make(backend, num_inputs=3, slop=0.01)
    # Each stamp is within slop of the newest, but the spread (16 ms) is not.
    feed(sync, [(0, NS, 'a'), (1, NS + 8 * MS, 'b'), (2, NS - 8 * MS, 'c')])
    assert rec.sets == []
    sync.add(2, image(NS + 2 * MS, 'c2'))
    assert rec.sets == [('a', 'b', 'c2')]
    # Candidates are tried input by input, nearest first (input 0 varies slowest): the first
    # combination with a spread below slop wins, not the one with the smallest spread.
    feed(sync, [(0, 5 * NS + 5 * MS, 'a+5'), (0, 5 * NS - 7 * MS, 'a-7'),
                (1, 5 * NS - 6 * MS, 'b-6'), (1, 5 * NS + 8 * MS, 'b+8')])
    sync.add(2, image(5 * NS, 'c0'))
    assert rec.sets[-1] == ('a+5', 'b+8', 'c0')  # (a+5, b-6) spans 11 ms; (a-7, b-6) only 7
    check_invariant(sync)


@pytest.mark.parametrize('backend', BACKENDS)
def test_headerless_dropped(backend):
    sync, rec = make(backend)
    sync.add(0, String(data='no header'))
    feed(sync, [(0, NS, 'a'), (1, NS, 'b')])
    assert rec.sets == [('a', 'b')]
    st = sync.stats()
    assert (st.received, st.dropped) == ((2, 1), (1, 0))


@pytest.mark.parametrize('backend', BACKENDS)
def test_callback_exception_is_logged(backend, caplog):
    sync, rec = make(backend)

    def broken(*msgs):
        raise RuntimeError('boom')

    sync.register_callback(broken)
    with caplog.at_level(logging.ERROR, logger='lightglue_ros.ros.sync'):
        assert sync.add(0, image(NS, 'a')) is False
        assert sync.add(1, image(NS, 'b')) is True
    assert 'synchronized-set callback' in caplog.text and 'boom' in caplog.text
    # Neither backend is left locked: the next pair still comes through.
    feed(sync, [(0, 2 * NS, 'a2'), (1, 2 * NS, 'b2')])
    assert rec.sets == [('a', 'b'), ('a2', 'b2')]


def reference(events, num_inputs, queue_size, slop_ns):
    """
    Brute-force message_filters semantics, stated as a minimum instead of a search.

    On each arrival, among all combinations of queued messages (one per other input) whose
    stamps are each within slop of the new stamp and whose spread with it is below slop, take
    the lexicographically smallest key ((distance, queue position) per other input).
    """
    queues = [[] for _ in range(num_inputs)]  # [stamp, name] in dict insertion order
    out = []
    for index, stamp, name in events:
        queue = queues[index]
        same = [e for e in queue if e[0] == stamp]
        if same:
            same[0][1] = name
        else:
            queue.append([stamp, name])
        while len(queue) > queue_size:
            queue.remove(min(queue, key=lambda e: e[0]))
        if not any(e[0] == stamp for e in queue):
            continue
        others = [j for j in range(num_inputs) if j != index]
        best = None
        for combo in itertools.product(*(list(enumerate(queues[j])) for j in others)):
            stamps = [e[0] for _, e in combo]
            if any(abs(s - stamp) > slop_ns for s in stamps):
                continue
            if max(stamps + [stamp]) - min(stamps + [stamp]) >= slop_ns:
                continue
            key = tuple((abs(e[0] - stamp), pos) for pos, e in combo)
            if best is None or key < best[0]:
                best = (key, combo)
        if best is None:
            continue
        chosen = dict(zip(others, (e for _, e in best[1])))
        chosen[index] = next(e for e in queue if e[0] == stamp)
        out.append(tuple(chosen[j][1] for j in range(num_inputs)))
        for j, e in chosen.items():
            queues[j].remove(e)
    return out


def random_events(rng, num_inputs, count):
    """Streams at a common rate with jitter, per-input offsets, losses, bursts and reordering."""
    offsets = [rng.randint(-15, 15) * MS for _ in range(num_inputs)]
    period = rng.choice([10, 33, 50]) * MS
    events = []
    for k in range(count):
        for i in range(num_inputs):
            if rng.random() < 0.15:
                continue  # lost frame
            jitter = rng.randint(-8, 8) * MS if rng.random() < 0.5 else 0
            events.append((i, NS + k * period + offsets[i] + jitter, f'{i}:{k}'))
    # Local reordering (different transport delays), plus occasional duplicate stamps.
    for _ in range(len(events) // 4):
        a = rng.randrange(len(events))
        b = min(len(events) - 1, a + rng.randint(1, 6))
        events[a], events[b] = events[b], events[a]
    for _ in range(count // 20):
        i, s, name = rng.choice(events)
        events.insert(rng.randrange(len(events)), (i, s, name + 'dup'))
    return events


@pytest.mark.parametrize('backend', BACKENDS)
def test_matches_brute_force_reference(backend):
    rng = random.Random(42)
    for trial in range(120):
        num_inputs = rng.choice([2, 2, 3])
        queue_size = rng.choice([1, 2, 3, 5, 10])
        slop = rng.choice([0.005, 0.01, 0.02, 0.04])
        events = random_events(rng, num_inputs, rng.randint(5, 60))
        sync, rec = make(backend, num_inputs, queue_size, slop)
        feed(sync, events)
        expected = reference(events, num_inputs, queue_size, int(slop * NS))
        assert rec.sets == expected, (trial, num_inputs, queue_size, slop)
        check_invariant(sync)


def test_thread_safety():
    # Four feeding threads (two per input, like a multi-threaded executor); a barrier bounds
    # their skew to less than the queue, so every pair must be found exactly once.
    sync, rec = make('builtin', queue_size=64, slop=0.005)
    lock = threading.Lock()
    emitted = []

    def callback(*msgs):
        with lock:
            emitted.append(msgs)

    sync.register_callback(callback)
    count = 2000
    barrier = threading.Barrier(4)

    def worker(index, parity):
        for k in range(parity, count, 2):
            if k % 16 < 2:
                barrier.wait()
            sync.add(index, image(NS + k * 10 * MS + index * MS, f'{index}:{k}'))

    threads = [threading.Thread(target=worker, args=(i, p)) for i in (0, 1) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = sync.stats()
    assert st == sync_mod.SyncStats((count, count), (0, 0), (0, 0), count)
    assert len(emitted) == len(rec.sets) == count
    assert sorted(rec.sets) == sorted((f'0:{k}', f'1:{k}') for k in range(count))
    for a, b in emitted:
        assert stamp_ns(b) - stamp_ns(a) == MS


def test_input_adapters():
    class Source:
        """A message_filters-style source: registerCallback(cb) and signal(msg)."""

        def __init__(self):
            self.callbacks = []

        def registerCallback(self, cb, *args):  # noqa: N802 - message_filters' name
            self.callbacks.append((cb, args))

        def signal(self, msg):
            for cb, args in self.callbacks:
                cb(msg, *args)

    sources = [Source(), Source()]
    rec = Recorder()
    sync = make_synchronizer(sources, 10, 0.01, rec, backend='builtin')
    assert sync.num_inputs == 2
    sources[1].signal(image(NS, 'b'))
    sources[0].signal(image(NS + MS, 'a'))
    assert rec.sets == [('a', 'b')]
    cb = sync.input_callback(1)
    sync.add(0, image(2 * NS, 'a2'))
    assert cb(image(2 * NS, 'b2')) is None
    assert rec.sets[-1] == ('a2', 'b2')


def test_subscribe_with_rclpy(monkeypatch):
    import rclpy
    from rclpy.callback_groups import ReentrantCallbackGroup
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=100 + os.getpid() % 100)
    try:
        node = rclpy.create_node('sync_test', context=context)
        sync, rec = make('builtin')
        subs = subscribe(node, sync, [(Image, 'image0'), (Image, 'image1')], 1,
                         callback_group=ReentrantCallbackGroup())
        assert [s.topic_name for s in subs] == ['/image0', '/image1']
        subs[0].callback(image(NS, 'a'))
        subs[1].callback(image(NS, 'b'))
        assert rec.sets == [('a', 'b')]
        with pytest.raises(ValueError, match='3 topics for a synchronizer of 2 inputs'):
            subscribe(node, sync, [(Image, 'x')] * 3, 1)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_backend_selection_and_errors(monkeypatch):
    monkeypatch.setattr(sync_mod, 'message_filters_available', lambda: False)
    assert make_synchronizer(2, 5, 0.01).backend == 'builtin'
    with pytest.raises(ImportError, match='message_filters requested but not importable'):
        make_synchronizer(2, 5, 0.01, backend='message_filters')
    with pytest.raises(ValueError, match="unknown sync backend 'fast'"):
        make_synchronizer(2, 5, 0.01, backend='fast')
    with pytest.raises(ValueError, match='slop 0 s is not a positive time'):
        ApproximateTimeSync(2, 5, 0)
    with pytest.raises(ValueError, match='slop nan s'):
        ApproximateTimeSync(2, 5, float('nan'))
    with pytest.raises(ValueError, match='queue_size 0 < 1'):
        ApproximateTimeSync(2, 0, 0.01)
    with pytest.raises(ValueError, match='num_inputs 0 < 1'):
        ApproximateTimeSync(0, 5, 0.01)
    sync = ApproximateTimeSync(2, 5, 0.01)
    with pytest.raises(IndexError, match=r'input index 2 out of range.*2 inputs \(0..1\)'):
        sync.add(2, image(NS, 'x'))
    with pytest.raises(IndexError, match='input index -1'):
        sync.input_callback(-1)


def test_stamp_ns():
    assert stamp_ns(image(3 * NS + 7, 'x')) == 3 * NS + 7
    assert stamp_ns(String()) is None
    from rclpy import time as rclpy_time

    class Stamped:
        """A message whose header.stamp is an rclpy Time, as message_filters accepts."""

        class header:  # noqa: N801
            stamp = rclpy_time.Time(nanoseconds=5 * NS + 1)

    assert stamp_ns(Stamped()) == 5 * NS + 1

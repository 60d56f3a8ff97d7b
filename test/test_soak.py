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

"""`lightglue-ros stress soak`, the CI form: one minute at twice the node's capacity."""

from lightglue_ros.tools import soak


def test_soak_overload(aliked_models):
    """
    Overloaded, the node drops frames but stays responsive, bounded in memory and alive.

    Parameter services answer within 1 s, /diagnostics keeps its 0.5 s period (the executor
    is never blocked), latency p99 stays within 4 pair times in every quarter of the run
    (latest-wins: no backlog), RSS grows < 50 MB after the first half, SIGINT exits 0. The
    figures add up: frames sent match rate x duration, every received frame is processed,
    dropped or waiting. The long form: `lightglue-ros stress soak --minutes 10`.
    """
    minutes = 1.0
    r = soak.run_soak(aliked_models, overload=2.0, minutes=minutes, mode='temporal')
    print(soak.format_soak_report(r))
    assert r['passed'], (r['failures'], r['node_output_tail'])
    assert r['node_alive_at_end'] and r['node_exit_code'] == 0
    assert r['param_rounds'] >= 20 and r['param_rounds_answered'] == r['param_rounds']
    assert max(r['get_parameters_max_ms'], r['set_parameters_max_ms']) < 1000.0
    assert r['diagnostics_max_gap_s'] < 1.5 and r['diagnostics_messages'] >= 80
    windows = r['latency_windows']
    assert len(windows) == 4 and all(w['pairs'] > 0 for w in windows), windows
    assert all(w['p99_ms'] <= r['latency_bound_ms'] for w in windows), windows
    assert r['latency_bound_ms'] == round(4000.0 / r['capacity_pairs_per_s'], 1)
    assert abs(r['warmup_s'] - 30.0) <= 1.5 and r['rss_growth_mb'] < 50.0

    assert r['capacity_pairs_per_s'] > 0
    assert abs(r['rate_hz'] - 2.0 * r['capacity_pairs_per_s']) < 0.02
    expected = r['rate_hz'] * minutes * 60.0
    assert abs(r['overload_frames'] - expected) <= 0.2 * expected, r['overload_frames']
    assert abs(r['publish_s'] - 60.0 * minutes) <= 3.0, r['publish_s']
    assert r['frames_received'] <= r['frames_sent']
    handled = (r['dropped_queue'] + r['dropped_sync'] + r['frames_skipped']
               + r['pairs_processed'] + r['queue_length'])
    assert handled <= r['frames_received'], (handled, r['frames_received'])
    # Twice the capacity with a one-frame queue: about half the overload frames are dropped.
    assert r['dropped_queue'] >= 0.25 * r['overload_frames']
    assert r['latency_samples'] > 0
    assert 0 < r['latency_p50_ms'] <= r['latency_p99_ms'] < 10_000.0
    assert len(r['rss_mb']) >= 10
    contract = ('capacity_hz', 'overload', 'minutes', 'rss_start_mb', 'rss_end_mb',
                'rss_growth_mb', 'latency_ms_p50', 'latency_ms_p99', 'param_max_ms', 'dropped',
                'crashes')
    assert all(r[key] is not None for key in contract), {k: r.get(k) for k in contract}
    assert r['crashes'] == 0 and r['dropped']['queue'] == r['dropped_queue']

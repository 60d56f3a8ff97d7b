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

"""`lightglue-ros bench-node`: the node in its own process at rising rates, and the engine."""

import json

from lightglue_ros.tools.bench_node import rate_row
from lightglue_ros.tools.cli import main
import pytest


def test_rate_row_counts_only_the_pairs_of_its_frames():
    """Matches of frames sent at another rate (the warm-up, the rate before) do not count."""
    ms = 1_000_000  # ns
    stamps = [10 * ms, 20 * ms, 30 * ms, 40 * ms]
    matches = [(15 * ms, 5 * ms, 1 * ms), (25 * ms, 10 * ms, 5 * ms), (45 * ms, 20 * ms, 10 * ms),
               (60 * ms, 40 * ms, 20 * ms), (70 * ms, 50 * ms, 40 * ms)]
    row = rate_row(4.0, stamps, matches, span_s=1.0)
    assert (row['frames'], row['pairs'], row['pairs_per_s']) == (4, 3, 3.0)
    assert row['processed_share'] == 0.75
    assert row['latency_p50_ms'] == 20.0  # its three arrive 15, 25 and 20 ms after the stamp


def test_bench_node_table_and_json(aliked_models, tmp_path, capsys):
    """
    Two rates against the node started from the shipped parameters; the engine on its pairs.

    Below capacity (1 Hz) the node matches every frame; each rate counts its own frames only;
    the engine alone times exactly the pairs the node published at the top rate (each a frame
    and an earlier reference); the overhead is the ratio of the two rates.
    """
    out = tmp_path / 'bench_node.json'
    code = main(['bench-node', '--models', str(aliked_models), '--rates', '1', '6',
                 '--seconds', '5', '--json', str(out)])
    text = capsys.readouterr().out
    print(text)
    assert code == 0
    report = json.loads(out.read_text())
    assert report['settings']['temporal_reference'] == 'keyframe'  # the shipped default
    (result,) = report['results']
    slow, fast = result['rows']
    assert (slow['rate_hz'], fast['rate_hz']) == (1.0, 6.0)
    assert slow['frames'] == 5 and fast['frames'] == 30
    assert slow['pairs'] == slow['frames'], slow  # below capacity: every frame is matched
    assert 0 < fast['pairs'] <= fast['frames']
    assert slow['latency_p50_ms'] > 0 and fast['latency_p99_ms'] >= fast['latency_p50_ms']
    pairs = result['pairs']
    assert len(pairs) == fast['pairs']
    known = [(i, j) for i, j in pairs if i is not None]
    # Frame indices into the probe's 40-frame pan (a reference from the rate before can show
    # the same image: each rate restarts the pan).
    assert all(0 <= i < 40 and 0 <= j < 40 for i, j in known), pairs
    assert result['engine']['pairs'] == len(known) > 0
    sustained = max(slow['pairs_per_s'], fast['pairs_per_s'])
    assert result['sustained_pairs_per_s'] == sustained
    assert result['overhead'] == pytest.approx(result['engine']['pairs_per_s'] / sustained - 1)
    assert 'node overhead' in text and 'engine alone on the same' in text

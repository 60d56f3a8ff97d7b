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
`lightglue-ros stream-check` over real DDS with Fast DDS defaults (no profile anywhere).

The command runs in a child process: Fast DDS reads FASTDDS_DEFAULT_PROFILES_FILE once per
process, and this test process may already hold a participant made with the project profile
(conftest.py sets it). The node runs in its own process, as deployed.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

from lightglue_ros.tools import stream_check
import pytest


def _stream_check(models: Path, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / 'stream_check.json'
    proc = subprocess.run([sys.executable, '-m', 'lightglue_ros.tools.cli', 'stream-check',
                           '--models', str(models), '--profile', 'none', '--json', str(out),
                           *args], capture_output=True, text=True, timeout=600,
                          env=os.environ.copy())  # conftest.py's ROS_DOMAIN_ID and discovery
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())['rows']
    assert len(rows) == 1, rows
    row = rows[0]
    for key in ('frames_received', 'frames_lost_transport', 'image_reliability',
                'pairs_processed'):
        assert row[key] is not None, f'the node does not report {key} in /diagnostics: {row}'
    return row


def test_reliable_640x480_reaches_the_node(aliked_models, tmp_path):
    """A reliable 640x480 camera at 10 Hz: the node takes reliable QoS and gets every frame."""
    row = _stream_check(aliked_models, tmp_path, '--size', '640x480', '--rate', '10',
                        '--seconds', '5', '--publisher-reliability', 'reliable')
    sent, received = row['frames_sent'], row['frames_received']
    assert row['image_reliability'].startswith('reliable'), row  # 'reliable (auto)'
    assert received >= 0.99 * sent, row
    assert received <= sent, row
    assert row['frames_lost_transport'] == 0, row
    assert row['pairs_processed'] >= 1, row


def test_best_effort_1280x720_losses_are_counted(aliked_models, tmp_path):
    """A best-effort 1280x720 camera: every frame sent is received or counted as lost."""
    row = _stream_check(aliked_models, tmp_path, '--size', '1280x720', '--rate', '10',
                        '--seconds', '5', '--publisher-reliability', 'best_effort')
    sent, received = row['frames_sent'], row['frames_received']
    lost = row['frames_lost_transport']
    assert row['image_reliability'].startswith('best_effort'), row
    assert received <= sent, row
    # Fast DDS reports a lost sample when a later one arrives: the last frames may go unseen.
    assert sent - 3 <= received + lost <= sent, row


def test_parse_size_and_frames():
    """Sizes are WxH; consecutive frames are the photo shifted by a few pixels."""
    assert stream_check.parse_size('1280x720') == (1280, 720)
    with pytest.raises(ValueError, match='WxH'):
        stream_check.parse_size('720p')
    source = stream_check.FrameSource(640, 480)
    frames = [source(i) for i in range(3)]
    assert all(f.shape == (480, 640, 3) and f.dtype.name == 'uint8' for f in frames)
    step = stream_check.SHIFT_STEP
    assert (frames[1][:, :-step] == frames[0][:, step:]).all()
    assert not (frames[1] == frames[0]).all()

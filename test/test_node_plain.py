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
The node started the plain way, next to a camera it does not control, default DDS settings.

The node runs as `python -m lightglue_ros.node --params-file config/matcher.yaml` with only
the model set and the image topic given; a hand-held camera's frames (rendered, known poses)
come from another process (`lightglue-ros replay`, a reliable publisher as a driver's), and
neither process has the Fast DDS profile. Nothing from the demo's tuned path is used.
"""

import os
from pathlib import Path
import subprocess
import sys
import time

from lightglue_ros import messages
from lightglue_ros.ros.bag import sibling_topic
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPIC = '/camera/image_raw'


def _plain_environment() -> dict:
    """Return this test's ROS environment without the Fast DDS profile (default settings)."""
    env = os.environ.copy()
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    return env


def _run(models: Path, bag: Path, frames: int) -> dict:
    """Run the node the plain way on the replayed bag; return its decoded outputs."""
    env = _plain_environment()
    node = demo_ros.start_node(['--params-file', str(ROOT / 'config' / 'matcher.yaml'),
                                '-p', f'model_dir:={models}', '-r', f'image0:={TOPIC}'],
                               env=env)
    recorder = None
    try:
        recorder = demo_ros.OutputRecorder()
        assert recorder.wait_for_publisher(120), 'the node did not come up'
        replay = subprocess.run(
            [sys.executable, '-m', 'lightglue_ros.tools.cli', 'replay', str(bag), '--no-clock'],
            env=env, capture_output=True, text=True, timeout=120)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        # Wait until the worker is done: no new matches for 3 s.
        count, last = -1, time.monotonic()
        while time.monotonic() - last < 3.0:
            if len(recorder.received['matches']) != count:
                count, last = len(recorder.received['matches']), time.monotonic()
            time.sleep(0.2)
        time.sleep(1.5)  # one more diagnostics period
        outputs = {'matches': list(recorder.received['matches']),
                   'poses': list(recorder.received['pose']),
                   'diagnostics': recorder.diagnostics()}
    finally:
        if recorder is not None:
            recorder.close()
        output = demo_ros.stop_node(node)
    assert node.returncode == 0, output
    outputs['output'] = output
    outputs['matches'] = [messages.decode_matches(m) for m in outputs['matches']]
    outputs['poses'] = {messages.stamp_to_ns(p.header.stamp): messages.decode_pose(p)
                        for p in outputs['poses']}
    return outputs


@pytest.mark.parametrize('scene', ['desk', 'plane'])
def test_plain_start_on_a_handheld_camera(aliked_models, tmp_path, scene):
    """
    Every frame reaches the node; desk with objects: a pose per pair; bare desk: never wrong.

    The desk is a dominant plane with objects on it: the essential matrix is well determined,
    so every matched pair with a baseline must get a pose (one flag allowed, see below). The
    bare desk is truly planar: a pose may be flagged (two decompositions) but a published one
    must be right.
    """
    frames = 30
    truth = samples.write_sample_bag(tmp_path / 'bag', n_frames=frames, rate=10.0, topic=TOPIC,
                                     frame_id='camera', scene=scene)
    out = _run(aliked_models, truth['bag'], frames)
    diag, log = out['diagnostics'], out['output']
    assert int(diag['frames_received']) == frames, (diag, log)
    assert diag['frames_lost_transport'] == '0', diag
    assert diag['image_reliability'] == 'reliable (auto)', diag
    assert diag['camera_info'].endswith(f' on {sibling_topic(TOPIC)}'), diag
    pairs = demo_ros.compare_with_truth(out, truth['stamps_ns'], truth['poses'])
    print(f'{scene}: {len(pairs)} pairs, poses (rotation / translation direction error, deg):',
          [(p['frames'], None if p['rot_err_deg'] is None
            else (round(p['rot_err_deg'], 3), round(p['t_err_deg'], 2))) for p in pairs])
    assert len(pairs) >= 2, (pairs, log)
    assert len(pairs) == int(diag['pairs_processed'])
    with_pose = [p for p in pairs if p['rot_err_deg'] is not None]
    for pair in with_pose:  # never a wrong pose
        assert pair['rot_err_deg'] < 0.5 and pair['t_err_deg'] < 10.0, pair
    if scene == 'desk':
        # Well-conditioned: the camera moved at least 1 cm (the desk is 0.5-1 m away). Below
        # that the few matches off the desk hardly show parallax, and a flag is honest.
        def baseline(pair):
            i, j = pair['frames']
            return np.linalg.norm(samples.relative_pose(truth['poses'], i, j)[:3, 3])

        well = [p for p in pairs if baseline(p) >= 0.01]
        assert len(well) >= 0.7 * len(pairs), pairs
        posed = [p for p in well if p['rot_err_deg'] is not None]
        # At most one flagged: which pairs the node sees depends on its latest-wins timing,
        # and a pair with only a handful of matches off the desk can leave the sign test
        # undecided (seen once in a clean-clone run: 4 matches, p 0.029), an honest flag.
        assert len(well) - len(posed) <= 1, (pairs, log)
        assert np.median([p['rot_err_deg'] for p in with_pose]) < 0.2, pairs

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

"""The node's temporal references and ~/features, followed through ~/matches (real DDS)."""

from collections import Counter
import re
import threading

from conftest import wait_until
from lightglue_ros import messages
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import numpy as np
import pytest
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import PointCloud
from test_node import _diag_values
from test_node import _image
from test_node import _info
from test_node import Harness

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
RATE = 30.0  # Hz: the stamps of the rendered frames


@pytest.fixture
def ros():
    harness = Harness()
    yield harness
    harness.close()


def _collect_features(ros) -> list:
    received, lock = [], threading.Lock()

    def callback(msg):
        with lock:
            received.append(msg)
    ros.probe.create_subscription(PointCloud, '/lightglue/features', callback, RELIABLE)
    return received


def assert_ids_follow_the_match(f: dict, m: dict, ref: dict | None, min_known: int = 0):
    """
    Check one frame's features against its ~/matches message; return feature -> match index.

    Each feature at pixel (u, v) is the image-1 end of a match, and where that match starts the
    reference frame's features (when it published any) carry the same id.
    """
    dist = np.linalg.norm(f['uv'][:, None] - m['keypoints1'][None].astype(np.float64), axis=2)
    j = dist.argmin(axis=1)
    assert dist[np.arange(len(j)), j].max() < 1e-3
    if ref is not None:
        ref_pos = dict(zip(ref['feature_id'].tolist(), ref['uv']))
        known = [i for i, fid in enumerate(f['feature_id'].tolist()) if fid in ref_pos]
        assert len(known) > min_known
        np.testing.assert_allclose([ref_pos[f['feature_id'][i]] for i in known],
                                   m['keypoints0'][j[known]], atol=1e-3)
    return j


def _replay(ros, models, frames, focal: float, **overrides) -> tuple:
    """Start the node with ~/features, send CameraInfo and `frames`; return matches, features."""
    features = _collect_features(ros)
    height, width = frames[0].shape[:2]
    ros.start(models, mode='temporal', publish_features=True, pose_method='none', **overrides)
    ros.publish('/camera_info0', _info(width, height, focal), CameraInfo)
    assert wait_until(lambda: _diag_values(ros)['camera_info'].startswith('1 '))
    for k, frame in enumerate(frames):
        ros.publish('/image0', _image(frame, 'rgb8', 1.0 + k / RATE))
        # One frame at a time: the latest-wins queue would drop frames sent faster.
        assert wait_until(lambda: len(ros.received['matches']) >= k, timeout=30)
    assert wait_until(lambda: len(features) >= len(frames) - 1, timeout=30)
    matches = [messages.decode_matches(m) for m in ros.wait('matches', len(frames) - 1)]
    return matches, [messages.decode_features(f) for f in features]


@pytest.mark.parametrize('reference', ['previous', 'keyframe'])
def test_feature_ids_follow_the_matches(ros, aliked_models, reference):
    """
    Every matched keypoint is a feature; its id is the id its match had in the reference frame.

    Checked against the matches themselves: a feature at pixel (u, v) of frame k is the image-1
    end of a match of ~/matches for frame k, and where that match starts (in the reference
    frame named by stamp0) the reference's ~/features put the same id. Normalized coordinates
    are K^-1 (u, v, 1); velocities are the change since the previous frame over 1/30 s.
    """
    seq = samples.camera_motion_sequence(8, step=(0.01, 0.0, 0.02), yaw_deg=0.3)
    K = seq.K
    matches, features = _replay(ros, aliked_models, seq.frames, float(K[0, 0]),
                                temporal_reference=reference, keyframe_parallax_px=12.0)
    by_stamp = {f['stamp_ns']: f for f in features}
    first_ns = int(1e9)
    assert first_ns not in by_stamp  # the first frame publishes nothing
    references = set()
    for m in matches:
        f = by_stamp[m['stamp1_ns']]
        references.add(m['stamp0_ns'])
        assert (f['camera_id'] == 0).all()
        assert len(f['feature_id']) == len(m['keypoints1']) > 100  # each match, one feature
        assert len(set(f['feature_id'].tolist())) == len(f['feature_id'])  # ids are unique
        j = assert_ids_follow_the_match(f, m, by_stamp.get(m['stamp0_ns']), min_known=50)
        xy = np.c_[f['uv'], np.ones(len(j))] @ np.linalg.inv(K).T
        np.testing.assert_allclose(f['xy'], xy[:, :2], atol=1e-5)
    # Velocities: the same id on consecutive frames, over the stamps' 1/30 s.
    for a, b in zip(features, features[1:]):
        pos_a = dict(zip(a['feature_id'].tolist(), a['xy']))
        common = [i for i, fid in enumerate(b['feature_id'].tolist()) if fid in pos_a]
        assert len(common) > 50
        dt = (b['stamp_ns'] - a['stamp_ns']) / 1e9
        expected = (b['xy'][common] - [pos_a[b['feature_id'][i]] for i in common]) / dt
        np.testing.assert_allclose(b['velocity'][common], expected, rtol=1e-4, atol=1e-4)
    frame_stamps = [first_ns] + [m['stamp1_ns'] for m in matches]
    if reference == 'previous':
        assert [m['stamp0_ns'] for m in matches] == frame_stamps[:-1]
    else:  # fewer references than frames; the diagnostics say which one
        assert 1 < len(references) < 7, references
        values = _diag_values(ros)
        assert values['temporal_reference'] == 'keyframe'
        # The last frame may have been taken as the next keyframe, unused yet.
        assert len(references) <= int(values['keyframes_taken']) <= len(references) + 1


def test_stereo_features_share_ids_across_cameras(ros, aliked_models):
    """
    Stereo: a right-camera feature carries the id of the left feature it is matched with.

    A rectified rig (12 cm baseline) moving slowly: the left frames are tracked over time, and
    for each right feature (camera_id 1) the stereo ~/matches of that pair hold exactly the match
    from the left feature with the same id to it.
    """
    baseline = 0.12
    motion = {'step': (0.01, 0.0, 0.02), 'yaw_deg': 0.3}
    left = samples.camera_motion_sequence(4, **motion)
    right = samples.camera_motion_sequence(4, offset=(baseline, 0.0, 0.0), **motion)
    height, width = left.frames[0].shape[:2]
    focal = float(left.K[0, 0])
    infos = [_info(width, height, focal, 'left'), _info(width, height, focal, 'right')]
    infos[1].p[3] = -focal * baseline
    features = _collect_features(ros)
    ros.start(aliked_models, mode='stereo', publish_features=True, pose_method='none',
              temporal_reference='previous', sync_slop=0.01)
    for camera, info in enumerate(infos):
        ros.publish(f'/camera_info{camera}', info, CameraInfo)
    assert wait_until(lambda: _diag_values(ros)['camera_info']
                      == '1 on /camera_info0, 1 on /camera_info1')
    for k in range(4):
        for camera, seq in enumerate((left, right)):
            ros.publish(f'/image{camera}', _image(seq.frames[k], 'rgb8', 1.0 + k / RATE,
                                                  ('left', 'right')[camera]))
        assert wait_until(lambda: len(ros.received['matches']) > k, timeout=30)
    assert wait_until(lambda: len(features) >= 3, timeout=30)
    stereo = {m['stamp1_ns']: m for m in map(messages.decode_matches, ros.wait('matches', 4))}
    decoded = [messages.decode_features(f) for f in features]
    assert [f['stamp_ns'] for f in decoded] == sorted(stereo)[1:]  # the first pair: nothing
    for f in decoded:
        m = stereo[f['stamp_ns']]
        cam0, cam1 = f['camera_id'] == 0, f['camera_id'] == 1
        assert cam0.sum() > 100 and cam1.sum() > 50
        left_uv = dict(zip(f['feature_id'][cam0].tolist(), f['uv'][cam0]))
        assert set(f['feature_id'][cam1].tolist()) <= set(left_uv)
        pairs = np.c_[m['keypoints0'], m['keypoints1']].astype(np.float64)
        for fid, uv in zip(f['feature_id'][cam1].tolist(), f['uv'][cam1]):
            wanted = np.r_[left_uv[fid], uv]
            assert np.abs(pairs - wanted).max(axis=1).min() < 1e-3, fid
        # Rectified: a stereo pair lies on one image row, the right point further left.
        right_ids = f['feature_id'][cam1].tolist()
        rows = np.array([left_uv[i][1] for i in right_ids]) - f['uv'][cam1][:, 1]
        assert np.median(np.abs(rows)) < 1.0


def _poses_at_30_hz(models, seq, reference: str) -> tuple[list, dict]:
    """Replay `seq` into a fresh node with `reference`; return its pairs and diagnostics."""
    harness = Harness()
    try:
        height, width = seq.frames[0].shape[:2]
        harness.start(models, mode='temporal', pose_method='auto',
                      temporal_reference=reference)
        harness.publish('/camera_info0', _info(width, height, float(seq.K[0, 0])), CameraInfo)
        assert wait_until(lambda: _diag_values(harness)['camera_info'].startswith('1 '))
        stamps = [int(1e9) + round(k * 1e9 / RATE) for k in range(len(seq.frames))]
        for k, frame in enumerate(seq.frames):
            msg = _image(frame, 'rgb8', 1.0)
            msg.header.stamp = messages.ns_to_stamp(stamps[k])
            harness.publish('/image0', msg)
            assert wait_until(lambda: len(harness.received['matches']) >= k, timeout=30)
        matches = harness.wait('matches', len(stamps) - 1)
        assert wait_until(lambda: int(_diag_values(harness)['pairs_processed'])
                          == len(stamps) - 1)
        values = _diag_values(harness)
        with harness.lock:
            poses = {messages.stamp_to_ns(p.header.stamp): messages.decode_pose(p)
                     for p in harness.received['pose']}
        outputs = {'matches': [messages.decode_matches(m) for m in matches], 'poses': poses}
        return demo_ros.compare_with_truth(outputs, np.array(stamps), seq.poses), values
    finally:
        harness.close()


def test_keyframes_give_observable_poses_at_30_hz(aliked_models, capfd):
    """
    A slow camera at 30 Hz (1 cm sideways, 1 cm forward, 0.1 degree per frame).

    Consecutive frames barely move: with `previous` most pairs are flagged (27 of 59 got a
    pose, measured) and the rest are noisy. Keyframes keep 15-30 px of parallax: a pose for
    >= 95% of the frames (only the first two, 1-2 px from the first keyframe, have none), the
    median rotation error at most half of `previous`'s, the translation direction within a
    degree, and never "zero motion".
    """
    seq = samples.camera_motion_sequence(60, step=(0.005, 0.0, 0.01), yaw_deg=0.1)
    results, logs = {}, {}
    for ref in ('previous', 'keyframe'):
        results[ref] = _poses_at_30_hz(aliked_models, seq, ref)
        logs[ref] = capfd.readouterr().err  # the node's warnings: one per refused pose
    rot, direction, share = {}, {}, {}
    for ref, (pairs, _) in results.items():
        with_pose = [p for p in pairs if p['rot_err_deg'] is not None]
        share[ref] = len(with_pose) / len(pairs)
        rot[ref] = float(np.median([p['rot_err_deg'] for p in with_pose]))
        direction[ref] = float(np.median([p['t_err_deg'] for p in with_pose]))
    print(f'30 Hz slow camera: poses {share}, median rotation error {rot} deg, translation '
          f'direction {direction} deg')
    pairs, values = results['keyframe']
    assert len(pairs) == 59 and share['keyframe'] >= 0.95
    assert rot['keyframe'] <= 0.5 * rot['previous']
    assert direction['keyframe'] < 1.0
    assert int(values['keyframes_taken']) < 15
    # Every refused pose is logged with its reason (one line per pair without a pose), and
    # none of keyframe's says "zero motion".
    reasons = {ref: Counter(re.findall(r'no pose for the pair at \d+ ns: ([a-z -]+)', log))
               for ref, log in logs.items()}
    print('refused poses by reason:', reasons)
    for ref, (pairs, _) in results.items():
        assert sum(reasons[ref].values()) == sum(p['rot_err_deg'] is None for p in pairs), ref
    assert reasons['keyframe']['zero motion'] == 0, reasons
    assert len({p['frames'][0] for p in pairs}) < 15  # few references


@pytest.mark.parametrize('reference', ['previous', 'keyframe'])
def test_a_new_image_size_starts_a_new_sequence(ros, aliked_models, reference):
    """
    A camera switching from 320x240 to 480x360 starts a new sequence.

    The first large frame is not matched with a small one: one CameraInfo serves both frames
    of a temporal pair.
    """
    seq = samples.camera_motion_sequence(4, step=(0.01, 0.0, 0.0))
    frames = [seq.frames[0][:240, :320], seq.frames[1][:240, :320],
              seq.frames[2][:360, :480], seq.frames[3][:360, :480]]
    ros.start(aliked_models, mode='temporal', pose_method='none', temporal_reference=reference)
    messages_ = [_image(np.ascontiguousarray(frame), 'rgb8', 1.0 + k / RATE)
                 for k, frame in enumerate(frames)]
    for msg in messages_:  # the harness's queue holds them all: none dropped
        ros.publish('/image0', msg)
    got = ros.wait('matches', 2)
    assert wait_until(lambda: _diag_values(ros).get('pairs_processed') == '2', timeout=30)
    pairs = [(m['stamp0_ns'], m['stamp1_ns']) for m in map(messages.decode_matches, got)]
    stamps = [messages.stamp_to_ns(msg.header.stamp) for msg in messages_]
    assert pairs == [(stamps[0], stamps[1]), (stamps[2], stamps[3])], pairs
    assert 'image0 size changed (320x240 -> 480x360): restarting' in _diag_values(ros)['_message']


def test_a_frame_whose_pose_fails_late_is_not_taken_as_keyframe(ros, aliked_models):
    """
    The worker waits for the finisher's pose outcome before it picks a keyframe.

    The pose runs in the finisher thread while the worker extracts and matches the next frame.
    Here it takes a second and fails for frame 1; frame 2 needs a new keyframe (32 px parallax
    to keyframe 0, above 25) and frame 1 would be the candidate (16 px to frame 2): passed over
    as failed, frame 2 itself becomes the keyframe, so frame 3 is matched with frame 2.
    """
    import time
    from lightglue_ros.geometry.pose import failed
    seq = samples.camera_motion_sequence(4, step=(0.02, 0.0, 0.0))
    node = ros.start(aliked_models, mode='temporal', temporal_reference='keyframe',
                     keyframe_parallax_px=25.0)
    images = [_image(frame, 'rgb8', 1.0 + k / RATE) for k, frame in enumerate(seq.frames)]
    stamps = [messages.stamp_to_ns(msg.header.stamp) for msg in images]

    def slow_pose(conf, frames, result, kpts1, stamp1, frame_id):
        time.sleep(1.0)
        if messages.stamp_to_ns(stamp1) == stamps[1]:
            return failed('refused by the test', len(result['matches'])), 0
        return None, 0
    node._pose = slow_pose
    for msg in images:  # the harness's queue holds them all
        ros.publish('/image0', msg)
    got = ros.wait('matches', 3)
    pairs = [(m['stamp0_ns'], m['stamp1_ns']) for m in map(messages.decode_matches, got)]
    assert pairs == [(stamps[0], stamps[1]), (stamps[0], stamps[2]), (stamps[2], stamps[3])], \
        [(stamps.index(a), stamps.index(b)) for a, b in pairs]

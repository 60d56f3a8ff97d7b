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

"""ReferenceTracker: keyframe choice and persistent feature ids, on synthetic tracks."""

from lightglue_ros.runtime.tracking import ReferenceTracker
import numpy as np
import pytest

RNG = np.random.default_rng(5)
BASE = RNG.uniform(0, 600, (200, 2))


def _frame(k: int, speed: float = 2.0) -> np.ndarray:
    """Keypoints of frame k: the same 200 points moving `speed` px per frame, shuffled."""
    order = np.random.default_rng(k).permutation(len(BASE))
    return (BASE + [k * speed, 0.0])[order], order


def _matches(ref: tuple, cur: tuple, keep: float = 1.0) -> np.ndarray:
    """Index pairs (reference, current) of the same underlying points (a share `keep`)."""
    (_, order0), (_, order1) = ref, cur
    where1 = np.argsort(order1)  # point p sits at index where1[p] of the current frame
    points = order0[: int(round(keep * len(order0)))]
    return np.c_[np.argsort(order0)[points], where1[points]]


def test_previous_matches_each_frame_with_the_one_before():
    tracker = ReferenceTracker('previous')
    frames = [_frame(k) for k in range(4)]
    first = tracker.add(0, frames[0][0], None)
    assert first.reference is None and first.new_reference and (first.frame.ids == -1).all()
    for k in range(1, 4):
        update = tracker.add(k, frames[k][0], _matches(frames[k - 1], frames[k]))
        assert update.reference.stamp_ns == k - 1 and update.new_reference
        assert update.parallax_px == pytest.approx(2.0) and update.tracked == 1.0
    # Ids follow the points: the same point has the same id in every frame, ids 0..199.
    assert tracker.next_id == 200
    ids_by_point = [dict(zip(order, tracker.reference.ids[np.argsort(order)][order]))
                    for _, order in frames[3:]]
    assert sorted(ids_by_point[0].values()) == list(range(200))
    assert set(update.track_lengths.values()) == {4}  # seen in frames 0..3


def test_keyframe_waits_for_parallax_then_takes_a_recent_frame():
    """
    At 2 px per frame: keyframe 0 until 30 px, then frame 8 (16 px back from frame 16).

    Candidates are the frames matched with the current keyframe: after a switch to an older
    frame the ones in between were matched with the old keyframe only, so the next switch takes
    the best of the newer frames (14 px back, the closest to the 15 px wanted).
    """
    tracker = ReferenceTracker('keyframe', parallax_px=30.0, min_tracked=0.3)
    frames = [_frame(k) for k in range(50)]
    tracker.add(0, frames[0][0], None)
    references, switches = [], []
    for k in range(1, 50):
        ref = tracker.reference.stamp_ns
        update = tracker.add(k, frames[k][0], _matches(frames[ref], frames[k]))
        references.append(ref)
        assert update.parallax_px == pytest.approx(2.0 * (k - ref))
        if update.new_reference:
            switches.append((k, tracker.reference.stamp_ns))
    assert switches == [(16, 8), (24, 17), (33, 25), (41, 34)]
    parallax = [2.0 * (k - ref) for k, ref in zip(range(1, 50), references)]
    assert min(parallax[16:]) >= 14.0 and max(parallax) <= 32.0
    assert tracker.next_id == 200  # the same 200 points all along


def test_keyframe_renews_when_points_are_lost():
    tracker = ReferenceTracker('keyframe', parallax_px=100.0, min_tracked=0.5)
    frames = [_frame(k, speed=0.5) for k in range(3)]
    tracker.add(0, frames[0][0], None)
    update = tracker.add(1, frames[1][0], _matches(frames[0], frames[1], keep=0.6))
    assert not update.new_reference and update.tracked == pytest.approx(0.6)
    update = tracker.add(2, frames[2][0], _matches(frames[0], frames[2], keep=0.4))
    assert update.new_reference and update.tracked == pytest.approx(0.4)
    assert tracker.reference.stamp_ns in (1, 2)
    # Only matched points got ids: 120 from frame 1's matches (frame 2's 80 are among them).
    assert tracker.next_id == 120


def test_no_matches_starts_from_the_current_frame():
    tracker = ReferenceTracker('keyframe')
    frames = [_frame(k) for k in range(2)]
    tracker.add(0, frames[0][0], None)
    update = tracker.add(1, frames[1][0], np.zeros((0, 2), int))
    assert update.new_reference and np.isnan(update.parallax_px)
    assert tracker.reference.stamp_ns == 1 and (update.frame.ids == -1).all()


def test_a_frame_whose_pose_failed_is_not_taken_as_keyframe():
    """
    The switch at frame 16 would take frame 8 (16 px back); its pose failed, so frame 7.

    A frame the pose estimator refused has no known place in the trajectory: later poses
    relative to it could not be chained. posed=None (no pose estimated) is no objection.
    """
    tracker = ReferenceTracker('keyframe', parallax_px=30.0, min_tracked=0.3)
    frames = [_frame(k) for k in range(17)]
    tracker.add(0, frames[0][0], None)
    for k in range(1, 17):
        posed = False if k == 8 else (None if k == 7 else True)
        update = tracker.add(k, frames[k][0], _matches(frames[0], frames[k]), posed=posed)
    assert update.new_reference and tracker.reference.stamp_ns == 7


def test_a_scene_cut_starts_from_the_current_frame():
    """
    A scene cut makes the current frame the keyframe.

    Frame 3 sees another scene (5 spurious matches with the keyframe): frame 3 becomes the
    keyframe, not a candidate of the old scene whose parallax the spurious matches decide.
    """
    tracker = ReferenceTracker('keyframe', parallax_px=30.0, min_tracked=0.3)
    frames = [_frame(k) for k in range(3)]
    tracker.add(0, frames[0][0], None)
    for k in (1, 2):
        tracker.add(k, frames[k][0], _matches(frames[0], frames[k]), posed=True)
    other = RNG.uniform(0, 600, (200, 2))
    spurious = np.c_[np.arange(5), np.arange(5)]  # 2.5% tracked: a switch
    update = tracker.add(3, other, spurious, posed=False)
    assert update.new_reference and tracker.reference.stamp_ns == 3


def test_reset_and_bad_settings():
    tracker = ReferenceTracker('keyframe')
    tracker.add(0, _frame(0)[0], None)
    tracker.add(1, _frame(1)[0], _matches(_frame(0), _frame(1)))
    assert (tracker.reference.stamp_ns, tracker.latest.stamp_ns) == (0, 1)
    tracker.reset()
    assert tracker.reference is None and tracker.latest is None
    assert tracker.add(1, _frame(1)[0], None).reference is None
    with pytest.raises(ValueError, match='previous or keyframe'):
        ReferenceTracker('oldest')
    with pytest.raises(ValueError, match='parallax_px'):
        ReferenceTracker('keyframe', parallax_px=0)

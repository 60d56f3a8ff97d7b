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
Which earlier frame a new frame is matched with, and persistent feature ids (numpy only).

`ReferenceTracker` keeps the reference frame of temporal matching. With ``previous`` every frame
is matched with the one before it. With ``keyframe`` frames are matched with a keyframe until
the median parallax of their matches exceeds `parallax_px` or the fraction of the keyframe's
points still matched drops below `min_tracked`; then a recent frame becomes the keyframe, the
most recent one whose parallax to the current frame is at least half of `parallax_px` (found
by composing both frames' matches with the keyframe, no extra matching). So after the start the
pairs keep a parallax between about `parallax_px` / 2 and `parallax_px`: at 30 Hz consecutive
frames barely move (the pose is unobservable), and a keyframe taken from the current frame would
leave the next frame with no parallax again.

Feature ids: a keypoint matched with a reference keypoint takes that keypoint's id; an id is
allocated when a feature is first matched (seen in two frames), so ids count tracked features
only and stay exact in float32 channels for hours. A keypoint never matched has id -1.
"""

from dataclasses import dataclass
from dataclasses import field

import numpy as np

REFERENCES = ('previous', 'keyframe')
CANDIDATE_SHARE = 0.5  # a new keyframe needs this share of parallax_px to the current frame
# A candidate keyframe shares at least this many matched points with the current frame: fewer
# (a scene cut, a few spurious matches) make its parallax meaningless.
CANDIDATE_MIN_SHARED = 20


@dataclass
class TrackedFrame:
    """A frame the tracker has seen: its keypoints, ids and matches with its reference."""

    stamp_ns: int
    keypoints: np.ndarray  # (N, 2) pixels
    ids: np.ndarray  # (N,) int64, -1: not (yet) tracked
    payload: object = None  # the caller's (features, image, message...)
    posed: bool | None = None  # its pose with its reference succeeded (None: not estimated)
    # For each reference keypoint, the index of the matching keypoint of this frame (-1: none).
    from_reference: np.ndarray | None = None


@dataclass
class TrackUpdate:
    """What `ReferenceTracker.add` decided for one frame."""

    frame: TrackedFrame
    reference: TrackedFrame | None  # what the frame was matched with (None: the first frame)
    parallax_px: float  # median image motion of the matches (nan without matches)
    tracked: float  # share of the reference's keypoints matched (nan for the first frame)
    new_reference: bool  # the next frame is matched with another frame
    new_ids: int = 0  # ids allocated for this frame
    track_lengths: dict = field(default_factory=dict)  # id -> frames seen, ids of this frame


class ReferenceTracker:
    """
    Choose the reference of each frame and carry feature ids (see the module docstring).

    :param reference: ``previous`` or ``keyframe``.
    :param parallax_px: keyframe: a new keyframe once the median match parallax exceeds this.
    :param min_tracked: keyframe: ... or once fewer than this share of its keypoints match.
    :param max_history: keyframe: frames kept as keyframe candidates (the oldest go first).
    """

    def __init__(self, reference: str = 'previous', parallax_px: float = 30.0,
                 min_tracked: float = 0.3, max_history: int = 30) -> None:
        if reference not in REFERENCES:
            raise ValueError(f'unknown temporal reference {reference!r}; choose '
                             f'{" or ".join(REFERENCES)}')
        if parallax_px <= 0 or not 0 <= min_tracked <= 1 or max_history < 1:
            raise ValueError('parallax_px must be > 0, min_tracked in [0, 1], max_history >= 1')
        self.policy = reference
        self.parallax_px = float(parallax_px)
        self.min_tracked = float(min_tracked)
        self.max_history = int(max_history)
        self.next_id = 0
        self.keyframes = 0  # references taken (the first frame included)
        self._lengths = {}  # id -> frames seen, for ids still alive
        self.reset()

    def reset(self) -> None:
        """Forget the reference (a new sequence starts); ids keep counting up."""
        self.reference: TrackedFrame | None = None
        self.latest: TrackedFrame | None = None  # the last frame added (stamps go on from it)
        self._history: list[TrackedFrame] = []  # frames matched with the reference, oldest first
        self._lengths = {}

    def add(self, stamp_ns: int, keypoints: np.ndarray, matches: np.ndarray | None,
            payload: object = None, posed: bool | None = None) -> TrackUpdate:
        """
        Register a frame matched with the current reference; return the decision.

        :param keypoints: (N, 2) keypoints of the frame (the positions published for it).
        :param matches: (M, 2) indices (reference keypoint, this frame's keypoint); None when
            there was no reference (the first frame, or after `reset`).
        :param posed: whether the frame's pose with its reference succeeded (None: no pose was
            estimated). A frame whose pose failed becomes the keyframe only when no frame with
            a pose qualifies: the poses of later frames are relative to the keyframe, and a
            back end can place a keyframe only if its own pose is known.
        """
        keypoints = np.asarray(keypoints, np.float64).reshape(-1, 2)
        ids = np.full(len(keypoints), -1, np.int64)
        reference = self.reference
        frame = TrackedFrame(int(stamp_ns), keypoints, ids, payload, posed)
        self.latest = frame
        if reference is None or matches is None:
            self.reference, self._history = frame, []
            self.keyframes += 1
            self._lengths = {}
            return TrackUpdate(frame, None, float('nan'), float('nan'), True)
        matches = np.asarray(matches, np.int64).reshape(-1, 2)
        frame.from_reference = np.full(len(reference.keypoints), -1, np.int64)
        frame.from_reference[matches[:, 0]] = matches[:, 1]
        new_ids = self._carry_ids(reference, frame, matches)
        parallax = _median_motion(reference.keypoints[matches[:, 0]], keypoints[matches[:, 1]])
        tracked = len(matches) / max(len(reference.keypoints), 1)
        lengths = self._count(ids)
        if self.policy == 'previous':
            switch, new = True, frame
        else:
            switch = not parallax <= self.parallax_px or tracked < self.min_tracked
            new = self._candidate(frame) if switch else None
        if switch:
            self._take(new)
        else:
            self._history = (self._history + [frame])[-self.max_history:]
        return TrackUpdate(frame, reference, parallax, tracked, switch, new_ids, lengths)

    def _carry_ids(self, reference: TrackedFrame, frame: TrackedFrame, matches) -> int:
        """Give matched keypoints the reference keypoint's id, allocating it if new."""
        untracked = reference.ids[matches[:, 0]] < 0
        count = int(untracked.sum())
        reference.ids[matches[untracked, 0]] = np.arange(self.next_id, self.next_id + count)
        for new_id in range(self.next_id, self.next_id + count):
            self._lengths[new_id] = 1  # seen in the reference
        self.next_id += count
        frame.ids[matches[:, 1]] = reference.ids[matches[:, 0]]
        return count

    def _count(self, ids: np.ndarray) -> dict:
        """Count one more sighting of each id of a frame; return {id: frames seen}."""
        lengths = {}
        for feature_id in ids[ids >= 0].tolist():
            lengths[feature_id] = self._lengths.get(feature_id, 1) + 1
        self._lengths.update(lengths)
        return lengths

    def _candidate(self, frame: TrackedFrame) -> TrackedFrame:
        """
        Return the next keyframe: recent, yet with enough parallax to `frame`.

        Candidates are the frames matched with the keyframe since it was taken, newest first;
        one whose pose failed, or that shares fewer than CANDIDATE_MIN_SHARED points with
        `frame`, is passed over. Without any candidate, `frame` itself.
        """
        best, best_parallax = frame, -1.0
        for older in reversed(self._history):
            both = (older.from_reference >= 0) & (frame.from_reference >= 0)
            if older.posed is False or both.sum() < CANDIDATE_MIN_SHARED:
                continue
            parallax = _median_motion(older.keypoints[older.from_reference[both]],
                                      frame.keypoints[frame.from_reference[both]])
            if parallax >= CANDIDATE_SHARE * self.parallax_px:
                return older
            if parallax > best_parallax:
                best, best_parallax = older, parallax
        return best

    def _take(self, new: TrackedFrame) -> None:
        """Make `new` the reference and forget the candidates (matched with the old one only)."""
        self.keyframes += 1
        self.reference = new
        self._history = []
        alive = set(new.ids[new.ids >= 0].tolist())
        self._lengths = {k: v for k, v in self._lengths.items() if k in alive}


def _median_motion(points0: np.ndarray, points1: np.ndarray) -> float:
    if not len(points0):
        return float('nan')
    return float(np.median(np.linalg.norm(points1 - points0, axis=1)))

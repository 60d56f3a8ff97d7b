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
`~/features`: tracked features in VINS-Fusion's feature-tracker layout.

A sensor_msgs/PointCloud stamped like the image: one point per tracked feature per camera,
(x, y, 1) in normalized undistorted coordinates, and the channels VINS-Fusion's estimator reads
by position: feature_id, camera_id, u, v (pixels), velocity_x, velocity_y (normalized-plane
units per second, from the feature's previous observation on that camera), then three zero
channels (the estimator reads channels 6 to 8 whenever more than 5 exist).
"""

from geometry_msgs.msg import Point32
import numpy as np
from sensor_msgs.msg import ChannelFloat32
from sensor_msgs.msg import PointCloud

CHANNELS = ('feature_id', 'camera_id', 'u', 'v', 'velocity_x', 'velocity_y', 'zero_6',
            'zero_7', 'zero_8')


class FeatureOutput:
    """Build `~/features` messages and remember each feature's last observation per camera."""

    def __init__(self) -> None:
        self._last = {}  # (camera, feature id) -> (x, y, stamp ns)

    def reset(self) -> None:
        """Start a new sequence: velocities start from zero again."""
        self._last = {}

    def message(self, header, stamp_ns: int, observations: list) -> PointCloud:
        """
        Return the message of one frame (or stereo pair).

        :param header: std_msgs/Header of the image (camera 0's in stereo).
        :param observations: per camera, (camera_id, ids (K,), normalized (K, 2), pixels (K, 2)).
        """
        rows, last = [], {}
        for camera, ids, normalized, pixels in observations:
            for feature_id, (x, y), (u, v) in zip(np.asarray(ids).tolist(), normalized, pixels):
                previous = self._last.get((camera, feature_id))
                vx = vy = 0.0
                if previous is not None and stamp_ns > previous[2]:
                    dt = (stamp_ns - previous[2]) / 1e9
                    vx, vy = (x - previous[0]) / dt, (y - previous[1]) / dt
                last[(camera, feature_id)] = (x, y, stamp_ns)
                rows.append((x, y, feature_id, camera, u, v, vx, vy))
        self._last = last
        msg = PointCloud()
        msg.header = header
        msg.points = [Point32(x=float(r[0]), y=float(r[1]), z=1.0) for r in rows]
        values = np.array([r[2:] for r in rows], np.float64).reshape(-1, 6)
        msg.channels = [ChannelFloat32(name=name, values=values[:, k].astype(np.float32).tolist()
                                       if k < 6 else [0.0] * len(rows))
                        for k, name in enumerate(CHANNELS)]
        return msg


def decode_features(msg) -> dict:
    """
    Read a `~/features` message back (for tests and consumers).

    :return: dict of numpy arrays: ``xy`` (K, 2) normalized, ``feature_id`` and ``camera_id``
        (K,) int, ``uv`` (K, 2) pixels, ``velocity`` (K, 2), and ``stamp_ns``.
    """
    channels = {c.name: np.asarray(c.values, np.float64) for c in msg.channels}
    xy = np.array([(p.x, p.y) for p in msg.points], np.float64).reshape(-1, 2)
    return {'xy': xy, 'feature_id': channels['feature_id'].astype(np.int64),
            'camera_id': channels['camera_id'].astype(np.int64),
            'uv': np.c_[channels['u'], channels['v']],
            'velocity': np.c_[channels['velocity_x'], channels['velocity_y']],
            'stamp_ns': msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec}

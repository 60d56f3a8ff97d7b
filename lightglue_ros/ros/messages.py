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
Match results <-> standard ROS messages (no interface package to build).

`~/matches` is a sensor_msgs/PointCloud2 with one point per match (height 1, little-endian,
point_step 36):

| field | type | meaning |
|---|---|---|
| x0, y0 | float32 | keypoint in image 0, original-image pixels (pixel centres at integers) |
| x1, y1 | float32 | matched keypoint in image 1, original-image pixels |
| score | float32 | match confidence in (0, 1] |
| idx0, idx1 | uint32 | keypoint indices in each frame's keypoint list (in temporal mode a frame
  keeps its indices in both pairs it belongs to, so tracks can be chained) |
| stamp0_sec, stamp0_nanosec | int32, uint32 | stamp of image 0 (the same on every point) |

``header.stamp`` is the stamp of image 1 (the newer frame in temporal mode) and
``header.frame_id`` the optical frame of camera 0. A pair with no match is one invalid point
(x/y NaN, score 0, idx 0xFFFFFFFF, ``is_dense`` false), so both stamps are always recoverable;
`decode_matches` drops it.

`~/pose` is a geometry_msgs/PoseWithCovarianceStamped: camera 1 in camera 0's optical frame,
with the same header as the matches of that pair.
"""

import numpy as np

INVALID_INDEX = 0xFFFFFFFF
# (name, numpy dtype, PointField datatype); offsets follow in order.
FIELDS = (
    ('x0', '<f4', 7), ('y0', '<f4', 7), ('x1', '<f4', 7), ('y1', '<f4', 7), ('score', '<f4', 7),
    ('idx0', '<u4', 6), ('idx1', '<u4', 6), ('stamp0_sec', '<i4', 5),
    ('stamp0_nanosec', '<u4', 6),
)
POINT_DTYPE = np.dtype([(name, dtype) for name, dtype, _ in FIELDS])


def stamp_to_ns(stamp) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    """Return integer nanoseconds as a builtin_interfaces/Time."""
    from builtin_interfaces.msg import Time
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def encode_matches(keypoints0: np.ndarray, keypoints1: np.ndarray, matches: np.ndarray,
                   scores: np.ndarray, stamp0, stamp1, frame_id: str):
    """
    Build the `~/matches` PointCloud2 of one pair.

    :param keypoints0: (N0, 2) keypoints of image 0 (pixels).
    :param keypoints1: (N1, 2) keypoints of image 1.
    :param matches: (M, 2) index pairs into keypoints0 / keypoints1.
    :param scores: (M,) match scores.
    :param stamp0: builtin_interfaces/Time of image 0.
    :param stamp1: builtin_interfaces/Time of image 1 (goes in the header).
    :param frame_id: optical frame of camera 0.
    """
    from sensor_msgs.msg import PointCloud2
    from sensor_msgs.msg import PointField
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    count = len(matches)
    points = np.zeros(max(count, 1), POINT_DTYPE)
    if count:
        kpts0 = np.asarray(keypoints0, np.float32)[matches[:, 0]]
        kpts1 = np.asarray(keypoints1, np.float32)[matches[:, 1]]
        points['x0'], points['y0'] = kpts0[:, 0], kpts0[:, 1]
        points['x1'], points['y1'] = kpts1[:, 0], kpts1[:, 1]
        points['score'] = np.asarray(scores, np.float32)
        points['idx0'], points['idx1'] = matches[:, 0], matches[:, 1]
    else:  # one invalid point carries stamp0
        for name in ('x0', 'y0', 'x1', 'y1'):
            points[name] = np.nan
        points['idx0'] = points['idx1'] = INVALID_INDEX
    points['stamp0_sec'] = stamp0.sec
    points['stamp0_nanosec'] = stamp0.nanosec
    msg = PointCloud2()
    msg.header.stamp = stamp1
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, len(points)
    msg.fields = [PointField(name=name, offset=POINT_DTYPE.fields[name][1], datatype=datatype,
                             count=1) for name, _, datatype in FIELDS]
    msg.is_bigendian = False
    msg.point_step = POINT_DTYPE.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = bool(count)
    msg.data = points.tobytes()
    return msg


def decode_matches(msg) -> dict:
    """
    Decode a `~/matches` PointCloud2 (contract).

    :return: dict with numpy ``keypoints0`` (M, 2), ``keypoints1`` (M, 2), ``scores`` (M,),
        ``indices0`` / ``indices1`` (M,) keypoint indices, ``stamp0`` / ``stamp1``
        (builtin_interfaces/Time), ``stamp0_ns`` / ``stamp1_ns`` (int) and ``frame_id``.
    :raises ValueError: when the message does not have this layout.
    """
    names = [f.name for f in msg.fields]
    offsets = [f.offset for f in msg.fields]
    expected = [name for name, _, _ in FIELDS]
    if names != expected or offsets != [POINT_DTYPE.fields[n][1] for n in expected] \
            or msg.point_step != POINT_DTYPE.itemsize or msg.is_bigendian:
        raise ValueError(f'not a lightglue_ros matches cloud: fields {names}, point_step '
                         f'{msg.point_step}; expected {expected} (point_step '
                         f'{POINT_DTYPE.itemsize}, little-endian)')
    count = msg.width * msg.height
    data = bytes(msg.data)
    if len(data) < count * POINT_DTYPE.itemsize:
        raise ValueError(f'matches cloud has {len(data)} bytes for {count} points')
    points = np.frombuffer(data, POINT_DTYPE, count)
    if count == 0:
        raise ValueError('matches cloud without points: stamp0 is missing')
    stamp0_ns = int(points['stamp0_sec'][0]) * 1_000_000_000 + int(points['stamp0_nanosec'][0])
    points = points[points['idx0'] != INVALID_INDEX]
    return {
        'keypoints0': np.stack([points['x0'], points['y0']], -1).astype(np.float32),
        'keypoints1': np.stack([points['x1'], points['y1']], -1).astype(np.float32),
        'scores': points['score'].astype(np.float32),
        'indices0': points['idx0'].astype(np.int64),
        'indices1': points['idx1'].astype(np.int64),
        'stamp0': ns_to_stamp(stamp0_ns), 'stamp1': msg.header.stamp,
        'stamp0_ns': stamp0_ns, 'stamp1_ns': stamp_to_ns(msg.header.stamp),
        'frame_id': msg.header.frame_id,
    }


def encode_pose(position: np.ndarray, quaternion: np.ndarray, covariance: np.ndarray,
                stamp, frame_id: str):
    """
    Build a PoseWithCovarianceStamped: camera 1 in camera 0's optical frame.

    :param position: (3,) camera 1 centre in camera 0 coordinates.
    :param quaternion: (4,) orientation (x, y, z, w).
    :param covariance: (6, 6) in ROS order (x, y, z, rot_x, rot_y, rot_z).
    """
    from geometry_msgs.msg import PoseWithCovarianceStamped
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(v) for v in position)
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion)
    msg.pose.covariance = np.asarray(covariance, np.float64).reshape(36).tolist()
    return msg


def decode_pose(msg) -> dict:
    """Return ``position`` (3,), ``quaternion`` (4,) xyzw, ``covariance`` (6, 6), stamp, frame."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return {'position': np.array([p.x, p.y, p.z]), 'quaternion': np.array([q.x, q.y, q.z, q.w]),
            'covariance': np.asarray(msg.pose.covariance, np.float64).reshape(6, 6),
            'stamp_ns': stamp_to_ns(msg.header.stamp), 'frame_id': msg.header.frame_id}

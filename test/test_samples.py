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

"""The camera-motion sample: rendered frames agree with their ground-truth poses."""

import cv2
from lightglue_ros import bag
from lightglue_ros import samples
import numpy as np
import pytest


@pytest.fixture(scope='module')
def sequence() -> samples.CameraSequence:
    """Return the default sequence, shortened to four frames."""
    return samples.camera_motion_sequence(n_frames=4)


def rotation_deg(rot: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))


def sift_matches(image0: np.ndarray, image1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sift = cv2.SIFT_create(2000)
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (image0, image1)]
    (kpts0, desc0), (kpts1, desc1) = [sift.detectAndCompute(g, None) for g in grey]
    pairs = cv2.BFMatcher().knnMatch(desc0, desc1, k=2)
    good = [a for a, b in pairs if a.distance < 0.8 * b.distance]
    return (np.float64([kpts0[m.queryIdx].pt for m in good]),
            np.float64([kpts1[m.trainIdx].pt for m in good]))


def test_sequence_layout_and_determinism(sequence):
    """Frames, K and world-to-camera poses have the documented form; renders repeat exactly."""
    frames, kmat, poses = sequence
    assert len(frames) == 4 and poses.shape == (4, 4, 4)
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose(kmat, [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    np.testing.assert_allclose(poses[0], np.eye(4))
    for pose in poses:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    # Camera centres C_i = -R_i^T t_i step by (0.06, 0, 0.12) m; each frame turns 1.5 degrees.
    centres = np.array([-p[:3, :3].T @ p[:3, 3] for p in poses])
    np.testing.assert_allclose(np.diff(centres, axis=0), [[0.06, 0, 0.12]] * 3, atol=1e-12)
    rel = samples.relative_pose(poses, 0, 1)
    assert rotation_deg(rel[:3, :3]) == pytest.approx(1.5)
    np.testing.assert_allclose(rel, poses[1] @ np.linalg.inv(poses[0]))
    again = samples.camera_motion_sequence(n_frames=2)
    for a, b in zip(again.frames, frames):
        np.testing.assert_array_equal(a, b)


def test_scene_is_not_planar_and_fills_the_view():
    """Three depth layers cover every pixel of the first and last frames."""
    seq = samples.camera_motion_sequence(n_frames=8)
    planes = samples._scene('astronaut', ('coffee', 'chelsea'))
    for pose, frame in ((seq.poses[0], seq.frames[0]), (seq.poses[-1], seq.frames[-1])):
        image, depth = samples.render_view(planes, seq.K, pose)
        np.testing.assert_array_equal(image, frame)
        assert np.isfinite(depth).all()
        near, far = (depth < 5).mean(), (depth > 7).mean()
        assert 0.1 < near < 0.6 and far > 0.3, (near, far)


def test_depth_and_poses_predict_the_next_frame(sequence):
    """Back-projecting frame 0 with its depth and T_0to1 reproduces frame 1 (unoccluded)."""
    planes = samples._scene('astronaut', ('coffee', 'chelsea'))
    _, depth0 = samples.render_view(planes, sequence.K, sequence.poses[0])
    _, depth1 = samples.render_view(planes, sequence.K, sequence.poses[1])
    rel = samples.relative_pose(sequence.poses, 0, 1)
    ys, xs = np.mgrid[0:480, 0:640]
    rays0 = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(sequence.K).T
    pts0 = rays0 * depth0[..., None]
    pts1 = pts0 @ rel[:3, :3].T + rel[:3, 3]
    pix = pts1 @ sequence.K.T
    map1 = (pix[..., :2] / pix[..., 2:]).astype(np.float32)
    warped = cv2.remap(sequence.frames[1], map1[..., 0], map1[..., 1], cv2.INTER_LINEAR)
    seen = cv2.remap(depth1, map1[..., 0], map1[..., 1], cv2.INTER_NEAREST,
                     borderValue=0)
    visible = np.abs(seen - pts1[..., 2]) < 0.02 * pts1[..., 2]  # not occluded, in view
    assert visible.mean() > 0.8
    diff = np.abs(warped.astype(int) - sequence.frames[0].astype(int)).max(-1)[visible]
    assert np.median(diff) <= 3 and np.mean(diff < 20) > 0.95


def test_essential_matrix_recovers_the_ground_truth(sequence):
    """SIFT + findEssentialMat + recoverPose on the renders give T_0to1 (X1 = R X0 + t)."""
    kpts0, kpts1 = sift_matches(sequence.frames[0], sequence.frames[2])
    assert len(kpts0) > 300
    ess, mask = cv2.findEssentialMat(kpts0, kpts1, sequence.K, method=cv2.USAC_MAGSAC,
                                     prob=0.999, threshold=1.0)
    _, rot, trans, _ = cv2.recoverPose(ess, kpts0, kpts1, sequence.K, mask=mask)
    rel = samples.relative_pose(sequence.poses, 0, 2)
    t_true = rel[:3, 3] / np.linalg.norm(rel[:3, 3])
    assert rotation_deg(rot.T @ rel[:3, :3]) < 0.3
    assert np.degrees(np.arccos(np.clip(trans.ravel() @ t_true, -1, 1))) < 3


def test_write_sample_bag(tmp_path):
    """The bag holds rgb8 frames with CameraInfo = K; the ground truth JSON reads back."""
    truth = samples.write_sample_bag(tmp_path / 'sample', n_frames=2, rate=5.0,
                                     storage='sqlite3')
    assert truth['json'] == tmp_path / 'sample.gt.json' and truth['bag'] == tmp_path / 'sample'
    seq = samples.camera_motion_sequence(n_frames=2)
    np.testing.assert_allclose(truth['poses'], seq.poses)
    np.testing.assert_allclose(truth['K'], seq.K)
    assert truth['stamps_ns'].tolist() == [1_000_000_000, 1_200_000_000]
    assert truth['topic'] == '/camera/image_raw'
    assert truth['camera_info_topic'] == '/camera/camera_info'
    reread = samples.read_ground_truth(tmp_path / 'sample')
    np.testing.assert_array_equal(reread['poses'], truth['poses'])
    store, reader = bag.typestore(), bag.open_bag(truth['bag'])
    try:
        msgs = [(c.topic, t, store.deserialize_cdr(d, c.msgtype))
                for c, t, d in reader.messages()]
    finally:
        reader.close()
    images = [m for topic, _, m in msgs if topic == '/camera/image_raw']
    infos = [m for topic, _, m in msgs if topic == '/camera/camera_info']
    assert len(images) == len(infos) == 2
    assert bytes(images[1].data) == seq.frames[1].tobytes() and images[1].encoding == 'rgb8'
    np.testing.assert_allclose(np.reshape(infos[0].k, (3, 3)), seq.K)
    with pytest.raises(ValueError, match='no ground truth at'):
        samples.read_ground_truth(tmp_path / 'other')

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

"""The rendered samples: frames agree with their ground-truth poses; scenes are as described."""

import time

import cv2
from lightglue_ros.ros import bag
from lightglue_ros.tools import samples
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


def assert_depth_predicts(planes: list, seq: samples.CameraSequence, i: int, j: int) -> None:
    """Back-project frame i with its depth and T_itoj: frame j agrees where unoccluded."""
    _, depth0 = samples.render_view(planes, seq.K, seq.poses[i])
    _, depth1 = samples.render_view(planes, seq.K, seq.poses[j])
    rel = samples.relative_pose(seq.poses, i, j)
    ys, xs = np.mgrid[0:480, 0:640]
    rays0 = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(seq.K).T
    pts0 = rays0 * depth0[..., None]
    pts1 = pts0 @ rel[:3, :3].T + rel[:3, 3]
    pix = pts1 @ seq.K.T
    map1 = (pix[..., :2] / pix[..., 2:]).astype(np.float32)
    warped = cv2.remap(seq.frames[j], map1[..., 0], map1[..., 1], cv2.INTER_LINEAR)
    seen = cv2.remap(depth1, map1[..., 0], map1[..., 1], cv2.INTER_NEAREST,
                     borderValue=0)
    visible = np.abs(seen - pts1[..., 2]) < 0.02 * pts1[..., 2]  # not occluded, in view
    assert visible.mean() > 0.8
    diff = np.abs(warped.astype(int) - seq.frames[i].astype(int)).max(-1)[visible]
    assert np.median(diff) <= 3 and np.mean(diff < 20) > 0.95


def test_depth_and_poses_predict_the_next_frame(sequence):
    """Back-projecting frame 0 with its depth and T_0to1 reproduces frame 1 (unoccluded)."""
    assert_depth_predicts(samples._scene('astronaut', ('coffee', 'chelsea')), sequence, 0, 1)


def test_handheld_motion():
    """Steps of 1-3 cm and 0.3-2 degrees in varied directions, near frame 0, repeatable."""
    poses = samples._handheld_poses(40, seed=0)
    np.testing.assert_allclose(poses[0], np.eye(4))
    rel = np.array([samples.relative_pose(poses, i, i + 1) for i in range(39)])
    steps = np.linalg.norm(rel[:, :3, 3], axis=1)
    turns = np.array([rotation_deg(r[:3, :3]) for r in rel])
    assert steps.min() >= 0.01 - 1e-9 and steps.max() <= 0.03 + 1e-9
    assert turns.min() >= 0.3 - 1e-6 and turns.max() <= 2.0 + 1e-6
    # Varied: translation directions spread over all three axes.
    dirs = rel[:, :3, 3] / steps[:, None]
    assert np.linalg.svd(dirs, compute_uv=False).min() > 0.3 * np.sqrt(len(dirs))
    centres = np.array([-p[:3, :3].T @ p[:3, 3] for p in poses])
    assert np.linalg.norm(centres, axis=1).max() < 0.07
    assert max(rotation_deg(p[:3, :3]) for p in poses) < 7.0
    np.testing.assert_array_equal(samples._handheld_poses(40, seed=0), poses)
    assert not np.allclose(samples._handheld_poses(40, seed=1), poses)


@pytest.fixture(scope='module')
def desk() -> samples.CameraSequence:
    """Return a short hand-held sequence over the desk with objects."""
    return samples.handheld_sequence(n_frames=3, scene='desk')


def test_desk_scene_layout(desk):
    """The desk fills every view; objects cover 10-25 % of it; the bare desk is one plane."""
    frames, kmat, poses = desk
    assert len(frames) == 3 and all(f.shape == (480, 640, 3) for f in frames)
    np.testing.assert_allclose(kmat, [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    np.testing.assert_allclose(poses, samples._handheld_poses(3, seed=0))
    with_objects, bare = samples._desk_scene(True), samples._desk_scene(False)
    for pose, frame in zip(poses, frames):
        image, depth = samples.render_view(with_objects, kmat, pose)
        np.testing.assert_array_equal(image, frame)
        _, plane_depth = samples.render_view(bare, kmat, pose)
        assert np.isfinite(plane_depth).all() and 0.45 < plane_depth.min() < 1.2
        assert 0.10 < np.mean(depth < plane_depth - 1e-3) < 0.25
    # Frame 0: the desk is the plane DESK_HEIGHT below the camera along gravity.
    pitch = np.deg2rad(samples.DESK_PITCH_DEG)
    gravity = np.array([0.0, np.cos(pitch), np.sin(pitch)])
    ys, xs = np.mgrid[0:480, 0:640]
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(kmat).T
    _, plane_depth = samples.render_view(bare, kmat, poses[0])
    np.testing.assert_allclose(plane_depth, samples.DESK_HEIGHT / (rays @ gravity), rtol=1e-5)
    again = samples.handheld_sequence(n_frames=2, scene='plane')
    np.testing.assert_array_equal(again.frames[1], samples.render_view(bare, kmat, poses[1])[0])


def test_desk_depth_and_poses_predict_the_next_frame(desk):
    """The desk's ground truth holds with objects and their occlusions, over two steps."""
    assert_depth_predicts(samples._desk_scene(True), desk, 0, 2)


def test_desk_renders_fast():
    """A 640x480 desk frame renders in well under a second."""
    planes, kmat = samples._desk_scene(True), np.array([[500.0, 0, 320], [0, 500, 240],
                                                        [0, 0, 1]])
    start = time.perf_counter()
    for _ in range(3):
        samples.render_view(planes, kmat, np.eye(4))
    assert (time.perf_counter() - start) / 3 < 0.5


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
    assert truth['scene'] == 'photo_planes'


def test_write_sample_bag_scenes(tmp_path):
    """`scene` selects the hand-held desk sequence; its arguments pass through."""
    truth = samples.write_sample_bag(tmp_path / 'desk', n_frames=2, scene='desk', seed=3,
                                     storage='sqlite3')
    assert truth['scene'] == 'desk'
    np.testing.assert_allclose(truth['poses'], samples._handheld_poses(2, seed=3))
    with pytest.raises(ValueError, match='unknown sample scene'):
        samples.write_sample_bag(tmp_path / 'x', n_frames=2, scene='kitchen')
    with pytest.raises(ValueError, match='unknown hand-held scene'):
        samples.handheld_sequence(2, scene='photo_planes')

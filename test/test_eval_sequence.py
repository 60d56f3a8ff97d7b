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

"""`lightglue-ros eval --sequence`: chained poses scored with evo on KITTI, rendered, synthetic."""

import contextlib
import io
import json
import math
from pathlib import Path
import shutil

from lightglue_ros.geometry import rotation_to_quaternion
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.tools.cli import main
from lightglue_ros.tools.eval_sequence import chain_poses
from lightglue_ros.tools.eval_sequence import evaluate_sequence
from lightglue_ros.tools.eval_sequence import SiftFrontend
from lightglue_ros.tools.eval_sequence import trajectory_metrics
from lightglue_ros.tools.eval_stereo import stereo_points
from lightglue_ros.tools.samples import write_stereo_sample
from lightglue_ros.tools.sequences import kitti_baseline
from lightglue_ros.tools.sequences import load_sequence
from lightglue_ros.tools.sequences import read_kitti_calib
from lightglue_ros.tools.sequences import Sequence
from lightglue_ros.tools.sequences import write_kitti_sequence
import numpy as np
import pytest

FIGURES = ('ate_rmse_m', 'rpe_trans_rmse_m', 'rpe_trans_mean_m', 'rpe_rot_rmse_deg',
           'rpe_rot_mean_deg', 'end_error_m')
K_KITTI = np.array([[718.856, 0, 607.1928], [0, 718.856, 185.2157], [0, 0, 1]])


@pytest.fixture(scope='module')
def kitti_run(kitti, aliked_models, tmp_path_factory) -> dict:
    """Run the command on kitti00 (both methods, both references); return output and JSON."""
    out = tmp_path_factory.mktemp('eval_sequence')
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(['eval', '--sequence', str(kitti), '--models', str(aliked_models),
                     '--plot', str(out / 'top.png'), '--json', str(out / 'eval.json')])
    assert code == 0
    report = json.loads((out / 'eval.json').read_text())
    return {'stdout': stdout.getvalue(), 'results': report['sequences']['kitti00'],
            'config': report['config'], 'plot': out / 'top.png'}


def test_kitti_our_trajectory_is_accurate(kitti_run):
    """
    Our matcher's ATE and RPE on KITTI 00 frames 100-119 (7.4 m driven, turning 60 deg).

    Measured (ALIKED-n16 1024 kpts, fp32, method auto, AMD EPYC): ATE RMSE 0.0087 m, RPE
    translation RMSE 0.0116 m (mean 0.0105), RPE rotation RMSE 0.085 deg (mean 0.083), end
    error before alignment 0.097 m, the same for both references (every frame is a keyframe
    here, see below); no pair flagged. Bounds are about twice these. A flipped translation
    gives an RPE translation of 0.78 m (twice a frame's motion) but an ATE of 0.008 m (SIFT:
    the SE(3) alignment turns the mirrored path onto the truth), so both are checked.
    """
    results = kitti_run['results']['lightglue_ros']
    for reference in ('previous', 'keyframe'):
        r = results[reference]
        assert r['pairs'] == 19 and r['failed_pairs'] == 0
        assert r['ate_rmse_m'] < 0.02
        assert r['end_error_m'] < 0.2
        assert r['rpe_trans_rmse_m'] < 0.025 and r['rpe_trans_mean_m'] <= r['rpe_trans_rmse_m']
        assert r['rpe_rot_rmse_deg'] < 0.15 and r['rpe_rot_mean_deg'] <= r['rpe_rot_rmse_deg']
        # Each pair's scale is the ground-truth distance: KITTI moves 0.37-0.43 m per frame.
        assert all(0.35 < p['gt_distance_m'] < 0.45 for p in r['per_pair']
                   if p['frame'] - p['reference'] == 1)
    assert 'translation scale from the ground truth' in kitti_run['stdout']
    rows = [line.split() for line in kitti_run['stdout'].splitlines()
            if line.split()[:1] in (['lightglue_ros'], ['sift'])]
    assert [row[:2] for row in rows] == [[m, ref] for m in ('lightglue_ros', 'sift')
                                         for ref in ('previous', 'keyframe')]


def test_kitti_sift_runs_through_the_same_chain(kitti_run):
    """SIFT (measured ATE 0.0065 m, RPE 0.0102 m / 0.077 deg) gives finite, sane figures."""
    for reference, r in kitti_run['results']['sift'].items():
        assert all(math.isfinite(r[k]) for k in FIGURES), reference
        assert r['pairs'] == 19 and r['failed_pairs'] == 0
        assert r['ate_rmse_m'] < 0.02 and r['rpe_trans_rmse_m'] < 0.025
        assert r['rpe_rot_rmse_deg'] < 0.15
        assert min(p['matches'] for p in r['per_pair']) > 200


def test_kitti_keyframe_references(kitti_run):
    """
    `keyframe` never takes more references than `previous`, which takes every frame.

    With the tracker's default 30 px, KITTI at 10 Hz moves 34-55 px (median) between
    consecutive frames, so every frame becomes a keyframe and both take 20 (equal). With
    60 px (SIFT, measured) 13 references are taken and pairs span up to 2 frames.
    """
    results = kitti_run['results']
    for method in ('lightglue_ros', 'sift'):
        assert results[method]['previous']['keyframes'] == 20
        assert results[method]['keyframe']['keyframes'] <= 20
    sequence = load_sequence(kitti_run['config']['sequence'])
    r = evaluate_sequence(sequence, {'sift': SiftFrontend()}, ['keyframe'],
                          parallax_px=60.0)['sift']['keyframe']
    spans = [p['frame'] - p['reference'] for p in r['per_pair']]
    assert r['keyframes'] < 20 and max(spans) >= 2
    assert r['failed_pairs'] == 0 and r['ate_rmse_m'] < 0.03


def test_plot_is_a_png(kitti_run):
    data = kitti_run['plot'].read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000


def _write_tum(kitti: Path, folder: Path) -> None:
    """Write kitti00 as TUM: groundtruth.txt, rgb/<timestamp>.png links and K.txt."""
    sequence = load_sequence(kitti)
    (folder / 'rgb').mkdir(parents=True)
    lines = ['# timestamp tx ty tz qx qy qz qw (KITTI 00 frames 100-119, shifted in time)']
    for stamp_ns, image, pose in zip(sequence.stamps_ns, sequence.images, sequence.poses):
        stamp = f'{1305031102 + stamp_ns * 1e-9:.6f}'
        (folder / 'rgb' / f'{stamp}.png').symlink_to(image)
        q = rotation_to_quaternion(pose[:3, :3])
        lines.append(' '.join([stamp] + [f'{v:.12f}' for v in (*pose[:3, 3], *q)]))
    (folder / 'groundtruth.txt').write_text('\n'.join(lines) + '\n')
    shutil.copy(kitti / 'calib_cam0_K.txt', folder / 'K.txt')


def test_tum_round_trip_gives_the_same_poses_and_figures(kitti, kitti_run, tmp_path):
    _write_tum(kitti, tmp_path)
    truth, tum = load_sequence(kitti), load_sequence(tmp_path)
    assert tum.layout == 'tum' and len(tum.images) == 20
    np.testing.assert_allclose(tum.poses, truth.poses, atol=1e-9)
    assert [p.resolve() for p in tum.images] == [p.resolve() for p in truth.images]
    np.testing.assert_allclose(tum.camera.K, truth.camera.K)
    r = evaluate_sequence(tum, {'sift': SiftFrontend()}, ['previous'])['sift']['previous']
    expected = kitti_run['results']['sift']['previous']
    for key in FIGURES:
        assert r[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key


def test_tum_association_skips_images_without_ground_truth(kitti, tmp_path):
    _write_tum(kitti, tmp_path)
    lines = (tmp_path / 'groundtruth.txt').read_text().splitlines()
    del lines[5]  # frame 4 (line 0 is the comment): its neighbours are 100 ms away
    (tmp_path / 'groundtruth.txt').write_text('\n'.join(lines) + '\n')
    sequence = load_sequence(tmp_path, K=(718.856, 718.856, 607.1928, 185.2157))
    assert len(sequence.images) == 19
    np.testing.assert_allclose(sequence.poses, np.delete(load_sequence(kitti).poses, 4, 0),
                               atol=1e-9)


def _cli_error(args: list, capsys) -> str:
    assert main(['eval'] + args) == 2
    return capsys.readouterr().err


def test_missing_files_exit_2_and_say_what_to_pass(kitti, tmp_path, capsys):
    assert 'neither a KITTI' in _cli_error(['--sequence', str(tmp_path)], capsys)
    tum = tmp_path / 'tum'
    _write_tum(kitti, tum)
    (tum / 'K.txt').unlink()
    assert '--K fx fy cx cy' in _cli_error(['--sequence', str(tum)], capsys)
    (tum / 'rgb' / 'frame.png').symlink_to(kitti / 'image_0' / '000100.png')
    assert 'named by their time stamp' in _cli_error(['--sequence', str(tum)], capsys)
    partial = tmp_path / 'kitti'
    partial.mkdir()
    (partial / 'image_0').symlink_to(kitti / 'image_0')
    shutil.copy(kitti / 'poses_00_frames100-119.txt', partial)
    assert 'times' in _cli_error(['--sequence', str(partial)], capsys)
    err = _cli_error(['--sequence', str(kitti), '--sequence-methods', 'sift,bad'], capsys)
    assert 'unknown --sequence-methods bad' in err
    err = _cli_error(['--sequence', str(kitti), '--references', 'oldest'], capsys)
    assert 'unknown --references oldest' in err


def _project(pose: np.ndarray) -> dict:
    """Return the keypoints and ids of 600 fixed points seen from a camera-to-world pose."""
    points = np.random.default_rng(3).uniform([-25, -4, 8], [25, 4, 70], (600, 3))
    x = (points - pose[:3, 3]) @ pose[:3, :3]  # world -> camera
    uv = x @ K_KITTI.T
    uv = uv[:, :2] / uv[:, 2:]
    seen = (x[:, 2] > 1) & (uv >= 0).all(1) & (uv < [1241, 376]).all(1)
    return {'keypoints': uv[seen], 'ids': np.flatnonzero(seen)}


def _synthetic(n_frames: int = 12) -> tuple:
    """Return a sequence driving forward and turning through 600 points, exact matches."""
    poses, position = [], np.zeros(3)
    for i in range(n_frames):
        yaw = 0.03 * i
        R = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, position
        poses.append(pose)
        position = position + 0.5 * R[:, 2]  # 0.5 m along the optical axis
    camera = CameraModel(K=K_KITTI, width=1241, height=376)
    sequence = Sequence('synthetic', 'kitti', np.arange(n_frames) * 100_000_000,
                        [Path(f'{i}.png') for i in range(n_frames)], np.array(poses), camera)

    def features(i):
        return _project(poses[i])

    def match(feats0, feats1):
        _, i0, i1 = np.intersect1d(feats0['ids'], feats1['ids'], return_indices=True)
        return np.c_[i0, i1]

    return sequence, features, match


@pytest.mark.parametrize('reference', ['previous', 'keyframe'])
def test_chaining_recovers_a_synthetic_trajectory_exactly(reference):
    """Exact matches: the chained poses equal the ground truth (ATE and RPE ~0)."""
    sequence, features, match = _synthetic()
    chain = chain_poses(sequence, features, match, reference)
    assert chain.failed == 0 and chain.pairs == 11
    np.testing.assert_allclose(chain.poses, sequence.poses, atol=1e-6)
    figures, _ = trajectory_metrics(sequence, chain.poses)
    assert figures['ate_rmse_m'] < 1e-6 and figures['rpe_rot_rmse_deg'] < 1e-4


def test_a_flagged_pair_keeps_the_reference_pose_and_counts_as_failed():
    """Frame 5 gets no matches: its pose is frame 4's (no rotation known, zero translation)."""
    sequence, features, match = _synthetic()

    def match_but_5(feats0, feats1):
        return np.zeros((0, 2), int) if feats1 is features_5 else match(feats0, feats1)

    features_5 = features(5)
    chain = chain_poses(sequence, lambda i: features_5 if i == 5 else features(i), match_but_5,
                        'previous')
    assert chain.failed == 1 and not chain.per_pair[4]['ok']
    np.testing.assert_allclose(chain.poses[5], chain.poses[4])
    np.testing.assert_allclose(chain.poses[:5], sequence.poses[:5], atol=1e-6)
    # Later motion is still right, from the wrong start: frame 6 is 0.5 m ahead of frame 5.
    step = np.linalg.inv(chain.poses[5]) @ chain.poses[6]
    np.testing.assert_allclose(step, np.linalg.inv(sequence.poses[5]) @ sequence.poses[6],
                               atol=1e-6)


# A calib.txt in the KITTI odometry layout (grey cameras P0, P1; colour P2, P3; velodyne
# Tr), made-up values: fx 700, principal point (320.5, 240.25), baseline 0.5 m.
KITTI_CALIB = """\
P0: 7.000000000000e+02 0.000000000000e+00 3.205000000000e+02 0.000000000000e+00 0.000000000000e+00 7.000000000000e+02 2.402500000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P1: 7.000000000000e+02 0.000000000000e+00 3.205000000000e+02 -3.500000000000e+02 0.000000000000e+00 7.000000000000e+02 2.402500000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P2: 7.000000000000e+02 0.000000000000e+00 3.205000000000e+02 4.200000000000e+01 0.000000000000e+00 7.000000000000e+02 2.402500000000e+02 -1.000000000000e-01 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 4.000000000000e-03
P3: 7.000000000000e+02 0.000000000000e+00 3.205000000000e+02 -3.080000000000e+02 0.000000000000e+00 7.000000000000e+02 2.402500000000e+02 2.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 5.000000000000e-03
Tr: 0.000000000000e+00 -1.000000000000e+00 0.000000000000e+00 -1.000000000000e-02 0.000000000000e+00 0.000000000000e+00 -1.000000000000e+00 -5.000000000000e-02 1.000000000000e+00 0.000000000000e+00 0.000000000000e+00 -3.000000000000e-01
"""  # noqa: E501


def _tiny_kitti(folder: Path, stereo: bool = True) -> Path:
    """Write 3 noise frames (32 x 24) with poses and times, image_1/ too with `stereo`."""
    frames = list(np.random.default_rng(0).integers(0, 255, (3, 24, 32), np.uint8))
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, 2, 3] = [0.0, 0.5, 1.0]
    return write_kitti_sequence(folder, frames, poses, K_KITTI, frames_right=frames if stereo
                                else None, baseline=0.2 if stereo else None)


def test_kitti_calib_txt_gives_k_and_the_baseline(tmp_path):
    """A KITTI-layout calib.txt: K from P0, B = -P1[0, 3] / fx = 350 / 700 = 0.5 m."""
    (tmp_path / 'calib.txt').write_text(KITTI_CALIB)
    calib = read_kitti_calib(tmp_path / 'calib.txt')
    assert sorted(calib) == ['P0', 'P1', 'P2', 'P3']
    np.testing.assert_allclose(calib['P0'][:, :3],
                               [[700.0, 0, 320.5], [0, 700.0, 240.25], [0, 0, 1]])
    assert kitti_baseline(calib['P0'], calib['P1']) == pytest.approx(0.5, abs=1e-9)
    # P0 need not be at the origin: B is the difference of the two centres.
    shifted = [P + np.c_[np.zeros((3, 3)), [-0.1 * 700.0, 0, 0]] for P in (calib['P0'],
                                                                           calib['P1'])]
    assert kitti_baseline(*shifted) == pytest.approx(0.5, abs=1e-9)
    (tmp_path / 'calib.txt').write_text('P0: 1 2 3\n')
    with pytest.raises(ValueError, match='12 numbers'):
        read_kitti_calib(tmp_path / 'calib.txt')
    (tmp_path / 'calib.txt').write_text(KITTI_CALIB.split('P1')[0])
    with pytest.raises(ValueError, match='P0 and P1'):
        read_kitti_calib(tmp_path / 'calib.txt')


def test_stereo_folders_load_with_their_baseline_and_say_what_is_missing(tmp_path):
    """image_1/ makes a KITTI folder stereo: baseline from calib.txt or --baseline; --mono."""
    folder = _tiny_kitti(tmp_path / 'stereo')
    sequence = load_sequence(folder)
    assert sequence.stereo and sequence.baseline_m == pytest.approx(0.2, abs=1e-12)
    assert [p.name for p in sequence.images_right] == [p.name for p in sequence.images]
    assert all(p.parent.name == 'image_1' for p in sequence.images_right)
    np.testing.assert_allclose(sequence.camera.K, K_KITTI)
    assert load_sequence(folder, baseline=0.35).baseline_m == 0.35
    mono = load_sequence(folder, mono=True)
    assert not mono.stereo and mono.images_right is None and mono.baseline_m is None
    with pytest.raises(ValueError, match='--baseline is for stereo'):
        load_sequence(folder, mono=True, baseline=0.3)
    with pytest.raises(ValueError, match='rectified'):
        load_sequence(folder, distortion=(0.1, 0, 0, 0, 0))
    # The right camera must be on the right: P1[0, 3] = +fx B (image_1 on the left) is refused.
    text = (folder / 'calib.txt').read_text().replace('-1.437712', '1.437712')
    (folder / 'calib.txt').write_text(text)
    with pytest.raises(ValueError, match='must be > 0'):
        load_sequence(folder)
    (folder / 'calib.txt').unlink()
    with pytest.raises(ValueError, match='--baseline METRES'):
        load_sequence(folder, K=(718.856, 718.856, 607.1928, 185.2157))
    assert load_sequence(folder, K=(718.856, 718.856, 607.1928, 185.2157),
                         baseline=0.2).stereo
    (folder / 'image_1' / '000001.png').unlink()
    with pytest.raises(ValueError, match='image_1/ lacks 1 of the 3'):
        load_sequence(folder, K=(718.856, 718.856, 607.1928, 185.2157), baseline=0.2)
    with pytest.raises(ValueError, match='--baseline is for stereo'):
        load_sequence(_tiny_kitti(tmp_path / 'mono', stereo=False), baseline=0.2)


def test_stereo_points_triangulate_on_rectified_rows():
    """Depth fx B / d; a wrong row, a zero or negative disparity gives no point."""
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    X = np.array([[0.5, -0.2, 4.0], [-1.0, 0.3, 10.0], [0.0, 0.0, 2.0], [0.2, 0.1, 3.0],
                  [0.1, 0.1, 5.0]])
    left = (X / X[:, 2:]) @ K.T
    right = ((X - [0.3, 0, 0]) / X[:, 2:]) @ K.T
    right[2, 1] += 3.0  # 3 px off the row
    right[3, 0] = left[3, 0]  # zero disparity
    right[4, 0] = left[4, 0] + 10  # negative disparity
    points = stereo_points(left[:, :2], right[:, :2], np.c_[np.arange(5), np.arange(5)], K,
                           0.3)
    np.testing.assert_allclose(points[:2], X[:2], atol=1e-9)
    assert np.isnan(points[2:]).all()


def _synthetic_stereo(n_frames: int = 12, baseline: float = 0.54) -> tuple:
    """`_synthetic` through a rectified rig: features carry stereo points from exact matches."""
    sequence, features, match = _synthetic(n_frames)
    sequence.images_right, sequence.baseline_m = list(sequence.images), baseline
    poses = sequence.poses.copy()  # the true ones, whatever a test does to the sequence's

    def right(i):
        shifted = poses[i].copy()
        shifted[:3, 3] += shifted[:3, 0] * baseline  # the right camera is at x = +B
        return _project(shifted)

    def stereo_features(i, right_matches=True):
        feats = features(i)
        feats['points3d'] = stereo_points(
            feats['keypoints'], right(i)['keypoints'],
            match(feats, right(i)) if right_matches else np.zeros((0, 2), int), K_KITTI,
            baseline)
        return feats

    return sequence, stereo_features, match


@pytest.mark.parametrize('reference', ['previous', 'keyframe'])
def test_stereo_chaining_is_metric_without_the_ground_truth(reference):
    """
    Exact matches: stereo + PnP give the true metric poses, though the ground truth is doubled.

    Only the first pose comes from the ground truth (at the origin here), so doubling the
    ground-truth positions changes nothing in the estimate; the monocular chain follows them.
    """
    sequence, features, match = _synthetic_stereo()
    truth = sequence.poses.copy()
    sequence.poses[:, :3, 3] *= 2
    chain = chain_poses(sequence, features, match, reference)
    assert chain.failed == 0 and chain.pairs == 11
    np.testing.assert_allclose(chain.poses, truth, atol=1e-6)
    assert all(p['model'] == 'pnp' and p['points3d'] > 100 for p in chain.per_pair)
    sequence.images_right = sequence.baseline_m = None  # monocular: scale from the truth
    mono = chain_poses(sequence, features, match, reference)
    np.testing.assert_allclose(mono.poses, sequence.poses, atol=1e-6)


def test_a_stereo_pair_without_3d_points_counts_as_failed():
    """Frame 5 has no stereo matches: pair 5 -> 6 fails and frame 6 stays at frame 5's pose."""
    sequence, features, match = _synthetic_stereo()
    chain = chain_poses(sequence, lambda i: features(i, right_matches=i != 5), match,
                        'previous')
    assert chain.failed == 1 and [p['frame'] for p in chain.per_pair if not p['ok']] == [6]
    assert 'fewer than 12' in chain.per_pair[5]['reason']
    np.testing.assert_allclose(chain.poses[6], chain.poses[5])
    np.testing.assert_allclose(chain.poses[:6], sequence.poses[:6], atol=1e-6)
    step = np.linalg.inv(chain.poses[6]) @ chain.poses[7]
    np.testing.assert_allclose(step, np.linalg.inv(sequence.poses[6]) @ sequence.poses[7],
                               atol=1e-6)


@pytest.fixture(scope='module')
def stereo_run(aliked_models, tmp_path_factory) -> dict:
    """Render 16 stereo frames (B 0.3 m, 4.6 cm per frame on an arc); run the command."""
    out = tmp_path_factory.mktemp('eval_stereo')
    folder = write_stereo_sample(out / 'rendered_stereo', 16)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(['eval', '--sequence', str(folder), '--models', str(aliked_models),
                     '--json', str(out / 'eval.json')])
    assert code == 0
    report = json.loads((out / 'eval.json').read_text())
    return {'stdout': stdout.getvalue(), 'results': report['sequences']['rendered_stereo'],
            'config': report['config'], 'folder': folder}


def _path_length(positions) -> float:
    return float(np.linalg.norm(np.diff(np.asarray(positions), axis=0), axis=1).sum())


def test_rendered_stereo_trajectory_is_metric(stereo_run):
    """
    Rendered stereo (exact ground truth, 0.69 m driven): both methods, both references.

    Measured (ALIKED-n16 1024 kpts fp32; SIFT 2048): ATE RMSE 0.30 / 0.33 mm (ours previous /
    keyframe), 0.45 / 0.42 mm (SIFT), end error before alignment 1.2-1.8 mm, RPE rotation
    0.002-0.004 degrees, no pair failed, 750-1160 stereo points per reference. Bounds: ATE
    and end error < 1 % of the path (6.9 mm).
    """
    path = _path_length(load_sequence(stereo_run['folder']).poses[:, :3, 3])
    assert 0.68 < path < 0.70
    assert stereo_run['config']['stereo'] and stereo_run['config']['baseline_m'] == 0.3
    for method in ('lightglue_ros', 'sift'):
        for reference in ('previous', 'keyframe'):
            r = stereo_run['results'][method][reference]
            assert r['pairs'] == 15 and r['failed_pairs'] == 0, (method, reference)
            assert r['ate_rmse_m'] < 0.01 * path and r['end_error_m'] < 0.01 * path
            assert r['rpe_trans_rmse_m'] < 0.002 and r['rpe_rot_rmse_deg'] < 0.05
            assert _path_length(r['positions_aligned']) == pytest.approx(path, rel=0.01)
            assert min(p['points3d'] for p in r['per_pair']) > 300
            assert all('gt_distance_m' not in p for p in r['per_pair'])
    assert 'no ground-truth scale' in stereo_run['stdout']
    assert '(kitti stereo, baseline 0.300 m, 16 frames' in stereo_run['stdout']


def test_rendered_stereo_ignores_the_ground_truth_scale(stereo_run, tmp_path):
    """
    With the ground-truth positions doubled (1.38 m) the stereo estimate stays put (0.69 m).

    SIFT, measured: the same per-pair distances to 1e-12, ATE 0.21 m against the doubled
    ground truth. (A monocular chain follows the ground truth's scale: see
    `test_stereo_chaining_is_metric_without_the_ground_truth`.)
    """
    folder = stereo_run['folder']
    for name in ('image_0', 'image_1', 'calib.txt', 'times.txt'):
        (tmp_path / name).symlink_to(folder / name)
    rows = np.loadtxt(folder / 'poses.txt')
    rows[:, [3, 7, 11]] *= 2
    np.savetxt(tmp_path / 'poses.txt', rows)
    doubled = load_sequence(tmp_path)
    assert doubled.stereo and 1.36 < _path_length(doubled.poses[:, :3, 3]) < 1.40
    r = evaluate_sequence(doubled, {'sift': SiftFrontend()}, ['previous'])['sift']['previous']
    expected = stereo_run['results']['sift']['previous']
    assert [p['distance_m'] for p in r['per_pair']] == pytest.approx(
        [p['distance_m'] for p in expected['per_pair']], abs=1e-12)
    path = _path_length(r['positions_aligned'])
    assert path == pytest.approx(_path_length(expected['positions_aligned']), rel=1e-9)
    assert 0.68 < path < 0.70 and r['ate_rmse_m'] > 0.1

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

"""`lightglue-ros eval`: pair files, AUC, and end-to-end runs on photos under known warps."""

import json

import cv2
from lightglue_ros.geometry import pose_auc
from lightglue_ros.tools import eval_metrics, eval_sets, samples
from lightglue_ros.tools.cli import main
import numpy as np
import pytest

K = np.array([[400.0, 0, 255.5], [0, 400, 255.5], [0, 0, 1]])


def write_image(path, rgb):
    assert cv2.imwrite(str(path), rgb[..., ::-1])


def pose_line(name0, name1, K0, K1, T):
    values = [0, 0, *K0.ravel(), *K1.ravel(), *T.ravel()]
    return ' '.join([name0, name1, *(f'{v:.10g}' for v in values)])


def test_read_pair_files(tmp_path):
    """Both formats parse; bad lines name the file and line."""
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.3]
    (tmp_path / 'pairs_with_gt.txt').write_text(
        '# comment\n' + pose_line('a.png', 'b.png', K, 2 * K, T) + '\n\n')
    pairs = eval_sets.read_pose_pairs(tmp_path / 'pairs_with_gt.txt')
    assert len(pairs) == 1 and pairs[0]['name1'] == 'b.png'
    np.testing.assert_allclose(pairs[0]['K1'], 2 * K)
    np.testing.assert_allclose(pairs[0]['T_0to1'], T)
    (tmp_path / 'pairs_with_H.txt').write_text('a.png b.png 2 0 5 0 2 7 0 0 2\n')
    pairs = eval_sets.read_homography_pairs(tmp_path / 'pairs_with_H.txt')
    np.testing.assert_allclose(pairs[0]['H'], [[1, 0, 2.5], [0, 1, 3.5], [0, 0, 1]])
    (tmp_path / 'bad.txt').write_text('a.png b.png 1 2 3\n')
    with pytest.raises(ValueError, match=r'bad.txt:1: a pose pair has 38 columns'):
        eval_sets.read_pose_pairs(tmp_path / 'bad.txt')
    with pytest.raises(ValueError, match=r'bad.txt:1: a homography pair has 11 columns'):
        eval_sets.read_homography_pairs(tmp_path / 'bad.txt')
    (tmp_path / 'rot.txt').write_text(pose_line('a', 'b', K, K, T).replace(' 0 0 ', ' 1 0 ', 1))
    with pytest.raises(ValueError, match='rotations'):
        eval_sets.read_pose_pairs(tmp_path / 'rot.txt')


def test_discover_sets(tmp_path):
    """--eval-root finds pose and homography folders; images may sit in images/."""
    (tmp_path / 'poses' / 'images').mkdir(parents=True)
    (tmp_path / 'poses' / 'pairs_with_gt.txt').write_text(
        pose_line('a.png', 'b.png', K, K, np.eye(4)) + '\n')
    (tmp_path / 'poses' / 'images' / 'a.png').write_bytes(b'')
    (tmp_path / 'planar').mkdir()
    (tmp_path / 'planar' / 'pairs_with_H.txt').write_text('a.png b.png 1 0 0 0 1 0 0 0 1\n')
    sets = eval_sets.discover_sets(tmp_path)
    found = [(s.name, s.kind, len(s.pairs)) for s in sets]
    assert found == [('planar', 'homography', 1), ('poses', 'pose', 1)]
    assert eval_sets.image_path(sets[1].images, 'a.png') == tmp_path / 'poses/images/a.png'
    with pytest.raises(ValueError, match='No image at path'):
        eval_sets.image_path(sets[1].images, 'b.png')
    with pytest.raises(ValueError, match='no pairs_with_gt.txt or pairs_with_H.txt'):
        eval_sets.discover_sets(tmp_path / 'poses' / 'images')


def test_pose_auc_known_values():
    """The SuperGlue AUC: trapezoids of the recall curve, unsolved pairs as inf."""
    errors = [3.0, 1.0, np.inf, 2.0]
    # Recall steps of 1/4 at 1, 2, 3 degrees; 0.75 from 3 to 5: (0.125+0.375+0.625+1.5)/5.
    assert pose_auc(errors, [5]) == pytest.approx([0.525])
    # At 2 degrees the recall curve stops before the step at 2: (0.125 + 0.25) / 2.
    assert pose_auc(errors, [2]) == pytest.approx([0.1875])
    assert pose_auc([0.0, 0.0], [5, 10]) == pytest.approx([1.0, 1.0])
    assert pose_auc([np.inf], [5]) == [0.0]
    assert pose_auc([], [5]) == [0.0]


def homography_set(folder, photo: str):
    """Write a photo, its known warp and their pairs_with_H.txt into `folder`; return it."""
    image0, image1, H = samples.warped_pair(photo)
    write_image(folder / 'a.png', image0)
    write_image(folder / 'b.png', image1)
    pairs_file = folder / 'pairs_with_H.txt'
    pairs_file.write_text('a.png b.png ' + ' '.join(f'{v:.10g}' for v in H.ravel()) + '\n')
    return pairs_file


def test_eval_homography_pair_all_methods(tmp_path, aliked_models, capsys):
    """One photo under a known homography: table and JSON contract for all three methods."""
    pairs_file = homography_set(tmp_path, 'astronaut')
    out = tmp_path / 'out.json'
    # --resize 512 (no upscaling of the 512x512 photo) keeps the reference quick; it also
    # checks that the reference follows the engine's settings.
    assert main(['eval', '--models', str(aliked_models), '--homographies',
                 str(pairs_file), '--json', str(out), '--threads', '2',
                 '--resize', '512']) == 0
    table = capsys.readouterr().out
    for method in ('lightglue_ros', 'reference', 'sift', 'AUC@3', 'prec@3px'):
        assert method in table
    result = json.loads(out.read_text())['sets'][tmp_path.name]
    assert set(result) == {'lightglue_ros', 'reference', 'sift'}
    for stats in result.values():
        assert stats['pairs'] == 1 and stats['ms_per_pair'] > 0
        for key in ('auc1', 'auc3', 'auc5', 'mean_corner_err_px', 'precision3'):
            assert key in stats
    ours, ref = result['lightglue_ros'], result['reference']
    assert ours['auc5'] > 60 and ours['precision3'] > 90
    # Same weights, same features, fp32: the same matches up to rare ties.
    assert abs(ours['matches'] - ref['matches']) <= 0.01 * ref['matches']
    assert abs(ours['auc5'] - ref['auc5']) < 5


def test_disparity_check(tmp_path):
    """Matches of a rectified pair are checked against a dense disparity map (inf unknown)."""
    disparity = np.full((40, 60), 5.0)
    disparity[:, :10] = np.inf
    np.savez(tmp_path / 'scene_disp.npz', disparity)
    loaded = eval_sets.read_disparity(tmp_path)
    np.testing.assert_array_equal(loaded, disparity)
    kpts0 = np.array([[20.0, 10.0], [30.2, 20.0], [40.0, 30.0], [5.0, 5.0]])
    kpts1 = kpts0 - [5.0, 0.0] + np.array([[0.1, 0.2], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    out = eval_metrics.score_disparity({'kpts0': kpts0, 'kpts1': kpts1}, disparity)
    assert out['disp_checked'] == 3  # the last one has no ground truth
    assert out['disp_within1'] == pytest.approx(2 / 3)
    assert out['disp_med_x_err'] == pytest.approx(0.1)
    assert out['disp_med_y_err'] == pytest.approx(0.0)
    none = eval_metrics.score_disparity({'kpts0': kpts0[3:], 'kpts1': kpts1[3:]}, disparity)
    assert none['disp_checked'] == 0
    assert eval_sets.read_disparity(tmp_path / 'nowhere') is None


def test_agreement_between_methods():
    """Two estimates compared with each other and with the truth; unsolved pairs skipped."""
    rot = cv2.Rodrigues(np.array([0.0, 0.01, 0.0]))[0]
    a = {'ok': True, 'R_est': np.eye(3).tolist(), 't_est': [1.0, 0.0, 0.0], 'err_t': 2.0}
    b = {'ok': True, 'R_est': rot.tolist(), 't_est': [1.0, 0.0, 0.01], 'err_t': 3.0}
    unsolved = {'ok': False, 'R_est': None, 't_est': None, 'err_t': np.inf}
    out = eval_metrics.agreement('pose', [a, unsolved], [b, b])
    assert out['pairs'] == 1
    assert out['median_rot_between_deg'] == pytest.approx(np.degrees(0.01), rel=1e-3)
    assert out['median_t_between_deg'] == pytest.approx(np.degrees(0.01), rel=1e-2)
    assert (out['median_t_err_a_deg'], out['median_t_err_b_deg']) == (2.0, 3.0)
    corners = np.zeros((4, 2))
    h = eval_metrics.agreement(
        'homography', [{'ok': True, 'corners_est': corners, 'err': 1.0}],
        [{'ok': True, 'corners_est': corners + [0.3, 0.4], 'err': 0.5}])
    assert h['median_corner_between_px'] == pytest.approx(0.5)
    assert eval_metrics.agreement('pose', [unsolved], [b]) is None


def test_eval_refined_methods(tmp_path, aliked_models, capsys):
    """--refine adds the refined engine and SIFT, and their AUC differences."""
    pairs_file = homography_set(tmp_path, 'coffee')
    out = tmp_path / 'out.json'
    assert main(['eval', '--models', str(aliked_models), '--homographies',
                 str(pairs_file), '--methods', 'lightglue_ros,sift',
                 '--refine', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    result = report['sets'][tmp_path.name]
    assert set(result) == {'lightglue_ros', 'lightglue_ros_refined', 'sift', 'sift_refined'}
    comparisons = report['comparisons'][tmp_path.name]
    assert set(comparisons) == {'refined_minus_adaptive', 'sift_refined_minus_sift',
                                'agreement_lightglue_ros_sift',
                                'agreement_lightglue_ros_refined_sift'}
    agree = comparisons['agreement_lightglue_ros_sift']
    assert agree['pairs'] == 1 and 0 <= agree['median_corner_between_px'] < 5
    plain, refined = result['lightglue_ros'], result['lightglue_ros_refined']
    assert refined['matches'] == plain['matches']
    # The warp is exact: refined positions fit it better than detected ones.
    assert refined['mean_corner_err_px'] < plain['mean_corner_err_px']
    assert 'lightglue_ros_refined - lightglue_ros' in capsys.readouterr().out


def test_eval_pose_pair_from_a_planar_warp(tmp_path, aliked_models, capsys):
    """A plane seen from two known poses (H = K (R + t n^T / d) K^-1): the pose is recovered."""
    R = cv2.Rodrigues(np.array([0.02, -0.03, 0.01]))[0]
    t = np.array([0.5, 0.1, 0.1])
    normal, depth = np.array([0.0, -0.2, 1.0]), 5.0  # plane n^T X0 = d in camera 0
    H = K @ (R + np.outer(t, normal) / depth) @ np.linalg.inv(K)
    image0 = samples.photo('astronaut')
    image1 = cv2.warpPerspective(image0, H / H[2, 2], image0.shape[1::-1])
    write_image(tmp_path / 'a.png', image0)
    write_image(tmp_path / 'b.png', image1)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    (tmp_path / 'pairs_with_gt.txt').write_text(pose_line('a.png', 'b.png', K, K, T) + '\n')
    out = tmp_path / 'out.json'
    assert main(['eval', '--models', str(aliked_models), '--pairs',
                 str(tmp_path / 'pairs_with_gt.txt'), '--methods', 'lightglue_ros',
                 '--pose-method', 'auto', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    stats = report['sets'][tmp_path.name]['lightglue_ros']
    assert stats['pairs'] == 1 and stats['solved'] == 100
    assert stats['median_rot_err_deg'] < 0.5 and stats['median_t_err_deg'] < 5
    assert stats['auc20'] > 70
    assert report['per_pair'][tmp_path.name]['lightglue_ros'][0]['model'] == 'homography'
    assert 'AUC@20' in capsys.readouterr().out


def test_eval_usage_errors(tmp_path, aliked_models, capsys):
    """Unknown methods and missing inputs exit with code 2 and a message."""
    assert main(['eval', '--models', str(aliked_models), '--methods', 'orb',
                 '--eval-root', str(tmp_path)]) == 2
    # What is wrong, and what to pass instead.
    assert capsys.readouterr().err == (
        'lightglue-ros eval: error: unknown --methods orb; choose from '
        'lightglue_ros,lightglue_ros_full,lightglue_ros_refined,reference,sift,sift_refined\n')
    assert main(['eval', '--models', str(aliked_models), '--methods', 'sift']) == 2
    assert capsys.readouterr().err == (
        'lightglue-ros eval: error: nothing to evaluate: pass --pairs FILE, --homographies '
        'FILE or --eval-root DIR\n')

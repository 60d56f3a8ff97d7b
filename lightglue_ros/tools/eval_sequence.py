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
`lightglue-ros eval --sequence DIR`: trajectory accuracy (ATE, RPE) of chained relative poses.

Each frame, in time order, is matched with the reference that `ReferenceTracker` chooses
(``previous`` or ``keyframe``); `relative_pose` (method 'auto') gives X1 = R X0 + t and the
frame's world pose is the reference's composed with that motion. Monocular: t has unit norm,
so each pair takes its scale from the ground-truth distance between its two frames. Stereo (a
KITTI folder with image_1/, rectified): metric, no ground truth used after the first pose: the
reference's left keypoints matched in its right image are triangulated with the calibrated
baseline and PnP against the current left frame gives R and t in metres (`eval_stereo`). Both
are aligned to the ground truth in SE(3) without scale correction. A pair the estimator flags
keeps its rotation if known (else the identity; stereo: the identity) with zero translation
and counts as failed. Metrics come from `evo` (GPL-3.0, the test extra,
imported only here): ATE RMSE of the translation, RPE over consecutive frames (translation in
m, rotation in degrees).

Layouts, detected from the folder: KITTI (``image_0/*.png``, ``poses*.txt`` 3x4 camera-to-world
per frame, ``times*.txt`` seconds, ``calib*K*.txt`` or ``calib.txt``; stereo with ``image_1/``
and ``calib.txt``'s P1 or ``--baseline``) and TUM (``groundtruth.txt`` with
``timestamp tx ty tz qx qy qz qw`` camera-to-world, images in ``rgb/`` or ``images/`` named by
timestamp, associated by the nearest ground-truth stamp within 20 ms, ``K.txt``).
"""

import dataclasses
import json
import logging
from pathlib import Path
import time
from typing import Callable

import cv2
from lightglue_ros.geometry import relative_pose
from lightglue_ros.runtime.tracking import REFERENCES
from lightglue_ros.runtime.tracking import ReferenceTracker
from lightglue_ros.tools.common import UsageError
from lightglue_ros.tools.eval_stereo import pnp_motion
from lightglue_ros.tools.eval_stereo import stereo_points
from lightglue_ros.tools.evaluate import SiftMatcher
from lightglue_ros.tools.sequences import load_sequence
from lightglue_ros.tools.sequences import Sequence
import numpy as np

logger = logging.getLogger(__name__)

SEQUENCE_METHODS = ('lightglue_ros', 'sift')
DEFAULT_SEQUENCE_METHODS = 'lightglue_ros,sift'
DEFAULT_REFERENCES = 'previous,keyframe'
SCALE_NOTE = ('monocular: each pair takes its translation scale from the ground truth (the '
              'distance between its two frames); estimates are aligned to the ground truth in '
              'SE(3), without scale correction')
STEREO_NOTE = ('stereo: metric motion from the rectified left-right pair (reference points '
               'triangulated with the calibrated baseline, PnP + RANSAC against the current '
               'frame), no ground-truth scale; images assumed rectified; estimates are aligned '
               'to the ground truth in SE(3), without scale correction')


@dataclasses.dataclass
class ChainResult:
    """Chained camera-to-world poses of one method and reference, and per-pair records."""

    poses: np.ndarray  # (N, 4, 4)
    pairs: int
    failed: int
    keyframes: int
    per_pair: list


class PoseChain:
    """
    Chain relative poses frame by frame with the tracker's reference choice.

    Only the tracker keeps features (its reference and keyframe candidates), so memory stays
    bounded on long sequences. On a stereo sequence the features also carry `points3d` (N, 3)
    (`stereo_points`, NaN where none) and the motion comes from PnP in metres.

    :param match: (features0, features1) -> (M, 2) keypoint indices of matches.
    :param reference: ``previous`` or ``keyframe`` (`ReferenceTracker`).
    :param tracker_options: more `ReferenceTracker` settings (parallax_px, min_tracked...).
    """

    def __init__(self, sequence: Sequence, match: Callable[[dict, dict], np.ndarray],
                 reference: str, **tracker_options) -> None:
        self.sequence = sequence
        self.match = match
        self.tracker = ReferenceTracker(reference, **tracker_options)
        self.poses = np.full_like(sequence.poses, np.nan)
        self.per_pair = []
        self.failed = 0

    def add(self, i: int, feats1: dict) -> None:
        """Add frame `i` (features with `keypoints` (N, 2) original pixels), in time order."""
        sequence, tracker = self.sequence, self.tracker
        stamp, ref = int(sequence.stamps_ns[i]), tracker.reference
        if ref is None:  # the estimate starts at the first frame's ground-truth pose
            self.poses[i] = sequence.poses[i]
            tracker.add(stamp, feats1['keypoints'], None, {'index': i, 'feats': feats1})
            return
        j, feats0 = ref.payload['index'], ref.payload['feats']
        matches = np.asarray(self.match(feats0, feats1), np.int64).reshape(-1, 2)
        estimate = self._stereo_motion if sequence.stereo else self._mono_motion
        motion, ok, record = estimate(i, j, feats0, feats1, matches)
        self.failed += not ok
        self.poses[i] = self.poses[j] @ np.linalg.inv(motion)
        tracker.add(stamp, feats1['keypoints'], matches, {'index': i, 'feats': feats1},
                    posed=ok)
        self.per_pair.append({'frame': i, 'reference': j, 'matches': len(matches), 'ok': ok,
                              **record})

    def _mono_motion(self, i: int, j: int, feats0: dict, feats1: dict,
                     matches: np.ndarray) -> tuple:
        """Return (camera j -> camera i motion, ok, record): relative pose, GT scale."""
        sequence, camera = self.sequence, self.sequence.camera
        result = relative_pose(feats0['keypoints'][matches[:, 0]],
                               feats1['keypoints'][matches[:, 1]], camera, camera,
                               method='auto')
        scale = float(np.linalg.norm(sequence.poses[i][:3, 3] - sequence.poses[j][:3, 3]))
        motion = np.eye(4)  # X_i = R X_j + t
        if result.ok:
            motion[:3, :3], motion[:3, 3] = result.R, scale * result.t
        else:
            motion[:3, :3] = result.R if result.rotation_known else np.eye(3)
        return motion, bool(result.ok), {'reason': result.reason, 'model': result.model,
                                         'inliers': int(result.n_inliers),
                                         'gt_distance_m': scale}

    def _stereo_motion(self, i: int, j: int, feats0: dict, feats1: dict,
                       matches: np.ndarray) -> tuple:
        """Return (motion, ok, record) by PnP on `j`'s stereo points: metric, no ground truth."""
        result = pnp_motion(feats0['points3d'][matches[:, 0]], feats1['keypoints'][matches[:, 1]],
                            self.sequence.camera.K)
        motion = np.eye(4)  # camera j -> camera i: X_i = R X_j + t
        motion[:3, :3], motion[:3, 3] = result.R, result.t
        return motion, bool(result.ok), {'reason': result.reason, 'model': 'pnp',
                                         'points3d': result.n_points,
                                         'inliers': result.n_inliers,
                                         'distance_m': float(np.linalg.norm(result.t))}

    def result(self) -> ChainResult:
        """Return the chained poses and counts."""
        return ChainResult(self.poses, len(self.per_pair), self.failed, self.tracker.keyframes,
                           self.per_pair)


def chain_poses(sequence: Sequence, features: Callable[[int], dict],
                match: Callable[[dict, dict], np.ndarray], reference: str,
                **tracker_options) -> ChainResult:
    """
    Chain the whole sequence with one reference (see `PoseChain`).

    :param features: frame index -> dict with `keypoints` (N, 2) original pixels (stereo:
        and `points3d` (N, 3), see `stereo_points_of`).
    """
    chain = PoseChain(sequence, match, reference, **tracker_options)
    for i in range(len(sequence.stamps_ns)):
        chain.add(i, features(i))
    return chain.result()


def _evo():
    try:
        from evo.core import metrics
        from evo.core.trajectory import PoseTrajectory3D
        from evo.core.units import Unit
    except ImportError:
        raise UsageError('eval --sequence needs evo: pip install evo==1.38.1 (in the test '
                         'extra)') from None
    return metrics, PoseTrajectory3D, Unit


def trajectory_metrics(sequence: Sequence, poses: np.ndarray) -> tuple[dict, np.ndarray]:
    """
    Return ATE and RPE (delta 1 frame) of `poses` against the ground truth, with evo.

    Also `end_error_m`: the last frame's position error before alignment (the estimate
    starts at the first ground-truth pose).

    :return: the figures and the (N, 3) estimated positions after SE(3) alignment (unaligned if
        either path is degenerate for it: a straight line or a single point; logged).
    """
    metrics, PoseTrajectory3D, Unit = _evo()
    out = {'end_error_m': np.linalg.norm(poses[-1][:3, 3] - sequence.poses[-1][:3, 3])}
    seconds = sequence.stamps_ns * 1e-9
    truth = PoseTrajectory3D(poses_se3=list(sequence.poses), timestamps=seconds)
    estimate = PoseTrajectory3D(poses_se3=list(poses), timestamps=seconds)
    from evo.core.geometry import GeometryException
    try:
        estimate.align(truth, correct_scale=False)
    except GeometryException as exc:  # Umeyama needs a path that is not a line or a point
        logger.warning('no SE(3) alignment (%s): ATE and RPE of the estimate as chained from '
                       'the first ground-truth pose', exc)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((truth, estimate))
    out['ate_rmse_m'] = ape.get_statistic(metrics.StatisticsType.rmse)
    for key, relation in (('rpe_trans', metrics.PoseRelation.translation_part),
                          ('rpe_rot', metrics.PoseRelation.rotation_angle_deg)):
        rpe = metrics.RPE(relation, delta=1, delta_unit=Unit.frames, all_pairs=False)
        rpe.process_data((truth, estimate))
        unit = 'm' if key == 'rpe_trans' else 'deg'
        for stat in ('rmse', 'mean'):
            out[f'{key}_{stat}_{unit}'] = rpe.get_statistic(metrics.StatisticsType(stat))
    return {k: float(v) for k, v in out.items()}, estimate.positions_xyz


class EngineFrontend:
    """This engine through the runtime Pipeline: features per frame, matches per pair."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def extract(self, image: np.ndarray) -> dict:
        """Return the frame's features (keypoints in original pixels)."""
        return self.pipeline.features(image)

    def match(self, feats0: dict, feats1: dict) -> np.ndarray:
        """Return (M, 2) match indices."""
        return self.pipeline.engine.match(feats0, feats0['image_size'], feats1,
                                          feats1['image_size'])['matches']


class SiftFrontend:
    """The SIFT and ratio test of `eval`'s SiftMatcher, per frame (features) and per pair."""

    def __init__(self, sift: SiftMatcher | None = None) -> None:
        self.sift = sift or SiftMatcher()

    def extract(self, image: np.ndarray) -> dict:
        """Return SIFT keypoints (N, 2) and descriptors of the frame."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        kpts, desc = self.sift.sift.detectAndCompute(grey, None)
        return {'keypoints': np.array([k.pt for k in kpts], np.float64).reshape(-1, 2),
                'descriptors': desc}

    def match(self, feats0: dict, feats1: dict) -> np.ndarray:
        """Return (M, 2) indices of the matches passing the ratio test."""
        d0, d1 = feats0['descriptors'], feats1['descriptors']
        if d0 is None or d1 is None or len(d0) < 2 or len(d1) < 2:
            return np.zeros((0, 2), np.int64)
        good = [(m.queryIdx, m.trainIdx) for m, n in self.sift.matcher.knnMatch(d0, d1, k=2)
                if m.distance < self.sift.ratio * n.distance]
        return np.array(good, np.int64).reshape(-1, 2)


def evaluate_sequence(sequence: Sequence, frontends: dict, references: list[str],
                      **tracker_options) -> dict:
    """
    Chain and score every method x reference; each frame is extracted once per method.

    :param frontends: method name -> object with `extract(image)` and `match(f0, f1)`; on a
        stereo sequence they also extract the right image and match it with the left one.
    :param tracker_options: `ReferenceTracker` settings besides the reference (defaults: its).
    :return: {method: {reference: figures + pairs, failed_pairs, keyframes, seconds (the
        method's, all references), per_pair, positions_aligned}}.
    """
    from lightglue_ros.runtime.pipeline import read_image
    results = {}
    for method, frontend in frontends.items():
        start = time.perf_counter()
        chains = {reference: PoseChain(sequence, frontend.match, reference, **tracker_options)
                  for reference in references}
        for i, path in enumerate(sequence.images):
            feats = frontend.extract(read_image(path))
            if sequence.stereo:
                feats['points3d'] = stereo_points_of(sequence, frontend, feats, i)
            for chain in chains.values():
                chain.add(i, feats)
        seconds = time.perf_counter() - start
        results[method] = {}
        for reference, chain in chains.items():
            out = chain.result()
            figures, positions = trajectory_metrics(sequence, out.poses)
            results[method][reference] = {
                **figures, 'pairs': out.pairs, 'failed_pairs': out.failed,
                'keyframes': out.keyframes, 'seconds': seconds, 'per_pair': out.per_pair,
                'positions_aligned': positions.tolist()}
            logger.info('%s / %s: ATE %.3f m, %d of %d pairs failed', method, reference,
                        figures['ate_rmse_m'], out.failed, out.pairs)
    return results


def stereo_points_of(sequence: Sequence, frontend, feats: dict, i: int) -> np.ndarray:
    """Return (N, 3) stereo points of frame `i`'s left keypoints (`stereo_points`)."""
    from lightglue_ros.runtime.pipeline import read_image
    right = frontend.extract(read_image(sequence.images_right[i]))
    matches = np.asarray(frontend.match(feats, right), np.int64).reshape(-1, 2)
    return stereo_points(feats['keypoints'], right['keypoints'], matches, sequence.camera.K,
                         sequence.baseline_m)


def format_table(sequence: Sequence, results: dict) -> str:
    """Return the printed table: one row per method x reference."""
    head = (f'{"method":<15}{"reference":<11}{"ATE m":>8}{"RPE t m":>9}{"(mean)":>8}'
            f'{"RPE r deg":>11}{"(mean)":>8}{"pairs":>7}{"failed":>8}{"keyframes":>11}')
    kind = (f'{sequence.layout} stereo, baseline {sequence.baseline_m:.3f} m'
            if sequence.stereo else sequence.layout)
    lines = [f'{sequence.name} ({kind}, {len(sequence.images)} frames; RMSE, RPE '
             'over consecutive frames)', head]
    for method, by_reference in results.items():
        for reference, r in by_reference.items():
            lines.append(f'{method:<15}{reference:<11}{r["ate_rmse_m"]:>8.4f}'
                         f'{r["rpe_trans_rmse_m"]:>9.4f}{r["rpe_trans_mean_m"]:>8.4f}'
                         f'{r["rpe_rot_rmse_deg"]:>11.3f}{r["rpe_rot_mean_deg"]:>8.3f}'
                         f'{r["pairs"]:>7}{r["failed_pairs"]:>8}{r["keyframes"]:>11}')
    return '\n'.join(lines)


def plot_top_view(path: Path, sequence: Sequence, results: dict) -> None:
    """Write a top view (x-z) of the ground truth and each aligned estimate as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    truth = sequence.poses[:, :3, 3]
    ax.plot(truth[:, 0], truth[:, 2], 'k-', lw=2, label='ground truth')
    for method, by_reference in results.items():
        for reference, r in by_reference.items():
            xyz = np.asarray(r['positions_aligned'])
            ax.plot(xyz[:, 0], xyz[:, 2], '.-', ms=3,
                    label=f'{method} / {reference} (ATE {r["ate_rmse_m"]:.3f} m)')
    ax.set_xlabel('x (m)')
    ax.set_ylabel('z (m)')
    ax.set_aspect('equal', adjustable='datalim')
    ax.set_title(f'{sequence.name}: top view, estimates aligned in SE(3)')
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def add_sequence_args(p) -> None:
    """Add the `eval --sequence` options to the eval parser."""
    p.add_argument('--sequence', type=Path,
                   help='trajectory evaluation (ATE/RPE with evo) of a KITTI or TUM-format '
                   'image sequence with ground truth')
    p.add_argument('--sequence-methods', default=DEFAULT_SEQUENCE_METHODS,
                   help=f'--sequence: comma-separated subset of {",".join(SEQUENCE_METHODS)} '
                   f'(default {DEFAULT_SEQUENCE_METHODS})')
    p.add_argument('--references', default=DEFAULT_REFERENCES,
                   help=f'--sequence: temporal references, subset of {",".join(REFERENCES)} '
                   f'(default {DEFAULT_REFERENCES})')
    p.add_argument('--K', type=float, nargs=4, metavar=('FX', 'FY', 'CX', 'CY'),
                   help='--sequence: intrinsics (default: the K.txt / calib*K*.txt there)')
    p.add_argument('--distortion', type=float, nargs=5, metavar=('K1', 'K2', 'P1', 'P2', 'K3'),
                   help='--sequence: plumb_bob distortion of the images (default none)')
    p.add_argument('--mono', action='store_true',
                   help='--sequence: use the left images only even if image_1/ is there')
    p.add_argument('--baseline', type=float, metavar='METRES',
                   help='--sequence: stereo baseline (default: from KITTI calib.txt, P0 and P1)')
    p.add_argument('--plot', type=Path, help='--sequence: write a top view (x-z) PNG here')


def _choices(text: str, allowed: tuple, flag: str) -> list[str]:
    chosen = [c.strip() for c in text.split(',') if c.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise UsageError(f'unknown {flag} {",".join(unknown) or "(empty)"}; choose from '
                         f'{",".join(allowed)}')
    return list(dict.fromkeys(chosen))


def run_sequence_eval(args) -> int:
    """Run `lightglue-ros eval --sequence DIR`."""
    from lightglue_ros.tools.common import make_pipeline
    if args.pairs or args.homographies or args.eval_root:
        raise UsageError('--sequence runs alone: drop --pairs, --homographies and --eval-root')
    if args.limit is not None and args.limit < 2:
        raise UsageError(f'--limit must be at least 2 frames with --sequence, got {args.limit}')
    methods = _choices(args.sequence_methods, SEQUENCE_METHODS, '--sequence-methods')
    references = _choices(args.references, REFERENCES, '--references')
    sequence = load_sequence(args.sequence, args.K, args.distortion, args.limit,
                             mono=args.mono, baseline=args.baseline)
    _evo()  # fail before the model loads
    frontends = {}
    if 'lightglue_ros' in methods:
        frontends['lightglue_ros'] = EngineFrontend(make_pipeline(args))
    if 'sift' in methods:
        frontends['sift'] = SiftFrontend()
    note = STEREO_NOTE if sequence.stereo else SCALE_NOTE
    print(note)
    results = evaluate_sequence(sequence, frontends, references)
    print(format_table(sequence, results))
    if args.plot:
        plot_top_view(args.plot, sequence, results)
        print(f'wrote {args.plot}')
    if args.json:
        report = {'sequences': {sequence.name: results},
                  'config': {'sequence': str(args.sequence), 'layout': sequence.layout,
                             'frames': len(sequence.images), 'methods': methods,
                             'references': references, 'pose_method': 'auto',
                             'K': sequence.camera.K.tolist(),
                             'distortion': list(args.distortion or []),
                             'models': str(args.models), 'precision': args.precision,
                             'stereo': sequence.stereo, 'baseline_m': sequence.baseline_m,
                             'scale': note}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + '\n')
        print(f'wrote {args.json}')
    return 0

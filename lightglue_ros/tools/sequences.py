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
Image sequences with ground truth for `eval --sequence`: KITTI (mono or stereo) and TUM layouts.

KITTI: ``image_0/*.png``, ``poses*.txt`` (3x4 camera-to-world per frame), ``times*.txt``
(seconds), ``calib*K*.txt`` (or KITTI's ``calib.txt``: K is the left 3x3 of P0). Stereo when
``image_1/`` holds the right images under the same names: the rectified pair's baseline comes
from ``calib.txt`` (P1[0, 3] = -fx * B) or ``baseline``; the images must be rectified. TUM:
``groundtruth.txt`` (``timestamp tx ty tz qx qy qz qw``, camera-to-world), images in ``rgb/`` or
``images/`` named by timestamp and associated with the nearest ground-truth stamp within 20 ms,
``K.txt`` (or ``--K``). `write_kitti_sequence` writes the KITTI layout (rendered samples).
"""

import dataclasses
from decimal import Decimal
from decimal import InvalidOperation
import logging
from pathlib import Path

import cv2
from lightglue_ros.geometry.camera import CameraModel
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.ppm', '.pgm')
TUM_IMAGE_DIRS = ('rgb', 'images')
MAX_TIME_DIFF_S = 0.02  # TUM association: nearest ground-truth stamp within this


@dataclasses.dataclass
class Sequence:
    """Frames of one camera in time order, with camera-to-world ground truth (N, 4, 4)."""

    name: str
    layout: str  # 'kitti' or 'tum'
    stamps_ns: np.ndarray  # (N,) int64
    images: list  # N image paths
    poses: np.ndarray  # (N, 4, 4) camera-to-world, metres
    camera: CameraModel
    images_right: list | None = None  # stereo: N right image paths (rectified pair)
    baseline_m: float | None = None  # stereo: the right camera is at x = +baseline_m

    @property
    def stereo(self) -> bool:
        """Return True for a rectified stereo sequence (right images and a baseline)."""
        return self.images_right is not None and self.baseline_m is not None


def _nearest_rotation(R: np.ndarray) -> np.ndarray:
    """Project a 3x3 matrix on SO(3) (KITTI stores rotations to 7 digits)."""
    u, _, vt = np.linalg.svd(R)
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Return the rotation matrix of a quaternion (x, y, z, w), normalised first."""
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def seconds_to_ns(text: str) -> int:
    """Return integer nanoseconds of a decimal seconds string, without float rounding."""
    try:
        return int(Decimal(text) * 1_000_000_000)
    except InvalidOperation:
        raise ValueError(f'expected a time stamp in seconds, got {text!r}') from None


def _numbers(path: Path, columns: int) -> np.ndarray:
    """Read a whitespace table of numbers ('#' comments) with `columns` columns."""
    try:
        values = np.loadtxt(path, comments='#', ndmin=2)
    except ValueError as exc:
        raise ValueError(f'{path}: expected numbers ({exc})') from None
    if values.size == 0 or values.shape[1] != columns:
        raise ValueError(f'{path}: expected {columns} numbers per line, got shape '
                         f'{values.shape}')
    return values


def _one(folder: Path, patterns: tuple, what: str, fix: str) -> Path:
    """Return the single file in `folder` matching one of `patterns`; say what to do if not."""
    found = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    if len(found) != 1:
        have = ', '.join(p.name for p in found) if found else 'none'
        raise ValueError(f'{folder}: need one {what} ({" or ".join(patterns)}), found {have}; '
                         f'{fix}')
    return found[0]


def read_kitti_calib(path: Path | str) -> dict:
    """
    Read KITTI's calib.txt: lines ``P0: 12 numbers`` (3x4 row-major), P1..P3, Tr, ...

    :return: {name: (3, 4) array} of the P lines; K is P0's left 3x3 and, for a rectified
        pair, P1[0, 3] = -fx * B (see `kitti_baseline`).
    :raises ValueError: for a line that is not ``NAME: numbers``, or no P0 and P1.
    """
    path = Path(path)
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        name, sep, values = line.partition(':')
        try:
            numbers = np.array([float(v) for v in values.split()])
        except ValueError:
            numbers = np.zeros(0)
        if not sep or (name.strip().startswith('P') and numbers.size != 12):
            raise ValueError(f'{path}:{n}: expected `P0: <12 numbers>` (KITTI calib.txt), got '
                             f'{line.strip()[:60]!r}')
        if name.strip().startswith('P'):
            out[name.strip()] = numbers.reshape(3, 4)
    if 'P0' not in out or 'P1' not in out:
        raise ValueError(f'{path}: needs the P0 and P1 lines of KITTI calib.txt (left and right '
                         f'rectified projections), found {", ".join(out) or "none"}')
    return out


def kitti_baseline(P0: np.ndarray, P1: np.ndarray) -> float:
    """
    Return the baseline B (metres) of a rectified pair from its projections P0 (left), P1.

    P = K [I | -C] in the rectified frame, so P[0, 3] = -fx * C_x: B = C1_x - C0_x
    = (P0[0, 3] - P1[0, 3]) / fx (e.g. fx 700 and P1[0, 3] = -350: B = 0.5 m).
    """
    return float((P0[0, 3] - P1[0, 3]) / P1[0, 0])


def _camera(folder: Path, K: tuple | None, distortion: tuple | None,
            image: Path) -> CameraModel:
    """Build the camera from `--K`, the K file or calib.txt's P0, and `--distortion`."""
    if K is not None:
        fx, fy, cx, cy = K
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    elif not any(folder.glob('K.txt')) and not any(folder.glob('calib*K*.txt')) and (
            folder / 'calib.txt').is_file():
        K = read_kitti_calib(folder / 'calib.txt')['P0'][:, :3]
    else:
        path = _one(folder, ('K.txt', 'calib*K*.txt'), 'intrinsics file', 'write the 3x3 K '
                    'there (or a KITTI calib.txt), or pass --K fx fy cx cy')
        K = _numbers(path, 3)
        if K.shape != (3, 3):
            raise ValueError(f'{path}: expected a 3x3 K, got {K.shape[0]} rows; or pass --K '
                             'fx fy cx cy')
    pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError(f'Could not read an image from {image}.')
    height, width = pixels.shape[:2]
    camera = CameraModel(K=K, D=list(distortion or []),
                         distortion_model='plumb_bob' if distortion else '',
                         width=width, height=height)
    camera.validate()
    return camera


def _load_kitti(folder: Path) -> tuple:
    images = sorted(p for p in (folder / 'image_0').iterdir() if p.suffix in IMAGE_SUFFIXES)
    poses_path = _one(folder, ('poses*.txt',), 'KITTI poses file', 'put the '
                      '3x4 camera-to-world poses (one row-major line per frame) there')
    times_path = _one(folder, ('times*.txt',), 'KITTI times file', 'put the frame times '
                      '(seconds, one line per frame) there')
    rows = _numbers(poses_path, 12)
    times = [line.split()[0] for line in times_path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith('#')]
    if not len(images) == len(rows) == len(times):
        raise ValueError(f'{folder}: {len(images)} images in image_0, {len(rows)} poses in '
                         f'{poses_path.name} and {len(times)} times in {times_path.name}; '
                         'they must be the same frames')
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return np.array([seconds_to_ns(t) for t in times], np.int64), images, poses


def _image_stamp(path: Path) -> int:
    try:
        return seconds_to_ns(path.stem)
    except ValueError:
        raise ValueError(f'{path}: TUM images must be named by their time stamp in seconds, '
                         'e.g. 1305031102.175304.png') from None


def _load_tum(folder: Path) -> tuple:
    image_dir = next((folder / d for d in TUM_IMAGE_DIRS if (folder / d).is_dir()), None)
    if image_dir is None:
        raise ValueError(f'{folder}: groundtruth.txt found but no image folder '
                         f'({" or ".join(TUM_IMAGE_DIRS)}/ with images named by timestamp)')
    lines = [line.split() for line in (folder / 'groundtruth.txt').read_text().splitlines()
             if line.strip() and not line.lstrip().startswith('#')]
    if not lines or any(len(f) != 8 for f in lines):
        raise ValueError(f'{folder / "groundtruth.txt"}: expected lines `timestamp tx ty tz qx '
                         'qy qz qw`')
    gt_ns = np.array([seconds_to_ns(f[0]) for f in lines], np.int64)
    values = np.array([[float(v) for v in f[1:]] for f in lines])
    images = sorted((p for p in image_dir.iterdir() if p.suffix in IMAGE_SUFFIXES),
                    key=_image_stamp)
    stamps, chosen, poses = [], [], []
    for path in images:
        stamp = _image_stamp(path)
        nearest = int(np.argmin(np.abs(gt_ns - stamp)))
        if abs(gt_ns[nearest] - stamp) > MAX_TIME_DIFF_S * 1e9:
            continue
        pose = np.eye(4)
        pose[:3, :3] = quaternion_to_rotation(values[nearest, 3:])
        pose[:3, 3] = values[nearest, :3]
        stamps.append(stamp)
        chosen.append(path)
        poses.append(pose)
    if len(chosen) < len(images):
        logger.warning('%d of %d images have no ground truth within %.0f ms; left out',
                       len(images) - len(chosen), len(images), MAX_TIME_DIFF_S * 1e3)
    return np.array(stamps, np.int64), chosen, np.array(poses).reshape(-1, 4, 4)


def _right_images(folder: Path, images: list) -> list:
    """Return image_1/'s images with the names of image_0's (the right camera's frames)."""
    right = [folder / 'image_1' / p.name for p in images]
    missing = [p.name for p in right if not p.is_file()]
    if missing:
        raise ValueError(f'{folder}: image_1/ lacks {len(missing)} of the {len(images)} frames '
                         f'of image_0/ (e.g. {missing[0]}); stereo needs the right image of every '
                         'frame under the same name, or pass --mono')
    return right


def _stereo_baseline(folder: Path, baseline: float | None) -> float:
    """Return the baseline (metres) from `baseline` or calib.txt (P0, P1); it must be > 0."""
    if baseline is None:
        if not (folder / 'calib.txt').is_file():
            raise ValueError(f'{folder}: image_1/ found (stereo) but no baseline: put a KITTI '
                             'calib.txt (P0..P3 lines) there, pass --baseline METRES, or pass '
                             '--mono')
        calib = read_kitti_calib(folder / 'calib.txt')
        baseline = kitti_baseline(calib['P0'], calib['P1'])
    if not np.isfinite(baseline) or baseline <= 0:
        raise ValueError(f'{folder}: stereo baseline {baseline} m; it must be > 0 with image_0 '
                         'the left camera and image_1 the right one (KITTI calib.txt: P1[0, 3] '
                         '= -fx * B)')
    return float(baseline)


def load_sequence(folder: Path | str, K: tuple | None = None,
                  distortion: tuple | None = None, limit: int | None = None,
                  mono: bool = False, baseline: float | None = None) -> Sequence:
    """
    Load a KITTI (mono or stereo) or TUM-format sequence (see the module docstring).

    :param K: (fx, fy, cx, cy) overriding the folder's K file.
    :param distortion: plumb_bob (k1, k2, p1, p2, k3) of the raw images (None: rectified).
    :param limit: keep at most this many frames (the first ones).
    :param mono: ignore image_1/ (a monocular evaluation of a stereo folder).
    :param baseline: stereo baseline in metres, overriding calib.txt's.
    :raises ValueError: naming what is missing and what to pass.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f'no sequence folder at {folder}')
    if (folder / 'image_0').is_dir():
        layout, (stamps, images, poses) = 'kitti', _load_kitti(folder)
    elif (folder / 'groundtruth.txt').is_file():
        layout, (stamps, images, poses) = 'tum', _load_tum(folder)
    else:
        raise ValueError(f'{folder} is neither a KITTI sequence (image_0/, poses*.txt, '
                         'times*.txt) nor a TUM one (groundtruth.txt and rgb/ or images/)')
    stereo = layout == 'kitti' and (folder / 'image_1').is_dir() and not mono
    if baseline is not None and not stereo:
        raise ValueError(f'{folder}: --baseline is for stereo KITTI folders (image_1/ with the '
                         'right images), and not with --mono')
    if stereo and distortion:
        raise ValueError('stereo sequences must be rectified (no --distortion); pass --mono to '
                         'use the left images alone')
    order = np.argsort(stamps, kind='stable')[:limit]
    if len(order) < 2:
        raise ValueError(f'{folder}: {len(order)} frames with ground truth; a trajectory '
                         'needs at least 2')
    poses = poses[order]
    for pose in poses:
        pose[:3, :3] = _nearest_rotation(pose[:3, :3])
    camera = _camera(folder, K, distortion, images[order[0]])
    images = [images[i] for i in order]
    right = _right_images(folder, images) if stereo else None
    return Sequence(folder.resolve().name, layout, stamps[order], images, poses, camera, right,
                    _stereo_baseline(folder, baseline) if stereo else None)


def write_kitti_sequence(folder: Path | str, frames: list, poses: np.ndarray, K: np.ndarray,
                         rate: float = 10.0, frames_right: list | None = None,
                         baseline: float | None = None) -> Path:
    """
    Write frames with ground truth in the KITTI layout that `load_sequence` reads.

    Writes image_0/%06d.png (and image_1/ with `frames_right`), poses.txt (3x4 camera-to-world
    per frame), times.txt (frame i at i / rate s) and calib.txt (P0 = K [I | 0]; P1 = K [I |
    (-B, 0, 0)], the right camera of a rectified rig, when a baseline is given).

    :param frames: (H, W, 3) uint8 RGB (or grey) images of the left camera.
    :param poses: (N, 4, 4) camera-to-world, metres.
    :return: the folder.
    """
    folder = Path(folder)
    if frames_right is not None and (baseline is None or len(frames_right) != len(frames)):
        raise ValueError('a stereo sequence needs a right frame per left frame and a baseline')
    sides = [('image_0', frames)] + ([('image_1', frames_right)] if frames_right else [])
    for name, images in sides:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            bgr = image[..., ::-1] if image.ndim == 3 else image
            cv2.imwrite(str(folder / name / f'{i:06d}.png'), np.ascontiguousarray(bgr))
    rows = np.asarray(poses, np.float64)[:, :3, :].reshape(len(poses), 12)
    np.savetxt(folder / 'poses.txt', rows, fmt='%.12e')
    (folder / 'times.txt').write_text(''.join(f'{i / rate:.6f}\n' for i in range(len(poses))))
    K = np.asarray(K, np.float64)
    projections = {'P0': np.c_[K, np.zeros(3)]}
    if baseline is not None:
        projections['P1'] = np.c_[K, [-K[0, 0] * baseline, 0.0, 0.0]]
    else:
        projections['P1'] = projections['P0']  # calib.txt always has P0 and P1
    (folder / 'calib.txt').write_text(''.join(
        f'{name}: {" ".join(f"{v:.12e}" for v in P.ravel())}\n'
        for name, P in projections.items()))
    return folder

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
Image sequences with ground truth for `eval --sequence`: KITTI and TUM layouts.

KITTI: ``image_0/*.png``, ``poses*.txt`` (3x4 camera-to-world per frame), ``times*.txt``
(seconds), ``calib*K*.txt``. TUM: ``groundtruth.txt`` (``timestamp tx ty tz qx qy qz qw``,
camera-to-world), images in ``rgb/`` or ``images/`` named by timestamp and associated with the
nearest ground-truth stamp within 20 ms, ``K.txt`` (or ``--K``).
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


def _camera(folder: Path, K: tuple | None, distortion: tuple | None,
            image: Path) -> CameraModel:
    """Build the camera from `--K` or the folder's K file, and `--distortion` (plumb_bob)."""
    if K is not None:
        fx, fy, cx, cy = K
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    else:
        path = _one(folder, ('K.txt', 'calib*K*.txt'), 'intrinsics file', 'write the 3x3 K '
                    'there, or pass --K fx fy cx cy')
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


def load_sequence(folder: Path | str, K: tuple | None = None,
                  distortion: tuple | None = None, limit: int | None = None) -> Sequence:
    """
    Load a KITTI or TUM-format sequence (see the module docstring).

    :param K: (fx, fy, cx, cy) overriding the folder's K file.
    :param distortion: plumb_bob (k1, k2, p1, p2, k3) of the raw images (None: rectified).
    :param limit: keep at most this many frames (the first ones).
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
    order = np.argsort(stamps, kind='stable')[:limit]
    if len(order) < 2:
        raise ValueError(f'{folder}: {len(order)} frames with ground truth; a trajectory '
                         'needs at least 2')
    poses = poses[order]
    for pose in poses:
        pose[:3, :3] = _nearest_rotation(pose[:3, :3])
    camera = _camera(folder, K, distortion, images[order[0]])
    return Sequence(folder.resolve().name, layout, stamps[order], [images[i] for i in order],
                    poses, camera)

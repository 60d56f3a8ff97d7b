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
Evaluation sets: pairs files with ground truth and their images, as in ../shared/eval.

SuperGlue's pose format and homography pairs; numpy only; used by `eval` and `bench`.
"""

import dataclasses
from pathlib import Path

import numpy as np

POSE_FILE, H_FILE = 'pairs_with_gt.txt', 'pairs_with_H.txt'


@dataclasses.dataclass
class EvalSet:
    """Pairs of one folder: `kind` is 'pose' (K0, K1, T_0to1) or 'homography' (H)."""

    name: str
    kind: str
    images: Path
    pairs: list
    disparity: np.ndarray | None = None


def _pair_lines(path: Path, kind: str, columns: int, layout: str):
    """Yield (line number, names (2,), numbers) of a pairs file's `columns`-column lines."""
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith('#'):
            continue
        if len(fields) != columns:
            raise ValueError(f'{path}:{i}: a {kind} pair has {columns} columns ({layout}), got '
                             f'{len(fields)}')
        try:
            values = np.array([float(v) for v in fields[2:]])
        except ValueError:
            raise ValueError(f'{path}:{i}: expected numbers, got {" ".join(fields[2:])}') \
                from None
        yield i, fields[:2], values


def read_pose_pairs(path: Path) -> list[dict]:
    """Read SuperGlue's `name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)` lines."""
    pairs = []
    for i, (name0, name1), values in _pair_lines(
            path, 'pose', 38, 'name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)'):
        if values[:2].any():
            raise ValueError(f'{path}:{i}: image rotations {values[0]:g} {values[1]:g} are '
                             'not supported; rotate the images and write 0 0')
        pairs.append({'name0': name0, 'name1': name1, 'K0': values[2:11].reshape(3, 3),
                      'K1': values[11:20].reshape(3, 3), 'T_0to1': values[20:].reshape(4, 4)})
    return pairs


def read_homography_pairs(path: Path) -> list[dict]:
    """Read `name0 name1 H(9)` lines (x1 ~ H x0, pixels)."""
    pairs = []
    for _, (name0, name1), values in _pair_lines(path, 'homography', 11, 'name0 name1 H(9)'):
        H = values.reshape(3, 3)
        pairs.append({'name0': name0, 'name1': name1, 'H': H / H[2, 2]})
    return pairs


def pair_names(folder: Path) -> list[tuple[str, str]]:
    """Return the (name0, name1) pairs of a folder's pairs file ([] if it has none)."""
    for file, read in ((H_FILE, read_homography_pairs), (POSE_FILE, read_pose_pairs)):
        if (Path(folder) / file).is_file():
            return [(p['name0'], p['name1']) for p in read(Path(folder) / file)]
    return []


def load_set(path: Path, kind: str, images: Path | None = None, name: str | None = None,
             limit: int | None = None) -> EvalSet:
    """Read one pairs file as an `EvalSet` (images default to the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'no pairs file at {path}')
    pairs = (read_pose_pairs if kind == 'pose' else read_homography_pairs)(path)
    if not pairs:
        raise ValueError(f'{path} holds no pairs')
    images = Path(images or path.parent)
    return EvalSet(name or path.resolve().parent.name, kind, images,
                   pairs[:limit] if limit else pairs, read_disparity(images) if kind == 'pose'
                   else None)


def read_disparity(folder: Path) -> np.ndarray | None:
    """
    Return the dense left-image disparity of a rectified stereo set, if the folder has one.

    One `*_disp.npz` (array `arr_0`, HxW, inf = unknown, x_right = x_left - d), as in
    ../shared/eval/middlebury_motorcycle. It gives per-match ground truth: `score_disparity`.
    """
    files = sorted(Path(folder).glob('*_disp.npz'))
    if len(files) != 1:
        return None
    with np.load(files[0]) as data:
        if 'arr_0' not in data:
            raise ValueError(f'{files[0]}: expected the disparity in array arr_0')
        return np.asarray(data['arr_0'], np.float64)


def discover_sets(root: Path, limit: int | None = None) -> list[EvalSet]:
    """Return every set under `root`: folders holding pairs_with_gt.txt or pairs_with_H.txt."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f'--eval-root {root} is not a directory')
    sets = []
    for folder in sorted(p for p in [root, *root.rglob('*')] if p.is_dir()):
        for file, kind in ((POSE_FILE, 'pose'), (H_FILE, 'homography')):
            if (folder / file).is_file():
                name = folder.name if folder != root else root.resolve().name
                if any(s.name == name for s in sets):
                    name = f'{name}_{kind}'
                sets.append(load_set(folder / file, kind, folder, name, limit))
    if not sets:
        raise ValueError(f'no {POSE_FILE} or {H_FILE} under {root}')
    return sets


def image_path(images: Path, name: str) -> Path:
    """Resolve a pair's image name (also under images/, as in SuperGlue's ScanNet sample)."""
    for path in (images / name, images / 'images' / name):
        if path.is_file():
            return path
    raise ValueError(f'No image at path {images / name}; pass --images with the folder that '
                     'holds the images named in the pairs file')

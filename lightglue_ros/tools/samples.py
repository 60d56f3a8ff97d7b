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
Embedded default inputs: real photos from scikit-image's wheel under known warps.

`warped_pair` gives two views related by a homography; `camera_motion_sequence` renders a
camera moving through a non-planar scene of photo planes with known poses; `handheld_sequence`
renders a hand-held camera looking down at a desk with objects on it (a dominant plane with
off-plane structure), or at the bare desk (a truly planar scene); `write_sample_bag` stores
any of these sequences as a rosbag2 with CameraInfo and its ground truth.
"""

import json
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')
# Extra scikit-image pictures that only tile the background of `camera_motion_sequence`.
_BACKGROUND = ('rocket', 'immunohistochemistry', 'astronaut', 'camera', 'coffee', 'chelsea')
# Scenes of `write_sample_bag`: camera_motion_sequence's, and handheld_sequence's two.
SCENES = ('photo_planes', 'desk', 'plane')


def photo(name: str = 'astronaut') -> np.ndarray:
    """
    Return a scikit-image sample photo as (H, W, 3) uint8 RGB.

    :raises ValueError: when scikit-image is missing or the name is unknown.
    """
    if name not in PHOTOS:
        raise ValueError(f'unknown sample photo {name!r}; choose one of {", ".join(PHOTOS)}')
    return _skimage(name)


def _skimage(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise ValueError('the sample photos come from scikit-image: pip install scikit-image, '
                         'or pass your own images') from None
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def homography(shape: tuple, angle_deg: float = 12.0, scale: float = 0.85,
               shift: tuple = (20.0, -15.0), perspective: tuple = (2e-4, -1e-4)) -> np.ndarray:
    """Return a 3x3 homography x1 ~ H x0: rotation and scale about the centre, plus tilt."""
    h, w = shape[:2]
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    a = np.deg2rad(angle_deg)
    rot = np.array([[scale * np.cos(a), -scale * np.sin(a), 0],
                    [scale * np.sin(a), scale * np.cos(a), 0],
                    [0, 0, 1]], np.float64)
    back = np.array([[1, 0, w / 2 + shift[0]], [0, 1, h / 2 + shift[1]], [0, 0, 1]], np.float64)
    tilt = np.array([[1, 0, 0], [0, 1, 0], [perspective[0], perspective[1], 1]], np.float64)
    mat = back @ rot @ tilt @ centre
    return mat / mat[2, 2]


def warped_pair(name: str = 'astronaut', **warp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (image0, image1, H) where image1 = image0 warped by H (x1 ~ H x0)."""
    image0 = photo(name)
    mat = homography(image0.shape, **warp)
    image1 = cv2.warpPerspective(image0, mat, (image0.shape[1], image0.shape[0]),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return image0, image1, mat


def reprojection_error(kpts0: np.ndarray, kpts1: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Return |H x0 - x1| in pixels for matched keypoints (K, 2) each."""
    if len(kpts0) == 0:
        return np.zeros(0)
    pts = cv2.perspectiveTransform(kpts0.reshape(-1, 1, 2).astype(np.float64), mat)[:, 0]
    return np.linalg.norm(pts - kpts1, axis=1)


class CameraSequence(NamedTuple):
    """
    Frames of a known camera motion through a rendered scene.

    ``frames``: list of (H, W, 3) uint8 RGB images. ``K``: (3, 3) intrinsics, shared by all
    frames, no distortion. ``poses``: (N, 4, 4) world-to-camera transforms: a world point X_w
    is at X_i = R_i X_w + t_i in camera i (optical frame: x right, y down, z forward). The
    world frame is camera 0's, so ``poses[0]`` is the identity. Units are metres.
    """

    frames: list
    K: np.ndarray
    poses: np.ndarray


def relative_pose(poses: np.ndarray, i: int = 0, j: int = 1) -> np.ndarray:
    """Return T_itoj (4x4): X_j = R X_i + t, as T_0to1 in eval/pairs_with_gt.txt."""
    return poses[j] @ np.linalg.inv(poses[i])


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _square_tile(name: str, size: int = 512) -> np.ndarray:
    image = _skimage(name)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[top:top + side, left:left + side], (size, size),
                      interpolation=cv2.INTER_AREA)


def _plane(texture: np.ndarray, centre, width: float, yaw_deg: float, texel: float) -> tuple:
    """
    Place a photo as a rectangle in the world, turned by `yaw_deg` about the vertical.

    :param texel: metres per texture pixel after resampling (close to a camera pixel's
        footprint, so that the renderer neither aliases nor blurs much).
    :return: (texture, M, origin, normal): world point = M @ (col, row, 1).
    """
    h, w = texture.shape[:2]
    cols = max(2, round(width / texel))
    rows = max(2, round(cols * h / w))
    texture = cv2.resize(texture, (cols, rows), interpolation=cv2.INTER_AREA)
    rot = _rot_y(yaw_deg)
    right, down = rot[:, 0] * texel, rot[:, 1] * texel
    origin = np.asarray(centre, np.float64) - right * (cols - 1) / 2 - down * (rows - 1) / 2
    return texture, np.column_stack([right, down, origin]), origin, rot[:, 2]


def _scene(photo_name: str, foreground: tuple) -> list:
    """Return the photo planes: a mosaic wall 8 m ahead and two nearer, turned photos."""
    for name in (photo_name, *foreground):
        if name not in PHOTOS:
            photo(name)  # raises the error listing the choices
    names = []
    for name in (photo_name,) + _BACKGROUND:
        if name not in names and name not in foreground:
            names.append(name)
    tiles = [_square_tile(n) for n in names[:4]]
    wall = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    planes = [_plane(wall, (0.8, 0.0, 8.0), 13.0, 0.0, 0.012)]
    if len(foreground) > 0:
        planes.append(_plane(photo(foreground[0]), (-0.9, 0.25, 3.0), 1.4, -15.0, 0.005))
    if len(foreground) > 1:
        planes.append(_plane(photo(foreground[1]), (1.1, -0.2, 4.5), 1.8, 35.0, 0.008))
    return planes


def render_view(planes: list, kmat: np.ndarray, pose: np.ndarray,
                size: tuple = (640, 480)) -> tuple[np.ndarray, np.ndarray]:
    """
    Render photo planes seen from a camera, nearest plane in front (per-pixel depth test).

    :param pose: 4x4 world-to-camera transform.
    :param size: (width, height) in pixels.
    :return: (H, W, 3) uint8 RGB image and (H, W) float32 depth in metres (inf: nothing).
    """
    width, height = size
    rot, trans = pose[:3, :3], pose[:3, 3]
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([xs, ys, np.ones_like(xs)], -1).astype(np.float64) @ np.linalg.inv(kmat).T
    image = np.zeros((height, width, 3), np.uint8)
    depth = np.full((height, width), np.inf, np.float32)
    for texture, mmat, origin, normal in planes:
        # Homography texture (col, row, 1) -> pixel of this camera: K [R | t] M.
        hmat = kmat @ (rot @ mmat + np.outer(trans, [0, 0, 1]))
        colour = cv2.warpPerspective(texture, hmat, size, flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.warpPerspective(np.ones(texture.shape[:2], np.uint8), hmat, size,
                                     flags=cv2.INTER_NEAREST, borderValue=0) > 0
        # Depth along each pixel's ray (z = 1) to the plane n.X = n.P in camera coordinates;
        # negative depth means the plane is behind the camera (the homography ignores that).
        n_cam, p_cam = rot @ normal, rot @ origin + trans
        with np.errstate(divide='ignore', invalid='ignore'):
            z = (n_cam @ p_cam) / (rays @ n_cam)
        front = inside & (z > 0) & (z < depth)
        image[front] = colour[front]
        depth[front] = z[front]
    return image, depth


def camera_motion_sequence(n_frames: int = 8, photo: str = 'astronaut',
                           foreground: tuple = ('coffee', 'chelsea'),
                           size: tuple = (640, 480), focal: float = 500.0,
                           step: tuple = (0.06, 0.0, 0.12),
                           yaw_deg: float = 1.5, offset: tuple = (0.0, 0.0, 0.0)
                           ) -> CameraSequence:
    """
    Render a camera moving through a non-planar scene built from real photos.

    The scene: a 13 m wide wall 8 m ahead tiled with `photo` and three other scikit-image
    pictures, a `foreground[0]` photo 3 m ahead on the left (turned 15 degrees) and a
    `foreground[1]` photo 4.5 m ahead on the right (turned 35 degrees), with occlusion. Frame i
    has its centre at i * `step` (metres, camera-0 axes: x right, y down, z forward) and is
    turned i * `yaw_deg` to the right about the vertical. Deterministic.

    :param photo: one of `PHOTOS`, the first tile of the wall.
    :param foreground: up to two of `PHOTOS` for the near planes (fewer: fewer planes).
    :param size: (width, height) in pixels; the principal point is the image centre.
    :param focal: focal length in pixels.
    :param offset: a fixed offset of every camera in its own axes: (B, 0, 0) renders the right
        camera of a rectified stereo rig with baseline B whose left camera has offset 0.
    :return: CameraSequence(frames, K, poses); see its docstring for the pose convention and
        `relative_pose` for T_0to1 between two frames.
    """
    if n_frames < 1:
        raise ValueError(f'n_frames must be >= 1, got {n_frames}')
    poses = np.tile(np.eye(4), (n_frames, 1, 1))
    for i in range(n_frames):
        rot = _rot_y(i * yaw_deg).T  # camera-to-world is a yaw; invert for world-to-camera
        poses[i, :3, :3] = rot
        centre = i * np.asarray(step, np.float64) + rot.T @ np.asarray(offset, np.float64)
        poses[i, :3, 3] = -rot @ centre
    return _rendered(_scene(photo, tuple(foreground)), poses, size, focal)


def _rendered(planes: list, poses: np.ndarray, size: tuple, focal: float) -> CameraSequence:
    """Render `planes` from world-to-camera `poses` with a centred pinhole camera."""
    width, height = size
    kmat = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)
    frames = [render_view(planes, kmat, pose, (width, height))[0] for pose in poses]
    return CameraSequence(frames, kmat, poses)


def _quad(texture: np.ndarray, centre, right, down, size: tuple, texel: float) -> tuple:
    """
    Place a photo as a rectangle of `size` (width, height) metres with any orientation.

    :param right: direction of the texture's columns in the world (unit 3-vector).
    :param down: direction of its rows, orthogonal to `right`.
    :return: (texture, M, origin, normal) as `_plane`; the normal is right x down.
    """
    right, down = np.asarray(right, np.float64), np.asarray(down, np.float64)
    cols, rows = (max(2, round(s / texel)) for s in size)
    texture = cv2.resize(texture, (cols, rows), interpolation=cv2.INTER_AREA)
    step_r, step_d = right * size[0] / (cols - 1), down * size[1] / (rows - 1)
    origin = np.asarray(centre, np.float64) - right * size[0] / 2 - down * size[1] / 2
    return texture, np.column_stack([step_r, step_d, origin]), origin, np.cross(right, down)


def _crop(image: np.ndarray, aspect: float, part: int = 0) -> np.ndarray:
    """Return the largest crop of width / height `aspect`, at one of three offsets (`part`)."""
    h, w = image.shape[:2]
    cw, ch = min(w, round(h * aspect)), min(h, round(w / aspect))
    k = part % 3
    left, top = k * (w - cw) // 2, k * (h - ch) // 2
    return image[top:top + ch, left:left + cw]


# Desk scene (metres): camera 0 is DESK_HEIGHT above the desk, its optical axis DESK_PITCH_DEG
# below the horizontal, as a hand-held camera looking down at a desk or a floor.
DESK_HEIGHT = 0.55
DESK_PITCH_DEG = 55.0
# Contrast of the objects' photos: plain boxes and panels carry less texture than a cluttered
# desk, so most keypoints (here 80-90 %) lie on the dominant plane, as in the scenes modelled.
OBJECT_CONTRAST = 0.15
# Objects standing on the desk: (texture, x right, y forward of the point under the optical
# axis, width, depth, height, yaw in degrees); a depth of 0 is an upright panel, tilted back
# by the last field (degrees from vertical).
_DESK_OBJECTS = (
    ('coins', -0.16, 0.02, 0.13, 0.10, 0.09, 20.0, 0.0),
    ('hubble_deep_field', 0.17, 0.16, 0.16, 0.05, 0.22, -25.0, 0.0),
    ('gravel', -0.02, 0.30, 0.20, 0.0, 0.16, 5.0, 25.0),
)


def _desk_axes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the desk frame in camera 0's: origin (under the optical axis), right, fwd, up."""
    pitch = np.deg2rad(DESK_PITCH_DEG)
    down = np.array([0.0, np.cos(pitch), np.sin(pitch)])  # gravity in camera 0's axes
    forward = np.array([0.0, -np.sin(pitch), np.cos(pitch)])
    origin = np.array([0.0, 0.0, DESK_HEIGHT / np.sin(pitch)])
    return origin, np.array([1.0, 0.0, 0.0]), forward, -down


def _desk_scene(objects: bool = True) -> list:
    """
    Return the planes of a desk (2.1 x 1.4 m, six photos) and, with `objects`, three objects.

    The objects, a box, an upright box and a panel leaning back (`_DESK_OBJECTS`), cover 14 %
    of camera 0's view.
    """
    origin, right, forward, up = _desk_axes()
    # A 6 x 4 grid of photo quarters, 0.35 m each: several photos in every view, none twice.
    quarters = [[t[:256, :256], t[:256, 256:], t[256:, :256], t[256:, 256:]]
                for t in (_square_tile(n) for n in _BACKGROUND)]
    top = np.vstack([np.hstack([quarters[(c + 2 * r) % 6][r] for c in range(6)])
                     for r in range(4)])
    # Texture rows run towards the camera, so the photos look upright in the image.
    centre = origin + 0.25 * forward
    planes = [_quad(top, centre, right, -forward, (2.1, 1.4), 0.002)]
    if not objects:
        return planes
    for name, x, y, width, depth, height, yaw, tilt in _DESK_OBJECTS:
        a = np.deg2rad(yaw)
        ox, oy = np.cos(a) * right + np.sin(a) * forward, -np.sin(a) * right + np.cos(a) * forward
        base = origin + x * right + y * forward
        image = _skimage(name).astype(np.float32)
        image = (image.mean() + OBJECT_CONTRAST * (image - image.mean())).astype(np.uint8)
        if depth == 0:
            b = np.deg2rad(tilt)
            lean = np.cos(b) * up + np.sin(b) * oy
            planes.append(_quad(_crop(image, width / height), base + lean * height / 2, ox, -lean,
                                (width, height), 0.001))
            continue
        planes.append(_quad(_crop(image, width / depth, 0), base + up * height, ox, -oy,
                            (width, depth), 0.001))
        for k, (side, along, span) in enumerate(((-oy, ox, width), (oy, -ox, width),
                                                 (ox, oy, depth), (-ox, -oy, depth))):
            centre = base + side * (depth if k < 2 else width) / 2 + up * height / 2
            planes.append(_quad(_crop(image, span / height, k + 1), centre, along, -up,
                                (span, height), 0.001))
    return planes


def _axis_angle(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    axis = rng.normal(size=3)
    return axis / np.linalg.norm(axis) * rng.uniform(low, high)


def _handheld_poses(n_frames: int, seed: int) -> np.ndarray:
    """Return (N, 4, 4) world-to-camera poses of `handheld_sequence`'s motion (world = frame 0)."""
    rng = np.random.default_rng(seed)
    rot, centre = np.eye(3), np.zeros(3)  # camera-to-world of the current frame
    poses = np.tile(np.eye(4), (n_frames, 1, 1))
    for i in range(1, n_frames):
        step = rot @ _axis_angle(rng, 0.01, 0.03)
        turn = cv2.Rodrigues(_axis_angle(rng, np.deg2rad(0.3), np.deg2rad(2.0)))[0]
        if np.linalg.norm(centre + step) > 0.06:
            step = -step
        if np.linalg.norm(cv2.Rodrigues(rot @ turn)[0]) > np.deg2rad(5.0):
            turn = turn.T
        centre, rot = centre + step, rot @ turn
        poses[i, :3, :3], poses[i, :3, 3] = rot.T, -rot.T @ centre
    return poses


def handheld_sequence(n_frames: int = 12, scene: str = 'desk', size: tuple = (640, 480),
                      focal: float = 500.0, seed: int = 0) -> CameraSequence:
    """
    Render a hand-held camera at 10 Hz looking down at a desk, with or without objects on it.

    The desk (`scene='desk'`): a 2.1 x 1.4 m plane tiled with quarters of six scikit-image
    photos, which fills the view, seen from DESK_HEIGHT (0.55 m) with the optical axis
    DESK_PITCH_DEG (55 degrees) below the horizontal, so it is 0.5-1.0 m away and seen
    obliquely; on it a box, an upright box and a panel leaning back, textured with other,
    fainter photos (OBJECT_CONTRAST), together 10-20 % of the image and of the matches.
    `scene='plane'`: the same desk without the objects (a truly planar scene). Between
    consecutive frames the camera moves 1-3 cm and turns 0.3-2 degrees, in directions and
    about axes drawn from `seed` (deterministic); a step that would take the camera more than
    6 cm or 5 degrees from frame 0 is reversed, so the desk stays in view.

    :param scene: 'desk' or 'plane'.
    :param size: (width, height) in pixels; the principal point is the image centre.
    :param focal: focal length in pixels (no distortion).
    :return: CameraSequence(frames, K, poses), conventions as `camera_motion_sequence`.
    """
    if scene not in ('desk', 'plane'):
        raise ValueError(f'unknown hand-held scene {scene!r}; choose desk or plane')
    if n_frames < 1:
        raise ValueError(f'n_frames must be >= 1, got {n_frames}')
    return _rendered(_desk_scene(objects=scene == 'desk'), _handheld_poses(n_frames, seed),
                     size, focal)


def ground_truth_path(bag: Path | str) -> Path:
    """Return where `write_sample_bag` stores the ground truth of `bag`: <bag>.gt.json."""
    bag = Path(bag)
    return bag.parent / f'{bag.name}.gt.json'


def write_sample_bag(out: Path | str, n_frames: int = 8, rate: float = 10.0,
                     topic: str = '/camera/image_raw', frame_id: str = 'camera',
                     storage: str = 'mcap', start: float = 1.0, compressed: bool = False,
                     overwrite: bool = False, scene: str = 'photo_planes', **motion) -> dict:
    """
    Write a rendered sequence as a rosbag2 (rgb8 Image + CameraInfo) and its ground truth.

    Frame i is stamped start + i / rate seconds. The ground truth also goes to
    `ground_truth_path(out)` as JSON (read it back with `read_ground_truth`).

    :param scene: one of `SCENES`: 'photo_planes' (`camera_motion_sequence`, the default),
        'desk' or 'plane' (`handheld_sequence`).
    :param motion: further arguments of that function (photo, step, yaw_deg, ...; or seed,
        focal, ...).
    :return: dict with K (3, 3), poses (N, 4, 4, world-to-camera, world = camera 0),
        stamps_ns (N,), scene, topic, camera_info_topic, frame_id, bag and json paths.
    """
    from lightglue_ros.ros import bag_record
    from lightglue_ros.ros.bag import sibling_topic
    if scene not in SCENES:
        raise ValueError(f'unknown sample scene {scene!r}; choose one of {", ".join(SCENES)}')
    if scene == 'photo_planes':
        seq = camera_motion_sequence(n_frames, **motion)
    else:
        seq = handheld_sequence(n_frames, scene, **motion)
    stamps = [round((start + i / rate) * 1e9) for i in range(n_frames)]
    path = bag_record.write_images(out, seq.frames, stamps, camera_info=seq.K, topic=topic,
                                   frame_id=frame_id, encoding='rgb8', storage=storage,
                                   compressed=compressed, overwrite=overwrite)
    truth = {
        'convention': 'poses[i] maps world to camera i: X_i = R X_w + t (world = camera 0, '
                      'optical axes x right, y down, z forward, metres); T_0to1 between '
                      'frames i and j is poses[j] @ inv(poses[i])',
        'K': seq.K.tolist(), 'poses': seq.poses.tolist(), 'stamps_ns': stamps,
        'size': [int(seq.frames[0].shape[1]), int(seq.frames[0].shape[0])], 'scene': scene,
        'topic': topic, 'camera_info_topic': sibling_topic(topic), 'frame_id': frame_id,
    }
    json_path = ground_truth_path(path)
    json_path.write_text(json.dumps(truth, indent=1) + '\n')
    return read_ground_truth(json_path) | {'bag': path}


def read_ground_truth(path: Path | str) -> dict:
    """Read a `write_sample_bag` ground truth (JSON path or bag path) with numpy arrays."""
    path = Path(path)
    if path.suffix != '.json':
        path = ground_truth_path(path)
    if not path.is_file():
        raise ValueError(f'no ground truth at {path}; write it with samples.write_sample_bag')
    truth = json.loads(path.read_text())
    truth['K'] = np.array(truth['K'], np.float64)
    truth['poses'] = np.array(truth['poses'], np.float64)
    truth['stamps_ns'] = np.array(truth['stamps_ns'], np.int64)
    truth['json'] = path
    return truth


def stereo_motion_sequence(n_frames: int = 16, baseline: float = 0.3,
                           step: tuple = (0.01, 0.0, 0.045), yaw_deg: float = 0.75,
                           photo: str = 'astronaut', foreground: tuple = ('coffee', 'chelsea'),
                           size: tuple = (640, 480), focal: float = 500.0
                           ) -> tuple[CameraSequence, list]:
    """
    Render a rectified stereo rig driving an arc through `camera_motion_sequence`'s scene.

    Frame i is turned i * `yaw_deg` to the right about the vertical, and frame i + 1 is `step`
    (metres, in frame i's axes: x right, y down, z forward) from frame i, so the left camera
    drives an arc (4.6 cm per frame by default), not a line, and an SE(3) alignment of the
    trajectory is well posed. Deterministic.

    :param baseline: metres between the cameras; the right camera is at x = +baseline in the
        left camera's axes (KITTI's camera 1), with the same orientation.
    :return: (left CameraSequence with K and world-to-camera poses, world = frame 0's left
        camera; the right camera's frames).
    """
    if n_frames < 1:
        raise ValueError(f'n_frames must be >= 1, got {n_frames}')
    poses = np.tile(np.eye(4), (n_frames, 1, 1))  # the left camera's
    centre = np.zeros(3)
    for i in range(n_frames):
        rot = _rot_y(i * yaw_deg)  # camera-to-world
        poses[i, :3, :3], poses[i, :3, 3] = rot.T, -rot.T @ centre
        centre = centre + rot @ np.asarray(step, np.float64)
    to_right = np.eye(4)
    to_right[0, 3] = -baseline  # X_right = X_left - (B, 0, 0): same orientation
    planes = _scene(photo, tuple(foreground))
    left = _rendered(planes, poses, size, focal)
    return left, _rendered(planes, to_right @ poses, size, focal).frames


def write_stereo_sample(folder: Path | str, n_frames: int = 16, baseline: float = 0.3,
                        **motion) -> Path:
    """
    Write `stereo_motion_sequence` as a KITTI stereo folder with exact ground truth.

    image_0/ (left) and image_1/ (right) PNGs, poses.txt (camera-to-world, world = frame 0's
    left camera), times.txt (10 Hz) and calib.txt (P0, P1 with P1[0, 3] = -fx * baseline), for
    `lightglue-ros eval --sequence`.

    :param motion: more `stereo_motion_sequence` arguments (step, yaw_deg, size, ...).
    :return: the folder.
    """
    from lightglue_ros.tools.sequences import write_kitti_sequence
    left, right = stereo_motion_sequence(n_frames, baseline, **motion)
    return write_kitti_sequence(folder, left.frames, np.linalg.inv(left.poses), left.K,
                                frames_right=right, baseline=baseline)

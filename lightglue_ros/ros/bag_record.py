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
`record-images`: build a rosbag2 (Image + CameraInfo, optionally CompressedImage) from images.

Written with the pure-Python `rosbags` library (mcap or sqlite3): no ROS install needed. Stamps
come from a rate or a times file (one second value per image, as KITTI's times.txt); the
CameraInfo from a camera_calibration YAML or the 9 numbers of K.
"""

import logging
from pathlib import Path
import shutil
from typing import Any, Iterable

import cv2
from lightglue_ros.ros.bag import rosbags_api
from lightglue_ros.ros.bag import sibling_topic
from lightglue_ros.ros.bag import typestore
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.ppm', '.pgm', '.bmp', '.tif', '.tiff')
STORAGES = ('mcap', 'sqlite3')
ENCODINGS = ('mono8', 'rgb8', 'bgr8')


def read_times(path: Path | str) -> list[float]:
    """Read frame times in seconds, one number per line (`#` starts a comment)."""
    values = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        try:
            values.append(float(line.split()[0]))
        except ValueError:
            raise ValueError(f'{path}:{number}: expected a time in seconds, got '
                             f'{line!r}') from None
    if any(b < a for a, b in zip(values, values[1:])):
        raise ValueError(f'times in {path} go backwards; a bag needs non-decreasing times')
    return values


def _numbers(text: str) -> list[float]:
    words = ' '.join(line.split('#', 1)[0] for line in text.splitlines()).replace(',', ' ')
    return [float(w) for w in words.split()]


def _info_from_matrix(values, width: int | None, height: int | None) -> dict:
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size not in (9, 12):
        raise ValueError(f'expected 9 numbers (3x3 K, row-major) or 12 (3x4 P), got '
                         f'{values.size}')
    kmat = values.reshape(3, -1)[:, :3]
    proj = values.reshape(3, 4) if values.size == 12 else np.hstack([kmat, np.zeros((3, 1))])
    return {'width': width, 'height': height, 'camera_name': '', 'distortion_model': 'plumb_bob',
            'd': np.zeros(5), 'k': kmat.reshape(-1), 'r': np.eye(3).reshape(-1),
            'p': proj.reshape(-1)}


def _info_from_yaml(data: dict, source: Any) -> dict:
    def matrix(key, size, default=None):
        entry = data.get(key)
        if entry is None:
            if default is None:
                raise ValueError(f'camera info {source} has no {key}')
            return default
        values = np.asarray(entry['data'] if isinstance(entry, dict) else entry, np.float64)
        if size and values.size != size:
            raise ValueError(f'camera info {source}: {key} has {values.size} numbers, '
                             f'expected {size}')
        return values.reshape(-1)

    kmat = matrix('camera_matrix', 9)
    return {'width': data.get('image_width'), 'height': data.get('image_height'),
            'camera_name': str(data.get('camera_name') or ''),
            'distortion_model': str(data.get('distortion_model') or 'plumb_bob'),
            'd': matrix('distortion_coefficients', 0, np.zeros(5)),
            'k': kmat, 'r': matrix('rectification_matrix', 9, np.eye(3).reshape(-1)),
            'p': matrix('projection_matrix', 12,
                        np.hstack([kmat.reshape(3, 3), np.zeros((3, 1))]).reshape(-1))}


def read_camera_info(source: Any, width: int | None = None, height: int | None = None) -> dict:
    """
    Read a camera calibration into the fields of sensor_msgs/CameraInfo.

    :param source: a ROS camera_calibration YAML file, a text file with a 3x3 K (9 numbers,
        row-major, as KITTI's calib_cam0_K.txt) or a 3x4 P, a (3, 3) array K, or a dict in the
        camera_calibration YAML layout.
    :param width: image width, used when the source does not give it.
    :param height: image height, used when the source does not give it.
    :return: dict with width, height, camera_name, distortion_model, d, k (9), r (9), p (12).
    """
    if isinstance(source, dict):
        info = _info_from_yaml(source, 'dict')
    elif isinstance(source, np.ndarray):
        info = _info_from_matrix(source, width, height)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f'no camera info file at {path}; pass a camera_calibration YAML '
                             'or a text file with the 9 numbers of K')
        text = path.read_text()
        try:
            numbers = _numbers(text)
        except ValueError:
            numbers = None
        if numbers is not None:
            info = _info_from_matrix(numbers, width, height)
        else:
            try:
                import yaml
            except ImportError:
                raise ValueError(f'{path} is not 9 numbers of K; reading a camera_calibration '
                                 'YAML needs PyYAML: pip install pyyaml') from None
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                data = None
            if not isinstance(data, dict):
                raise ValueError(f'{path} is neither a camera_calibration YAML nor 9 numbers '
                                 '(3x3 K, row-major)') from None
            info = _info_from_yaml(data, path)
    info['width'] = int(info['width'] or width or 0)
    info['height'] = int(info['height'] or height or 0)
    return info


def list_images(folder: Path | str) -> list[Path]:
    """Return the image files of a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f'no image folder at {folder}')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {folder}')
    return files


def load_image(path: Path | str) -> np.ndarray:
    """Read an 8-bit image file as (H, W) grey or (H, W, 3) RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'cannot read image {path}')
    if image.dtype != np.uint8:
        raise ValueError(f'{path} is {image.dtype}; record-images takes 8-bit images, convert '
                         'it first')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return image


def to_encoding(image: np.ndarray, encoding: str | None) -> tuple[np.ndarray, str]:
    """Convert (H, W) grey or (H, W, 3) RGB to the layout of `encoding` (None: keep)."""
    grey = image.ndim == 2
    encoding = encoding or ('mono8' if grey else 'rgb8')
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported encoding {encoding!r}; choose one of {ENCODINGS}')
    if encoding == 'mono8':
        out = image if grey else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif grey:
        out = np.repeat(image[..., None], 3, axis=2)
    else:
        out = image if encoding == 'rgb8' else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(out, np.uint8), encoding


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists():
        if not overwrite:
            raise ValueError(f'{out} exists; choose another output or pass --force to replace '
                             'it')
        if not (out / 'metadata.yaml').is_file():
            raise ValueError(f'{out} exists and is not a rosbag2 directory; not replacing it')
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)


class _ImageBagWriter:
    """Serialize Image (+ CompressedImage, CameraInfo) messages into an open rosbags Writer."""

    def __init__(self, writer, store, topic: str, frame_id: str, camera_info: dict | None,
                 compressed: bool):
        self.writer, self.store, self.frame_id = writer, store, frame_id
        self.types = store.types
        self.info = camera_info
        add = writer.add_connection
        self.image = add(topic, 'sensor_msgs/msg/Image', typestore=store)
        self.compressed = (add(f'{topic}/compressed', 'sensor_msgs/msg/CompressedImage',
                               typestore=store) if compressed else None)
        self.camera_info = (add(sibling_topic(topic), 'sensor_msgs/msg/CameraInfo',
                                typestore=store) if camera_info else None)

    def header(self, stamp_ns: int):
        stamp = self.types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                          nanosec=stamp_ns % 10**9)
        return self.types['std_msgs/msg/Header'](stamp=stamp, frame_id=self.frame_id)

    def write(self, array: np.ndarray, encoding: str, stamp_ns: int) -> None:
        height, width = array.shape[:2]
        msg = self.types['sensor_msgs/msg/Image'](
            header=self.header(stamp_ns), height=height, width=width, encoding=encoding,
            is_bigendian=0, step=array.strides[0], data=array.reshape(-1))
        self._put(self.image, msg)
        if self.compressed:
            # PNG keeps the compressed stream lossless, so both topics decode to one image.
            colour = array if encoding != 'rgb8' else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
            ok, png = cv2.imencode('.png', colour)
            inner = 'mono8' if encoding == 'mono8' else 'bgr8'
            self._put(self.compressed, self.types['sensor_msgs/msg/CompressedImage'](
                header=self.header(stamp_ns), format=f'{encoding}; png compressed {inner}',
                data=png.reshape(-1)))
        if self.camera_info:
            self._put(self.camera_info, self.camera_info_msg(width, height, stamp_ns))

    def camera_info_msg(self, width: int, height: int, stamp_ns: int):
        info = self.info
        if (info['width'], info['height']) != (width, height):
            raise ValueError(f'camera info is for {info["width"]}x{info["height"]} images but '
                             f'the images are {width}x{height}; pass the matching calibration')
        roi = self.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.types['sensor_msgs/msg/CameraInfo'](
            header=self.header(stamp_ns), height=height, width=width,
            distortion_model=info['distortion_model'], d=np.asarray(info['d'], np.float64),
            k=np.asarray(info['k'], np.float64), r=np.asarray(info['r'], np.float64),
            p=np.asarray(info['p'], np.float64), binning_x=0, binning_y=0, roi=roi)

    def _put(self, connection, msg) -> None:
        stamp = msg.header.stamp
        self.writer.write(connection, stamp.sec * 10**9 + stamp.nanosec,
                          self.store.serialize_cdr(msg, msg.__msgtype__))


def write_images(out: Path | str, images: Iterable[np.ndarray], stamps_ns: Iterable[int],
                 camera_info: Any = None, topic: str = '/camera/image_raw',
                 frame_id: str = 'camera', encoding: str | None = None, storage: str = 'mcap',
                 compressed: bool = False, overwrite: bool = False) -> Path:
    """
    Write images as a rosbag2: Image on `topic`, CameraInfo on its sibling `camera_info`.

    Every message's header stamp and the bag's receive time are the frame's stamp.

    :param images: (H, W) grey or (H, W, 3) RGB uint8 arrays, all of one size.
    :param stamps_ns: one stamp per image, in nanoseconds.
    :param camera_info: anything `read_camera_info` takes; None writes no CameraInfo.
    :param encoding: mono8, rgb8 or bgr8; None keeps grey as mono8 and colour as rgb8.
    :param storage: mcap or sqlite3.
    :param compressed: also write PNG sensor_msgs/CompressedImage on `topic`/compressed.
    :return: the bag directory.
    """
    rosbag2, _ = rosbags_api()
    if storage not in STORAGES:
        raise ValueError(f'unknown storage {storage!r}; choose one of {STORAGES}')
    out = Path(out)
    _prepare_out(out, overwrite)
    plugin = getattr(rosbag2.StoragePlugin, storage.upper())
    count = 0
    try:
        with rosbag2.Writer(out, version=9, storage_plugin=plugin) as writer:
            sink = None
            for image, stamp in zip(images, stamps_ns, strict=True):
                array, enc = to_encoding(image, encoding)
                if sink is None:
                    info = (None if camera_info is None else
                            read_camera_info(camera_info, array.shape[1], array.shape[0]))
                    sink = _ImageBagWriter(writer, typestore(), topic, frame_id, info,
                                           compressed)
                sink.write(array, enc, int(stamp))
                count += 1
            if not count:
                raise ValueError('no images to write')
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written bag left behind
        raise
    logger.info('wrote %d frames to %s (%s)', count, out, storage)
    return out


def record_images(folder: Path | str, out: Path | str, camera_info: Any = None,
                  topic: str = '/camera/image_raw', frame_id: str = 'camera',
                  rate: float = 10.0, times: Path | str | None = None,
                  start: float | None = None, encoding: str | None = None,
                  storage: str = 'mcap', compressed: bool = False,
                  overwrite: bool = False) -> Path:
    """
    Build a rosbag2 from an image sequence (file names sorted) for `replay`.

    :param rate: frames per second when `times` is not given.
    :param times: text file with one time in seconds per image (KITTI's times.txt).
    :param start: seconds added to every time; default 0 with `times` (stamps as in the file),
        1 with `rate` (frame i at 1 + i / rate: a zero stamp means "unset" to many ROS tools).
    :return: the bag directory. The other parameters are those of `write_images`.
    """
    files = list_images(folder)
    if times is not None:
        seconds = read_times(times)
        if len(seconds) != len(files):
            raise ValueError(f'{times} has {len(seconds)} times but {folder} has {len(files)} '
                             'images; they must pair one to one')
        offset = 0.0 if start is None else start
    else:
        if not rate > 0:
            raise ValueError(f'rate must be > 0 frames per second, got {rate}')
        seconds = [i / rate for i in range(len(files))]
        offset = 1.0 if start is None else start
    if camera_info is None:
        logger.warning('no --camera-info: the bag gets no %s topic, and nodes that need '
                       'intrinsics will wait for it', sibling_topic(topic))
    stamps = [round((offset + s) * 1e9) for s in seconds]
    return write_images(out, (load_image(f) for f in files), stamps, camera_info, topic,
                        frame_id, encoding, storage, compressed, overwrite)


def add_record_parser(subparsers) -> None:
    """Register `record-images`; its flags mirror `record_images`."""
    p = subparsers.add_parser('record-images', help='build a rosbag2 (Image + CameraInfo) from '
                              'an image folder')
    p.add_argument('folder', type=Path, help='folder of images, played in file name order')
    p.add_argument('--out', type=Path, required=True, help='bag directory to write')
    p.add_argument('--camera-info', type=Path,
                   help='camera_calibration YAML, or text file with the 9 numbers of K')
    p.add_argument('--topic', default='/camera/image_raw',
                   help='image topic (default /camera/image_raw; CameraInfo goes on the '
                   'sibling camera_info topic)')
    p.add_argument('--frame-id', default='camera', help='header frame_id (default camera)')
    timing = p.add_mutually_exclusive_group()
    timing.add_argument('--rate', type=float, default=10.0, help='frames per second (default 10)')
    timing.add_argument('--times', type=Path, help='file with one time in seconds per image')
    p.add_argument('--start', type=float,
                   help='seconds added to every time (default 0 with --times, else 1)')
    p.add_argument('--encoding', choices=ENCODINGS,
                   help='image encoding (default mono8 for grey, rgb8 for colour files)')
    p.add_argument('--storage', choices=STORAGES, default='mcap', help='default mcap')
    p.add_argument('--compressed', action='store_true',
                   help='also write PNG CompressedImage on TOPIC/compressed')
    p.add_argument('--force', action='store_true', help='replace an existing bag at --out')
    p.set_defaults(func=run_record)


def run_record(args) -> int:
    """Run `lightglue-ros record-images`."""
    out = record_images(args.folder, args.out, camera_info=args.camera_info, topic=args.topic,
                        frame_id=args.frame_id, rate=args.rate, times=args.times,
                        start=args.start, encoding=args.encoding, storage=args.storage,
                        compressed=args.compressed, overwrite=args.force)
    print(out)
    return 0

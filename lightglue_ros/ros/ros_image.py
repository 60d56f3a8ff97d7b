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
sensor_msgs/Image and CompressedImage <-> numpy (ROS 2 cv_bridge when it works, else ours).

Output convention of `image_to_numpy` and `compressed_to_numpy`, always a new C-contiguous
array that does not share memory with the message:
- grey encodings (mono8, 8UC1, mono16, 16UC1): (H, W) uint8 or native-endian uint16;
- colour encodings (rgb8, bgr8, rgba8, bgra8, 8UC3, bayer_*8, yuv422, yuv422_yuy2): (H, W, 3)
  uint8 RGB; alpha is dropped, Bayer mosaics are demosaicked (OpenCV bilinear), and the generic
  8UC3 is returned as stored (taken as RGB, as cv_bridge's same-channel-count rule does).
Malformed messages raise ValueError only, so a node can log the frame and keep spinning.
"""

import logging
import sys
import threading
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# encoding: (channels, dtype, OpenCV code to RGB or None)
# OpenCV's legacy Bayer names are offset by one pixel: an RGGB mosaic is its 'BayerBG'.
ENCODINGS = {
    'mono8': (1, np.uint8, None),
    '8UC1': (1, np.uint8, None),
    'mono16': (1, np.uint16, None),
    '16UC1': (1, np.uint16, None),
    'rgb8': (3, np.uint8, None),
    '8UC3': (3, np.uint8, None),
    'bgr8': (3, np.uint8, cv2.COLOR_BGR2RGB),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2RGB),
    'bayer_rggb8': (1, np.uint8, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr8': (1, np.uint8, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': (1, np.uint8, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg8': (1, np.uint8, cv2.COLOR_BayerGB2RGB),
    'yuv422': (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
}
GREY_ENCODINGS = ('mono8', '8UC1', 'mono16', '16UC1')

_bridge_lock = threading.Lock()
_bridge_state = {'checked': False, 'bridge': None}


def _spec(encoding: Any) -> tuple[int, type, int | None]:
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r}; supported: '
                         f'{", ".join(ENCODINGS)} (republish with image_proc, or use a '
                         'compressed topic)')
    return ENCODINGS[encoding]


def _check_layout(msg: Any) -> tuple[int, type, int | None]:
    """Validate an Image's geometry against its encoding and data; return the encoding spec."""
    channels, dtype, code = _spec(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f'empty {msg.encoding} image: width {width} x height {height}; the '
                         'publisher sent no pixels')
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ValueError(f'{msg.encoding} image step {step} < width {width} x {channels} '
                         f'channel(s) x {np.dtype(dtype).itemsize} byte(s) = {row_bytes}; '
                         'the step or encoding field is wrong')
    if len(msg.data) != step * height:
        raise ValueError(f'{msg.encoding} image data has {len(msg.data)} bytes, expected step '
                         f'{step} x height {height} = {step * height}; the message is truncated '
                         'or its header is wrong')
    if channels == 2 and width % 2:
        raise ValueError(f'{msg.encoding} image width {width} is odd; packed YUV 4:2:2 needs an '
                         'even width')
    return channels, dtype, code


def _decode(msg: Any, channels: int, dtype: type, code: int | None) -> np.ndarray:
    """Decode a validated Image with numpy and OpenCV."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * np.dtype(dtype).itemsize
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row_bytes]
    if np.dtype(dtype).itemsize > 1:
        stored = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
        pixels = rows.view(stored).astype(dtype)  # copy to native byte order
    else:
        pixels = rows.copy()
    pixels = pixels.reshape(height, width, channels) if channels > 1 else pixels
    if code is not None:
        return cv2.cvtColor(pixels, code)
    if channels == 4:
        return np.ascontiguousarray(pixels[..., :3])
    return pixels


def _self_test_messages() -> list:
    """Messages our decoder handles, covering the cases where cv_bridge builds have broken."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    padded = numpy_to_image(rgb, 'rgb8')
    padded.step = 8 * 3 + 5
    padded.data = np.pad(rgb.reshape(6, -1), ((0, 0), (0, 5))).tobytes()
    grey16 = rng.integers(0, 65536, (6, 8), dtype=np.uint16)
    bgra = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    bayer = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    return [padded, numpy_to_image(grey16.astype('>u2'), 'mono16'),
            numpy_to_image(bgra, 'bgra8'), numpy_to_image(bayer, 'bayer_rggb8'),
            numpy_to_image(rgb, 'bgr8')]


def _bridge_convert(bridge: Any, msg: Any) -> np.ndarray:
    desired = 'passthrough' if msg.encoding in GREY_ENCODINGS + ('8UC3',) else 'rgb8'
    out = np.array(bridge.imgmsg_to_cv2(msg, desired_encoding=desired))
    return out.astype(out.dtype.newbyteorder('='))


def _load_bridge() -> Any:
    """Return a CvBridge that reproduces our decoder on the self-test messages, else None."""
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        for msg in _self_test_messages():
            ours = _decode(msg, *_check_layout(msg))
            theirs = _bridge_convert(bridge, msg)
            if theirs.shape != ours.shape or theirs.dtype != ours.dtype or not np.array_equal(
                    theirs, ours):
                raise ValueError(f'{msg.encoding} gave {theirs.dtype}{theirs.shape}, values '
                                 f'differing from {ours.dtype}{ours.shape}')
    except ImportError:
        logger.debug('cv_bridge not importable; using the built-in Image decoder')
        return None
    except Exception as exc:
        logger.warning('cv_bridge is importable but unusable here (%s); using the built-in '
                       'Image decoder', exc)
        return None
    logger.debug('using cv_bridge for sensor_msgs/Image decoding')
    return bridge


def cv_bridge_in_use() -> bool:
    """Return True if `image_to_numpy` decodes with a working ROS 2 cv_bridge."""
    with _bridge_lock:
        if not _bridge_state['checked']:
            _bridge_state['bridge'] = _load_bridge()
            _bridge_state['checked'] = True
        return _bridge_state['bridge'] is not None


def image_to_numpy(msg: Any, use_cv_bridge: bool = True) -> np.ndarray:
    """
    Convert a sensor_msgs/Image to an array (see the module docstring for the convention).

    Honours ``step`` (row padding) and ``is_bigendian`` (16-bit encodings).

    :param msg: sensor_msgs/Image with one of `ENCODINGS`.
    :param use_cv_bridge: decode with cv_bridge if it is importable and passes a self-test.
    :return: (H, W) uint8/uint16 grey or (H, W, 3) uint8 RGB.
    :raises ValueError: unsupported encoding, empty image, step too small, data length not
        step x height, or any other undecodable message.
    """
    try:
        spec = _check_layout(msg)
        if use_cv_bridge and cv_bridge_in_use():
            try:
                return _bridge_convert(_bridge_state['bridge'], msg)
            except Exception as exc:
                logger.debug('cv_bridge failed on a %s image (%s); using the built-in decoder',
                             msg.encoding, exc)
        return _decode(msg, *spec)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f'cannot decode {type(msg).__name__} '
                         f'(encoding {getattr(msg, "encoding", None)!r}): {exc}') from exc


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """
    Decode a sensor_msgs/CompressedImage (JPEG, PNG or any format OpenCV reads).

    :param msg: CompressedImage, e.g. from image_transport's ``compressed`` plugin.
    :return: (H, W) grey (uint8, or uint16 for 16-bit PNG) or (H, W, 3) RGB of the same dtype.
    :raises ValueError: empty, compressedDepth or undecodable data.
    """
    try:
        fmt = str(msg.format)
        if 'compressedDepth' in fmt:
            raise ValueError(f'CompressedImage format {fmt!r} (compressedDepth) is not supported; '
                             'subscribe to the compressed or raw topic')
        data = np.frombuffer(msg.data, np.uint8)
        if data.size == 0:
            raise ValueError(f'CompressedImage (format {fmt!r}) has no data')
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            raise ValueError(f'could not decode {data.size} bytes of CompressedImage data '
                             f'(format {fmt!r}); expected JPEG or PNG')
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f'cannot decode {type(msg).__name__}: {exc}') from exc
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.ndim == 3:
        return np.ascontiguousarray(image[..., 0])
    return image


def numpy_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """
    Build a sensor_msgs/Image holding `array` as stored (no channel reordering).

    The array is in the layout of `encoding` itself, as cv_bridge's ``cv2_to_imgmsg`` takes it:
    BGR order for 'bgr8', the raw mosaic for 'bayer_*8', packed pairs for 'yuv422'. A
    big-endian uint16 array (dtype '>u2') gives ``is_bigendian = 1``.

    :param array: (H, W) for 1-channel encodings (or (H, W, 1)), (H, W, C) otherwise; dtype
        uint8, or uint16 for mono16/16UC1.
    :param encoding: one of `ENCODINGS`.
    :param header: std_msgs/Header to set (stamp, frame_id); default empty.
    :return: sensor_msgs/Image with a tight step.
    """
    from sensor_msgs.msg import Image
    channels, dtype, _ = _spec(encoding)
    array = np.asarray(array)
    if array.ndim == 3 and channels == 1 and array.shape[2] == 1:
        array = array[..., 0]
    expected = '(H, W)' if channels == 1 else f'(H, W, {channels})'
    if array.ndim != (2 if channels == 1 else 3) or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f'array of shape {array.shape} does not fit encoding {encoding!r}; '
                         f'expected {expected}')
    if array.dtype.newbyteorder('=') != np.dtype(dtype):
        raise ValueError(f'array dtype {array.dtype} does not fit encoding {encoding!r}; '
                         f'expected {np.dtype(dtype).name}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    byteorder = array.dtype.byteorder
    msg.is_bigendian = int(array.dtype.itemsize > 1 and (
        byteorder == '>' or (byteorder == '=' and sys.byteorder == 'big')))
    msg.step = msg.width * channels * array.dtype.itemsize
    # Assigning bytes, not the ndarray: the latter is ~1000x slower in rclpy.
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg

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

"""sensor_msgs/Image and CompressedImage <-> numpy on a real photo (skimage coffee)."""

import logging
import sys
import time
import types

import cv2
from lightglue_ros.ros import ros_image
from lightglue_ros.ros.ros_image import compressed_to_numpy
from lightglue_ros.ros.ros_image import ENCODINGS
from lightglue_ros.ros.ros_image import image_to_numpy
from lightglue_ros.ros.ros_image import numpy_to_image
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
import skimage.data
from std_msgs.msg import Header
from std_msgs.msg import String

BAYER = {'bayer_rggb8': 'RGGB', 'bayer_bggr8': 'BGGR', 'bayer_gbrg8': 'GBRG',
         'bayer_grbg8': 'GRBG'}


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    """Return skimage's coffee photo area-downsampled to 50x75 RGB (odd width on purpose)."""
    return cv2.resize(skimage.data.coffee(), (75, 50), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope='module')
def grey16(rgb) -> np.ndarray:
    """Return a 16-bit grey image using the full range, with distinct high and low bytes."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16)
    return grey * 257 + np.arange(grey.size, dtype=np.uint16).reshape(grey.shape) % 7


@pytest.fixture(autouse=True)
def fresh_bridge_state():
    """Re-run the cv_bridge probe in every test (some tests install a fake cv_bridge)."""
    ros_image._bridge_state.update(checked=False, bridge=None)
    yield
    ros_image._bridge_state.update(checked=False, bridge=None)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a 2x2 colour filter array, e.g. 'RGGB'."""
    out = np.empty(rgb.shape[:2], np.uint8)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, 'RGB'.index(colour)]
    return out


def stored_and_expected(rgb, grey16, encoding):
    """Return (array in the encoding's own layout, what image_to_numpy must give)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
    table = {
        'mono8': (grey, grey), '8UC1': (grey, grey),
        'mono16': (grey16, grey16), '16UC1': (grey16, grey16),
        'rgb8': (rgb, rgb), '8UC3': (rgb, rgb), 'bgr8': (rgb[..., ::-1], rgb),
        'rgba8': (np.dstack([rgb, alpha]), rgb),
        'bgra8': (np.dstack([rgb[..., ::-1], alpha]), rgb),
    }
    return table[encoding]


ROUND_TRIP = ['mono8', '8UC1', 'mono16', '16UC1', 'rgb8', '8UC3', 'bgr8', 'rgba8', 'bgra8']


@pytest.mark.parametrize('encoding', ROUND_TRIP)
def test_round_trip(rgb, grey16, encoding):
    stored, expected = stored_and_expected(rgb, grey16, encoding)
    header = Header(frame_id='cam0')
    header.stamp.sec = 12
    msg = numpy_to_image(stored, encoding, header)
    assert (msg.height, msg.width, msg.encoding) == (50, 75, encoding)
    assert msg.step == 75 * stored.itemsize * (stored.shape[2] if stored.ndim == 3 else 1)
    assert (msg.header.frame_id, msg.header.stamp.sec) == ('cam0', 12)
    out = image_to_numpy(msg)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    assert out.flags.c_contiguous and out.dtype.isnative
    out[...] = 0  # the result must not alias the message buffer
    np.testing.assert_array_equal(image_to_numpy(msg), expected)


@pytest.mark.parametrize('encoding', ROUND_TRIP + list(BAYER) + ['yuv422', 'yuv422_yuy2'])
def test_padded_step_by_hand(rgb, grey16, encoding):
    if encoding in BAYER:
        stored = mosaic(rgb, BAYER[encoding])
    elif encoding.startswith('yuv'):
        stored = np.random.default_rng(3).integers(0, 256, (50, 74, 2), dtype=np.uint8)
    else:
        stored = stored_and_expected(rgb, grey16, encoding)[0]
    tight = numpy_to_image(stored, encoding)
    pad = 13  # odd, so 16-bit rows start unaligned
    rows = np.frombuffer(tight.data, np.uint8).reshape(tight.height, tight.step)
    junk = np.full((tight.height, pad), 0xAB, np.uint8)
    msg = Image(height=tight.height, width=tight.width, encoding=encoding,
                is_bigendian=tight.is_bigendian, step=tight.step + pad)
    msg.data = np.hstack([rows, junk]).tobytes()
    np.testing.assert_array_equal(image_to_numpy(msg), image_to_numpy(tight))


@pytest.mark.parametrize('encoding', ['mono16', '16UC1'])
def test_big_endian_16bit(grey16, encoding):
    by_hand = Image(height=50, width=75, encoding=encoding, is_bigendian=1, step=75 * 2 + 4)
    rows = np.zeros((50, 75 * 2 + 4), np.uint8)
    rows[:, 0:150:2] = grey16 >> 8  # most significant byte first
    rows[:, 1:150:2] = grey16 & 0xFF
    by_hand.data = rows.tobytes()
    out = image_to_numpy(by_hand)
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, grey16)
    msg = numpy_to_image(grey16.astype('>u2'), encoding)
    assert msg.is_bigendian == 1
    np.testing.assert_array_equal(image_to_numpy(msg), grey16)
    little = numpy_to_image(grey16.astype('<u2'), encoding)
    assert little.is_bigendian == 0
    assert bytes(little.data) != bytes(msg.data)
    np.testing.assert_array_equal(image_to_numpy(little), grey16)


@pytest.mark.parametrize('encoding', list(BAYER))
def test_bayer_colours(encoding):
    # Uniform patches: bilinear demosaicking must give the colour back exactly inside each.
    patches = np.zeros((24, 32, 3), np.uint8)
    patches[:, :16] = (200, 100, 30)
    patches[:, 16:] = (20, 60, 220)
    out = image_to_numpy(numpy_to_image(mosaic(patches, BAYER[encoding]), encoding))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[2:-2, 2:14], patches[2:-2, 2:14])
    np.testing.assert_array_equal(out[2:-2, 18:-2], patches[2:-2, 18:-2])


@pytest.mark.parametrize('encoding', list(BAYER))
def test_bayer_photo(rgb, encoding):
    raw = mosaic(rgb, BAYER[encoding])
    out = image_to_numpy(numpy_to_image(raw, encoding)).astype(int)
    err = np.abs(out - rgb.astype(int))[2:-2, 2:-2].mean(axis=(0, 1))
    assert (err < 10).all(), err  # per channel; measured 4.2-7.1 (bilinear on a 50x75 photo)
    # Decoding the mosaic as another pattern is far worse (measured >= 50): the test discriminates.
    for other in BAYER:
        if other != encoding:
            msg = numpy_to_image(raw, other)
            wrong = np.abs(image_to_numpy(msg).astype(int) - rgb.astype(int))[2:-2, 2:-2]
            assert wrong.mean() > 4 * err.max()


# BT.601 luma weights; ROS's yuv422 is decoded (cv_bridge, OpenCV) as BT.601 video range:
# Y in [16, 235], Cb and Cr in [16, 240] around 128.
KR, KB = 0.299, 0.114


def bt601_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Return RGB (float, 0-255, clipped) of video-range BT.601 Y, Cb, Cr levels."""
    y = (y.astype(float) - 16) * 255 / 219
    cb, cr = ((c.astype(float) - 128) * 255 / 224 for c in (cb, cr))
    kg = 1 - KR - KB
    r = y + 2 * (1 - KR) * cr
    g = y - (2 * KB * (1 - KB) * cb + 2 * KR * (1 - KR) * cr) / kg
    b = y + 2 * (1 - KB) * cb
    return np.clip(np.stack([r, g, b], -1), 0, 255)


def rgb_to_bt601_422(rgb: np.ndarray) -> tuple:
    """Return uint8 (Y (H, W), Cb and Cr (H, W/2), averaged over pixel pairs) of RGB."""
    r, g, b = np.moveaxis(rgb.astype(float) / 255, -1, 0)
    y = KR * r + (1 - KR - KB) * g + KB * b
    cb, cr = (b - y) / (2 * (1 - KB)), (r - y) / (2 * (1 - KR))
    pairs = [(c[:, 0::2] + c[:, 1::2]) / 2 for c in (cb, cr)]
    return tuple(np.round(v).astype(np.uint8)
                 for v in (16 + 219 * y, 128 + 224 * pairs[0], 128 + 224 * pairs[1]))


def test_yuv422(rgb):
    """Packed 4:2:2 in both byte orders decodes to BT.601 RGB (within 2 levels)."""
    y, cb, cr = rgb_to_bt601_422(rgb[:, :74])  # an even width
    # Extremes too: black, white, grey, and saturated chroma (clipped RGB).
    y = np.vstack([y, np.array([[16, 235, 128, 128, 90, 90, 200, 200] * 9 + [50, 50]])])
    cb = np.vstack([cb, np.array([[128, 128, 16, 240] * 9 + [70]])])
    cr = np.vstack([cr, np.array([[128, 128, 240, 16] * 9 + [200]])])
    uyvy = np.empty(y.shape + (2,), np.uint8)
    uyvy[..., 1] = y
    uyvy[:, 0::2, 0], uyvy[:, 1::2, 0] = cb, cr  # per pixel pair: U Y0 V Y1
    yuyv = uyvy[..., ::-1].copy()  # per pixel pair: Y0 U Y1 V
    # The reference from the bytes: each pair's chroma applies to both of its pixels.
    expected = bt601_to_rgb(y, np.repeat(cb, 2, axis=1), np.repeat(cr, 2, axis=1))
    for encoding, packed in (('yuv422', uyvy), ('yuv422_yuy2', yuyv)):
        out = image_to_numpy(numpy_to_image(packed, encoding))
        assert out.shape == y.shape + (3,) and out.dtype == np.uint8
        err = np.abs(out.astype(float) - expected)
        worst = float(err.max())
        assert worst <= 2, f'{encoding}: {worst:.1f} levels off at (row, column, channel) ' \
            f'{np.unravel_index(err.argmax(), err.shape)}'
    # Decoded back to RGB, the photo itself is within the rounding of the 4:2:2 chroma.
    assert np.abs(out[:50].astype(int) - rgb[:, :74]).mean() < 4  # measured 2.2


def bad(height=4, width=6, encoding='rgb8', step=None, data_len=None, **kw):
    step = width * 3 if step is None else step
    msg = Image(height=height, width=width, encoding=encoding, step=step, **kw)
    msg.data = bytes(step * height if data_len is None else data_len)
    return msg


@pytest.mark.parametrize('msg, match', [
    (bad(encoding='rgb16'), r"unsupported image encoding 'rgb16'; supported: mono8, 8UC1"),
    (bad(encoding=''), "unsupported image encoding ''"),
    (bad(encoding='RGB8'), "unsupported image encoding 'RGB8'"),
    (bad(width=0, step=0), r'empty rgb8 image: width 0 x height 4'),
    (bad(height=0, data_len=0), r'empty rgb8 image: width 6 x height 0'),
    (bad(step=17), r'rgb8 image step 17 < width 6 x 3 channel\(s\) x 1 byte\(s\) = 18'),
    (bad(encoding='mono16', step=11), r'mono16 image step 11 < width 6 x 1 channel\(s\) x 2 '
     r'byte\(s\) = 12'),
    (bad(data_len=71), r'rgb8 image data has 71 bytes, expected step 18 x height 4 = 72'),
    (bad(data_len=73), r'rgb8 image data has 73 bytes, expected step 18 x height 4 = 72'),
    (bad(data_len=0), r'rgb8 image data has 0 bytes'),
    (bad(encoding='yuv422', width=5, step=10), 'yuv422 image width 5 is odd'),
])
def test_malformed_image(msg, match):
    with pytest.raises(ValueError, match=match):
        image_to_numpy(msg)


def test_non_image_input_raises_value_error():
    with pytest.raises(ValueError, match=r'cannot decode String \(encoding None\)'):
        image_to_numpy(String(data='x'))
    fake = types.SimpleNamespace(height=2, width=2, encoding='mono8', step=2, data=None,
                                 is_bigendian=0)
    with pytest.raises(ValueError, match='cannot decode SimpleNamespace'):
        image_to_numpy(fake)
    with pytest.raises(ValueError, match='cannot decode String'):
        compressed_to_numpy(String(data='x'))


def compressed(image_rgb: np.ndarray, ext: str, fmt: str) -> CompressedImage:
    if image_rgb.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image_rgb.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        image_rgb = cv2.cvtColor(image_rgb, code)
    ok, buf = cv2.imencode(ext, image_rgb)
    assert ok
    msg = CompressedImage(format=fmt)
    msg.data = buf.tobytes()
    return msg


def test_compressed_jpeg(rgb):
    out = compressed_to_numpy(compressed(rgb, '.jpg', 'rgb8; jpeg compressed bgr8'))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - rgb.astype(int)).mean(axis=(0, 1))
    assert (err < 8).all(), err  # measured 4.8, 2.5, 4.4 (4:2:0 chroma); R/B swapped: 107
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = compressed_to_numpy(compressed(grey, '.jpg', 'mono8; jpeg compressed mono8'))
    assert out.shape == grey.shape and np.abs(out.astype(int) - grey).mean() < 3  # 1.4


def test_compressed_png(rgb, grey16):
    np.testing.assert_array_equal(
        compressed_to_numpy(compressed(rgb, '.png', 'bgr8; png compressed bgr8')), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])
    np.testing.assert_array_equal(compressed_to_numpy(compressed(rgba, '.png', 'png')), rgb)
    out = compressed_to_numpy(compressed(grey16, '.png', 'mono16; png compressed mono16'))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, grey16)


@pytest.mark.parametrize('data, fmt, match', [
    (b'', 'jpeg', r"CompressedImage \(format 'jpeg'\) has no data"),
    (b'not an image at all', 'jpeg', r'could not decode 19 bytes of CompressedImage data '
     r"\(format 'jpeg'\); expected JPEG or PNG"),
    (b'\x89PNG\r\n\x1a\n' + bytes(40), 'png', 'could not decode 48 bytes'),
    (b'\x00' * 20, '16UC1; compressedDepth png', 'compressedDepth.*is not supported'),
])
def test_compressed_malformed(data, fmt, match):
    msg = CompressedImage(format=fmt)
    msg.data = data
    with pytest.raises(ValueError, match=match):
        compressed_to_numpy(msg)


def test_numpy_to_image_errors(rgb):
    with pytest.raises(ValueError, match=r'array of shape \(50, 75, 3\) does not fit encoding '
                       r"'mono8'; expected \(H, W\)"):
        numpy_to_image(rgb, 'mono8')
    with pytest.raises(ValueError, match=r"shape \(50, 75\) does not fit encoding 'rgba8'; "
                       r'expected \(H, W, 4\)'):
        numpy_to_image(rgb[..., 0], 'rgba8')
    with pytest.raises(ValueError, match="array dtype float32 does not fit encoding 'rgb8'; "
                       'expected uint8'):
        numpy_to_image(rgb.astype(np.float32), 'rgb8')
    with pytest.raises(ValueError, match="dtype uint8 does not fit encoding 'mono16'"):
        numpy_to_image(rgb[..., 0], 'mono16')
    with pytest.raises(ValueError, match="unsupported image encoding 'jpeg'"):
        numpy_to_image(rgb, 'jpeg')
    assert numpy_to_image(rgb[..., :1], 'mono8').step == 75


def test_numpy_to_image_is_fast():
    frame = np.zeros((480, 640, 3), np.uint8)
    start = time.perf_counter()
    msg = numpy_to_image(frame, 'rgb8')
    # tobytes() takes ~1 ms; assigning the ndarray itself would take ~1 s.
    assert time.perf_counter() - start < 0.2
    assert len(msg.data) == 480 * 640 * 3


def test_every_encoding_is_tested():
    assert set(ENCODINGS) == set(ROUND_TRIP) | set(BAYER) | {'yuv422', 'yuv422_yuy2'}


class GoodBridge:
    """A stand-in for ROS 2's CvBridge that converts correctly (through OpenCV)."""

    calls = 0

    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        type(self).calls += 1
        out = ros_image._decode(msg, *ros_image._check_layout(msg))
        assert desired_encoding == ('passthrough' if out.ndim == 2 or msg.encoding == '8UC3'
                                    else 'rgb8')
        return out


class NumpyTwoBridge(GoodBridge):
    """Like cv_bridge builds that call the removed ndarray.newbyteorder on numpy 2."""

    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        if msg.is_bigendian:
            raise AttributeError('`newbyteorder` was removed from the ndarray class in NumPy 2.0')
        return super().imgmsg_to_cv2(msg, desired_encoding)


class BayerOffByOneBridge(GoodBridge):
    """A bridge whose OpenCV names Bayer patterns differently: colours come out swapped."""

    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        out = super().imgmsg_to_cv2(msg, desired_encoding)
        return out[..., ::-1] if msg.encoding.startswith('bayer') else out


def install_bridge(monkeypatch, cls):
    module = types.ModuleType('cv_bridge')
    module.CvBridge = cls
    monkeypatch.setitem(sys.modules, 'cv_bridge', module)


def test_cv_bridge_used_when_working(monkeypatch, rgb):
    install_bridge(monkeypatch, GoodBridge)
    assert ros_image.cv_bridge_in_use()
    before = GoodBridge.calls
    msg = numpy_to_image(rgb[..., ::-1], 'bgr8')
    np.testing.assert_array_equal(image_to_numpy(msg), rgb)
    assert GoodBridge.calls == before + 1
    image_to_numpy(msg, use_cv_bridge=False)
    assert GoodBridge.calls == before + 1
    with pytest.raises(ValueError, match='data has 5 bytes'):  # validated before the bridge
        image_to_numpy(bad(data_len=5))


@pytest.mark.parametrize('cls, reason', [(NumpyTwoBridge, 'newbyteorder'),
                                         (BayerOffByOneBridge, 'bayer_rggb8 gave')])
def test_broken_cv_bridge_falls_back(monkeypatch, caplog, rgb, cls, reason):
    install_bridge(monkeypatch, cls)
    with caplog.at_level(logging.WARNING, logger='lightglue_ros.ros.ros_image'):
        assert not ros_image.cv_bridge_in_use()
    assert 'cv_bridge is importable but unusable here' in caplog.text and reason in caplog.text
    raw = mosaic(rgb, 'RGGB')
    out = image_to_numpy(numpy_to_image(raw, 'bayer_rggb8'))
    np.testing.assert_array_equal(out, cv2.cvtColor(raw, cv2.COLOR_BayerRGGB2RGB))


def test_no_cv_bridge_here():
    # This environment has no ROS 2 cv_bridge (the PyPI cv-bridge is a ROS 1 port: not used).
    if 'cv_bridge' in sys.modules or _importable('cv_bridge'):
        pytest.skip('checks the setup without cv_bridge (the built-in image decoder in use); '
                    'a ROS cv_bridge is installed here, so the node uses it instead')
    assert not ros_image.cv_bridge_in_use()


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None

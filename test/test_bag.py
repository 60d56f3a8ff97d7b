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

"""`record-images` and `replay`: bags read back exactly, replay over real rclpy/Fast DDS."""

import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import cv2
from lightglue_ros.ros import bag
from lightglue_ros.ros import bag_record
from lightglue_ros.tools import cli
from lightglue_ros.tools import samples
import numpy as np
import pytest

STORAGES = ['mcap', 'sqlite3']
CALIBRATION_YAML = """\
image_width: 64
image_height: 48
camera_name: tiny
camera_matrix: {rows: 3, cols: 3, data: [50.0, 0.0, 31.5, 0.0, 51.0, 23.5, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [-0.1, 0.01, 0.001, -0.002, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [49, 0, 31, 0, 0, 50, 23, 0, 0, 0, 1, 0]}
"""


def read_bag(path) -> dict:
    """Return {topic: [(receive time ns, raw bytes, message)]} and the topic types."""
    store = bag.typestore()
    reader = bag.open_bag(path)
    try:
        out = {c.topic: [] for c in reader.connections}
        types = {c.topic: c.msgtype for c in reader.connections}
        for c, stamp, data in reader.messages():
            out[c.topic].append((stamp, bytes(data), store.deserialize_cdr(data, c.msgtype)))
    finally:
        reader.close()
    return out | {'types': types}


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.fixture(scope='module')
def folder(tmp_path_factory) -> Path:
    """Ten 64x48 colour crops of a real photo, a times file and a calibration YAML."""
    root = tmp_path_factory.mktemp('images')
    image = samples.photo('astronaut')
    for i in range(10):
        crop = image[100 + 5 * i:148 + 5 * i, 200:264]
        cv2.imwrite(str(root / f'frame_{i:03d}.png'), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (root / 'notes.txt').write_text('not an image\n')
    (root.parent / 'times.txt').write_text(''.join(f'{5 + 0.1 * i:.6e}\n' for i in range(10)))
    (root.parent / 'camera.yaml').write_text(CALIBRATION_YAML)
    return root


@pytest.mark.parametrize('storage', STORAGES)
def test_record_images_round_trip(folder, tmp_path, storage):
    """Images, stamps, CameraInfo and the PNG CompressedImage read back exactly."""
    out = bag_record.record_images(folder, tmp_path / 'bag',
                                   camera_info=folder.parent / 'camera.yaml',
                                   topic='/cam/image_raw', frame_id='cam_optical',
                                   times=folder.parent / 'times.txt', storage=storage,
                                   compressed=True)
    data = read_bag(out)
    assert data['types'] == {'/cam/image_raw': 'sensor_msgs/msg/Image',
                             '/cam/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                             '/cam/camera_info': 'sensor_msgs/msg/CameraInfo'}
    files = sorted(folder.glob('*.png'))
    expected = [round((5 + 0.1 * i) * 1e9) for i in range(10)]
    for topic in ('/cam/image_raw', '/cam/image_raw/compressed', '/cam/camera_info'):
        assert [t for t, _, _ in data[topic]] == expected, topic
        assert [stamp_ns(m) for _, _, m in data[topic]] == expected, topic
        assert {m.header.frame_id for _, _, m in data[topic]} == {'cam_optical'}
    for path, (_, _, msg), (_, _, comp) in zip(files, data['/cam/image_raw'],
                                               data['/cam/image_raw/compressed']):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        assert (msg.encoding, msg.width, msg.height, msg.step) == ('rgb8', 64, 48, 192)
        assert bytes(msg.data) == rgb.tobytes()
        assert comp.format == 'rgb8; png compressed bgr8'
        decoded = cv2.imdecode(np.asarray(comp.data), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(decoded[..., ::-1], rgb)
    info = data['/cam/camera_info'][0][2]
    assert (info.width, info.height, info.distortion_model) == (64, 48, 'plumb_bob')
    np.testing.assert_allclose(info.k, [50, 0, 31.5, 0, 51, 23.5, 0, 0, 1])
    np.testing.assert_allclose(info.d, [-0.1, 0.01, 0.001, -0.002, 0.0])
    np.testing.assert_allclose(info.p, [49, 0, 31, 0, 0, 50, 23, 0, 0, 0, 1, 0])


def test_record_rate_encoding_and_plain_k(folder, tmp_path):
    """--rate stamps frames from 1 s; mono8 conversion; a 9-number K file fills CameraInfo."""
    (tmp_path / 'K.txt').write_text('# fx 0 cx / 0 fy cy / 0 0 1\n60 0 32\n0 60 24\n0 0 1\n')
    out = bag_record.record_images(folder, tmp_path / 'bag', camera_info=tmp_path / 'K.txt',
                                   rate=20, encoding='mono8')
    data = read_bag(out)
    assert [t for t, _, _ in data['/camera/image_raw']] == [
        10**9 + 50_000_000 * i for i in range(10)]
    msg = data['/camera/image_raw'][3][2]
    grey = cv2.cvtColor(cv2.imread(str(sorted(folder.glob('*.png'))[3])), cv2.COLOR_BGR2GRAY)
    assert msg.encoding == 'mono8' and bytes(msg.data) == grey.tobytes()
    info = data['/camera/camera_info'][0][2]
    assert (info.width, info.height) == (64, 48)
    np.testing.assert_allclose(info.p, [60, 0, 32, 0, 0, 60, 24, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(info.d, np.zeros(5))


def test_record_without_camera_info_warns(folder, tmp_path, caplog):
    """No calibration: the bag has only the image topic, and a warning says why."""
    with caplog.at_level(logging.WARNING, logger='lightglue_ros.ros.bag_record'):
        out = bag_record.record_images(folder, tmp_path / 'bag', storage='sqlite3')
    assert 'no --camera-info' in caplog.text
    assert read_bag(out)['types'] == {'/camera/image_raw': 'sensor_msgs/msg/Image'}


@pytest.mark.parametrize('storage', STORAGES)
def test_record_kitti_cli(kitti, tmp_path, storage, capsys):
    """The CLI records KITTI's grey frames with their times and K, byte for byte."""
    out = tmp_path / 'kitti'
    code = cli.main(['record-images', str(kitti / 'image_0'), '--out', str(out),
                     '--camera-info', str(kitti / 'calib_cam0_K.txt'),
                     '--times', str(kitti / 'times_00_frames100-119.txt'),
                     '--storage', storage])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    data = read_bag(out)
    files = sorted((kitti / 'image_0').glob('*.png'))
    times = [float(x) for x in (kitti / 'times_00_frames100-119.txt').read_text().split()]
    assert [t for t, _, _ in data['/camera/image_raw']] == [round(s * 1e9) for s in times]
    for path, (_, _, msg) in zip(files, data['/camera/image_raw']):
        assert (msg.encoding, msg.width, msg.height) == ('mono8', 1241, 376)
        assert bytes(msg.data) == cv2.imread(str(path), cv2.IMREAD_UNCHANGED).tobytes()
    info = data['/camera/camera_info'][-1][2]
    np.testing.assert_allclose(info.k, [718.856, 0, 607.1928, 0, 718.856, 185.2157, 0, 0, 1])
    assert (info.width, info.height) == (1241, 376)


def test_record_errors(folder, tmp_path, capsys):
    """Mistakes give one line and exit 2, and leave no half-written bag."""
    (tmp_path / 'short.txt').write_text('1.0\n2.0\n')
    (tmp_path / 'bad_k.txt').write_text('1 2 3 4 5 6 7\n')
    (tmp_path / 'exists').mkdir()
    (tmp_path / 'big.yaml').write_text(CALIBRATION_YAML.replace('width: 64', 'width: 640'))
    cases = [
        ([str(tmp_path / 'nothing')], 'no image folder'),
        ([str(tmp_path / 'exists')], 'no images'),
        ([str(folder), '--times', str(tmp_path / 'short.txt')], 'has 2 times but'),
        ([str(folder), '--camera-info', str(tmp_path / 'bad_k.txt')], 'got 7'),
        ([str(folder), '--camera-info', str(tmp_path / 'none.yaml')], 'no camera info file'),
        ([str(folder), '--camera-info', str(tmp_path / 'big.yaml')], 'is for 640x48 images'),
        ([str(folder), '--rate', '0'], 'rate must be > 0'),
    ]
    for args, text in cases:
        code = cli.main(['record-images', *args, '--out', str(tmp_path / 'out')])
        err = capsys.readouterr().err
        assert code == 2 and text in err and err.count('\n') == 1, (args, err)
        assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match='is for 64x48 images but the images are 32x32'):
        bag_record.write_images(tmp_path / 'out', [np.zeros((32, 32), np.uint8)], [1],
                                camera_info=folder.parent / 'camera.yaml')
    bag_record.record_images(folder, tmp_path / 'out')
    with pytest.raises(ValueError, match='exists; choose another output or pass --force'):
        bag_record.record_images(folder, tmp_path / 'out')
    assert bag_record.record_images(folder, tmp_path / 'out', overwrite=True).is_dir()


def test_replay_errors(tmp_path, capsys):
    """A missing or broken bag exits 2 with a clear message, before any ROS start."""
    assert cli.main(['replay', str(tmp_path / 'missing')]) == 2
    assert 'no rosbag2 at' in capsys.readouterr().err
    (tmp_path / 'empty').mkdir()
    assert cli.main(['replay', str(tmp_path / 'empty')]) == 2
    assert 'cannot read rosbag2' in capsys.readouterr().err
    (tmp_path / 'junk.mcap').write_bytes(b'not an mcap file')
    assert cli.main(['replay', str(tmp_path / 'junk.mcap')]) == 2
    assert 'cannot read rosbag2' in capsys.readouterr().err
    with pytest.raises(ValueError, match='bad remap'):
        bag.replay(tmp_path / 'missing', remap=['/a=/b'])
    with pytest.raises(ValueError, match='rate must be > 0'):
        bag.replay(tmp_path / 'missing', rate=0)


def test_replay_unknown_type(tmp_path, capsys):
    """A message type without a Python class is named, with the package to install."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_types_from_msg
    store = bag.typestore()
    store.register(get_types_from_msg('int32 x\n', 'foo_msgs/msg/Bar'))
    with Writer(tmp_path / 'custom', version=9) as writer:
        conn = writer.add_connection('/bar', 'foo_msgs/msg/Bar', typestore=store)
        msg = store.types['foo_msgs/msg/Bar'](x=3)
        writer.write(conn, 1, store.serialize_cdr(msg, 'foo_msgs/msg/Bar'))
    with pytest.raises(ValueError, match=r'foo_msgs/msg/Bar: install the ROS package foo_msgs'):
        bag.replay(tmp_path / 'custom')
    assert cli.main(['replay', str(tmp_path / 'custom')]) == 2
    assert 'ros-foo-msgs' in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"topics \['/nope'\] are not in the bag"):
        bag.replay(tmp_path / 'custom', topics=['/nope'])


# -- replay over DDS ---------------------------------------------------------------------------

class Listener:
    """A subscriber node in a private context, spun by `run` while replay plays in a thread."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node('bag_listener', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received, self.subscriptions = {}, []

    def listen(self, topic: str, msg_type, raw: bool = True, reliable: bool = True) -> None:
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        self.received[topic] = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        self.subscriptions.append(self.node.create_subscription(
            msg_type, topic, lambda m: self.received[topic].append((time.monotonic(), m)),
            qos, raw=raw))

    def reset(self) -> None:
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.received, self.subscriptions = {}, []

    def run(self, expected: dict, timeout: float = 30.0, **kwargs) -> int:
        """Replay in a thread (joined) until it ends and `expected` counts have arrived."""
        result = {}

        def target():
            try:
                result['count'] = bag.replay(**kwargs)
            except BaseException as exc:  # re-raised in the test thread
                result['error'] = exc

        thread = threading.Thread(target=target)
        thread.start()
        deadline, done_at = time.monotonic() + timeout, None
        try:
            while time.monotonic() < deadline:
                self.executor.spin_once(timeout_sec=0.02)
                complete = all(len(self.received[t]) >= n for t, n in expected.items())
                if not thread.is_alive():
                    done_at = done_at or time.monotonic()
                    if complete or time.monotonic() - done_at > 3:
                        break
            drain = time.monotonic() + 0.3  # other topics (/clock) may still be in flight
            while time.monotonic() < drain:
                self.executor.spin_once(timeout_sec=0.02)
        finally:
            thread.join()
        if 'error' in result:
            raise result['error']
        return result['count']

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture(scope='module')
def listener():
    """Yield a Listener; joined and shut down after the module."""
    lis = Listener()
    yield lis
    lis.close()


@pytest.fixture(scope='module')
def sample_bag(tmp_path_factory) -> Path:
    """Four 640x480 rgb8 frames of the camera motion sample at 10 Hz with CameraInfo."""
    out = tmp_path_factory.mktemp('sample') / 'motion'
    return samples.write_sample_bag(out, n_frames=4, rate=10.0)['bag']


def test_replay_delivers_identical_bytes_and_clock(listener, sample_bag):
    """Every frame arrives with the bag's bytes; remap applies; /clock follows the bag time."""
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo
    from sensor_msgs.msg import Image
    listener.reset()
    listener.listen('/replayed/image0', Image)
    listener.listen('/camera/camera_info', CameraInfo)
    listener.listen('/clock', Clock, raw=False)
    stored = read_bag(sample_bag)
    count = listener.run({'/replayed/image0': 4, '/camera/camera_info': 4}, bag=sample_bag,
                         rate=2.0, remap=['/camera/image_raw:=/replayed/image0'])
    assert count == 8
    got = listener.received
    assert [m for _, m in got['/replayed/image0']] == [
        d for _, d, _ in stored['/camera/image_raw']]
    assert [m for _, m in got['/camera/camera_info']] == [
        d for _, d, _ in stored['/camera/camera_info']]
    clocks = [c.clock.sec * 10**9 + c.clock.nanosec for _, c in got['/clock']]
    first, last = stored['/camera/image_raw'][0][0], stored['/camera/image_raw'][-1][0]
    assert len(clocks) >= 4 and min(clocks) >= first and max(clocks) == last
    assert clocks == sorted(clocks) and len(set(clocks)) == len(clocks)


def test_replay_ignores_the_command_line(listener, sample_bag, monkeypatch):
    """NAME:=VALUE among the process's arguments is not a remap for replay's own context."""
    from sensor_msgs.msg import CameraInfo
    listener.reset()
    listener.listen('/camera/camera_info', CameraInfo)
    monkeypatch.setattr(sys, 'argv', ['lightglue-ros', '/camera/camera_info:=/hijacked'])
    listener.run({'/camera/camera_info': 4}, bag=sample_bag, rate=4.0,
                 topics=['/camera/camera_info'])
    assert len(listener.received['/camera/camera_info']) == 4


def test_private_node_ignores_the_command_line(monkeypatch):
    """The tools' private nodes (bench-node's probe...) do not take the caller's -p overrides."""
    from lightglue_ros.tools.demo_ros import PrivateNode
    monkeypatch.setattr(sys, 'argv', ['lightglue-ros', 'chatter:=hijacked'])
    probe = PrivateNode('argv_probe')
    try:
        assert probe.node.resolve_topic_name('chatter') == '/chatter'
    finally:
        probe.close()


def test_replay_rate_topics_and_given_node(listener, folder, tmp_path):
    """Playback time scales with 1/rate; --topics filters; a caller's node can publish."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo
    from sensor_msgs.msg import Image
    path = bag_record.record_images(folder, tmp_path / 'bag',
                                    camera_info=folder.parent / 'camera.yaml',
                                    topic='/rate/image', rate=10.0)  # 10 frames over 0.9 s
    spreads = {}
    for rate in (1.0, 4.0):
        listener.reset()
        listener.listen('/rate/image', Image, reliable=False)  # best-effort matches both
        assert listener.run({'/rate/image': 10}, bag=path, rate=rate, clock=False,
                            topics=['/rate/image'], qos='best_effort') == 10
        times = [t for t, _ in listener.received['/rate/image']]
        assert len(times) == 10
        spreads[rate] = times[-1] - times[0]
    # 0.9 s and 0.225 s of bag time; loose bounds: this machine is shared and noisy.
    assert spreads[1.0] > 0.6 and spreads[4.0] < 0.6, spreads

    listener.reset()
    listener.listen('/rate/camera_info', CameraInfo)
    listener.listen('/rate/image', Image)
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('caller', context=context)
    try:
        count = listener.run({'/rate/camera_info': 10}, bag=path, rate=20.0, node=node,
                             topics=['/rate/camera_info'], wait_subscribers=5.0)
        assert count == 10 and len(listener.received['/rate/camera_info']) == 10
        assert listener.received['/rate/image'] == []
        left = [n for n, _ in node.get_publisher_names_and_types_by_node('caller', '/')]
        assert left == ['/parameter_events', '/rosout']  # replay removed its publishers
    finally:
        node.destroy_node()
        context.try_shutdown()


# A subscriber to every topic of the sample bag, in its own process; prints 'ready' once
# it has subscribed.
HUNG_READER = """
import rclpy
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
rclpy.init()
node = rclpy.create_node('hung_reader')
for msg_type, topic in ((Image, '/camera/image_raw'), (CameraInfo, '/camera/camera_info'),
                        (Clock, '/clock')):
    node.create_subscription(msg_type, topic, lambda m: None, QoSProfile(depth=10))
print('ready', flush=True)
rclpy.spin(node)
"""


def test_replay_cli_ctrl_c_exits_0(sample_bag, tmp_path):
    """
    `lightglue-ros replay --loop` runs until SIGINT, then shuts down promptly with exit 0.

    Even started with SIGINT ignored (as a shell's background job, `nohup ... &`, leaves
    it: Python then never raised KeyboardInterrupt and the replay ran on), and with a
    subscriber that stopped answering (a hung process, SIGSTOP): a replay that runs to its
    end waits up to 5 s for its last messages to be acknowledged, a stopped one does not (it
    once waited 5 s per topic after Ctrl-C).
    """
    reader = subprocess.Popen([sys.executable, '-c', HUNG_READER], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ))
    log = tmp_path / 'stderr.txt'
    try:
        assert reader.stdout.readline().strip() == 'ready'
        with open(log, 'w') as err:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'lightglue_ros.tools.cli', '-v', 'replay',
                 str(sample_bag), '--loop', '--rate', '5', '--wait-subscribers', '3'],
                stdout=subprocess.PIPE, stderr=err, text=True, env=dict(os.environ),
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            try:
                deadline = time.monotonic() + 30
                while 'played the bag 2 time' not in log.read_text():  # within round 3
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
                reader.send_signal(signal.SIGSTOP)
                time.sleep(0.5)  # the replay goes on publishing to the silent reader
                proc.send_signal(signal.SIGINT)
                sent = time.monotonic()
                try:
                    out, _ = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    pytest.fail(f'replay still running 30 s after SIGINT; its log:\n'
                                f'{log.read_text()[-3000:]}')
                # Measured: ~0.5 s; waiting for the silent reader took 5 s per topic.
                waited = time.monotonic() - sent
                assert waited < 4, (waited, log.read_text())
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        reader.kill()
        reader.wait()
    assert proc.returncode == 0, log.read_text()
    assert 'replay: stopped' in out


def test_replay_remap_conflict(folder, tmp_path):
    """Two types remapped onto one topic are refused before ROS starts."""
    path = bag_record.record_images(folder, tmp_path / 'bag',
                                    camera_info=folder.parent / 'camera.yaml')
    with pytest.raises(ValueError, match='would carry both sensor_msgs/msg/Image and '
                       'sensor_msgs/msg/CameraInfo'):
        bag.replay(path, remap={'/camera/camera_info': '/camera/image_raw'})

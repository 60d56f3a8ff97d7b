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
Signals end the node cleanly: exit 0 within 2 s, no traceback, also when a second one follows.

Ctrl-C under `ros2 launch` reaches the node twice (the terminal's process group, then launch
forwarding it); `docker stop` and systemd send SIGTERM, possibly after a SIGINT. The node runs
the plain way (`python -m lightglue_ros.node`, own process); signals come idle or while it is
matching frames that arrive over DDS, once or repeated until the process has exited;
the node's own Fast DDS shared-memory segment must be gone from /dev/shm afterwards.
"""

import os
import re
import signal
import time

from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
import pytest

# name: (first signal, repeated signal or None). A repeated signal is sent every 20 ms until
# the process has exited, so it also lands in every phase of the shutdown: joining the worker,
# destroying the node, and the interpreter's own exit (where Python restores default actions).
SIGNALS = {
    'sigint': (signal.SIGINT, None),
    'sigterm': (signal.SIGTERM, None),
    'sigint-repeated': (signal.SIGINT, signal.SIGINT),
    'sigint-then-sigterm-repeated': (signal.SIGINT, signal.SIGTERM),
}
REPEAT_PERIOD = 0.02


def own_shm_segments(pid: int) -> set:
    """
    Return the Fast DDS shared-memory segments a process owns (mapped from /dev/shm).

    Only the participant's own segment (fastdds_<16 hex digits>) counts: the port segments
    (fastdds_port<N>) are shared by every participant of the domain on this host.
    """
    with open(f'/proc/{pid}/maps') as maps:
        return set(re.findall(r'(/dev/shm/fastdds_[0-9a-f]{16})\s*$', maps.read(), re.M))


class FramePublisher(demo_ros.PrivateNode):
    """Publish a rendered camera's frames with their CameraInfo, one pair of topics."""

    def __init__(self) -> None:
        from lightglue_ros.ros.ros_image import numpy_to_image
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import Image
        super().__init__('frame_publisher')
        seq = samples.handheld_sequence(4, 'desk')
        self.images = [numpy_to_image(frame, 'rgb8') for frame in seq.frames]
        height, width = seq.frames[0].shape[:2]
        k = seq.K.reshape(-1).tolist()
        self.info = CameraInfo(width=width, height=height, distortion_model='plumb_bob',
                               d=[0.0] * 5, k=k, r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                               p=k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])
        self.image_pub = self.node.create_publisher(Image, 'image0', 10)
        self.info_pub = self.node.create_publisher(CameraInfo, 'camera_info0', 10)
        self.start()

    def publish(self, index: int, stamp_ns: int) -> None:
        """Publish frame `index % 4` stamped `stamp_ns`."""
        msg = self.images[index % len(self.images)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = self.info.header.frame_id = 'camera'
        self.info.header.stamp = msg.header.stamp
        self.info_pub.publish(self.info)
        self.image_pub.publish(msg)


@pytest.mark.parametrize('busy', [False, True], ids=['idle', 'matching'])
@pytest.mark.parametrize('name', list(SIGNALS))
def test_signals_end_the_node_cleanly(aliked_models, name, busy):
    node = demo_ros.start_node(['-p', f'model_dir:={aliked_models}'])
    recorder = demo_ros.OutputRecorder()
    publisher = FramePublisher() if busy else None
    try:
        assert recorder.wait_for_publisher(120), demo_ros.stop_node(node)
        if busy:  # frames keep coming; signal right after a match, i.e. while extracting
            index = 0
            while len(recorder.received['matches']) < 2 and index < 100:
                publisher.publish(index, (1 + index) * 100_000_000)
                index += 1
                time.sleep(0.1)
            assert recorder.received['matches'], demo_ros.stop_node(node)
            publisher.publish(index, (1 + index) * 100_000_000)
            time.sleep(0.05)
        segments = own_shm_segments(node.pid)
        assert segments, 'the node maps no Fast DDS segment of its own'
        first, repeated = SIGNALS[name]
        start = time.monotonic()
        node.send_signal(first)
        while repeated is not None and node.poll() is None and time.monotonic() - start < 10:
            time.sleep(REPEAT_PERIOD)
            try:
                node.send_signal(repeated)
            except ProcessLookupError:  # exited (and reaped) in between
                break
        node.wait(timeout=10)
        seconds = time.monotonic() - start
    finally:
        if publisher is not None:
            publisher.close()
        recorder.close()
        output = demo_ros.stop_node(node)
    print(f'{name} ({"matching" if busy else "idle"}): exit {node.returncode} in {seconds:.2f} s')
    assert node.returncode == 0, output
    assert seconds < 2.0, output
    assert 'Traceback' not in output, output
    assert 'shutting down' in output, output
    left = [path for path in segments if os.path.exists(path)]
    assert not left, f'shared memory left in /dev/shm: {left}'

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

"""The node's TF broadcast and diagnostics identity, in-process over real rclpy/Fast DDS."""

import sys
import time
import types

from conftest import wait_until
from lightglue_ros import messages
from lightglue_ros.tools import samples
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from test_node import _diag_values
from test_node import _image
from test_node import _info
from test_node import Harness


@pytest.fixture
def ros():
    harness = Harness()
    yield harness
    harness.close()


class StandInBroadcaster:
    """
    Stand-in for tf2_ros.TransformBroadcaster, which has no wheel on PyPI.

    It records what the node sends instead of publishing /tf; the node's decision (what goes
    to TF and when) is what is tested.
    """

    created = []

    def __init__(self, node) -> None:
        self.sent = []
        StandInBroadcaster.created.append(self)

    def sendTransform(self, msg) -> None:  # noqa: N802 - tf2_ros's name
        self.sent.append(msg)


@pytest.fixture
def stand_in_tf2(monkeypatch):
    module = types.ModuleType('tf2_ros')
    module.TransformBroadcaster = StandInBroadcaster
    monkeypatch.setitem(sys.modules, 'tf2_ros', module)
    StandInBroadcaster.created = []
    return StandInBroadcaster


def test_publish_tf_never_in_pair_mode(ros, aliked_models, stand_in_tf2):
    """Pair mode's translation is a unit direction: no TF broadcaster, whatever tf2_ros says."""
    node = ros.start(aliked_models, mode='pair', publish_tf=True)
    assert node._tf is None and stand_in_tf2.created == []


def test_publish_tf_stereo_only_with_a_metric_baseline(ros, aliked_models, stand_in_tf2):
    """Stereo with the baseline in CameraInfo P goes to TF in metres; without it, it does not."""
    baseline = 0.12
    seq = samples.camera_motion_sequence(2, step=(baseline, 0.0, 0.0), yaw_deg=0.0)
    h, w = seq.frames[0].shape[:2]
    fx = float(seq.K[0, 0])
    info0, info1 = _info(w, h, fx, 'left'), _info(w, h, fx, 'right')
    info1.p[3] = -fx * baseline
    ros.start(aliked_models, mode='stereo', publish_tf=True, sync_slop=0.01)
    [broadcaster] = stand_in_tf2.created
    ros.publish('/camera_info0', info0, CameraInfo)
    ros.publish('/camera_info1', info1, CameraInfo)
    ros.publish('/image0', _image(seq.frames[0], 'rgb8', 10.0, 'left'))
    ros.publish('/image1', _image(seq.frames[1], 'rgb8', 10.0, 'right'))
    ros.wait('pose', 1)
    [sent] = broadcaster.sent
    assert (sent.header.frame_id, sent.child_frame_id) == ('left', 'right_estimated')
    t = sent.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], [baseline, 0, 0], atol=0.01)
    info1.p[3] = 0.0  # no baseline: the pose has a unit-norm translation
    ros.publish('/camera_info1', info1, CameraInfo)
    time.sleep(0.5)  # the CameraInfo is cached before the next pair
    ros.publish('/image0', _image(seq.frames[0], 'rgb8', 11.0, 'left'))
    ros.publish('/image1', _image(seq.frames[1], 'rgb8', 11.0, 'right'))
    poses = ros.wait('pose', 2)
    assert len(poses) == 2 and len(broadcaster.sent) == 1
    assert abs(np.linalg.norm(messages.decode_pose(poses[1])['position']) - 1.0) < 1e-6
    time.sleep(0.5)
    assert 'publish_tf: not broadcast' in _diag_values(ros)['_message']


def test_diagnostics_name_the_device_and_the_model_set(ros, aliked_models):
    """hardware_id is the inference device (what DiagnosticStatus means by it); model_dir a key."""
    ros.start(aliked_models, mode='temporal')
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _diag_values(ros):
        time.sleep(0.1)
    with ros.lock:
        status = next(s for msg in ros.received['diagnostics'] for s in msg.status
                      if s.name.startswith('lightglue:'))
    assert status.hardware_id == 'openvino:CPU'
    assert {kv.key: kv.value for kv in status.values}['model_dir'] == str(aliked_models)


def test_bf16_on_a_cpu_without_it_is_warned(ros, aliked_models, monkeypatch, capfd):
    """Precision bf16 on a CPU without bf16 arithmetic: a warning saying to use f32."""
    from lightglue_ros.runtime import cpu
    zen3 = cpu.parse_cpuinfo('vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7R13\n'
                             'flags\t\t: fpu sse2 avx avx2 fma\n', openvino_bf16=True)
    monkeypatch.setattr(cpu, 'describe_cpu', lambda core=None: zen3)
    ros.start(aliked_models, mode='temporal', precision='bf16')
    assert wait_until(lambda: _diag_values(ros), 20)
    assert _diag_values(ros)['cpu'] == 'AMD EPYC 7R13, AVX2, no native bf16'
    err = capfd.readouterr().err
    assert 'precision bf16 asked, but this CPU (AMD EPYC 7R13, AVX2, no native bf16) has no ' \
        'bf16 arithmetic' in err, err

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
`lightglue-ros stress fuzz`: a storm of malformed messages against the node in its own process.

The node runs the plain way (temporal mode) and receives, over DDS, a seeded random mix of
valid frames, malformed images (unknown or wrong encodings, step / size / data-length
mismatches, zero and huge dimensions, truncated and empty data), undecodable CompressedImage
data, CameraInfo with non-finite, zero or negative intrinsics, a wrong number of distortion
coefficients, an unknown distortion model or the wrong size, and valid frames with zero,
repeated, backwards and far-future stamps. Afterwards a valid pair with a known homography must
be matched correctly. Reported: messages sent per kind, bad images sent vs frames the node
skipped, internal errors (bugs), whether the node survived and exited 0.

`lightglue-ros stress soak`: sustained overload. The node's capacity (pairs/s at 640x480 rgb8)
is measured first, then frames are published at `--overload` times that rate for `--minutes`
(one camera, or two with equal stamps in stereo mode). Reported: the node's RSS over time and
its growth after warm-up, latency from stamp to `~/matches` at the probe, drops by cause,
parameter service response times under load and the largest gap between /diagnostics messages.
"""

import json
import logging
from pathlib import Path
import random
import time

import cv2
from lightglue_ros.tools import demo_ros
from lightglue_ros.tools import samples
from lightglue_ros.tools.common import UsageError
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_TOPIC = '/stress/image_raw'
INFO_TOPIC = '/stress/camera_info'
SIZE = (320, 240)  # storm frames (width, height): small, so the node keeps up
BAD_IMAGES = ('unknown_encoding', 'wrong_encoding', 'step_too_small', 'height_mismatch',
              'zero_size', 'huge_size', 'truncated_data', 'empty_data')
BAD_COMPRESSED = ('garbage', 'truncated_jpeg', 'empty_data', 'unknown_format')
BAD_INFOS = ('nan_intrinsics', 'inf_intrinsics', 'zero_focal', 'negative_focal',
             'wrong_d_length', 'unknown_distortion', 'size_mismatch')
ODD_STAMPS = ('zero', 'repeated', 'backwards', 'far_future')
FAR_FUTURE_S = 2_000_000_000  # year 2033 (builtin_interfaces/Time sec is int32)
# Mix of a storm: (share, category).
MIX = ((0.3, 'valid'), (0.4, 'bad_image'), (0.15, 'bad_info'), (0.15, 'odd_stamp'))
# The node's queue holds 100 jobs (processing_queue_size): pause the storm at 50 waiting (its
# diagnostics come every 0.5 s, 25 messages at 50 Hz) until 10 are left.
BACKLOG_HIGH, BACKLOG_LOW = 50, 10


def add_stress_parser(subparsers) -> None:
    """Add `stress fuzz`."""
    p = subparsers.add_parser('stress', help='stress the node (own process): fuzz, soak')
    sub = p.add_subparsers(dest='stress_command', required=True)
    f = sub.add_parser('fuzz', help='publish malformed and valid messages, then a known pair')
    f.add_argument('--models', default='models/aliked', help='model set directory')
    f.add_argument('--messages', type=int, default=300, help='messages in the storm (per '
                   'transport)')
    f.add_argument('--seed', type=int, default=0, help='random seed (same seed, same storm)')
    f.add_argument('--transport', choices=('raw', 'compressed', 'both'), default='both',
                   help='image transport of the node')
    f.add_argument('--rate', type=float, default=50.0,
                   help='messages per second (paused while the node has a backlog)')
    f.add_argument('--json', type=Path, help='write the report here')
    f.set_defaults(func=run_stress)
    s = sub.add_parser('soak', help='measure capacity, then overload the node for minutes')
    s.add_argument('--models', default='models/aliked', help='model set directory')
    s.add_argument('--overload', type=float, default=2.0,
                   help='publishing rate as a multiple of the measured capacity (default 2)')
    s.add_argument('--minutes', type=float, default=5.0,
                   help='overload duration in minutes, fractions allowed (default 5)')
    s.add_argument('--mode', choices=('temporal', 'stereo'), default='temporal',
                   help='one camera (temporal) or two with equal stamps (stereo)')
    s.add_argument('--json', type=Path, help='write the report here')
    s.set_defaults(func=_run_soak)


def _run_soak(args) -> int:
    from lightglue_ros.tools.soak import run_soak_command
    return run_soak_command(args)


def camera_info(width: int, height: int, frame_id: str = 'camera'):
    """Return a valid pinhole CameraInfo for `width` x `height` images."""
    from sensor_msgs.msg import CameraInfo
    f = 0.9 * width
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob', d=[0.0] * 5,
                     k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0],
                     r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                     p=[f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0])
    msg.header.frame_id = frame_id
    return msg


def bad_image(kind: str, valid):
    """Return a copy of the rgb8 Image `valid` broken in the way `kind` names."""
    from sensor_msgs.msg import Image
    msg = Image(header=valid.header, height=valid.height, width=valid.width,
                encoding=valid.encoding, is_bigendian=0, step=valid.step, data=valid.data)
    if kind == 'unknown_encoding':
        msg.encoding = 'rgb9_weird'
    elif kind == 'wrong_encoding':
        msg.encoding = 'rgba8'  # 4 bytes per pixel: more than the rgb8 step holds
    elif kind == 'step_too_small':
        msg.step = valid.width * 3 - 1
    elif kind == 'height_mismatch':
        msg.height = valid.height + 7
    elif kind == 'zero_size':
        msg.width = msg.height = msg.step = 0
        msg.data = b''
    elif kind == 'huge_size':  # the header claims a 65535 x 65535 image
        msg.width = msg.height = 65535
        msg.step = 3 * 65535
    elif kind == 'truncated_data':
        msg.data = bytes(valid.data[:len(valid.data) // 2])
    elif kind == 'empty_data':
        msg.data = b''
    else:
        raise ValueError(f'unknown kind {kind}')
    return msg


def bad_compressed(kind: str, rng: random.Random, jpeg: bytes):
    """Return a CompressedImage that no decoder can read, broken as `kind` names."""
    from sensor_msgs.msg import CompressedImage
    garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
    data, fmt = {'garbage': (garbage, 'jpeg'), 'truncated_jpeg': (jpeg[:64], 'jpeg'),
                 'empty_data': (b'', 'png'), 'unknown_format': (garbage, 'tiff; weird')}[kind]
    return CompressedImage(format=fmt, data=data)


def bad_info(kind: str, width: int, height: int):
    """Return a CameraInfo broken as `kind` names."""
    msg = camera_info(width, height)
    k = list(msg.k)
    if kind == 'nan_intrinsics':
        k[0] = float('nan')
    elif kind == 'inf_intrinsics':
        k[4] = float('inf')
    elif kind == 'zero_focal':
        k[0] = k[4] = 0.0
    elif kind == 'negative_focal':
        k[0] = -k[0]
    elif kind == 'wrong_d_length':
        msg.d = [0.1, 0.01, 0.0]
    elif kind == 'unknown_distortion':
        msg.distortion_model = 'fisheye_of_the_future'
        msg.d = [0.3] * 7
    elif kind == 'size_mismatch':
        msg.width, msg.height = width * 2, height * 2
    else:
        raise ValueError(f'unknown kind {kind}')
    msg.k = k
    return msg


class StormProbe(demo_ros.OutputRecorder):
    """Publishers of one camera (raw or compressed) and the node's outputs."""

    def __init__(self, compressed: bool) -> None:
        from rclpy.qos import QoSProfile
        from rclpy.qos import ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import CompressedImage
        from sensor_msgs.msg import Image
        super().__init__()
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.topic = IMAGE_TOPIC + ('/compressed' if compressed else '')
        self.image_pub = self.node.create_publisher(
            CompressedImage if compressed else Image, self.topic, qos)
        self.info_pub = self.node.create_publisher(CameraInfo, INFO_TOPIC, qos)

    def wait_for_subscriber(self, process, timeout: float) -> None:
        """Wait until the node subscribes to the images (it exits: UsageError)."""
        deadline = time.monotonic() + timeout
        while not self.image_pub.get_subscription_count():
            if process.poll() is not None or time.monotonic() > deadline:
                raise UsageError('the node did not subscribe to the images:\n'
                                 + demo_ros.stop_node(process))
            time.sleep(0.05)
        time.sleep(0.5)  # let the node's side match this publisher as well

    def send(self, image, info, stamp_ns: int) -> None:
        """Publish CameraInfo (if any), then the image, both stamped `stamp_ns`."""
        from lightglue_ros.ros import messages
        stamp = messages.ns_to_stamp(stamp_ns)
        if info is not None:
            info.header.stamp = stamp
            self.info_pub.publish(info)
        image.header.stamp = stamp
        image.header.frame_id = 'camera'
        self.image_pub.publish(image)


class Storm:
    """A seeded sequence of (category, kind, image, info, stamp) to publish."""

    def __init__(self, seed: int, compressed: bool) -> None:
        self.rng = random.Random(seed)
        self.compressed = compressed
        photo = cv2.resize(samples.photo('astronaut'), (SIZE[0] + 16, SIZE[1]))
        self.frames = [np.ascontiguousarray(photo[:, x:x + SIZE[0]]) for x in range(0, 16, 2)]
        self.jpeg = bytes(cv2.imencode('.jpg', self.frames[0][..., ::-1])[1])
        self.stamp_ns = 1_000_000_000
        self.index = 0

    def valid_image(self):
        """Return the next frame of a slow pan as an Image (or JPEG CompressedImage)."""
        from lightglue_ros.ros.ros_image import numpy_to_image
        from sensor_msgs.msg import CompressedImage
        frame = self.frames[self.index % len(self.frames)]
        self.index += 1
        if self.compressed:
            data = cv2.imencode('.jpg', frame[..., ::-1])[1]
            return CompressedImage(format='jpeg', data=bytes(data))
        return numpy_to_image(frame, 'rgb8')

    def next_message(self) -> tuple:
        """Return (category, kind, image, info or None, stamp_ns) of the next message."""
        # The first message is a valid frame: a CameraInfo is judged against the image size.
        pick, total = (self.rng.random() if self.index else 0.0), 0.0
        category = MIX[-1][1]
        for share, name in MIX:
            total += share
            if pick < total:
                category = name
                break
        self.stamp_ns += 100_000_000
        stamp, info, kind = self.stamp_ns, camera_info(*SIZE), 'frame'
        image = self.valid_image()
        if category == 'bad_image':
            if self.compressed:
                kind = self.rng.choice(BAD_COMPRESSED)
                image = bad_compressed(kind, self.rng, self.jpeg)
            else:
                kind = self.rng.choice(BAD_IMAGES)
                image = bad_image(kind, image)
        elif category == 'bad_info':
            kind = self.rng.choice(BAD_INFOS)
            info = bad_info(kind, *SIZE)
        elif category == 'odd_stamp':
            kind = self.rng.choice(ODD_STAMPS)
            stamp = {'zero': 0, 'repeated': self.stamp_ns - 100_000_000,
                     'backwards': self.stamp_ns - 5_000_000_000,
                     'far_future': FAR_FUTURE_S * 1_000_000_000}[kind]
        return category, kind, image, info, stamp


def _wait_for_backlog(probe: StormProbe, timeout: float) -> float:
    """
    Pause while the node's queue fills up; return the seconds paused.

    The storm is about malformed input, not load (that is `stress soak`): a frame dropped from
    a full queue would make the count of rejected frames incomparable with the bad ones sent.
    """
    if int(probe.diagnostics().get('queue_length', 0)) < BACKLOG_HIGH:
        return 0.0
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        count = len(probe.received['diagnostics'])
        probe.wait('diagnostics', count + 1, 5.0)
        if int(probe.diagnostics().get('queue_length', 0)) <= BACKLOG_LOW:
            break
    return time.monotonic() - start


def _settle(probe: StormProbe, images_sent: int, timeout: float) -> dict:
    """Wait until the node has received and worked off every image; return its diagnostics."""
    deadline = time.monotonic() + timeout
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        values = probe.diagnostics()
        done = (values.get('frames_received'), values.get('pairs_processed'),
                values.get('frames_skipped'))
        if done != last:
            last, stable_since = done, time.monotonic()
        elif (values and int(values['frames_received']) >= images_sent
              and time.monotonic() - stable_since > 2.0):
            return values
        time.sleep(0.1)
    return probe.diagnostics()


def _final_pair(probe: StormProbe, compressed: bool, timeout: float) -> dict:
    """Publish a photo and a known warp of it (a new sequence); check the matches."""
    from lightglue_ros import messages
    from lightglue_ros.ros.ros_image import numpy_to_image
    from sensor_msgs.msg import CompressedImage
    image0, image1, homography = samples.warped_pair('astronaut')
    base = (FAR_FUTURE_S + 100) * 1_000_000_000  # after every storm stamp
    height, width = image0.shape[:2]
    for index, image in enumerate((image0, image1)):
        if compressed:  # PNG: lossless, so the check is about the node, not JPEG
            msg = CompressedImage(format='png',
                                  data=bytes(cv2.imencode('.png', image[..., ::-1])[1]))
        else:
            msg = numpy_to_image(image, 'rgb8')
        probe.send(msg, camera_info(width, height), base + index * 100_000_000)
        time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in list(probe.received['matches']):
            out = messages.decode_matches(msg)
            if out['stamp1_ns'] == base + 100_000_000 and out['stamp0_ns'] == base:
                err = samples.reprojection_error(out['keypoints0'], out['keypoints1'],
                                                 homography)
                return {'matches': int(len(err)),
                        'within_3px': float(np.mean(err < 3.0)) if len(err) else 0.0}
        time.sleep(0.1)
    return {'matches': 0, 'within_3px': 0.0}


def run_fuzz(models: Path, messages: int, seed: int, compressed: bool, rate: float = 50.0,
             timeout: float = 120.0) -> dict:
    """
    Run one storm against a fresh node; return the report (see the module docstring).

    :return: dict with transport, seed, messages_sent, sent (per category and kind),
        bad_images_sent, the node's diagnostics after the storm, final_pair (matches,
        within_3px), node_alive_after_storm, node_exit_code, passed and failures.
    """
    transport = 'compressed' if compressed else 'raw'
    node = demo_ros.start_node([
        '-p', f'model_dir:={models}', '-p', 'mode:=temporal',
        '-p', f'image_transport:={transport}', '-p', 'image_reliability:=reliable',
        '-p', 'image_qos_depth:=1000', '-p', 'processing_queue_size:=100',
        '-p', 'diagnostics_period:=0.5', '-r', f'image0:={IMAGE_TOPIC}',
        '-r', f'camera_info0:={INFO_TOPIC}'])
    probe, storm = StormProbe(compressed), Storm(seed, compressed)
    sent, bad_images, bad_infos, output = {}, 0, 0, ''
    try:
        probe.wait_for_subscriber(node, timeout)
        paused = 0.0
        for _ in range(messages):
            paused += _wait_for_backlog(probe, timeout)
            category, kind, image, info, stamp = storm.next_message()
            probe.send(image, info, stamp)
            key = f'{category}:{kind}'
            sent[key] = sent.get(key, 0) + 1
            bad_images += category == 'bad_image'
            bad_infos += category == 'bad_info'
            time.sleep(1.0 / rate)
        diagnostics = _settle(probe, messages, timeout)
        alive = node.poll() is None
        final = _final_pair(probe, compressed, timeout) if alive else {}
    finally:
        probe.close()
        output = demo_ros.stop_node(node)
    skipped = int(diagnostics.get('frames_skipped', -1))
    report = {
        'transport': transport, 'seed': seed, 'messages_sent': messages, 'sent': sent,
        'bad_images_sent': bad_images, 'bad_infos_sent': bad_infos,
        'paused_s': round(paused, 1),
        'diagnostics': diagnostics, 'final_pair': final,
        'node_alive_after_storm': alive, 'node_exit_code': node.returncode,
    }
    failures = []
    if not alive or node.returncode != 0:
        failures.append(f'node crashed or exited {node.returncode}:\n{output[-3000:]}')
    if int(diagnostics.get('internal_errors', -1)) != 0:
        failures.append(f'internal errors: {diagnostics.get("internal_errors")} (see output)')
    lost = int(diagnostics.get('dropped_queue', 0)) + int(diagnostics.get(
        'frames_lost_transport', 0))
    if int(diagnostics.get('frames_received', -1)) != messages or lost:
        failures.append(f'{diagnostics.get("frames_received")} of {messages} images received, '
                        f'{lost} dropped or lost: the reject count cannot be compared')
    elif skipped != bad_images:
        failures.append(f'{bad_images} bad images sent but {skipped} frames skipped')
    infos_rejected = int(diagnostics.get('camera_info_rejected', -1))
    if infos_rejected != bad_infos:
        failures.append(f'{bad_infos} bad CameraInfo sent but {infos_rejected} rejected')
    if final.get('matches', 0) < 50 or final.get('within_3px', 0.0) < 0.9:
        failures.append(f'the valid pair after the storm was not matched right: {final}')
    report['passed'], report['failures'] = not failures, failures
    report['node_output_tail'] = output[-2000:]
    return report


def format_report(reports: list) -> str:
    """Return a table: one row per storm."""
    rows = [('transport', 'seed', 'sent', 'bad images', 'skipped', 'bad infos', 'rejected',
             'internal', 'pairs',
             'final matches', 'within 3 px', 'exit', 'result')]
    for r in reports:
        d, f = r['diagnostics'], r['final_pair']
        rows.append((r['transport'], str(r['seed']), str(r['messages_sent']),
                     str(r['bad_images_sent']), str(d.get('frames_skipped', 'n/a')),
                     str(r['bad_infos_sent']), str(d.get('camera_info_rejected', 'n/a')),
                     str(d.get('internal_errors', 'n/a')), str(d.get('pairs_processed', 'n/a')),
                     str(f.get('matches', 'n/a')), f'{100 * f.get("within_3px", 0):.1f}%',
                     str(r['node_exit_code']), 'pass' if r['passed'] else 'FAIL'))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)


def run_stress(args) -> int:
    """Run `lightglue-ros stress fuzz`; exit code 1 when a storm fails."""
    import os
    if not Path(args.models).is_dir():
        raise UsageError(f'no model set directory {args.models}; run `lightglue-ros convert`')
    if args.messages < 1 or args.rate <= 0:
        raise UsageError('--messages and --rate must be positive')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    transports = ('raw', 'compressed') if args.transport == 'both' else (args.transport,)
    reports = []
    for transport in transports:
        logger.info('storm of %d messages (seed %d, %s transport)', args.messages, args.seed,
                    transport)
        reports.append(run_fuzz(Path(args.models).resolve(), args.messages, args.seed,
                                transport == 'compressed', args.rate))
    print(format_report(reports))
    for report in reports:
        for failure in report['failures']:
            print(f'{report["transport"]}: {failure}')
    if args.json:
        args.json.write_text(json.dumps(summary(reports), indent=1) + '\n')
    return 0 if all(r['passed'] for r in reports) else 1


def summary(reports: list) -> dict:
    """
    Return the JSON contract of `stress fuzz`: totals over the storms, then each storm.

    bad_messages: malformed images and CameraInfo sent (odd stamps are valid frames);
    rejected: what the node counted (frames_skipped + camera_info_rejected); crashes: storms
    after which the node was dead or did not exit 0; valid_pair_ok: every known pair after a
    storm was matched right.
    """
    def total(key):
        return sum(int(r['diagnostics'].get(key, 0)) for r in reports)

    return {
        'messages': sum(r['messages_sent'] for r in reports),
        'bad_messages': sum(r['bad_images_sent'] + r['bad_infos_sent'] for r in reports),
        'rejected': total('frames_skipped') + total('camera_info_rejected'),
        'internal_errors': total('internal_errors'),
        'crashes': sum(not r['node_alive_after_storm'] or r['node_exit_code'] != 0
                       for r in reports),
        'valid_pair_ok': all(r['final_pair'].get('matches', 0) >= 50
                             and r['final_pair'].get('within_3px', 0.0) >= 0.9
                             for r in reports),
        'passed': all(r['passed'] for r in reports),
        'storms': reports,
    }

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
Camera inputs the way drivers publish them: QoS matched to the publishers, losses counted.

`ImageInput` owns one image subscription. With reliability `auto` it subscribes once a
publisher is seen, with the reliability the publishers offer (reliable when all of them are
reliable, else best effort: what `ros2 bag record` does), and subscribes again when that
changes. A best-effort subscription to a reliable publisher loses every frame that Fast DDS
cannot deliver in one piece (frames larger than its shared-memory segment), so `auto` never
picks it for a reliable publisher. Samples lost in transport are counted through rclpy's
`message_lost` event.

`camera_info_topic` follows the image_transport convention: CameraInfo is the image topic's
sibling (`/cam/image_raw` -> `/cam/camera_info`) unless remapped explicitly.
"""

import threading

from lightglue_ros.ros.bag import sibling_topic
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy

RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}
# CameraInfo is small and only its latest value is used: best effort connects to reliable and
# sensor-data (best effort, REP 2003) publishers alike.
CAMERA_INFO_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def offered_reliability(endpoints) -> str | None:
    """
    Return the reliability to request from these publishers, as `ros2 bag record` decides.

    :param endpoints: rclpy TopicEndpointInfo of the publishers of one topic.
    :return: 'reliable' when every publisher is reliable, 'best_effort' when any is not,
        None when there is no publisher.
    """
    if not endpoints:
        return None
    reliable = all(e.qos_profile.reliability == ReliabilityPolicy.RELIABLE for e in endpoints)
    return 'reliable' if reliable else 'best_effort'


def camera_info_topic(node, camera: int, image_topic: str) -> str:
    """
    Return the CameraInfo topic of camera `camera` whose (resolved) image topic is given.

    An explicit remap of ``camera_info<camera>`` wins; else, when the image topic was remapped
    (``image<camera>:=/cam/image_raw``), its sibling ``/cam/camera_info``; else the plain
    resolved name ``camera_info<camera>``.
    """
    name = f'camera_info{camera}'
    resolved = node.resolve_topic_name(name)
    if resolved != node.resolve_topic_name(name, only_expand=True):
        return resolved
    image_name = f'image{camera}'
    if image_topic != node.resolve_topic_name(image_name, only_expand=True):
        return sibling_topic(image_topic)
    return resolved


class ImageInput:
    """
    One image subscription with `auto`, `reliable` or `best_effort` reliability.

    :param node: the owning rclpy node.
    :param topic: resolved topic name.
    :param msg_type: Image or CompressedImage.
    :param callback: called with each message (executor thread).
    :param reliability: 'auto', 'reliable' or 'best_effort'.
    :param depth: history depth.
    :param on_lost: called with the number of newly lost samples (executor thread).
    """

    def __init__(self, node, topic: str, msg_type, callback, reliability: str, depth: int,
                 on_lost) -> None:
        self.node, self.topic, self.msg_type = node, topic, msg_type
        self.callback, self.depth, self.on_lost = callback, depth, on_lost
        self.mode = reliability
        self.subscription = None
        self.in_use = None  # reliability of the current subscription
        self.lost = 0
        self._lock = threading.Lock()
        if reliability != 'auto':
            self._subscribe(reliability, 'set by the image_reliability parameter')
        else:
            self.update()

    def describe(self) -> str:
        """Return the reliability in use for diagnostics."""
        if self.in_use is None:
            return 'waiting for a publisher'
        return self.in_use + (' (auto)' if self.mode == 'auto' else '')

    def update(self) -> None:
        """With `auto`: (re)subscribe when the publishers' offered reliability changed."""
        if self.mode != 'auto':
            return
        endpoints = self.node.get_publishers_info_by_topic(self.topic)
        wanted = offered_reliability(endpoints)
        if wanted is None or wanted == self.in_use:
            return  # no publisher (keep what we have) or nothing changed
        self._subscribe(wanted, f'{len(endpoints)} publisher(s) offer '
                        f'{"reliable" if wanted == "reliable" else "best effort (or mixed)"}')

    def close(self) -> None:
        """Destroy the subscription (if any); `update` subscribes again."""
        if self.subscription is not None:
            self.node.destroy_subscription(self.subscription)
            self.subscription = None
            self.in_use = None

    def _subscribe(self, reliability: str, why: str) -> None:
        events = SubscriptionEventCallbacks(message_lost=self._lost_callback)
        qos = QoSProfile(depth=self.depth, reliability=RELIABILITY[reliability])
        old = self.subscription
        self.subscription = self.node.create_subscription(
            self.msg_type, self.topic, self.callback, qos, event_callbacks=events)
        if old is not None:
            self.node.destroy_subscription(old)
        self.in_use = reliability
        self.node.get_logger().info(f'{self.topic}: subscribing {reliability} ({why})')

    def _lost_callback(self, info) -> None:
        change = int(info.total_count_change)
        if change > 0:
            with self._lock:
                self.lost += change
            self.on_lost(self, change)

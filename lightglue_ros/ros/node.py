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
The `lightglue` node: synchronized images in, matches and relative pose out.

Run it with ``ros2 run lightglue_ros matcher_node --ros-args --params-file config/matcher.yaml``
or ``python -m lightglue_ros.node --ros-args --params-file config/matcher.yaml``.

Subscription callbacks only hand messages to a bounded latest-wins queue; one worker thread
decodes, extracts, matches, estimates the pose and publishes, so the executor never blocks on
inference. A bad message is reported (throttled warning + diagnostics) and skipped.
"""

import functools
import signal
import threading
import time
import traceback

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from lightglue_ros import geometry
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.camera import stereo_baseline
from lightglue_ros.ros import inputs
from lightglue_ros.ros import messages
from lightglue_ros.ros import params
from lightglue_ros.ros.frames import Frame
from lightglue_ros.ros.frames import LatestQueue
from lightglue_ros.ros.frames import Stats
from lightglue_ros.ros.ros_image import compressed_to_numpy
from lightglue_ros.ros.ros_image import image_to_numpy
from lightglue_ros.ros.ros_image import numpy_to_image
from lightglue_ros.ros.sync import make_synchronizer
from lightglue_ros.ros.sync import stamp_ns
from lightglue_ros.runtime.refine import refine_matches
import numpy as np
from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.clock import Clock
from rclpy.clock import ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

NODE_NAME = 'lightglue'
WARN_PERIOD = 5.0  # seconds between repeats of the same warning
SPIN_SLICE = 0.1  # seconds the executor waits before the main thread checks for a stop signal
# seconds between checks of the image publishers' QoS (image_reliability auto)
QOS_CHECK_PERIOD = 0.1


def _descriptor(param: params.Param, read_only: bool) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=param.description,
                               read_only=read_only and not param.live)
    if param.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(param.choices)
    if param.low is not None:
        low = min(param.low, param.off) if param.off is not None else param.low
        if isinstance(param.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(param.high), step=0.0)]
        else:
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(param.high),
                                               step=1)]
        if param.off is not None:
            desc.additional_constraints = f'{param.off:g} = off/default'
    return desc


class MatcherCore:
    """
    What the plain and the managed `lightglue` node share: phases, callbacks and the worker.

    A mixin for an rclpy `Node` or `LifecycleNode`. The phases follow the ROS 2 lifecycle:
    `_configure` reads and checks the parameters, loads the model set and creates the
    publishers; `_activate` creates the synchronizer, the image and CameraInfo subscriptions,
    the timers and the worker; `_deactivate` and `_cleanup` undo them (each is a no-op when
    there is nothing to undo). The plain node runs `_configure` and `_activate` in its
    constructor; the managed node runs each in its transition callback.
    """

    def _init_core(self) -> None:
        """Set the state of a node that has loaded nothing yet (call once, after Node init)."""
        self.conf = None  # the parameters read at configure; None while unconfigured
        self.mode, self.rectified = None, False
        self.stats = Stats()
        self._lock = threading.Lock()
        self._live_dirty = True
        self._infos, self._info_count = {}, {}
        self._prev = None
        self.engine = self.pipeline = None
        self.matches_pub = self.pose_pub = self.debug_pub = self.diag_pub = None
        self._tf = None
        self.queue = self._worker = self._sync = None
        self.inputs, self.info_topics = [], []
        self._info_subscriptions, self._core_timers = [], []

    def _declare_parameters(self, read_only: bool) -> None:
        """Declare one ROS parameter per table entry; `read_only`: restart-only ones are."""
        for param in params.PARAMETERS:
            self.declare_parameter(param.name, param.default, _descriptor(param, read_only))

    def _create_output(self, msg_type, topic: str, depth: int):
        """Create an output publisher (the managed node makes lifecycle publishers)."""
        return self.create_publisher(msg_type, topic, depth)

    def _destroy_output(self, publisher) -> None:
        """Destroy a publisher made by `_create_output`."""
        self.destroy_publisher(publisher)

    # -- phases ------------------------------------------------------------------------------
    def _configure(self) -> None:
        """
        Read and check the parameters, load the model set and create the publishers.

        :raises ValueError: for invalid parameters or a model set that cannot be loaded.
        """
        conf = {p.name: self.get_parameter(p.name).value for p in params.PARAMETERS}
        errors = [e for e in (params.check(k, v) for k, v in conf.items()) if e]
        if errors:
            raise ValueError('invalid parameters: ' + '; '.join(errors))
        with self._lock:
            self.conf = conf
            self._live_dirty = True
        self.mode = conf['mode']
        self._infos, self._info_count = {}, {}
        self.rectified = conf['image_type'] == 'rectified' or (
            conf['image_type'] == 'auto' and self.mode == 'stereo')
        self._load_pipeline()
        self.matches_pub = self._create_output(PointCloud2, '~/matches', 10)
        self.pose_pub = self._create_output(PoseWithCovarianceStamped, '~/pose', 10)
        self.debug_pub = self._create_output(Image, '~/debug_image', 2)
        self.diag_pub = self._create_output(DiagnosticArray, '/diagnostics', 10)
        self._tf = self._make_tf_broadcaster()

    def _activate(self) -> None:
        """Create the synchronizer, subscriptions and timers, then start the worker."""
        conf = self.conf
        self.stats = Stats()  # counters since activation, as the queue's
        self._prev = None  # temporal: the first frame after activation starts a sequence
        self.queue = LatestQueue(conf['processing_queue_size'])
        cameras = 1 if self.mode == 'temporal' else 2
        self._sync = None
        if cameras == 2:
            self._sync = make_synchronizer(2, conf['sync_queue_size'], conf['sync_slop'],
                                           self.pair_callback)
        compressed = conf['image_transport'] == 'compressed'
        self.info_topics, self.inputs = [], []
        for camera in range(cameras):
            base = self.resolve_topic_name(f'image{camera}')
            topic = base + '/compressed' if compressed else base
            self.inputs.append(inputs.ImageInput(
                self, topic, CompressedImage if compressed else Image,
                functools.partial(self.image_callback, camera), conf['image_reliability'],
                conf['image_qos_depth'], self.lost_callback))
            self.info_topics.append(inputs.camera_info_topic(self, camera, base))
            self._info_subscriptions.append(self.create_subscription(
                CameraInfo, self.info_topics[camera],
                functools.partial(self.camera_info_callback, camera), inputs.CAMERA_INFO_QOS))
        # Steady clock: with use_sim_time a ROS-time timer waits for /clock, and a bag player
        # waits for our subscription before it publishes /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if conf['image_reliability'] == 'auto':
            self._core_timers.append(self.create_timer(QOS_CHECK_PERIOD,
                                                       self.qos_check_callback, clock=steady))
        self._core_timers.append(self.create_timer(conf['diagnostics_period'],
                                                   self.diagnostics_callback, clock=steady))
        self._worker = threading.Thread(target=self._work, name='lightglue_worker')
        self._worker.start()

    def _deactivate(self) -> None:
        """Remove the timers and subscriptions, then stop the worker (its current job ends)."""
        while self._core_timers:
            self.destroy_timer(self._core_timers.pop())
        for image_input in self.inputs:
            image_input.close()
        while self._info_subscriptions:
            self.destroy_subscription(self._info_subscriptions.pop())
        self._stop_worker()
        self._sync = None

    def _cleanup(self) -> None:
        """Release the publishers and the model set (engine and pipeline)."""
        for name in ('matches_pub', 'pose_pub', 'debug_pub', 'diag_pub'):
            publisher = getattr(self, name)
            if publisher is not None:
                self._destroy_output(publisher)
                setattr(self, name, None)
        if self._tf is not None:  # tf2_ros.TransformBroadcaster keeps its publisher as pub_tf
            self.destroy_publisher(self._tf.pub_tf)
            self._tf = None
        with self._lock:
            self.conf = None
        self.engine = self.pipeline = None

    def _stop_worker(self) -> None:
        """Close the queue and join the worker (finishing its current job)."""
        # getattr: also called by rclpy.try_shutdown on a node whose constructor failed early.
        queue, worker = getattr(self, 'queue', None), getattr(self, '_worker', None)
        if queue is not None:
            queue.close()
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            worker.join()
        self._worker = None

    def _model_summary(self) -> str:
        return (f'model set {self.conf["model_dir"]} ({self.engine.name}) on '
                f'{self.engine.device} {self.engine.precision}')

    def _inputs_summary(self) -> str:
        return (f'{self.mode} mode on {", ".join(i.topic for i in self.inputs)} '
                f'({"rectified" if self.rectified else "raw"} images, CameraInfo on '
                f'{", ".join(self.info_topics)})')

    # -- setup -------------------------------------------------------------------------------
    def _load_pipeline(self) -> None:
        from lightglue_ros.runtime.engine import Engine
        from lightglue_ros.runtime.pipeline import Pipeline
        conf = self.conf
        self.engine = Engine(conf['model_dir'], device=conf['device'],
                             precision=conf['precision'], cache_dir=conf['cache_dir'] or None,
                             threads=conf['threads'] or None)
        self._default_max_keypoints = self.engine.extractor.conf.get('max_keypoints')
        # No feature cache: every frame is extracted once anyway (temporal mode keeps the
        # previous frame's features), and keys like stamps can repeat across new images.
        self.pipeline = Pipeline(self.engine)

    def _make_tf_broadcaster(self):
        if not self.conf['publish_tf']:
            return None
        if self.mode == 'temporal':
            self.get_logger().warning('publish_tf is ignored in temporal mode: a transform '
                                      'between two times of one frame does not fit TF')
            return None
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            self.get_logger().warning('publish_tf needs tf2_ros (a ROS install); not '
                                      'broadcasting, ~/pose is published as usual')
            return None
        return TransformBroadcaster(self)

    # -- parameters --------------------------------------------------------------------------
    def parameters_callback(self, changes) -> SetParametersResult:
        """Validate parameter changes (read-only ones are rejected by rclpy itself)."""
        for change in changes:
            error = params.check(change.name, change.value)
            if error:
                return SetParametersResult(successful=False, reason=error)
        return SetParametersResult(successful=True)

    def post_parameters_callback(self, changes) -> None:
        """Hand accepted live changes to the worker (applied before its next job)."""
        with self._lock:
            if self.conf is None:  # unconfigured: configure reads every parameter
                return
            for change in changes:
                if change.name in params.BY_NAME:
                    self.conf[change.name] = change.value
            self._live_dirty = True

    def _apply_live(self) -> dict:
        """Return a snapshot of the configuration, pushing live changes into the engine."""
        with self._lock:
            conf = dict(self.conf)
            dirty, self._live_dirty = self._live_dirty, False
        if dirty:
            matcher = self.engine.matcher
            matcher.depth_confidence = float(conf['depth_confidence'])
            matcher.width_confidence = float(conf['width_confidence'])
            matcher.filter_threshold = float(conf['score_threshold'])
            self.engine.extractor.conf['max_keypoints'] = (conf['max_keypoints']
                                                           or self._default_max_keypoints)
            # -1: the model set's long side, for larger images only (never upscales).
            default = conf['resize'] == -1
            self.pipeline.resize = (self.engine.manifest['extractor'].get('resize') if default
                                    else conf['resize'])
            self.pipeline.upscale = not default
        return conf

    # -- callbacks (executor thread: enqueue only) --------------------------------------------
    def image_callback(self, camera: int, msg) -> None:
        """Count the frame and queue it (temporal) or hand it to the synchronizer."""
        with self.stats.lock:
            self.stats.inputs.append(time.monotonic())
            self.stats.input_count += 1
        if self._sync is None:
            self.queue.put((msg,))
        else:
            self._sync.add(camera, msg)

    def qos_check_callback(self) -> None:
        """Follow the image publishers' reliability (image_reliability auto)."""
        for image_input in self.inputs:
            image_input.update()

    def lost_callback(self, image_input: inputs.ImageInput, count: int) -> None:
        """Count samples lost in transport and say what cures it."""
        with self.stats.lock:
            self.stats.lost += count
        self.warn('transport', f'{image_input.lost} frame(s) on {image_input.topic} lost in '
                  f'transport (subscription {image_input.in_use}): large frames need a '
                  'reliable publisher and subscription (image_reliability auto or reliable), '
                  'or the Fast DDS profile config/fastdds_profile.xml exported as '
                  'FASTDDS_DEFAULT_PROFILES_FILE in the publishing process', on_change=False)

    def pair_callback(self, msg0, msg1) -> None:
        """Queue a synchronized pair."""
        self.queue.put((msg0, msg1))

    def camera_info_callback(self, camera: int, msg: CameraInfo) -> None:
        """Cache the latest CameraInfo of a camera (not synchronized with the images)."""
        with self._lock:
            self._infos[camera] = msg
            self._info_count[camera] = self._info_count.get(camera, 0) + 1

    # -- worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            try:
                self.process(job)
            except ValueError as exc:  # bad input: report and go on with the next frame
                self.warn('input', str(exc))
            except Exception as exc:  # a bug must not stop the node either
                self.warn('internal', f'{type(exc).__name__}: {exc}',
                          detail=traceback.format_exc())

    def warn(self, key: str, text: str, detail: str | None = None,
             on_change: bool = True) -> None:
        """
        Record a warning for diagnostics; log it at most every `WARN_PERIOD` s per key.

        :param on_change: also log at once when the text differs from the last one logged
            (False for texts that carry a running count).
        """
        now = time.monotonic()
        with self.stats.lock:
            logged = self.stats.logged.get(key)
            self.stats.warnings[key] = (now, text)
            self.stats.skipped += key in ('input', 'internal')
            log = (logged is None or now - logged[0] >= WARN_PERIOD
                   or (on_change and logged[1] != text))
            if log:
                self.stats.logged[key] = (now, text)
        if log:
            self.get_logger().warning(text if detail is None else f'{text}\n{detail}')

    def _decode(self, camera: int, msg) -> Frame:
        where = self.inputs[camera].topic
        try:
            image = compressed_to_numpy(msg) if isinstance(msg, CompressedImage) \
                else image_to_numpy(msg)
        except ValueError as exc:
            raise ValueError(f'skipping a frame on {where}: {exc}') from None
        stamp = stamp_ns(msg)
        if stamp is None:
            raise ValueError(f'skipping a frame on {where}: no header stamp')
        return Frame(camera, msg, image, stamp, msg.header.frame_id, {})

    def process(self, job: tuple) -> None:
        """Decode, extract, match, estimate the pose and publish one frame or pair."""
        started = time.perf_counter()
        conf = self._apply_live()
        frames = [self._decode(camera, msg) for camera, msg in enumerate(job)]
        for frame in frames:
            frame.features = self.pipeline.features(frame.image)
        if self.mode == 'temporal':
            previous, self._prev = self._prev, frames[0]
            if previous is None:
                return
            if previous.stamp_ns > frames[0].stamp_ns:
                self.warn('stamps', 'image0 stamps went backwards '
                          f'({previous.stamp_ns} -> {frames[0].stamp_ns} ns): restarting the '
                          'sequence (a replayed bag looping?)')
                return
            if previous.stamp_ns == frames[0].stamp_ns:
                self.warn('stamps', f'image0 stamps repeat ({previous.stamp_ns} ns): matching '
                          'frames in arrival order; the driver should stamp each frame')
            frames = [previous, frames[0]]
        frame0, frame1 = frames
        feats0, feats1 = frame0.features, frame1.features
        result = self.engine.match(feats0, feats0['image_size'], feats1, feats1['image_size'])
        kpts1, refined = feats1['keypoints'], None
        if conf['refine_matches'] and len(result['matches']):
            m = result['matches']
            out = refine_matches(frame0.image, frame1.image, feats0['keypoints'][m[:, 0]],
                                 kpts1[m[:, 1]])
            kpts1 = kpts1.copy()  # the cached features of frame 1 stay unrefined
            kpts1[m[:, 1]] = out.kpts1
            refined = int(out.refined.sum())
        stamp0, stamp1 = frame0.msg.header.stamp, frame1.msg.header.stamp
        frame_id = frame0.frame_id or self._info_frame(0)
        self.matches_pub.publish(messages.encode_matches(
            feats0['keypoints'], kpts1, result['matches'], result['scores'],
            stamp0, stamp1, frame_id))
        pose, published = self._pose(conf, frames, result, kpts1, stamp1, frame_id)
        if conf['publish_debug_image'] or self.debug_pub.get_subscription_count():
            self._publish_debug(frames, result, kpts1, stamp1, frame_id)
        now_ns = self.get_clock().now().nanoseconds
        with self.stats.lock:
            self.stats.processed.append(time.monotonic())
            self.stats.processed_count += 1
            self.stats.poses += published
            self.stats.last = {
                'stop_layer': int(result['stop_layer']), 'matches': len(result['matches']),
                'refined_matches': 'off' if refined is None else refined,
                'keypoints': f'{len(feats0["keypoints"])} / {len(feats1["keypoints"])}',
                'inliers': pose.n_inliers if pose is not None else 0,
                'pose': 'off' if pose is None else (pose.model if pose.ok else pose.reason),
                'processing_ms': (time.perf_counter() - started) * 1e3,
                'latency_ms': (now_ns - messages.stamp_to_ns(stamp1)) / 1e6,
                'match_ms': result['timings_ms']['total'],
                'baseline_angle_deg': getattr(pose, 'baseline_angle_deg', None),
            }

    def _info_frame(self, camera: int) -> str:
        with self._lock:
            info = self._infos.get(camera)
        return info.header.frame_id if info is not None else ''

    def _camera(self, camera: int, frame: Frame) -> CameraModel:
        with self._lock:
            info = self._infos.get(camera)
        if info is None:
            raise ValueError(f'no CameraInfo received on {self.info_topics[camera]} yet')
        height, width = frame.image.shape[:2]
        if (info.width, info.height) != (width, height):
            raise ValueError(f'CameraInfo on camera_info{camera} is for {info.width}x'
                             f'{info.height} but the image is {width}x{height}')
        model = CameraModel.from_camera_info(info, rectified=self.rectified)
        model.validate()
        return model

    def _pose(self, conf: dict, frames: list, result: dict, keypoints1: np.ndarray,
              stamp1: Time, frame_id: str) -> tuple:
        """Estimate and publish the pose; return (PoseResult or None, published)."""
        if conf['pose_method'] == 'none':
            return None, False
        frame0, frame1 = frames
        try:
            camera0 = self._camera(0, frame0)
            camera1 = camera0 if self.mode == 'temporal' else self._camera(1, frame1)
        except ValueError as exc:
            self.warn('camera_info', f'no pose: {exc}')
            return None, False
        matches = result['matches']
        kpts0 = frame0.features['keypoints'][matches[:, 0]]
        kpts1 = keypoints1[matches[:, 1]]
        baseline = stereo_baseline(camera0, camera1) if self.mode == 'stereo' \
            else None
        if self.mode == 'stereo' and baseline is None:
            self.warn('baseline', 'stereo mode but the camera_info P matrices give no '
                      'baseline (P1[0,3] = -fx * B): translation left unit-norm')
        pose = geometry.relative_pose(kpts0, kpts1, camera0, camera1,
                                      method=conf['pose_method'],
                                      ransac_px=conf['ransac_threshold_px'],
                                      min_inliers=conf['min_inliers'], baseline=baseline)
        if not pose.ok:
            if not (pose.rotation_known and conf['publish_rotation_only']):
                self.warn('pose', f'no pose for the pair at {messages.stamp_to_ns(stamp1)} ns: '
                          f'{pose.reason}')
                return pose, False
        position, quaternion = pose.camera1_in_camera0()
        self.pose_pub.publish(messages.encode_pose(position, quaternion, pose.covariance,
                                                   stamp1, frame_id))
        if self._tf is not None and pose.ok:  # a rotation-only pose has no position for TF
            self._broadcast(position, quaternion, stamp1, frame_id, frames[1].frame_id)
        return pose, True

    def _broadcast(self, position, quaternion, stamp, frame_id: str, child: str) -> None:
        from geometry_msgs.msg import TransformStamped
        msg = TransformStamped()
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        msg.child_frame_id = (child or 'camera1') + '_estimated'
        t, q = msg.transform.translation, msg.transform.rotation
        t.x, t.y, t.z = (float(v) for v in position)
        q.x, q.y, q.z, q.w = (float(v) for v in quaternion)
        self._tf.sendTransform(msg)

    def _publish_debug(self, frames: list, result: dict, keypoints1: np.ndarray, stamp: Time,
                       frame_id: str) -> None:
        from lightglue_ros.runtime.viz import draw_matches

        def as_uint8(image):
            if image.dtype == np.uint8:
                return image
            return (image.astype(np.float32) * (255.0 / max(float(image.max()), 1.0))).astype(
                np.uint8)

        canvas = draw_matches(as_uint8(frames[0].image), as_uint8(frames[1].image),
                              frames[0].features['keypoints'], keypoints1,
                              result['matches'], result['scores'])
        msg = numpy_to_image(canvas, 'bgr8')
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        self.debug_pub.publish(msg)

    # -- diagnostics -------------------------------------------------------------------------
    def diagnostics_callback(self) -> None:
        """Publish one DiagnosticStatus with rates, drops, latency and the last pair's figures."""
        input_hz, processed_hz = self.stats.rates()
        now = time.monotonic()
        with self.stats.lock:
            last = dict(self.stats.last)
            recent = [text for t, text in self.stats.warnings.values()
                      if now - t < max(WARN_PERIOD, 2 * self.conf['diagnostics_period'])]
            values = {'mode': self.mode, 'input_rate_hz': f'{input_hz:.2f}',
                      'processed_rate_hz': f'{processed_hz:.2f}',
                      'frames_received': self.stats.input_count,
                      'pairs_processed': self.stats.processed_count,
                      'poses_published': self.stats.poses,
                      'frames_skipped': self.stats.skipped,
                      'frames_lost_transport': self.stats.lost,
                      'dropped_queue': self.queue.dropped}
        values['image_reliability'] = ', '.join(i.describe() for i in self.inputs)
        with self._lock:
            values['camera_info'] = ', '.join(
                f'{self._info_count.get(c, 0)} on {topic}'
                for c, topic in enumerate(self.info_topics))
        if self._sync is not None:
            sync = self._sync.stats()
            values['dropped_sync'] = sum(sync.dropped)
            values['pending_sync'] = sum(sync.pending)
            if sum(sync.received) > 2 * self.conf['sync_queue_size'] and not sync.emitted:
                recent.append('no synchronized pairs: image0/image1 stamps differ by more '
                              f'than sync_slop ({self.conf["sync_slop"]} s)')
        for key, value in last.items():
            if value is not None:
                values[key] = f'{value:.1f}' if isinstance(value, float) else value
        status = DiagnosticStatus(name=f'{self.get_name()}: matcher',
                                  hardware_id=str(self.conf['model_dir']))
        if recent:
            status.level, status.message = DiagnosticStatus.WARN, recent[-1]
        elif not input_hz:
            waiting = [i.topic for i in self.inputs if i.in_use is None]
            status.level, status.message = DiagnosticStatus.WARN, 'no images received' + (
                f' (no publisher on {", ".join(waiting)} yet)' if waiting else '')
        else:
            status.level, status.message = DiagnosticStatus.OK, 'matching'
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


class MatcherNode(MatcherCore, Node):
    """
    LightGlue matching of synchronized camera pairs or consecutive frames.

    Configured and active from construction; the managed variant is
    `lightglue_ros.ros.lifecycle_node.MatcherLifecycleNode`.

    :raises ValueError: for invalid parameters or a model set that cannot be loaded.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._init_core()
        self._declare_parameters(read_only=True)
        self._configure()
        self.add_on_set_parameters_callback(self.parameters_callback)
        self.add_post_set_parameters_callback(self.post_parameters_callback)
        self._activate()
        self.get_logger().info(
            f'{self._inputs_summary()}; {self._model_summary()}; publishing '
            f'{self.matches_pub.topic_name} and {self.pose_pub.topic_name}')

    def destroy_node(self) -> None:
        """Stop the worker (finishing its current job), then destroy the node."""
        self._stop_worker()
        super().destroy_node()


class _StopSignals:
    """
    SIGINT and SIGTERM request one orderly shutdown; any further one is noted, not raised.

    Ctrl-C under `ros2 launch` reaches the node twice (the terminal's process group, then
    launch forwarding it), and `docker stop` or systemd send SIGTERM: an exception raised while
    the worker is joined or the node destroyed would abort the shutdown with a traceback and
    a signal exit code. rclpy's own handlers are not installed (a second signal during its
    shutdown ended the process with -SIGINT); the executor spins in short slices so that the
    handler runs promptly. SIGKILL still ends the process at once.

    `ignore` is for the end of `run`: Python restores the default action of a signal with a
    Python handler while the interpreter exits, so launch's forwarded SIGINT, when it comes
    after a quick shutdown (~0.1 s after the first one), killed the process with -SIGINT.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, logger) -> None:
        self.logger = logger
        self.requested = threading.Event()
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        again = self.requested.is_set()
        self.requested.set()
        name = signal.Signals(signum).name
        try:
            self.logger.info(f'{name}: already shutting down' if again
                             else f'{name}: shutting down')
        except Exception:  # logging already finalised: nothing to add
            pass

    def ignore(self) -> None:
        """Ignore any further signal (the process is on its way out)."""
        for signum in self.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def run(node_class, args=None) -> int:
    """
    Construct `node_class()` and spin it until SIGINT / SIGTERM, then destroy it.

    :return: 0 after a signal, 2 when the constructor refused the parameters or model set.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(NODE_NAME)
    stop = _StopSignals(logger)
    try:
        node = node_class()
    except (ValueError, ParameterException) as exc:
        logger.fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        stop.ignore()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.requested.is_set():
            executor.spin_once(timeout_sec=SPIN_SLICE)
    except ExternalShutdownException:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        stop.ignore()
    return 0


def main(args=None) -> int:
    """Run the node until SIGINT / SIGTERM (exit 0); exit 2 on invalid parameters or model set."""
    return run(MatcherNode, args)


if __name__ == '__main__':
    raise SystemExit(main())

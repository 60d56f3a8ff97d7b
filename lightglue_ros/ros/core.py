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
What the plain and the managed `lightglue` node share: parameters, phases, inputs, diagnostics.

Subscription callbacks only hand messages to a bounded latest-wins queue (or the synchronizer);
the worker (`lightglue_ros.ros.worker.PairWorker`) does the rest.
"""

import functools
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.ros import inputs
from lightglue_ros.ros import params
from lightglue_ros.ros.features import FeatureOutput
from lightglue_ros.ros.frames import LatestQueue
from lightglue_ros.ros.frames import Stats
from lightglue_ros.ros.sync import make_synchronizer
from lightglue_ros.ros.worker import PairWorker
from lightglue_ros.ros.worker import WARN_PERIOD
from lightglue_ros.runtime.tracking import ReferenceTracker
from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock
from rclpy.clock import ClockType
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud
from sensor_msgs.msg import PointCloud2

NODE_NAME = 'lightglue'
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
        if param.off is not None:  # a ROS range cannot say "this value, or that range"
            desc.additional_constraints = (f'{param.off:g} (off / default) or '
                                           f'{param.low:g} to {param.high:g}; values '
                                           'between are refused')
    return desc


class MatcherCore(PairWorker):
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
        self._infos, self._info_count, self._image_sizes = {}, {}, {}
        self._tracker = self._features = None  # temporal references, ~/features state
        self.engine = self.pipeline = self.cpu = None
        self.matches_pub = self.pose_pub = self.debug_pub = self.diag_pub = None
        self.features_pub = None
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
        self._infos, self._info_count, self._image_sizes = {}, {}, {}
        self.rectified = conf['image_type'] == 'rectified' or (
            conf['image_type'] == 'auto' and self.mode == 'stereo')
        self._load_pipeline()
        self.matches_pub = self._create_output(PointCloud2, '~/matches', 10)
        self.pose_pub = self._create_output(PoseWithCovarianceStamped, '~/pose', 10)
        self.debug_pub = self._create_output(Image, '~/debug_image', 2)
        self.features_pub = self._create_output(PointCloud, '~/features', 10)
        self.diag_pub = self._create_output(DiagnosticArray, '/diagnostics', 10)
        self._tf = self._make_tf_broadcaster()

    def _activate(self) -> None:
        """Create the synchronizer, subscriptions and timers, then start the worker."""
        conf = self.conf
        self.stats = Stats()  # counters since activation, as the queue's
        # Temporal (and stereo ~/features): the first frame after activation starts a sequence.
        self._tracker = ReferenceTracker(conf['temporal_reference'],
                                         conf['keyframe_parallax_px'],
                                         conf['keyframe_min_tracked'])
        self._features = FeatureOutput()
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
        for name in ('matches_pub', 'pose_pub', 'debug_pub', 'features_pub', 'diag_pub'):
            publisher = getattr(self, name)
            if publisher is not None:
                self._destroy_output(publisher)
                setattr(self, name, None)
        if self._tf is not None:  # tf2_ros.TransformBroadcaster keeps its publisher as pub_tf
            self.destroy_publisher(self._tf.pub_tf)
            self._tf = None
        with self._lock:
            self.conf = None
        self._release_models()

    def _release_models(self) -> None:
        """Free the model set now, the worker joined (see Engine.close); idempotent."""
        self._stop_worker()
        engine = getattr(self, 'engine', None)  # also for a constructor that failed early
        if engine is not None:
            engine.close()
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
        from lightglue_ros.runtime.cpu import bf16_advice
        from lightglue_ros.runtime.cpu import describe_cpu
        from lightglue_ros.runtime.engine import Engine
        from lightglue_ros.runtime.pipeline import Pipeline
        conf = self.conf
        try:
            self.engine = Engine(conf['model_dir'], device=conf['device'],
                                 precision=conf['precision'],
                                 cache_dir=conf['cache_dir'] or None,
                                 threads=conf['threads'] or None)
        except (AttributeError, KeyError, TypeError) as exc:
            # Valid JSON of another layout (hand-edited, another tool's) fails on a lookup.
            raise ValueError(f'{conf["model_dir"]}/manifest.json is not laid out as '
                             f'`lightglue-ros convert` writes it ({type(exc).__name__}: '
                             f'{exc}); re-run convert') from None
        self._default_max_keypoints = self.engine.extractor.conf.get('max_keypoints')
        self.cpu = describe_cpu(self.engine.core)
        if self.engine.precision == 'bf16' and self.engine.device == 'CPU':
            advice = bf16_advice(self.cpu)
            if advice:
                self.get_logger().warning(advice)
        # No feature cache: every frame is extracted once anyway (temporal mode keeps the
        # previous frame's features), and keys like stamps can repeat across new images.
        self.pipeline = Pipeline(self.engine)

    def _make_tf_broadcaster(self):
        if not self.conf['publish_tf']:
            return None
        if self.mode != 'stereo':
            # TF is metric (REP-103): a unit-norm translation would read as 1 m. In temporal
            # mode the transform would also be between two times of one frame.
            self.get_logger().warning(f'publish_tf is ignored in {self.mode} mode: its '
                                      'translation has no metric scale (unit norm); only '
                                      'stereo poses with a calibrated baseline go to TF')
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
            self._tracker.policy = conf['temporal_reference']
            self._tracker.parallax_px = conf['keyframe_parallax_px']
            self._tracker.min_tracked = conf['keyframe_min_tracked']
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
        """
        Cache the latest valid CameraInfo of a camera (not synchronized with the images).

        An invalid one (non-finite or non-positive focal lengths, unknown distortion model,
        wrong number of coefficients, rectified mode without P, or a size other than the
        camera's images) is counted, warned about and ignored: the last valid one stays.
        """
        with self._lock:
            self._info_count[camera] = self._info_count.get(camera, 0) + 1
            size = self._image_sizes.get(camera)
        try:
            CameraModel.from_camera_info(msg, rectified=self.rectified).validate()
            if size is not None and (msg.width, msg.height) != size:
                raise ValueError(f'it is for {msg.width}x{msg.height} images but the camera '
                                 f'sends {size[0]}x{size[1]}')
        except ValueError as exc:
            with self.stats.lock:
                self.stats.info_rejected += 1
            self.warn('camera_info_rejected', f'ignoring a CameraInfo on '
                      f'{self.info_topics[camera]}: {exc}; the last valid one (if any) stays')
            return
        with self._lock:
            self._infos[camera] = msg

    # -- diagnostics -------------------------------------------------------------------------
    def diagnostics_callback(self) -> None:
        """Publish one DiagnosticStatus with rates, drops, latency and the last pair's figures."""
        input_hz, processed_hz, keyframe_hz = self.stats.rates()
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
                      'internal_errors': self.stats.internal,
                      'camera_info_rejected': self.stats.info_rejected,
                      'frames_lost_transport': self.stats.lost,
                      'dropped_queue': self.queue.dropped,
                      'queue_length': len(self.queue)}
        if self.mode == 'temporal' or self.conf['publish_features']:
            values['keyframe_rate_hz'] = f'{keyframe_hz:.2f}'
        values['model_dir'] = str(self.conf['model_dir'])
        if self.cpu is not None:
            values['cpu'] = self.cpu.label()
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
                text = (f'no synchronized pairs: image0/image1 stamps differ by more than '
                        f'sync_slop ({self.conf["sync_slop"]} s)')
                self.warn('sync', text)  # logged too (throttled), not only in diagnostics
                recent.append(text)
        for key, value in last.items():
            if value is not None:
                values[key] = f'{value:.1f}' if isinstance(value, float) else value
        status = DiagnosticStatus(name=f'{self.get_name()}: matcher',
                                  hardware_id=f'openvino:{self.engine.device}')
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

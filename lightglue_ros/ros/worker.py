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
The worker side of the `lightglue` node: decode, extract, match, estimate the pose, publish.

A mixin of `MatcherCore`: one worker thread takes jobs (a frame, or a synchronized pair) from
the latest-wins queue and runs them, so the executor never blocks on inference; it publishes
the matches and hands the pair to a finisher thread (pose, debug image, diagnostics figures),
so the next frame is extracted while the last pose is estimated. A bad message is reported
(throttled warning + diagnostics) and skipped.
"""

import queue
import threading
import time
import traceback

from builtin_interfaces.msg import Time
from lightglue_ros import geometry
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.camera import stereo_baseline
from lightglue_ros.ros import messages
from lightglue_ros.ros.frames import Frame
from lightglue_ros.ros.ros_image import compressed_to_numpy
from lightglue_ros.ros.ros_image import image_to_numpy
from lightglue_ros.ros.ros_image import numpy_to_image
from lightglue_ros.ros.sync import stamp_ns
from lightglue_ros.runtime.refine import refine_matches
import numpy as np
from sensor_msgs.msg import CompressedImage

WARN_PERIOD = 5.0  # seconds between repeats of the same warning


class PairWorker:
    """The worker thread's job: process one frame or pair, publish, report problems."""

    def _work(self) -> None:
        """Run jobs from the queue until it closes; the finisher thread ends with it."""
        self._finishing = queue.Queue(maxsize=1)
        finisher = threading.Thread(target=self._finish_loop, name='lightglue_finisher')
        finisher.start()
        try:
            while True:
                job = self.queue.get()
                if job is None:
                    return
                self._run(self.process, job)
        finally:
            self._finishing.put(None)
            finisher.join()

    def _finish_loop(self) -> None:
        while True:
            job = self._finishing.get()
            if job is None:
                return
            try:
                self._run(self._finish, *job)
            finally:
                self._finishing.task_done()  # `process` waits on this (posed, see there)

    def _run(self, function, *args) -> None:
        """Call `function`; report bad input and bugs instead of stopping the thread."""
        try:
            function(*args)
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
            self.stats.internal += key == 'internal'
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
        # The header only: frames kept as references (up to a keyframe's 30 candidates)
        # then hold the decoded pixels once, not the message's data as well.
        return Frame(camera, msg.header, image, stamp, msg.header.frame_id, {})

    def process(self, job: tuple) -> None:
        """Decode, extract, match and publish one frame or pair; hand it to the finisher."""
        started = time.perf_counter()
        conf = self._apply_live()
        frames = [self._decode(camera, msg) for camera, msg in enumerate(job)]
        with self._lock:  # what a CameraInfo must match (camera_info_callback)
            for frame in frames:
                self._image_sizes[frame.camera] = frame.image.shape[1::-1]
        for frame in frames:
            frame.features = self.pipeline.features(frame.image)
        if self.mode == 'temporal':
            reference = self._reference(frames[0])
            if reference is None:
                return
            frames = [reference, frames[0]]
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
        stamp0, stamp1 = frame0.header.stamp, frame1.header.stamp
        frame_id = frame0.frame_id or self._info_frame(0)
        self.matches_pub.publish(messages.encode_matches(
            feats0['keypoints'], kpts1, result['matches'], result['scores'],
            stamp0, stamp1, frame_id))
        track = None
        if self.mode == 'temporal':
            # The tracker may pick a keyframe among earlier frames, passing over those whose
            # pose failed: the finisher sets `posed` (see `_finish`), so wait until it is done
            # with the previous pair. It ran while this frame was extracted and matched.
            self._finishing.join()
            track = self._tracker.add(frame1.stamp_ns, feats1['keypoints'], result['matches'],
                                      frame1)
        elif self.mode == 'stereo' and conf['publish_features']:
            track = self._track_left(frame0)
        if conf['publish_features'] and track is not None:
            self._publish_features(frames, result, kpts1, track)
        track_figures = self._track_figures(track)  # takes stats.lock itself
        # The pose, the debug image and the figures go to the finisher thread: the next frame
        # is extracted meanwhile (on a spare core; a busy finisher holds the worker here).
        self._finishing.put((conf, frames, result, kpts1, refined, stamp1, frame_id, track,
                             track_figures, time.perf_counter() - started))

    def _finish(self, conf: dict, frames: list, result: dict, kpts1: np.ndarray, refined,
                stamp1: Time, frame_id: str, track, track_figures: dict,
                worker_s: float) -> None:
        """Estimate and publish the pose, draw the debug image, count the pair."""
        started = time.perf_counter()
        feats0, feats1 = frames[0].features, frames[1].features
        pose, published = self._pose(conf, frames, result, kpts1, stamp1, frame_id)
        if track is not None and self.mode == 'temporal' and pose is not None:
            track.frame.posed = pose.ok  # a failed frame is no keyframe candidate
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
                # No PoseResult: pose_method none, or no usable CameraInfo (a warning says why)
                'pose': (pose.model if pose.ok else pose.reason) if pose is not None else (
                    'off' if conf['pose_method'] == 'none' else 'no usable CameraInfo'),
                'processing_ms': (worker_s + time.perf_counter() - started) * 1e3,
                'latency_ms': (now_ns - messages.stamp_to_ns(stamp1)) / 1e6,
                'match_ms': result['timings_ms']['total'],
                'baseline_angle_deg': getattr(pose, 'baseline_angle_deg', None),
                **track_figures,
            }

    def _reference(self, frame: Frame) -> Frame | None:
        """Temporal: return what `frame` is matched with (None: it starts a sequence)."""
        reference, latest = self._tracker.reference, self._tracker.latest
        if latest is not None and latest.stamp_ns > frame.stamp_ns:
            self.warn('stamps', 'image0 stamps went backwards '
                      f'({latest.stamp_ns} -> {frame.stamp_ns} ns): restarting the '
                      'sequence (a replayed bag looping?)')
            reference = None
        elif reference is not None and reference.payload.image.shape[:2] != frame.image.shape[:2]:
            # One CameraInfo serves both frames of a temporal pair: across a resolution
            # change it would be wrong for one of them.
            self.warn('size', 'image0 size changed ({1}x{0} -> {3}x{2}): restarting the '
                      'sequence'.format(*reference.payload.image.shape[:2],
                                        *frame.image.shape[:2]))
            reference = None
        if reference is None:
            self._restart(frame)
            return None
        if latest.stamp_ns == frame.stamp_ns:
            self.warn('stamps', f'image0 stamps repeat ({latest.stamp_ns} ns): matching '
                      'frames in arrival order; the driver should stamp each frame')
        return reference.payload

    def _restart(self, frame: Frame):
        """Start a new sequence at `frame` (tracked frames and feature ids forgotten)."""
        self._tracker.reset()
        self._features.reset()
        return self._tracker.add(frame.stamp_ns, frame.features['keypoints'], None, frame)

    def _track_left(self, left: Frame):
        """Stereo ~/features: match the left frame with its reference too; return the update."""
        reference, latest = self._tracker.reference, self._tracker.latest
        if reference is not None and (latest.stamp_ns >= left.stamp_ns or
                                      reference.payload.image.shape[:2] != left.image.shape[:2]):
            reference = None  # stamps went backwards or repeat, or a new size: a new sequence
        if reference is None:
            return self._restart(left)
        feats0 = reference.payload.features
        result = self.engine.match(feats0, feats0['image_size'], left.features,
                                   left.features['image_size'])
        return self._tracker.add(left.stamp_ns, left.features['keypoints'], result['matches'],
                                 left)

    def _publish_features(self, frames: list, result: dict, kpts1: np.ndarray, track) -> None:
        """Publish the tracked features of this frame (camera 0 and, in stereo, camera 1)."""
        if track.reference is None:
            return  # the first frame: nothing is tracked yet
        ids = track.frame.ids
        camera = 1 if self.mode == 'temporal' else 0  # the tracked frame's place in the pair
        points = kpts1 if camera == 1 else frames[0].features['keypoints']
        views = [(0, ids, points, frames[camera])]
        if self.mode == 'stereo':
            m = result['matches']
            right = np.full(len(frames[1].features['keypoints']), -1, np.int64)
            right[m[:, 1]] = ids[m[:, 0]]
            views.append((1, right, kpts1, frames[1]))
        observations = []
        for camera_id, view_ids, pixels, frame in views:
            keep = view_ids >= 0
            try:
                model = self._camera(camera_id if self.mode == 'stereo' else 0, frame)
            except ValueError as exc:
                self.warn('camera_info', f'no ~/features: {exc}')
                return
            observations.append((camera_id, view_ids[keep], model.undistort(pixels[keep]),
                                 pixels[keep]))
        frame = frames[camera]
        self.features_pub.publish(self._features.message(frame.header, frame.stamp_ns,
                                                         observations))

    def _track_figures(self, track) -> dict:
        """Return the diagnostics of the temporal reference (empty without tracking)."""
        if track is None or track.reference is None:
            return {}
        with self.stats.lock:
            if track.new_reference:
                self.stats.keyframes.append(time.monotonic())
        return {'temporal_reference': self._tracker.policy,
                'reference_age_s': (track.frame.stamp_ns - track.reference.stamp_ns) / 1e9,
                'reference_parallax_px': track.parallax_px,
                'reference_tracked': track.tracked,
                'keyframes_taken': self._tracker.keyframes,
                'tracked_features': int((track.frame.ids >= 0).sum())}

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
            if pose.scale_known:
                self._broadcast(position, quaternion, stamp1, frame_id, frames[1].frame_id)
            else:
                self.warn('tf', 'publish_tf: not broadcast, the translation has no metric '
                          'scale (no stereo baseline in CameraInfo P)')
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

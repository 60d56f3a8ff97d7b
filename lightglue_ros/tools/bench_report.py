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
The report of `lightglue-ros bench`: acceptance targets, printed tables, JSON form.

The targets are the issue's, checked on one run's medians. numpy only.
"""

import numpy as np

# Key of PyTorch's f32 MatMul rate in report['peaks'] (context; the targets use OpenVINO's).
TORCH_PEAK = 'f32 PyTorch'


def _rows(rows, **match) -> list:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def targets(report: dict, k: int = 1024) -> list:
    """Evaluate the issue's acceptance targets on this run's medians; a list of dicts."""
    out = []
    native_bf16 = report.get('environment', {}).get('native_bf16', True)

    def add(name, value, holds, detail='', bf16_rate=False):
        if bf16_rate and not native_bf16:  # an emulated bf16 rate says nothing
            holds, detail = False, f'{detail}; not judged: this CPU has no native bf16'
        out.append({'target': name, 'value': value, 'holds': bool(holds), 'detail': detail})

    rows = report['matcher']
    f32 = _rows(rows, k=k, backend='ov', precision='f32', mode='adaptive')
    if f32 and all('speedup_vs_reference' in r for r in f32):
        ratios = {r['pair']: r['speedup_vs_reference'] for r in f32}
        add(f'f32 matcher >= 1.2x reference (K={k})', min(ratios.values()),
            min(ratios.values()) >= 1.2, _fmt_dict(ratios, 'x'))
    full = _rows(rows, k=k, backend='ov', precision='f32', mode='full')
    if full and all('layers_of_peak' in r for r in full):
        share = {r['pair']: r['layers_of_peak'] for r in full}
        detail = _fmt_dict(share, '', 100, '%') + _ceiling(full)
        torch_peak = report.get('peaks', {}).get(k, {}).get(TORCH_PEAK)
        if torch_peak:
            rates = {r['pair']: r['gflops']['layers'] / torch_peak for r in full}
            detail += "; of PyTorch's matmul rate: " + _fmt_dict(rates, '', 100, '%')
        add(f'f32 layer compute >= 80% of f32 matmul peak (full depth, K={k})',
            min(share.values()), min(share.values()) >= 0.8, detail)
    bf16_full = _rows(rows, k=k, backend='ov', precision='bf16', mode='full')
    if bf16_full and all('layers_of_peak' in r for r in bf16_full):
        share = {r['pair']: r['layers_of_peak'] for r in bf16_full}
        add(f'bf16 layer compute >= 80% of bf16 matmul peak (full depth, K={k})',
            min(share.values()), min(share.values()) >= 0.8,
            _fmt_dict(share, '', 100, '%') + _ceiling(bf16_full), bf16_rate=True)
    bf16 = _rows(rows, k=k, backend='ov', precision='bf16', mode='adaptive')
    if bf16 and all('speedup_vs_reference' in r for r in bf16):
        ratios = {r['pair']: r['speedup_vs_reference'] for r in bf16}
        same = {r['pair']: r['same_as_reference'] for r in bf16}
        stops = [r['same_stop'] for r in bf16]
        parity = [r for r in report.get('parity', []) if 'bf16_same_features' in r]
        stops += [r['bf16_same_features_stop'] for r in parity]
        shares = list(same.values()) + [r['bf16_same_features'] for r in parity]
        add(f'bf16 matcher >= 3x reference (K={k})', min(ratios.values()),
            min(ratios.values()) >= 3, _fmt_dict(ratios, 'x'), bf16_rate=True)
        add(f'bf16 >= 97% identical matches (K={k}; parity pairs at --eval-keypoints)',
            min(shares), min(shares) >= 0.97,
            _fmt_dict(same, '', 100, '%') + f'; {sum(s >= 0.97 for s in shares)}/'
            f'{len(shares)} pairs >= 97%, mean {np.mean(shares) * 100:.2f}%')
        add('bf16 same stop layer on >= 90% of pairs', float(np.mean(stops)),
            np.mean(stops) >= 0.9, f'{sum(stops)}/{len(stops)} pairs (matcher + parity sets)')
    easy = [r for r in f32 if r['pair'] == 'easy' and 'speedup_vs_own_full' in r]
    if easy:
        add(f'adaptive >= 3x own full depth on the easy pair (f32, K={k})',
            easy[0]['speedup_vs_own_full'], easy[0]['speedup_vs_own_full'] >= 3)
    pair_rows = [r for r in report['pair'] if r['k'] == k and r['method'].startswith('ours')
                 and 'speedup_vs_static_ort' in r]
    for method in sorted({r['method'] for r in pair_rows}):
        ratios = {r['pair']: r['speedup_vs_static_ort'] for r in pair_rows
                  if r['method'] == method}
        add(f'end-to-end pair ({method}) >= 4x static full-depth model on ONNX Runtime '
            f'(K={k})', min(ratios.values()), min(ratios.values()) >= 4,
            _fmt_dict(ratios, 'x'))
    shares = [r for r in report['pair'] if r['k'] == k and 'outside_inference' in r]
    for method in sorted({r['method'] for r in shares}):
        share = {r['pair']: r['outside_inference'] for r in shares if r['method'] == method}
        add(f'end-to-end pair ({method}): time outside inference <= 10% (K={k})',
            max(share.values()), max(share.values()) <= 0.10, _fmt_dict(share, '', 100, '%'))
    ext = [r for r in report['extractor'] if 'speedup' in r]
    if ext:
        add('ALIKED >= 2x reference extract at --size, same keypoints within 0.01 px',
            min(r['speedup'] for r in ext),
            min(r['speedup'] for r in ext) >= 2 and
            all(r['paired_within_0.01px'] == 1 and r['keypoints'] == r['reference_keypoints']
                for r in ext),
            ', '.join(f'{r["speedup"]:.2f}x, {r["paired_within_0.01px"] * 100:.1f}% paired, '
                      f'max {r["max_keypoint_diff_px"]:.4f} px' for r in ext))
    for entry in report.get('parity_summary', []):
        holds = entry['same_stop'] >= 0.95 and entry['identical_mean'] >= 0.99 and \
            entry['within_0.5px'] >= 0.99
        add(f'parity {entry["set"]}: same stop >= 95%, >= 99% identical, keypoints 0.5 px',
            entry['identical_mean'], holds,
            f'stop {entry["same_stop"] * 100:.0f}%, identical {entry["identical_mean"] * 100:.2f}'
            f'% (min {entry["identical_min"] * 100:.2f}%), within 0.5 px '
            f'{entry["within_0.5px"] * 100:.2f}%')
    return out


def _ceiling(rows: list) -> str:
    """Return the detail that says how far the layers could go with this run's attention."""
    if not all('layers_ceiling' in r for r in rows):
        return ''
    return ('; ceiling with this attention kernel and all else at the peak: ' +
            _fmt_dict({r['pair']: r['layers_ceiling'] for r in rows}, '', 100, '%'))


def _fmt_dict(values: dict, unit: str, scale: float = 1, suffix: str = '') -> str:
    return ', '.join(f'{k} {v * scale:.2f}{unit}{suffix}' for k, v in values.items())


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return '-'
    return format(value, fmt)


def format_table(rows: list, columns: list) -> str:
    """Return rows as a fixed-width table; columns are (header, getter, format)."""
    cells = [[_cell(get(row), fmt) for _, get, fmt in columns] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _, _) in enumerate(columns)]
    lines = ['  '.join(h.rjust(w) if i else h.ljust(w)
                       for i, ((h, _, _), w) in enumerate(zip(columns, widths)))]
    for line in cells:
        lines.append('  '.join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(line, widths))))
    return '\n'.join(lines)


def print_table(title: str, rows: list, columns: list) -> None:
    """Print a titled `format_table` (nothing without rows)."""
    if rows:
        print(f'\n{title}\n{format_table(rows, columns)}')


def print_report(report: dict) -> None:
    """Print every section of a report."""
    env = report['environment']
    bf16 = 'native bf16' if env.get('native_bf16') else 'no native bf16'
    print(f'lightglue-ros bench: {env["cpu"]} ({env.get("isa", "?")}, {bf16}), '
          f'{env["threads"]} threads, OpenVINO {env["openvino"]}; reference: '
          f'{report["reference"]}; static: {report["static"]}')
    if env.get('bf16_advice'):
        print(f'note: {env["bf16_advice"]}; bf16 rows below are not a bf16 measurement')
    for k, peaks in report['peaks'].items():
        print(f'MatMul peak ({k}x512 @ 512x512): ' + ', '.join(
            f'{p} {v:.0f} GFLOP/s' for p, v in peaks.items()))
        rates = report.get('attention', {}).get(k, {})
        if rates:
            print(f'attention alone ({k} x {k} points, fused): ' + ', '.join(
                f'{p} {v:.0f} GFLOP/s ({v / peaks[p] * 100:.0f}% of the {p} peak)'
                for p, v in rates.items() if p in peaks))
    for (k, pair), rows in _grouped(report['matcher'], ('k', 'pair')).items():
        m, n = rows[0]['points']
        print_table(f'matcher K={k}, pair {pair} ({m} + {n} points), medians of '
                    f'{report["repeat"]}', rows, MATCHER_COLUMNS)
    print_table(f'extractor at {report["size"]}', report['extractor'], EXTRACTOR_COLUMNS)
    for (k, pair), rows in _grouped(report['pair'], ('k', 'pair')).items():
        print_table(f'end to end, K={k}, pair {pair} at {report["size"]}', rows, PAIR_COLUMNS)
    print_table('parity (f32 end to end vs scm extract + match; bf16/f32 matcher on our '
                'features)', report.get('parity_summary', []), PARITY_COLUMNS)
    if report['targets']:
        print('\nacceptance targets')
        for t in report['targets']:
            print(f'  [{"ok" if t["holds"] else "FAIL"}] {t["target"]}: {t["value"]:.3f}'
                  + (f' ({t["detail"]})' if t['detail'] else ''))


def _grouped(rows: list, keys: tuple) -> dict:
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def _pct(key):
    return lambda r: None if r.get(key) is None else 100 * r[key]


MATCHER_COLUMNS = [
    ('method', lambda r: r['method'], 's'),
    ('total ms', lambda r: r['ms']['total'], '.1f'),
    ('input', lambda r: r['ms'].get('input'), '.1f'),
    ('layers', lambda r: r['ms'].get('layers'), '.1f'),
    ('assign', lambda r: r['ms'].get('assign'), '.1f'),
    ('x ref', lambda r: r.get('speedup_vs_reference'), '.2f'),
    ('x full', lambda r: r.get('speedup_vs_own_full'), '.2f'),
    ('stop', lambda r: r['stop_layer'], 'd'),
    ('pruned %', _pct('pruned'), '.1f'),
    ('identical %', _pct('same_as_reference'), '.2f'),
    ('IoU %', _pct('match_iou'), '.2f'),
    ('matches', lambda r: r['matches'], 'd'),
    ('GFLOP', lambda r: sum(r['gflop'].values()), '.1f'),
    ('GF/s input', lambda r: r['gflops'].get('input'), '.0f'),
    ('GF/s layers', lambda r: r['gflops'].get('layers'), '.0f'),
    ('GF/s assign', lambda r: r['gflops'].get('assign'), '.0f'),
    ('layers % peak', _pct('layers_of_peak'), '.0f'),
    ('ceiling %', _pct('layers_ceiling'), '.0f'),
]
EXTRACTOR_COLUMNS = [
    ('image', lambda r: str(r['image']), 's'),
    ('ours ms', lambda r: r['ms']['ours'], '.1f'),
    ('reference ms', lambda r: r['ms'].get('reference'), '.1f'),
    ('x ref', lambda r: r.get('speedup'), '.2f'),
    ('keypoints', lambda r: r['keypoints'], 'd'),
    ('ref keypoints', lambda r: r.get('reference_keypoints'), 'd'),
    ('paired 0.01 px %', _pct('paired_within_0.01px'), '.2f'),
    ('max diff px', lambda r: r.get('max_keypoint_diff_px'), '.5f'),
]
PAIR_COLUMNS = [
    ('method', lambda r: r['method'], 's'),
    ('ms', lambda r: r['ms'], '.1f'),
    ('x static ORT', lambda r: r.get('speedup_vs_static_ort'), '.2f'),
    ('outside inf. %', lambda r: None if 'outside_inference' not in r
     else 100 * r['outside_inference'], '.1f'),
    ('matches', lambda r: r['matches'], 'd'),
    ('stop', lambda r: r['stop_layer'], 'd'),
]
PARITY_COLUMNS = [
    ('set', lambda r: r['set'], 's'),
    ('pairs', lambda r: r['pairs'], 'd'),
    ('kpts <0.5px %', _pct('within_0.5px'), '.2f'),
    ('same stop %', _pct('same_stop'), '.0f'),
    ('identical %', _pct('identical_mean'), '.2f'),
    ('min %', _pct('identical_min'), '.2f'),
    ('f32 same-feat min %', _pct('f32_same_features_min'), '.2f'),
    ('bf16 identical %', _pct('bf16_identical_mean'), '.2f'),
    ('bf16 min %', _pct('bf16_identical_min'), '.2f'),
    ('bf16 same stop %', _pct('bf16_same_stop'), '.0f'),
    ('ours ms', lambda r: r['ms_ours'], '.0f'),
    ('ref ms', lambda r: r['ms_reference'], '.0f'),
]


def jsonable(value):
    """Return `value` with numpy scalars as Python ones and keys starting with _ dropped."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not str(k).startswith('_')}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

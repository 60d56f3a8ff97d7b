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
What the CPU can do for inference: its model, its vector ISA and whether bf16 is native.

bf16 pays off only where the CPU multiplies bf16 in hardware: AMX (Intel Sapphire Rapids and
later) or AVX-512 BF16 (Intel Cooper Lake, AMD Zen 4 and later). Elsewhere OpenVINO either
refuses the hint (OPTIMIZATION_CAPABILITIES lacks BF16, the model runs f32) or would convert
back and forth around f32 arithmetic: slower and less exact than f32. `describe_cpu` reads
/proc/cpuinfo (Linux) and OpenVINO's capabilities; `bf16_advice` says what a bf16 request gets.
"""

from dataclasses import dataclass
import os
from pathlib import Path
import platform

# Vector ISAs from best to least for this workload, as /proc/cpuinfo flags name them.
ISA_LEVELS = (
    ('AMX', ('amx_bf16', 'amx_tile')),
    ('AVX-512 BF16', ('avx512_bf16',)),
    ('AVX-512', ('avx512f',)),
    ('AVX2', ('avx2',)),
)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU seen by this process."""

    model: str  # e.g. 'AMD EPYC 9R14' ('' when the kernel does not say)
    vendor: str  # e.g. 'AuthenticAMD'
    isa: str  # 'AMX', 'AVX-512 BF16', 'AVX-512', 'AVX2' or 'baseline'
    native_bf16: bool  # bf16 multiplies in hardware (AMX or AVX-512 BF16)
    openvino_bf16: bool | None  # OpenVINO's CPU plugin lists BF16 (None: not asked)
    logical_cpus: int

    def label(self) -> str:
        """One line for reports: model, ISA, bf16."""
        bf16 = 'native bf16' if self.native_bf16 else 'no native bf16'
        return f'{self.model or self.vendor or platform.machine()}, {self.isa}, {bf16}'


def _cpuinfo_fields(text: str) -> dict:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep and key.strip() not in fields:  # the first processor is enough
            fields[key.strip()] = value.strip()
    return fields


def parse_cpuinfo(text: str, openvino_bf16: bool | None = None,
                  logical_cpus: int | None = None) -> CpuInfo:
    """Describe a CPU from the text of /proc/cpuinfo (x86 Linux)."""
    fields = _cpuinfo_fields(text)
    flags = set(fields.get('flags', '').split())
    isa = next((name for name, need in ISA_LEVELS if all(f in flags for f in need)),
               'baseline')
    native = isa in ('AMX', 'AVX-512 BF16')
    count = logical_cpus or sum(1 for line in text.splitlines()
                                if line.startswith('processor')) or 1
    return CpuInfo(fields.get('model name', ''), fields.get('vendor_id', ''), isa, native,
                   openvino_bf16, count)


def describe_cpu(core=None) -> CpuInfo:
    """
    Describe this machine's CPU.

    :param core: an openvino.Core to ask for OPTIMIZATION_CAPABILITIES (None: not asked).
    """
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:  # not Linux: no ISA flags to read
        text = ''
    openvino_bf16 = None
    if core is not None:
        try:
            openvino_bf16 = 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
        except RuntimeError:  # no CPU plugin
            openvino_bf16 = False
    return parse_cpuinfo(text, openvino_bf16, os.cpu_count())


def bf16_advice(cpu: CpuInfo) -> str | None:
    """Return None when bf16 is worth asking for on `cpu`, else why not (for a warning)."""
    if cpu.native_bf16 and cpu.openvino_bf16 is not False:
        return None
    if cpu.openvino_bf16 is False:
        return (f'precision bf16 asked, but OpenVINO lists no BF16 for this CPU ({cpu.label()}):'
                ' the model runs f32; use precision f32')
    return (f'precision bf16 asked, but this CPU ({cpu.label()}) has no bf16 arithmetic (AMX '
            'or AVX-512 BF16): bf16 would be emulated, slower and less exact than f32; use '
            'precision f32')

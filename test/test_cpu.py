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

"""The CPU description behind the bench header and the node's bf16 warning."""

from lightglue_ros.runtime.cpu import bf16_advice
from lightglue_ros.runtime.cpu import describe_cpu
from lightglue_ros.runtime.cpu import parse_cpuinfo
import openvino as ov
import pytest

BASE = 'fpu sse sse2 avx fma'
CPUS = {  # flags as the Linux kernel prints them, per CPU family
    'sapphire rapids': ('GenuineIntel', 'Intel(R) Xeon(R) Platinum 8488C',
                        BASE + ' avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8'),
    'zen 4': ('AuthenticAMD', 'AMD EPYC 9R14', BASE + ' avx2 avx512f avx512_bf16'),
    'skylake-sp': ('GenuineIntel', 'Intel(R) Xeon(R) Gold 6148', BASE + ' avx2 avx512f'),
    'zen 3': ('AuthenticAMD', 'AMD EPYC 7R13', BASE + ' avx2'),
}


def _cpuinfo(vendor: str, model: str, flags: str, processors: int = 2) -> str:
    return ''.join(f'processor\t: {k}\nvendor_id\t: {vendor}\nmodel name\t: {model}\n'
                   f'flags\t\t: {flags}\n\n' for k in range(processors))


@pytest.mark.parametrize('name, isa, native', [
    ('sapphire rapids', 'AMX', True), ('zen 4', 'AVX-512 BF16', True),
    ('skylake-sp', 'AVX-512', False), ('zen 3', 'AVX2', False)])
def test_isa_and_native_bf16_from_the_flags(name, isa, native):
    vendor, model, flags = CPUS[name]
    cpu = parse_cpuinfo(_cpuinfo(vendor, model, flags, processors=3))
    assert (cpu.isa, cpu.native_bf16, cpu.model, cpu.logical_cpus) == (isa, native, model, 3)
    assert cpu.label() == f'{model}, {isa}, {"native" if native else "no native"} bf16'
    assert (bf16_advice(cpu) is None) == native
    if not native:
        assert 'emulated' in bf16_advice(cpu) and 'use precision f32' in bf16_advice(cpu)


def test_openvino_without_bf16_is_named():
    """A CPU with the flags but an OpenVINO that lists no BF16: the model would run f32."""
    cpu = parse_cpuinfo(_cpuinfo(*CPUS['zen 4']), openvino_bf16=False)
    assert 'OpenVINO lists no BF16' in bf16_advice(cpu)


def test_this_machine_agrees_with_openvino():
    """Here, bf16 arithmetic in the flags means OpenVINO lists BF16 too."""
    cpu = describe_cpu(ov.Core())
    print('this CPU:', cpu.label(), '| OpenVINO BF16:', cpu.openvino_bf16)
    assert cpu.openvino_bf16 is not None
    if cpu.native_bf16:
        assert cpu.openvino_bf16

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

"""`lightglue-ros stress fuzz`, short form: a seeded storm against the node in its own process."""

from lightglue_ros.tools import stress
import pytest


# CI's storm: 500 messages, 400 as raw images, 100 as compressed ones.
@pytest.mark.parametrize('compressed, messages', [(False, 400), (True, 100)],
                         ids=['raw', 'compressed'])
def test_fuzz_storm(aliked_models, compressed, messages):
    """
    The node survives, rejects exactly the bad images, and still matches a known pair right.

    Every image that cannot be decoded is counted once in frames_skipped, none as an internal
    error; bad CameraInfo and odd stamps are not rejects (they cost the pose or restart the
    sequence). Longer storms: `lightglue-ros stress fuzz --messages 5000`.
    """
    report = stress.run_fuzz(aliked_models, messages=messages, seed=3, compressed=compressed)
    print(stress.format_report([report]))
    assert report['passed'], (report['failures'], report['node_output_tail'])
    diagnostics = report['diagnostics']
    assert report['bad_images_sent'] >= 20
    assert int(diagnostics['frames_skipped']) == report['bad_images_sent']
    assert int(diagnostics['camera_info_rejected']) == report['bad_infos_sent'] > 0
    assert int(diagnostics['internal_errors']) == 0
    contract = stress.summary([report])
    assert contract['bad_messages'] == contract['rejected'] == (
        report['bad_images_sent'] + report['bad_infos_sent'])
    assert contract['crashes'] == 0 and contract['valid_pair_ok'] and contract['passed']
    assert report['node_exit_code'] == 0
    assert report['final_pair']['within_3px'] >= 0.9
    kinds = {key.split(':')[0] for key in report['sent']}
    assert kinds == {'valid', 'bad_image', 'bad_info', 'odd_stamp'}, report['sent']

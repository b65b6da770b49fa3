from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlspec_ray.cli import main
from dlspec_ray.hardware import host_cpu_arch, node_resources


def test_prints_this_nodes_custom_resources_as_json(capsys):
    assert main(["node-resources"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == node_resources()
    assert out[f"cpu_arch:{host_cpu_arch()}"] == 1
    assert not {"CPU", "GPU", "memory"} & set(out), "ray start --resources refuses these"


def test_verbose_says_how_the_gpus_were_found(capsys):
    assert main(["node-resources", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert f"cpu arch {host_cpu_arch()}; GPUs via " in captured.err
    assert json.loads(captured.out) == node_resources()


def test_the_output_is_what_ray_start_takes(tmp_path):
    """`ray start --resources` parses it with json.loads into {name: number}."""
    done = subprocess.run(
        [sys.executable, "-m", "dlspec_ray.cli", "node-resources"],
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(done.stdout)
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in parsed.items())


def test_labels_say_this_cpu_node_has_no_gpu(capsys):
    from ray._private.label_utils import parse_node_labels_string

    from dlspec_ray.hardware import detect_gpus

    assert main(["node-resources", "--labels"]) == 0
    labels = parse_node_labels_string(capsys.readouterr().out.strip())
    gpus = detect_gpus().archs
    assert labels["dlspec/cpu-arch"] == host_cpu_arch()
    assert labels["dlspec/gpu-arch"] == (gpus[0] if len(set(gpus)) == 1 else "none")


@pytest.mark.parametrize(
    ("archs", "kind", "resources", "gpu_label"),
    [
        ((), "V100", {}, "none"),  # no GPU: no accelerator type, whatever is given
        (("sm_70",), "V100", {"gpu_arch:sm_70": 1.0, "accelerator_type:V100": 1.0}, "sm_70"),
        (("sm_90",) * 8, "H100", {"gpu_arch:sm_90": 8.0, "accelerator_type:H100": 1.0}, "sm_90"),
    ],
    ids=["cpu-node", "v100-node", "h100-node"],
)
def test_a_gpu_node_advertises_rays_accelerator_type_beside_gpu_arch(
    archs, kind, resources, gpu_label
):
    """What `ray start` gets on a V100 or H100 node (the GPUs handed in: this host has none);
    the type's names are Ray's own constants."""
    from ray.util import accelerators

    from dlspec_ray.hardware import GpuDetection
    from dlspec_ray.runtime.advertise import advertised

    assert kind in (accelerators.NVIDIA_TESLA_V100, accelerators.NVIDIA_H100)
    node = advertised(GpuDetection(archs, "test"), accelerator_type=kind)
    assert node.resources == {f"cpu_arch:{host_cpu_arch()}": 1.0, **resources}
    assert node.labels == {"dlspec/cpu-arch": host_cpu_arch(), "dlspec/gpu-arch": gpu_label}

from __future__ import annotations

import json
import subprocess
import sys

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

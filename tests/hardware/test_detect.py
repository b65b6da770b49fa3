from __future__ import annotations

import platform

import pytest

from dlspec_ray.hardware import host_cpu_arch, node_resources
from dlspec_ray.hardware.detect import parse_compute_capability


@pytest.mark.parametrize(
    ("text", "arch"), [("7.0", "sm_70"), ("9.0", "sm_90"), (" 8.6\n", "sm_86")]
)
def test_compute_capability_becomes_sm_name(text, arch):
    assert parse_compute_capability(text) == arch


def test_this_node_advertises_its_cpu_arch():
    arch = host_cpu_arch()
    assert arch in {"x86_64", "aarch64"}
    assert (platform.machine() in ("x86_64", "AMD64")) == (arch == "x86_64")
    assert node_resources()[f"cpu_arch:{arch}"] == 1.0

from __future__ import annotations

import platform
import stat

import pytest

from dlspec_ray.hardware import (
    compute_capability_arch,
    detect_gpus,
    host_cpu_arch,
    node_resources,
)
from dlspec_ray.hardware.detect import parse_compute_capability


class NvmlMock:
    """A stand-in for the NVML bindings (``pynvml``): there is no GPU on these machines.

    It answers the four calls detection makes, for GPUs of the given compute capabilities.
    """

    def __init__(self, capabilities: list[tuple[int, int]], fail: str | None = None):
        self.capabilities = capabilities
        self.fail = fail
        self.shut_down = False

    def nvmlInit(self) -> None:
        if self.fail:
            raise RuntimeError(self.fail)

    def nvmlDeviceGetCount(self) -> int:
        return len(self.capabilities)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return self.capabilities[handle]

    def nvmlShutdown(self) -> None:
        self.shut_down = True


def nvidia_smi_mock(tmp_path, output: str, code: int = 0) -> str:
    """A stand-in ``nvidia-smi`` executable that prints what the real one prints for
    ``--query-gpu=compute_cap --format=csv,noheader``."""
    path = tmp_path / "nvidia-smi"
    path.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(
    ("capability", "arch"),
    [
        ((7, 0), "sm_70"),
        ((7, 5), "sm_75"),
        ((8, 6), "sm_86"),
        ((9, 0), "sm_90"),
        ((10, 0), "sm_100"),
    ],
)
def test_compute_capability_names_the_architecture(capability, arch):
    assert compute_capability_arch(*capability) == arch
    assert parse_compute_capability(f"{capability[0]}.{capability[1]}\n") == arch


@pytest.mark.parametrize("capability", [(0, 0), (7, -1)])
def test_an_impossible_compute_capability_is_refused(capability):
    with pytest.raises(ValueError, match=r"expected a compute capability such as 9\.0"):
        compute_capability_arch(*capability)


def test_nvml_is_asked_first_and_shut_down():
    nvml = NvmlMock([(9, 0), (9, 0), (7, 0)])
    found = detect_gpus(nvml=nvml, smi="/nonexistent/nvidia-smi")
    assert (found.archs, found.source) == (("sm_90", "sm_90", "sm_70"), "nvml")
    assert nvml.shut_down


def test_nvidia_smi_answers_when_nvml_fails(tmp_path):
    smi = nvidia_smi_mock(tmp_path, "9.0\\n9.0\\n")
    found = detect_gpus(nvml=NvmlMock([], fail="driver not loaded"), smi=smi)
    assert (found.archs, found.source) == (("sm_90", "sm_90"), "nvidia-smi")
    assert "NVML: driver not loaded" in found.note


@pytest.mark.parametrize(
    ("output", "code", "note"),
    [("", 9, "returned non-zero exit status 9"), ("not a number\\n", 0, "invalid literal")],
    ids=["smi-fails", "smi-garbage"],
)
def test_no_gpu_when_no_tool_answers(tmp_path, output, code, note):
    found = detect_gpus(nvml=None, smi=nvidia_smi_mock(tmp_path, output, code))
    assert (found.archs, found.source) == ((), "none")
    assert note in found.note


def test_no_gpu_tool_on_this_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    found = detect_gpus(nvml=None)
    assert (found.archs, found.source, found.note) == ((), "none", "nvidia-smi: not on PATH")


def test_a_node_advertises_one_gpu_arch_unit_per_gpu():
    resources = node_resources(["sm_90", "sm_90", "nvidia/sm70"])
    assert resources == {
        f"cpu_arch:{host_cpu_arch()}": 1.0,
        "gpu_arch:sm_70": 1.0,
        "gpu_arch:sm_90": 2.0,
    }


def test_this_node_advertises_its_cpu_arch():
    arch = host_cpu_arch()
    assert arch in {"x86_64", "aarch64"}
    assert (platform.machine() in ("x86_64", "AMD64")) == (arch == "x86_64")
    assert node_resources()[f"cpu_arch:{arch}"] == 1.0

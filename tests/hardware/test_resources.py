from __future__ import annotations

import pytest

from dlspec_ray.hardware import CPU_ARCH_UNIT, ActorResources, candidate_requests
from dlspec_ray.spec.types import CpuSpec, GpuSpec, HardwareManifest


def hardware(**fields) -> HardwareManifest:
    base = dict(kind="hardware", id="0" * 8, name="hw", version="1.0.0", description="", path=None)
    return HardwareManifest(**base, **fields)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (None, [{"CPU": 1}]),
        (
            hardware(cpu=CpuSpec(arch=("x86_64",), ncpu=2)),
            [{"CPU": 2, "cpu_arch:x86_64": CPU_ARCH_UNIT}],
        ),
        (
            hardware(cpu=CpuSpec(arch=("x86_64", "aarch64"), ncpu=1)),
            [
                {"CPU": 1, "cpu_arch:x86_64": CPU_ARCH_UNIT},
                {"CPU": 1, "cpu_arch:aarch64": CPU_ARCH_UNIT},
            ],
        ),
        (
            hardware(cpu=CpuSpec(arch=("x86_64",)), gpu=(GpuSpec("sm_70", count=2),)),
            [{"CPU": 1, "GPU": 2, "gpu_arch:sm_70": 2, "cpu_arch:x86_64": CPU_ARCH_UNIT}],
        ),
        (
            hardware(
                cpu=CpuSpec(arch=()),
                gpu=(GpuSpec("sm_90"), GpuSpec("sm_90")),
                memory=2 * 2**30,
            ),
            [{"CPU": 1, "GPU": 2, "memory": 2 * 2**30, "gpu_arch:sm_90": 2}],
        ),
    ],
    ids=["no-manifest", "cpu", "several-archs", "gpus", "memory-no-arch"],
)
def test_candidate_requests_follow_the_documented_rule(manifest, expected):
    assert [r.as_dict() for r in candidate_requests(manifest)] == expected


def test_actor_options_are_what_ray_takes():
    request = ActorResources(num_cpus=2, num_gpus=1, memory=1024, resources={"gpu_arch:sm_70": 1})
    assert request.as_actor_options() == {
        "num_cpus": 2,
        "num_gpus": 1,
        "memory": 1024,
        "resources": {"gpu_arch:sm_70": 1},
    }
    assert ActorResources().as_actor_options() == {"num_cpus": 1, "num_gpus": 0}

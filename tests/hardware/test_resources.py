from __future__ import annotations

from pathlib import Path

import pytest

from dlspec_ray.hardware import CPU_ARCH_UNIT, ActorResources, candidate_requests
from dlspec_ray.spec.types import CpuSpec, GpuSpec, HardwareManifest

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "hardware"


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


@pytest.mark.parametrize(
    ("manifest", "options"),
    [
        (
            hardware(cpu=CpuSpec(arch=("x86_64",), ncpu=4)),
            [{"num_cpus": 4, "num_gpus": 0, "resources": {"cpu_arch:x86_64": CPU_ARCH_UNIT}}],
        ),
        (
            hardware(cpu=CpuSpec(arch=("x86_64",), ncpu=4), gpu=(GpuSpec("sm_70"),)),
            [
                {
                    "num_cpus": 4,
                    "num_gpus": 1,
                    "resources": {"gpu_arch:sm_70": 1, "cpu_arch:x86_64": CPU_ARCH_UNIT},
                }
            ],
        ),
        (
            hardware(cpu=CpuSpec(arch=("aarch64",)), memory=4 * 2**30),
            [
                {
                    "num_cpus": 1,
                    "num_gpus": 0,
                    "memory": 4 * 2**30,
                    "resources": {"cpu_arch:aarch64": CPU_ARCH_UNIT},
                }
            ],
        ),
        (
            hardware(cpu=CpuSpec(arch=("aarch64", "x86_64")), gpu=(GpuSpec("sm_90", count=8),)),
            [
                {
                    "num_cpus": 1,
                    "num_gpus": 8,
                    "resources": {"gpu_arch:sm_90": 8, "cpu_arch:aarch64": CPU_ARCH_UNIT},
                },
                {
                    "num_cpus": 1,
                    "num_gpus": 8,
                    "resources": {"gpu_arch:sm_90": 8, "cpu_arch:x86_64": CPU_ARCH_UNIT},
                },
            ],
        ),
        (
            hardware(cpu=CpuSpec(arch=()), gpu=(GpuSpec("sm_70"), GpuSpec("sm_90"))),
            [
                {
                    "num_cpus": 1,
                    "num_gpus": 2,
                    "resources": {"gpu_arch:sm_70": 1, "gpu_arch:sm_90": 1},
                }
            ],
        ),
    ],
    ids=["cpu-ncpu", "gpu-arch-count", "memory", "several-archs-and-gpus", "mixed-gpus"],
)
def test_actor_options_follow_the_documented_rule(manifest, options):
    assert [r.as_actor_options() for r in candidate_requests(manifest)] == options


@pytest.mark.parametrize(
    ("name", "gpus"),
    [("x86-64-cpu", []), ("x86-64-node", []), ("v100-node", ["sm_70"]), ("h100-node", ["sm_90"])],
)
def test_shipped_manifests_fit_the_node_that_detection_describes(name, gpus):
    """A node of that kind, advertising what node_resources() detects, hosts the request."""
    from dlspec_ray.hardware import host_cpu_arch, node_resources
    from dlspec_ray.runtime.placement import satisfies
    from dlspec_ray.spec.loader import load_manifest

    if host_cpu_arch() != "x86_64":
        pytest.skip("these manifests are for x86-64 nodes")
    manifest = load_manifest(MANIFESTS / f"{name}.yaml")
    node = {"CPU": 64, "GPU": len(gpus), "memory": 2**40, **node_resources(gpus)}
    assert [satisfies(node, r) for r in candidate_requests(manifest)] == [True]
    assert not satisfies({**node, "GPU": 0}, candidate_requests(manifest)[0]) or not gpus

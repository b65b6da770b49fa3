from __future__ import annotations

import pytest

from dlspec_ray.spec.arch import (
    cpu_arch_resource,
    gpu_arch_resource,
    normalize_cpu_arch,
    normalize_gpu_arch,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x86_64", "x86_64"),
        ("x86-64", "x86_64"),
        ("amd64", "x86_64"),
        ("X86_64", "x86_64"),
        ("AMD64", "x86_64"),
        (" x86_64 ", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
    ],
)
def test_cpu_arch_names_normalise(name: str, expected: str) -> None:
    assert normalize_cpu_arch(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nvidia/sm70", "sm_70"),
        ("sm70", "sm_70"),
        ("sm_70", "sm_70"),
        ("SM_70", "sm_70"),
        ("nvidia/sm_80", "sm_80"),
        ("sm_90a", "sm_90a"),
        ("sm90a", "sm_90a"),
        ("sm_100", "sm_100"),
        ("amd/gfx90a", "gfx90a"),
        ("gfx90a", "gfx90a"),
        ("gfx1100", "gfx1100"),
        ("GFX942", "gfx942"),
    ],
)
def test_gpu_arch_names_normalise(name: str, expected: str) -> None:
    assert normalize_gpu_arch(name) == expected


@pytest.mark.parametrize("name", ["i386", "x86", "arm", "sparc", "", "sm_70"])
def test_unknown_cpu_arch_lists_the_accepted_forms(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"unknown CPU architecture .*x86_64 \(also x86-64, amd64\)"
    ):
        normalize_cpu_arch(name)


@pytest.mark.parametrize("name", ["sm7", "nvidia/gfx90a", "amd/sm70", "volta", "sm_70b", "x86_64"])
def test_unknown_gpu_arch_lists_the_accepted_forms(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown GPU architecture .*sm_70.*gfx90a"):
        normalize_gpu_arch(name)


@pytest.mark.parametrize(
    ("function", "name", "expected"),
    [
        (cpu_arch_resource, "amd64", "cpu_arch:x86_64"),
        (cpu_arch_resource, "aarch64", "cpu_arch:aarch64"),
        (gpu_arch_resource, "nvidia/sm70", "gpu_arch:sm_70"),
        (gpu_arch_resource, "sm_90", "gpu_arch:sm_90"),
        (gpu_arch_resource, "amd/gfx90a", "gpu_arch:gfx90a"),
    ],
)
def test_resource_names_use_normalised_archs(function, name: str, expected: str) -> None:
    assert function(name) == expected

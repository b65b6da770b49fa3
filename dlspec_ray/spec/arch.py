"""The one place where CPU and GPU architecture names are normalised.

Manifests, node detection and resource requests all meet as Ray custom resource
names (``cpu_arch:x86_64``), so every spelling of an architecture must map to
exactly one name or scheduling silently finds no node.
"""

from __future__ import annotations

__all__ = [
    "CPU_ARCHS",
    "cpu_arch_resource",
    "gpu_arch_resource",
    "normalize_cpu_arch",
    "normalize_gpu_arch",
]

import re

# Canonical name -> the other spellings accepted for it.
CPU_ARCHS: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86-64", "amd64"),
    "aarch64": ("arm64",),
    "ppc64le": (),
    "s390x": (),
    "riscv64": (),
}

_CPU_ALIASES = {
    alias: canonical for canonical, aliases in CPU_ARCHS.items() for alias in (canonical, *aliases)
}

_NVIDIA = re.compile(r"(?:nvidia/)?sm_?(\d{2,3})([af]?)")
_AMD = re.compile(r"(?:amd/)?gfx([0-9a-f]{3,4})")

_CPU_FORMS = ", ".join(
    f"{name} (also {', '.join(aliases)})" if aliases else name
    for name, aliases in CPU_ARCHS.items()
)
_GPU_FORMS = (
    "an NVIDIA compute capability (sm_70, sm70, SM_70, nvidia/sm70; sm_90a keeps its suffix) "
    "or an AMD target (gfx90a, amd/gfx90a)"
)


def normalize_cpu_arch(name: str) -> str:
    canonical = _CPU_ALIASES.get(str(name).strip().lower())
    if canonical is None:
        raise ValueError(f"unknown CPU architecture {name!r}; expected one of {_CPU_FORMS}")
    return canonical


def normalize_gpu_arch(name: str) -> str:
    text = str(name).strip().lower()
    if match := _NVIDIA.fullmatch(text):
        return f"sm_{match.group(1)}{match.group(2)}"
    if match := _AMD.fullmatch(text):
        return f"gfx{match.group(1)}"
    raise ValueError(f"unknown GPU architecture {name!r}; expected {_GPU_FORMS}")


def cpu_arch_resource(arch: str) -> str:
    """The custom resource a node of this CPU architecture advertises."""
    return f"cpu_arch:{normalize_cpu_arch(arch)}"


def gpu_arch_resource(arch: str) -> str:
    """The custom resource a node advertises once per GPU of this architecture."""
    return f"gpu_arch:{normalize_gpu_arch(arch)}"

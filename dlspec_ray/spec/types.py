"""Typed, immutable manifests: what the rest of dlspec-ray consumes.

These types are only ever built by the loader after validation succeeded, so
code above ``spec/`` can rely on every field being present and well-formed
(normalised architectures, parsed byte sizes, compiled-clean stage code).
"""

from __future__ import annotations

__all__ = [
    "KINDS",
    "STAGE_NAMES",
    "AccuracyExpectation",
    "CpuSpec",
    "DatasetManifest",
    "ExpectedOutput",
    "FrameworkSpec",
    "GpuSpec",
    "HardwareManifest",
    "Manifest",
    "ModelManifest",
    "ReferenceLog",
    "SoftwareManifest",
    "Source",
    "StageSource",
    "TaskRefs",
    "TensorSpec",
]

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("hardware", "software", "dataset", "model", "reference")

# Model stage keys in the order they run; "load" runs once per host actor.
STAGE_NAMES = ("load", "pre-process", "run", "post-process")


@dataclass(frozen=True)
class Source:
    """One artifact: where it lives, and what its bytes must hash to.

    ``checksum`` is ``sha256:<hex>`` for a file (or an archive) and
    ``sha256-tree:<hex>`` for a folder. ``path``, when set, is the entry (a folder
    or a file) to use inside the unpacked archive or the folder: a relative POSIX
    path with no ``..``, such as ``"test"`` or ``"data/val"``.
    """

    name: str
    source: str
    checksum: str | None
    unpack: bool
    base_dir: Path
    # Where it was declared, for error messages: the manifest file and field path.
    origin: str = ""
    field: str = ""
    path: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class StageSource:
    """Python source embedded in a manifest, with where it sits in the YAML file."""

    name: str
    code: str
    file: str
    line: int

    def padded(self) -> str:
        """The code shifted down so its line numbers match the YAML file's."""
        return "\n" * (self.line - 1) + self.code

    def compile(self) -> Callable[[Any, Any], Any]:
        """The stage's ``fn``, compiled so tracebacks point into the YAML file."""
        namespace: dict[str, Any] = {"__name__": f"dlspec_stage_{self.name.replace('-', '_')}"}
        exec(compile(self.padded(), self.file, "exec"), namespace)
        return namespace["fn"]


@dataclass(frozen=True)
class Manifest:
    kind: str
    id: str
    name: str
    version: str
    description: str
    path: Path | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class CpuSpec:
    arch: tuple[str, ...]
    ncpu: float = 1


@dataclass(frozen=True)
class GpuSpec:
    arch: str
    count: int = 1
    memory: int | None = None
    driver: str | None = None
    interconnect: str | None = None


@dataclass(frozen=True)
class HardwareManifest(Manifest):
    cpu: CpuSpec = CpuSpec(arch=())
    gpu: tuple[GpuSpec, ...] = ()
    memory: int | None = None
    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameworkSpec:
    name: str
    version: str


@dataclass(frozen=True)
class SoftwareManifest(Manifest):
    framework: FrameworkSpec = FrameworkSpec("", "")
    environment: str = "inline"
    container: str | None = None
    python: str | None = None
    packages: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # The process environment's sandbox: "" (none) or "bubblewrap".
    sandbox: str = ""


@dataclass(frozen=True)
class DatasetManifest(Manifest):
    license: str = ""
    sources: tuple[Source, ...] = ()
    reader: StageSource | None = None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    element_type: str
    shape: tuple[int, ...]
    modality: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "element_type": self.element_type,
            "shape": list(self.shape),
            "modality": self.modality,
        }


@dataclass(frozen=True)
class ModelManifest(Manifest):
    license: str = ""
    author: str = ""
    task: str = ""
    framework: FrameworkSpec = FrameworkSpec("", "")
    job_type: str = "inference"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    artifacts: tuple[Source, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    system_requirements: tuple[str, ...] = ()
    # Keyed by STAGE_NAMES; "load" may be absent, the other three are required.
    stages: dict[str, StageSource] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRefs:
    """The four manifests a reference log was made with, as refs (name@version or id)."""

    model: str
    dataset: str
    software: str | None = None
    hardware: str | None = None


@dataclass(frozen=True)
class AccuracyExpectation:
    value: float
    tolerance: float


@dataclass(frozen=True)
class ExpectedOutput:
    sample: str
    top1: int
    # The five best classes, in any order: near-ties may swap places across CPUs and
    # libraries, while the set stays the same.
    top5: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ReferenceLog(Manifest):
    task: TaskRefs = TaskRefs("", "")
    accuracy: dict[str, AccuracyExpectation] = field(default_factory=dict)
    performance: dict[str, Any] = field(default_factory=dict)
    expected_outputs: tuple[ExpectedOutput, ...] = ()
    notes: str = ""

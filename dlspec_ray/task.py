"""A task: the four manifests (and maybe a reference log) resolved and checked against each other.

Everything here happens before Ray starts, so a wrong reference or an
incompatible pair fails in milliseconds with exit code 2.
"""

from __future__ import annotations

__all__ = ["Task", "TaskMismatch", "check_compatible", "resolve_task", "software_fits"]

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dlspec_ray.errors import DLSpecError
from dlspec_ray.spec.catalog import Catalog
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    Manifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)
from dlspec_ray.spec.versions import version_satisfies

# How much a default software manifest's environment asks of the machine.
_ENVIRONMENT_COST = {"inline": 0, "process": 1, "docker": 2}


class TaskMismatch(DLSpecError):
    """The manifests of a task do not fit together."""


@dataclass(frozen=True)
class Task:
    model: ModelManifest
    dataset: DatasetManifest
    software: SoftwareManifest | None = None
    hardware: HardwareManifest | None = None
    reference: ReferenceLog | None = None

    def manifests(self) -> dict[str, Manifest | None]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "software": self.software,
            "hardware": self.hardware,
            "reference": self.reference,
        }

    def describe(self) -> str:
        parts = [f"{self.model.ref} on {self.dataset.ref}"]
        if self.software:
            parts.append(f"with {self.software.ref}")
        if self.hardware:
            parts.append(f"on {self.hardware.ref}")
        return " ".join(parts)


def resolve_task(
    model: str | ModelManifest | None,
    dataset: str | DatasetManifest | None,
    software: str | SoftwareManifest | None = None,
    hardware: str | HardwareManifest | None = None,
    reference: str | ReferenceLog | None = None,
    *,
    catalog: Catalog | None = None,
    extra_roots: Sequence[str | Path] = (),
) -> Task:
    """Resolve refs (paths, ``name@version`` or ids); what is not given comes from the reference.

    Without a software manifest, the catalog's first one whose framework fits
    the model is used.
    """
    catalog = catalog or Catalog.default(extra_roots=[Path(p) for p in extra_roots])
    ref_log = _get(catalog, reference, "reference")
    if ref_log is not None:
        model = model or ref_log.task.model
        dataset = dataset or ref_log.task.dataset
        software = software or ref_log.task.software
        hardware = hardware or ref_log.task.hardware
    if model is None or dataset is None:
        raise TaskMismatch("a task needs a model and a dataset: give --model and --dataset")
    task = Task(
        model=_get(catalog, model, "model"),
        dataset=_get(catalog, dataset, "dataset"),
        software=_get(catalog, software, "software"),
        hardware=_get(catalog, hardware, "hardware"),
        reference=ref_log,
    )
    if task.software is None:
        task = _with_default_software(task, catalog)
    check_compatible(task)
    return task


def check_compatible(task: Task) -> None:
    """The reference log first: when it supplied the other refs, it is the root cause."""
    log = task.reference
    if log is not None:
        for kind in ("model", "dataset"):
            manifest: Manifest = getattr(task, kind)
            wanted = getattr(log.task, kind)
            if wanted not in (manifest.ref, manifest.id, manifest.name):
                raise TaskMismatch(
                    f"{log.path}: task.{kind}: the reference log was made with {kind} "
                    f"{wanted!r}, but this run uses {manifest.ref}. Drop --reference, or run "
                    f"the {kind} the log names."
                )
    model, software = task.model, task.software
    if software is not None:
        want, have = model.framework, software.framework
        if want.name != have.name:
            raise TaskMismatch(
                f"{model.path}: framework.name: the model needs {want.name!r}, but the software "
                f"manifest {software.ref} ({software.path}) provides {have.name!r}. Pick a "
                f"software manifest whose framework is {want.name!r}."
            )
        if not version_satisfies(have.version, want.version):
            raise TaskMismatch(
                f"{model.path}: framework.version: the model needs {want.name} {want.version}, "
                f"but {software.ref} provides {have.version}."
            )


def software_fits(model: ModelManifest, software: SoftwareManifest) -> bool:
    """Whether ``software`` provides the framework name and version ``model`` needs."""
    want, have = model.framework, software.framework
    return want.name == have.name and version_satisfies(have.version, want.version)


def _get(catalog: Catalog, ref: str | Manifest | None, kind: str):
    if ref is None or isinstance(ref, Manifest):
        return ref
    return catalog.resolve(str(ref), kind)


def _with_default_software(task: Task, catalog: Catalog) -> Task:
    """The fitting software manifest that needs the least: inline first, then by ref."""
    framework = task.model.framework
    fitting = [s for s in catalog.of_kind("software") if software_fits(task.model, s)]
    if fitting:
        best = min(fitting, key=lambda s: (_ENVIRONMENT_COST.get(s.environment, 9), s.ref))
        return replace(task, software=best)
    raise TaskMismatch(
        f"no software manifest in the catalog provides {framework.name} {framework.version}, "
        f"which {task.model.ref} needs; give one with --software."
    )

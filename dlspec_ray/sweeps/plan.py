"""From a sweep spec to the tasks to run: resolve patterns, cross, filter, label.

Everything here happens before Ray starts. A combination that cannot run (a
model whose framework the software does not provide, an environment this build
lacks, a framework whose package extra is not installed) is dropped with the
filter that removed it and why, so the user sees what the sweep will not do.
"""

from __future__ import annotations

__all__ = ["DroppedTask", "EmptySweep", "SweepPlan", "SweepTask", "plan_sweep"]

import fnmatch
import glob
import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dlspec_ray.errors import DLSpecError
from dlspec_ray.frameworks import missing_framework
from dlspec_ray.spec.catalog import Catalog, UnknownManifest
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    Manifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)
from dlspec_ray.sweeps.spec import ExcludeRule, SweepSpec
from dlspec_ray.task import Task, TaskMismatch, check_compatible, software_fits

_GLOB_CHARS = re.compile(r"[*?\[]")


class EmptySweep(DLSpecError):
    """Every combination of the sweep was filtered out: nothing would run."""


@dataclass(frozen=True)
class SweepTask:
    index: int
    model: ModelManifest
    dataset: DatasetManifest
    software: SoftwareManifest
    hardware: HardwareManifest | None
    batch_size: int
    environment: str
    reference: ReferenceLog | None
    label: str = ""

    def task(self) -> Task:
        return Task(self.model, self.dataset, self.software, self.hardware, self.reference)

    def describe(self) -> str:
        hardware = f" on {self.hardware.ref}" if self.hardware else ""
        return (
            f"{self.model.ref} x {self.dataset.ref} x {self.software.ref}{hardware}, "
            f"batch {self.batch_size}, {self.environment}"
        )


@dataclass(frozen=True)
class DroppedTask:
    combination: str
    filter: str
    reason: str


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    tasks: tuple[SweepTask, ...]
    dropped: tuple[DroppedTask, ...]
    combinations: int

    def describe(self) -> str:
        lines = [
            f"sweep {self.spec.name}: {self.combinations} combination(s), "
            f"{len(self.tasks)} task(s) to run, {len(self.dropped)} dropped"
        ]
        lines += [f"  run   {t.label}: {t.describe()}" for t in self.tasks]
        lines += [f"  drop  {d.combination}: {d.filter}: {d.reason}" for d in self.dropped]
        return "\n".join(lines)


def plan_sweep(
    spec: SweepSpec,
    *,
    catalog: Catalog | None = None,
    manifest_roots: Sequence[str | Path] = (),
    available_environments: Sequence[str] = ("inline",),
) -> SweepPlan:
    """The tasks of ``spec``: its cross product less what the filters drop, labelled."""
    roots = [spec.base_dir / m for m in spec.manifests] + [Path(p) for p in manifest_roots]
    catalog = catalog or Catalog.default(extra_roots=roots)
    models = _resolve_all(catalog, spec, spec.models, "model", "models")
    datasets = _resolve_all(catalog, spec, spec.datasets, "dataset", "datasets")
    hardware: list[HardwareManifest | None] = (
        list(_resolve_all(catalog, spec, spec.hardware, "hardware", "hardware"))
        if spec.hardware
        else [None]
    )
    software_given = bool(spec.software)
    all_software = (
        _resolve_all(catalog, spec, spec.software, "software", "software")
        if software_given
        else catalog.of_kind("software")
    )
    tasks: list[SweepTask] = []
    dropped: list[DroppedTask] = []
    combinations = 0
    for model, dataset, software, hw, batch in itertools.product(
        models, datasets, all_software, hardware, spec.batch_sizes
    ):
        if not software_given and not software_fits(model, software):
            continue  # without a software list, each model only meets software that fits it
        for environment in spec.environments or (software.environment,):
            combinations += 1
            name = _combination(model, dataset, software, hw, batch, environment)
            reason = _drop_reason(
                spec, model, dataset, software, hw, batch, environment, available_environments
            )
            if reason is not None:
                dropped.append(DroppedTask(name, *reason))
                continue
            reference = (
                _reference_for(catalog, model, dataset, software)
                # A log's accuracy is over the whole dataset: a --limit run cannot match it.
                if spec.references == "auto" and spec.limit is None
                else None
            )
            tasks.append(
                SweepTask(len(tasks), model, dataset, software, hw, batch, environment, reference)
            )
    if not tasks:
        raise EmptySweep(_empty_message(spec, combinations, dropped, models, all_software))
    return SweepPlan(spec, tuple(_labelled(tasks)), tuple(dropped), combinations)


def _resolve_all(
    catalog: Catalog, spec: SweepSpec, patterns: Sequence[str], kind: str, key: str
) -> list:
    found: dict[str, Manifest] = {}
    for i, pattern in enumerate(patterns):
        where = f"{spec.file}: {key}[{i}]"
        for manifest in _resolve(catalog, spec, pattern, kind, where):
            found.setdefault(manifest.id, manifest)
    return list(found.values())


def _resolve(
    catalog: Catalog, spec: SweepSpec, pattern: str, kind: str, where: str
) -> list[Manifest]:
    if "/" in pattern or pattern.endswith((".yaml", ".yml")):
        full = pattern if Path(pattern).is_absolute() else str(spec.base_dir / pattern)
        paths = sorted(glob.glob(full)) if _GLOB_CHARS.search(pattern) else [full]
        if not paths:
            raise UnknownManifest(
                f"{where}: {pattern!r} matches no file (relative to {spec.base_dir})"
            )
        return [_wrap(lambda p=p: catalog.resolve(p, kind), where) for p in paths]
    if _GLOB_CHARS.search(pattern):
        matches = [
            m
            for m in catalog.of_kind(kind)
            if fnmatch.fnmatchcase(m.name, pattern) or fnmatch.fnmatchcase(m.ref, pattern)
        ]
        if not matches:
            known = ", ".join(sorted(m.ref for m in catalog.of_kind(kind))) or "none"
            raise UnknownManifest(
                f"{where}: {pattern!r} matches no {kind} manifest; known {kind} manifests: {known}"
            )
        return sorted(matches, key=lambda m: m.ref)
    return [_wrap(lambda: catalog.resolve(pattern, kind), where)]


def _wrap(resolve: Callable[[], Manifest], where: str) -> Manifest:
    try:
        return resolve()
    except UnknownManifest as exc:
        raise UnknownManifest(f"{where}: {exc}") from None


def _drop_reason(
    spec: SweepSpec,
    model: ModelManifest,
    dataset: DatasetManifest,
    software: SoftwareManifest,
    hardware: HardwareManifest | None,
    batch: int,
    environment: str,
    available_environments: Sequence[str],
) -> tuple[str, str] | None:
    for rule in spec.exclude:
        if _excluded(rule, model, dataset, software, hardware, batch, environment):
            return "exclude", f"matches {rule.describe()} of the sweep file"
    try:
        check_compatible(Task(model, dataset, software, hardware))
    except TaskMismatch:
        want, have = model.framework, software.framework
        if want.name != have.name:
            return "framework", f"the model needs {want.name}, the software provides {have.name}"
        return (
            "framework",
            f"the model needs {want.name} {want.version}, the software provides {have.version}",
        )
    if environment not in available_environments:
        return (
            "environment",
            f"the {environment!r} environment is not available in this build of dlspec-ray "
            f"(available: {', '.join(available_environments)})",
        )
    missing = missing_framework(software, environment, model)
    if missing is not None:
        return "framework extra", missing
    return None


def _excluded(
    rule: ExcludeRule,
    model: ModelManifest,
    dataset: DatasetManifest,
    software: SoftwareManifest,
    hardware: HardwareManifest | None,
    batch: int,
    environment: str,
) -> bool:
    checks = [
        (rule.model, model),
        (rule.dataset, dataset),
        (rule.software, software),
        (rule.hardware, hardware),
    ]
    for pattern, manifest in checks:
        if pattern is None:
            continue
        if manifest is None or not (
            fnmatch.fnmatchcase(manifest.name, pattern)
            or fnmatch.fnmatchcase(manifest.ref, pattern)
            or pattern == manifest.id
        ):
            return False
    if rule.batch_size is not None and rule.batch_size != batch:
        return False
    return rule.environment is None or rule.environment == environment


def _reference_for(
    catalog: Catalog, model: ModelManifest, dataset: DatasetManifest, software: SoftwareManifest
) -> ReferenceLog | None:
    """A reference log made with this model, dataset and software, if the catalog has one."""
    for log in catalog.of_kind("reference"):
        task = log.task
        if task.model not in (model.ref, model.id, model.name):
            continue
        if task.dataset not in (dataset.ref, dataset.id, dataset.name):
            continue
        if task.software is not None and task.software not in (
            software.ref,
            software.id,
            software.name,
        ):
            continue
        return log
    return None


def _combination(
    model: ModelManifest,
    dataset: DatasetManifest,
    software: SoftwareManifest,
    hardware: HardwareManifest | None,
    batch: int,
    environment: str,
) -> str:
    hw = f" x {hardware.ref}" if hardware else ""
    return f"{model.ref} x {dataset.ref} x {software.ref}{hw} (batch {batch}, {environment})"


def _labelled(tasks: list[SweepTask]) -> list[SweepTask]:
    """Name each task by the aspects that vary in the sweep (the model always)."""
    aspects = {
        "dataset": lambda t: t.dataset.name,
        "software": lambda t: t.software.name,
        "hardware": lambda t: t.hardware.name if t.hardware else "any",
        "batch": lambda t: f"b{t.batch_size}",
        "environment": lambda t: t.environment,
    }
    varying = [a for a, get in aspects.items() if len({get(t) for t in tasks}) > 1]
    labels = ["-".join([t.model.name, *(aspects[a](t) for a in varying)]) for t in tasks]
    counts = Counter(labels)
    out = []
    for task, label in zip(tasks, labels, strict=True):
        if counts[label] > 1:  # two versions of one manifest name
            label = f"{label}-{task.index}"
        out.append(SweepTask(**{**task.__dict__, "label": re.sub(r"[^A-Za-z0-9._-]+", "_", label)}))
    return out


def _empty_message(
    spec: SweepSpec,
    combinations: int,
    dropped: list[DroppedTask],
    models: list[ModelManifest],
    software: list[SoftwareManifest],
) -> str:
    where = spec.file
    if combinations == 0:
        frameworks = ", ".join(
            sorted({f"{m.framework.name} {m.framework.version}" for m in models})
        )
        return (
            f"{where}: the sweep {spec.name!r} has no task: no software manifest provides the "
            f"framework its models need ({frameworks}); add software manifests, or list them "
            "under software:"
        )
    by_filter: dict[str, list[DroppedTask]] = {}
    for item in dropped:
        by_filter.setdefault(item.filter, []).append(item)
    lines = [
        f"{where}: the sweep {spec.name!r} has no task left: all {combinations} combination(s) "
        "were removed by its filters:"
    ]
    for name, items in by_filter.items():
        lines.append(f"  {name}: removed {len(items)}")
        for item in items[:5]:
            lines.append(f"    - {item.combination}: {item.reason}")
        if len(items) > 5:
            lines.append(f"    - and {len(items) - 5} more")
    lines.append(
        "Change the sweep's models, software or exclude lists, or install what is missing."
    )
    return "\n".join(lines)

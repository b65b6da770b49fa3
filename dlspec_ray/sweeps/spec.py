"""A sweep file: which manifests to cross, and how to run the tasks.

Validated with the manifests' own rule machinery, so a sweep file gets the same
treatment: every problem at once, with its line, and the nearest valid key for
an unknown one.
"""

from __future__ import annotations

__all__ = ["SWEEP_KEYS", "ExcludeRule", "SweepSpec", "load_sweep_spec", "sweep_spec_from"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlspec_ray.errors import ManifestError, Problem
from dlspec_ray.spec.rules import (
    INVALID,
    Checker,
    Choice,
    Const,
    Field,
    FreeMapping,
    Integer,
    ListOf,
    Node,
    OneOrList,
    Record,
    Text,
    describe,
)
from dlspec_ray.spec.validate import ENVIRONMENTS
from dlspec_ray.spec.yaml_lines import parse_yaml

_PATTERN = Text("a manifest ref, path or glob such as 'mnist-8*'", non_empty=True)


@dataclass(frozen=True)
class ExcludeRule:
    """Tasks matching every given field are dropped; fields are globs (batch_size: an int)."""

    model: str | None = None
    dataset: str | None = None
    software: str | None = None
    hardware: str | None = None
    batch_size: int | None = None
    environment: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.__dict__.items() if v is not None]
        return "exclude {" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class SweepSpec:
    name: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    software: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    batch_sizes: tuple[int, ...] = (64,)
    environments: tuple[str, ...] = ()
    limit: int | None = None
    actors: int | None = None
    concurrency: int = 2
    max_errors: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    references: str = "auto"
    exclude: tuple[ExcludeRule, ...] = ()
    manifests: tuple[str, ...] = ()
    description: str = ""
    # Where relative paths and globs of file patterns resolve: the sweep file's folder.
    base_dir: Path = field(default_factory=Path.cwd)
    file: str = "<sweep>"


_EXCLUDE = Record(
    [
        Field("model", _PATTERN),
        Field("dataset", _PATTERN),
        Field("software", _PATTERN),
        Field("hardware", _PATTERN),
        Field("batch_size", Integer(minimum=1)),
        Field("environment", Choice(ENVIRONMENTS)),
    ],
    "a mapping of model, dataset, software, hardware, batch_size, environment patterns",
    build=lambda checker, node, values: _exclude(checker, node, values),
)

_RULE = Record(
    [
        Field("kind", Const("sweep"), doc="Optional; 'sweep'."),
        Field("name", Text("a name", non_empty=True)),
        Field("description", Text()),
        Field("models", OneOrList(_PATTERN, "a list of model refs or globs"), required=True),
        Field("datasets", OneOrList(_PATTERN, "a list of dataset refs or globs"), required=True),
        Field("software", OneOrList(_PATTERN, "a list of software refs or globs")),
        Field("hardware", OneOrList(_PATTERN, "a list of hardware refs or globs")),
        Field("batch_sizes", OneOrList(Integer(minimum=1), "a list of batch sizes")),
        Field("environments", OneOrList(Choice(ENVIRONMENTS), "a list of environments")),
        Field("limit", Integer(minimum=1), nullable=True),
        Field("actors", Integer(minimum=1), nullable=True),
        Field("concurrency", Integer(minimum=1)),
        Field("max_errors", Integer(minimum=0)),
        Field("options", FreeMapping("a mapping of model options")),
        Field("references", Choice(("auto", "none"))),
        Field("exclude", ListOf(_EXCLUDE, "a list of exclude mappings")),
        Field("manifests", OneOrList(Text("a folder", non_empty=True), "a list of folders")),
    ],
    "a sweep: a mapping with models, datasets and optional software, hardware, batch_sizes",
)

SWEEP_KEYS = tuple(_RULE.by_name)


def _exclude(checker: Checker, node: Node, values: dict[str, Any]) -> Any:
    if not values:
        return checker.report(node, "expected at least one of " + ", ".join(_EXCLUDE.by_name))
    return ExcludeRule(**values)


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """The sweep in the YAML file at ``path``; ManifestError lists every problem."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ManifestError(
            [Problem(file, "", f"cannot read the sweep file: {error.strerror or error}")]
        ) from None
    data, problems = parse_yaml(text, file)
    if problems:
        raise ManifestError(problems)
    return _check(data, file, path.resolve().parent, default_name=path.stem)


def sweep_spec_from(
    data: Mapping[str, Any], *, base_dir: str | Path | None = None, name: str = "sweep"
) -> SweepSpec:
    """A sweep given as a mapping (the YAML file's keys), checked like a file."""
    folder = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    return _check(dict(data), "<sweep>", folder, default_name=name)


def _check(data: Any, file: str, base_dir: Path, default_name: str) -> SweepSpec:
    checker = Checker(file, base_dir)
    root = Node(data, "", getattr(data, "line", None))
    if not isinstance(data, dict):
        checker.report(root, f"expected a mapping with models and datasets, got {describe(data)}")
        raise ManifestError(checker.problems)
    values = _RULE.check(checker, root)
    if checker.problems or values is INVALID:
        raise ManifestError(sorted(checker.problems, key=lambda p: p.line or 0))
    values.pop("kind", None)
    values.setdefault("name", default_name)
    return SweepSpec(**values, base_dir=base_dir, file=file)

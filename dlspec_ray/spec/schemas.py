"""JSON Schemas of the manifest kinds, for editors and other tools.

The shipped files are generated from the validator's rule tables
(``python -m dlspec_ray.spec.schemas`` rewrites them), and a test checks that
they are current, so what an editor accepts is what ``dlspec-ray validate``
accepts, less what JSON Schema cannot say (compiling stage code, semver
precedence, duplicate names).
"""

from __future__ import annotations

__all__ = ["build_schema", "load_schema", "schema_path", "write_schemas"]

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.spec.types import KINDS
from dlspec_ray.spec.validate import KIND_RULES

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"expected a manifest kind in {', '.join(KINDS)}, got {kind!r}")


def schema_path(kind: str) -> Path:
    """Where the shipped schema of ``kind`` is, for an editor's settings."""
    _check_kind(kind)
    return Path(str(files("dlspec_ray.spec").joinpath("schemas", f"{kind}.json")))


def load_schema(kind: str) -> dict[str, Any]:
    _check_kind(kind)
    text = files("dlspec_ray.spec").joinpath("schemas", f"{kind}.json").read_text("utf-8")
    return json.loads(text)


def build_schema(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` as the validator's rules describe it."""
    _check_kind(kind)
    return {
        "$schema": _DRAFT,
        "$id": f"urn:dlspec-ray:manifest:{kind}",
        "title": f"DLSpec {kind} manifest",
        **KIND_RULES[kind].schema(),
    }


def write_schemas(folder: Path | None = None) -> list[Path]:
    """Regenerate the schema files (into the package by default)."""
    target = folder or Path(__file__).with_name("schemas")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = target / f"{kind}.json"
        path.write_text(json.dumps(build_schema(kind), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_schemas():
        print(written)

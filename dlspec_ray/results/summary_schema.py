"""The JSON Schema of ``summary.json``: a versioned contract for what a run writes.

``summary.json`` is what tools read instead of the Parquet rows (``dlspec-ray runs``,
``compare``, ``report``, the runs index, notebooks) and what ``reproduce`` reads to know
how a run was made and what it measured. Its fields grow as the runtime grows; the
schema (``schemas/summary.schema.json``, shipped with the package) says which fields
every run has, their types and ranges, so a reader can check a summary before it trusts
it, and a change that would break readers shows up as a new ``SUMMARY_SCHEMA_VERSION``
rather than as a ``KeyError`` in someone's tool. Fields the schema does not list are
allowed: a newer writer's additions do not break an older reader.

``check_summary`` returns every problem as ``"field.path: message"`` (list indices in
brackets: ``errors.messages[0].batch_ids[1]``); an empty list means the summary is valid.
"""

from __future__ import annotations

__all__ = ["SUMMARY_SCHEMA_VERSION", "check_summary", "summary_schema"]

import functools
import json
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# The version of summary.schema.json; its "$id" ends with it. Raised when a field is
# removed, renamed or narrowed, or a new field becomes required.
SUMMARY_SCHEMA_VERSION = 1
_SCHEMA_FILE = "summary.schema.json"


@functools.cache
def _schema_text() -> str:
    return files("dlspec_ray.results").joinpath("schemas", _SCHEMA_FILE).read_text("utf-8")


def summary_schema() -> dict[str, Any]:
    """The schema of ``summary.json`` (a fresh copy each call: callers may change it)."""
    return json.loads(_schema_text())


@functools.cache
def _validator() -> Draft202012Validator:
    # Imported here: reading the schema needs no jsonschema, only checking a summary does.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(summary_schema())


def check_summary(summary: dict[str, Any], where: str = "summary.json") -> list[str]:
    """Every way ``summary`` breaks the schema, as ``"field.path: message"``; [] when valid.

    A problem with the document as a whole (not an object) is reported under ``where``.
    A missing required field is reported under its own path (``run_id: is required``).
    """
    problems = []
    for error in _validator().iter_errors(summary):
        path, message = _describe(error)
        problems.append((path, f"{_dotted(path) or where}: {message}"))
    problems.sort(key=lambda item: ([str(p) for p in item[0]], item[1]))
    return list(dict.fromkeys(text for _, text in problems))


def _describe(error: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "required":
        # jsonschema reports a missing field at its parent; name the field itself.
        names = [n for n in error.validator_value if isinstance(n, str)]
        missing = next((n for n in names if error.message.startswith(repr(n))), None)
        if missing is not None:
            return [*path, missing], "is required"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return path, f"{json.dumps(error.instance, default=str)} is not one of {allowed}"
    return path, error.message


def _dotted(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

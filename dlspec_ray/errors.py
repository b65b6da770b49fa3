"""The error types every layer raises, and the exit code each one maps to.

The CLI turns any ``DLSpecError`` into its message and ``exit_code`` with no
traceback, so a message must stand on its own: which file, which field, what is
wrong, what to do.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "DLSpecError",
    "EvaluationFailed",
    "ManifestError",
    "PlacementError",
    "Problem",
    "RunInterrupted",
    "UsageError",
]

from dataclasses import dataclass


class DLSpecError(Exception):
    """Bad input: manifests, arguments or artifacts (exit code 2)."""

    exit_code = 2


class UsageError(DLSpecError):
    """A command-line argument or API parameter is wrong."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with where its complete shards were kept (exit code 130).

    Still a ``KeyboardInterrupt``, so a notebook or a caller stops as it would
    have; the message says how to finish the run (``--resume``).
    """

    exit_code = 130


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one manifest file, located as precisely as we can."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ManifestError(DLSpecError):
    """Every problem found in one or more manifest files, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ArtifactError(DLSpecError):
    """An artifact is missing, unreachable, or does not match its checksum."""


class PlacementError(DLSpecError):
    """No node of the cluster can host an actor with the requested resources."""


class EvaluationFailed(Exception):
    """The evaluation ran but failed its reference check or its error budget (exit 1)."""

    exit_code = 1

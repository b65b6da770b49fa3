"""The error types every layer raises, and what each one's exit code means.

One root, ``DLSpecError``, and two branches beneath it, so the class says what
went wrong and the CLI needs no table:

- ``BadInput`` (exit 2): the manifests, arguments or artifacts are wrong; nothing
  ran, or what ran was stopped before it could mean anything. Fix the input.
- ``RunFailed`` (exit 1): the input was fine and the evaluation (or the job, or a
  host actor's load stage) ran, but it failed: its reference check, its error
  budget, a job on a cluster, a host that could not set up.

The CLI turns any ``DLSpecError`` into its message and ``exit_code`` with no
traceback (``dlspec-ray: error:`` for bad input, ``dlspec-ray: failed:`` for a
failed run), so a message must stand on its own: which file, which field, what
is wrong, what to do. README, "What a run writes", lists the exit codes.

``DLSpecError`` raised itself, or a subclass that derives from it directly, is
taken as bad input (exit 2), as it was before the two branches existed; new
errors should derive from ``BadInput`` or ``RunFailed``.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BadInput",
    "DLSpecError",
    "EvaluationFailed",
    "ManifestError",
    "PlacementError",
    "Problem",
    "RunFailed",
    "RunInterrupted",
    "UsageError",
]

from dataclasses import dataclass


class DLSpecError(Exception):
    """The root of dlspec-ray's errors; taken as bad input (exit 2) unless a branch says else."""

    exit_code = 2


class BadInput(DLSpecError):
    """Bad input: manifests, arguments or artifacts (exit code 2)."""

    exit_code = 2


class RunFailed(DLSpecError):
    """The input was good, but the run, the job or a host's setup failed (exit code 1)."""

    exit_code = 1


class UsageError(BadInput):
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


class ManifestError(BadInput):
    """Every problem found in one or more manifest files, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ArtifactError(BadInput):
    """An artifact is missing, unreachable, or does not match its checksum."""


class PlacementError(BadInput):
    """No node of the cluster can host an actor with the requested resources.

    Bad input: the hardware manifest asks for what no node offers (or the cluster
    given is the wrong one); rerunning as it is cannot help.
    """


class EvaluationFailed(RunFailed):
    """The evaluation ran but failed its reference check or its error budget (exit 1)."""

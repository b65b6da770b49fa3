"""The error hierarchy says what each exit means: BadInput exits 2, RunFailed exits 1.

Every ``DLSpecError`` subclass in the package is in ``EXIT_CODES``, so a new error
must be given a meaning here; and the CLI prints ``error:`` or ``failed:`` by class.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import dlspec_ray
import dlspec_ray.commands.status as status_command
from dlspec_ray.cli import main
from dlspec_ray.errors import BadInput, DLSpecError, ManifestError, Problem, RunFailed

PACKAGE = Path(dlspec_ray.__file__).parent

# (module, class, exit code). Classes that derive from DLSpecError directly are bad
# input by the root's default; they should move under BadInput in their own modules.
EXIT_CODES = [
    ("dlspec_ray.errors", "DLSpecError", 2),
    ("dlspec_ray.errors", "BadInput", 2),
    ("dlspec_ray.errors", "UsageError", 2),
    ("dlspec_ray.errors", "ManifestError", 2),
    ("dlspec_ray.errors", "ArtifactError", 2),
    ("dlspec_ray.errors", "PlacementError", 2),
    ("dlspec_ray.errors", "RunFailed", 1),
    ("dlspec_ray.errors", "EvaluationFailed", 1),
    ("dlspec_ray.jobs", "JobFailed", 1),
    ("dlspec_ray.runtime.pool", "HostSetupError", 2),
    ("dlspec_ray.loadgen.run", "SUTFailed", 1),
    ("dlspec_ray.spec.catalog", "UnknownManifest", 2),
    ("dlspec_ray.task", "TaskMismatch", 2),
    ("dlspec_ray.stages.reader", "ReaderError", 2),
    ("dlspec_ray.frameworks", "MissingFramework", 2),
    ("dlspec_ray.results.storage", "StorageError", 2),
    ("dlspec_ray.results.compare", "IncomparableRuns", 2),
    ("dlspec_ray.results.ledger", "LedgerError", 2),
    ("dlspec_ray.results.schema", "BatchOutputError", 2),
    ("dlspec_ray.results.index", "UnknownRun", 2),
    ("dlspec_ray.trust", "UntrustedManifest", 2),
    ("dlspec_ray.reproduce", "NotReproducible", 2),
    ("dlspec_ray.resume", "ResumeMismatch", 2),
    ("dlspec_ray.sweeps.plan", "EmptySweep", 2),
    ("dlspec_ray.environments.errors", "EnvironmentUnavailable", 2),
]


def error_class(module: str, name: str) -> type[DLSpecError]:
    return getattr(importlib.import_module(module), name)


def instance(cls: type[DLSpecError]) -> DLSpecError:
    if issubclass(cls, ManifestError):
        return cls([Problem("m.yaml", "version", "boom", 3)])
    return cls("boom")


@pytest.mark.parametrize(("module", "name", "code"), EXIT_CODES, ids=[e[1] for e in EXIT_CODES])
def test_each_error_class_exits_with_the_code_its_branch_means(module, name, code):
    cls = error_class(module, name)
    assert issubclass(cls, DLSpecError)
    assert cls.exit_code == code and instance(cls).exit_code == code
    assert issubclass(cls, RunFailed) == (code == 1)
    if cls.__mro__[1] is not DLSpecError and cls is not DLSpecError:
        assert issubclass(cls, (BadInput, RunFailed)), f"{name} is under neither branch"


def _descendants_of_the_root() -> set[str]:
    """Every class in the package that derives from DLSpecError, by name, read from the source."""
    bases: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                bases.setdefault(node.name, set()).update(names)
    found = {"DLSpecError"}
    while True:
        more = {name for name, of in bases.items() if of & found} - found
        if not more:
            return found
        found |= more


def test_every_error_of_the_package_is_in_the_table():
    assert _descendants_of_the_root() == {name for _, name, _ in EXIT_CODES}


@pytest.mark.parametrize(("module", "name", "code"), EXIT_CODES, ids=[e[1] for e in EXIT_CODES])
def test_the_cli_says_error_for_bad_input_and_failed_for_a_failed_run(
    monkeypatch, capsys, module, name, code
):
    cls = error_class(module, name)

    def handle(args):
        raise instance(cls)

    monkeypatch.setattr(status_command, "handle", handle)
    assert main(["status"]) == code
    err = capsys.readouterr().err
    label = "failed" if code == 1 else "error"
    assert err.startswith(f"dlspec-ray: {label}: ") and "boom" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--debug", "status"], ["status", "--debug"]])
def test_debug_shows_the_traceback_before_or_after_the_subcommand(monkeypatch, capsys, argv):
    def handle(args):
        raise RunFailed("the job ended badly")

    monkeypatch.setattr(status_command, "handle", handle)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "dlspec-ray: failed: the job ended badly" in err

"""Finished runs from Python: list a results root, load a run, compare two, report.

The same operations as ``dlspec-ray runs``, ``compare`` and ``report``, returning
objects a notebook can work with. Nothing here needs Ray: a results root can be
analysed on any machine.
"""

from __future__ import annotations

__all__ = ["compare", "list_runs", "load_run", "report"]

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.results.compare import RunComparison
    from dlspec_ray.results.index import RunRecord


def list_runs(root: str | Path = "runs", *, rebuild: bool = False) -> list[RunRecord]:
    """The index records of ``root``, oldest first (``rebuild`` rescans the run folders)."""
    from dlspec_ray.results.index import read_index, rebuild_index

    return rebuild_index(Path(root)) if rebuild else read_index(Path(root))


def load_run(ref: str | Path, root: str | Path | None = None) -> EvaluationResult:
    """A finished run: its directory, or a run id, id prefix or task label in ``root``."""
    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.results.index import find_run, read_summary

    run_dir = find_run(ref, Path(root) if root is not None else None)
    return EvaluationResult(summary=read_summary(run_dir), out_dir=run_dir)


def compare(
    a: str | Path | EvaluationResult,
    b: str | Path | EvaluationResult,
    *,
    root: str | Path | None = None,
    shared_samples: bool = False,
) -> RunComparison:
    """Compare two runs (results, directories, or ids/labels in ``root``); B relative to A."""
    from dlspec_ray.results.compare import compare_run_dirs

    dirs = [r.out_dir if hasattr(r, "out_dir") else load_run(r, root).out_dir for r in (a, b)]
    return compare_run_dirs(dirs[0], dirs[1], shared_samples=shared_samples)


def report(root: str | Path = "runs", out: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of ``root``; returns its path."""
    from dlspec_ray.frameworks import require_module
    from dlspec_ray.results.report import write_report

    require_module("matplotlib", "notebook", "the report's plots")
    return write_report(Path(root), Path(out) if out is not None else None)

"""Finished runs from Python: list a results root, load a run, compare two, report.

The same operations as ``dlspec-ray runs``, ``compare`` and ``report``, returning
objects a notebook can work with. Nothing here needs Ray: a results root can be
analysed on any machine.

A results root or run directory is a local path or an object storage URI
(``s3://bucket/runs``, ``gs://bucket/runs``). An S3 endpoint, region and
credentials come from ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``, or from ``storage_options`` (for example
``{"endpoint_url": "http://127.0.0.1:9000"}``), which win; see
``dlspec_ray.results.storage``.
"""

from __future__ import annotations

__all__ = ["compare", "list_runs", "load_run", "report"]

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.results.compare import RunComparison
    from dlspec_ray.results.index import RunRecord
    from dlspec_ray.results.storage import StorageLocation


def list_runs(
    root: str | Path | StorageLocation = "runs",
    *,
    rebuild: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> list[RunRecord]:
    """The index records of ``root``, oldest first (``rebuild`` rescans the run folders)."""
    from dlspec_ray.results.index import read_index, rebuild_index
    from dlspec_ray.results.storage import as_location

    location = as_location(root, storage_options)
    return rebuild_index(location) if rebuild else read_index(location)


def load_run(
    ref: str | Path | StorageLocation,
    root: str | Path | StorageLocation | None = None,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> EvaluationResult:
    """A finished run: its directory or URI, or a run id, id prefix or task label in ``root``.

    ``out_dir`` of the result is a ``Path`` for a local run, else a ``StorageLocation``.
    """
    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.results.index import find_run, read_summary

    run_dir = find_run(ref, root, storage_options=storage_options)
    return EvaluationResult(summary=read_summary(run_dir), out_dir=run_dir)


def compare(
    a: str | Path | StorageLocation | EvaluationResult,
    b: str | Path | StorageLocation | EvaluationResult,
    *,
    root: str | Path | StorageLocation | None = None,
    shared_samples: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> RunComparison:
    """Compare two runs (results, directories or URIs, or ids/labels in ``root``); B relative
    to A."""
    from dlspec_ray.results.compare import compare_run_dirs

    dirs = [
        r.out_dir
        if hasattr(r, "out_dir")
        else load_run(r, root, storage_options=storage_options).out_dir
        for r in (a, b)
    ]
    return compare_run_dirs(dirs[0], dirs[1], shared_samples=shared_samples)


def report(
    root: str | Path | StorageLocation = "runs",
    out: str | Path | StorageLocation | None = None,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> Path | StorageLocation:
    """Write the self-contained HTML report of ``root``; returns where it went.

    By default it is written next to the runs, ``ROOT/report.html`` (an object when
    ``root`` is in object storage); ``out`` may name a local file or a URI instead.
    """
    from dlspec_ray.frameworks import require_module
    from dlspec_ray.results.report import write_report
    from dlspec_ray.results.storage import as_location

    require_module("matplotlib", "notebook", "the report's plots")
    target = as_location(out, storage_options, local_ok=True) if out is not None else None
    return write_report(as_location(root, storage_options), target)

"""Where a run's results go while it runs, and how they become a whole run directory.

A local ``--out`` is built in a staging folder beside it and renamed into place
when complete, so it holds a whole run or nothing. Shards come back to the
driver as Arrow record batches and are written as they arrive, then dropped.

An ``--out`` in object storage (``s3://...``) has no rename: the host actors
write their Parquet shards there directly, the driver writes only the ledger
and, last, ``summary.json``, which is what marks the run complete.

Either way the driver keeps a ledger of complete shards (``ledger.jsonl``):
one line per shard with its id, sample range, rows and file digest.
"""

from __future__ import annotations

__all__ = ["RunOutput", "check_output", "is_uri", "open_output"]

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlspec_ray.plan import Plan
from dlspec_ray.progress import Phases
from dlspec_ray.results.parquet_io import SAMPLES_DIR
from dlspec_ray.results.run_dir import LEDGER_NAME, check_out_dir, publish

# What stage code printed, shard by shard, batch by batch.
STAGE_LOG_NAME = "stage.log"
# A stage log bound for object storage is kept in memory until the end: up to this much.
_REMOTE_LOG_LIMIT = 16 * 2**20


def is_uri(out: Any) -> bool:
    """Whether ``out`` names object storage (a URI, or a remote ``StorageLocation``)."""
    from dlspec_ray.results.storage import StorageLocation
    from dlspec_ray.results.storage import is_uri as storage_uri

    if isinstance(out, StorageLocation):
        return not out.is_local
    return not isinstance(out, Path) and storage_uri(str(out)) and not str(out).startswith("file:")


@dataclass
class RunOutput:
    # What the EvaluationResult points at: the final folder, or the run's StorageLocation.
    final: Any
    # Where the driver writes (the staging folder, or the store).
    target: Any
    # What host actors write shards to themselves; None: rows come back to the driver.
    shard_store: Any
    phases: Phases
    staging: Path | None = None
    overwrite: bool = False
    # Samples whose outputs hold NaN or inf, counted by the host actors.
    nonfinite: int = 0
    # Echo what stage code prints to stderr as well as to the stage log (--verbose).
    echo: bool = False
    _ledger: list[str] = field(default_factory=list)
    _log: list[str] = field(default_factory=list)

    def add(self, result: Any) -> None:
        """Record one finished shard: write its rows if they came back, then its ledger line."""
        from dlspec_ray.results.parquet_io import write_shard

        written = result.written
        if result.table is not None:
            written = write_shard(result.table, self.target, result.shard_id)
            result.table = None
        entry = {
            "shard": result.shard_id,
            "start": result.start,
            "stop": result.stop,
            "rows": result.rows,
            "failed": result.failed,
            "nonfinite": result.nonfinite,
            "node": result.node_id,
            **_file_entry(written),
        }
        self.nonfinite += result.nonfinite
        if result.log:
            self._stage_log(
                f"== shard {result.shard_id} on node {result.node_id[:12]}\n{result.log}"
            )
        line = json.dumps(entry, sort_keys=True) + "\n"
        self._ledger.append(line)
        self._append(LEDGER_NAME, line)

    def finish(
        self,
        plan: Plan,
        *,
        environment: dict[str, Any],
        wall_s: float,
        started_at: datetime,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """Summarise the shards (streaming over them) and write ``summary.json`` last."""
        from dlspec_ray.results.reference import with_finite_check
        from dlspec_ray.results.summary import summarise, write_summary

        opts = plan.options
        summary = summarise(
            self.target,
            run_id=plan.run_id,
            task=plan.task.manifests(),
            environment=environment,
            wall_s=wall_s,
            batch_size=opts.batch_size,
            actors=plan.actors,
            started_at=started_at,
            finished_at=datetime.now(timezone.utc),
            reference=plan.task.reference,
        )
        summary.update(extra)
        summary["nonfinite_samples"] = self.nonfinite
        if summary.get("reference"):
            summary["reference"] = with_finite_check(summary["reference"], self.nonfinite)
        summary["status"] = _status(summary, opts.max_errors)
        self.phases.mark("summarise")
        summary["phases_s"] = self.phases.seconds
        if self._log:
            self.target.child(STAGE_LOG_NAME).write_text("".join(self._log))
        write_summary(self.target, summary)
        return summary

    def publish(self) -> None:
        if self.staging is not None:
            publish(self.staging, Path(self.final), self.overwrite)

    def discard(self) -> None:
        """Remove what this run wrote, and only that: an object-storage run without its
        summary.json keeps its ledger, so it reads as incomplete, never as complete."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _stage_log(self, text: str) -> None:
        """What stage code printed goes to the run's stage log, never to the driver's stdout."""
        if self.echo:
            print(text, file=sys.stderr, end="", flush=True)
        if self.staging is not None:
            with open(self.staging / STAGE_LOG_NAME, "a", encoding="utf-8") as f:
                f.write(text)
        elif sum(map(len, self._log)) < _REMOTE_LOG_LIMIT:
            self._log.append(text)  # object storage: written once, with the summary

    def _append(self, name: str, line: str) -> None:
        if self.staging is not None:
            with open(self.staging / name, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        else:
            # Object storage has no append: the whole ledger is rewritten (one PUT, atomic).
            self.target.child(name).write_text("".join(self._ledger))


def check_output(out: Any, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` the finished run could not be written to."""
    if is_uri(out):
        _check_store(_store(out), overwrite)
    else:
        check_out_dir(Path(os.path.abspath(os.path.expanduser(out))), overwrite)


def open_output(
    out: str | Path,
    *,
    overwrite: bool,
    run_id: str,
    phases: Phases | None = None,
    echo: bool = False,
) -> RunOutput:
    """Check ``out`` and open the run's output there; nothing is written outside it."""
    phases = phases or Phases()
    if is_uri(out):
        store = _store(out)
        if _check_store(store, overwrite):
            store.remove_tree()  # a previous run of ours: object storage cannot swap it whole
        return RunOutput(final=store, target=store, shard_store=store, phases=phases, echo=echo)
    final = Path(os.path.abspath(os.path.expanduser(out)))
    check_out_dir(final, overwrite)
    staging = final.parent / f".{final.name}.partial-{run_id}"
    staging.mkdir(parents=True)
    return RunOutput(
        final=final,
        target=staging,
        shard_store=None,
        phases=phases,
        staging=staging,
        overwrite=overwrite,
        echo=echo,
    )


def _store(out: Any) -> Any:
    from dlspec_ray.results.storage import StorageLocation

    return StorageLocation.parse(out if isinstance(out, StorageLocation) else str(out))


def _check_store(store: Any, overwrite: bool) -> bool:
    """Whether ``store`` holds a previous run to replace; refuse what may not be written."""
    from dlspec_ray.errors import UsageError
    from dlspec_ray.results.summary import SUMMARY_NAME

    store.check_writable()
    held = store.list_files(recursive=True) if store.exists() else []
    if not held:
        return False
    ours = any(store.child(name).exists() for name in (SUMMARY_NAME, LEDGER_NAME))
    if not overwrite:
        raise UsageError(
            f"--out {store.uri}: already holds {len(held)} file(s); choose another --out, or "
            "pass --overwrite to replace the run there"
        )
    if not ours:
        raise UsageError(
            f"--out {store.uri}: --overwrite replaces only a dlspec-ray run (one with "
            f"summary.json or {LEDGER_NAME}); it holds other files ({', '.join(held[:3])}); "
            "choose another --out"
        )
    return True


def _file_entry(written: Any) -> dict[str, Any]:
    """The ledger's view of what ``write_shard`` returned."""
    if written is None:
        return {}
    return {
        "file": f"{SAMPLES_DIR}/{written.location.name}",
        "sha256": written.sha256,
        "bytes": written.size,
    }


def _status(summary: dict[str, Any], max_errors: int) -> str:
    if summary["errors"]["count"] > max_errors:
        return "error_budget_exceeded"
    reference = summary.get("reference")
    if reference and reference["verdict"] != "PASS":
        return "reference_failed"
    return "ok"

"""Where a run's results go while it runs, and how they become a whole run directory.

A local ``--out`` is built in a staging folder beside it and renamed into place
when complete, so it holds a whole run or nothing. Shards come back to the
driver as Arrow record batches and are written as they arrive, then dropped.

An ``--out`` in object storage (``s3://...``) has no rename: the host actors
write their Parquet shards there directly, the driver writes only the ledger
and, last, ``summary.json``, which is what marks the run complete.

Either way the driver keeps a ledger of complete shards (``ledger.jsonl``):
one line per shard with its id, sample range, rows and file digest, after a
``run.json`` that says what the run is (``results.run_identity``). A run that is
interrupted keeps what is complete, as a run directory without ``summary.json``
that ``--resume`` finishes (see ``resume``).
"""

from __future__ import annotations

__all__ = ["RunOutput", "check_output", "copy_manifests", "is_uri", "open_output", "staging_path"]

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlspec_ray.inflight import remember
from dlspec_ray.plan import Plan
from dlspec_ray.progress import Phases
from dlspec_ray.results.ledger import LEDGER_NAME, LedgerEntry
from dlspec_ray.results.parquet_io import SAMPLES_DIR
from dlspec_ray.results.run_dir import check_out_dir, keep_incomplete, publish
from dlspec_ray.results.run_identity import RunIdentity
from dlspec_ray.results.run_summary import RunFacts, RunOutcome, RunSummary
from dlspec_ray.results.trace import TRACE_NAME, TraceFile
from dlspec_ray.resume import IncompleteRun

# What stage code printed, shard by shard, batch by batch.
STAGE_LOG_NAME = "stage.log"
# --keep-stage-outputs: each kept batch's stage outputs, one .npz per batch.
STAGE_OUTPUTS_DIR = "stage_outputs"
# The samples that failed on every attempt: sample id, shard, batch, error.
QUARANTINE_NAME = "quarantine.parquet"
# A stage log bound for object storage is kept in memory until the end: up to this much.
_REMOTE_LOG_LIMIT = 16 * 2**20
# Quarantined sample ids listed in summary.json (the quarantine table has them all).
_LISTED_QUARANTINE = 100


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
    # Echo what stage code prints to stderr as well as to the stage log (--verbose).
    echo: bool = False
    # Shards with a ledger line (a resumed run starts with its kept ones): each is written
    # once, so a result that comes twice (a retried call whose first attempt also ended)
    # leaves no duplicate rows.
    done: dict[int, LedgerEntry] = field(default_factory=dict)
    kept: int = 0  # of which, kept from before a resume
    duplicates: int = 0
    # The in-flight record of the staging folder (inflight.py), written before the folder:
    # a driver killed at any moment leaves nothing env gc cannot find.
    record: Path | None = None
    _log: list[str] = field(default_factory=list)
    # trace.json, with --trace (start_trace): in the staging folder, or for object storage
    # a local file uploaded with the summary.
    trace: TraceFile | None = None

    def start_trace(self) -> None:
        """Stream the host actors' trace events of this run into ``trace.json``."""
        if self.staging is not None:
            self.trace = TraceFile(self.staging / TRACE_NAME)
        else:
            handle, path = tempfile.mkstemp(prefix="dlspec-ray-trace-", suffix=".json")
            os.close(handle)
            self.trace = TraceFile(Path(path))

    def add(self, result: Any, *, attempts: int = 1, ran: bool = True) -> bool:
        """Record one finished shard: write its rows if they came back, then its ledger line.

        Returns False, writing nothing, for a shard that is already recorded.
        """
        from dlspec_ray.results.parquet_io import write_shard

        if result.shard_id in self.done:
            self.duplicates += 1
            result.table = None
            return False
        written = result.written
        if result.table is not None:
            written = write_shard(result.table, self.target, result.shard_id)
            result.table = None
        for batch_id, values in result.stage_outputs.items():
            self._location(f"{STAGE_OUTPUTS_DIR}/batch-{batch_id:06d}.npz").write_bytes(
                stage_outputs_npz(values)
            )
        result.stage_outputs = {}
        entry = LedgerEntry(
            shard=result.shard_id,
            start=result.start,
            stop=result.stop,
            rows=result.rows,
            failed=result.failed,
            nonfinite=result.nonfinite,
            node=result.node_id,
            ran=ran,
            quarantined=result.failed if ran else 0,
            attempts=attempts,
            **_file_entry(written),
        )
        if result.log:
            self._stage_log(
                f"== shard {result.shard_id} on node {result.node_id[:12]}\n{result.log}"
            )
        if self.trace is not None and result.trace:
            self.trace.add(result.trace)
            result.trace = []
        self.done[entry.shard] = entry
        self._append(LEDGER_NAME, entry.as_line())
        return True

    @property
    def nonfinite(self) -> int:
        """Samples whose outputs hold NaN or inf, counted by the host actors."""
        return sum(e.nonfinite for e in self.done.values())

    def keep_incomplete(self) -> str | None:
        """After an interruption: leave the complete shards where ``--resume`` finds them.

        Returns where they are, or None when no shard is complete (nothing is kept).
        A local run goes to ``--out`` when that is free, else stays in its staging folder.
        """
        if not any(e.ran for e in self.done.values()):
            return None
        if self.staging is None:
            return str(self.final)
        kept = keep_incomplete(self.staging, Path(self.final))
        if kept != self.staging:
            self.staging = None
        return str(kept)

    def finish(
        self,
        plan: Plan,
        *,
        environment: dict[str, Any],
        wall_s: float,
        started_at: datetime,
        facts: RunFacts,
        passes: list[dict[str, Any]] | None = None,
    ) -> RunSummary:
        """Summarise the shards (streaming over them) and write ``summary.json`` last.

        ``passes``: the timed-only passes of ``--repeats`` after the first, each
        ``{"throughput_sps", "wall_s", "latency_ms"}``; summarised with the first.
        """
        from dlspec_ray.results.metrics import repeat_summary
        from dlspec_ray.results.summary import summarise, write_summary

        opts = plan.options
        measured = summarise(
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
            warmup=opts.warmup,
            subset_of=plan.index.subset_of if plan.index is not None else None,
        )
        first = {k: measured[k] for k in ("throughput_sps", "wall_s", "latency_ms")}
        self.phases.mark("summarise")
        if self._log:
            self.target.child(STAGE_LOG_NAME).write_text("".join(self._log))
        outcome = RunOutcome(
            nonfinite_samples=self.nonfinite,
            quarantine=self._quarantine(),
            phases_s=self.phases.seconds,
            repeats=repeat_summary([first, *passes]) if passes else None,
            resumed=(
                {"shards_kept": self.kept, "shards_run": len(self.done) - self.kept}
                if self.kept
                else None
            ),
            duplicate_results_dropped=self.duplicates,
            trace=self._finish_trace(self.trace) if self.trace is not None else None,
        )
        summary = RunSummary.compose(measured, facts, outcome)
        write_summary(self.target, summary)
        return summary

    def _finish_trace(self, trace: TraceFile) -> dict[str, Any]:
        trace.close()
        if self.staging is None:  # object storage: the local file goes up once, then away
            self.target.child(TRACE_NAME).write_text(trace.path.read_text(encoding="utf-8"))
            trace.path.unlink(missing_ok=True)
        return {"file": TRACE_NAME, "events": trace.events}

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
            self.target.child(name).write_text("".join(e.as_line() for e in self.done.values()))

    def _quarantine(self) -> dict[str, Any]:
        """Write the quarantine table (samples that failed on every attempt); its summary."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from dlspec_ray.results.parquet_io import shard_location

        shards = sorted(s for s, e in self.done.items() if e.quarantined)
        if not shards:
            return {"samples": 0}
        columns = ["sample_id", "shard_id", "batch_id", "error"]
        parts = []
        for shard in shards:
            table = pq.read_table(
                shard_location(self.target, shard).open_input_file(), columns=columns
            )
            parts.append(table.filter(pc.is_valid(table["error"])))
        table = pa.concat_tables(parts)
        attempts = pa.array(
            [self.done[s].attempts for s in table["shard_id"].to_pylist()], pa.int32()
        )
        table = table.append_column("attempts", attempts)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self._location(QUARANTINE_NAME).write_bytes(memoryview(sink.getvalue()))
        ids = table["sample_id"].to_pylist()
        return {
            "samples": len(ids),
            "sample_ids": [str(i) for i in ids[:_LISTED_QUARANTINE]],
            "table": QUARANTINE_NAME,
        }

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """A JSON file of the run directory (``environment.json``, ``artifacts.json``)."""
        import json

        self._location(name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def _location(self, name: str) -> Any:
        from dlspec_ray.results.storage import as_location

        return as_location(self.target).child(name)


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
    identity: RunIdentity,
    phases: Phases | None = None,
    echo: bool = False,
    resume: IncompleteRun | None = None,
) -> RunOutput:
    """Check ``out`` and open the run's output there; nothing is written outside it.

    ``run.json`` is written before anything else. With ``resume``, the interrupted
    run's folder is reopened instead: its kept shards stay, anything a crash left
    half-recorded (a shard file with no ledger line, a torn line) is dropped.
    """
    phases = phases or Phases()
    if resume is not None:
        return _reopen(resume, phases, echo)
    if is_uri(out):
        store = _store(out)
        if _check_store(store, overwrite):
            store.remove_tree()  # a previous run of ours: object storage cannot swap it whole
        identity.write(store)
        copy_manifests(identity, store)
        return RunOutput(final=store, target=store, shard_store=store, phases=phases, echo=echo)
    final = Path(os.path.abspath(os.path.expanduser(out)))
    check_out_dir(final, overwrite)
    staging = staging_path(final, identity.run_id)
    record = remember("staging", staging)
    staging.mkdir(parents=True)
    identity.write(staging)
    copy_manifests(identity, staging)
    return RunOutput(
        final=final,
        target=staging,
        shard_store=None,
        phases=phases,
        staging=staging,
        overwrite=overwrite,
        echo=echo,
        record=record,
    )


def stage_outputs_npz(values: dict[str, Any]) -> bytes:
    """One batch's kept stage outputs as a NumPy ``.npz``: ``pre``, ``run``, and a dict
    output as one array per key (``post.top_k``, ``post.scores``, ``post.output``). A value
    that is not an array (a list of file paths) is stored as an array of its items."""
    import io

    import numpy as np

    arrays: dict[str, Any] = {}
    for stage, value in values.items():
        if isinstance(value, dict):
            arrays.update({f"{stage}.{k}": np.asarray(v) for k, v in value.items()})
        else:
            arrays[stage] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def copy_manifests(identity: RunIdentity, target: Any) -> None:
    """A copy of each manifest file the run was given, byte for byte, where ``run.json``
    says (``manifests/<kind>.yaml``): the run directory says what it ran, without the
    folders it came from (``dlspec-ray reproduce``)."""
    from dlspec_ray.results.storage import as_location

    for entry in identity.manifests.values():
        if entry.get("copy") and entry.get("path"):
            text = Path(entry["path"]).read_bytes()
            as_location(target).child(*entry["copy"].split("/")).write_bytes(text)


def staging_path(final: Path, run_id: str) -> Path:
    """Where a run to ``final`` is built, beside it, until it is published."""
    return final.parent / f".{final.name}.partial-{run_id}"


def _reopen(resume: IncompleteRun, phases: Phases, echo: bool) -> RunOutput:
    identity = resume.identity
    if resume.location.is_local:
        final = Path(identity.out)
        staging = staging_path(final, identity.run_id)
        here = resume.location.local_path
        record = remember("staging", staging)
        if here != staging:
            here.rename(staging)  # --out itself, or an older staging folder: ours either way
        output = RunOutput(
            final=final,
            target=staging,
            shard_store=None,
            phases=phases,
            staging=staging,
            overwrite=True,  # what is at --out now may only be a run: publish() checks
            echo=echo,
            record=record,
        )
    else:
        store = resume.location
        output = RunOutput(final=store, target=store, shard_store=store, phases=phases, echo=echo)
    output.done = dict(resume.done)
    output.kept = len(resume.done)
    _drop_unrecorded(output)
    return output


def _drop_unrecorded(output: RunOutput) -> None:
    """Remove the shard files the ledger does not vouch for, and rewrite the ledger clean."""
    from dlspec_ray.results.parquet_io import list_shards
    from dlspec_ray.results.storage import as_location

    target = as_location(output.target)
    samples = target.child(SAMPLES_DIR)
    if samples.exists():
        for shard, location in list_shards(target):
            if shard not in output.done:
                location.remove()
    lines = "".join(e.as_line() for e in output.done.values())
    output._location(LEDGER_NAME).write_text(lines)


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

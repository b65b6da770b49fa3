"""Scale on paper, measured small: what the driver's plan, ledger, summary and scheduler cost.

Each figure is a measurement of dlspec-ray's own code at a size this machine can hold;
``docs/scale.md`` extrapolates them to 1,000 nodes and 10 million samples. Printed as
one JSON object on stdout (progress on stderr):

- plan: ``plan_shards`` making ``--shards`` one-batch shards, and the two copies
  ``run_shards`` makes of them (its queue, the pending list): time, and bytes per shard
  held (``tracemalloc``: Python objects, and numpy's buffers, which numpy reports to it);
  and the shard counts ``chunk_batches`` gives 10M samples (arithmetic only);
- node ids: a reader's ``list[str]`` of ``--shards`` ids, pickled (as ``ray.put`` stores
  it on each node) and unpickled (the copy each host actor holds): bytes per id;
- ledger: ``--shards`` lines of the real ``LedgerEntry.as_line()`` appended to a
  ``ledger.jsonl`` and read back with ``recorded_entries`` (time, peak and kept bytes);
  ``RunOutput.add`` for ``--fsynced`` shards, each line fsynced as a run does; and
  the whole-ledger rewrite an object-storage run does after every shard;
- summary: a ``SummaryTally`` fed ``--batches`` one-sample batches, built with
  ``rows_from_batch`` (``--batches-per-shard`` to a shard table): bytes kept per batch;
- results: ``RunOutput.add`` writing Parquet shards of ``--rows-per-shard`` rows (Parquet,
  sha256, atomic rename with fsync, fsynced ledger line) and ``summarise`` reading them back;
- scheduler: the two loop steps of ``run_shards`` whose cost grows with the actors
  (choosing the least-loaded actor, listing the refs in flight) at 16 to 16,000 actors;
- ray (unless ``--no-ray``): in a ``dlspec_ray.Session`` (its own embedded Ray), mnist-8
  with batch 1 and one batch per call on ``--ray-shards`` samples, i.e. that many shards,
  end to end on warm actors; ``run_shards`` itself over no-op actors; and ``ray.wait``
  over 1,000 to ``--wait-refs`` pending refs. Run it inside ``scripts/in-private-net.sh``.

Usage: RAY_USAGE_STATS_ENABLED=0 scripts/in-private-net.sh .venv/bin/python
       benchmarks/bench_scale.py [--shards 1000000] [--batches 1000000] [--no-ray]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dlspec_ray.plan import plan_shards  # noqa: E402
from dlspec_ray.progress import Phases  # noqa: E402
from dlspec_ray.results.ledger import LEDGER_NAME, LedgerEntry, recorded_entries  # noqa: E402
from dlspec_ray.results.schema import rows_from_batch, shard_table  # noqa: E402
from dlspec_ray.results.shards import ShardResult  # noqa: E402
from dlspec_ray.results.summary import SummaryTally, summarise  # noqa: E402
from dlspec_ray.run_output import RunOutput  # noqa: E402
from dlspec_ray.runtime.scheduler import chunk_batches  # noqa: E402

MODEL = "mnist-8@1.0.0"
DATASET = "mnist-test@1.0.0"
SOFTWARE = "onnxruntime-cpu@1.0.0"
HARDWARE = "x86-64-cpu@1.0.0"
NODE = "f" * 56  # a Ray node id's length


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def per_call(fn: Callable[[], Any], reps: int) -> float:
    """Seconds per call of ``fn``, over ``reps`` calls."""
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - started) / reps


def traced(fn: Callable[[], Any]) -> tuple[Any, int, int]:
    """(value, bytes still held once ``fn`` returned, peak bytes while it ran)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    value = fn()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, current - base, peak - base


def entry(i: int) -> LedgerEntry:
    """A ledger line as a local run writes it: a shard file with its digest."""
    return LedgerEntry(
        shard=i,
        start=i * 256,
        stop=(i + 1) * 256,
        rows=256,
        node=NODE,
        file=f"samples/shard-{i:05d}.parquet",
        sha256=f"{i:064x}",
        bytes=20_000 + i % 1000,
    )


# -- the plan -----------------------------------------------------------------------------


def bench_plan(shards: int) -> dict[str, Any]:
    made, seconds = timed(lambda: plan_shards(shards, 1, 1))
    assert len(made) == shards
    del made
    plan, held, peak = traced(lambda: plan_shards(shards, 1, 1))
    # What run_shards and Session._stream build from it: the pending list and the queue.
    _, copies_held, _ = traced(lambda: ([s for s in plan], deque((s, 0) for s in plan)))
    spans_s = timed(lambda: [s.spans for s in plan[:100_000]])[1] / min(shards, 100_000)
    return {
        "shards": shards,
        "plan_shards_s": seconds,
        "plan_bytes_per_shard": held / shards,
        "plan_peak_bytes_per_shard": peak / shards,
        "run_shards_copies_bytes_per_shard": copies_held / shards,
        "spans_us_per_shard": spans_s * 1e6,
    }


def bench_chunking() -> dict[str, Any]:
    """The shard counts ``plan`` makes for 10M samples (``chunk_batches``: arithmetic only)."""
    cases = {
        "mnist_batch256_1000_actors": (784, 256, 1_000),
        "mnist_batch256_8000_actors": (784, 256, 8_000),
        "imagenet224_uint8_batch64_8000_actors": (224 * 224 * 3, 64, 8_000),
        "file_paths_batch32_8000_actors": (None, 32, 8_000),
    }
    out = {}
    for name, (per_sample, batch_size, actors) in cases.items():
        batches = -(-10_000_000 // batch_size)
        batch_bytes = None if per_sample is None else per_sample * batch_size
        per_call = chunk_batches(batches, actors, batch_bytes)
        out[name] = {"batches_per_call": per_call, "shards": -(-batches // per_call)}
    return out


def bench_ids(samples: int) -> dict[str, Any]:
    """A node's sample ids (the reader's ``list[str]``): pickled into the object store once,
    and unpickled, a private copy, in every host actor that ``ray.get``s them."""
    ids = [str(i) for i in range(samples)]
    blob = pickle.dumps(ids, protocol=5)
    _, held, _ = traced(lambda: pickle.loads(blob))
    return {
        "samples": samples,
        "pickled_bytes_per_id": len(blob) / samples,
        "unpickled_bytes_per_id": held / samples,
    }


# -- the ledger ---------------------------------------------------------------------------


def _append_lines(path: Path, entries: list[LedgerEntry]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for e in entries:
            f.write(e.as_line())


def bench_ledger(shards: int, folder: Path, fsynced: int) -> dict[str, Any]:
    run = folder / "ledger-run"
    run.mkdir()
    _, append_s = timed(lambda: _append_lines(run / LEDGER_NAME, [entry(i) for i in range(shards)]))
    line_bytes = (run / LEDGER_NAME).stat().st_size / shards
    read, read_s = timed(lambda: recorded_entries(run))
    assert len(read) == shards
    del read
    gc.collect()
    _, held, peak = traced(lambda: recorded_entries(run))

    # What a local run does per shard: RunOutput.add, its line appended and fsynced.
    staging = folder / "fsync-run"
    staging.mkdir()
    output = RunOutput(
        final=folder / "x", target=staging, shard_store=None, phases=Phases(), staging=staging
    )
    results = [_result(i) for i in range(fsynced)]
    _, add_s = timed(lambda: [output.add(r) for r in results])

    # An object-storage run rewrites the whole ledger after every shard (no append there).
    rewrite = {}
    for n in (1_000, 10_000, 100_000):
        if n > shards:
            break
        done = {i: entry(i) for i in range(n)}
        text, s = timed(lambda d=done: "".join(e.as_line() for e in d.values()))
        rewrite[str(n)] = {"s": s, "mib": len(text) / 2**20}
    return {
        "lines": shards,
        "line_bytes": line_bytes,
        "append_lines_per_s": shards / append_s,
        "recorded_entries_s": read_s,
        "recorded_entries_lines_per_s": shards / read_s,
        "recorded_entries_bytes_per_entry": held / shards,
        "recorded_entries_peak_bytes_per_entry": peak / shards,
        "run_output_add_fsynced": fsynced,
        "run_output_add_lines_per_s": fsynced / add_s,
        "object_store_rewrite_per_shard": rewrite,
    }


def _result(i: int, table: pa.RecordBatch | None = None) -> ShardResult:
    rows = table.num_rows if table is not None else 256
    return ShardResult(
        shard_id=i, start=i * rows, stop=(i + 1) * rows, rows=rows, failed=0, node_id=NODE,
        table=table,
    )  # fmt: skip


# -- the summary --------------------------------------------------------------------------


def one_sample_shard(batches: int) -> pa.RecordBatch:
    """``batches`` one-sample batches of mnist-8's outputs (top-5 and scores), as a shard."""
    rng = np.random.default_rng(0)
    rows = []
    for b in range(batches):
        top_k = rng.permutation(10)[:5].reshape(1, 5)
        rows.append(
            rows_from_batch(
                [str(b)],
                np.array([b % 10]),
                {"top_k": top_k, "scores": rng.random((1, 5), dtype=np.float32)},
                batch_id=b,
                shard_id=0,
                node_id=NODE,
                pre_ms=0.05,
                run_ms=0.2 + (b % 7) / 100,
                post_ms=0.03,
            )
        )
    return shard_table(rows)


def bench_summary(batches: int, per_shard: int) -> dict[str, Any]:
    template = one_sample_shard(per_shard)
    tally = SummaryTally()
    columns = tally.columns
    base = pa.Table.from_batches([template]).select(columns)
    offsets = np.arange(per_shard, dtype=np.int64)
    shard_col, batch_col = columns.index("shard_id"), columns.index("batch_id")
    shards = max(1, batches // per_shard)

    def shard(s: int) -> pa.Table:
        table = base.set_column(shard_col, "shard_id", pa.array(np.full(per_shard, s)))
        return table.set_column(batch_col, "batch_id", pa.array(s * per_shard + offsets))

    tables = [shard(s) for s in range(min(shards, 50))]
    feed_s = timed(lambda: [tally.add(t) for t in tables])[1] / len(tables)

    checkpoints: dict[str, float] = {}

    def feed() -> SummaryTally:
        fed = SummaryTally()
        start = tracemalloc.get_traced_memory()[0]
        for s in range(shards):
            fed.add(shard(s))
            done = (s + 1) * per_shard
            if done in (10_000, 100_000, 1_000_000, 10_000_000):
                gc.collect()
                checkpoints[str(done)] = (tracemalloc.get_traced_memory()[0] - start) / done
        return fed

    fed, held, _ = traced(feed)
    fed_batches = shards * per_shard
    checkpoints[str(fed_batches)] = held / fed_batches
    result, result_s = timed(lambda: fed._latency.result())
    assert result["run"]["p50"] > 0
    return {
        "batches": fed_batches,
        "batches_per_shard": per_shard,
        "bytes_per_batch": checkpoints,
        "add_ms_per_shard": feed_s * 1e3,
        "add_us_per_batch": feed_s * 1e6 / per_shard,
        "latency_result_s": result_s,
    }


# -- the results --------------------------------------------------------------------------


def mnist_shard(rows: int, shard_id: int) -> pa.RecordBatch:
    """One shard of mnist-8 rows in batches of 256: top-5, scores and the 10 raw outputs."""
    rng = np.random.default_rng(shard_id)
    batches = []
    for a in range(0, rows, 256):
        n = min(256, rows - a)
        start = shard_id * rows + a
        logits = rng.standard_normal((n, 10), dtype=np.float32)
        top_k = np.argsort(-logits, axis=1)[:, :5]
        batches.append(
            rows_from_batch(
                np.arange(start, start + n),
                rng.integers(0, 10, n),
                {"top_k": top_k, "scores": np.take_along_axis(logits, top_k, 1), "output": logits},
                batch_id=start // 256,
                shard_id=shard_id,
                node_id=NODE,
                pre_ms=0.3,
                run_ms=1.5,
                post_ms=0.2,
            )
        )
    return shard_table(batches)


def bench_results(folder: Path, shards: int, rows: int) -> dict[str, Any]:
    staging = folder / "results-run"
    staging.mkdir()
    output = RunOutput(
        final=folder / "y", target=staging, shard_store=None, phases=Phases(), staging=staging
    )
    tables = [mnist_shard(rows, i) for i in range(shards)]
    results = [_result(i, t) for i, t in enumerate(tables)]
    _, write_s = timed(lambda: [output.add(r) for r in results])
    size = sum(e.bytes or 0 for e in output.done.values())
    summary, read_s = timed(
        lambda: summarise(
            staging, run_id="bench", task={}, environment={}, wall_s=1.0, batch_size=256,
            actors=1, started_at="", finished_at="",
        )
    )  # fmt: skip
    assert summary["samples"] == shards * rows
    return {
        "shards": shards,
        "rows_per_shard": rows,
        "file_bytes_per_row": size / (shards * rows),
        "write_shards_per_s": shards / write_s,
        "write_rows_per_s": shards * rows / write_s,
        "write_mib_per_s": size / 2**20 / write_s,
        "summarise_shards_per_s": shards / read_s,
        "summarise_rows_per_s": shards * rows / read_s,
    }


# -- the scheduler loop -------------------------------------------------------------------


def bench_loop() -> dict[str, Any]:
    """The steps of run_shards that walk every actor or every call in flight, per shard."""
    out = {}
    for actors in (16, 1_000, 8_000, 16_000):
        load = dict.fromkeys(range(actors), 1)
        alive = dict.fromkeys(range(actors))
        in_flight = {object(): None for _ in range(2 * actors)}
        reps = max(20, 200_000 // actors)
        choose = per_call(lambda a=alive, w=load: min(a, key=w.__getitem__), reps)
        listing = per_call(lambda f=in_flight: [*f], reps)
        out[str(actors)] = {
            "choose_actor_us": choose * 1e6,
            "list_in_flight_us": listing * 1e6,
        }
    return out


# -- Ray ----------------------------------------------------------------------------------


class _NoOp:
    """A host actor's calls with nothing inside: what run_shards itself costs."""

    def ready(self) -> dict[str, str]:
        return {"node_id": ""}

    def pre(self, spans: list[tuple[int, int]]) -> int:
        return len(spans)

    def run(self, n: int) -> int:
        return n

    def post(self, n: int, shard: Any) -> int:
        return shard.rows


class _Gate:
    async def hold(self) -> None:
        import asyncio

        await asyncio.sleep(3600)


def bench_ray(samples: int, wait_refs: int) -> dict[str, Any]:
    import ray

    import dlspec_ray
    from dlspec_ray.runtime import run_shards

    out: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-ray-") as tmp,
        dlspec_ray.Session(num_cpus=2) as session,
    ):
        kwargs = dict(
            software=SOFTWARE, hardware=HARDWARE, batch_size=1, batches_per_call=1,
            actors=2, progress=False,
        )  # fmt: skip
        log("ray: starting the session and its host actors")
        session.evaluate(MODEL, DATASET, limit=200, out=Path(tmp) / "warm", **kwargs)
        runs = []
        for i in range(2):
            r = session.evaluate(MODEL, DATASET, limit=samples, out=Path(tmp) / f"r{i}", **kwargs)
            s = r.summary
            assert s["shards"] == samples and s["samples"] == samples
            runs.append({"stream_s": s["wall_s"], "shards_per_s": samples / s["wall_s"]})
            log(f"ray: evaluate, {samples} shards: {samples / s['wall_s']:.0f} shards/s")
        out["evaluate_one_batch_shards"] = {"shards": samples, "runs": runs}

        session.release_pools()  # their CPUs go to two no-op actors of one CPU each
        actors = [ray.remote(_NoOp).options(num_cpus=1).remote() for _ in range(2)]
        ray.get([a.ready.remote() for a in actors], timeout=120)
        noop = {}
        for depth in (2, 8):
            shards = plan_shards(samples, 1, 1)
            done, s = timed(
                lambda d=depth, sh=shards: list(run_shards(actors, ["n0", "n1"], sh, depth=d))
            )
            assert len(done) == samples
            noop[str(depth)] = {"shards_per_s": samples / s}
            log(f"ray: run_shards over no-op actors, depth {depth}: {samples / s:.0f} shards/s")
        out["run_shards_noop_actors"] = {"shards": samples, "actors": 2, "by_depth": noop}
        for a in actors:
            ray.kill(a)

        gate = ray.remote(_Gate).options(num_cpus=0, max_concurrency=100_000).remote()
        waits = {}
        refs: list[Any] = []
        for k in (1_000, 4_000, 16_000):
            if k > wait_refs:
                break
            refs += [gate.hold.remote() for _ in range(k - len(refs))]
            time.sleep(2)  # let the submissions reach the actor before timing the waits
            s = per_call(lambda r=refs: ray.wait(r, num_returns=1, timeout=0), 20)
            waits[str(k)] = {"ms_per_wait": s * 1e3}
            log(f"ray: ray.wait over {k} pending refs: {s * 1e3:.2f} ms")
        out["ray_wait_pending_refs"] = waits
        ray.kill(gate)
        out["ray_version"] = ray.__version__
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=1_000_000, help="plan and ledger size")
    parser.add_argument("--batches", type=int, default=1_000_000, help="summary tally size")
    parser.add_argument("--batches-per-shard", type=int, default=1_000)
    parser.add_argument("--fsynced", type=int, default=2_000, help="ledger lines fsynced")
    parser.add_argument("--write-shards", type=int, default=200)
    parser.add_argument("--rows-per-shard", type=int, default=1_024)
    parser.add_argument("--ray-shards", type=int, default=1_000)
    parser.add_argument("--wait-refs", type=int, default=16_000)
    parser.add_argument("--no-ray", action="store_true", help="skip the measurements on Ray")
    parser.add_argument("--ray-only", action="store_true", help="only the measurements on Ray")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.chdir(REPO)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if not args.ray_only:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            folder = Path(tmp)
            log(f"plan: {args.shards:,} shards")
            report["plan"] = bench_plan(args.shards)
            report["plan"]["at_10m_samples"] = bench_chunking()
            report["node_ids"] = bench_ids(args.shards)
            log(f"ledger: {args.shards:,} lines")
            report["ledger"] = bench_ledger(args.shards, folder, args.fsynced)
            log(f"summary: {args.batches:,} batches")
            report["summary"] = bench_summary(args.batches, args.batches_per_shard)
            log(f"results: {args.write_shards} shards of {args.rows_per_shard} rows")
            report["results"] = bench_results(folder, args.write_shards, args.rows_per_shard)
        log("scheduler loop")
        report["scheduler_loop"] = bench_loop()
    if not args.no_ray:
        try:
            report["ray"] = bench_ray(args.ray_shards, args.wait_refs)
        except Exception as exc:  # the figures above are still worth printing
            report["ray"] = {"error": f"{type(exc).__name__}: {exc}"}
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

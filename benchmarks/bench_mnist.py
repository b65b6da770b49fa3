"""mnist-8 over the MNIST test set: dlspec-ray's Python API against a bare onnxruntime loop.

Both sides run the same stage code (the model manifest's own pre-process, run
and post-process) on the same batches; the bare loop calls it in one process
with no Ray. Runs alternate side by side, and the medians are reported,
because the speed of these machines drifts within minutes.

Four figures per batch size:
- bare: the loop over batches with an already-loaded session, 2 intra-op threads
  (the best bare configuration on 2 cores), and its own pre/post work;
- dlspec-ray end to end: ``dlspec_ray.evaluate(...)`` with Ray already started:
  resolving manifests, reading the dataset, starting host actors and loading
  the model in them, streaming every batch, writing Parquet and summary.json;
- dlspec-ray warm: ``session.evaluate(...)`` end to end in a ``dlspec_ray.Session``
  whose host actors are already up from an earlier evaluation of the same task
  (a notebook's second cell, a re-run): everything above but the actors' start;
- dlspec-ray streaming: the warm runs' time from the first batch submitted to
  the last result received (``summary["wall_s"]``).

Usage: python benchmarks/bench_mnist.py [--runs 5] [--batch-sizes 64 256] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dlspec_ray  # noqa: E402
from dlspec_ray.artifacts import fetch_all  # noqa: E402
from dlspec_ray.runtime import connect  # noqa: E402
from dlspec_ray.stages import build_context, read_samples  # noqa: E402
from dlspec_ray.task import resolve_task  # noqa: E402

MODEL = "mnist-8@1.0.0"
DATASET = "mnist-test@1.0.0"
SOFTWARE = "onnxruntime-cpu@1.0.0"
HARDWARE = "x86-64-cpu@1.0.0"


def bare_loop(task, samples, batch_size: int, threads: int) -> tuple[float, float]:
    """(seconds for the loop, seconds to create the session); the loop's top-1 is checked."""
    model = task.model
    stages = {name: src.compile() for name, src in model.stages.items()}
    ctx = build_context(
        model, fetch_all(model.artifacts), batch_size=batch_size, num_threads=threads
    )
    started = time.perf_counter()
    ctx["model"] = stages["load"](ctx, ctx["artifacts"])
    load_s = time.perf_counter() - started
    pre, run, post = stages["pre-process"], stages["run"], stages["post-process"]
    inputs = samples.inputs
    predictions = []
    started = time.perf_counter()
    for start in range(0, len(inputs), batch_size):
        out = post(ctx, run(ctx, pre(ctx, inputs[start : start + batch_size])))
        predictions.append(out["top_k"][:, 0])
    loop_s = time.perf_counter() - started
    top1 = float(np.mean(np.concatenate(predictions) == samples.labels))
    if abs(top1 - 0.989) > 0.0005:
        raise SystemExit(f"bare loop top-1 is {top1}, expected 0.989")
    return loop_s, load_s


def dlspec_run(batch_size: int, limit: int | None, actors: int | None, session=None) -> dict:
    evaluate = session.evaluate if session is not None else dlspec_ray.evaluate
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = evaluate(
            MODEL,
            DATASET,
            software=SOFTWARE,
            hardware=HARDWARE,
            batch_size=batch_size,
            actors=actors,
            limit=limit,
            out=Path(tmp) / "run",
            progress=False,
        )
        end_to_end = time.perf_counter() - started
    summary = result.summary
    if limit is None and abs(summary["accuracy"]["top1"] - 0.989) > 0.0005:
        raise SystemExit(f"dlspec-ray top-1 is {summary['accuracy']['top1']}")
    return {
        "end_to_end_s": end_to_end,
        "stream_s": summary["wall_s"],
        "phases": summary["phases_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--actors", type=int, default=None, help="default: dlspec-ray's own")
    parser.add_argument("--threads", type=int, default=2, help="bare loop intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    import os

    os.chdir(REPO)
    connection = connect(num_cpus=2)
    task = resolve_task(MODEL, DATASET, SOFTWARE, HARDWARE)
    samples = read_samples(task.dataset, fetch_all(task.dataset.sources))
    if args.limit:
        samples = samples.head(args.limit)
    n = len(samples)
    dlspec_run(args.batch_sizes[0], 1024, args.actors)  # warm Ray's worker pool and caches

    labels = {
        "bare": "bare onnxruntime loop",
        "cold": "dlspec-ray evaluate(), actors started",
        "warm": "dlspec-ray session.evaluate(), actors warm",
        "stream": "dlspec-ray streaming only (warm)",
    }
    report = {}
    for batch_size in args.batch_sizes:
        figures: dict[str, list[float]] = {key: [] for key in labels}
        phases = []
        for _ in range(args.runs):
            loop_s, _load_s = bare_loop(task, samples, batch_size, args.threads)
            figures["bare"].append(n / loop_s)
            cold = dlspec_run(batch_size, args.limit, args.actors)
            figures["cold"].append(n / cold["end_to_end_s"])
            with dlspec_ray.Session() as session:
                dlspec_run(batch_size, args.limit, args.actors, session)  # starts the actors
                warm = dlspec_run(batch_size, args.limit, args.actors, session)
            figures["warm"].append(n / warm["end_to_end_s"])
            figures["stream"].append(n / warm["stream_s"])
            phases.append(warm["phases"])
        row: dict = {"samples": n, "runs": args.runs}
        row.update({f"{k}_sps": statistics.median(v) for k, v in figures.items()})
        row.update({f"{k}_ratio": row[f"{k}_sps"] / row["bare_sps"] for k in figures})
        row["warm_phases_s"] = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
        report[batch_size] = row
        print(f"batch {batch_size} ({n} samples, median of {args.runs} runs), samples/s:")
        for key, label in labels.items():
            print(f"  {label:<44} {row[key + '_sps']:>9,.0f}  {row[key + '_ratio']:.2f}x")
        print(
            "  warm phases (s, median): "
            + ", ".join(f"{k} {v:.3f}" for k, v in row["warm_phases_s"].items())
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    connection.close()


if __name__ == "__main__":
    main()

"""A sweep of 6 small tasks run concurrently, against the same tasks one after another.

The tasks: mnist-8 on onnxruntime at six batch sizes (16 to 512), each on the first
``--limit`` MNIST test images, one host actor of one CPU each, on one embedded Ray
started once for the whole benchmark. Each measurement is a whole ``dlspec_ray.sweep()``
call: planning, every evaluation (host actors started and ended per task), and the
combined results, index and summary written. The only difference between the sides
is the sweep's concurrency bound: 1 (one after another) or N (up to N at once).

Sides alternate within each round, and medians over the rounds are reported, because
the speed of these machines drifts within minutes.

Usage: python benchmarks/bench_sweep.py [--runs 5] [--limit 2000] [--concurrency 2 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dlspec_ray  # noqa: E402
from dlspec_ray.runtime import connect  # noqa: E402

BATCH_SIZES = [16, 32, 64, 128, 256, 512]


def sweep_once(concurrency: int, limit: int) -> tuple[float, dict]:
    spec = {
        "name": f"bench-c{concurrency}",
        "models": ["mnist-8"],
        "datasets": ["mnist-test"],
        "software": ["onnxruntime-cpu"],
        "hardware": ["x86-64-cpu"],
        "environments": ["inline"],
        "batch_sizes": BATCH_SIZES,
        "limit": limit,
        "actors": 1,
        "concurrency": concurrency,
    }
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = dlspec_ray.sweep(spec, out, manifest_roots=[REPO / "manifests"], progress=False)
        seconds = time.perf_counter() - started
    bad = [t["label"] for t in result.summary["tasks"] if t["status"] != "ok"]
    if bad:
        raise SystemExit(f"tasks did not pass: {bad}")
    return seconds, result.summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    connection = connect(num_cpus=2)
    sides = [1, *args.concurrency]
    times: dict[int, list[float]] = {c: [] for c in sides}
    task_seconds: dict[int, list[float]] = {c: [] for c in sides}
    try:
        sweep_once(2, 100)  # warm-up: imports, page cache, the first worker processes
        for run in range(args.runs):
            for concurrency in sides if run % 2 == 0 else list(reversed(sides)):
                seconds, summary = sweep_once(concurrency, args.limit)
                times[concurrency].append(seconds)
                task_seconds[concurrency].append(sum(t["seconds"] for t in summary["tasks"]))
                print(f"round {run + 1}: concurrency {concurrency}: {seconds:.2f} s", flush=True)
    finally:
        connection.close()

    sequential = statistics.median(times[1])
    print(f"\n6 tasks (mnist-8, onnxruntime, batch {BATCH_SIZES}, {args.limit} images each), "
          f"2 CPUs, median of {args.runs} rounds")  # fmt: skip
    print(f"{'concurrency':>12} {'sweep wall s':>13} {'sum of task s':>14} {'speed-up':>9}")
    figures = {}
    for c in sides:
        wall = statistics.median(times[c])
        per_round = [s / t for s, t in zip(times[1], times[c], strict=True)]
        figures[c] = {
            "wall_s_median": wall,
            "task_seconds_median": statistics.median(task_seconds[c]),
            "speedup_of_medians": sequential / wall,
            "speedup_median_of_rounds": statistics.median(per_round),
            "wall_s_all": times[c],
        }
        print(
            f"{c:>12} {wall:>13.2f} {statistics.median(task_seconds[c]):>14.2f} "
            f"{sequential / wall:>8.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

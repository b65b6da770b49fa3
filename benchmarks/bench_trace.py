"""What --trace costs: mnist-8 over the MNIST test set, warm, tracing off and on, side by side.

One ``dlspec_ray.Session`` keeps its host actors warm, and the runs alternate off, on,
off, on, ... so that drift in the machine's speed falls on both alike. Reported: the
median streaming time (``summary["wall_s"]``, first batch sent to last result back)
of each, their ratio, and the trace's size.

Usage: python benchmarks/bench_trace.py [--runs 5] [--batch-size 64] [--actors 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dlspec_ray  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    walls: dict[bool, list[float]] = {False: [], True: []}
    trace_bytes = events = 0
    with tempfile.TemporaryDirectory() as tmp, dlspec_ray.Session() as session:
        for i in range(args.runs + 1):  # the first pair warms the actors and is dropped
            for trace in (False, True):
                out = Path(tmp) / f"run-{i}-{trace}"
                result = session.evaluate(
                    "mnist-8@1.0.0", "mnist-test@1.0.0", batch_size=args.batch_size,
                    actors=args.actors, trace=trace, out=out, progress=False,
                )  # fmt: skip
                if i:
                    walls[trace].append(result.summary["wall_s"])
                if trace:
                    trace_bytes = (out / "trace.json").stat().st_size
                    events = result.summary["trace"]["events"]
    off, on = statistics.median(walls[False]), statistics.median(walls[True])
    figures = {
        "batch_size": args.batch_size,
        "actors": args.actors,
        "runs": args.runs,
        "streaming_s_off": off,
        "streaming_s_on": on,
        "on_over_off": on / off,
        "trace_events": events,
        "trace_bytes": trace_bytes,
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the per-batch stage digests cost: their time against the stages' own, per batch.

Each stage call hashes its output where it ran (``environments.digest``), so the cost is
the digest's time beside the stage's. This runs mnist-8's own stage functions over the
MNIST test set in one process, times each stage and, separately, the digest of its
output, for each batch, and reports the digests' share of the stage time (median of
``--runs`` passes). A bigger model spends more per byte of output, so less in digests.

Usage: python benchmarks/bench_digest.py [--runs 5] [--batch-sizes 64 256]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dlspec_ray.artifacts import fetch_all  # noqa: E402
from dlspec_ray.environments.digest import output_digest  # noqa: E402
from dlspec_ray.stages import build_context, read_samples  # noqa: E402
from dlspec_ray.task import resolve_task  # noqa: E402


def one_pass(stages, ctx, inputs, batch_size: int) -> tuple[float, float]:
    """(seconds in the stages, seconds in the digests of their outputs) over the dataset."""
    staged = hashed = 0.0
    for start in range(0, len(inputs), batch_size):
        value = inputs[start : start + batch_size]
        for name in ("pre-process", "run", "post-process"):
            began = time.perf_counter()
            value = stages[name](ctx, value)
            middle = time.perf_counter()
            output_digest(value)
            staged += middle - began
            hashed += time.perf_counter() - middle
    return staged, hashed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    task = resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0", "onnxruntime-cpu@1.0.0")
    model = task.model
    stages = {name: src.compile() for name, src in model.stages.items()}
    inputs = read_samples(task.dataset, fetch_all(task.dataset.sources)).inputs
    print("mnist-8 on 10,000 MNIST images, one process; digests' time against the stages':")
    for batch_size in args.batch_sizes:
        ctx = build_context(model, fetch_all(model.artifacts), batch_size=batch_size, num_threads=2)
        ctx["model"] = stages["load"](ctx, ctx["artifacts"])
        one_pass(stages, ctx, inputs, batch_size)  # warm-up
        shares, per_batch = [], []
        for _ in range(args.runs):
            staged, hashed = one_pass(stages, ctx, inputs, batch_size)
            shares.append(hashed / staged)
            per_batch.append(hashed / -(-len(inputs) // batch_size))
        print(
            f"  batch {batch_size:>4}: digests {statistics.median(per_batch) * 1e6:7.1f} us a "
            f"batch, {statistics.median(shares):.1%} of the stage time "
            f"(min-max {min(shares):.1%}-{max(shares):.1%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

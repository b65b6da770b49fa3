"""The driver stays small: its peak RSS for mnist-8 on 10k, 100k and 1M samples.

The dataset is MNIST tiled 1, 10 and 100 times (``benchmarks/mnist-tiled.yaml``; this
script writes a copy per size with its TILES line changed, and a new name and id, so each
size is its own dataset). Each evaluation runs in a fresh driver process of its own, with an
embedded local Ray, and reports ``ru_maxrss`` of that process alone: the raylet, the
node's dataset reader and the host actors are other processes. The same process also
reports the run's streaming throughput (first shard sent to last result back), which is
set side by side against a bare onnxruntime loop over the same batches in this process.

Usage: python benchmarks/bench_driver_memory.py [--sizes 1 10 100] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "benchmarks" / "mnist-tiled.yaml"

_CHILD = """
import json, resource, sys, time
import dlspec_ray
manifest, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = dlspec_ray.evaluate("mnist-8@1.0.0", manifest, software="onnxruntime-cpu@1.0.0",
                        hardware="x86-64-cpu@1.0.0", batch_size=batch, out=out, progress=False)
s = r.summary
print(json.dumps({"samples": s["samples"], "top1": s["accuracy"]["top1"],
                  "stream_s": s["wall_s"], "shards": s["shards"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def tiled_manifest(folder: Path, tiles: int) -> Path:
    text = TEMPLATE.read_text().replace("TILES = 100", f"TILES = {tiles}")
    text = text.replace("name: mnist-tiled", f"name: mnist-tiled-{tiles}")
    text = text.replace("id: 6a0f3f0e-1d2b-4c54-9a51-3f6b1a7c2e10", f"id: {uuid.uuid4()}")
    text = text.replace("../assets/mnist/", f"{REPO}/assets/mnist/")
    path = folder / f"mnist-tiled-{tiles}.yaml"
    path.write_text(text)
    return path


def driver_run(manifest: Path, out: Path, batch_size: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(manifest), str(out), str(batch_size)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the evaluation of {manifest.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_samples_per_s(manifest: Path, batch_size: int) -> float:
    """The model manifest's own stages in one process over the same batches, 2 threads."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_mnist import bare_loop

    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.stages import read_samples
    from dlspec_ray.task import resolve_task

    task = resolve_task("mnist-8@1.0.0", str(manifest))
    samples = read_samples(task.dataset, fetch_all(task.dataset.sources))
    loop_s, _ = bare_loop(task, samples, batch_size, threads=2)
    return len(samples) / loop_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], metavar="TILES")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        for tiles in args.sizes:
            manifest = tiled_manifest(Path(tmp), tiles)
            started = time.perf_counter()
            run = driver_run(manifest, Path(tmp) / f"run-{tiles}", args.batch_size)
            run["whole_s"] = time.perf_counter() - started
            bare = bare_samples_per_s(manifest, args.batch_size)
            run["stream_ratio"] = run["samples"] / run["stream_s"] / bare
            run["bare_sps"] = bare
            rows.append(run)
            print(json.dumps(run), file=sys.stderr)
    base = rows[0]["peak_rss_mib"]
    print(f"{'samples':>10} {'driver peak RSS':>16} {'vs first':>9} {'stream/bare':>12}")
    for row in rows:
        print(
            f"{row['samples']:>10,} {row['peak_rss_mib']:>12.0f} MiB "
            f"{row['peak_rss_mib'] - base:>+7.0f}  {row['stream_ratio']:>10.2f}x"
        )


if __name__ == "__main__":
    main()

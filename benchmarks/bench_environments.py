"""Where stage code runs, and what it costs: inline, process and docker, side by side.

Two measurements, each alternating between the environments in one run and
reporting medians, because the speed of these machines drifts within minutes:

1. mnist-8 over the 10,000 MNIST test images at batch 256, as ratios to
   ``inline``: the same model manifest with three software manifests that differ
   only in where the stage code runs (onnxruntime-cpu, onnxruntime-cpu-process,
   onnxruntime-cpu-docker; all onnxruntime 1.32.0). Each environment has its own
   warm ``Session`` (host actors started once), and every figure is from a whole
   ``session.evaluate()`` call; "streaming" is the time from the first batch sent
   to the last result back (``summary["wall_s"]``).
2. The cost of moving one tensor into and out of an environment (4 MiB and
   64 MiB), against a plain memcpy of the same size (``np.copyto`` into a buffer
   that is already allocated): "in" is a call whose stage drops its input,
   "out" a call whose stage returns a tensor it already holds, each minus nothing.

Needs a Docker engine (DOCKER_HOST) and the onnxruntime image (built if missing):
``make bench`` runs it under scripts/with-dockerd.sh.

Usage: python benchmarks/bench_environments.py [--runs 5] [--reps 30] [--limit N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dlspec_ray  # noqa: E402
from dlspec_ray.environments import make_environment  # noqa: E402
from dlspec_ray.environments.images import build_image  # noqa: E402
from dlspec_ray.spec.loader import load_manifest  # noqa: E402
from dlspec_ray.spec.types import StageSource  # noqa: E402

SOFTWARE = {
    "inline": "onnxruntime-cpu@1.0.0",
    "process": "onnxruntime-cpu-process@1.0.0",
    "docker": "onnxruntime-cpu-docker@1.0.0",
}
DOCKER_MANIFEST = REPO / "manifests" / "software" / "onnxruntime-cpu-docker.yaml"


def mnist(runs: int, limit: int | None, out: Path) -> dict[str, dict[str, list[float]]]:
    """samples/s per environment, whole call and streaming, ``runs`` alternating rounds."""
    sessions = {kind: dlspec_ray.Session(num_cpus=6) for kind in SOFTWARE}
    figures: dict[str, dict[str, list[float]]] = {k: {"call": [], "stream": []} for k in SOFTWARE}
    try:
        for round_ in range(runs + 1):  # round 0 starts the host actors: not counted
            for kind, software in SOFTWARE.items():
                started = time.perf_counter()
                result = sessions[kind].evaluate(
                    "mnist-8@1.0.0", "mnist-test@1.0.0", software=software,
                    hardware="x86-64-cpu@1.0.0", batch_size=256, limit=limit, actors=2,
                    out=out / f"{kind}-{round_}", progress=False,
                )  # fmt: skip
                elapsed = time.perf_counter() - started
                summary = result.summary
                if summary["accuracy"]["top1"] < 0.98 and limit is None:
                    raise SystemExit(f"{kind}: unexpected top1 {summary['accuracy']['top1']}")
                if round_:
                    figures[kind]["call"].append(summary["samples"] / elapsed)
                    figures[kind]["stream"].append(summary["throughput_sps"])
    finally:
        for session in reversed(list(sessions.values())):
            session.close()
    return figures


def stage(name: str, body: str) -> StageSource:
    code = "def fn(ctx, data):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
    return StageSource(name=name, code=code, file="bench.yaml", line=1)


TRANSFER_STAGES = {
    "load": stage(
        "load", "import numpy as np\nreturn {n: np.ones(n // 4, np.float32) for n in data}"
    ),
    "run": stage("run", "return None if data[0] == 'in' else ctx['model'][data[1]]"),
}


def transfer(kinds: list[str], sizes: list[int], reps: int) -> dict[tuple[str, int], dict]:
    """Median ms to move one float32 tensor of each size in, and out, per environment."""
    envs = {}
    for kind in kinds:
        software = load_manifest(DOCKER_MANIFEST) if kind == "docker" else None
        env = make_environment(kind, software)  # type: ignore[arg-type]
        env.start(TRANSFER_STAGES, {})
        env.call("load", sizes)
        envs[kind] = env
    results: dict[tuple[str, int], dict] = {}
    try:
        for size in sizes:
            tensor = np.random.default_rng(size).random(size // 4, dtype=np.float32)
            target = np.empty_like(tensor)
            times: dict[str, list[float]] = {"memcpy": [], "noop": []}
            for kind in kinds:
                times[f"{kind}-in"], times[f"{kind}-out"] = [], []
            for _ in range(reps):
                started = time.perf_counter()
                np.copyto(target, tensor)
                times["memcpy"].append(time.perf_counter() - started)
                for kind, env in envs.items():
                    started = time.perf_counter()
                    env.call("run", ("in", tensor))
                    times[f"{kind}-in"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    back = env.call("run", ("out", size)).value
                    times[f"{kind}-out"].append(time.perf_counter() - started)
                    assert back.nbytes == size
                    started = time.perf_counter()
                    env.call("run", ("in", None))
                    times["noop"].append(time.perf_counter() - started)
            results[("all", size)] = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    finally:
        for env in envs.values():
            env.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    print(f"image {build_image(load_manifest(DOCKER_MANIFEST)).name} ready", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench-environments-") as tmp:
        figures = mnist(args.runs, args.limit, Path(tmp))
    base_call = statistics.median(figures["inline"]["call"])
    base_stream = statistics.median(figures["inline"]["stream"])
    print(f"\nmnist-8, batch 256, {args.limit or 10_000} images, median of {args.runs} runs")
    print("| environment | whole call, samples/s | ratio | streaming, samples/s | ratio |")
    print("|---|---|---|---|---|")
    for kind in SOFTWARE:
        call = statistics.median(figures[kind]["call"])
        stream = statistics.median(figures[kind]["stream"])
        print(f"| {kind} | {call:,.0f} | {call / base_call:.2f}x | {stream:,.0f} | "
              f"{stream / base_stream:.2f}x |")  # fmt: skip

    sizes = [4 * 2**20, 64 * 2**20]
    moved = transfer(["process", "docker"], sizes, args.reps)
    print(f"\none tensor into / out of the environment, median of {args.reps}, ms")
    print("| size | memcpy | process in | process out | docker in | docker out |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        t = moved[("all", size)]
        cells = " | ".join(
            f"{t[f'{k}-{d}']:.2f} ({t[f'{k}-{d}'] / t['memcpy']:.1f}x)"
            for k in ("process", "docker")
            for d in ("in", "out")
        )
        print(f"| {size // 2**20} MiB | {t['memcpy']:.2f} | {cells} |")
    print(f"(an empty call's round trip: {moved[('all', sizes[0])]['noop']:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

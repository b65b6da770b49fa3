"""LoadGen on mnist-8: dlspec-ray's SUT against a bare onnxruntime SUT, side by side.

Both are driven by the real LoadGen in this process with the same settings, the same
model file (assets/mnist/mnist-8-dynbatch.onnx), 2 onnxruntime threads and the same
10,000 MNIST test images pre-processed before the timed run:
- dlspec-ray: ``dlspec_ray.loadgen.run_loadgen`` (the manifest's load/pre/run/post stage
  code, post-process in the timed path, responses carry the raw logits);
- bare: a hand-written SUT, ``session.run`` on a batch and the logits back, nothing else.
Offline reports samples/s (``target_qps`` is measured first, the same for both);
single-stream reports LoadGen's 90th percentile latency. Runs alternate (dlspec-ray,
bare, dlspec-ray, ...) and medians of ``--runs`` are reported, because the speed of these
machines drifts within minutes. The ratios are dlspec-ray / bare for throughput and
bare / dlspec-ray for latency, so 1.0 means "as fast as bare" in both.

Usage: python benchmarks/bench_loadgen.py [--runs 3] [--duration 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

THREADS = 2


def task():
    from dlspec_ray.spec.catalog import Catalog
    from dlspec_ray.task import resolve_task

    return resolve_task(
        "mnist-8@1.0.0",
        "mnist-test@1.0.0",
        "onnxruntime-cpu@1.0.0",
        catalog=Catalog([REPO / "manifests"]),
    )


def images() -> np.ndarray:
    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.stages import read_samples

    dataset = task().dataset
    return read_samples(dataset, fetch_all(dataset.sources)).inputs


class BareSUT:
    """The least a LoadGen SUT for mnist-8 can do: onnxruntime on a gathered batch."""

    def __init__(self, raw: np.ndarray, batch_size: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        path = REPO / "assets" / "mnist" / "mnist-8-dynbatch.onnx"
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name
        self.raw = raw
        self.batch_size = batch_size
        self.x: np.ndarray | None = None

    def load(self, indices):  # untimed: LoadGen's load_samples_to_ram
        self.x = (self.raw.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)

    def unload(self, indices):
        pass

    def issue(self, samples):
        import mlperf_loadgen as lg

        for start in range(0, len(samples), self.batch_size):
            batch = samples[start : start + self.batch_size]
            if len(batch) == 1:
                i = batch[0].index
                x = self.x[i : i + 1]
            else:
                x = self.x[[s.index for s in batch]]
            out = self.session.run(None, {self.name: x})[0]
            row = out.nbytes // len(batch)
            base = out.ctypes.data
            lg.QuerySamplesComplete(
                [lg.QuerySampleResponse(s.id, base + k * row, row) for k, s in enumerate(batch)]
            )

    def run(self, settings, out: Path):
        import mlperf_loadgen as lg

        from dlspec_ray.loadgen import read_performance

        out.mkdir(parents=True, exist_ok=True)
        log = lg.LogSettings()
        log.log_output.outdir = str(out)
        log.log_output.copy_summary_to_stdout = False
        log.enable_trace = False
        sut = lg.ConstructSUT(self.issue, lambda: None)
        qsl = lg.ConstructQSL(len(self.raw), len(self.raw), self.load, self.unload)
        try:
            lg.StartTestWithLogSettings(
                sut, qsl, settings.to_test_settings(), log, str(out / "no-audit.config")
            )
        finally:
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        return read_performance(out, settings.loadgen_scenario)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="min_duration_s per run")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from dlspec_ray.loadgen import LoadGenSettings, run_loadgen

    the_task = task()
    raw = images()
    bare = BareSUT(raw, args.batch_size)
    bare.load(None)
    # One offline QPS for both, measured on the bare loop, so both issue the same query.
    x = bare.x[: args.batch_size]
    for _ in range(5):
        bare.session.run(None, {bare.name: x})
    begin = time.perf_counter()
    for _ in range(50):
        bare.session.run(None, {bare.name: x})
    qps = 50 * args.batch_size / (time.perf_counter() - begin)
    scenarios = {
        "offline": LoadGenSettings(
            scenario="offline", min_duration_s=args.duration, min_query_count=1, target_qps=qps
        ),
        "single-stream": LoadGenSettings(
            scenario="single-stream",
            min_duration_s=args.duration,
            min_query_count=1024,
            expected_latency_ms=0.02,
        ),
    }
    figures: dict[str, dict[str, list[float]]] = {s: {"dlspec": [], "bare": []} for s in scenarios}
    valid: dict[str, list[str]] = {s: [] for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        for r in range(args.runs):
            for name, settings in scenarios.items():
                ours = run_loadgen(
                    the_task,
                    settings,
                    Path(tmp) / f"{name}-{r}-dlspec",
                    batch_size=args.batch_size,
                    num_threads=THREADS,
                ).performance
                theirs = bare.run(settings, Path(tmp) / f"{name}-{r}-bare")
                figures[name]["dlspec"].append(ours.metric)
                figures[name]["bare"].append(theirs.metric)
                valid[name].append(f"{ours.result}/{theirs.result}")
                print(
                    f"run {r + 1} {name:13s} dlspec-ray {ours.metric:10.4g}  "
                    f"bare {theirs.metric:10.4g}  ({ours.result}/{theirs.result})",
                    flush=True,
                )
    print()
    off = {k: statistics.median(v) for k, v in figures["offline"].items()}
    ss = {k: statistics.median(v) for k, v in figures["single-stream"].items()}
    print(f"median of {args.runs}, batch {args.batch_size}, {THREADS} onnxruntime threads:")
    print(
        f"  offline samples/s     dlspec-ray {off['dlspec']:9.0f}  bare {off['bare']:9.0f}  "
        f"ratio {off['dlspec'] / off['bare']:.2f}"
    )
    print(
        f"  single-stream p90 ms  dlspec-ray {ss['dlspec']:9.4f}  bare {ss['bare']:9.4f}  "
        f"ratio (bare/dlspec) {ss['bare'] / ss['dlspec']:.2f}"
    )
    print(f"  verdicts (dlspec/bare): {valid}")


if __name__ == "__main__":
    main()

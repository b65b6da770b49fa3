"""Whole process, against Ray Data: dlspec-ray's CLI, a hand-written Ray Data script, a bare loop.

What a user waits for is the whole command, Ray's start and shutdown included, so each
contestant is timed as a subprocess of its own, from its start to its exit:

- cli: ``dlspec-ray run --model mnist-8@1.0.0 --dataset ... --no-progress`` with its own
  defaults (batch size, actors, threads), starting its embedded Ray; it writes its
  per-sample Parquet and summary.json, whose top-1 is read back;
- ray_data: what a competent Ray Data user would write for the same job (this file writes
  it to a temp file and runs it with this Python). It starts Ray like dlspec-ray's embedded
  instance does (its own temp dir, loopback node IP, no dashboard, usage stats off, token
  auth with a fresh token in that temp dir unless ``RAY_AUTH_MODE=disabled``), decodes the
  IDX files in the driver, hands them over as Arrow tables (``from_arrow``, at least four
  blocks so both actors get work), and runs ``map_batches`` with a callable class that
  loads the ONNX graph with onnxruntime, one intra-op thread per actor, in a fixed pool of
  ``ActorPoolStrategy(size=2)`` actors (2 actors x 1 thread on 2 cores), then
  ``write_parquet`` of top-1 and label. The pre- and post-process are the model
  manifest's (``manifests/models/mnist-8.yaml``): x/255 as float32 NCHW, then the
  stable argsort of the negated logits (top 5) and the softmax scores;
- bare: one process, no Ray: onnxruntime with 2 intra-op threads, the same pre/post over
  batches, one Parquet file of top-1 and label written with pyarrow.

Sizes: ``--tiles 1`` is the MNIST test set (10k, ``mnist-test@1.0.0`` for the CLI);
``--tiles 100`` is it tiled 100 times (1M): the CLI gets a copy of
``benchmarks/mnist-tiled.yaml`` with that TILES (and a name and id of its own) with
``--trust``, since the copy lies outside the trusted roots. The runs alternate side by
side, in a rotating order, and the medians are reported, because the speed of these
machines drifts within minutes. Every run's output folder is removed after it. All three
must agree on top-1 (0.9890 on the test set).

The figures reported: each contestant's median seconds and range, and ray_data/cli and
bare/cli (how many times faster the CLI is than each; the target is ray_data/cli >= 1.5
on 1M samples).

Usage: python benchmarks/bench_ray_data.py [--runs 3] [--tiles 1] [--json FILE]
  (run it in a private network, as the tests do:
   scripts/in-private-net.sh .venv/bin/python benchmarks/bench_ray_data.py --runs 1)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_driver_memory import tiled_manifest  # noqa: E402 - beside this file

from dlspec_ray.artifacts import fetch_all  # noqa: E402
from dlspec_ray.runtime.cluster import write_auth_token  # noqa: E402
from dlspec_ray.task import resolve_task  # noqa: E402

MODEL = "mnist-8@1.0.0"
DATASET = "mnist-test@1.0.0"
SOFTWARE = "onnxruntime-cpu@1.0.0"
HARDWARE = "x86-64-cpu@1.0.0"
IMAGES = REPO / "assets" / "mnist" / "t10k-images-idx3-ubyte.gz"
LABELS = REPO / "assets" / "mnist" / "t10k-labels-idx1-ubyte.gz"
EXPECTED_TOP1 = 0.989
CONTESTANTS = ("cli", "ray_data", "bare")

# What the Ray Data and bare scripts share: the IDX reader and the model manifest's
# pre-process and post-process, as a user would copy them.
_COMMON = """
import gzip
import json
import sys

import numpy as np


def read_idx(path, magic, ndim):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise ValueError(f"{path}: not an IDX file of magic {magic}")
    shape = tuple(int(d) for d in header[1:])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(shape)


def read_mnist(images_path, labels_path, tiles):
    images = np.tile(read_idx(images_path, 2051, 3), (tiles, 1, 1))
    labels = np.tile(read_idx(labels_path, 2049, 1).astype(np.int64), tiles)
    return images, labels


def pre_process(batch):
    # uint8 [B, 28, 28] -> float32 [B, 1, 28, 28], x / 255 (a division, as the manifest's).
    x = np.asarray(batch).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x.reshape((len(x), 1, 28, 28)))


def post_process(logits, k=5):
    logits = np.asarray(logits, dtype=np.float32)
    top_k = np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    scores = np.take_along_axis(probs, top_k, axis=1).astype(np.float32)
    return top_k, scores


def session(model_path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
"""

_RAY_DATA = (
    _COMMON
    + """

class Classifier:
    def __init__(self, model_path):
        self.session = session(model_path, 1)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch):
        logits = self.session.run(None, {self.input: pre_process(batch["image"])})[0]
        top_k, _scores = post_process(logits)
        return {"top1": top_k[:, 0], "label": batch["label"]}


def main():
    model_path, images_path, labels_path, tiles, out, temp_dir, batch_size, actors = sys.argv[1:]
    tiles, batch_size, actors = int(tiles), int(batch_size), int(actors)
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    from ray.data.extensions import ArrowTensorArray

    ray.init(
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
        logging_level="WARNING",
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    images, labels = read_mnist(images_path, labels_path, tiles)
    blocks = max(4 * actors, -(-len(images) // 10_000))
    tables = [
        pa.table({"image": ArrowTensorArray.from_numpy(i), "label": lab})
        for i, lab in zip(np.array_split(images, blocks), np.array_split(labels, blocks))
    ]
    ds = ray.data.from_arrow(tables).map_batches(
        Classifier,
        fn_constructor_args=(model_path,),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )
    ds.write_parquet(out)
    ray.shutdown()
    result = pq.read_table(out, columns=["top1", "label"])
    top1 = float(np.mean(result["top1"].to_numpy() == result["label"].to_numpy()))
    print(json.dumps({"samples": result.num_rows, "top1": top1}))


main()
"""
)

_BARE = (
    _COMMON
    + """

def main():
    model_path, images_path, labels_path, tiles, out, batch_size, threads = sys.argv[1:]
    tiles, batch_size, threads = int(tiles), int(batch_size), int(threads)
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = session(model_path, threads)
    name = model.get_inputs()[0].name
    images, labels = read_mnist(images_path, labels_path, tiles)
    top1 = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(images), batch_size):
        logits = model.run(None, {name: pre_process(images[start : start + batch_size])})[0]
        top_k, _scores = post_process(logits)
        top1[start : start + batch_size] = top_k[:, 0]
    pq.write_table(pa.table({"top1": top1, "label": labels}), out)
    print(json.dumps({"samples": len(images), "top1": float(np.mean(top1 == labels))}))


main()
"""
)


def ray_env(temp_dir: str) -> dict[str, str]:
    """The environment of a Ray started like dlspec-ray's embedded one (``cluster.py``)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "disabled":
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=write_auth_token(temp_dir))
    return env


def timed(command: list[str], env: dict[str, str], what: str) -> tuple[float, str]:
    """(seconds from start to exit, stdout); a failed command ends the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{what} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


class Contest:
    def __init__(self, args: argparse.Namespace, work: Path, dataset: str, model_path: str):
        self.args = args
        self.work = work
        self.dataset = dataset
        self.model_path = model_path
        self.scripts = {}
        for name, text in (("ray_data", _RAY_DATA), ("bare", _BARE)):
            self.scripts[name] = work / f"{name}_script.py"
            self.scripts[name].write_text(text)
        cli = Path(sys.executable).parent / "dlspec-ray"
        self.cli_command = str(cli) if cli.exists() else shutil.which("dlspec-ray") or "dlspec-ray"
        self.samples = 10_000 * args.tiles

    def run(self, name: str, i: int) -> dict:
        """One whole-process run of ``name``: its seconds, samples and top-1."""
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-{i}-", dir=self.work))
        try:
            seconds, figures = getattr(self, f"{name}_run")(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if figures["samples"] != self.samples:
            raise SystemExit(f"{name} evaluated {figures['samples']} samples, not {self.samples}")
        if abs(figures["top1"] - EXPECTED_TOP1) > 0.0005:
            raise SystemExit(f"{name}'s top-1 is {figures['top1']}, expected {EXPECTED_TOP1}")
        return {"seconds": seconds, **figures}

    def cli_run(self, folder: Path) -> tuple[float, dict]:
        out = folder / "run"
        command = [self.cli_command, "run", "--model", MODEL, "--dataset", self.dataset,
                   "--software", SOFTWARE, "--hardware", HARDWARE,
                   "--out", str(out), "--no-progress"]  # fmt: skip
        if self.args.tiles != 1:
            command.append("--trust")
        if self.args.cli_batch_size:
            command += ["--batch-size", str(self.args.cli_batch_size)]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        seconds, _ = timed(command, env, "dlspec-ray run")
        summary = json.loads((out / "summary.json").read_text())
        return seconds, {"samples": summary["samples"], "top1": summary["accuracy"]["top1"]}

    def ray_data_run(self, folder: Path) -> tuple[float, dict]:
        temp_dir = tempfile.mkdtemp(prefix="ray-data-")
        try:
            command = [sys.executable, str(self.scripts["ray_data"]), self.model_path,
                       str(IMAGES), str(LABELS), str(self.args.tiles), str(folder / "out"),
                       temp_dir, str(self.args.batch_size), str(self.args.actors)]  # fmt: skip
            seconds, stdout = timed(command, ray_env(temp_dir), "the Ray Data script")
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)
        return seconds, last_json(stdout)

    def bare_run(self, folder: Path) -> tuple[float, dict]:
        command = [sys.executable, str(self.scripts["bare"]), self.model_path, str(IMAGES),
                   str(LABELS), str(self.args.tiles), str(folder / "predictions.parquet"),
                   str(self.args.batch_size), str(self.args.threads)]  # fmt: skip
        seconds, stdout = timed(command, dict(os.environ), "the bare script")
        return seconds, last_json(stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiles", type=int, default=1, help="1: 10k samples; 100: 1M")
    parser.add_argument("--batch-size", type=int, default=256, help="ray_data and bare")
    parser.add_argument("--cli-batch-size", type=int, help="default: the CLI's own")
    parser.add_argument("--actors", type=int, default=2, help="Ray Data actor pool size")
    parser.add_argument("--threads", type=int, default=2, help="bare intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    from dlspec_ray.runtime.head import running_head

    if running_head() is not None:
        raise SystemExit("a `dlspec-ray up` head is running: the CLI would join it; end it first")
    model_path = str(fetch_all(resolve_task(MODEL, DATASET).model.artifacts)["graph"])
    runs: dict[str, list[dict]] = {name: [] for name in CONTESTANTS}
    with tempfile.TemporaryDirectory(prefix="bench-ray-data-") as tmp:
        work = Path(tmp)
        dataset = DATASET if args.tiles == 1 else str(tiled_manifest(work, args.tiles))
        contest = Contest(args, work, dataset, model_path)
        for i in range(args.runs):
            for k in range(len(CONTESTANTS)):
                name = CONTESTANTS[(i + k) % len(CONTESTANTS)]
                figures = contest.run(name, i)
                runs[name].append(figures)
                print(f"run {i + 1} {name}: {figures['seconds']:.2f} s", file=sys.stderr)

    seconds = {name: [r["seconds"] for r in runs[name]] for name in CONTESTANTS}
    medians = {name: statistics.median(seconds[name]) for name in CONTESTANTS}
    top1 = {name: runs[name][0]["top1"] for name in CONTESTANTS}
    ratios = {f"{name}_over_cli": medians[name] / medians["cli"] for name in CONTESTANTS[1:]}
    n = 10_000 * args.tiles
    print(f"{n:,} samples, whole process, median of {args.runs} run(s):")
    print(f"  {'contestant':<10} {'median s':>9} {'min-max s':>15} {'/ cli':>7} {'top-1':>7}")
    for name in CONTESTANTS:
        low, high = min(seconds[name]), max(seconds[name])
        ratio = medians[name] / medians["cli"]
        print(
            f"  {name:<10} {medians[name]:>9.2f} {low:>7.2f}-{high:<7.2f} "
            f"{ratio:>6.2f}x {top1[name]:>7.4f}"
        )
    print(
        f"  Ray Data takes {ratios['ray_data_over_cli']:.2f}x the CLI's time "
        f"(target >= 1.5), the bare process {ratios['bare_over_cli']:.2f}x"
    )
    if args.json:
        report = {
            "samples": n,
            "tiles": args.tiles,
            "runs": args.runs,
            "batch_size": args.batch_size,
            "cli_batch_size": args.cli_batch_size,
            "actors": args.actors,
            "threads": args.threads,
            "seconds": seconds,
            "median_s": medians,
            "top1": top1,
            **ratios,
        }
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

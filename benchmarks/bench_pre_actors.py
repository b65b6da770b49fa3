"""``--pre-actors`` on decode-heavy data: MNIST digits as 224x224 JPEG files.

Pre-processing decodes each JPEG and shrinks it to 28x28 for mnist-8, so nearly all of
a batch's time is decoding and the model's run is a sliver. That is the case the flag
is for: a GPU node has few CPUs, and with every stage on its host actors those few
CPUs decode while the GPU waits. Two setups, each measured side by side, alternating,
medians of ``--runs``:

- **cluster**: a ``ray.cluster_utils.Cluster`` on this machine, with a "GPU" node of 1
  CPU (the GPU is only a count: the model runs on the CPU) and a CPU node of 2 CPUs.
  The one-actor path puts its one host actor on the GPU node, which decodes and runs;
  with ``--pre-actors 2`` the two pre-process actors decode on the CPU node and the
  host actor only runs. This machine has 2 cores, so the CPU node's 2 CPUs and the GPU
  node's 1 share them: the ratio is a floor for a real cluster, where they do not.
- **one node**: the embedded Ray's 2 CPUs, 2 host actors doing everything, against 1
  host actor and 1 pre-process actor: what the extra object-store hop costs when there
  is no idle CPU to win.

The figure per run is the streaming throughput (``summary.json``'s ``throughput_sps``:
samples over the time from the first batch submitted to the last result) of a second
evaluation in a row, with the actors already started and warm. Both paths must give the
same top-1.

Usage: python benchmarks/bench_pre_actors.py [--runs 3] [--samples 2000] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MANIFESTS = REPO / "manifests"
PRE_PROCESS = """pre-process: |
  def fn(ctx, data):
      # JPEG files (224x224 grey digits) -> float32 [B, 1, 28, 28] in [0, 1].
      import numpy as np
      from PIL import Image

      out = np.empty((len(data), 1, 28, 28), dtype=np.float32)
      for i, path in enumerate(data):
          with Image.open(path) as image:
              small = image.convert("L").resize((28, 28), Image.BILINEAR)
          out[i, 0] = np.asarray(small, dtype=np.float32) / np.float32(255.0)
      return out
"""
GPU_NODE = """kind: hardware
id: {id}
name: bench-gpu-node
version: "1.0.0"
description: A node with one GPU of sm_90 and a single CPU for its host actor.
cpu: {{arch: x86_64, ncpu: 1}}
gpu:
  - {{arch: sm_90, count: 1}}
"""


def write_digits(folder: Path, samples: int) -> None:
    """The first ``samples`` MNIST test digits, upscaled to 224x224, as <label>/<n>.jpg."""
    from PIL import Image

    def read_idx(path: Path, offset: int) -> np.ndarray:
        return np.frombuffer(gzip.open(path).read(), dtype=np.uint8, offset=offset)

    images = read_idx(REPO / "assets/mnist/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(REPO / "assets/mnist/t10k-labels-idx1-ubyte.gz", 8)
    for n in range(samples):
        target = folder / str(int(labels[n])) / f"{n:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(images[n]).resize((224, 224), Image.BILINEAR)
        big.save(target, quality=90)


def write_manifests(root: Path, samples: int) -> dict[str, str]:
    """A JPEG digits dataset, mnist-8 with a JPEG pre-process, and the GPU node's hardware."""
    from dlspec_ray.artifacts import checksum_of

    write_digits(root / "digits", samples)
    dataset = (MANIFESTS / "datasets/imagenet-samples.yaml").read_text()
    reader = dataset.split("reader: |", 1)[1]
    (root / "digits.yaml").write_text(
        f'kind: dataset\nid: {uuid.uuid4()}\nname: bench-jpeg-digits\nversion: "1.0.0"\n'
        f"description: {samples} MNIST test digits as 224x224 JPEG files, <label>/<n>.jpg.\n"
        "license: CC BY-SA 3.0\nsources:\n  - name: images\n"
        f"    source: {root / 'digits'}\n    checksum: {checksum_of(root / 'digits')}\n"
        f"reader: |{reader}"
    )
    model = (MANIFESTS / "models/mnist-8.yaml").read_text()
    model = model.replace("../../assets/", f"{REPO}/assets/")
    model = model.replace("name: mnist-8\n", "name: bench-mnist-8-jpeg\n", 1)
    model = model.replace("id: e0b800cb-f477-4b52-b88f-57ef5c2f8694", f"id: {uuid.uuid4()}")
    start = model.index("pre-process: |")
    end = model.index("run: |")
    (root / "model.yaml").write_text(model[:start] + PRE_PROCESS + model[end:])
    (root / "gpu-node.yaml").write_text(GPU_NODE.format(id=uuid.uuid4()))
    return {
        "model": str(root / "model.yaml"),
        "dataset": str(root / "digits.yaml"),
        "hardware": str(root / "gpu-node.yaml"),
    }


def measure(args: argparse.Namespace) -> None:
    """The child: alternate the two paths in one session, print each run's figures."""
    import dlspec_ray

    paths = json.loads(args.paths)
    hardware = paths["hardware"] if args.setup == "cluster" else None
    paths_for = {
        "one-actor": {"actors": 1 if args.setup == "cluster" else 2},
        "pre-actors": {"actors": 1, "pre_actors": 2 if args.setup == "cluster" else 1},
    }
    figures: dict[str, list[float]] = {name: [] for name in paths_for}
    top1: dict[str, float] = {}
    with dlspec_ray.Session(args.address) as session:
        for i in range(args.runs):
            for name, settings in paths_for.items():
                # Switching paths starts new actors, whose first batches pay for imports and
                # first calls: the first evaluation warms them, the second is measured.
                for attempt in ("warm-up", "measured"):
                    result = session.evaluate(
                        paths["model"], paths["dataset"], software="onnxruntime-cpu@1.0.0",
                        hardware=hardware, out=Path(args.scratch) / f"{name}-{i}-{attempt}",
                        batch_size=64, progress=False, trust=True, **settings,
                    )  # fmt: skip
                    summary = result.summary
                    shutil.rmtree(result.out_dir)
                    if summary["errors"]["count"]:
                        raise SystemExit(f"{name}: {summary['errors']['messages'][:1]}")
                top1[name] = summary["accuracy"]["top1"]
                figures[name].append(summary["throughput_sps"])
    print(json.dumps({"figures": figures, "top1": top1}))


def run_setup(setup: str, paths: dict[str, str], runs: int, scratch: Path) -> dict:
    """One setup's figures, measured by a child driver (on the cluster: with its env)."""
    env, address, cluster = dict(os.environ), "", None
    if setup == "cluster":
        sys.path.insert(0, str(REPO / "tools"))
        from ray_clusters import start_cluster

        x86 = {"cpu_arch:x86_64": 1}
        cluster = start_cluster(
            [
                {"name": "gpu", "num_cpus": 1, "num_gpus": 1,
                 "resources": {**x86, "gpu_arch:sm_90": 1}},
                {"name": "cpu", "num_cpus": 2, "resources": x86},
            ],
            gcs_port=26700,
        )  # fmt: skip
        env, address = {**cluster.env}, cluster.address
    env["DLSPEC_RAY_CACHE"] = str(scratch / "cache")
    try:
        command = [
            sys.executable, __file__, "--measure", setup, "--paths", json.dumps(paths),
            "--runs", str(runs), "--scratch", str(scratch), "--address", address,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"{setup}: the measuring driver failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--setups", nargs="+", default=["cluster", "one-node"])
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    parser.add_argument("--address", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        args.setup, args.address = args.measure, args.address or None
        measure(args)
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-pre-actors-") as tmp:
        paths = write_manifests(Path(tmp), args.samples)
        for setup in args.setups:
            results[setup] = run_setup(setup, paths, args.runs, Path(tmp))
    print(f"mnist-8 on {args.samples} JPEG digits (224x224), batch 64, {args.runs} runs, "
          "streaming samples/s (median, min-max):")  # fmt: skip
    print(f"{'setup':<10} {'path':<11} {'samples/s':>10} {'min-max':>15} {'top-1':>7} {'ratio':>7}")
    for setup, result in results.items():
        base = statistics.median(result["figures"]["one-actor"])
        for name, values in result["figures"].items():
            median = statistics.median(values)
            spread = f"{min(values):,.0f}-{max(values):,.0f}"
            print(
                f"{setup:<10} {name:<11} {median:>10,.0f} {spread:>15} "
                f"{result['top1'][name]:>7.4f} {median / base:>6.2f}x"
            )
        if result["top1"]["one-actor"] != result["top1"]["pre-actors"]:
            print(f"{setup}: the two paths disagree on top-1", file=sys.stderr)
            return 1
    if args.json:
        args.json.write_text(json.dumps({"samples": args.samples, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""mnist-8 on a 2-node Ray cluster: 1 host actor against 2 (one per node), and the time to the
first result.

The cluster is a ray.cluster_utils.Cluster of two raylets on this machine (1 CPU each,
``cpu_arch:x86_64``; GCS port 26700, its own temp dir, stopped by PID), so 2 actors of
x86-64-cpu@1.0.0 (1 CPU each) must take one node each; the node ids of the result rows
are checked. Runs alternate (1 actor, 2 actors, ...) and medians are reported, because the
speed of these machines drifts within minutes. Per actor count:
- end to end: ``evaluate()`` with a fresh session, host actors started by the call;
- streaming: a warm session's first batch sent to last result back (``summary["wall_s"]``);
- first result: from the ``evaluate()`` call to the first batch's result, host actors
  started by the call (``summary["first_result_s"]``).

With ``--submit`` it also starts a one-node head with its job server (ports 26800-26869)
and times ``dlspec-ray submit`` of the same evaluation: from the command's start to the
first result (the job's own first_result_s plus the time the job took to start), and to
its summary back on this machine.

Usage: python benchmarks/bench_cluster.py [--runs 5] [--limit N] [--submit]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "mnist-8@1.0.0"
DATASET = "mnist-test@1.0.0"
SOFTWARE = "onnxruntime-cpu@1.0.0"
HARDWARE = "x86-64-cpu@1.0.0"


def load_tools():
    path = REPO / "tools" / "ray_clusters.py"
    spec = importlib.util.spec_from_file_location("ray_clusters", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def evaluate(actors: int, limit: int | None, batch_size: int, session=None) -> dict:
    import pyarrow.parquet as pq

    import dlspec_ray

    run = session.evaluate if session is not None else dlspec_ray.evaluate
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run(
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
        nodes = set(pq.read_table(Path(tmp) / "run" / "samples").column("node_id").to_pylist())
    summary = result.summary
    if limit is None and abs(summary["accuracy"]["top1"] - 0.989) > 0.0005:
        raise SystemExit(f"top-1 is {summary['accuracy']['top1']}, expected 0.989")
    if len(nodes) != actors:
        raise SystemExit(f"{actors} actors ran on {len(nodes)} node(s); expected one per node")
    return {
        "samples": summary["samples"],
        "end_to_end_s": end_to_end,
        "stream_s": summary["wall_s"],
        "first_result_s": summary["first_result_s"],
    }


def bench_cluster(tools, runs: int, limit: int | None, batch_size: int) -> dict:

    import dlspec_ray
    from dlspec_ray.runtime import connect

    nodes = [
        {"name": "a", "num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}},
        {"name": "b", "num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}},
    ]
    cluster = tools.start_cluster(nodes, gcs_port=26700)
    try:
        os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})
        # dlspec-ray's own connect keeps a 127.0.0.1 address on loopback (see cluster.py).
        connection = connect(cluster.address)
        evaluate(2, 1024, batch_size)  # warm the nodes' worker pools and the artifact cache
        figures: dict[int, dict[str, list[float]]] = {}
        for _ in range(runs):
            for actors in (1, 2):
                cold = evaluate(actors, limit, batch_size)
                with dlspec_ray.Session() as session:
                    evaluate(actors, limit, batch_size, session)  # starts the actors
                    warm = evaluate(actors, limit, batch_size, session)
                row = figures.setdefault(actors, {"end_to_end": [], "stream": [], "first": []})
                row["end_to_end"].append(cold["samples"] / cold["end_to_end_s"])
                row["stream"].append(warm["samples"] / warm["stream_s"])
                row["first"].append(cold["first_result_s"])
        connection.close()
    finally:
        cluster.stop()
    return {
        actors: {k: statistics.median(v) for k, v in row.items()} for actors, row in figures.items()
    }


def bench_submit(tools, runs: int, limit: int | None, batch_size: int, root: Path) -> dict:
    """``dlspec-ray submit`` to a local head: seconds to the first result and to the summary."""
    import subprocess

    head = tools.start_head(
        port_base=26800,
        num_cpus=2,
        resources={"cpu_arch:x86_64": 1},
        env={"DLSPEC_RAY_CACHE": str(root / "head-cache")},
    )
    first, total = [], []
    try:
        for i in range(runs):
            out = root / f"submitted-{i}"
            args = [
                sys.executable, "-m", "dlspec_ray.cli", "submit",
                "--model", MODEL, "--dataset", DATASET,
                "--software", SOFTWARE, "--hardware", HARDWARE,
                "--batch-size", str(batch_size),
                "--address", head.dashboard_url,
                "--out", str(out), "--cluster-out", str(root / f"cluster-out-{i}"),
                *(["--limit", str(limit)] if limit else []),
            ]  # fmt: skip
            started = time.time()
            subprocess.run(args, env=head.env, cwd=REPO, check=True, capture_output=True)
            total.append(time.time() - started)
            summary = json.loads((out / "summary.json").read_text())
            # The job's driver started its evaluate() call at (finished - wall - phases).
            call_started = _call_start(summary)
            first.append(call_started + summary["first_result_s"] - started)
    finally:
        head.stop()
    return {"first_result_s": statistics.median(first), "summary_back_s": statistics.median(total)}


def _call_start(summary: dict) -> float:
    from datetime import datetime

    # finished_at is taken just before the summarise phase.
    finished = datetime.fromisoformat(summary["finished_at"]).timestamp()
    return finished - sum(v for k, v in summary["phases_s"].items() if k != "summarise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--submit", action="store_true", help="also time dlspec-ray submit")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    os.chdir(REPO)
    tools = load_tools()
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        report["cluster"] = bench_cluster(tools, args.runs, args.limit, args.batch_size)
        if args.submit:
            report["submit"] = bench_submit(tools, args.runs, args.limit, args.batch_size, root)
    one = report["cluster"][1]
    print(f"mnist-8, batch {args.batch_size}, 2-node cluster, median of {args.runs} runs:")
    print(f"  {'':<12}{'end to end':>22}{'streaming':>22}{'first result':>14}")
    for actors, row in report["cluster"].items():
        print(
            f"  {actors} actor{'s' if actors > 1 else ' '}    "
            f"{row['end_to_end']:>9,.0f}/s ({row['end_to_end'] / one['end_to_end']:.2f}x)"
            f"{row['stream']:>12,.0f}/s ({row['stream'] / one['stream']:.2f}x)"
            f"{row['first']:>12.2f}s"
        )
    if "submit" in report:
        s = report["submit"]
        print(
            f"  dlspec-ray submit to a local head: first result after {s['first_result_s']:.2f}s, "
            f"summary back after {s['summary_back_s']:.2f}s"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

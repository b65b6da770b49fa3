"""`make bench`: every benchmark in one command, one JSON file with the machine's details.

Each benchmark runs as its own process, one after another, so that none shares the
machine with another; each prints its own tables of ratios (measured side by side in
that benchmark's run), and they are echoed here as they come. The JSON keeps, per
benchmark, its command, exit status, wall time, the figures it wrote with ``--json``
(for those that take it) and the tail of what it printed, beside the machine's CPU,
cores, memory and package versions, so that figures from two machines can be told apart.

Usage: python benchmarks/bench_all.py [--only NAME ...] [--out FILE]
(the docker benchmark needs a Docker engine: `make bench` runs this under
scripts/with-dockerd.sh)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
# name -> (script and its arguments, whether it takes --json FILE)
BENCHMARKS: dict[str, tuple[list[str], bool]] = {
    "mnist": (["bench_mnist.py", "--batch-sizes", "64", "256", "1024", "4096"], True),
    "environments": (["bench_environments.py"], False),
    "sweep": (["bench_sweep.py"], True),
    "cluster": (["bench_cluster.py", "--submit"], True),
    "trace": (["bench_trace.py"], False),
    "loadgen": (["bench_loadgen.py"], False),
    "ray_data": (["bench_ray_data.py"], True),
    "pre_actors": (["bench_pre_actors.py"], True),
}
_PACKAGES = ("dlspec-ray", "ray", "onnxruntime", "numpy", "pyarrow", "torch", "mlcommons-loadgen")
_TAIL_CHARS = 20_000


def machine() -> dict[str, object]:
    """What the figures depend on besides the code: the CPU, cores, memory and versions."""
    from dlspec_ray.hardware.machine import describe_machine

    host = describe_machine()  # what a run directory records of its machine, too
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": host["cpu_model"],
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_bytes": host["memory_bytes"],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": commit or None,
    }


def run_one(name: str, tmp: Path) -> dict[str, object]:
    script, takes_json = BENCHMARKS[name]
    command = [sys.executable, str(BENCH / script[0]), *script[1:]]
    figures_file = tmp / f"{name}.json"
    if takes_json:
        command += ["--json", str(figures_file)]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    printed: list[str] = []
    for line in proc.stdout or ():
        print(line, end="", flush=True)
        printed.append(line)
    code = proc.wait()
    text = "".join(printed)
    result: dict[str, object] = {
        "command": command[1:],
        "exit_code": code,
        "seconds": round(time.perf_counter() - started, 1),
        "output_tail": text[-_TAIL_CHARS:],
    }
    if figures_file.is_file():
        result["figures"] = json.loads(figures_file.read_text())
    elif "{" in text:  # a benchmark that prints its figures as one JSON object, last
        with contextlib.suppress(ValueError):
            result["figures"] = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these, of: {', '.join(BENCHMARKS)}")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/bench-<UTC time>.json"
    )
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or BENCH / "results" / f"bench-{stamp}.json"
    report: dict[str, object] = {"started_at": stamp, "machine": machine(), "benchmarks": {}}
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="dlspec-ray-bench-") as tmp:
        for name in names:
            results[name] = run_one(name, Path(tmp))
    report["benchmarks"] = results
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n| benchmark | exit | seconds |\n|---|---|---|")
    for name, result in results.items():
        print(f"| {name} | {result['exit_code']} | {result['seconds']} |")
    print(f"\nfigures and machine details: {out}")
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

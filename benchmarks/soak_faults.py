"""1,000,000 samples through a host actor crash and a driver SIGKILL, then ``--resume``.

The dataset is MNIST tiled 100 times (``benchmarks/mnist-tiled.yaml``): sample ``i`` is
image ``i % 10000``, so each of the million predictions can be checked against a clean
10,000-sample run, with no second million-sample run. In order:

1. A driver (its own process, its own embedded Ray) starts the run. One host actor's run
   call holds on a gate; the script SIGKILLs that actor's process (a crash: Ray restarts
   it, the run re-attaches it and retries its shard).
2. Once half the shards are in the ledger, the script SIGKILLs the driver.
3. ``dlspec-ray env gc`` ends what the driver left running and keeps its shards at --out.
4. ``dlspec-ray run --resume OUT`` finishes the run in a new driver.

It checks that every sample is there exactly once with the clean run's prediction, and
reports each driver's peak RSS (``ru_maxrss`` of that process alone) beside a 10,000-
sample run's, so "the driver's memory stays flat" is a measured figure.

Usage: python benchmarks/soak_faults.py [--tiles 100] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_driver_memory import tiled_manifest  # noqa: E402

RUN_LINE = '      return ctx["model"].run(None, {ctx["inputs"][0]["name"]: data})[0]\n'
HOLD = """      import os, pathlib, time
      gate = pathlib.Path({gate!r})
      calls = gate / f"calls-{{os.getpid()}}"
      calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
      if int(calls.read_text()) == 20 and not (gate / "fired").exists():
          (gate / "fired").write_text(str(os.getpid()))
          while not (gate / "release").exists():
              time.sleep(0.05)
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlspec_ray.cli", *args]


def timed(argv: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    """Run ``argv``; its exit code, its own peak RSS in MiB, and its stdout."""
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, out


def wait_until(condition, what: str, deadline_s: float = 3600) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"soak: {what} did not happen within {deadline_s:.0f}s")
        time.sleep(0.2)


def ledger_lines(folder: Path) -> int:
    files = list(folder.glob(".run.partial-*/ledger.jsonl"))
    return len(files[0].read_text().splitlines()) if files else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=100, help="MNIST copies (100: 1M samples)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlspec-ray-soak-"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["DLSPEC_RAY_CACHE"] = str(work / "cache")
    gate = work / "gate"
    gate.mkdir()
    model = work / "mnist-8.yaml"
    text = (REPO / "manifests/models/mnist-8.yaml").read_text()
    text = text.replace("../../assets/", f"{REPO}/assets/")
    model.write_text(text.replace(RUN_LINE, HOLD.format(gate=str(gate)) + RUN_LINE))
    dataset = tiled_manifest(work, args.tiles)
    common = ["--software", "onnxruntime-cpu@1.0.0", "--batch-size", str(args.batch_size)]
    common += ["--no-progress"]

    # The clean run: the shipped model (no gate), on the 10,000 images the tiles repeat.
    clean = ["--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0"]
    code, clean_rss, _ = timed(cli("run", *common, *clean, "--out", str(work / "clean")), env)
    if code != 0:
        raise SystemExit("soak: the clean 10,000-sample run failed")

    out = work / "run"
    started = time.perf_counter()
    held = ["--model", str(model), "--dataset", str(dataset)]
    driver = subprocess.Popen(cli("run", *common, *held, "--out", str(out)), env=env, cwd=REPO)
    wait_until(lambda: (gate / "fired").exists(), "the held run call")
    actor = int((gate / "fired").read_text())
    os.kill(actor, signal.SIGKILL)  # a host actor crash, mid-shard
    (gate / "release").touch()
    (staging,) = work.glob(".run.partial-*")
    shards = json.loads((staging / "run.json").read_text())["layout"]["shards"]
    wait_until(lambda: ledger_lines(work) * 2 >= shards, "half the shards recorded")
    kept_before_kill = ledger_lines(work)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first_s = time.perf_counter() - started

    gc = subprocess.run(cli("env", "gc"), env=env, cwd=REPO, capture_output=True, text=True)
    resumed_at = time.perf_counter()
    code, resume_rss, printed = timed(cli("run", "--resume", str(out), "--json"), env)
    if code != 0:
        raise SystemExit(f"soak: the resumed run failed (exit {code})")
    summary = json.loads(printed)

    table = pq.read_table(out / "samples", columns=["sample_id", "prediction", "error"])
    ids = table["sample_id"].to_numpy(zero_copy_only=False).astype(int)
    base = pq.read_table(work / "clean" / "samples", columns=["sample_id", "prediction"])
    base_pred = dict(
        zip(base["sample_id"].to_pylist(), base["prediction"].to_pylist(), strict=True)
    )
    expected = [base_pred[str(i % 10_000)] for i in ids]
    report = {
        "samples": table.num_rows,
        "unique_ids": len(set(ids.tolist())),
        "all_ids": sorted(ids.tolist()) == list(range(args.tiles * 10_000)),
        "errors": int(pc.sum(pc.is_valid(table["error"])).as_py() or 0),
        "predictions_equal_clean": table["prediction"].to_pylist() == expected,
        "shards_kept_at_kill": kept_before_kill,
        "resumed": summary.get("resumed"),
        "gc": [line for line in gc.stdout.splitlines() if "kept" in line or "ended" in line][:4],
        "peak_rss_mib": {"clean_10k": round(clean_rss), "resumed_driver": round(resume_rss)},
        "seconds": {
            "first_driver": round(first_s, 1),
            "resume": round(time.perf_counter() - resumed_at, 1),
        },
        "work_dir": str(work),
    }
    print(json.dumps(report, indent=2))
    ok = report["all_ids"] and report["unique_ids"] == report["samples"]
    ok = ok and report["predictions_equal_clean"] and report["errors"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

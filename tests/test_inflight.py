"""A driver killed with SIGKILL leaves a staging folder, an embedded Ray's temp dir and that
Ray's processes; `dlspec-ray env gc` removes exactly those, and nothing of a live run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dlspec_ray.artifacts import default_cache_dir
from dlspec_ray.cli import main
from dlspec_ray.inflight import remember, sweep_inflight
from dlspec_ray.owner import processes_naming

REPO = Path(__file__).resolve().parents[1]


def _wait_for(condition, what: str, timeout_s: float = 300.0):
    """Poll for a real condition; the generous deadline only stops a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s:.0f}s: {what}")


def _records() -> list[dict]:
    folder = default_cache_dir() / "inflight"
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []


def test_gc_cleans_what_a_killed_driver_left_and_only_that(mnist_manifests, tmp_path, capsys):
    mnist_manifests.edit(
        "model",
        "      batch = np.asarray(data)\n",
        "      batch = np.asarray(data)\n      __import__('time').sleep(100000)\n",
    )
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dlspec_ray.cli", *mnist_manifests.run_args(
        "--limit", "64", "--out", str(out))]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        # gc works from the records: wait for the staging folder's, and the folder.
        staging = Path(
            _wait_for(lambda: [r for r in _records() if r["kind"] == "staging"], "its record")[0][
                "path"
            ]
        )
        _wait_for(lambda: staging.is_dir(), "the run's staging folder")
        ray_temp = Path(
            _wait_for(lambda: [r for r in _records() if r["kind"] == "ray-temp"], "a Ray record")[
                0
            ]["path"]
        )
        assert processes_naming(str(ray_temp))  # the embedded Ray runs
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert staging.is_dir() and ray_temp.is_dir()  # what SIGKILL left

    # A live process's record is kept: only dead owners' leftovers go.
    live = tmp_path / ".other.partial-live"
    live.mkdir()
    record = remember("staging", live)

    assert main(["env", "gc"]) == 0
    printed = capsys.readouterr().out
    assert f"removed {staging}" in printed and f"removed {ray_temp}" in printed
    assert not staging.exists() and not ray_temp.exists() and not out.exists()
    assert processes_naming(str(ray_temp)) == []
    assert live.is_dir() and record.exists()
    record.unlink()
    assert sweep_inflight() == []

"""``dlspec-ray up``/``status``/``down``: a persistent local head that later runs join, with
the latest task's host actors and dataset kept warm between them, and ended by PID alone.

The runs are separate driver processes, as a user's are: the test process itself is
already connected to the suite's shared Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.owner import processes_naming
from dlspec_ray.runtime.head import HeadPorts

CLI = [sys.executable, "-m", "dlspec_ray.cli"]
# Ports of its own, outside Ray's worker range, so that it never meets the suite's Ray.
BASE = 26391


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_runs_join_the_head_and_find_their_actors_warm_until_down(repo_cwd, tmp_path):
    up = _cli("up", "--port", str(BASE), "--json")
    assert up.returncode == 0, up.stderr
    head = json.loads(up.stdout)
    try:
        assert head["address"] == f"127.0.0.1:{BASE}"
        assert head["ports"]["ray-client-server-port"] == BASE + 3
        assert processes_naming(head["temp_dir"])
        assert _cli("status").returncode == 0
        task = ("run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
                "--limit", "512", "--actors", "2", "--json", "--no-progress")  # fmt: skip
        warm = []
        for i in range(2):
            run = _cli(*task, "--out", str(tmp_path / f"run{i}"))
            assert run.returncode == 0, run.stderr
            summary = json.loads(run.stdout)
            assert summary["ray"]["local_head"] is True and summary["accuracy"]["top1"] > 0.9
            status = json.loads(_cli("status", "--json").stdout)
            warm.append({a["name"]: a["actor_id"] for a in status["warm"]})
        pools = [n for n in warm[0] if n.startswith("dlspec-ray-pool-")]
        data = [n for n in warm[0] if n.startswith("dlspec-ray-data-")]
        assert len(pools) == 2 and len(data) == 1
        assert warm[1] == warm[0]  # the second run used the very same actors
    finally:
        down = _cli("down")
    assert down.returncode == 0, down.stderr
    assert processes_naming(head["temp_dir"]) == []
    assert not os.path.exists(head["temp_dir"])
    assert _cli("status").returncode == 3  # no head recorded
    assert _cli("down").stdout.startswith("no local Ray head is recorded")


@pytest.mark.parametrize("base", [80, 10000, 19999, 65530])
def test_head_ports_stay_clear_of_rays_worker_range(base):
    with pytest.raises(UsageError, match=rf"--port {base}: expected a base port from 1024"):
        HeadPorts(base)


def test_a_taken_port_is_refused_before_ray_starts(repo_cwd, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        if 10002 <= port <= 19999 + 8 or port > 65527:
            pytest.skip(f"the free port the kernel chose ({port}) lies in Ray's worker range")
        up = _cli("up", "--port", str(port))
    assert up.returncode == 2
    assert f"these ports are taken on 127.0.0.1: port {port}" in up.stderr
    assert "Traceback" not in up.stderr

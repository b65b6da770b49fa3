"""Autoscaler-aware placement: unit tests of how the node types are found, and the real
autoscaler (Ray's fake multi-node provider, RAY_FAKE_CLUSTER=1) on this machine.

The head is started by tools/ray_clusters.py with clusters/fake-multinode.yaml, pinned ports
(26300-26369), its own temp dir, and is stopped by PID: never `ray stop`, and never
ray.cluster_utils.AutoscalingCluster, whose start and shutdown run `ray stop --force`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from dlspec_ray.errors import UsageError
from dlspec_ray.runtime.autoscaler import (
    AUTOSCALER_CONFIG_ENV,
    _same_gcs,
    autoscaler_node_types,
    monitor_config_path,
)

REPO = Path(__file__).resolve().parents[2]
FAKE_CONFIG = REPO / "clusters" / "fake-multinode.yaml"
PORT_BASE = 26300


def test_the_config_named_by_the_environment_wins(monkeypatch):
    monkeypatch.setenv(AUTOSCALER_CONFIG_ENV, str(FAKE_CONFIG))
    types = {t.name: t for t in autoscaler_node_types("127.0.0.1:1")}
    assert types["gpu-h100"].resources["gpu_arch:sm_90"] == 1
    assert types["gpu-h100"].can_start and not types["ray.head.default"].can_start


@pytest.mark.parametrize(
    ("text", "match"),
    [("[unclosed", "cannot read the cluster config"), ("a: 1", "not a cluster config")],
)
def test_a_bad_config_named_by_the_environment_is_bad_input(monkeypatch, tmp_path, text, match):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    monkeypatch.setenv(AUTOSCALER_CONFIG_ENV, str(path))
    with pytest.raises(UsageError, match=f"{AUTOSCALER_CONFIG_ENV}={path}: {match}"):
        autoscaler_node_types("127.0.0.1:1")


def fake_proc(root: Path, pid: int, args: list[str], cwd: Path) -> None:
    """A process entry of a stand-in /proc: its command line and working directory."""
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "cmdline").write_bytes("\0".join(args).encode() + b"\0")
    (entry / "cwd").symlink_to(cwd)


def test_the_autoscaler_serving_this_cluster_is_found_by_its_command_line(tmp_path):
    proc = tmp_path / "proc"
    monitor = ".../ray/autoscaler/_private/monitor.py"
    fake_proc(proc, 10, ["python", monitor, "--gcs-address=10.1.2.3:7000"], tmp_path)
    fake_proc(proc, 11, ["python", "other.py", "--autoscaling-config=/x.yaml"], tmp_path)
    args = ["python", "-u", monitor, "--gcs-address=10.1.2.3:6379", "--autoscaling-config=c.yaml"]
    fake_proc(proc, 12, args, tmp_path)
    assert monitor_config_path("10.1.2.3:6379", proc) == tmp_path / "c.yaml"
    assert monitor_config_path("10.1.2.3:6380", proc) is None


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("127.0.0.1:6379", "127.0.0.1:6379", True),
        ("127.0.0.1:6379", "localhost:6379", True),
        ("127.0.0.1:6379", "127.0.0.1:6380", False),
        ("192.0.2.250:6379", "127.0.0.1:6379", False),
        ("", "127.0.0.1:6379", False),
    ],
)
def test_gcs_addresses_match_by_port_and_host(a, b, same):
    assert _same_gcs(a, b) is same


@pytest.fixture(scope="module")
def autoscaling_head(ray_clusters, tmp_path_factory):
    """A head with Ray's real autoscaler and the fake provider, no worker node yet."""
    temp = tmp_path_factory.mktemp("autoscaler")
    config = yaml.safe_load(FAKE_CONFIG.read_text())
    config["provider"]["gcs_address"] = f"127.0.0.1:{PORT_BASE}"
    (temp / "cluster.yaml").write_text(yaml.safe_dump(config))
    head = ray_clusters.start_head(
        port_base=PORT_BASE,
        num_cpus=2,
        resources={"cpu_arch:x86_64": 1},
        autoscaling_config=temp / "cluster.yaml",
    )
    yield head
    head.stop()


def alive_nodes(head) -> dict[str, dict[str, float]]:
    from ray.util.state import list_nodes

    nodes = list_nodes(address=head.dashboard_url, detail=True)
    return {n.node_id: n.resources_total for n in nodes if n.state == "ALIVE"}


def run_cli(head, tmp_path, hardware: str, *extra: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "dlspec_ray.cli", "run",
        "--model", "mnist-8@1.0.0",
        "--dataset", "mnist-test@1.0.0",
        "--software", "onnxruntime-cpu@1.0.0",
        "--hardware", hardware,
        "--address", head.gcs_address,
        "--out", str(tmp_path / "run"),
        "--no-progress",
        *extra,
    ]  # fmt: skip
    env = {**head.env, "DLSPEC_RAY_CACHE": str(tmp_path / "cache")}
    # The run may wait up to its --ready-timeout (300 s) for the autoscaler, then evaluate.
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)


def test_the_autoscaler_adds_the_node_the_task_needs_and_removes_it_idle(
    autoscaling_head, tmp_path
):
    # Ray's fake provider cannot give a raylet a `memory` resource, so this copy of the
    # shipped H100 manifest leaves out the host memory it asks for; the rest is the same.
    shipped = (REPO / "manifests" / "hardware" / "h100-node.yaml").read_text()
    hardware = tmp_path / "h100-node.yaml"
    hardware.write_text(shipped.replace("\nmemory: 32GiB\n", "\n"))
    assert len(alive_nodes(autoscaling_head)) == 1

    done = run_cli(autoscaling_head, tmp_path, str(hardware), "--limit", "1000")
    assert done.returncode == 0, done.stderr
    assert "waiting up to 300s for the autoscaler to start a node of type gpu-h100" in done.stderr
    rows = pq.read_table(tmp_path / "run" / "samples").column("node_id").to_pylist()
    (node_id,) = set(rows)
    resources = alive_nodes(autoscaling_head)[node_id]
    assert resources["gpu_arch:sm_90"] == 1 and resources["GPU"] == 1

    # Polls for the real condition; the deadline only bounds a broken autoscaler, and is
    # generous because a loaded 2-core machine slows the autoscaler's loop down a lot.
    deadline = time.monotonic() + 300
    while node_id in alive_nodes(autoscaling_head) and time.monotonic() < deadline:
        time.sleep(1)
    assert node_id not in alive_nodes(autoscaling_head), "the idle node was not removed"


def test_a_request_no_node_type_fits_fails_fast_with_the_node_types(autoscaling_head, tmp_path):
    hardware = tmp_path / "sm80.yaml"
    hardware.write_text(
        (REPO / "manifests" / "hardware" / "h100-node.yaml")
        .read_text()
        .replace("arch: sm_90", "arch: sm_80")
        .replace("name: h100-node", "name: a100-node")
    )
    done = run_cli(autoscaling_head, tmp_path, str(hardware))
    assert done.returncode == 2, done.stderr
    # Fast means refused from the node types up front, never after waiting for the autoscaler.
    assert "waiting" not in done.stderr
    assert "gpu_arch:sm_80=1" in done.stderr
    assert "The cluster's autoscaler can start these node types, none of which fits" in done.stderr
    assert "type gpu-h100 (up to 1): CPU=8, GPU=1, cpu_arch:x86_64=1, gpu_arch:sm_90=1" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr

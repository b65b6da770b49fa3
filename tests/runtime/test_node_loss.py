"""A worker node lost mid-run (a spot preemption): its host actor is restarted by Ray on a
node that joins later (what an autoscaler does), re-attached to that node's own copy of the
dataset, and the run ends with every sample exactly once, as in a clean run.

The cluster is a ray.cluster_utils.Cluster in a child process (tools/ray_clusters.py, GCS
port 26700, own temp dir, stopped by PID). The node that joins is added by the test: the
stand-in for the autoscaler, which cannot run its cloud provider here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = {"num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}}


@pytest.fixture
def cluster(ray_clusters):
    nodes = [{"name": "head", "num_cpus": 0}, {"name": "w1", **WORKER}, {"name": "w2", **WORKER}]
    started = ray_clusters.start_cluster(nodes, gcs_port=26700)
    yield started
    started.stop()


def waiting_nodes(gate: Path) -> set[str]:
    return {p.name.split("-")[1] for p in gate.glob("waiting-*")}


def test_a_lost_node_moves_its_shards_and_a_new_node_takes_work(
    cluster, mnist_manifests, tmp_path, clean_run, faults
):
    gate = tmp_path / "gate"
    gate.mkdir()
    mnist_manifests.edit("model", faults.RUN_LINE, faults.faulty_run_stage(gate, "hold-all", 3))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dlspec_ray.cli", *mnist_manifests.run_args(
        *faults.SHAPE, "--address", cluster.address, "--out", str(out))]  # fmt: skip
    env = {**cluster.env, "DLSPEC_RAY_CACHE": str(tmp_path / "cache")}
    driver = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        names = {node_id: name for name, node_id in cluster.nodes.items()}
        faults.wait_until(lambda: len(waiting_nodes(gate)) == 2, "work held on both workers")
        assert {names[n] for n in waiting_nodes(gate)} == {"w1", "w2"}

        cluster.remove_node("w1")  # its actor dies mid-call; Ray restarts it when it can
        new = cluster.add_node("w3", **WORKER)
        faults.wait_until(lambda: new in waiting_nodes(gate), "the restarted actor on w3")
        (gate / "release").touch()
        _, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    nodes = set(pq.read_table(out / "samples").column("node_id").to_pylist())
    assert new in nodes and cluster.nodes["w2"] in nodes
    faults.assert_exactly_once_and_equal(out, clean_run)

"""Placement on a real multi-node Ray cluster: the node id in the result rows proves where
each task ran.

One ray.cluster_utils.Cluster serves the module: four raylets on this machine advertising
different resources (two x86-64 nodes, a node with a V100's gpu_arch:sm_70 and a GPU count,
an aarch64 node; the GPU is only a count, the "aarch64" node is this x86-64 host), each with
the node labels `dlspec-ray node-resources --labels` would give it (dlspec/gpu-arch=none on
the CPU nodes). It runs in a child process (tools/ray_clusters.py; GCS port 26500, own temp
dir, stopped by PID), and the evaluations run in driver subprocesses, as this process keeps
its own Ray connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dlspec_ray.hardware.labels import node_labels

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30


@pytest.fixture(scope="module")
def cluster(ray_clusters):
    cpu_x86, cpu_arm, v100 = (
        node_labels([], "x86_64"),
        node_labels([], "aarch64"),
        node_labels(["sm_70"], "x86_64"),
    )
    nodes = [
        {"name": "x86", "num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}, "labels": cpu_x86},
        {"name": "x86b", "num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}, "labels": cpu_x86},
        {
            "name": "v100",
            "num_cpus": 4,
            "num_gpus": 1,
            "memory": 17 * GIB,
            "resources": {"cpu_arch:x86_64": 1, "gpu_arch:sm_70": 1},
            "labels": v100,
        },
        {
            "name": "arm",
            "num_cpus": 4,
            "memory": 5 * GIB,
            "resources": {"cpu_arch:aarch64": 1},
            "labels": cpu_arm,
        },
    ]
    started = ray_clusters.start_cluster(nodes, gcs_port=26500)
    yield started
    started.stop()


def node_ids(run_dir: Path) -> set[str]:
    return set(pq.read_table(run_dir / "samples").column("node_id").to_pylist())


def run_cli(
    cluster, tmp_path, hardware: str, *extra: str, out: str = "run"
) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "dlspec_ray.cli", "run",
        "--model", "mnist-8@1.0.0",
        "--dataset", "mnist-test@1.0.0",
        "--software", "onnxruntime-cpu@1.0.0",
        "--hardware", hardware,
        "--limit", "2000",
        "--address", cluster.address,
        "--out", str(tmp_path / out),
        "--no-progress",
        *extra,
    ]  # fmt: skip
    env = {**cluster.env, "DLSPEC_RAY_CACHE": str(tmp_path / "cache")}
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_task_that_asks_for_sm_70_runs_only_on_that_node(cluster, tmp_path):
    done = run_cli(cluster, tmp_path, "v100-node@1.0.0")
    assert done.returncode == 0, done.stderr
    assert node_ids(tmp_path / "run") == {cluster.nodes["v100"]}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resources"]["gpu_arch:sm_70"] == 1
    assert summary["accuracy"]["top1"] == 0.983  # mnist-8 on the first 2,000 test images
    assert 0 < summary["first_result_s"] < sum(summary["phases_s"].values())


def test_a_cpu_task_stays_off_the_gpu_node_even_when_it_has_free_cpus(cluster, tmp_path):
    # By resources alone the V100 node fits this x86-64 CPU task, and it has the most free
    # CPUs (4, against 1 on each CPU node): only its label keeps the task off it.
    done = run_cli(cluster, tmp_path, "x86-64-cpu@1.0.0")
    assert done.returncode == 0, done.stderr
    cpu_nodes = {cluster.nodes["x86"], cluster.nodes["x86b"]}
    rows = node_ids(tmp_path / "run")
    assert rows and rows <= cpu_nodes and cluster.nodes["v100"] not in rows
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # One host actor per CPU node: as many as the labelled CPU nodes hold, not the V100's 4.
    assert sorted(summary["environment"]["nodes"]) == sorted(cpu_nodes)
    assert summary["accuracy"]["top1"] == 0.983
    # More actors than the CPU nodes hold are refused at once, though the V100 node's CPUs
    # would take them: Ray would queue them forever behind the label selector.
    refused = run_cli(cluster, tmp_path, "x86-64-cpu@1.0.0", "--actors", "3", out="three")
    assert refused.returncode == 2, refused.stderr
    assert "can hold at most 2 at once" in refused.stderr
    assert "on nodes labelled dlspec/gpu-arch=none" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "three").exists()


def test_pre_actors_sit_on_the_cpu_nodes_and_the_model_runs_on_the_gpu_node(
    cluster, tmp_path, faults
):
    one_actor = run_cli(cluster, tmp_path, "v100-node@1.0.0", out="one-actor")
    assert one_actor.returncode == 0, one_actor.stderr
    split = run_cli(cluster, tmp_path, "v100-node@1.0.0", "--pre-actors", "2", out="split")
    assert split.returncode == 0, split.stderr
    summary = json.loads((tmp_path / "split" / "summary.json").read_text())
    # Each row names the node whose host actor ran the model: the GPU node only.
    assert node_ids(tmp_path / "split") == {cluster.nodes["v100"]}
    assert summary["environment"]["nodes"] == [cluster.nodes["v100"]]
    # The pre-process actors, one per CPU-only x86-64 node (the aarch64 one cannot run
    # this x86-64 task's stage code).
    assert summary["pre_actors"]["nodes"] == sorted([cluster.nodes["x86"], cluster.nodes["x86b"]])
    assert summary["pre_actors"]["resources"] == {"CPU": 1, "cpu_arch:x86_64": 0.001}
    faults.assert_exactly_once_and_equal(tmp_path / "split", tmp_path / "one-actor")
    assert summary["accuracy"]["top1"] == 0.983


SWEEP = """
import json, sys
import dlspec_ray

address, out, hardware = sys.argv[1], sys.argv[2], sys.argv[3:]
with dlspec_ray.Session(address) as session:
    for hw in hardware:
        session.evaluate(
            "mnist-8@1.0.0", "mnist-test@1.0.0", software="onnxruntime-cpu@1.0.0",
            hardware=hw, limit=1000, out=f"{out}/{hw}", progress=False,
        )
"""


def test_a_sweep_over_two_hardware_manifests_lands_each_on_its_node(cluster, tmp_path):
    hardware = ["aarch64-node@1.0.0", "v100-node@1.0.0"]
    done = subprocess.run(
        [sys.executable, "-c", SWEEP, cluster.address, str(tmp_path), *hardware],
        env={**cluster.env, "DLSPEC_RAY_CACHE": str(tmp_path / "cache")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert node_ids(tmp_path / "aarch64-node@1.0.0") == {cluster.nodes["arm"]}
    assert node_ids(tmp_path / "v100-node@1.0.0") == {cluster.nodes["v100"]}


def test_an_impossible_request_fails_fast_with_the_node_table(cluster, tmp_path):
    # No single node has both an aarch64 CPU and an sm_70 GPU, though the cluster as a
    # whole has both: the check goes node by node.
    hardware = tmp_path / "arm-v100.yaml"
    hardware.write_text(
        (REPO / "manifests" / "hardware" / "v100-node.yaml")
        .read_text()
        .replace("arch: x86_64", "arch: aarch64")
        .replace("\nmemory: 16GiB\n", "\n")
    )
    done = run_cli(cluster, tmp_path, str(hardware))
    assert done.returncode == 2, done.stderr
    # Fast means refused by the node-by-node check, before any actor is made or waited for.
    assert "waiting" not in done.stderr
    assert not (tmp_path / "run").exists()
    message = done.stderr
    assert "no node of the Ray cluster can host" in message
    assert "CPU=4, GPU=1, gpu_arch:sm_70=1, cpu_arch:aarch64=0.001" in message
    for name, offer in [
        ("x86", "CPU=1, cpu_arch:x86_64=1"),
        ("v100", "CPU=4, GPU=1, cpu_arch:x86_64=1, gpu_arch:sm_70=1, memory=17.0GiB"),
        ("arm", "CPU=4, cpu_arch:aarch64=1, memory=5.0GiB"),
    ]:
        assert f"node {cluster.nodes[name][:12]}" in message
        assert offer in message
    assert "Traceback" not in message

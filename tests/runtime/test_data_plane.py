"""Data goes to the work: on a cluster whose nodes share no cache, each node fetches and reads
its own verified copy of the dataset, and the driver downloads none of it.

One ray.cluster_utils.Cluster of three raylets (tools/ray_clusters.py; GCS port 26600, own
temp dir, stopped by PID). Each raylet has its own DLSPEC_RAY_CACHE, so its workers fetch into
their own folder, and the driver a fourth. The datasets are HTTP sources on a real server on
127.0.0.1: the MNIST IDX files, and a tar.gz of the sample photos unpacked on each node.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
NODES = ("head", "worker-1", "worker-2")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 serving the MNIST files and a tar.gz of the photos."""
    root = tmp_path_factory.mktemp("http")
    for name in MNIST_FILES:
        (root / name).write_bytes((REPO / "assets" / "mnist" / name).read_bytes())
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    base = tmp_path_factory.mktemp("caches")
    return {name: base / name for name in (*NODES, "driver")}


@pytest.fixture(scope="module")
def cluster(ray_clusters, caches):
    nodes = [
        {
            "name": name,
            "num_cpus": 1,
            "resources": {"cpu_arch:x86_64": 1},
            "env_vars": {"DLSPEC_RAY_CACHE": str(caches[name])},
        }
        for name in NODES
    ]
    started = ray_clusters.start_cluster(nodes, gcs_port=26600)
    yield started
    started.stop()


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def mnist_over_http(tmp_path: Path, http_root) -> Path:
    _root, url = http_root
    text = (REPO / "manifests" / "datasets" / "mnist-test.yaml").read_text()
    for name in MNIST_FILES:
        text = text.replace(f"../../assets/mnist/{name}", f"{url}/{name}")
    text = text.replace("name: mnist-test", "name: mnist-test-http")
    return _manifest(tmp_path, "mnist-http", text)


def run_on_cluster(cluster, caches, tmp_path, *args: str) -> tuple[Path, dict]:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "dlspec_ray.cli", "run", *args,
        "--address", cluster.address, "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = {**cluster.env, "DLSPEC_RAY_CACHE": str(caches["driver"])}
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "summary.json").read_text())


def files_named(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.rglob(name) if p.is_file()] if folder.exists() else []


def test_each_node_fetches_its_own_copy_and_the_driver_none(cluster, caches, tmp_path, http_root):
    dataset = mnist_over_http(tmp_path, http_root)
    out, summary = run_on_cluster(
        cluster, caches, tmp_path,
        "--model", "mnist-8@1.0.0", "--dataset", str(dataset), "--actors", "3",
        "--batch-size", "500",
    )  # fmt: skip
    table = pq.read_table(out / "samples")
    ids = table.column("sample_id").to_pylist()
    assert sorted(ids, key=int) == [str(i) for i in range(10_000)]  # every sample, once
    assert summary["accuracy"]["top1"] == pytest.approx(0.989, abs=1e-12)
    ran_on = set(table.column("node_id").to_pylist())
    assert ran_on == set(cluster.nodes.values())  # each of the three nodes did some of it
    expected = _sha(REPO / "assets" / "mnist" / MNIST_FILES[0])
    for node in NODES:
        copies = files_named(caches[node], MNIST_FILES[0])
        assert copies, f"node {node} has no copy of the dataset in its own cache"
        assert {_sha(p) for p in copies} == {expected}
    assert files_named(caches["driver"], MNIST_FILES[0]) == []


def test_an_archive_with_a_sub_folder_is_unpacked_and_read_on_each_node(
    cluster, caches, tmp_path, http_root, photo_archive
):
    pytest.importorskip("ai_edge_litert")
    root, url = http_root
    # Packed into the served folder, read by each node from the server.
    dataset = photo_archive(root, lambda archive: f"{url}/{archive.name}", "photos-http")
    out, summary = run_on_cluster(
        cluster, caches, tmp_path,
        "--model", "mobilenet-v1-0.25-128-quant-tflite@1.0.0", "--dataset", str(dataset),
        "--software", "litert-cpu@1.0.0", "--actors", "3", "--batch-size", "1",
    )  # fmt: skip
    table = pq.read_table(out / "samples")
    local = sorted(
        p.relative_to(REPO / "assets" / "imagenet-samples" / "images").as_posix()
        for p in (REPO / "assets" / "imagenet-samples" / "images").rglob("*")
        if p.is_file()
    )
    assert sorted(table.column("sample_id").to_pylist()) == local
    # The labels come from the class folders inside test/, not from test/ itself.
    assert len(set(table.column("label").to_pylist())) == len(local)
    assert summary["errors"]["count"] == 0
    assert files_named(caches["driver"], "photos.tar.gz") == []

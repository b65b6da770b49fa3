"""The docker environment: stage code in a framework container on a real Docker engine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.environments import (
    DockerEnvironment,
    EnvironmentDied,
    EnvironmentUnavailable,
    InlineEnvironment,
    Placement,
    make_environment,
)
from dlspec_ray.environments.container import device_requests, resource_limits
from dlspec_ray.environments.shm import shm_root
from dlspec_ray.spec.loader import load_manifest
from dlspec_ray.spec.types import StageSource
from dlspec_ray.stages import build_context

REPO = Path(__file__).resolve().parents[2]
DOCKER_SOFTWARE = REPO / "manifests" / "software" / "onnxruntime-cpu-docker.yaml"


def stage(name: str, body: str) -> StageSource:
    code = "def fn(ctx, data):\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
    return StageSource(name=name, code=code, file="/m.yaml", line=1)


# -- the mapping from an actor to container options (no engine, no GPU needed) ---------


@pytest.mark.parametrize(
    "gpu_ids, device_ids",
    [((), None), (("0",), ["0"]), ((1, 3), ["1", "3"]), (("GPU-5f1c",), ["GPU-5f1c"])],
)
def test_the_actors_gpus_become_exactly_one_device_request(gpu_ids, device_ids):
    requests = device_requests(gpu_ids)
    if device_ids is None:
        assert requests == []
        return
    assert len(requests) == 1
    assert requests[0]["DeviceIDs"] == device_ids
    assert requests[0]["Capabilities"] == [["gpu"]]
    assert requests[0]["Count"] == 0  # exactly those devices, not "all"


def test_run_options_carry_limits_labels_devices_and_no_network(tmp_path):
    software = load_manifest(DOCKER_SOFTWARE)
    placement = Placement(cpus=1.5, memory=2 * 2**30, gpu_ids=("2",),
                          labels={"run": "r1", "actor": "a1"})  # fmt: skip
    env = DockerEnvironment(software, placement=placement)
    artifact = tmp_path / "models" / "graph.onnx"
    artifact.parent.mkdir()
    artifact.write_bytes(b"x")
    options = env.run_options("sha256:abc", tmp_path / "io" / "agent.sock",
                              {"artifacts": {"graph": str(artifact)}})  # fmt: skip
    assert options["network_mode"] == "none"
    assert options["nano_cpus"] == 1_500_000_000
    assert options["mem_limit"] == options["memswap_limit"] == 2 * 2**30
    assert options["device_requests"][0]["DeviceIDs"] == ["2"]
    assert options["user"] == f"{os.getuid()}:{os.getgid()}"
    assert options["environment"]["OMP_NUM_THREADS"] == "1"
    labels = options["labels"]
    assert labels["dlspec-ray.run"] == "r1" and labels["dlspec-ray.actor"] == "a1"
    assert labels["dlspec-ray.owner"].startswith(f"{os.getpid()}.")
    assert labels["dlspec-ray.software"] == "onnxruntime-cpu-docker@1.0.0"
    volumes = options["volumes"]
    assert volumes[str(tmp_path / "io")] == {"bind": "/dlspec-ray/io", "mode": "rw"}
    assert volumes[str(artifact.parent)] == {"bind": str(artifact.parent), "mode": "ro"}


def test_no_limits_when_the_hardware_manifest_gives_none():
    assert resource_limits(Placement()) == {}


# -- on the real engine ---------------------------------------------------------------


@pytest.fixture
def mnist(docker_engine, onnxruntime_image):
    model = load_manifest(REPO / "manifests" / "models" / "mnist-8.yaml")
    ctx = build_context(model, fetch_all(model.artifacts), batch_size=64, num_threads=1)
    return model, ctx


def run_batch(env, model, ctx, batch):
    env.start(model.stages, ctx)
    env.call("load", ctx["artifacts"])
    pre = env.call("pre-process", batch).value
    return env.call("post-process", env.call("run", pre).value).value


def test_mnist_in_the_container_is_bit_identical_to_inline(mnist):
    model, ctx = mnist
    software = load_manifest(DOCKER_SOFTWARE)
    batch = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    docker = make_environment("docker", software)
    inline = InlineEnvironment(software)
    try:
        got = run_batch(docker, model, ctx, batch)
        want = run_batch(inline, model, ctx, batch)
        info = docker.describe()
    finally:
        docker.close()
    for key in ("top_k", "scores", "output"):
        assert got[key].tobytes() == want[key].tobytes()
    assert info["kind"] == "docker"
    assert info["image"] == "dlspec-ray/onnxruntime-cpu:1.32.0"
    assert info["image_id"].startswith("sha256:")
    assert info["framework"] == {"name": "onnxruntime", "version": "1.32.0"}
    assert info["packages"]["numpy"] == "2.4.6"


def test_the_container_has_no_network_its_limits_and_env(docker_engine, onnxruntime_image):
    software = load_manifest(DOCKER_SOFTWARE)
    env = DockerEnvironment(software, placement=Placement(cpus=1, memory=512 * 2**20))
    probe = stage(
        "run",
        "import os, pathlib\n"
        "cg = pathlib.Path('/sys/fs/cgroup/memory/memory.limit_in_bytes')\n"
        "cg = cg if cg.exists() else pathlib.Path('/sys/fs/cgroup/memory.max')\n"
        "return {'net': sorted(os.listdir('/sys/class/net')), 'mem': int(cg.read_text()),\n"
        "        'omp': os.environ.get('OMP_NUM_THREADS'), 'uid': os.getuid()}",
    )
    env.start({"run": probe}, {})
    folder = env.folder
    try:
        seen = env.call("run", None).value
        container = env._container
        assert container is not None
        container.reload()
        assert container.attrs["HostConfig"]["ShmSize"] == 512 * 2**20
    finally:
        env.close()
    assert seen == {"net": ["lo"], "mem": 512 * 2**20, "omp": "1", "uid": os.getuid()}
    assert folder is not None and not folder.exists()
    assert docker_engine.containers.list(all=True, filters={"name": folder.name}) == []


def test_a_crash_inside_the_container_gives_its_log_tail(docker_engine, onnxruntime_image):
    software = load_manifest(DOCKER_SOFTWARE)
    env = DockerEnvironment(software)
    crash = stage("run", "import os, sys\nprint('segfault coming', file=sys.stderr)\nos._exit(139)")
    env.start({"run": crash}, {})
    try:
        with pytest.raises(EnvironmentDied, match=r"(?s)exited with code 139.*segfault coming"):
            env.call("run", None)
    finally:
        env.close()


def test_a_missing_image_is_named_with_how_to_build_it(docker_engine, tmp_path):
    text = DOCKER_SOFTWARE.read_text().replace(
        "container: dlspec-ray/onnxruntime-cpu:1.32.0", "container: dlspec-ray/absent:0.0"
    )
    path = tmp_path / "absent.yaml"
    path.write_text(text)
    software = load_manifest(path)
    with pytest.raises(
        EnvironmentUnavailable,
        match=rf"^{path}: container: the image 'dlspec-ray/absent:0.0' is not in the Docker "
        rf"engine at .*dlspec-ray images build {path}$",
    ):
        DockerEnvironment.prepare(software)


def test_an_unreachable_docker_daemon_says_how_to_start_one(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    with pytest.raises(
        EnvironmentUnavailable,
        match=rf"the Docker engine at DOCKER_HOST=unix://{tmp_path}/nobody.sock does not answer "
        r".*scripts/dockerd.sh start DIR",
    ):
        DockerEnvironment.prepare(load_manifest(DOCKER_SOFTWARE))


def test_nothing_is_left_in_shared_memory_by_these_tests():
    leftovers = [p.name for p in shm_root().glob(f"dlspec-ray-{os.getpid()}.*")]
    assert leftovers == []

"""The docker environment: stage code in a framework container on a real Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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
from dlspec_ray.environments.bundle import agent_bundle
from dlspec_ray.environments.container import (
    CONTAINER_USER_ENV,
    NOBODY,
    container_user,
    device_requests,
    resource_limits,
    unreadable_folders,
)
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
    assert options["user"] == "{}:{}".format(*container_user())
    assert options["environment"]["OMP_NUM_THREADS"] == "1"
    labels = options["labels"]
    assert labels["dlspec-ray.run"] == "r1" and labels["dlspec-ray.actor"] == "a1"
    assert labels["dlspec-ray.owner"].startswith(f"{os.getpid()}.")
    assert labels["dlspec-ray.software"] == "onnxruntime-cpu-docker@1.0.0"
    volumes = options["volumes"]
    assert volumes[str(tmp_path / "io")] == {"bind": "/dlspec-ray/io", "mode": "rw"}
    assert volumes[str(artifact.parent)] == {"bind": str(artifact.parent), "mode": "ro"}


@pytest.mark.parametrize(
    ("configured", "expected"),
    [("", None), ("1000:1001", (1000, 1001)), ("1000", (1000, 1000)), ("0:0", (0, 0))],
)
def test_the_container_user_is_unprivileged_unless_configured(monkeypatch, configured, expected):
    monkeypatch.setenv(CONTAINER_USER_ENV, configured)
    if expected is None:  # the host actor's own user, or nobody in place of root
        expected = NOBODY if os.getuid() == 0 else (os.getuid(), os.getgid())
    assert container_user() == expected


@pytest.mark.parametrize("configured", ["nobody", "1000:", "1000:x", "-1"])
def test_a_bad_container_user_is_refused(monkeypatch, configured):
    monkeypatch.setenv(CONTAINER_USER_ENV, configured)
    with pytest.raises(EnvironmentUnavailable, match=rf"{CONTAINER_USER_ENV}: expected UID or "):
        container_user()


def test_a_mount_its_user_cannot_enter_is_named_with_its_mode(tmp_path):
    open_folder, closed = tmp_path / "open", tmp_path / "closed"
    open_folder.mkdir(mode=0o755)
    closed.mkdir(mode=0o700)
    open_folder.chmod(0o755)
    closed.chmod(0o700)
    me = os.getuid(), os.getgid()
    stranger = (me[0] + 12345, me[1] + 12345)
    assert unreadable_folders([open_folder, closed], *me) == []
    assert unreadable_folders([open_folder, closed], *stranger) == [
        f"{closed} (mode 0700, owner {me[0]}:{me[1]})"
    ]
    assert unreadable_folders([closed], 0, 0) == []


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
    assert seen == {"net": ["lo"], "mem": 512 * 2**20, "omp": "1", "uid": container_user()[0]}
    assert seen["uid"] != 0
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


@pytest.mark.skipif(
    os.getuid() != 0 or not Path("/usr/bin/python3").exists(),
    reason="running the check as another user needs root, and a Python outside /root",
)
def test_the_agent_names_the_folder_that_keeps_its_user_from_an_artifact():
    # pytest's own temp root is 0700 on the host: this test's folder must be reachable by nobody.
    reachable = Path(tempfile.mkdtemp(prefix="dlspec-ray-test-", dir="/tmp"))
    try:
        reachable.chmod(0o755)
        closed = reachable / "closed"
        closed.mkdir()
        closed.chmod(0o700)
        artifact = closed / "graph.onnx"
        artifact.write_bytes(b"x")
        artifact.chmod(0o644)
        code = (
            "from dlspec_ray.environments.agent import check_readable\n"
            f"check_readable({{'open': '/etc/hostname', 'graph': {str(artifact)!r}}})"
        )
        result = subprocess.run(
            ["/usr/bin/python3", "-c", code], user=NOBODY[0], group=NOBODY[1],
            capture_output=True, text=True, cwd="/",
            env={"PYTHONPATH": str(agent_bundle(reachable / "env"))},
        )  # fmt: skip
    finally:
        shutil.rmtree(reachable)
    assert result.returncode == 1
    assert (
        f"PermissionError: artifact 'graph' ({artifact}) cannot be read by uid 65534 in this "
        f"environment: {closed} stops it (mode 0700, owner 0:0)." in result.stderr
    ), result.stderr

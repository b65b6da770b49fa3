"""Hostile stage code in the docker environment: what it tries, and that each attempt fails.

The stage runs in the real framework container on the private engine. It tries to reach
the network, write outside its scratch dir, read a host file outside its mounts, see the
host's processes, gain privileges and be root, and returns what happened; the test checks each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dlspec_ray.environments import DockerEnvironment, Placement
from dlspec_ray.environments.container import container_user
from dlspec_ray.spec import load_manifest
from dlspec_ray.spec.types import StageSource

REPO = Path(__file__).resolve().parents[2]
DOCKER_SOFTWARE = REPO / "manifests" / "software" / "onnxruntime-cpu-docker.yaml"

HOSTILE = """def fn(ctx, data):
    import os, socket
    tried = {}

    def attempt(name, action):
        try:
            action()
            tried[name] = "done"
        except Exception as exc:
            tried[name] = f"refused: {type(exc).__name__}"

    def connect():
        s = socket.create_connection((data["host_ip"], data["port"]), timeout=2)
        s.close()

    def write_root():
        with open("/usr/lib/evil", "w") as f:
            f.write("x")

    def write_scratch():
        with open("/tmp/scratch-ok", "w") as f:
            f.write("x")

    def read_host_file():
        with open(data["host_file"]) as f:
            f.read()

    attempt("network", connect)
    attempt("write outside scratch", write_root)
    attempt("write in scratch", write_scratch)
    attempt("read a host file outside the mounts", read_host_file)
    attempt("chown (a capability)", lambda: os.chown("/tmp/scratch-ok", 1, 1))
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    tried["processes seen"] = len(pids)
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    tried["no_new_privs"] = status["NoNewPrivs"].strip()
    tried["effective capabilities"] = status["CapEff"].strip()
    tried["uid"] = os.getuid()
    return tried
"""


@pytest.fixture
def environment(docker_engine, onnxruntime_image):
    software = load_manifest(DOCKER_SOFTWARE)
    env = DockerEnvironment(software, placement=Placement())  # type: ignore[arg-type]
    stages = {"run": StageSource("run", HOSTILE, "hostile.yaml", 1)}
    env.start(stages, {})
    yield env
    env.close()


def test_hostile_stage_code_is_confined_in_the_container(environment, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    tried = environment.call(
        "run", {"host_ip": "127.0.0.1", "port": 22, "host_file": str(secret)}
    ).value
    assert tried["network"].startswith("refused")  # --network none: not even loopback
    assert tried["write outside scratch"] == "refused: OSError"  # read-only root
    assert tried["write in scratch"] == "done"  # /tmp is its private tmpfs
    assert tried["read a host file outside the mounts"] == "refused: FileNotFoundError"
    assert tried["chown (a capability)"] == "refused: PermissionError"
    assert tried["processes seen"] <= 3  # its own pid namespace: the agent, maybe a shell
    assert tried["no_new_privs"] == "1"
    assert tried["effective capabilities"] == "0000000000000000"
    # Never root, even when the tests run as root: then nobody (container_user).
    assert tried["uid"] == container_user()[0] != 0

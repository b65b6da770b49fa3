"""Orphans (of actors killed without closing their environment) are found and removed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlspec_ray.environments.shm import shm_root
from dlspec_ray.environments.sweeper import sweep
from dlspec_ray.owner import HOST, owner_token


@pytest.fixture
def dead_token():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = owner_token(child.pid)
    child.wait()
    return token


def test_shared_memory_of_a_dead_owner_goes_and_a_live_ones_stays(dead_token):
    orphan = shm_root() / f"dlspec-ray-{dead_token}-0000dead"
    live = shm_root() / f"dlspec-ray-{owner_token()}-0000a11e"
    for folder in (orphan, live):
        folder.mkdir()
        (folder / "h2a").write_bytes(b"x" * 4096)
    try:
        report = sweep(containers=False)
        assert str(orphan) in report.folders and not orphan.exists()
        assert live.exists()
        report = sweep(containers=False, everything=True)
        assert str(live) in report.folders and not live.exists()
    finally:
        for folder in (orphan, live):
            subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_containers_of_a_dead_owner_go_and_a_live_ones_stay(
    docker_engine, onnxruntime_image, dead_token
):
    def start(token: str, name: str):
        return docker_engine.containers.run(
            onnxruntime_image.id, ["python3", "-c", "import time; time.sleep(120)"],
            detach=True, network_mode="none", name=name,
            labels={"dlspec-ray.managed": "1", "dlspec-ray.host": HOST, "dlspec-ray.owner": token},
        )  # fmt: skip

    orphan = start(dead_token, f"dlspec-ray-test-orphan-{os.getpid()}")
    live = start(owner_token(), f"dlspec-ray-test-live-{os.getpid()}")
    try:
        report = sweep()
        assert orphan.name in report.containers and live.name not in report.containers
        names = {c.name for c in docker_engine.containers.list(all=True)}
        assert orphan.name not in names and live.name in names
    finally:
        for container in (orphan, live):
            with contextlib.suppress(Exception):  # the sweep removed it already
                container.remove(force=True)


def test_a_container_removed_while_the_sweep_lists_them_is_skipped(
    docker_engine, onnxruntime_image, monkeypatch
):
    """Another process may remove its container between the sweep's listing and its
    inspection (a node's reader environment does, as soon as it has read); in a full
    suite that once failed a host actor's start with a 404. The removal is injected
    exactly there, on the real engine."""
    from docker.models.containers import ContainerCollection

    labels = {"dlspec-ray.managed": "1", "dlspec-ray.host": HOST, "dlspec-ray.owner": owner_token()}
    gone = docker_engine.containers.create(
        onnxruntime_image.id, ["true"], labels=labels, network_mode="none",
        name=f"dlspec-ray-test-gone-{os.getpid()}",
    )  # fmt: skip
    inspect = ContainerCollection.get

    def get(self, container_id, *args, **kwargs):
        if container_id == gone.id:
            gone.remove(force=True)  # its owner removes it, just now
        return inspect(self, container_id, *args, **kwargs)

    monkeypatch.setattr(ContainerCollection, "get", get)
    report = sweep()
    assert gone.name not in report.containers
    assert gone.name not in {c.name for c in docker_engine.containers.list(all=True)}


def test_without_an_engine_the_sweep_says_why_containers_were_not_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    report = sweep()
    assert report.docker_skipped is not None and "does not answer" in report.docker_skipped


OWNER = """
import json, sys
from dlspec_ray.environments import ProcessEnvironment
from dlspec_ray.spec.types import StageSource

def stage(name, body):
    return StageSource(name=name, code="def fn(ctx, data):\\n    " + body + "\\n", file="m.yaml",
                       line=1)

stages = {name: stage(name, "return data") for name in ("load", "pre-process", "post-process")}
stages["run"] = stage("run", "import time\\n    while True: time.sleep(1)")
environment = ProcessEnvironment(None)
environment.start(stages, {})
print(json.dumps({"agent": environment._proc.pid, "folder": str(environment.folder)}), flush=True)
environment.call("run", 1)  # never returns
"""


def test_the_agent_a_killed_owner_left_in_a_stage_is_ended_with_its_folder():
    import json
    import signal

    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(owner.stdout.readline())
    finally:
        owner.send_signal(signal.SIGKILL)  # what a crash does: the agent is left in its stage
        owner.wait()
    agent, folder = started["agent"], started["folder"]
    assert os.path.exists(f"/proc/{agent}") and os.path.isdir(folder)
    report = sweep(containers=False)
    assert report.agents == [agent] and folder in report.folders
    assert not os.path.isdir(folder)
    try:  # gone, or a zombie that its new parent has not reaped yet
        state = Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z")

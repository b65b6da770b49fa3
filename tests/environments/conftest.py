"""A real Docker engine and the framework images, for the environment tests.

``make test`` runs the suite under ``scripts/with-dockerd.sh``, which starts a
private engine and exports ``DOCKER_HOST`` (or, where no engine can run here,
``DLSPEC_RAY_DOCKER_UNAVAILABLE`` with the reason: the Docker tests then skip
with it). Run by hand without either, these tests start the same engine
themselves. Both happen before Ray starts, so host actors see ``DOCKER_HOST``.

Venvs of the ``process`` environment go to a fresh folder per test session;
the base image's root filesystem is cached where the machine keeps it
(``~/.cache/dlspec-ray/images``), as the issue asks, since making it takes a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_started: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DLSPEC_RAY_ENV_CACHE"):
        _started["env_cache"] = tempfile.mkdtemp(prefix="dlspec-ray-test-env-")
        os.environ["DLSPEC_RAY_ENV_CACHE"] = _started["env_cache"]
    if os.environ.get("DOCKER_HOST") or os.environ.get("DLSPEC_RAY_DOCKER_UNAVAILABLE"):
        return
    state = tempfile.mkdtemp(prefix="dlspec-ray-dockerd.")
    _started["dockerd"] = state
    # With our pid: the engine stops even if this pytest is killed before unconfigure.
    script = str(REPO / "scripts" / "dockerd.sh")
    subprocess.run([script, "start", state, str(os.getpid())], check=False)
    env_file = Path(state) / "env"
    for line in env_file.read_text().splitlines() if env_file.exists() else []:
        key, _, value = line.removeprefix("export ").partition("=")
        os.environ[key] = subprocess.run(
            ["bash", "-c", f"printf %s {value}"], capture_output=True, text=True, check=False
        ).stdout


def pytest_unconfigure(config: pytest.Config) -> None:
    if "dockerd" in _started:
        subprocess.run(
            [str(REPO / "scripts" / "dockerd.sh"), "stop", _started.pop("dockerd")], check=False
        )
    if "env_cache" in _started:
        shutil.rmtree(_started.pop("env_cache"), ignore_errors=True)


@pytest.fixture(scope="session")
def docker_engine():
    """A docker-py client of the real engine; skips only where no engine can run here."""
    reason = os.environ.get("DLSPEC_RAY_DOCKER_UNAVAILABLE")
    if reason:
        pytest.skip(f"no Docker engine can run on this machine: {reason}")
    from dlspec_ray.environments.engine import docker_client

    return docker_client()


@pytest.fixture(scope="session")
def onnxruntime_image(docker_engine):
    """The onnxruntime-cpu-docker manifest's image, built offline (cached by its recipe)."""
    from dlspec_ray.environments.images import build_image
    from dlspec_ray.spec.loader import load_manifest

    software = load_manifest(REPO / "manifests" / "software" / "onnxruntime-cpu-docker.yaml")
    return build_image(software)  # type: ignore[arg-type]

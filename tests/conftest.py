"""Shared fixtures: one real local Ray for the whole test session, and the repo's paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray (2 CPUs, own temp dir) that every Ray test shares.

    Started through dlspec-ray's own embedded path, so the tests exercise the
    resources it advertises. ``evaluate`` reuses it instead of starting another.
    """
    from dlspec_ray.runtime import connect

    connection = connect(num_cpus=2)
    yield connection
    connection.close()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "artifact-cache"
    monkeypatch.setenv("DLSPEC_RAY_CACHE", str(cache))


@pytest.fixture
def repo_cwd(monkeypatch):
    """Run with the repo as the working directory, so ./manifests is the default catalog."""
    monkeypatch.chdir(REPO)
    return REPO


def pytest_configure(config):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def mnist_manifests(tmp_path):
    """Editable copies of the mnist manifests (sources made absolute), by kind.

    Tests break one field at a time with ``edit(kind, old, new)``; each copy keeps
    its name@version, so refs between them still resolve.
    """
    return ManifestCopies(tmp_path / "manifests")


class ManifestCopies:
    FILES = {
        "model": "models/mnist-8.yaml",
        "dataset": "datasets/mnist-test.yaml",
        "software": "software/onnxruntime-cpu.yaml",
        "hardware": "hardware/x86-64-cpu.yaml",
        "reference": "references/mnist-8-onnxruntime.yaml",
    }

    def __init__(self, root: Path):
        self.root = root
        for rel in self.FILES.values():
            src = MANIFESTS / rel
            text = src.read_text().replace("../../assets/", f"{REPO}/assets/")
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)

    def path(self, kind: str) -> str:
        return str(self.root / self.FILES[kind])

    def edit(self, kind: str, old: str, new: str) -> str:
        path = self.root / self.FILES[kind]
        text = path.read_text()
        if old not in text:
            raise AssertionError(f"{old!r} is not in {path}")
        path.write_text(text.replace(old, new, 1))
        return str(path)

    def run_args(self, *extra: str) -> list[str]:
        return [
            "run",
            "--model", self.path("model"),
            "--dataset", self.path("dataset"),
            "--software", self.path("software"),
            "--hardware", self.path("hardware"),
            "--no-progress",
            *extra,
        ]  # fmt: skip

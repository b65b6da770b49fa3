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

"""The agent's code as a folder an environment can import, with nothing else of dlspec-ray.

An environment holds its own framework and numpy, and may hold no dlspec-ray at
all. The agent needs five of dlspec-ray's modules, all standard-library only;
they are copied unchanged under empty package markers, so the agent runs the
very ``StageRunner`` and wire protocol of the host (``dlspec_ray/__init__.py``
and friends would import what an environment lacks). The folder is keyed by a
hash of the modules, so a new dlspec-ray never talks to an old agent.
"""

from __future__ import annotations

__all__ = ["AGENT_MODULES", "agent_bundle", "agent_digest"]

import hashlib
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

import dlspec_ray

# Relative to the dlspec_ray package; everything the agent imports, transitively.
AGENT_MODULES = (
    "environments/agent.py",
    "environments/base.py",
    "environments/digest.py",
    "environments/lock.py",
    "environments/runner.py",
    "environments/shm.py",
    "owner.py",
    "environments/wire.py",
    "spec/types.py",
)
_PACKAGES = ("", "environments", "spec")
_MARKER = '"""The dlspec-ray agent only: see dlspec_ray/environments/bundle.py."""\n'


def _package_dir() -> Path:
    return Path(dlspec_ray.__file__).parent


@cache
def agent_digest() -> str:
    digest = hashlib.sha256()
    for rel in AGENT_MODULES:
        digest.update(rel.encode() + b"\0" + (_package_dir() / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def agent_bundle(root: Path) -> Path:
    """``root/agent-<digest>``, made once; put it on the environment's ``PYTHONPATH``."""
    dest = Path(root) / f"agent-{agent_digest()}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".agent-", dir=dest.parent))
    try:
        for package in _PACKAGES:
            folder = work / "dlspec_ray" / package
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "__init__.py").write_text(_MARKER)
        for rel in AGENT_MODULES:
            shutil.copyfile(_package_dir() / rel, work / "dlspec_ray" / rel)
        for folder, _, _ in os.walk(work):
            os.chmod(folder, 0o755)
        try:
            work.rename(dest)
        except OSError:
            if not dest.is_dir():  # not another process winning the same race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest

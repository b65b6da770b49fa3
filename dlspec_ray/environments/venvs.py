"""Interpreters for the ``process`` environment: a given one, or a venv built offline.

A venv is built from the software manifest's package list, once per list and
base interpreter (the folder is named by their hash), in two steps: wheels are
fetched into a wheelhouse with ``pip download`` (the only step that reaches a
package registry, and skipped when the wheelhouse already holds them), then
installed with ``pip install --no-index`` from the wheelhouse alone. An
air-gapped node is served by filling the wheelhouse beforehand
(``DLSPEC_RAY_WHEELHOUSE``).
"""

from __future__ import annotations

__all__ = ["WHEELHOUSE_VAR", "check_interpreter", "ensure_venv", "interpreter_for", "venv_key"]

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dlspec_ray.environments.errors import EnvironmentUnavailable
from dlspec_ray.environments.paths import env_cache_dir
from dlspec_ray.spec.types import SoftwareManifest

WHEELHOUSE_VAR = "DLSPEC_RAY_WHEELHOUSE"
# Bump when the way a venv is built changes, so old venvs are not reused.
_RECIPE = 1
_PROBE = "import sys, platform; print(sys.version.split()[0]); print(platform.machine())"


def _where(software: SoftwareManifest) -> str:
    return f"{software.path or software.ref}"


def check_interpreter(python: str, what: str) -> tuple[str, str]:
    """``(version, machine)`` of the interpreter at ``python``, or a clear error."""
    path = Path(python).expanduser()
    fix = "give the path of a python3 executable (for example /usr/bin/python3)"
    if not path.is_file():
        raise EnvironmentUnavailable(f"{what}: {python!r} does not exist; {fix}")
    if not (path.stat().st_mode & 0o111 and os.access(path, os.X_OK)):
        raise EnvironmentUnavailable(f"{what}: {python!r} is not executable; {fix}")
    try:
        done = subprocess.run(
            [str(path), "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentUnavailable(f"{what}: {python!r} cannot be run ({exc}); {fix}") from exc
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2 or not lines[0].startswith("3."):
        said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EnvironmentUnavailable(
            f"{what}: {python!r} is not a Python 3 interpreter (it said: {said[0]}); {fix}"
        )
    return lines[0], lines[1]


def interpreter_for(software: SoftwareManifest | None) -> Path:
    """The interpreter the ``process`` environment runs for ``software``.

    ``python`` alone: that interpreter, as it is. ``packages``: a venv on top of
    ``python`` (default: the base interpreter of the one running dlspec-ray).
    Neither: the interpreter running dlspec-ray.
    """
    if software is None:
        return Path(sys.executable)
    if software.python:
        check_interpreter(software.python, f"{_where(software)}: python")
    if not software.packages:
        return Path(software.python).expanduser() if software.python else Path(sys.executable)
    base = software.python or getattr(sys, "_base_executable", sys.executable)
    return ensure_venv(software.packages, base, what=f"{_where(software)}: packages")


def venv_key(packages: Sequence[str], base: str, version: str) -> str:
    recipe = {"packages": sorted(packages), "base": base, "version": version, "recipe": _RECIPE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_venv(packages: Sequence[str], base: str, *, what: str = "packages") -> Path:
    """The ``python`` of a venv holding ``packages``, built on first use."""
    version, _ = check_interpreter(base, f"{what}: base interpreter")
    root = env_cache_dir() / "venvs"
    key = venv_key(packages, str(Path(base).resolve()), version)
    venv = root / key
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another actor on this node may be building it
        if (venv / ".complete").exists():
            return python
        print(f"dlspec-ray: building a venv for {', '.join(packages)} (once)", file=sys.stderr)
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            _build(work, packages, base, version, what)
            shutil.rmtree(venv, ignore_errors=True)
            work.rename(venv)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return python


def _wheelhouses() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(WHEELHOUSE_VAR, "").split(os.pathsep) if p]
    return [*extra, env_cache_dir() / "wheels"]


def _install(work: Path, packages: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Offline: only the wheelhouses, no index, and no pip configuration of this machine."""
    links = [arg for w in _wheelhouses() if w.is_dir() for arg in ("--find-links", str(w))]
    cmd = [sys.executable, "-m", "pip", "--isolated", "--python", str(work / "bin" / "python")]
    cmd += ["install", "--no-index", "--only-binary=:all:", "--no-warn-script-location"]
    cmd += ["--disable-pip-version-check", "-q", *links, *packages]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _build(work: Path, packages: Sequence[str], base: str, version: str, what: str) -> None:
    made = subprocess.run(
        [base, "-m", "venv", "--without-pip", str(work)], capture_output=True, text=True
    )
    if made.returncode != 0:
        raise EnvironmentUnavailable(
            f"{what}: cannot create a venv with {base}: {made.stderr.strip()}; give a base "
            "interpreter whose venv module works (python: in the software manifest)"
        )
    if _install(work, packages).returncode == 0:
        (work / ".complete").write_text(json.dumps({"packages": list(packages)}))
        return
    wheels = env_cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    major_minor = ".".join(version.split(".")[:2])
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version", major_minor, "--dest", str(wheels),
         *packages],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    installed = _install(work, packages) if fetched.returncode == 0 else fetched
    if installed.returncode != 0:
        said = _pip_error(installed.stderr or installed.stdout)
        raise EnvironmentUnavailable(
            f"{what}: {list(packages)} cannot be installed offline for Python {major_minor}: "
            f"{said} Give packages that exist as wheels for this platform (pin versions that "
            f"exist), or put their wheels in a folder named by {WHEELHOUSE_VAR}."
        )
    (work / ".complete").write_text(json.dumps({"packages": list(packages)}))


def _pip_error(output: str) -> str:
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return " ".join((errors or lines)[-2:]) or "pip gave no reason."

"""Stage code in a separate Python interpreter: another framework version, no container.

The interpreter is a venv built from the software manifest's packages, or the
one its ``python`` names. It sees only the agent's few modules of dlspec-ray
(see ``bundle``), its own site-packages, and the manifest's ``env``.

With ``sandbox: bubblewrap`` the interpreter runs under ``bwrap``: its own network
namespace (nothing outside it can be reached), the host's filesystem read-only, a
private ``/tmp``, its own process tree, and only the environment's folder (the socket,
the arenas, the log) writable. It ends with the host actor (``--die-with-parent``).
"""

from __future__ import annotations

__all__ = ["ProcessEnvironment"]

import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dlspec_ray.environments.bundle import agent_bundle
from dlspec_ray.environments.errors import EnvironmentUnavailable
from dlspec_ray.environments.paths import env_cache_dir
from dlspec_ray.environments.remote import RemoteEnvironment
from dlspec_ray.environments.sweeper import sweep_once
from dlspec_ray.environments.venvs import interpreter_for
from dlspec_ray.spec.types import SoftwareManifest

# Variables of the host's interpreter that would leak its packages into the environment's.
_HOST_ONLY = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH")


def memory_limit(nbytes: int | None) -> Callable[[], None] | None:
    """What the interpreter runs before the agent: the hardware manifest's ``memory`` as
    its data limit (RLIMIT_DATA: heap and private mappings, what allocations use), so a
    stage that asks for more gets a MemoryError instead of taking the node's memory."""
    if not nbytes:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (nbytes, nbytes))

    return apply


def sandboxed(argv: list[str], folder: Path, readable: list[Path], bwrap: str) -> list[str]:
    """``argv`` under bubblewrap: the host read-only with a private ``/tmp``, the
    ``readable`` folders bound back read-only over it, ``folder`` writable, nothing shared."""
    binds = [arg for path in readable for arg in ("--ro-bind", str(path), str(path))]
    return [
        bwrap,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        *binds,
        "--bind", str(folder), str(folder),
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--chdir", str(folder),
        "--",
        *argv,
    ]  # fmt: skip


def _bwrap(software: SoftwareManifest) -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise EnvironmentUnavailable(
            f"{software.path or software.ref}: sandbox: bubblewrap needs the bwrap command on "
            "every node that hosts an actor; install it (apt-get install bubblewrap), or drop "
            "sandbox"
        )
    return found


class ProcessEnvironment(RemoteEnvironment):
    kind = "process"

    def __init__(self, software: SoftwareManifest | None = None, **kwargs: Any):
        super().__init__(software, **kwargs)
        self._python: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @classmethod
    def prepare(cls, software: SoftwareManifest | None) -> str:
        """Find the interpreter or build the venv now, before any actor waits for it."""
        sweep_once(containers=False)
        ready = f"interpreter {interpreter_for(software)}"
        if software is not None and software.sandbox:
            ready += f", sandboxed with {_bwrap(software)}"
        return ready

    def _launch(self, socket_path: Path, ctx: Mapping[str, Any]) -> None:
        self._python = interpreter_for(self.software)
        bundle = agent_bundle(env_cache_dir())
        env = {k: v for k, v in os.environ.items() if k not in _HOST_ONLY}
        env.update(self.software.env if self.software else {})
        env["PYTHONPATH"] = str(bundle)
        env["PYTHONNOUSERSITE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        self._log = socket_path.parent / "agent.log"
        argv = [str(self._python), "-m", "dlspec_ray.environments.agent",
                "--socket", str(socket_path)]  # fmt: skip
        if self.software is not None and self.software.sandbox:
            # /tmp is private: bind back what the stages read there (caches, data, artifacts).
            venv = Path(self._python).parent.parent
            readable = [bundle, venv, *self.placement.shared_folders(ctx)]
            argv = sandboxed(argv, socket_path.parent, readable, _bwrap(self.software))
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                argv,
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(socket_path.parent),
                preexec_fn=memory_limit(self.placement.memory),
            )  # fmt: skip

    def _exit_code(self, wait_s: float) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=wait_s) if wait_s else self._proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def _log_tail(self, lines: int) -> str:
        if self._log is None or not self._log.exists():
            return ""
        text = self._log.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _where(self) -> str:
        return f"interpreter {self._python}"

    def _identity(self) -> dict[str, Any]:
        return {"interpreter": self._hello.get("executable", str(self._python))}

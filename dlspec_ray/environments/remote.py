"""The host actor's side of an environment whose stage code runs elsewhere.

``process`` and ``docker`` differ only in how the agent is launched, watched and
stopped; the rest (a private folder in shared memory, the socket the agent
connects back to, the requests, re-raising a stage's error, noticing that the
agent died and saying why) is here, once.
"""

from __future__ import annotations

__all__ = ["RemoteEnvironment", "reraise"]

import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlspec_ray.environments.base import ChainCall, StageCall
from dlspec_ray.environments.errors import (
    EnvironmentDied,
    EnvironmentUnavailable,
    RemoteStageError,
)
from dlspec_ray.environments.placement import Placement
from dlspec_ray.environments.shm import Arena, make_env_dir
from dlspec_ray.environments.sweeper import sweep_once
from dlspec_ray.environments.wire import PROTOCOL, Channel
from dlspec_ray.spec.types import SoftwareManifest, StageSource

# How long an agent may take to connect back: a cold container start plus imports.
START_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 20


class RemoteEnvironment:
    """Subclasses launch the agent (``_launch``) and report on it (``_exit_code``,
    ``_log_tail``, ``_stop``, ``_where``)."""

    kind = "remote"
    restartable = True

    def __init__(
        self, software: SoftwareManifest | None = None, *, placement: Placement | None = None
    ):
        self.software = software
        self.placement = placement or Placement()
        self.folder: Path | None = None
        self._channel: Channel | None = None
        self._hello: dict[str, Any] = {}
        self._described: dict[str, Any] | None = None

    # -- what subclasses provide -------------------------------------------------------

    def _launch(self, socket_path: Path, ctx: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _exit_code(self, wait_s: float) -> int | None:
        """The agent's exit status once it has exited (waiting up to ``wait_s``), else None."""
        raise NotImplementedError

    def _log_tail(self, lines: int) -> str:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        """What runs the agent, for messages: an interpreter path, an image."""
        raise NotImplementedError

    def _identity(self) -> dict[str, Any]:
        """Kind-specific fields of ``describe()``."""
        return {}

    # -- the Environment interface ----------------------------------------------------

    def start(self, stages: Mapping[str, StageSource], ctx: Mapping[str, Any]) -> None:
        sweep_once(containers=False)
        self.folder = make_env_dir()
        socket_path = self.folder / "agent.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(socket_path))
            listener.listen(1)
            outgoing, incoming = Arena(self.folder / "h2a"), Arena(self.folder / "a2h")
            self._launch(socket_path, ctx)
            conn = self._accept(listener)
        except BaseException:
            listener.close()
            self.close()
            raise
        listener.close()
        self._channel = Channel(conn, outgoing, incoming, copy_received=True)
        try:
            self._hello = self._channel.recv()
            if self._hello.get("protocol") != PROTOCOL:
                raise EnvironmentUnavailable(
                    f"the agent in {self._where()} speaks protocol {self._hello.get('protocol')},"
                    f" this dlspec-ray speaks {PROTOCOL}; rebuild the environment"
                )
            self._request({"op": "start", "stages": dict(stages), "ctx": dict(ctx)}, "start")
        except BaseException:
            self.close()
            raise

    def call(self, stage: str, data: Any) -> StageCall:
        reply = self._request({"op": "call", "stage": stage, "data": data}, stage)
        return StageCall(
            reply["value"], reply["seconds"], reply.get("output", ""), reply.get("digest")
        )

    def call_chain(self, stages: Sequence[str], data: Any) -> ChainCall:
        """The stages in one round trip: a stage's tensors stay in the environment for the
        next, and only the last value crosses back (``process`` and ``docker`` would
        otherwise send each batch out and in again between stages)."""
        if self._channel is None:
            raise RuntimeError(f"the {self.kind} environment is not started")
        running = stages[0] if stages else "chain"
        try:
            self._channel.send({"op": "chain", "stages": list(stages), "data": data})
            reply = self._channel.recv()
            while "starting" in reply:  # the agent says which stage it begins: if it dies,
                running = reply["starting"]  # the batch's error names that one
                reply = self._channel.recv()
        except (EOFError, OSError) as exc:
            died = self._died(running)
            died.stage = running
            raise died from exc
        if not reply["ok"]:
            reraise(reply["error"])
        calls = [
            StageCall(None, c["seconds"], c["output"], c.get("digest")) for c in reply["calls"]
        ]
        if reply["failed"] is None:
            if calls:
                last = calls[-1]
                calls[-1] = StageCall(reply["value"], last.seconds, last.output, last.digest)
            return ChainCall(tuple(calls))
        try:
            reraise(reply["error"])
        except RemoteStageError as exc:
            return ChainCall(tuple(calls), reply["failed"], exc)
        raise AssertionError("reraise returned")  # pragma: no cover

    def describe(self) -> dict[str, Any]:
        if self._described is None:
            software = self.software
            wanted = list(software.packages) if software else []
            if software and software.framework.name:
                wanted.insert(0, software.framework.name)
            inside = self._request({"op": "describe", "distributions": wanted}, "describe")
            packages = {k: v for k, v in inside["packages"].items() if v is not None}
            info: dict[str, Any] = {"kind": self.kind, **self._identity()}
            info["python"] = inside["python"]
            if software is not None:
                name = software.framework.name
                version = packages.get(name)
                if version is None and software.packages:
                    version = packages.get(next(iter(packages), ""))
                info["framework"] = {"name": name, "version": version}
            info["packages"] = packages
            info["lock"] = inside.get("lock")  # the whole list; the run writes it apart
            self._described = info
        return dict(self._described)

    def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            try:
                channel.send({"op": "close"})
                channel.recv()
            except (OSError, EOFError):
                pass
            channel.close()
        try:
            self._stop()
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder = None

    # -- internals --------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> socket.socket:
        listener.settimeout(0.2)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if self._exit_code(0) is not None:
                    raise self._died("starting") from None
                if time.monotonic() > deadline:
                    raise EnvironmentDied(
                        f"the {self.kind} environment ({self._where()}) did not connect back "
                        f"within {START_TIMEOUT_S:.0f}s. The last lines of its log:\n"
                        f"{self._log_tail(LOG_TAIL_LINES)}"
                    ) from None
                continue
            conn.settimeout(None)
            return conn

    def _request(self, message: dict[str, Any], what: str) -> dict[str, Any]:
        if self._channel is None:
            raise RuntimeError(f"the {self.kind} environment is not started")
        try:
            self._channel.send(message)
            reply = self._channel.recv()
        except (EOFError, OSError) as exc:
            raise self._died(what) from exc
        if not reply["ok"]:
            reraise(reply["error"])
        return reply

    def _died(self, what: str) -> EnvironmentDied:
        code = self._exit_code(5.0)
        tail = self._log_tail(LOG_TAIL_LINES)
        if code is None:
            status = "stopped answering"
        elif code < 0:
            status = f"was killed by signal {-code}"
        else:
            status = f"exited with code {code}"
        during = "while starting" if what == "starting" else f"during {what!r}"
        return EnvironmentDied(
            f"the {self.kind} environment ({self._where()}) {status} {during}. "
            f"The last lines of its log:\n{tail or '(empty)'}",
            exit_code=code,
            log_tail=tail,
        )


_REMOTE_TYPES: dict[str, type[RemoteStageError]] = {}


def reraise(error: Mapping[str, Any]) -> None:
    """Raise a stage's error again here, with its type name, message and YAML line.

    The YAML line is kept by raising from code compiled under the manifest's
    file name at that line, so the traceback (and every message made from it)
    points where it would have ``inline``.
    """
    name = str(error["type"])
    cls = _REMOTE_TYPES.get(name)
    if cls is None:
        cls = _REMOTE_TYPES[name] = type(name, (RemoteStageError,), {"__module__": __name__})
    exc = cls(error["message"])
    exc.remote_traceback = error.get("traceback", "")  # type: ignore[attr-defined]
    if error.get("file") and error.get("line"):
        code = compile("\n" * (int(error["line"]) - 1) + "raise exc", error["file"], "exec")
        exec(code, {"exc": exc})
    raise exc

"""The agent: the process inside an environment that runs the manifest's stage code.

The ``process`` and ``docker`` environments both start ``python -m
dlspec_ray.environments.agent --socket PATH``; it connects back to the host
actor, says hello, and serves requests until the host closes the connection.
It hosts the same ``StageRunner`` as the ``inline`` environment, so a stage
behaves the same wherever it runs. It needs only the standard library (and
whatever the stage code imports): the environment may hold nothing else.

Requests: ``start`` (stages, ctx), ``call`` (stage, data), ``chain`` (stages, data:
the stages one after another, the values between them staying here), ``describe``
(distributions), ``close``. Replies: ``{"ok": True, ...}`` or ``{"ok": False,
"error": {...}}`` with the exception's type, message and YAML location.
"""

from __future__ import annotations

__all__ = ["chain_reply", "check_readable", "error_info", "main", "versions"]

import argparse
import os
import re
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from dlspec_ray.environments.lock import installed_lock
from dlspec_ray.environments.runner import StageRunner
from dlspec_ray.environments.shm import Arena
from dlspec_ray.environments.wire import PROTOCOL, Channel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlspec_ray.environments.agent")
    parser.add_argument("--socket", required=True, help="the host actor's Unix socket")
    args = parser.parse_args(argv)
    folder = Path(args.socket).parent
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    channel = Channel(sock, Arena(folder / "a2h"), Arena(folder / "h2a"), copy_received=False)
    channel.send(
        {
            "op": "hello",
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "executable": sys.executable,
        }
    )
    runner: StageRunner | None = None
    while True:
        try:
            request = channel.recv()
        except (EOFError, ConnectionError):
            return 0  # the host actor is gone: so is our reason to run
        op = request.get("op")
        try:
            if op == "start":
                check_readable(request["ctx"].get("artifacts") or {})
                runner = StageRunner(request["stages"], request["ctx"], tee=sys.__stderr__)
                reply: dict[str, Any] = {}
            elif op == "call":
                if runner is None:
                    raise RuntimeError("the environment was called before it was started")
                call = runner.call(request["stage"], request["data"])
                # The loaded model stays here, as ctx["model"]; it need not be picklable.
                value = None if request["stage"] == "load" else call.value
                reply = {
                    "value": value,
                    "seconds": call.seconds,
                    "output": call.output,
                    "digest": call.digest,
                }
            elif op == "chain":
                if runner is None:
                    raise RuntimeError("the environment was called before it was started")
                chain = runner.call_chain(
                    request["stages"],
                    request["data"],
                    starting=lambda stage: channel.send({"starting": stage}),
                )
                reply = chain_reply(chain)
            elif op == "describe":
                reply = versions(request.get("distributions", ()))
            elif op == "close":
                channel.send({"ok": True})
                return 0
            else:
                raise ValueError(f"unknown request {op!r}")
            channel.send({"ok": True, **reply})
        except Exception as exc:
            channel.send({"ok": False, "error": error_info(exc)})


def check_readable(artifacts: dict[str, str]) -> None:
    """Say which folder keeps this user from an artifact, before a framework says "error 13".

    In a container the user is unprivileged, and a folder on the way (an image's 0700
    ``/root``, say) can stop it where the host's own user passed.
    """
    for name, path in artifacts.items():
        if os.access(path, os.R_OK):
            continue
        blocker = Path(path)
        for folder in reversed(Path(path).parents):
            if not os.access(folder, os.X_OK):
                blocker = folder
                break
        info = os.stat(blocker) if blocker.exists() else None
        how = f"mode {info.st_mode & 0o7777:04o}, owner {info.st_uid}:{info.st_gid}" if info else ""
        raise PermissionError(
            f"artifact {name!r} ({path}) cannot be read by uid {os.getuid()} in this "
            f"environment: {blocker} stops it ({how or 'missing'}). Make it readable to that "
            "user; in a container, DLSPEC_RAY_CONTAINER_USER chooses the user."
        )


def chain_reply(chain: Any) -> dict[str, Any]:
    """A chain's timings and prints, and its last value or the error that stopped it."""
    reply: dict[str, Any] = {
        "calls": [
            {"seconds": c.seconds, "output": c.output, "digest": c.digest} for c in chain.calls
        ],
        "failed": chain.failed,
    }
    if chain.failed is None:
        reply["value"] = chain.calls[-1].value if chain.calls else None
    else:
        reply["error"] = error_info(chain.error)
    return reply


def error_info(exc: BaseException) -> dict[str, Any]:
    """What the host needs to re-raise ``exc`` with the same type name, message and YAML line."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_manifest = [f for f in frames if f.filename.endswith((".yaml", ".yml"))]
    frame = in_manifest[-1] if in_manifest else None
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "file": frame.filename if frame else None,
        "line": frame.lineno if frame else None,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def versions(distributions: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The installed version of each distribution, read inside the environment."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for requirement in distributions:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
        if not match:
            continue
        name = match.group(0)
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "packages": found,
        "lock": installed_lock(),
    }


if __name__ == "__main__":
    sys.exit(main())

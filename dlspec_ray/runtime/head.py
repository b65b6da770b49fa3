"""A persistent local Ray head (``dlspec-ray up``) that later runs on this machine use.

Starting Ray is most of a short run: ``ray.init`` of an embedded instance takes seconds,
the evaluation a fraction of one. ``up`` starts a head once (``ray start --head``) and
writes down where it is; ``connect`` then joins it instead of embedding a new Ray, and
``down`` ends it. The head is set up like the embedded Ray, on purpose:

- its node IP is 127.0.0.1, so it listens on loopback only (``RAY_ENABLE_WINDOWS_OR_OSX_
  CLUSTER=0``, see ``cluster.py``);
- every port is pinned (``HeadPorts``, from one base, all outside Ray's worker range
  10002-19999), so it never takes a port another Ray on the machine chose at random;
- it has a temp dir of its own, which also names its processes: ``down`` ends exactly
  the processes of this user whose command line names it, never ``ray stop``;
- token auth stays on, with its token in that temp dir; clients are given the same mode
  and token when they join.

The record is ``<cache>/head.json``: a run that uses another cache (``DLSPEC_RAY_CACHE``,
as the tests do) does not see it.
"""

from __future__ import annotations

__all__ = [
    "HEAD_FILE",
    "HeadPorts",
    "LocalHead",
    "recorded_head",
    "running_head",
    "start_head",
    "stop_head",
    "warm_actors",
]

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dlspec_ray.artifacts import default_cache_dir
from dlspec_ray.errors import UsageError
from dlspec_ray.owner import end_processes_naming, processes_naming

HEAD_FILE = "head.json"
_LOOPBACK = "127.0.0.1"
# How long `ray start` may take on a loaded machine.
_START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class HeadPorts:
    """Every port the head listens on, from ``base`` up (the GCS is ``base``)."""

    base: int = 6391

    def __post_init__(self) -> None:
        top = self.base + len(self.named()) - 1
        if self.base < 1024 or top > 65535 or (self.base <= 19999 and top >= 10002):
            raise UsageError(
                f"--port {self.base}: expected a base port from 1024 whose {len(self.named())} "
                "ports stay outside Ray's worker range 10002-19999 and below 65536 "
                "(such as the default 6391, or 20000)"
            )

    def named(self) -> dict[str, int]:
        names = ("port", "node-manager-port", "object-manager-port", "ray-client-server-port",
                 "dashboard-agent-grpc-port", "dashboard-agent-listen-port",
                 "runtime-env-agent-port", "metrics-export-port")  # fmt: skip
        return {name: self.base + i for i, name in enumerate(names)}


@dataclass(frozen=True)
class LocalHead:
    address: str
    temp_dir: str
    token_path: str | None
    started_at: str
    ports: dict[str, int] = field(default_factory=dict)
    num_cpus: int | None = None

    def alive(self) -> bool:
        """Its processes run and its GCS port answers."""
        if not processes_naming(self.temp_dir):
            return False
        host, _, port = self.address.rpartition(":")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1.0):
            return True
        return False

    def auth_env(self) -> dict[str, str]:
        """What a client must set to join it: the head's auth mode and token."""
        if self.token_path is None:
            return {"RAY_AUTH_MODE": "disabled"}
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}

    def write(self) -> None:
        path = _head_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)


def _head_path() -> Path:
    return default_cache_dir() / HEAD_FILE


def recorded_head() -> LocalHead | None:
    """The head ``up`` wrote down, alive or not; None when there is no record."""
    try:
        data = json.loads(_head_path().read_text())
        return LocalHead(**data)
    except (OSError, ValueError, TypeError):
        return None


def running_head() -> LocalHead | None:
    """The recorded head when it is alive, else None."""
    head = recorded_head()
    return head if head is not None and head.alive() else None


def start_head(*, ports: HeadPorts | None = None, num_cpus: int | None = None) -> LocalHead:
    """``ray start --head`` on loopback with pinned ports, its own temp dir and token auth."""
    from dlspec_ray.hardware.labels import labels_text
    from dlspec_ray.runtime.advertise import advertised
    from dlspec_ray.runtime.cluster import write_auth_token

    if (head := running_head()) is not None:
        return head
    ports = ports or HeadPorts()
    busy = [f"{name} {port}" for name, port in ports.named().items() if _in_use(port)]
    if busy:
        raise UsageError(
            f"dlspec-ray up: these ports are taken on 127.0.0.1: {', '.join(busy)}. Another "
            "Ray (or program) uses them; choose other ports with --port BASE"
        )
    node = advertised()
    temp_dir = tempfile.mkdtemp(prefix="dlspec-ray-head-")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    token_path = None
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "disabled":
        token_path = write_auth_token(temp_dir)
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token_path)
    command = [
        _ray_executable(), "start", "--head", f"--node-ip-address={_LOOPBACK}",
        f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats",
        f"--resources={json.dumps(node.resources)}", f"--labels={labels_text(node.labels)}",
        *(f"--{name}={port}" for name, port in ports.named().items()),
        *([f"--num-cpus={num_cpus}"] if num_cpus else []),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=_START_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        end_processes_naming(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        tail = "" if done is None else (done.stderr or done.stdout).strip()[-2000:]
        raise UsageError(f"dlspec-ray up: `ray start --head` failed:\n{tail or 'it timed out'}")
    head = LocalHead(
        address=f"{_LOOPBACK}:{ports.base}",
        temp_dir=temp_dir,
        token_path=token_path,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ports=ports.named(),
        num_cpus=num_cpus,
    )
    head.write()
    deadline = time.monotonic() + 30.0
    while not head.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    return head


def stop_head() -> tuple[LocalHead | None, list[int]]:
    """End the recorded head's processes (by its temp dir) and remove its temp dir and record."""
    head = recorded_head()
    if head is None:
        return None, []
    ours = "dlspec-ray-head-" in Path(head.temp_dir).name  # made by start_head
    ended = end_processes_naming(head.temp_dir, wait_s=3.0) if ours else []
    if ours:
        shutil.rmtree(head.temp_dir, ignore_errors=True)
    _head_path().unlink(missing_ok=True)
    return head, ended


def warm_actors() -> list[dict[str, str]]:
    """The actors kept warm on the running head (``warm.py``): name and actor id each."""
    import ray

    from dlspec_ray.runtime.cluster import connect
    from dlspec_ray.runtime.warm import WARM_NAMESPACE

    connection = connect()
    try:
        found = []
        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry["namespace"] != WARM_NAMESPACE:
                continue
            with contextlib.suppress(ValueError):
                actor = ray.get_actor(entry["name"], namespace=WARM_NAMESPACE)
                found.append({"name": entry["name"], "actor_id": actor._actor_id.hex()})
        return sorted(found, key=lambda a: a["name"])
    finally:
        connection.close()


def _in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((_LOOPBACK, port), 0.2):
        return True
    return False


def _ray_executable() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")

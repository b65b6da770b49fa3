"""Real Ray clusters on this one machine, for tests and benchmarks, that never touch other Rays.

Ray allows one driver connection per process, and the machine is shared with
other Ray instances, so every cluster here:
- runs in child processes of its own session (``setsid``), with its own temp
  dir and pinned ports, and is stopped by PID: SIGTERM to the session leader,
  then SIGKILL to whatever is left in that session. Never ``ray stop``, which
  stops every Ray on the machine;
- is driven from other processes (``dlspec-ray run --address``, the job server
  over HTTP), so the caller's own Ray connection, if any, is left alone.

Every Ray here stays on loopback: its node IP is 127.0.0.1 (``--node-ip-address`` for
``ray start``, ``node_ip_address`` for each Cluster node), its dashboard listens on
127.0.0.1, and ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in ``ray_env`` (Ray's "this
machine only" switch) stops Ray from rewriting 127.0.0.1 to the machine's interface
address, in the cluster's processes and in its clients alike. With that node IP, Ray's
servers listen on 127.0.0.1 only (see the README's "Security: network").

Two kinds:
- ``start_head``: ``ray start --head --block`` with every port pinned from a
  base (GCS, client server, dashboard, agents, worker ports), optionally with an
  ``--autoscaling-config`` for Ray's fake multi-node provider;
- ``start_cluster``: a ``ray.cluster_utils.Cluster`` with several raylets that
  advertise different resources, built in a child process (this file's
  ``cluster`` command).

Usage as a script: ``python tools/ray_clusters.py cluster SPEC_JSON`` (what
``start_cluster`` runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The offsets of each port from a head's base port; worker ports take base+20..base+69.
PORTS = {
    "port": 0,
    "ray-client-server-port": 1,
    "dashboard-port": 2,
    "dashboard-agent-listen-port": 3,
    "dashboard-agent-grpc-port": 4,
    "runtime-env-agent-port": 5,
    "metrics-export-port": 6,
    "node-manager-port": 7,
    "object-manager-port": 8,
}
_WORKER_PORTS = (20, 69)


def short_temp_dir() -> Path:
    """A new temp dir with a short path: Ray's unix sockets live under it, and their paths
    may not exceed 107 bytes (a pytest tmp_path is often too long)."""
    root = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="rc-", dir=root))


LOOPBACK = "127.0.0.1"


def ray_env(temp_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every process of a test cluster and its clients.

    ``RAY_AUTH_MODE`` must be the same for a head and its clients: disabled here, for
    all of them (token auth would need one token shared by every process, and a file
    in ``~`` by default). ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps 127.0.0.1 as
    the node IP and in GCS addresses (Ray on Linux otherwise rewrites it to the
    interface address); it also makes ``ray start --address`` (joining a worker node)
    refuse, which nothing here uses. ``RAY_TMPDIR`` keeps Ray's default temp files
    (``ray_current_cluster``) out of the shared ``/tmp/ray``.
    """
    env = dict(os.environ)
    env.pop("RAY_AUTH_TOKEN_PATH", None)  # an embedded Ray's, inherited; not for these
    env.update(
        {
            "RAY_AUTH_MODE": "disabled",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_TMPDIR": str(temp_dir),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    (temp_dir / "ray").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class LocalHead:
    pid: int
    gcs_address: str
    dashboard_url: str
    temp_dir: Path
    log: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    owns_temp_dir: bool = False

    def stop(self, timeout_s: float = 30) -> None:
        stop_session(self.pid, timeout_s)
        if self.owns_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


@dataclass
class LocalCluster:
    pid: int
    address: str
    nodes: dict[str, str]
    temp_dir: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    process: subprocess.Popen | None = field(repr=False, default=None)
    owns_temp_dir: bool = False

    def remove_node(self, name: str) -> None:
        """End one worker node (its raylet and workers), as a spot preemption would."""
        self._ask({"op": "remove", "name": name})
        self.nodes.pop(name, None)

    def add_node(self, name: str, **args: Any) -> str:
        """Start one more node with ``add_node`` arguments, as an autoscaler would."""
        node_id = self._ask({"op": "add", "name": name, "args": args})["node_id"]
        self.nodes[name] = node_id
        return node_id

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline() or '{"error": "the cluster ended"}')
        if "error" in reply:
            raise RuntimeError(f"cluster {request['op']} failed: {reply['error']}")
        return reply

    def stop(self, timeout_s: float = 30) -> None:
        """Ask the child to shut its Cluster down (close its stdin); then stop its session."""
        if self.process is not None and self.process.stdin:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_session(self.pid, timeout_s)
        if self.owns_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(
    *,
    port_base: int,
    num_cpus: int,
    resources: dict[str, float] | None = None,
    autoscaling_config: Path | None = None,
    env: dict[str, str] | None = None,
    temp_dir: Path | None = None,
    timeout_s: float = 120,
) -> LocalHead:
    """A head node (with its dashboard, for job submission) whose ports all derive from
    ``port_base``; returns once the dashboard answers. Without ``temp_dir``, a new short
    one is made, and removed by ``stop()``."""
    owned = temp_dir is None
    temp_dir = short_temp_dir() if temp_dir is None else temp_dir
    temp_dir.mkdir(parents=True, exist_ok=True)
    child_env = ray_env(temp_dir, env)
    if autoscaling_config is not None:
        child_env.update({"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"})
    ray = str(Path(sys.executable).parent / "ray")
    args = [
        ray, "start", "--head", "--block", f"--temp-dir={temp_dir}",
        f"--node-ip-address={LOOPBACK}",
    ]  # fmt: skip
    args += [f"--{name}={port_base + offset}" for name, offset in PORTS.items()]
    args += [
        f"--min-worker-port={port_base + _WORKER_PORTS[0]}",
        f"--max-worker-port={port_base + _WORKER_PORTS[1]}",
        f"--num-cpus={num_cpus}",
        f"--resources={json.dumps(resources or {})}",
        "--include-dashboard=true",
        f"--dashboard-host={LOOPBACK}",
        "--disable-usage-stats",
    ]
    if autoscaling_config is not None:
        args.append(f"--autoscaling-config={autoscaling_config}")
    log = temp_dir / "head.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,
        )
    dashboard = f"http://{LOOPBACK}:{port_base + PORTS['dashboard-port']}"
    head = LocalHead(
        pid=process.pid,
        gcs_address=f"{LOOPBACK}:{port_base}",
        dashboard_url=dashboard,
        temp_dir=temp_dir,
        log=log,
        env=child_env,
        owns_temp_dir=owned,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_session(process.pid)
            message = f"ray start exited with {process.returncode}:\n{_tail(log)}"
            if owned:
                shutil.rmtree(temp_dir, ignore_errors=True)
            raise RuntimeError(message)
        if b"Ray runtime started" in log.read_bytes() and _answers(f"{dashboard}/api/version"):
            return head
        time.sleep(0.5)
    head.stop()
    raise RuntimeError(f"the head did not start within {timeout_s:.0f}s:\n{_tail(log)}")


def start_cluster(
    nodes: list[dict[str, Any]],
    *,
    gcs_port: int,
    env: dict[str, str] | None = None,
    temp_dir: Path | None = None,
    timeout_s: float = 120,
) -> LocalCluster:
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` (the first is the head), each a dict
    of ``add_node`` arguments plus a ``name``; returns once every node is up. Without
    ``temp_dir``, a new short one is made, and removed by ``stop()``."""
    owned = temp_dir is None
    temp_dir = short_temp_dir() if temp_dir is None else temp_dir
    temp_dir.mkdir(parents=True, exist_ok=True)
    child_env = ray_env(temp_dir, env)
    spec = {"nodes": nodes, "temp_dir": str(temp_dir), "gcs_port": gcs_port}
    log = temp_dir / "cluster.log"
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, __file__, "cluster", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=child_env,
            start_new_session=True,
            text=True,
        )
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        line = process.stdout.readline()
        if line.startswith("{"):
            info = json.loads(line)
            return LocalCluster(
                pid=process.pid,
                address=info["address"],
                nodes=info["nodes"],
                temp_dir=temp_dir,
                env=child_env,
                process=process,
                owns_temp_dir=owned,
            )
    stop_session(process.pid)
    message = f"the cluster did not start:\n{_tail(log)}"
    if owned:
        shutil.rmtree(temp_dir, ignore_errors=True)
    raise RuntimeError(message)


def stop_session(leader: int, timeout_s: float = 30) -> None:
    """Stop the session we started: SIGTERM its leader and let it stop its children; then
    SIGTERM what is left of the session (processes the leader's children started, such as the
    fake provider's raylets), and SIGKILL whatever still runs after that."""
    _signal([leader], signal.SIGTERM)
    _wait_gone(lambda: [leader] if leader in session_pids(leader) else [], leader, timeout_s / 2)
    _signal(session_pids(leader), signal.SIGTERM)
    _wait_gone(lambda: session_pids(leader), leader, timeout_s / 2)
    _signal(session_pids(leader), signal.SIGKILL)
    _wait_gone(lambda: session_pids(leader), leader, 5)


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(alive: Any, leader: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while alive() and time.monotonic() < deadline:
        _reap(leader)
        time.sleep(0.2)
    _reap(leader)


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid``: the leader we started and everything it started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields: state, ppid, pgrp, session, ...; a zombie is already gone.
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _cluster_main(spec: dict[str, Any]) -> int:
    """The child: build the Cluster, print its address and node ids, wait for stdin to close."""
    from ray.cluster_utils import Cluster

    # Every node on loopback (Cluster passes node_ip_address through as given).
    nodes = [{"node_ip_address": LOOPBACK, **n} for n in spec["nodes"]]
    names = [n.pop("name") for n in nodes]
    head_args = {
        **nodes[0],
        "temp_dir": spec["temp_dir"],
        "gcs_server_port": spec["gcs_port"],
        "include_dashboard": False,
        "dashboard_host": LOOPBACK,
    }
    cluster = Cluster(initialize_head=True, head_node_args=head_args)

    def stop(*_: object) -> None:
        cluster.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    ids = {names[0]: cluster.head_node.node_id}
    handles = {}
    for name, args in zip(names[1:], nodes[1:], strict=True):
        handles[name] = cluster.add_node(**args)
        ids[name] = handles[name].node_id
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address, "nodes": ids}), flush=True)
    # Requests, one JSON line each, until stdin closes: remove a node, or add one.
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "remove":
                cluster.remove_node(handles.pop(request["name"]))
                reply: dict[str, Any] = {"removed": request["name"]}
            else:
                args = {"node_ip_address": LOOPBACK, **request["args"]}
                handles[request["name"]] = cluster.add_node(**args)
                cluster.wait_for_nodes()
                reply = {"node_id": handles[request["name"]].node_id}
        except Exception as exc:  # the caller raises it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "cluster":
        sys.exit(_cluster_main(json.loads(sys.argv[2])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)

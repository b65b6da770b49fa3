"""Ray's traffic stays on loopback, and ``make test`` runs the suite in a private network
namespace (scripts/in-private-net.sh, which exports DLSPEC_RAY_PRIVATE_NET=1).

- The embedded Ray (the shared ``ray_session``) has node IP 127.0.0.1, and every process
  of it listens on loopback only; its token auth is on, with the token in its temp dir.
- A Cluster of tools/ray_clusters.py (GCS port 26900, own temp dir, stopped by PID) has
  127.0.0.1 nodes that listen on loopback only.
- Inside the namespace: only ``lo`` exists, and nothing off this machine can be reached.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
PRIVATE_NET = os.environ.get("DLSPEC_RAY_PRIVATE_NET") == "1"
LOOPBACK_HOSTS = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


# --- what listens where, read from /proc (as ss does) ---------------------------------------


def _listening_sockets() -> dict[str, str]:
    """inode -> "host:port" of every listening TCP socket in this network namespace."""
    found: dict[str, str] = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host byte order (little-endian here).
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            family = socket.AF_INET if width == 4 else socket.AF_INET6
            host = socket.inet_ntop(family, words)
            found[inode] = f"{host}:{int(port, 16)}"
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _listeners(pids: list[int]) -> dict[str, list[str]]:
    """``host:port`` -> the command lines of those of ``pids`` that listen there."""
    sockets = _listening_sockets()
    where: dict[str, list[str]] = {}
    for pid in pids:
        for inode in _socket_inodes(pid) & sockets.keys():
            where.setdefault(sockets[inode], []).append(_cmdline(pid)[:100])
    return where


def _off_loopback(where: dict[str, list[str]]) -> dict[str, list[str]]:
    return {a: who for a, who in where.items() if a.rsplit(":", 1)[0] not in LOOPBACK_HOSTS}


# --- the embedded Ray -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(ray_session):
    if not ray_session.embedded:
        pytest.skip("the shared test Ray joined an existing cluster (RAY_ADDRESS is set)")
    return ray_session


def test_the_embedded_ray_has_node_ip_127_0_0_1(embedded):
    import ray

    @ray.remote
    def node_ip() -> str:
        return ray.util.get_node_ip_address()

    assert [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]] == [LOOPBACK]
    assert ray.get_runtime_context().gcs_address.startswith(f"{LOOPBACK}:")
    assert ray.get(node_ip.remote()) == LOOPBACK


def test_every_process_of_the_embedded_ray_listens_on_loopback_only(embedded):
    assert embedded.temp_dir
    # Its processes are this one's descendants: gcs_server, raylet, the dashboard's and
    # autoscaler's heads, the agents and the workers (some rename themselves ray::...).
    ray_pids = [
        pid
        for pid in _descendants(os.getpid())
        if embedded.temp_dir in _cmdline(pid) or _cmdline(pid).startswith("ray::")
    ]
    where = _listeners(ray_pids)
    assert any(who for who in where.values() if any("gcs_server" in w for w in who)), where
    assert _off_loopback(where) == {}


def test_the_embedded_ray_keeps_token_auth_on_with_the_token_in_its_temp_dir(embedded):
    import ray

    if os.environ.get("RAY_AUTH_MODE") == "disabled":
        pytest.skip("RAY_AUTH_MODE=disabled was set for this test run")

    @ray.remote
    def auth() -> tuple[str | None, str | None]:
        return os.environ.get("RAY_AUTH_MODE"), os.environ.get("RAY_AUTH_TOKEN_PATH")

    path = Path(os.environ["RAY_AUTH_TOKEN_PATH"])
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert path.parent == Path(embedded.temp_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text()) == 64
    assert ray.get(auth.remote()) == ("token", str(path))  # the workers have it too


CONNECT_AND_CLOSE = """
import json, os, sys
from pathlib import Path
from dlspec_ray.runtime import connect

before = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
connection = connect(num_cpus=1)
import ray
during = {
    "nodes": [n["NodeManagerAddress"] for n in ray.nodes()],
    "mode": os.environ.get("RAY_AUTH_MODE"),
    "token_in_temp_dir": Path(os.environ["RAY_AUTH_TOKEN_PATH"]).parent
    == Path(connection.temp_dir),
}
connection.close()
after = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
print(json.dumps({"during": during, "restored": after == before,
                  "temp_dir_left": os.path.exists(connection.temp_dir)}))
"""


def test_a_fresh_embedded_ray_writes_no_token_into_home_and_puts_the_environment_back(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update({"HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"})
    done = subprocess.run(
        [sys.executable, "-c", CONNECT_AND_CLOSE],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "during": {"nodes": [LOOPBACK], "mode": "token", "token_in_temp_dir": True},
        "restored": True,
        "temp_dir_left": False,
    }
    assert not (tmp_path / ".ray").exists()  # Ray's default token file, ~/.ray/auth_token


# --- a test cluster of tools/ray_clusters.py --------------------------------------------------

NODE_ADDRESSES = """
import json, sys
import ray
ray.init(address=sys.argv[1], logging_level="ERROR")
print(json.dumps(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])))
"""


@pytest.fixture(scope="module")
def cluster(ray_clusters):
    nodes = [
        {"name": "head", "num_cpus": 1, "resources": {"cpu_arch:x86_64": 1}},
        {"name": "other", "num_cpus": 1, "resources": {"cpu_arch:aarch64": 1}},
    ]
    started = ray_clusters.start_cluster(nodes, gcs_port=26900)
    yield started
    started.stop()


def test_a_test_cluster_has_127_0_0_1_nodes_that_listen_on_loopback_only(cluster, ray_clusters):
    assert cluster.address == f"{LOOPBACK}:26900"
    done = subprocess.run(
        [sys.executable, "-c", NODE_ADDRESSES, cluster.address],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [LOOPBACK, LOOPBACK]
    where = _listeners(ray_clusters.session_pids(cluster.pid))
    assert f"{LOOPBACK}:26900" in where or f"::ffff:{LOOPBACK}:26900" in where, where
    assert _off_loopback(where) == {}


# --- the private network namespace ------------------------------------------------------------

needs_private_net = pytest.mark.skipif(
    not PRIVATE_NET,
    reason="not in the private network namespace: DLSPEC_RAY_PRIVATE_NET=1 is not set "
    "(`make test` runs the suite under scripts/in-private-net.sh)",
)


@needs_private_net
def test_the_namespace_holds_only_loopback():
    assert sorted(os.listdir("/sys/class/net")) == ["lo"]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with probe, pytest.raises(OSError) as unreachable:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no route leaves this namespace
    assert unreachable.value.errno == errno.ENETUNREACH


@needs_private_net
def test_every_node_of_the_shared_ray_is_on_loopback(ray_session):
    import ray

    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {LOOPBACK}

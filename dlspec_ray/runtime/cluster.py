"""Connecting to Ray: an existing cluster, or the embedded local instance.

With no address, one machine needs no setup: a local Ray starts in this process,
in a temp dir of its own (so it never collides with another instance on a shared
machine), advertising this node's architecture as custom resources and node labels
(``advertise.py``).

The embedded Ray stays on loopback and keeps token auth on:
- its node IP is 127.0.0.1, so every Ray process of it listens on 127.0.0.1 only
  (measured with ``ss -ltnp``; see the README's "Security: network"). Ray on Linux
  rewrites a loopback node IP to the machine's interface address
  (``services.resolve_ip_for_localhost``), unless multi-machine clustering is off
  (``ray_constants.ENABLE_RAY_CLUSTER``, the ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``
  switch that macOS and Windows default to): it is turned off while ``ray.init``
  runs, for this process and for the Ray processes it starts;
- ``RAY_AUTH_MODE=token`` (unless ``RAY_AUTH_MODE=disabled`` is set), with a fresh
  random token in the instance's own temp dir (``RAY_AUTH_TOKEN_PATH``, mode 0600),
  never in ``~/.ray``. The Ray processes it starts inherit both variables; they are
  put back when the connection closes.
"""

from __future__ import annotations

__all__ = ["LOOPBACK", "RayConnection", "connect", "write_auth_token"]

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.runtime.advertise import advertised

LOOPBACK = "127.0.0.1"
# Ray's switch for "this machine only": its local node IP is then the loopback address.
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")


@dataclass
class RayConnection:
    address: str | None
    embedded: bool
    temp_dir: str | None = None
    owned: bool = False
    # Joined the persistent local head of `dlspec-ray up` (it outlives this connection).
    head: bool = False
    # The environment variables connect() changed, with their values before (None: unset).
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        """Shut Ray down only if this connection started it."""
        if not self.owned:
            return
        import ray

        ray.shutdown()
        if self._saved_env:
            _restore_env(self._saved_env)
            _refresh_auth_state()
            self._saved_env = {}
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.owned = False


def connect(address: str | None = None, *, num_cpus: int | None = None) -> RayConnection:
    """Use the Ray this process is already connected to, else join ``address``, else the
    local head ``dlspec-ray up`` started (``head.py``), else embed."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return RayConnection(address=address, embedded=address is None, owned=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None and num_cpus is None:
        from dlspec_ray.runtime.head import running_head

        head = running_head()
        if head is not None:
            return _join_head(head)
    if address:
        # A loopback address stays loopback (Ray would rewrite it to the interface's).
        with _single_machine() if _is_loopback(address) else contextlib.nullcontext():
            ray.init(address=address, log_to_driver=True, logging_level="WARNING")
        return RayConnection(address=address, embedded=False, owned=True)
    temp_dir = tempfile.mkdtemp(prefix="dlspec-ray-")
    node = advertised()
    saved = _token_auth(temp_dir)
    try:
        with _single_machine():
            ray.init(
                num_cpus=num_cpus,
                resources=node.resources,
                labels=node.labels,
                include_dashboard=False,
                dashboard_host=LOOPBACK,
                _node_ip_address=LOOPBACK,
                _temp_dir=temp_dir,
                logging_level="WARNING",
                log_to_driver=True,
            )
    except BaseException:
        _restore_env(saved)
        _refresh_auth_state()
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return RayConnection(
        address=None, embedded=True, temp_dir=temp_dir, owned=True, _saved_env=saved
    )


def _join_head(head: Any) -> RayConnection:
    """Join the local head with its auth mode and token; they are put back on close."""
    import ray

    saved = {name: os.environ.get(name) for name in _AUTH_ENV}
    for name in _AUTH_ENV:
        os.environ.pop(name, None)
    os.environ.update(head.auth_env())
    _refresh_auth_state()
    try:
        with _single_machine():
            ray.init(address=head.address, log_to_driver=True, logging_level="WARNING")
    except BaseException:
        _restore_env(saved)
        _refresh_auth_state()
        raise
    return RayConnection(
        address=head.address, embedded=False, owned=True, _saved_env=saved, head=True
    )


def _token_auth(temp_dir: str) -> dict[str, str | None]:
    """Token auth for an embedded Ray, with its token in ``temp_dir``; returns what it changed.

    ``RAY_AUTH_MODE=disabled``, when set, is respected (nothing changes). A token in
    ``RAY_AUTH_TOKEN`` would take precedence over the file (Ray's order); it is the
    caller's own choice and stays in the environment only.
    """
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    saved = {name: os.environ.get(name) for name in _AUTH_ENV}
    path = write_auth_token(temp_dir)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    _refresh_auth_state()
    return saved


def write_auth_token(temp_dir: str) -> str:
    """A fresh random token in ``temp_dir/auth_token``, readable by this user only."""
    path = os.path.join(temp_dir, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path


def _refresh_auth_state() -> None:
    """Make this process re-read the auth mode and token from the environment.

    Ray reads both once and caches them; ray.init refreshes them itself only when
    ``RAY_AUTH_MODE`` is unset. The order (config first, then the token cache) is
    Ray's own (``ray._private.authentication_test_utils.reset_auth_token_state``).
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _restore_env(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def _single_machine() -> Iterator[None]:
    """Ray's "this machine only" mode while ``ray.init`` runs: a loopback node IP or GCS
    address is kept as given. The Ray processes started meanwhile inherit the
    environment variable (and pass it on to the workers they start); this process's
    environment is put back afterwards."""
    from ray._private import ray_constants

    saved_env = os.environ.get(_SINGLE_MACHINE_ENV)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        _restore_env({_SINGLE_MACHINE_ENV: saved_env})


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")

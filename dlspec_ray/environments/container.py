"""Stage code in the software manifest's framework container, through docker-py.

The container runs the agent as an unprivileged user (the host actor's own, or
``nobody`` when that is root), with no network, the
actor's GPUs only, the hardware manifest's memory and CPU limits, and the
software manifest's ``env``. It sees, read-only at the same paths as the host,
the agent's code and the folders of the model's artifacts (and the artifact
cache), and read-write the environment's own shared-memory folder, where the
socket and the tensor arenas live. Labels name the run, the actor and the
owning process, so the sweeper can remove it if the actor is killed.
"""

from __future__ import annotations

__all__ = [
    "CONFINEMENT",
    "CONTAINER_IO",
    "CONTAINER_USER_ENV",
    "DockerEnvironment",
    "container_user",
    "device_requests",
    "resource_limits",
    "unreadable_folders",
]

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlspec_ray.environments.bundle import agent_bundle
from dlspec_ray.environments.engine import LABEL, docker_client, docker_host
from dlspec_ray.environments.errors import EnvironmentUnavailable
from dlspec_ray.environments.paths import env_cache_dir
from dlspec_ray.environments.placement import Placement
from dlspec_ray.environments.remote import RemoteEnvironment
from dlspec_ray.environments.sweeper import sweep_once
from dlspec_ray.owner import HOST, owner_token
from dlspec_ray.spec.types import SoftwareManifest

# Where the environment's shared-memory folder appears inside the container.
CONTAINER_IO = "/dlspec-ray/io"
# Where images keep the agent (images.py); the host's current agent is mounted over it.
CONTAINER_AGENT = "/opt/dlspec-ray/agent"
# The container's own /dev/shm, for frameworks that use it (data loaders, NCCL).
SHM_SIZE = 1 << 30
# What stage code in the container may not do, whoever wrote it: write to the image
# (the root filesystem is read-only; /tmp is a private scratch tmpfs), use any Linux
# capability, gain privileges through setuid binaries, or fork without bound.
CONFINEMENT: dict[str, Any] = {
    "read_only": True,
    "tmpfs": {"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "pids_limit": 512,
}


# Who stage code runs as in the container, as UID[:GID]; unset, the host actor's own user,
# or nobody (65534) when that is root.
CONTAINER_USER_ENV = "DLSPEC_RAY_CONTAINER_USER"
NOBODY = (65534, 65534)


def container_user() -> tuple[int, int]:
    """The uid and gid of stage code in the container.

    Root in a container without capabilities still owns every root-owned file it can
    reach, so when dlspec-ray itself runs as root (as in CI, or a cluster's default
    image) the container does not: it runs as ``nobody``. A user who needs otherwise
    says so in ``DLSPEC_RAY_CONTAINER_USER`` (``0:0`` is root, still without
    capabilities).
    """
    configured = os.environ.get(CONTAINER_USER_ENV, "").strip()
    if configured:
        uid, sep, gid = configured.partition(":")
        if not uid.isdigit() or (sep and not gid.isdigit()):
            raise EnvironmentUnavailable(
                f"{CONTAINER_USER_ENV}: expected UID or UID:GID in numbers (such as "
                f"65534:65534), got {configured!r}"
            )
        return int(uid), int(gid or uid)
    if os.getuid() == 0:
        return NOBODY
    return os.getuid(), os.getgid()


def unreadable_folders(folders: Sequence[str | Path], uid: int, gid: int) -> list[str]:
    """The folders that ``uid:gid`` may not list and enter, each with its mode and owner.

    Inside the container a bind-mounted folder's own mode counts, not its host parents':
    docker makes the parents. So a mount root is checked by its mode bits alone. (A
    folder the image itself has on the way, such as a 0700 ``/root``, counts too; the
    agent names that one when it starts: ``agent.check_readable``.)
    """
    if uid == 0:
        return []
    found = []
    for folder in folders:
        info = os.stat(folder)
        if info.st_uid == uid:
            bits = (info.st_mode >> 6) & 0o7
        elif info.st_gid == gid:
            bits = (info.st_mode >> 3) & 0o7
        else:
            bits = info.st_mode & 0o7
        if bits & 0o5 != 0o5:
            found.append(
                f"{folder} (mode {stat.S_IMODE(info.st_mode):04o}, owner {info.st_uid}:"
                f"{info.st_gid})"
            )
    return found


def device_requests(gpu_ids: Sequence[str | int]) -> list[Any]:
    """Exactly the actor's GPUs (``ray.get_gpu_ids()``), as one docker device request."""
    from docker.types import DeviceRequest

    if not gpu_ids:
        return []
    return [DeviceRequest(device_ids=[str(g) for g in gpu_ids], capabilities=[["gpu"]])]


def resource_limits(placement: Placement) -> dict[str, Any]:
    """docker-py run() keywords for the hardware manifest's CPU and memory, when it gives them."""
    limits: dict[str, Any] = {}
    if placement.cpus:
        limits["nano_cpus"] = int(placement.cpus * 1e9)
    if placement.memory:
        limits["mem_limit"] = int(placement.memory)
        limits["memswap_limit"] = int(placement.memory)
    return limits


def image_name(software: SoftwareManifest | None, what: str = "software") -> str:
    if software is None or not software.container:
        where = f"{software.path or software.ref}" if software else "no software manifest"
        raise EnvironmentUnavailable(
            f"{where}: container: the docker environment needs an image, and this software "
            "manifest names none; add container: <image> (and packages:), then build it with "
            "`dlspec-ray images build SOFTWARE_MANIFEST`"
        )
    return software.container


def get_image(client: Any, software: SoftwareManifest | None) -> Any:
    from docker.errors import ImageNotFound

    name = image_name(software)
    try:
        return client.images.get(name)
    except ImageNotFound:
        where = software.path or software.ref if software else "--environment docker"
        raise EnvironmentUnavailable(
            f"{where}: container: the image {name!r} is not in the Docker engine at "
            f"{docker_host()}. Build it (offline, no registry needed) with: "
            f"dlspec-ray images build {where}"
        ) from None


class DockerEnvironment(RemoteEnvironment):
    kind = "docker"

    def __init__(self, software: SoftwareManifest | None = None, **kwargs: Any):
        super().__init__(software, **kwargs)
        self._image: Any = None
        self._container: Any = None

    @classmethod
    def prepare(cls, software: SoftwareManifest | None) -> str:
        """The engine answers and holds the image: checked before any actor starts."""
        image_name(software)  # no container named: say so before asking any engine
        try:
            client = docker_client()
        except EnvironmentUnavailable as exc:
            where = f"{software.path or software.ref}: " if software else ""
            raise EnvironmentUnavailable(f"{where}the docker environment: {exc}") from None
        image = get_image(client, software)
        sweep_once(containers=True)
        return f"image {image_name(software)} ({image.short_id})"

    def _launch(self, socket_path: Path, ctx: Mapping[str, Any]) -> None:
        client = docker_client()
        self._image = get_image(client, self.software)
        sweep_once(containers=True)
        options = self.run_options(self._image.id, socket_path, ctx)
        uid, gid = (int(x) for x in options["user"].split(":"))
        self._check_readable(options["volumes"], uid, gid)
        self._hand_over(socket_path.parent, uid, gid)
        self._container = client.containers.run(**options)

    def _check_readable(self, volumes: Mapping[str, Mapping[str, str]], uid: int, gid: int) -> None:
        """Refuse, before the container starts, mounts that its user could not read."""
        unreadable = unreadable_folders(
            [src for src, bind in volumes.items() if bind["mode"] == "ro"], uid, gid
        )
        if not unreadable:
            return
        why = (
            " (dlspec-ray runs as root here, so the container does not)" if os.getuid() == 0 else ""
        )
        them = "these folders" if len(unreadable) > 1 else "this folder"
        raise EnvironmentUnavailable(
            f"the docker environment runs stage code as {uid}:{gid}{why}, and that user "
            f"cannot read {them} it must see: {'; '.join(unreadable)}. Make {them} readable to "
            "it (chmod o+rx), or set "
            f"{CONTAINER_USER_ENV}=UID:GID to a user who can read them (0:0 is root, still "
            "without capabilities)."
        )

    @staticmethod
    def _hand_over(folder: Path, uid: int, gid: int) -> None:
        """Give the container's user the environment's own folder: the socket it connects
        to and the arenas it maps. Root on the host still reads and writes them."""
        if (uid, gid) == (os.getuid(), os.getgid()) or os.getuid() != 0:
            return
        for path in (folder, *folder.iterdir()):
            os.chown(path, uid, gid)

    def run_options(self, image: str, socket_path: Path, ctx: Mapping[str, Any]) -> dict[str, Any]:
        """docker-py ``containers.run`` keywords: everything the container is given."""
        software = self.software
        if software is None:  # get_image refused it already; this keeps type checkers honest
            raise EnvironmentUnavailable("the docker environment needs a software manifest")
        folder = socket_path.parent
        labels = {
            f"{LABEL}.managed": "1",
            f"{LABEL}.host": HOST,
            f"{LABEL}.owner": owner_token(),
            f"{LABEL}.software": software.ref,
            **{f"{LABEL}.{k}": str(v) for k, v in self.placement.labels.items()},
        }
        return {
            "image": image,
            "command": ["python3", "-m", "dlspec_ray.environments.agent",
                        "--socket", f"{CONTAINER_IO}/{socket_path.name}"],
            "detach": True,
            "name": folder.name,
            "labels": labels,
            "environment": {**software.env, "PYTHONUNBUFFERED": "1"},
            "user": "{}:{}".format(*container_user()),
            "network_mode": "none",
            "shm_size": min(SHM_SIZE, self.placement.memory or SHM_SIZE),
            "volumes": self._volumes(folder, ctx),
            "device_requests": device_requests(self.placement.gpu_ids),
            "working_dir": CONTAINER_IO,
            **CONFINEMENT,
            **resource_limits(self.placement),
        }  # fmt: skip

    def _volumes(self, folder: Path, ctx: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        volumes = {
            str(folder): {"bind": CONTAINER_IO, "mode": "rw"},
            str(agent_bundle(env_cache_dir())): {"bind": CONTAINER_AGENT, "mode": "ro"},
        }
        for path in self.placement.shared_folders(ctx):
            if not any(path.is_relative_to(Path(v)) for v in volumes):
                volumes[str(path)] = {"bind": str(path), "mode": "ro"}
        return volumes

    def _exit_code(self, wait_s: float) -> int | None:
        if self._container is None:
            return None
        try:
            if wait_s:
                return int(self._container.wait(timeout=wait_s)["StatusCode"])
            self._container.reload()
        except Exception:
            return None
        if self._container.status in ("exited", "dead"):
            return int(self._container.attrs["State"]["ExitCode"])
        return None

    def _log_tail(self, lines: int) -> str:
        if self._container is None:
            return ""
        try:
            return self._container.logs(tail=lines).decode("utf-8", "replace").rstrip()
        except Exception as exc:
            return f"(the log could not be read: {exc})"

    def _stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            # Already gone, or the engine went away: the sweeper catches what is left.
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def _where(self) -> str:
        name = self.software.container if self.software else "?"
        return f"image {name}"

    def _identity(self) -> dict[str, Any]:
        return {
            "image": self.software.container if self.software else None,
            "image_id": self._image.id if self._image is not None else None,
            "interpreter": self._hello.get("executable"),
        }

"""Shared-memory arenas: how tensors cross into and out of an environment.

Sent through a pipe, a tensor is copied by pickle and twice more by the kernel.
Here each direction has one file in ``/dev/shm`` that both sides map: the
sender copies a tensor's bytes into it once, and the receiver reads them in
place. Every environment gets its own folder there, named after its owner (see
``owner``), so that the sweeper can find what a killed actor left behind.
"""

from __future__ import annotations

__all__ = ["SHM_PREFIX", "Arena", "env_dir_owner", "make_env_dir", "shm_root"]

import mmap
import os
import secrets
import tempfile
from pathlib import Path

from dlspec_ray.owner import owner_token

SHM_PREFIX = "dlspec-ray-"
# The smallest mapping; arenas grow by doubling, so a run's sizes settle after a few calls.
_MIN_BYTES = 1 << 20


def shm_root() -> Path:
    """``/dev/shm`` where it exists (Linux), else the temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def make_env_dir() -> Path:
    """A new private folder for one environment's socket, arenas and log."""
    path = shm_root() / f"{SHM_PREFIX}{owner_token()}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    return path


def env_dir_owner(name: str) -> str | None:
    """The owner token in an environment folder's name, or None if it is not one of ours."""
    if not name.startswith(SHM_PREFIX):
        return None
    token, sep, suffix = name[len(SHM_PREFIX) :].rpartition("-")
    return token if sep and token and len(suffix) == 8 else None


class Arena:
    """One direction's shared buffer: a file the sender grows and the receiver maps.

    Only the sender writes and resizes it; the receiver remaps when a message
    points past what it has mapped. Old mappings stay valid while arrays still
    view them, because a file only ever grows.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def ensure(self, nbytes: int) -> None:
        """Make room for ``nbytes`` (sender side)."""
        if nbytes <= self._size:
            return
        size = max(_MIN_BYTES, 1 << (nbytes - 1).bit_length())
        os.ftruncate(self._fd, size)
        self._remap(size)

    def write(self, offset: int, data: memoryview) -> None:
        if self._view is None:
            raise RuntimeError("Arena.write before Arena.ensure")
        self._view[offset : offset + data.nbytes] = data

    def view(self, offset: int, nbytes: int) -> memoryview:
        """``nbytes`` at ``offset`` in place (receiver side)."""
        if offset + nbytes > self._size:
            size = os.fstat(self._fd).st_size
            if size >= offset + nbytes:
                self._remap(size)
        if self._view is None or offset + nbytes > self._size:
            raise EOFError(f"{self.path}: a message points past the end of the shared buffer")
        return self._view[offset : offset + nbytes]

    def _remap(self, size: int) -> None:
        # Views handed out earlier keep the old mapping alive; it is unmapped when they die.
        self._view = None
        self._map = mmap.mmap(self._fd, size)
        self._view = memoryview(self._map)
        self._size = size

    def close(self) -> None:
        self._view = None
        self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

"""The content-addressed artifact cache, shared by every process on a node.

Layout under the cache folder::

    sha256/<hex>/<basename>   verified bytes, read-only; the original file name is
                              kept because readers and frameworks look at extensions
    unpacked/<hex>/           the unpacked tree of the archive whose bytes hash to <hex>
    tmp/                      work in progress; never read from

Nothing appears under ``sha256/`` or ``unpacked/`` until it is complete and
verified: it is written under ``tmp/`` (same filesystem) and renamed into place.
Several fetchers of the same blob (two Ray actors on one node) may race; each
writes its own temporary copy, the first rename wins and the others discard
theirs and use the winner's.

Work folders name the process that made them (``blob-PID.START@HOST-...``, see
``owner_tag``), so what a killed process left under ``tmp/`` (a partial
download) or ``unpacked/.tmp-*`` (a partial unpack) is recognisable:
``sweep_partial`` removes those whose owner no longer runs on this host, and those
of other hosts (a shared cache) or of older versions once they are a day old. It
runs at the start of each fetch and on ``dlspec-ray env gc``.
"""

from __future__ import annotations

__all__ = [
    "ENV_VAR",
    "READABLE_FOLDER",
    "blob_dir",
    "cached_blob",
    "default_cache_dir",
    "open_for_readers",
    "owner_tag",
    "publish_blob",
    "remove_tree",
    "staged_file",
    "sweep_partial",
    "unpacked_dir",
]

import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dlspec_ray.owner import owner_alive, owner_token

ENV_VAR = "DLSPEC_RAY_CACHE"

# Work folders that cannot be tied to a process on this host are removed after this long.
STALE_AFTER_S = 24 * 3600.0

_HOST_KEY = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# A cache entry's folder: read by whoever reads the cache, such as a container's unprivileged
# user (environments/container.py), never written after it is published.
READABLE_FOLDER = 0o755
# The work folders mkdtemp makes from the prefixes below, in tmp/ and in unpacked/.
_WORK = {"tmp": re.compile(r"^(?:blob|alias)-"), "unpacked": re.compile(r"^\.tmp-")}
_OWNED = re.compile(r"^(?:blob|alias|\.tmp)-(?P<pid>\d+)\.(?P<start>\d+)@(?P<host>[0-9a-f]{8})-")


def default_cache_dir() -> Path:
    """``$DLSPEC_RAY_CACHE`` if set (and not empty), else ``~/.cache/dlspec-ray``."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "dlspec-ray"


def blob_dir(cache: Path, digest: str) -> Path:
    return Path(cache) / "sha256" / digest


def unpacked_dir(cache: Path, digest: str) -> Path:
    return Path(cache) / "unpacked" / digest


def _tmp_root(cache: Path) -> Path:
    root = Path(cache) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def open_for_readers(folder: Path) -> None:
    """Make a cache entry's folder readable by others, as entries are published now.

    Entries published before that kept mkdtemp's 0700, which a container's unprivileged
    user cannot enter; they are opened when next used. Only an entry's own folder.
    """
    with suppress(OSError):
        if stat.S_IMODE(folder.stat().st_mode) & 0o055 != 0o055:
            folder.chmod(READABLE_FOLDER)


def cached_blob(cache: Path, digest: str, basename: str) -> Path | None:
    """The cached file with these bytes, under ``basename``; None when not cached.

    When the bytes are cached under another name (two manifests naming the same
    file differently), the requested name is added as a hard link (or a copy), so
    each caller sees the extension it asked for.
    """
    folder = blob_dir(cache, digest)
    wanted = folder / basename
    if wanted.is_file():
        open_for_readers(folder)
        return wanted
    try:
        existing = next((p for p in folder.iterdir() if p.is_file()), None)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if existing is None:
        return None
    work = Path(tempfile.mkdtemp(prefix=f"alias-{owner_tag()}-", dir=_tmp_root(cache)))
    try:
        alias = work / basename
        try:
            os.link(existing, alias)
        except OSError:
            shutil.copyfile(existing, alias)
            alias.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(alias, wanted)
    finally:
        remove_tree(work)
    open_for_readers(folder)
    return wanted


@contextmanager
def staged_file(cache: Path, basename: str) -> Iterator[Path]:
    """A fresh path ``tmp/<unique>/<basename>`` to write a blob into.

    Whatever is left of it (a download that failed or did not verify) is removed
    on exit; a published blob has already been renamed away by then.
    """
    work = Path(tempfile.mkdtemp(prefix=_work_prefix(basename), dir=_tmp_root(cache)))
    try:
        yield work / basename
    finally:
        remove_tree(work)


def _work_prefix(basename: str) -> str:
    """A short, filesystem-safe hint of what a temporary folder holds."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in basename)
    return f"blob-{owner_tag()}-{safe[:40]}-"


def owner_tag() -> str:
    """``PID.START@HOST``: this process, as written into the names of its work folders.

    START (the process's start time, from /proc) tells a live owner from a later
    process that reuses its pid; HOST is a short hash of the host name.
    """
    return f"{owner_token()}@{_HOST_KEY}"


def sweep_partial(cache: Path, *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the partial downloads and unpacks that dead processes left in ``cache``.

    Only dlspec-ray's own work folders are looked at (``tmp/blob-*``, ``tmp/alias-*``
    and ``unpacked/.tmp-*``); anything else in the cache folder is left alone. One
    whose owner (named in it) is gone from this host is removed at once; one of
    another host, or from a version that did not name owners, once it has not
    changed for ``max_age_s``. Returns what was removed.
    """
    removed: list[Path] = []
    now = time.time()
    for sub, work in _WORK.items():
        try:
            entries = sorted((Path(cache) / sub).iterdir())
        except OSError:
            continue
        for entry in entries:
            if not work.match(entry.name) or entry.is_symlink() or not entry.is_dir():
                continue
            owned = _OWNED.match(entry.name)
            if owned and owned["host"] == _HOST_KEY:
                stale = not owner_alive(f"{owned['pid']}.{owned['start']}")
            else:
                stale = now - _last_change(entry) > max_age_s
            if stale:
                remove_tree(entry)
                removed.append(entry)
    return removed


def _last_change(folder: Path) -> float:
    newest = 0.0
    with suppress(OSError):
        newest = folder.lstat().st_mtime
        for child in folder.iterdir():
            with suppress(OSError):
                newest = max(newest, child.lstat().st_mtime)
    return newest


def publish_blob(cache: Path, digest: str, staged: Path) -> Path:
    """Move a verified staged file into ``sha256/<digest>/`` in one atomic rename.

    Returns the cached path under the staged file's name. Losing a race with
    another fetcher of the same bytes is not an error: the winner's copy is used.
    """
    staged.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    staged.parent.chmod(READABLE_FOLDER)  # mkdtemp made it 0700
    folder = blob_dir(cache, digest)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged.parent, folder)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    found = cached_blob(cache, digest, staged.name)
    if found is None:  # pragma: no cover - someone emptied the folder under us
        raise FileNotFoundError(errno.ENOENT, "cached blob vanished", str(folder))
    return found


def remove_tree(path: Path) -> None:
    """Remove a folder even when an archive made parts of it read-only."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        _chmod_quietly(path)
        for dirpath, dirnames, _files in os.walk(path):
            for name in dirnames:
                child = os.path.join(dirpath, name)
                if not os.path.islink(child):  # never touch what a link points to
                    _chmod_quietly(child)
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            os.unlink(path)


def _chmod_quietly(path: str | Path) -> None:
    with suppress(OSError):
        os.chmod(path, stat.S_IRWXU)

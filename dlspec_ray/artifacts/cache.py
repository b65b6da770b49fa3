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
"""

from __future__ import annotations

__all__ = [
    "ENV_VAR",
    "blob_dir",
    "cached_blob",
    "default_cache_dir",
    "publish_blob",
    "remove_tree",
    "staged_file",
    "unpacked_dir",
]

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ENV_VAR = "DLSPEC_RAY_CACHE"


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


def cached_blob(cache: Path, digest: str, basename: str) -> Path | None:
    """The cached file with these bytes, under ``basename``; None when not cached.

    When the bytes are cached under another name (two manifests naming the same
    file differently), the requested name is added as a hard link (or a copy), so
    each caller sees the extension it asked for.
    """
    folder = blob_dir(cache, digest)
    wanted = folder / basename
    if wanted.is_file():
        return wanted
    try:
        existing = next((p for p in folder.iterdir() if p.is_file()), None)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if existing is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="alias-", dir=_tmp_root(cache)))
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
    return f"blob-{safe[:40]}-"


def publish_blob(cache: Path, digest: str, staged: Path) -> Path:
    """Move a verified staged file into ``sha256/<digest>/`` in one atomic rename.

    Returns the cached path under the staged file's name. Losing a race with
    another fetcher of the same bytes is not an error: the winner's copy is used.
    """
    staged.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
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

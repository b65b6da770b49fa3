"""Unpacking downloaded archives without letting them write outside their folder.

Archives come from the internet, so every member is checked before it is
written: no absolute paths, no ``..``, no link that resolves outside the
target, no device files. Links are resolved against what is already on disk,
because a chain of individually harmless links (``a -> .``, then ``b -> a/..``)
can still escape. ``tarfile``'s ``data`` filter runs too where this Python has
it (3.10.12+, 3.11.4+); the own checks keep older 3.10 releases safe.

A tree is unpacked into a temporary folder beside the target and renamed into
place, so a target that exists is always complete and unpacking is idempotent.

Unpacking is bounded (see ``limits``): by total size and by compression ratio,
counted while it writes, so a small archive that would fill the disk (a "zip
bomb") stops at the limit and its partial tree is removed. A zip's declared sizes
are checked before anything is written, and each tar member's size as its header
is read, before its bytes are written; the bytes actually written are counted too.
"""

from __future__ import annotations

__all__ = ["SUPPORTED_ARCHIVES", "archive_format", "safe_unpack"]

import copy
import gzip
import lzma
import os
import posixpath
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from dlspec_ray.artifacts.cache import READABLE_FOLDER, open_for_readers, owner_tag, remove_tree
from dlspec_ray.artifacts.checksum import CHUNK_SIZE
from dlspec_ray.artifacts.limits import (
    MAX_RATIO_ENV,
    MAX_UNPACKED_ENV,
    RATIO_FLOOR,
    format_bytes,
    max_compression_ratio,
    max_unpacked_bytes,
)
from dlspec_ray.errors import ArtifactError

# Longest suffix first, so ``.tar.gz`` is not taken for a single gzipped file.
SUPPORTED_ARCHIVES: tuple[str, ...] = (
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tar.xz",
    ".tar",
    ".zip",
    ".gz",
)

_KINDS = {".zip": "zip", ".gz": "gz"}

# What reading a damaged or mislabelled archive raises.
_BROKEN_ARCHIVE = (
    OSError,
    EOFError,
    tarfile.TarError,
    zipfile.BadZipFile,
    lzma.LZMAError,
    zlib.error,
)

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")

_FIX = (
    "The archive is unsafe to unpack: get a fixed one from its publisher, or inspect "
    "and unpack it yourself and point source: at the unpacked folder."
)


def archive_format(name: str | Path) -> str | None:
    """``"tar"``, ``"zip"`` or ``"gz"`` (one compressed file) from a file name; None if none."""
    lower = Path(name).name.lower()
    for suffix in SUPPORTED_ARCHIVES:
        if lower.endswith(suffix):
            return _KINDS.get(suffix, "tar")
    return None


def safe_unpack(
    archive: Path,
    target: Path,
    *,
    max_bytes: int | None = None,
    max_ratio: float | None = None,
) -> Path:
    """Unpack ``archive`` so that its contents are ``target``; returns ``target``.

    A ``.gz`` that is not a tar holds one file, written as ``target/<name without .gz>``.
    ``max_bytes`` (default ``$DLSPEC_RAY_MAX_UNPACKED_BYTES``, 64 GiB) bounds the
    unpacked size, ``max_ratio`` (default ``$DLSPEC_RAY_MAX_COMPRESSION_RATIO``, 200)
    the unpacked size per byte of archive; past either, nothing is kept.
    """
    archive, target = Path(archive), Path(target)
    if target.is_dir():
        open_for_readers(target)
        return target
    limit_bytes, limit_ratio = max_unpacked_bytes(max_bytes), max_compression_ratio(max_ratio)
    kind = archive_format(archive)
    if kind is None:
        raise ArtifactError(
            f"cannot unpack {archive}: its name does not end in one of "
            f"{', '.join(SUPPORTED_ARCHIVES)}, so its format is unknown; rename the file "
            "(or its URL) to carry the right extension, or set unpack: false and read "
            "the file yourself."
        )
    if not archive.is_file():
        raise ArtifactError(f"cannot unpack {archive}: the file does not exist.")
    budget = _Budget(archive, archive.stat().st_size, limit_bytes, limit_ratio)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".tmp-{owner_tag()}-{target.name[:40]}-"  # sweep_partial knows whose it is
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        _UNPACKERS[kind](archive, work, budget)
        _refuse_escaping_links(archive, work)
        work.chmod(READABLE_FOLDER)  # mkdtemp made it 0700
        try:
            os.rename(work, target)
        except OSError:
            if target.is_dir():  # another process unpacked the same archive first
                return target
            raise
    except _BROKEN_ARCHIVE as exc:
        raise ArtifactError(
            f"cannot unpack {archive} as a {kind} archive: {exc}. The file is damaged, is "
            f"not really a {kind} archive, or the disk is full; check the file and its "
            "unpack: setting."
        ) from exc
    finally:
        remove_tree(work)
    return target


class _Budget:
    """The bytes an archive may still unpack to; ``spend`` refuses past the limits."""

    def __init__(self, archive: Path, size: int, max_bytes: int, max_ratio: float):
        self.archive = archive
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        by_ratio = max(max_ratio * max(size, 1), RATIO_FLOOR)
        self.allowed = int(min(max_bytes, by_ratio))
        self.by_ratio = by_ratio < max_bytes
        self.size = size
        self.spent = 0

    def spend(self, count: int, *, declared: bool = False) -> None:
        self.spent += count
        if self.spent > self.allowed:
            raise self.refusal(self.spent, declared=declared)

    def check_declared(self, total: int) -> None:
        if total > self.allowed:
            raise self.refusal(total, declared=True)

    def refusal(self, count: int, *, declared: bool) -> ArtifactError:
        # Streamed bytes stop at the first chunk past the limit: their count is a lower bound.
        what = (
            f"declares that it unpacks to {format_bytes(count)}"
            if declared
            else f"unpacks to more than {format_bytes(self.allowed)}"
        )
        if self.by_ratio:
            limit = (
                f"{self.max_ratio:g} times its own size of {format_bytes(self.size)} (the "
                f"compression-ratio limit, {MAX_RATIO_ENV}={self.max_ratio:g})"
            )
            fix = f"set {MAX_RATIO_ENV} (max_ratio= from Python) higher"
        else:
            limit = (
                f"the unpacked-size limit of {format_bytes(self.max_bytes)} "
                f"({MAX_UNPACKED_ENV}={self.max_bytes})"
            )
            fix = f"set {MAX_UNPACKED_ENV} (max_bytes= from Python) higher, e.g. 256GiB"
        return ArtifactError(
            f"archive {self.archive} refused: it {what}, over "
            f"{limit}, so it may be a decompression bomb; nothing of it was kept. If you trust "
            f"the archive, {fix}, or unpack it yourself and point source: at the folder."
        )


def _refuse(archive: Path, member: str, why: str) -> ArtifactError:
    return ArtifactError(f"archive {archive} refused: member {member!r} {why}. {_FIX}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_name(archive: Path, name: str) -> None:
    """Checks that need no filesystem: absolute paths, ``..``, NUL bytes."""
    if "\x00" in name:
        raise _refuse(archive, name, "has a NUL byte in its name")
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in normal.split("/"):
        raise _refuse(archive, name, "has '..' in its path, which can write outside the target")


def _check_tar_member(archive: Path, member: tarfile.TarInfo, root: str) -> None:
    name = member.name
    _check_name(archive, name)
    if member.ischr() or member.isblk():
        raise _refuse(archive, name, "is a device file")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _refuse(
            archive, name, f"is a special file (tar type {member.type.decode(errors='replace')!r})"
        )
    destination = os.path.realpath(os.path.join(root, name))
    if not _inside(destination, root):
        raise _refuse(archive, name, "would be written outside the target through a link")
    if member.issym():
        link = member.linkname
        if posixpath.isabs(link) or "\x00" in link:
            raise _refuse(archive, name, f"is a symlink to the absolute path {link!r}")
        resolved = os.path.realpath(os.path.join(root, os.path.dirname(name), link))
        if not _inside(resolved, root):
            raise _refuse(archive, name, f"is a symlink to {link!r}, outside the target")
    elif member.islnk():
        link = member.linkname
        resolved = os.path.realpath(os.path.join(root, link))
        if posixpath.isabs(link) or not _inside(resolved, root):
            raise _refuse(archive, name, f"is a hard link to {link!r}, outside the target")


def _sanitized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What the ``data`` filter does to modes, for Pythons that lack it."""
    if member.issym() or member.islnk():
        return member
    clean = copy.copy(member)
    mode = member.mode & 0o755  # no setuid/setgid/sticky, no group/other write
    clean.mode = mode | (0o700 if member.isdir() else 0o600)
    return clean


def _checked_members(
    archive: Path, tar: tarfile.TarFile, root: str, budget: _Budget
) -> Iterator[tarfile.TarInfo]:
    """Members one at a time, each checked right before ``extractall`` writes it.

    Lazy on purpose: a link's target is resolved against the members written so far,
    and a member's size is charged before its bytes are written (tarfile writes
    exactly ``size`` bytes of a regular file, or fails).
    """
    for member in tar:
        _check_tar_member(archive, member, root)
        if member.isreg():
            budget.spend(member.size, declared=True)
        yield member if _HAS_DATA_FILTER else _sanitized(member)


def _unpack_tar(archive: Path, work: Path, budget: _Budget) -> None:
    root = os.path.realpath(work)
    with tarfile.open(archive, "r:*") as tar:
        members = _checked_members(archive, tar, root, budget)
        try:
            if _HAS_DATA_FILTER:
                tar.extractall(work, members=members, filter="data")
            else:
                tar.extractall(work, members=members)
        except tarfile.TarError as exc:
            member = getattr(exc, "tarinfo", None)
            if member is None:
                raise
            raise _refuse(archive, member.name, f"was rejected by tarfile: {exc}") from exc


def _unpack_zip(archive: Path, work: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        for info in members:
            _check_name(archive, info.filename)
        budget.check_declared(sum(info.file_size for info in members))
        for info in members:
            # The names were checked above: no absolute path, drive or '..'.
            destination = work.joinpath(*[p for p in info.filename.split("/") if p])
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, open(destination, "wb") as sink:
                _copy_counted(source, sink, budget)


def _unpack_gz(archive: Path, work: Path, budget: _Budget) -> None:
    name = archive.name[: -len(".gz")] or "data"
    with gzip.open(archive, "rb") as source, open(work / name, "wb") as sink:
        _copy_counted(source, sink, budget)


def _copy_counted(source: BinaryIO, sink: BinaryIO, budget: _Budget) -> None:
    """Copy in bounded chunks, charging each before it is written."""
    while chunk := source.read(CHUNK_SIZE):
        budget.spend(len(chunk))
        sink.write(chunk)


def _refuse_escaping_links(archive: Path, work: Path) -> None:
    """A last look at the finished tree: every link must still resolve inside it.

    Links checked one by one can be re-aimed by members written after them.
    """
    root = os.path.realpath(work)
    for dirpath, dirnames, filenames in os.walk(work):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not _inside(os.path.realpath(path), root):
                member = os.path.relpath(path, work)
                raise _refuse(archive, member, "ends up as a symlink pointing outside the target")


_UNPACKERS: dict[str, Callable[[Path, Path, _Budget], None]] = {
    "tar": _unpack_tar,
    "zip": _unpack_zip,
    "gz": _unpack_gz,
}

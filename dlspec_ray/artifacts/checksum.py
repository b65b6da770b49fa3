"""SHA-256 digests of artifacts, and the forms manifests write them in.

A file's checksum is ``sha256:<hex>``, the SHA-256 of its bytes (what ``sha256sum``
prints). A folder's checksum is ``sha256-tree:<hex>``, its *tree digest*: the
SHA-256 of a listing of everything in it, defined by :func:`tree_digest`. The two
prefixes differ so that a file's checksum given to a folder (or the reverse) is
reported as exactly that, not as a mismatch.

Artifacts can be gigabytes, so files are hashed in fixed-size chunks and never
read whole into memory. A file's digest inside a tree is remembered for the
life of the process, keyed by its inode, size and change times, so verifying
the same folder again costs a walk of the tree and no reading.
"""

from __future__ import annotations

__all__ = [
    "CHUNK_SIZE",
    "FILE_PREFIX",
    "TREE_PREFIX",
    "Checksum",
    "checksum_of",
    "format_checksum",
    "format_tree_checksum",
    "parse_any_checksum",
    "parse_checksum",
    "sha256_file",
    "tree_digest",
    "tree_listing",
]

import hashlib
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dlspec_ray.errors import ArtifactError

CHUNK_SIZE = 1 << 20

FILE_PREFIX = "sha256"
TREE_PREFIX = "sha256-tree"

_CHECKSUM = re.compile(r"sha256:([0-9a-fA-F]{64})")
_ANY_CHECKSUM = re.compile(r"(sha256|sha256-tree):([0-9a-fA-F]{64})")

# A file changed less than this long before it was hashed may change again within
# the same timestamp tick without its stat changing, so its digest is not remembered
# (git's "racy" rule). Timestamps are coarse (a few ms on Linux), 2 s is generous.
_RACY_NS = 2_000_000_000
_MEMO_LIMIT = 1_000_000
_memo: dict[tuple[int, int, int, int, int], str] = {}
_memo_lock = threading.Lock()


@dataclass(frozen=True)
class Checksum:
    """A parsed checksum: ``kind`` is ``"sha256"`` (a file) or ``"sha256-tree"`` (a folder)."""

    kind: str
    hex: str

    @property
    def is_tree(self) -> bool:
        return self.kind == TREE_PREFIX

    def __str__(self) -> str:
        return f"{self.kind}:{self.hex}"


def sha256_file(path: str | Path) -> str:
    """The lowercase hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def parse_checksum(text: str) -> str:
    """The lowercase hex digest of a file checksum ``sha256:<hex>``."""
    match = _CHECKSUM.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ArtifactError(
            f"checksum must be 'sha256:' followed by 64 hex digits, got {text!r}; "
            "compute it with `sha256sum FILE` (or `dlspec-ray checksum FILE`) on a trusted "
            "copy and write checksum: sha256:<digest>."
        )
    return match.group(1).lower()


def parse_any_checksum(text: str) -> Checksum:
    """A file checksum ``sha256:<hex>`` or a folder checksum ``sha256-tree:<hex>``."""
    match = _ANY_CHECKSUM.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ArtifactError(
            f"checksum must be 'sha256:' (a file) or 'sha256-tree:' (a folder) followed by "
            f"64 hex digits, got {text!r}; compute it with `dlspec-ray checksum PATH` "
            "(or `sha256sum FILE` for a file) on a trusted copy."
        )
    return Checksum(match.group(1), match.group(2).lower())


def format_checksum(hex_digest: str) -> str:
    return f"{FILE_PREFIX}:{hex_digest}"


def format_tree_checksum(hex_digest: str) -> str:
    return f"{TREE_PREFIX}:{hex_digest}"


def checksum_of(path: str | Path) -> str:
    """What a manifest's ``checksum:`` must say for ``path``.

    ``sha256:<hex>`` for a file, ``sha256-tree:<hex>`` (:func:`tree_digest`) for a
    folder. A missing path, or one that is neither, is an ArtifactError.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist; give the path of a file or folder.") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror}.") from exc
    if stat.S_ISDIR(mode):
        return format_tree_checksum(tree_digest(path))
    if stat.S_ISREG(mode):
        try:
            return format_checksum(sha256_file(path))
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc.strerror}.") from exc
    raise ArtifactError(f"{path} is not a regular file or folder, so it has no checksum.")


def tree_digest(path: str | Path) -> str:
    """The lowercase hex tree digest of the folder ``path``.

    It is the SHA-256 of the bytes of :func:`tree_listing`: one line per entry below
    the folder, sorted by the entry's path (compared as UTF-8 bytes)::

        <sha256 hex of the file's bytes>  <relative/path>\\n     for each file
        -  <relative/path>/\\n                                    for each empty folder

    Two spaces separate the columns, paths are relative to ``path`` with ``/``
    between names, and each line ends in ``\\n``. An empty folder has the digest of
    no bytes at all. What counts:

    - Every file, hidden ones (``.name``) included: the reader sees them too.
    - Empty folders, as a line of their own (a folder with anything in it is
      implied by its entries). A reader that labels class folders by position sees
      an empty folder, so it must change the digest.
    - The folder's own name and location do not: a moved or renamed copy has the
      same digest. Neither do timestamps, owners or permissions.
    - A symlink that resolves inside the folder counts as what it points to, under
      the link's own path (so a copy that follows links, such as ``cp -rL`` or
      Python's ``shutil.copytree``, has the same digest). A symlink that resolves
      outside the folder, a dangling one, one that loops back into a folder that
      holds it, a FIFO, socket or device, and a name with a newline in it are
      refused with an ArtifactError.

    For a folder of plain files, no empty folders and no ``\\`` in any name, this is
    what ``cd FOLDER && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0r
    sha256sum | sha256sum`` prints.
    """
    return hashlib.sha256(tree_listing(path)).hexdigest()


def tree_listing(path: str | Path) -> bytes:
    """The listing whose SHA-256 is :func:`tree_digest`; see there for its format."""
    root = Path(path)
    if not root.is_dir():
        what = "does not exist" if not os.path.lexists(root) else "is not a folder"
        raise ArtifactError(f"{root} {what}; a tree digest is of a folder.")
    real_root = os.path.realpath(root)
    started = time.time_ns()
    entries: list[tuple[bytes, str]] = []
    _walk(root, real_root, "", (real_root,), entries, started)
    entries.sort()
    return b"".join(line.encode("utf-8", "surrogateescape") for _key, line in entries)


def _walk(
    folder: Path,
    real_root: str,
    prefix: str,
    holders: tuple[str, ...],
    entries: list[tuple[bytes, str]],
    started: int,
) -> None:
    """Add the lines of everything below ``folder`` (whose listing path is ``prefix``)."""
    try:
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise ArtifactError(f"cannot list the folder {folder}: {exc.strerror}.") from exc
    if not children and prefix:
        name = prefix + "/"
        entries.append((_key(name), f"-  {name}\n"))
    for child in children:
        relative = f"{prefix}/{child.name}" if prefix else child.name
        if "\n" in child.name or "\r" in child.name:
            raise ArtifactError(
                f"{child.path}: a name with a line break cannot be listed in a tree digest; "
                "rename it."
            )
        try:
            info = os.stat(child.path)  # follows links: a link counts as its target
        except FileNotFoundError:
            target = os.readlink(child.path) if child.is_symlink() else "?"
            raise ArtifactError(
                f"{child.path} is a symlink to {target!r}, which does not exist; remove the "
                "link or restore its target."
            ) from None
        except OSError as exc:
            raise ArtifactError(f"cannot read {child.path}: {exc.strerror}.") from exc
        real = holders[-1] + os.sep + child.name
        if child.is_symlink():
            real = os.path.realpath(child.path)
            if not _inside(real, real_root):
                raise ArtifactError(
                    f"{child.path} is a symlink to {os.readlink(child.path)!r}, which resolves "
                    f"to {real}, outside the folder {real_root}; a folder's checksum only covers "
                    "what is inside it. Copy the target in place of the link."
                )
        if stat.S_ISDIR(info.st_mode):
            if child.is_symlink() and any(_inside(holder, real) for holder in holders):
                raise ArtifactError(
                    f"{child.path} is a symlink to a folder that contains it, so the folder "
                    "has no end; remove the link."
                )
            _walk(Path(child.path), real_root, relative, (*holders, real), entries, started)
        elif stat.S_ISREG(info.st_mode):
            digest = _file_digest(child.path, info, started)
            entries.append((_key(relative), f"{digest}  {relative}\n"))
        else:
            raise ArtifactError(
                f"{child.path} is not a regular file or folder (a FIFO, socket or device), "
                "so it cannot be checksummed; remove it from the folder."
            )


def _key(relative: str) -> bytes:
    return relative.encode("utf-8", "surrogateescape")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _file_digest(path: str, info: os.stat_result, started: int) -> str:
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _memo_lock:
        known = _memo.get(key)
    if known is not None:
        return known
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror}.") from exc
    if max(info.st_mtime_ns, info.st_ctime_ns) < started - _RACY_NS:
        with _memo_lock:
            if len(_memo) >= _MEMO_LIMIT:
                _memo.clear()
            _memo[key] = digest
    return digest

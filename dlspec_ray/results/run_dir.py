"""The run directory's rules: what counts as one, which ``--out`` can take one, how it lands.

DESIGN.md's trust rule is that dlspec-ray deletes or replaces only what it
created. A run is built in a staging folder beside ``--out`` and renamed into
place when it is complete, so everything here is about that rename:

- ``check_out_dir`` runs before any work starts and refuses an ``--out`` the
  finished run could not be renamed to (a file, a mount point, the working
  directory, a read-only or pseudo filesystem, a folder it may not write), or
  one it must not replace (anything but a previous run), so a run never
  finishes and then has nowhere to go.
- ``publish`` does the rename, checking again what it replaces (``--out`` may
  have changed while the run went on). When it may not replace it, or the
  rename fails, the finished run is moved to a kept folder that the message
  names: nothing of the user's is deleted and no result is lost.

Paths are made absolute first (``--out .`` names the working directory, which
a relative rename cannot move), resolving every part but the last, so a
symbolic link given as ``--out`` is seen as a link, not as its target.
"""

from __future__ import annotations

__all__ = ["LEDGER_NAME", "check_out_dir", "is_run_dir", "keep_incomplete", "publish"]

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from dlspec_ray.errors import UsageError
from dlspec_ray.results.ledger import LEDGER_NAME
from dlspec_ray.results.summary import SUMMARY_NAME

# Kernel pseudo-filesystems: writing there fails, or worse, means something else.
_PSEUDO = (Path("/proc"), Path("/sys"))
_LISTED = 5


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder dlspec-ray wrote: it holds a summary.json or a ledger."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in (SUMMARY_NAME, LEDGER_NAME))


def check_out_dir(out: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse, before any work starts, an ``--out`` the finished run could not be published to.

    Raises ``UsageError`` (exit code 2) saying what is wrong and what to do.
    Writing is probed by creating (and removing) a folder where the staging
    folder will go, which also catches what permission bits do not say (root on
    a read-only mount, an ACL, a full quota of inodes).
    """
    target = _absolute(out)
    try:
        problem = _refusal(target, overwrite) or _unwritable(target)
    except OSError as exc:
        problem = f"cannot inspect it ({exc.strerror or exc}); choose another --out"
    if problem:
        raise UsageError(f"--out {out}: {problem}")


def publish(staging: str | os.PathLike[str], out: str | os.PathLike[str], overwrite: bool) -> None:
    """Rename the finished run ``staging`` to ``out``, replacing nothing but a previous run.

    A previous run is only removed once the new one is in place. If ``out`` may
    no longer be replaced, or the rename fails, ``staging`` is renamed to a
    kept folder beside ``out`` (which a caller cleaning up its staging folder
    will not find) and ``UsageError`` names it.
    """
    staging, target = _absolute(staging), _absolute(out)
    problem = _refusal(target, overwrite)
    if problem:
        raise UsageError(f"--out {out}: {problem}; {_keep(staging, target)}")
    trash = None
    try:
        if _holds_files(target):
            trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
            target.rename(trash)
        staging.rename(target)  # an empty folder is replaced by the rename itself
    except OSError as exc:
        restored = ""
        if trash is not None:
            try:
                trash.rename(target)
            except OSError:
                restored = f"; the previous run is at {trash}"
        raise UsageError(
            f"--out {out}: cannot move the finished run into place ({exc.strerror or exc}); "
            f"{_keep(staging, target)}{restored}"
        ) from None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def keep_incomplete(staging: Path, out: Path) -> Path:
    """Where an interrupted run's staging folder is kept: renamed to ``out`` when that is
    free (``runs`` lists it there, and ``--resume OUT`` finds it), else left where it is."""
    if out.parent == staging.parent and not out.exists() and not out.is_symlink():
        staging.rename(out)
        return out
    return staging


def _absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with its parent resolved; ``.``, ``..`` and ``/`` fully resolved."""
    full = Path(os.path.expanduser(path)).absolute()
    if full.name in ("", ".."):
        return full.resolve()
    return full.parent.resolve() / full.name


def _refusal(target: Path, overwrite: bool) -> str | None:
    """Why the run may not be renamed to ``target``, or None when it may."""
    if target.is_symlink():
        return (
            f"is a symbolic link (to {os.readlink(target)}); a run is renamed into place, which "
            "would replace the link, not the folder it points to: give that folder instead"
        )
    if target.exists() and not target.is_dir():
        return "exists and is not a directory; choose another --out"
    if target.is_dir() and os.path.ismount(target):
        return (
            "is a mount point, and a run is built beside --out and renamed into place, which "
            f"a mount point cannot be; choose a folder inside it, such as --out {target / 'run'}"
        )
    if _holds_cwd(target):
        return (
            f"is the working directory ({Path.cwd()}) or a folder above it; a run is renamed "
            "into place, and replacing the folder a shell is in would leave that shell in a "
            "deleted folder; choose a folder inside it, such as --out ./run"
        )
    if not _holds_files(target):
        return None
    if not overwrite:
        return (
            "the directory already holds files; choose another --out, or pass --overwrite to "
            "replace it (only a previous dlspec-ray run is replaced)"
        )
    if not is_run_dir(target):
        return (
            f"--overwrite replaces only a dlspec-ray run directory (one with {SUMMARY_NAME} or "
            f"{LEDGER_NAME}); {target} holds other files: {_listing(target)}; "
            "choose another --out"
        )
    return None


def _unwritable(target: Path) -> str | None:
    """Why no staging folder can be made beside ``target``, or None when one can."""
    base = target.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        return f"{base} is a file, so no folder can be made under it; choose another --out"
    pseudo = next((p for p in _PSEUDO if base == p or p in base.parents), None)
    if pseudo is not None:
        return f"is inside {pseudo}, a kernel pseudo-filesystem; choose a folder on a disk"
    if os.statvfs(base).f_flag & os.ST_RDONLY:
        return f"{base} is on a read-only filesystem; choose a folder you can write to"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=base))
    except OSError as exc:
        return f"cannot create a folder in {base} ({exc.strerror}); choose a writable folder"
    return None


def _holds_cwd(target: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working directory was deleted: it is in no one's way
        return False
    return target == cwd or target in cwd.parents


def _holds_files(target: Path) -> bool:
    return target.is_dir() and any(target.iterdir())


def _listing(folder: Path) -> str:
    """The first few entries of ``folder``, folders marked with a slash."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    names = [p.name + ("/" if p.is_dir() else "") for p in entries[:_LISTED]]
    return ", ".join(names) + (", ..." if len(entries) > _LISTED else "")


def _keep(staging: Path, target: Path) -> str:
    """Move ``staging`` to a kept folder beside ``target``; says where the run is now."""
    run_id = staging.name.rpartition(".partial-")[2] if ".partial-" in staging.name else ""
    kept = target.parent / f"{target.name}.kept-{run_id or uuid.uuid4().hex[:12]}"
    try:
        staging.rename(kept)
    except OSError:
        return f"the finished run was left at {staging}"
    return f"the finished run is kept at {kept}"

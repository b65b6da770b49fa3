"""Cross-references: every manifest a reference log or a sweep names must be there.

A file can be valid on its own and still name a manifest that does not exist: a
reference log made with ``litert-cpuu@1.0.0``, a sweep crossing ``mnist-9``. The
run would refuse it much later, after loading everything else; ``dlspec-ray
validate`` finds it now, with the file, the field, and the nearest manifest the
catalog has.

Each name given in a file is a ``Ref``; ``check_refs`` resolves them in a
``Catalog`` as a run would (``name@version``, a UUID, a bare name for its latest
version, a manifest file's path) and, for sweeps, as a sweep's plan does (a glob
over names, or over files relative to the sweep's folder). Pure: no Ray, no
import of the sweeps package (the caller lists a sweep's patterns with
``pattern_refs``).
"""

from __future__ import annotations

__all__ = ["Ref", "check_refs", "pattern_refs", "reference_refs", "unresolved"]

import difflib
import fnmatch
import glob
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dlspec_ray.errors import DLSpecError, Problem
from dlspec_ray.spec.catalog import Catalog, UnknownManifest
from dlspec_ray.spec.loader import MANIFEST_SUFFIXES, read_manifest_text
from dlspec_ray.spec.types import ReferenceLog

_GLOB_CHARS = re.compile(r"[*?\[]")
TASK_KINDS = ("model", "dataset", "software", "hardware")
# How alike a name must be to be offered (difflib's ratio): 'litert-cpuu' finds 'litert-cpu',
# not every '-cpu' manifest there is.
NEAR = 0.75


@dataclass(frozen=True)
class Ref:
    """One manifest named in a file: where (file, field, line), of which kind, and how."""

    file: str
    field: str
    kind: str
    ref: str
    line: int | None = None
    # A sweep's folder: where its relative paths and file globs resolve. None: no globs.
    base_dir: Path | None = None


def reference_refs(log: ReferenceLog) -> list[Ref]:
    """The four manifests a reference log says it was made with (software, hardware optional)."""
    file = str(log.path) if log.path else "<reference>"
    refs = []
    for kind in TASK_KINDS:
        value = getattr(log.task, kind)
        if value:
            line = _line_of(log.path, kind, value) if log.path else None
            refs.append(Ref(file, f"task.{kind}", kind, value, line))
    return refs


def pattern_refs(
    file: str, key: str, kind: str, patterns: Sequence[str], base_dir: Path
) -> list[Ref]:
    """A sweep's list ``key`` of refs, paths or globs for manifests of ``kind``."""
    path = Path(file)
    return [
        Ref(file, f"{key}[{i}]", kind, pattern, _line_of(path, key, pattern), base_dir)
        for i, pattern in enumerate(patterns)
    ]


def check_refs(refs: Iterable[Ref], catalog: Catalog) -> list[Problem]:
    """A problem for each ref that names no manifest (or a broken or ambiguous one)."""
    problems = []
    for ref in refs:
        message = unresolved(ref, catalog)
        if message is not None:
            problems.append(Problem(ref.file, ref.field, message, ref.line))
    return problems


def unresolved(ref: Ref, catalog: Catalog) -> str | None:
    """Why ``ref`` does not resolve in ``catalog``, or None when it names a manifest."""
    text = ref.ref.strip()
    if ref.base_dir is not None and _looks_like_file(text):
        return _unresolved_files(ref, text, catalog)
    if ref.base_dir is not None and _GLOB_CHARS.search(text):
        return _unresolved_glob(ref, text, catalog)
    return _unresolved_one(text, ref.kind, catalog)


def _unresolved_one(text: str, kind: str, catalog: Catalog) -> str | None:
    if not _looks_like_file(text) and not _indexed(text, catalog):
        return _not_found(text, kind, catalog)
    try:
        catalog.resolve(text, kind)
    except UnknownManifest as error:
        return str(error)  # the catalog's own: what was searched, and the nearest refs
    except DLSpecError as error:
        # The manifest is there but does not load (or is ambiguous): say which and why.
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"{text!r} names a {kind} manifest that cannot be used: {first}"
    return None


def _indexed(text: str, catalog: Catalog) -> bool:
    """Whether any manifest, of any kind, has ``text`` as its id, ``name@version`` or name."""
    lowered = text.lower()
    return any(text in (h.ref, h.name) or lowered == h.id for h in catalog.headers)


def _not_found(text: str, kind: str, catalog: Catalog) -> str:
    """No manifest is called ``text``: the nearest of the kind, else the known ones."""
    known = sorted({h.ref if "@" in text else h.name for h in catalog.headers if h.kind == kind})
    close = difflib.get_close_matches(text, known, n=3, cutoff=NEAR)
    roots = [str(r) for r in catalog.roots]
    searched = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
    message = f"no {kind} manifest matches {text!r} (searched: {searched or 'no folders'})"
    if close:
        return message + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if known and len(known) <= 10:
        return f"{message}; known {kind} manifests: {', '.join(known)}"
    return message


def _looks_like_file(text: str) -> bool:
    return "/" in text or text.endswith(MANIFEST_SUFFIXES)


def _unresolved_glob(ref: Ref, pattern: str, catalog: Catalog) -> str | None:
    headers = [h for h in catalog.headers if h.kind == ref.kind]
    if any(
        fnmatch.fnmatchcase(h.name, pattern) or fnmatch.fnmatchcase(h.ref, pattern) for h in headers
    ):
        return None
    names = sorted({h.name for h in headers})
    message = f"{pattern!r} matches no {ref.kind} manifest"
    close = difflib.get_close_matches(_GLOB_CHARS.sub("", pattern), names, n=3, cutoff=NEAR)
    if close:
        return message + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if names and len(names) <= 10:
        return f"{message}; known {ref.kind} manifests: {', '.join(names)}"
    return message


def _unresolved_files(ref: Ref, pattern: str, catalog: Catalog) -> str | None:
    assert ref.base_dir is not None
    full = pattern if Path(pattern).is_absolute() else str(ref.base_dir / pattern)
    paths = sorted(glob.glob(full)) if _GLOB_CHARS.search(pattern) else [full]
    if not paths or not Path(paths[0]).exists():
        return f"{pattern!r} matches no file (relative to {ref.base_dir})"
    for path in paths:
        message = _unresolved_one(path, ref.kind, catalog)
        if message is not None:
            return message
    return None


def _line_of(path: Path | None, key: str, value: str) -> int | None:
    """The line of ``key: value`` (or of ``value`` in the list under ``key``), if it is found."""
    if path is None:
        return None
    text, _problems = read_manifest_text(Path(path))
    if text is None:
        return None
    lines = text.splitlines()
    key_line = re.compile(rf"^\s*{re.escape(key)}\s*:")
    for number, line in enumerate(lines, 1):
        if not key_line.match(line):
            continue
        if value in line:
            return number
        for later, item in enumerate(lines[number:], number + 1):
            if item.strip() and not item.startswith((" ", "\t", "-")):
                break  # the next top-level key: the value is not under this one
            if value in item:
                return later
    return None

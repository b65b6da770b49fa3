"""Finding manifests by path, id, ``name@version`` or bare name.

A catalog indexes its roots once: of each file it reads only the header (kind,
id, name, version), under the loader's size, nesting and alias limits, and it
loads and validates a whole manifest only when a lookup needs it. A file whose
header cannot be read is a problem of the catalog, reported once on stderr as
a warning; it never breaks a lookup of another manifest. A ref that matches
nothing says that a broken file may be the one meant.
"""

from __future__ import annotations

__all__ = ["MANIFEST_PATH_ENV", "SHIPPED_MANIFESTS", "Catalog", "UnknownManifest"]

import difflib
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from dlspec_ray.errors import DLSpecError, Problem, UsageError
from dlspec_ray.spec.loader import (
    MANIFEST_SUFFIXES,
    ManifestHeader,
    duplicate_id_problem,
    find_manifest_files,
    load_manifest,
    read_header,
)
from dlspec_ray.spec.types import KINDS, Manifest
from dlspec_ray.spec.versions import is_semver, semver_key

MANIFEST_PATH_ENV = "DLSPEC_RAY_MANIFEST_PATH"
# The manifests dlspec-ray ships: a link to the repository's manifests/, copies in a wheel.
SHIPPED_MANIFESTS = Path(__file__).resolve().parents[1] / "examples" / "manifests"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# What this process has already warned about, so each broken file is reported once.
_WARNED: set[str] = set()


class UnknownManifest(DLSpecError):
    """A manifest ref names no manifest of the wanted kind, or more than one."""


def _warn(problem: Problem, skipped: bool = True) -> None:
    text = f"{problem} (skipped: this file is not used)" if skipped else str(problem)
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"dlspec-ray: warning: {text}", file=sys.stderr)


class Catalog:
    """The manifests under some root folders, indexed by id and ``name@version``."""

    def __init__(self, roots: Sequence[str | Path], *, fallback: bool = False):
        self.roots: tuple[Path, ...] = tuple(_unique_paths(roots))
        # Whether a ref no root holds may resolve to a manifest dlspec-ray ships.
        self.fallback = fallback
        headers, problems = _index(self.roots)
        self.headers: tuple[ManifestHeader, ...] = tuple(headers)
        self._by_id: dict[str, list[ManifestHeader]] = defaultdict(list)
        self._by_ref: dict[tuple[str, str], list[ManifestHeader]] = defaultdict(list)
        for header in headers:
            self._by_id[header.id].append(header)
            self._by_ref[(header.kind, header.ref)].append(header)
        self._loaded: dict[Path, Manifest] = {}
        # Files that failed to index or load may hold the manifest a failed lookup meant.
        self._broken: set[str] = {p.file for p in problems}
        duplicates = self._duplicates()
        self.problems: tuple[Problem, ...] = (*problems, *duplicates)
        for problem in problems:
            _warn(problem)
        for problem in duplicates:
            _warn(problem, skipped=False)

    @classmethod
    def shipped(cls) -> Catalog | None:
        """The manifests dlspec-ray ships (``dlspec_ray/examples``), or None without them."""
        return cls([SHIPPED_MANIFESTS]) if SHIPPED_MANIFESTS.is_dir() else None

    @classmethod
    def default(cls, extra_roots: Iterable[str | Path] = ()) -> Catalog:
        """``./manifests`` (if present), the folders in $DLSPEC_RAY_MANIFEST_PATH, then extras;
        a ref none of them holds resolves to the manifest dlspec-ray ships, if any, so a
        pip-installed tool runs the shipped tasks from any folder."""
        roots: list[Path] = []
        local = Path.cwd() / "manifests"
        if local.is_dir():
            roots.append(local)
        roots += [Path(p) for p in os.environ.get(MANIFEST_PATH_ENV, "").split(os.pathsep) if p]
        roots += [Path(p) for p in extra_roots]
        return cls(roots, fallback=True)

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        """Every valid manifest under the roots (each loaded now if not yet); broken ones warn."""
        return tuple(self._load_all(self.headers))

    def of_kind(self, kind: str) -> list[Manifest]:
        """Every valid manifest of ``kind``; a broken one is skipped with a warning."""
        return self._load_all([h for h in self.headers if h.kind == kind])

    def resolve(self, ref: str | Path, kind: str) -> Manifest:
        """The one manifest of ``kind`` that ``ref`` names.

        ``ref`` is a path to a manifest file (loaded even outside the roots), a
        UUID, ``name@version``, or a bare name (its highest semver version).
        """
        if kind not in KINDS:
            raise UsageError(f"expected a kind in {', '.join(KINDS)}, got {kind!r}")
        text = str(ref).strip()
        if _looks_like_path(text):
            return self._load_file(Path(text), kind)
        if _UUID.fullmatch(text):
            candidates = self._by_id.get(text.lower(), [])
        elif "@" in text:
            candidates = [h for k in KINDS for h in self._by_ref.get((k, text), [])]
        else:
            candidates = self._latest(text, kind)
        if not candidates and self.fallback:
            # A ref no root holds: the shipped manifest of that ref, if there is one.
            shipped = Catalog.shipped()
            if shipped is not None and shipped.holds(text, kind):
                return shipped.resolve(text, kind)
        return self._load(self._pick(text, kind, candidates))

    def holds(self, ref: str, kind: str) -> bool:
        """Whether a ``name@version``, bare name or id of ``kind`` is under the roots."""
        text = ref.strip()
        if _UUID.fullmatch(text):
            return any(h.kind == kind for h in self._by_id.get(text.lower(), []))
        if "@" in text:
            return bool(self._by_ref.get((kind, text)))
        return bool(self._latest(text, kind))

    def _load(self, header: ManifestHeader) -> Manifest:
        """The whole manifest ``header`` indexes; ManifestError if it does not validate."""
        self._check_unique_id(header)
        if header.path not in self._loaded:
            try:
                self._loaded[header.path] = load_manifest(header.file)
            except DLSpecError:
                self._broken.add(header.file)
                raise
        return self._loaded[header.path]

    def _load_all(self, headers: Iterable[ManifestHeader]) -> list[Manifest]:
        loaded = []
        for header in headers:
            try:
                loaded.append(self._load(header))
            except DLSpecError as error:
                problems = getattr(error, "problems", None) or [
                    Problem(header.file, "", str(error))
                ]
                for problem in problems:
                    _warn(problem)
        return loaded

    def _check_unique_id(self, header: ManifestHeader) -> None:
        for other in self._by_id[header.id]:
            if other.digest != header.digest:
                first, second = sorted((header.file, other.file))
                raise UsageError(
                    f"{second}: id: {first} has the same id {header.id} with different "
                    "content, so which one is meant is ambiguous; give one of them a new id"
                )

    def _latest(self, name: str, kind: str) -> list[ManifestHeader]:
        named = [h for h in self.headers if h.name == name]
        same_kind = [h for h in named if h.kind == kind]
        if not same_kind:
            return named  # empty, or of another kind: _pick explains
        newest = max(semver_key(h.version) for h in same_kind)
        return [h for h in same_kind if semver_key(h.version) == newest]

    def _pick(self, ref: str, kind: str, candidates: list[ManifestHeader]) -> ManifestHeader:
        matching = [h for h in candidates if h.kind == kind]
        # Identical copies of one file (same id, same text) are one manifest.
        distinct: dict[tuple[str, str], ManifestHeader] = {}
        for header in matching:
            distinct.setdefault((header.id, header.digest), header)
        if len(distinct) == 1:
            return matching[0]
        for header in distinct.values():
            self._check_unique_id(header)  # one id, two contents: UsageError naming both
        if distinct:
            files = ", ".join(h.file for h in distinct.values())
            raise UnknownManifest(
                f"{ref!r} names more than one {kind} manifest ({files}); "
                "give each a distinct id and name@version"
            )
        if candidates:
            other = candidates[0]
            raise UnknownManifest(
                f"expected a {kind} manifest, got {other.kind}: {ref!r} is {other.path}"
            )
        raise UnknownManifest(self._not_found(ref, kind))

    def _not_found(self, ref: str, kind: str) -> str:
        searched = ", ".join(str(r) for r in self.roots) or "no folders"
        message = f"no {kind} manifest matches {ref!r} (searched: {searched})"
        known = sorted({h.ref for h in self.headers if h.kind == kind})
        close = difflib.get_close_matches(ref, known, n=3, cutoff=0.6)
        if close:
            message += "; did you mean " + " or ".join(f"{c!r}" for c in close) + "?"
        elif known and len(known) <= 10:
            message += f"; known {kind} manifests: {', '.join(known)}"
        if not self.roots:
            message += (
                f"\nno manifest folders: pass a path to the file, run from a folder with a "
                f"manifests/ folder, or set {MANIFEST_PATH_ENV}"
            )
        if self._broken:
            where = " ".join(str(r) for r in self.roots)
            message += (
                f"\n{len(self._broken)} file(s) under the roots failed validation and may be "
                f"the one meant; run `dlspec-ray validate {where}` to see why"
            )
        return message

    def _load_file(self, path: Path, kind: str) -> Manifest:
        if not path.is_file():
            raise UnknownManifest(f"no {kind} manifest file at {str(path)!r}: no such file")
        manifest = load_manifest(path)
        if manifest.kind != kind:
            raise UnknownManifest(f"expected a {kind} manifest, got {manifest.kind}: {str(path)!r}")
        for header in self._by_id.get(manifest.id, []):
            if header.path == path.resolve():
                self._check_unique_id(header)
        return manifest

    def _duplicates(self) -> list[Problem]:
        """Ids with two contents, and name@version refs with two ids: problems of the later file."""
        problems = []
        for group in self._by_id.values():
            first = group[0]
            for other in group[1:]:
                if other.digest != first.digest:
                    problems.append(
                        duplicate_id_problem(other.file, other.id_line, other.id, first.file)
                    )
        for group in self._by_ref.values():
            first = group[0]
            for other in group[1:]:
                if other.id != first.id:
                    problems.append(
                        Problem(
                            other.file,
                            "version",
                            f"duplicate name@version {first.kind} {first.ref}: {first.file} has "
                            "it too, with another id; give each manifest its own",
                        )
                    )
        return problems


def _index(roots: Sequence[Path]) -> tuple[list[ManifestHeader], list[Problem]]:
    """The headers of every manifest file under ``roots``, each file once, and what failed."""
    headers: list[ManifestHeader] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            problems.append(Problem(str(root), "", "no such file or directory"))
            continue
        for file in find_manifest_files(root):
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            header, found = read_header(file)
            problems.extend(found)
            if header is not None:
                headers.append(header)
    return headers, problems


def _looks_like_path(text: str) -> bool:
    if Path(text).is_file():
        return True
    _name, at, version = text.partition("@")
    if at and is_semver(version):
        return False
    return "/" in text or os.sep in text or text.endswith(MANIFEST_SUFFIXES)


def _unique_paths(paths: Iterable[str | Path]) -> list[Path]:
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(Path(path).resolve(), Path(path))
    return list(unique.values())

"""Finding manifests by path, id, ``name@version`` or bare name.

A catalog reads every manifest under its roots once. Files that fail
validation are kept as problems rather than skipped silently, so a ref that
matches nothing can say that a broken file may be the one meant.
"""

from __future__ import annotations

__all__ = ["MANIFEST_PATH_ENV", "Catalog", "UnknownManifest"]

import difflib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from dlspec_ray.errors import DLSpecError, Problem, UsageError
from dlspec_ray.spec.loader import MANIFEST_SUFFIXES, load_manifest, validate_paths
from dlspec_ray.spec.types import KINDS, Manifest
from dlspec_ray.spec.versions import is_semver, semver_key

MANIFEST_PATH_ENV = "DLSPEC_RAY_MANIFEST_PATH"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class UnknownManifest(DLSpecError):
    """A manifest ref names no manifest of the wanted kind, or more than one."""


class Catalog:
    """The manifests under some root folders, indexed by id and ``name@version``."""

    def __init__(self, roots: Sequence[str | Path]):
        self.roots: tuple[Path, ...] = tuple(_unique_paths(roots))
        manifests, problems = validate_paths(self.roots)
        self.manifests: tuple[Manifest, ...] = tuple(manifests)
        self._by_id: dict[str, list[Manifest]] = defaultdict(list)
        self._by_ref: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
        for manifest in manifests:
            self._by_id[manifest.id].append(manifest)
            self._by_ref[(manifest.kind, manifest.ref)].append(manifest)
        # Files that failed validation may hold the manifest a failed lookup meant.
        self._broken = sorted({p.file for p in problems})
        self.problems: tuple[Problem, ...] = (*problems, *self._duplicates())

    @classmethod
    def default(cls, extra_roots: Iterable[str | Path] = ()) -> Catalog:
        """``./manifests`` (if present), the folders in $DLSPEC_RAY_MANIFEST_PATH, then extras."""
        roots: list[Path] = []
        local = Path.cwd() / "manifests"
        if local.is_dir():
            roots.append(local)
        roots += [Path(p) for p in os.environ.get(MANIFEST_PATH_ENV, "").split(os.pathsep) if p]
        roots += [Path(p) for p in extra_roots]
        return cls(roots)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

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
            candidates = [m for k in KINDS for m in self._by_ref.get((k, text), [])]
        else:
            candidates = self._latest(text, kind)
        return self._pick(text, kind, candidates)

    def _latest(self, name: str, kind: str) -> list[Manifest]:
        named = [m for m in self.manifests if m.name == name]
        same_kind = [m for m in named if m.kind == kind]
        if not same_kind:
            return named  # empty, or of another kind: _pick explains
        newest = max(semver_key(m.version) for m in same_kind)
        return [m for m in same_kind if semver_key(m.version) == newest]

    def _pick(self, ref: str, kind: str, candidates: list[Manifest]) -> Manifest:
        matching = [m for m in candidates if m.kind == kind]
        if len(matching) == 1:
            return matching[0]
        if len(matching) > 1:
            files = ", ".join(str(m.path) for m in matching)
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
        known = sorted(m.ref for m in self.of_kind(kind))
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
        return manifest

    def _duplicates(self) -> list[Problem]:
        problems = []
        groups = [("id", ms) for ms in self._by_id.values()]
        groups += [("name@version", ms) for ms in self._by_ref.values()]
        for what, group in groups:
            first = group[0]
            for other in group[1:]:
                value = first.id if what == "id" else f"{first.kind} {first.ref}"
                problems.append(
                    Problem(
                        str(other.path),
                        "id" if what == "id" else "version",
                        f"duplicate {what} {value}: {first.path} has it too; "
                        "give each manifest its own",
                    )
                )
        return problems


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

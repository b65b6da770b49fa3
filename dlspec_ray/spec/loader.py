"""Reading manifest files into typed manifests, reporting every problem at once.

Reading is bounded: a file larger than ``max_manifest_bytes()`` is refused before
it is parsed, and the YAML layer (``yaml_lines``) refuses deep nesting and alias
bombs while composing, so no manifest can make dlspec-ray run out of memory or
time.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_MANIFEST_BYTES",
    "MANIFEST_SUFFIXES",
    "MAX_MANIFEST_BYTES_ENV",
    "find_manifest_files",
    "load_manifest",
    "load_manifest_text",
    "max_manifest_bytes",
    "validate_paths",
]

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode

from dlspec_ray.errors import ManifestError, Problem, UsageError
from dlspec_ray.spec.sizes import parse_byte_size
from dlspec_ray.spec.types import KINDS, Manifest
from dlspec_ray.spec.validate import validate_data
from dlspec_ray.spec.versions import is_semver
from dlspec_ray.spec.yaml_lines import compose_yaml, parse_yaml

MANIFEST_SUFFIXES = (".yaml", ".yml")
MAX_MANIFEST_BYTES_ENV = "DLSPEC_RAY_MAX_MANIFEST_BYTES"
DEFAULT_MAX_MANIFEST_BYTES = 1 << 20  # 1 MiB: the largest shipped manifest is a few KiB

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID_LINE = re.compile(r"^id\s*:", re.MULTILINE)

# Every lookup builds a catalog; parsing and compiling a manifest costs
# milliseconds, reading it microseconds. So checked files are remembered by their
# path and the digest of their text: a changed file is checked anew.
_CHECKED: dict[tuple[str, Path, str], tuple[Manifest | None, tuple[Problem, ...]]] = {}
_HEADERS: dict[tuple[str, Path, str], tuple[ManifestHeader | None, tuple[Problem, ...]]] = {}
_CACHE_MAX = 4096


def max_manifest_bytes() -> int:
    """The largest manifest file accepted: $DLSPEC_RAY_MAX_MANIFEST_BYTES, else 1 MiB."""
    value = os.environ.get(MAX_MANIFEST_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_MANIFEST_BYTES
    try:
        limit = parse_byte_size(value)
    except ValueError as error:
        raise UsageError(f"${MAX_MANIFEST_BYTES_ENV}: {error}; unset it for 1MiB") from None
    if limit < 1:
        raise UsageError(
            f"${MAX_MANIFEST_BYTES_ENV}: expected at least 1 byte, got {value!r}; unset it for 1MiB"
        )
    return limit


def _too_large(file: str, size: int, limit: int) -> Problem:
    return Problem(
        file,
        "",
        f"refused: the file is {size} bytes, over the {limit}-byte limit for a manifest; "
        f"move large data into a source artifact, or raise ${MAX_MANIFEST_BYTES_ENV}",
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_manifest_text(path: Path) -> tuple[str | None, list[Problem]]:
    """The UTF-8 text of ``path``, or None and why: unreadable, undecodable or too large."""
    file = str(path)
    limit = max_manifest_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            return None, [_too_large(file, size, limit)]
        with path.open("rb") as stream:
            raw = stream.read(limit + 1)  # the size may have changed, or lied (a pipe)
    except OSError as error:
        return None, [Problem(file, "", f"cannot read the file: {error.strerror or error}")]
    if len(raw) > limit:
        return None, [_too_large(file, len(raw), limit)]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as error:
        return None, [Problem(file, "", f"expected UTF-8 text, got undecodable bytes: {error}")]


def _check_text(
    text: str, file: str, base_dir: Path, path: Path | None
) -> tuple[Manifest | None, list[Problem]]:
    size = len(text.encode("utf-8", "surrogatepass"))
    limit = max_manifest_bytes()
    if size > limit:
        return None, [_too_large(file, size, limit)]
    data, problems = parse_yaml(text, file)
    if problems:
        return None, problems
    return validate_data(data, file=file, base_dir=base_dir, path=path)


def _remember(cache: dict, key, value):
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _check_file(path: Path) -> tuple[Manifest | None, list[Problem], str | None]:
    """The manifest at ``path`` (or None), its problems, and the digest of its text."""
    file = str(path)
    text, problems = read_manifest_text(path)
    if text is None:
        return None, problems, None
    resolved = path.resolve()
    digest = _digest(text)
    key = (file, resolved, digest)
    if key not in _CHECKED:
        manifest, found = _check_text(text, file, resolved.parent, resolved)
        _remember(_CHECKED, key, (manifest, tuple(found)))
    manifest, found = _CHECKED[key]
    return manifest, list(found), digest


def load_manifest(path: str | Path) -> Manifest:
    """The manifest in the YAML file at ``path``; ManifestError lists every problem."""
    manifest, problems, _ = _check_file(Path(path))
    if manifest is None:
        raise ManifestError(problems)
    return manifest


def load_manifest_text(text: str, file: str = "<string>", base_dir: Path | None = None) -> Manifest:
    """The manifest in YAML ``text``; relative sources resolve against ``base_dir`` (or cwd)."""
    folder = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    manifest, problems = _check_text(text, file, folder, None)
    if manifest is None:
        raise ManifestError(problems)
    return manifest


@dataclass(frozen=True)
class ManifestHeader:
    """What a catalog indexes of one file: its kind, id, name and version, and no more.

    ``digest`` is the SHA-256 of the file's text, so two files with one id can be
    told apart from two copies of one file.
    """

    kind: str
    id: str
    name: str
    version: str
    path: Path
    file: str
    digest: str
    id_line: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def read_header(path: Path) -> tuple[ManifestHeader | None, list[Problem]]:
    """The header of the manifest file at ``path``, without validating the rest.

    The file is composed (not constructed, not compiled) under the same size,
    depth and alias limits as a full load.
    """
    file = str(path)
    text, problems = read_manifest_text(path)
    if text is None:
        return None, problems
    resolved = path.resolve()
    key = (file, resolved, _digest(text))
    if key not in _HEADERS:
        header, found = _header_of(text, file, resolved, key[2])
        _remember(_HEADERS, key, (header, tuple(found)))
    header, found = _HEADERS[key]
    return header, list(found)


def _header_of(
    text: str, file: str, path: Path, digest: str
) -> tuple[ManifestHeader | None, list[Problem]]:
    node, problems = compose_yaml(text, file)
    if problems:
        return None, problems
    if not isinstance(node, MappingNode):
        line = node.start_mark.line + 1 if node is not None else None
        return None, [
            Problem(file, "", "expected a mapping with kind, id, name and version at the top", line)
        ]
    found: dict[str, tuple[str | None, int]] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value in ("kind", "id", "name", "version"):
            is_text = isinstance(value_node, ScalarNode) and value_node.tag.endswith(":str")
            found[key_node.value] = (
                value_node.value if is_text else None,
                key_node.start_mark.line + 1,
            )
    problems = []
    wants = {
        "kind": (lambda v: v in KINDS, f"one of {', '.join(KINDS)}"),
        "id": (lambda v: _UUID.fullmatch(v) is not None, "a UUID such as 8e3f9d81-4c50-..."),
        "name": (lambda v: bool(v.strip()), "a non-empty string"),
        "version": (is_semver, 'a quoted semantic version such as "1.0.0"'),
    }
    for key, (ok, what) in wants.items():
        value, line = found.get(key, (None, node.start_mark.line + 1))
        if key not in found:
            problems.append(Problem(file, key, f"missing required key {key!r}", line))
        elif value is None or not ok(value):
            problems.append(Problem(file, key, f"expected {what}", line))
    if problems:
        return None, problems
    return (
        ManifestHeader(
            kind=found["kind"][0],
            id=found["id"][0].lower(),
            name=found["name"][0],
            version=found["version"][0],
            path=path,
            file=file,
            digest=digest,
            id_line=found["id"][1],
        ),
        [],
    )


def duplicate_id_problem(file: str, line: int | None, id_: str, other: str) -> Problem:
    return Problem(
        file,
        "id",
        f"duplicate id {id_}: {other} has it too, with different content; "
        "give one of them a new id (identical copies are fine)",
        line,
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_manifest_files(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else every *.yaml/*.yml below it, sorted.

    Hidden files and folders (``.git``, editor backups) are skipped.
    """
    if not path.is_dir():
        return [path]
    found = (
        p
        for suffix in MANIFEST_SUFFIXES
        for p in path.rglob(f"*{suffix}")
        if p.is_file() and not _hidden(p, path)
    )
    return sorted(found)


def validate_paths(paths: Iterable[str | Path]) -> tuple[list[Manifest], list[Problem]]:
    """Load every manifest file at or under ``paths``; collect every problem of every file.

    A path that does not exist is a problem too, so a typo in a search path is
    not mistaken for an empty folder. Two files with one id and different
    content are a problem of the second; identical copies are not.
    """
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    first_of_id: dict[str, tuple[Manifest, str]] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            problems.append(Problem(str(path), "", "no such file or directory"))
            continue
        for file in find_manifest_files(path):
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            manifest, found, digest = _check_file(file)
            problems.extend(found)
            if manifest is None:
                continue
            manifests.append(manifest)
            first, first_digest = first_of_id.setdefault(manifest.id, (manifest, digest))
            if first_digest != digest:
                problems.append(
                    duplicate_id_problem(str(file), _id_line(file), manifest.id, str(first.path))
                )
    return manifests, problems


def _id_line(path: Path) -> int | None:
    text, _problems = read_manifest_text(path)
    match = _ID_LINE.search(text or "")
    return text.count("\n", 0, match.start()) + 1 if match else None

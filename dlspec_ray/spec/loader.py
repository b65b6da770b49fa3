"""Reading manifest files into typed manifests, reporting every problem at once."""

from __future__ import annotations

__all__ = [
    "MANIFEST_SUFFIXES",
    "find_manifest_files",
    "load_manifest",
    "load_manifest_text",
    "validate_paths",
]

from collections.abc import Iterable
from pathlib import Path

from dlspec_ray.errors import ManifestError, Problem
from dlspec_ray.spec.types import Manifest
from dlspec_ray.spec.validate import validate_data
from dlspec_ray.spec.yaml_lines import parse_yaml

MANIFEST_SUFFIXES = (".yaml", ".yml")

# Every lookup builds a catalog, which checks every file under its roots; parsing
# and compiling a manifest costs milliseconds, reading it microseconds. So checked
# files are remembered by their path and exact text: a changed file is checked anew.
_CHECKED: dict[tuple[str, Path, str], tuple[Manifest | None, tuple[Problem, ...]]] = {}
_CHECKED_MAX = 4096


def _check_text(
    text: str, file: str, base_dir: Path, path: Path | None
) -> tuple[Manifest | None, list[Problem]]:
    data, problems = parse_yaml(text, file)
    if problems:
        return None, problems
    return validate_data(data, file=file, base_dir=base_dir, path=path)


def _check_file(path: Path) -> tuple[Manifest | None, list[Problem]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return None, [Problem(file, "", f"expected UTF-8 text, got undecodable bytes: {error}")]
    except OSError as error:
        return None, [Problem(file, "", f"cannot read the file: {error.strerror or error}")]
    resolved = path.resolve()
    key = (file, resolved, text)
    if key not in _CHECKED:
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        manifest, problems = _check_text(text, file, resolved.parent, resolved)
        _CHECKED[key] = (manifest, tuple(problems))
    manifest, problems = _CHECKED[key]
    return manifest, list(problems)


def load_manifest(path: str | Path) -> Manifest:
    """The manifest in the YAML file at ``path``; ManifestError lists every problem."""
    manifest, problems = _check_file(Path(path))
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
    not mistaken for an empty folder.
    """
    manifests: list[Manifest] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            problems.append(Problem(str(path), "", "no such file or directory"))
            continue
        for file in find_manifest_files(path):
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            manifest, found = _check_file(file)
            problems.extend(found)
            if manifest is not None:
                manifests.append(manifest)
    return manifests, problems

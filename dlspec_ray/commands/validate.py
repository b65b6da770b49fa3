"""``dlspec-ray validate PATH...``: check manifest and sweep files, or folders recursively.

Two passes. First each file on its own (its schema, its stage code; a sweep
file's keys). Then, when every file is valid, the cross-references: each
manifest a reference log or a sweep names must be found in the catalog, made of
the files given, ``./manifests``, ``$DLSPEC_RAY_MANIFEST_PATH``, a sweep's own
``manifests:`` folders and ``--roots``. A ref that names nothing is a problem of
its file and field, with the nearest manifest there is
(``dlspec_ray/spec/crossrefs.py``). Cross-references wait for the first pass
because a broken file may be the very manifest a ref means.

A sweep file is a YAML mapping with ``models`` or ``datasets`` and no manifest
``kind`` (or ``kind: sweep``). Exit 0 when everything is valid, 2 otherwise.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "is_sweep_file"]

import argparse
import re
from pathlib import Path
from typing import Any

from dlspec_ray.commands.common import add_json_flag, add_roots_flag, note, print_json

NAME = "validate"
HELP = "check manifest and sweep files or folders, and that the manifests they name exist"

_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$", re.MULTILINE)
SWEEP_LISTS = (
    ("models", "model"),
    ("datasets", "dataset"),
    ("software", "software"),
    ("hardware", "hardware"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest or sweep files, or folders (searched for *.yaml and *.yml)",
    )
    add_roots_flag(
        parser,
        "more manifest folders where references may resolve (after PATHs, ./manifests "
        "and $DLSPEC_RAY_MANIFEST_PATH); put it after the PATHs",
    )
    add_json_flag(parser, "{valid, manifests, sweeps, problems, crossrefs_checked}")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.spec import find_manifest_files, validate_paths

    manifest_paths: list[Path] = []
    sweep_files: list[Path] = []
    roots: list[Path] = []  # where refs resolve: the folders given, less their sweep files
    for given in args.paths:
        path = Path(given)
        if not path.exists():
            manifest_paths.append(path)  # validate_paths says it does not exist
            continue
        files = find_manifest_files(path)
        sweeps_here = [f for f in files if is_sweep_file(f)]
        sweep_files += sweeps_here
        manifest_paths += [f for f in files if f not in sweeps_here]
        roots += [path] if not sweeps_here else [f for f in files if f not in sweeps_here]
    manifests, problems = validate_paths(manifest_paths)
    sweeps, sweep_problems = _load_sweeps(sweep_files)
    problems += sweep_problems
    checked = not problems
    if checked:
        problems += _cross_reference_problems(manifests, sweeps, [*roots, *map(Path, args.roots)])
    if args.json:
        print_json(_record(manifests, sweeps, problems, checked))
    else:
        for problem in problems:
            print(problem)
    if problems:
        files = len({p.file for p in problems})
        note(args, f"{len(problems)} problem(s) in {files} file(s)")
        if not checked:
            note(args, "cross-references were not checked: fix the problems above first")
        return 2
    if not args.json:
        sweeps_valid = f", {len(sweeps)} sweep file(s) valid" if sweeps else ""
        print(f"{len(manifests)} manifest(s) valid{sweeps_valid}; every reference resolves")
    return 0


def is_sweep_file(path: Path) -> bool:
    """Whether ``path`` reads as a sweep file: ``models``/``datasets`` and no manifest kind."""
    from dlspec_ray.spec.loader import read_manifest_text

    text, _problems = read_manifest_text(path)
    if not text:
        return False
    keys = {m.group(1): m.group(2) for m in _TOP_KEY.finditer(text)}
    if "kind" in keys:
        return keys["kind"].split("#")[0].strip().strip("'\"") == "sweep"
    return "models" in keys or "datasets" in keys


def _load_sweeps(files: list[Path]) -> tuple[list[Any], list[Any]]:
    sweeps: list[Any] = []
    problems: list[Any] = []
    if not files:
        return sweeps, problems  # the sweeps package imports pyarrow: only when needed
    from dlspec_ray.errors import ManifestError
    from dlspec_ray.sweeps.spec import load_sweep_spec

    for file in files:
        try:
            sweeps.append(load_sweep_spec(file))
        except ManifestError as error:
            problems += error.problems
    return sweeps, problems


def _cross_reference_problems(
    manifests: list[Any], sweeps: list[Any], given: list[Path]
) -> list[Any]:
    """Refs of the reference logs and sweeps that name nothing in the catalog ``given`` adds to."""
    from dlspec_ray.spec.catalog import Catalog
    from dlspec_ray.spec.crossrefs import check_refs, pattern_refs, reference_refs
    from dlspec_ray.spec.types import ReferenceLog

    catalog = Catalog.default(extra_roots=given)
    refs = [r for m in manifests if isinstance(m, ReferenceLog) for r in reference_refs(m)]
    problems = check_refs(refs, catalog)
    for spec in sweeps:
        own = (
            Catalog.default(extra_roots=[*(spec.base_dir / m for m in spec.manifests), *given])
            if spec.manifests
            else catalog
        )
        sweep_refs = [
            ref
            for key, kind in SWEEP_LISTS
            for ref in pattern_refs(spec.file, key, kind, getattr(spec, key), spec.base_dir)
        ]
        problems += check_refs(sweep_refs, own)
    return problems


def _record(
    manifests: list[Any], sweeps: list[Any], problems: list[Any], checked: bool
) -> dict[str, Any]:
    """What ``validate --json`` prints."""
    return {
        "valid": not problems,
        "manifests": [
            {"file": str(m.path), "kind": m.kind, "ref": m.ref, "id": m.id} for m in manifests
        ],
        "sweeps": [{"file": s.file, "name": s.name} for s in sweeps],
        "problems": [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
            for p in problems
        ],
        "crossrefs_checked": checked,
    }

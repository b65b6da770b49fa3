"""``dlspec-ray manifests [ls]``: the manifests a run can name, by kind, ref and file.

What ``--model NAME@VERSION`` and the other refs resolve against: ``./manifests``,
the folders in ``$DLSPEC_RAY_MANIFEST_PATH`` and ``--roots``, then, for a ref none of
them holds, the manifests dlspec-ray ships: the catalog every command uses. Only each
file's header is read (kind, id, name, version), so a long list is fast; a file whose
header cannot be read is a warning on stderr, and ``dlspec-ray validate`` says the rest.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "listing"]

import argparse
from typing import Any

from dlspec_ray.commands.common import add_json_flag, add_roots_flag, print_json

NAME = "manifests"
HELP = "list the manifests refs resolve to: kind, name@version, id and file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dlspec_ray.spec.types import KINDS

    parser.add_argument(
        "action", nargs="?", default="ls", choices=("ls",), help="what to do (default: ls)"
    )
    parser.add_argument("--kind", choices=KINDS, help="only manifests of this kind")
    add_roots_flag(
        parser,
        "more manifest folders, after ./manifests and $DLSPEC_RAY_MANIFEST_PATH",
    )
    add_json_flag(parser, "a list of {kind, ref, name, version, id, file}")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.spec.catalog import Catalog

    catalog = Catalog.default(extra_roots=args.roots)
    rows = listing(catalog, args.kind)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        where = ", ".join(str(r) for r in catalog.roots) or "no folders"
        what = f"{args.kind} manifests" if args.kind else "manifests"
        print(f"no {what} in {where} (give folders with --roots, or set DLSPEC_RAY_MANIFEST_PATH)")
        return 0
    table = [["kind", "ref", "id", "file"]] + [
        [r["kind"], r["ref"], r["id"], r["file"]] for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    searched = [*catalog.roots, "the manifests dlspec-ray ships"]
    print(f"\n{len(rows)} manifest(s) in {', '.join(map(str, searched))}")
    return 0


def listing(catalog: Any, kind: str | None = None) -> list[dict[str, str]]:
    """The catalog's manifests (of ``kind``, if given), ordered by kind and then ref."""
    from dlspec_ray.spec.types import KINDS

    headers = list(catalog.headers)
    shipped = type(catalog).shipped() if catalog.fallback else None
    if shipped is not None:  # what a ref falls back to where no root holds it
        held = {(h.kind, h.ref) for h in headers}
        headers += [h for h in shipped.headers if (h.kind, h.ref) not in held]
    headers = [h for h in headers if kind is None or h.kind == kind]
    headers.sort(key=lambda h: (KINDS.index(h.kind), h.name, h.version, h.file))
    return [
        {
            "kind": h.kind,
            "ref": h.ref,
            "name": h.name,
            "version": h.version,
            "id": h.id,
            "file": h.file,
        }
        for h in headers
    ]

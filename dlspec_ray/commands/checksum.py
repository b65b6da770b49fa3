"""``dlspec-ray checksum PATH...``: the ``checksum:`` a manifest needs for a file or folder.

A file gets ``sha256:<hex>`` (what ``sha256sum`` computes), a folder its tree
digest ``sha256-tree:<hex>`` (``dlspec_ray.artifacts.checksum.tree_digest``
defines it). One line per path, ``<checksum>  <path>``, as ``sha256sum`` writes
them; ``--quiet`` prints the checksums alone, ``--json`` a list of ``{path, checksum}``.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import os

from dlspec_ray.commands.common import add_json_flag, print_json

NAME = "checksum"
HELP = "print the checksum a manifest needs for a file (sha256:) or a folder (sha256-tree:)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print only the checksums, one per line"
    )
    add_json_flag(parser, "a list of {path, checksum}")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.artifacts import checksum_of
    from dlspec_ray.errors import UsageError

    missing = [path for path in args.paths if not os.path.exists(path)]
    if missing:
        listed = ", ".join(repr(path) for path in missing)
        raise UsageError(
            f"no such file or folder: {listed}; give the path of each file or folder "
            "a manifest's source names (relative to this shell's folder, not the manifest's)."
        )
    if args.json:
        print_json([{"path": path, "checksum": checksum_of(path)} for path in args.paths])
        return 0
    for path in args.paths:
        value = checksum_of(path)
        print(value if args.quiet else f"{value}  {path}", flush=True)
    return 0

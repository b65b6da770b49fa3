"""``dlspec-ray validate PATH...``: check manifest files, or folders recursively."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import sys

NAME = "validate"
HELP = "check manifest files or directories"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.spec import validate_paths

    manifests, problems = validate_paths(args.paths)
    for problem in problems:
        print(problem)
    if problems:
        files = len({p.file for p in problems})
        print(f"{len(problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 2
    print(f"{len(manifests)} manifest(s) valid")
    return 0

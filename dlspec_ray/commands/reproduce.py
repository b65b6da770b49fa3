"""``dlspec-ray reproduce RUN``: rerun a run directory's task and compare it with the original.

Exit 0 when it reproduces (its reference check passes and every sample's top-1 agrees
with the original), 1 when it does not, 2 for bad input.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, environment_name, print_json, quiet

NAME = "reproduce"
HELP = "rerun a run directory's task from its own manifests and compare it with the original"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("run", metavar="RUN", help="a run directory (copied from anywhere) or its URI (s3://...)")
    add("--software", help="vary the software: another software manifest (path or ref)")
    add("--hardware", help="vary the hardware: another hardware manifest (path or ref)")
    add(
        "--environment",
        type=environment_name,
        help="vary the environment kind (inline, process, docker)",
    )
    add("--out", help="where the rerun's directory goes (default runs/<run id>)")
    add("--overwrite", action="store_true", help="replace a previous run at --out")
    add(
        "--trust",
        action="store_true",
        help="run manifest copies that are not in a trusted catalog inline, with your rights",
    )
    add("--roots", nargs="*", default=[], metavar="DIR", help="more manifest folders to look in")
    add("--cache-dir", help="the artifact cache (default DLSPEC_RAY_CACHE or ~/.cache/dlspec-ray)")
    add("--address", help="a Ray cluster to run on (default RAY_ADDRESS, else an embedded Ray)")
    add("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(parser, "the reproduction")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.reproduce import reproduce

    reproduction = reproduce(
        args.run,
        software=args.software,
        hardware=args.hardware,
        environment=args.environment,
        out=args.out,
        overwrite=args.overwrite,
        trust=args.trust,
        progress=not args.no_progress and not args.json and not quiet(args),
        cache_dir=args.cache_dir,
        address=args.address,
        manifest_roots=tuple(args.roots),
    )
    if args.json:
        print_json(reproduction.as_dict())
    else:
        print(reproduction.format(), end="")
    return 0 if reproduction.passed else 1

"""``dlspec-ray compare RUN_A RUN_B``: what changed between two runs, sample by sample.

Runs are folders or object storage URIs (``s3://bucket/runs/a``), or run ids and
labels in ``--root``, which may be a URI too.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, print_json
from dlspec_ray.commands.runs import add_storage_option

NAME = "compare"
HELP = "compare two runs: accuracy, latency, per-sample agreement, output divergence"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "run_a",
        metavar="RUN_A",
        help="a run directory or URI (s3://...), or a run id or label with --root",
    )
    add("run_b", metavar="RUN_B", help="the run to compare with RUN_A")
    add("--root", help="results root (a folder or a URI) where run ids and labels are looked up")
    add(
        "--shared-samples",
        action="store_true",
        help="compare runs of different datasets on the sample ids they share",
    )
    add("--max-listed", type=int, default=10, metavar="N", help="disagreeing samples to list")
    add_json_flag(parser, "the comparison")
    add_storage_option(parser)


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.results.compare import compare_run_dirs
    from dlspec_ray.results.index import find_run
    from dlspec_ray.results.storage import parse_storage_options

    options = parse_storage_options(args.storage_option)
    a = find_run(args.run_a, args.root, storage_options=options)
    b = find_run(args.run_b, args.root, storage_options=options)
    comparison = compare_run_dirs(a, b, shared_samples=args.shared_samples)
    if args.json:
        print_json(comparison.as_dict())
    else:
        print(comparison.format(max_listed=args.max_listed), end="")
    return 0

"""``dlspec-ray compare RUN_A RUN_B``: what changed between two runs, sample by sample."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json

NAME = "compare"
HELP = "compare two runs: accuracy, latency, per-sample agreement, output divergence"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("run_a", metavar="RUN_A", help="a run directory, or a run id or label with --root")
    add("run_b", metavar="RUN_B", help="the run to compare with RUN_A")
    add("--root", help="results root where run ids and labels are looked up")
    add(
        "--shared-samples",
        action="store_true",
        help="compare runs of different datasets on the sample ids they share",
    )
    add("--max-listed", type=int, default=10, metavar="N", help="disagreeing samples to list")
    add("--json", action="store_true", help="print the comparison as JSON")


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlspec_ray.results.compare import compare_run_dirs
    from dlspec_ray.results.index import find_run

    root = Path(args.root) if args.root else None
    a, b = find_run(args.run_a, root), find_run(args.run_b, root)
    comparison = compare_run_dirs(a, b, shared_samples=args.shared_samples)
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2))
    else:
        print(comparison.format(max_listed=args.max_listed), end="")
    return 0

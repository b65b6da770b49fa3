"""``dlspec-ray sweep SWEEP.yaml --out DIR``: run a cross product of tasks and compare them."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json
import sys

from dlspec_ray.errors import EvaluationFailed

NAME = "sweep"
HELP = "run every combination of a sweep file's manifests and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("sweep", metavar="SWEEP.yaml", help="the sweep file (see sweeps/ for examples)")
    add("--out", default="runs", help="results root to write into (default: runs)")
    add("--concurrency", type=int, metavar="N", help="tasks at once (default: the file's)")
    add("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    add(
        "--manifests",
        action="append",
        default=[],
        metavar="DIR",
        help="extra manifest root for name@version lookups; repeatable",
    )
    add("--cache-dir", help="artifact cache (default: DLSPEC_RAY_CACHE, else ~/.cache/dlspec-ray)")
    add("--plan", action="store_true", help="print the tasks and dropped combinations; run nothing")
    add("--no-progress", action="store_true", help="no progress lines on stderr")
    add("--json", action="store_true", help="print sweep.json instead of the table")


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.environments import ENVIRONMENTS
    from dlspec_ray.errors import UsageError
    from dlspec_ray.sweeps import load_sweep_spec, plan_sweep, run_sweep

    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency: expected a positive integer, got {args.concurrency}")
    spec = load_sweep_spec(args.sweep)
    plan = plan_sweep(
        spec, manifest_roots=args.manifests, available_environments=ENVIRONMENTS.names()
    )
    if args.plan:
        print(plan.describe())
        return 0
    result = run_sweep(
        plan,
        args.out,
        concurrency=args.concurrency,
        address=args.address,
        progress=not args.no_progress,
        cache_dir=args.cache_dir,
    )
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        print(result.format())
        print(f"results: {result.out_dir} (index: {args.out}/index.jsonl)")
    bad = [t for t in result.summary["tasks"] if t["status"] != "ok"]
    if bad:
        lines = "\n".join(f"  - {t['label']}: {t['status']}" for t in bad)
        print(f"{len(bad)} task(s) did not pass:\n{lines}", file=sys.stderr)
        raise EvaluationFailed(f"{len(bad)} of {len(result.summary['tasks'])} task(s) did not pass")
    return 0

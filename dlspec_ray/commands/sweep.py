"""``dlspec-ray sweep SWEEP.yaml --out DIR``: run a cross product of tasks and compare them."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "plan_as_dict"]

import argparse
import sys
from typing import Any

from dlspec_ray.commands.common import add_json_flag, note, print_json, quiet
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
    add_json_flag(parser, "sweep.json (with --plan: the plan) instead of the table")


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
        if args.json:
            print_json(plan_as_dict(plan))
        else:
            print(plan.describe())
        return 0
    result = run_sweep(
        plan,
        args.out,
        concurrency=args.concurrency,
        address=args.address,
        progress=not args.no_progress and not quiet(args),
        cache_dir=args.cache_dir,
    )
    if args.json:
        print_json(result.summary)
        note(args, f"results: {result.out_dir} (index: {args.out}/index.jsonl)")
    else:
        print(result.format())
        print(f"results: {result.out_dir} (index: {args.out}/index.jsonl)")
    bad = [t for t in result.summary["tasks"] if t["status"] != "ok"]
    if bad:
        lines = "\n".join(f"  - {t['label']}: {t['status']}" for t in bad)
        print(f"{len(bad)} task(s) did not pass:\n{lines}", file=sys.stderr)
        raise EvaluationFailed(f"{len(bad)} of {len(result.summary['tasks'])} task(s) did not pass")
    return 0


def plan_as_dict(plan: Any) -> dict[str, Any]:
    """A ``SweepPlan`` as ``--plan --json`` prints it: the tasks to run, and what was dropped."""
    return {
        "name": plan.spec.name,
        "combinations": plan.combinations,
        "tasks": [
            {
                "label": t.label,
                "model": t.model.ref,
                "dataset": t.dataset.ref,
                "software": t.software.ref,
                "hardware": t.hardware.ref if t.hardware else None,
                "batch_size": t.batch_size,
                "environment": t.environment,
                "reference": t.reference.ref if t.reference else None,
            }
            for t in plan.tasks
        ],
        "dropped": [
            {"combination": d.combination, "filter": d.filter, "reason": d.reason}
            for d in plan.dropped
        ],
    }

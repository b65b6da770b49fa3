"""``dlspec-ray runs [ROOT]``: list the runs of a results root, from its index.

ROOT is a folder or an object storage URI (``s3://bucket/runs``); an S3 endpoint,
region and credentials come from ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, or ``--storage-option KEY=VALUE``.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import sys
from typing import TextIO

from dlspec_ray.commands.common import add_json_flag, print_json, quiet

NAME = "runs"
HELP = "list the runs of a results root (run id, manifests, environment, time)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "root",
        nargs="?",
        default="runs",
        help="results root: a folder or a URI such as s3://bucket/runs (default: runs)",
    )
    add("--rebuild", action="store_true", help="recreate index.jsonl from the summary.json files")
    add_json_flag(parser, "the index records (and the incomplete runs on stderr)")
    add_storage_option(parser)


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    """``--storage-option KEY=VALUE``, repeatable: settings of an object storage URI."""
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="object storage setting, repeatable: endpoint_url, region, access_key, "
        "secret_key, anonymous, ... (default: from AWS_* environment variables)",
    )


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.results.index import find_incomplete_runs, read_index, rebuild_index
    from dlspec_ray.results.storage import as_location, parse_storage_options

    root = as_location(args.root, parse_storage_options(args.storage_option))
    records = rebuild_index(root) if args.rebuild else read_index(root)
    incomplete = find_incomplete_runs(root)
    if args.json:
        print_json([r.as_dict() for r in records])
        if not quiet(args):
            _print_incomplete(incomplete, file=sys.stderr)
        return 0
    _print_incomplete(incomplete)
    if not records and incomplete:
        return 0
    if not records:
        print(
            f"{root}: no runs indexed (run `dlspec-ray runs {root} --rebuild` to index "
            "run directories written by other means)"
        )
        return 0
    header = ["run id", "started (UTC)", "label", "model", "dataset", "software", "hardware",
              "batch", "env", "status", "top1", "samples/s"]  # fmt: skip
    rows = [header]
    for r in records:
        top1 = r.accuracy.get("top1")
        rows.append(
            [
                r.run_id,
                r.started_at[:19].replace("T", " "),
                r.label or "-",
                r.ref("model"),
                r.ref("dataset"),
                r.ref("software"),
                r.ref("hardware"),
                str(r.batch_size if r.batch_size is not None else "-"),
                r.environment_fingerprint,
                r.status,
                "-" if top1 is None else f"{top1:.4f}",
                "-" if r.throughput_sps is None else f"{r.throughput_sps:,.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(records)} run(s) in {root}")
    return 0


def _print_incomplete(runs: list, file: TextIO | None = None) -> None:
    """Interrupted runs first: each can be finished with ``run --resume``."""
    for run in runs:
        print(
            f"{run.run_id}  incomplete: {run.complete_shards}/{run.shards} shards  "
            f"{run.model} on {run.dataset}  resume: dlspec-ray run --resume {run.location}",
            file=file,
        )
    if runs:
        print(file=file)

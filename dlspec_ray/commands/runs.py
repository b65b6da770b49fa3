"""``dlspec-ray runs [ROOT]``: list the runs of a results root, from its index."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json

NAME = "runs"
HELP = "list the runs of a results root (run id, manifests, environment, time)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("root", nargs="?", default="runs", help="results root (default: runs)")
    add("--rebuild", action="store_true", help="recreate index.jsonl from the summary.json files")
    add("--json", action="store_true", help="print the index records as JSON")


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlspec_ray.results.index import read_index, rebuild_index

    root = Path(args.root)
    records = rebuild_index(root) if args.rebuild else read_index(root)
    if args.json:
        print(json.dumps([r.as_dict() for r in records], indent=2))
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

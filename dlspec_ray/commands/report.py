"""``dlspec-ray report RESULTS_ROOT``: one self-contained HTML page with every run and plots.

RESULTS_ROOT is a folder or an object storage URI (``s3://bucket/runs``). The
report goes next to the runs, ``RESULTS_ROOT/report.html`` (an object, for a
URI), unless ``--out`` names a local file or another URI.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, print_json
from dlspec_ray.commands.runs import add_storage_option

NAME = "report"
HELP = "write a self-contained HTML report (table and plots) of a results root"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root",
        metavar="RESULTS_ROOT",
        help="a folder written by dlspec-ray sweep, or a URI such as s3://bucket/runs",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="where to write: a local file or a URI (default: RESULTS_ROOT/report.html)",
    )
    add_json_flag(parser, 'where the report went, {"report": PATH}')
    add_storage_option(parser)


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.frameworks import require_module
    from dlspec_ray.results.report import write_report
    from dlspec_ray.results.storage import as_location, parse_storage_options

    options = parse_storage_options(args.storage_option)
    root = as_location(args.root, options)
    out = as_location(args.out, options, local_ok=True) if args.out else None
    require_module("matplotlib", "notebook", "the report's plots")
    path = write_report(root, out)
    if args.json:
        print_json({"report": str(path)})
    else:
        print(f"report: {path}")
    return 0

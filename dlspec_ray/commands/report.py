"""``dlspec-ray report RESULTS_ROOT``: one self-contained HTML page with every run and plots."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

NAME = "report"
HELP = "write a self-contained HTML report (table and plots) of a results root"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="RESULTS_ROOT", help="a folder written by dlspec-ray sweep")
    parser.add_argument("--out", metavar="FILE", help="where to write (default: ROOT/report.html)")


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlspec_ray.frameworks import require_module
    from dlspec_ray.results.report import write_report

    require_module("matplotlib", "notebook", "the report's plots")
    path = write_report(Path(args.root), Path(args.out) if args.out else None)
    print(f"report: {path}")
    return 0

"""The ``dlspec-ray`` command: turns errors into exit codes and messages, never tracebacks.

Exit codes (DESIGN.md): 0 success; 1 the evaluation ran but failed its
reference check or error budget; 2 bad input. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module

from dlspec_ray.commands import COMMANDS
from dlspec_ray.errors import DLSpecError, EvaluationFailed


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (DLSpecError, EvaluationFailed) as exc:
        if args.debug:
            traceback.print_exc()
        label = "error" if isinstance(exc, DLSpecError) else "failed"
        print(f"dlspec-ray: {label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(
            f"dlspec-ray: interrupted; {str(exc) or 'no shard was complete, so nothing was kept'}",
            file=sys.stderr,
        )
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlspec-ray", description="Evaluate DLSpec deep-learning tasks on Ray."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for path in COMMANDS:
        command = import_module(path)
        child = sub.add_parser(command.NAME, help=command.HELP, parents=[common])
        command.add_arguments(child)
        child.set_defaults(handler=command.handle)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlspec-ray")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())

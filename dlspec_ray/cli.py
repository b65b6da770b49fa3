"""The ``dlspec-ray`` command: turns errors into exit codes and messages, never tracebacks.

Exit codes (README, "What a run writes"; ``dlspec_ray/errors.py`` has the classes):

- 0: success.
- 1: the evaluation (or job) ran but failed: its reference check, its error
  budget, a host's setup. A ``RunFailed``; the message starts ``dlspec-ray: failed:``.
- 2: bad input: manifests, arguments, artifacts. A ``BadInput`` (or a bare
  ``DLSpecError``), or a bad argument argparse refused; ``dlspec-ray: error:``.
- 130: interrupted (Ctrl-C).
- 141: stdout was a pipe whose reader went away (``dlspec-ray runs --json | head``):
  the command stops quietly, as ``cat`` or ``yes`` killed by SIGPIPE would, and 141
  is the status a shell gives those (128 + SIGPIPE), so ``set -o pipefail`` sees it
  the same way.

``--debug`` shows tracebacks; ``-q`` and ``-v`` say less and more. The three are
global: they work before the subcommand (``dlspec-ray --debug validate ...``) and
after it (``dlspec-ray validate --debug ...``), with one ``dest`` each.

Every closed set of names on the command line (subcommands, ``choices=``) answers
a wrong name with the nearest ones: ``invalid choice: 'valdate' ...; did you
mean 'validate'?``, exit 2.
"""

from __future__ import annotations

__all__ = ["GLOBAL_FLAGS", "SIGPIPE_EXIT", "Parser", "build_parser", "main"]

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from dlspec_ray.commands import COMMANDS
from dlspec_ray.errors import DLSpecError, RunFailed

# (option strings, dest, help): accepted before the subcommand and after it.
GLOBAL_FLAGS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("--debug",), "debug", "show tracebacks on errors"),
    (
        ("-q", "--quiet"),
        "quiet",
        "say less: no progress lines or notes on stderr (errors still print)",
    ),
    (
        ("-v", "--verbose"),
        "verbose",
        "say more: echo what stage code prints, how GPUs were found",
    ),
)
SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose pipe closed


class Parser(argparse.ArgumentParser):
    """``argparse``, answering a name outside ``choices`` (or a subcommand) with a near match."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # The one place argparse checks choices= (subcommands included): a typo gets the
        # nearest names appended (Python 3.14's suggest_on_error does the same).
        if action.choices is None or value in action.choices:
            return
        from dlspec_ray.commands.common import near_match_hint

        names = [str(choice) for choice in action.choices]
        raise argparse.ArgumentError(
            action,
            f"invalid choice: {value!r} (choose from {', '.join(names)})"
            f"{near_match_hint(str(value), names)}",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``dlspec-ray`` command line; the exit code is returned, never raised."""
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or argparse refused an argument
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # so a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # The Python docs' recipe: later writes (and the final flush) go nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGPIPE_EXIT
    except DLSpecError as exc:
        if args is not None and args.debug:
            traceback.print_exc()
        label = "failed" if isinstance(exc, RunFailed) else "error"
        print(f"dlspec-ray: {label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(
            f"dlspec-ray: interrupted; {str(exc) or 'no shard was complete, so nothing was kept'}",
            file=sys.stderr,
        )
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every module of ``COMMANDS``, with the global flags on each."""
    parser = Parser(prog="dlspec-ray", description="Evaluate DLSpec deep-learning tasks on Ray.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    for flags, dest, help_text in GLOBAL_FLAGS:
        parser.add_argument(*flags, dest=dest, action="store_true", default=False, help=help_text)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for path in COMMANDS:
        command = import_module(path)
        child = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(child)
        _add_global_flags(child)
        child.set_defaults(handler=command.handle)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser) -> None:
    """The global flags on a subcommand's parser (and its own subcommands'), default SUPPRESS.

    A subparser writes every default it has over the top-level namespace, so a plain
    ``default=False`` here would undo ``dlspec-ray --debug validate``. With SUPPRESS
    the subparser sets the dest only when the flag is given after the subcommand. A
    command's own flag of the same dest (``checksum --quiet``, ``run --verbose``)
    stays, with its help, and gets SUPPRESS too; a free short or long form is added.
    """
    for flags, dest, help_text in GLOBAL_FLAGS:
        own = [a for a in parser._actions if a.dest == dest]
        for action in own:
            action.default = argparse.SUPPRESS
        free = [flag for flag in flags if flag not in parser._option_string_actions]
        if free:
            parser.add_argument(
                *free,
                dest=dest,
                action="store_true",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS if own else help_text,
            )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_global_flags(child)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (so the BrokenPipeError was stdout's)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    try:
        import select

        poller = select.poll()
    except (ImportError, AttributeError):  # no poll(): assume it was stdout, as the recipe does
        return True
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlspec-ray")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())

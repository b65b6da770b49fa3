"""What every subcommand does the same way: ``--json``, stderr notes, ``-q``, and names.

Not a subcommand itself (it is not in ``COMMANDS``). The conventions:

- ``--json`` prints one JSON document on stdout and nothing else there, so
  ``dlspec-ray runs --json | jq`` works; everything meant for a person (notes,
  where a file went) goes to stderr with ``note``.
- ``-q`` silences notes and progress lines, never errors; ``quiet(args)`` reads it
  wherever the namespace came from (the flag is global, see ``cli.py``).
- A name from an open set (``--environment``: plugins add more) is checked with
  ``environment_name``, which suggests the nearest name like ``choices=`` does.
"""

from __future__ import annotations

__all__ = [
    "add_json_flag",
    "add_roots_flag",
    "environment_name",
    "json_text",
    "near_match_hint",
    "note",
    "print_json",
    "quiet",
]

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as JSON on stdout (messages stay on stderr)."""
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as JSON on stdout; messages go to stderr",
    )


def add_roots_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--roots DIR...``: more manifest folders for the catalog, as ``args.roots``."""
    parser.add_argument("--roots", nargs="+", action="extend", default=[], metavar="DIR", help=help)


def json_text(data: Any) -> str:
    """``data`` as indented JSON; paths and dataclasses are written as strings and objects."""
    return json.dumps(data, indent=2, default=_jsonable)


def print_json(data: Any) -> None:
    """Print ``data`` as the one JSON document of this command's stdout."""
    print(json_text(data), flush=True)


def note(args: argparse.Namespace, message: str) -> None:
    """A message for a person, on stderr, unless ``-q`` was given."""
    if not quiet(args):
        print(message, file=sys.stderr, flush=True)


def quiet(args: argparse.Namespace) -> bool:
    """Whether ``-q``/``--quiet`` was given (False for a namespace built without it)."""
    return bool(getattr(args, "quiet", False))


def near_match_hint(value: str, names: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the names nearest ``value``, or an empty string."""
    from dlspec_ray.spec.rules import suggest

    return suggest(value, sorted(names))


def environment_name(value: str) -> str:
    """An ``argparse`` type: ``value`` if an environment of that name is registered.

    Looked up only when the flag is given, so ``--help`` does not import the
    environments; a plugin's environments count (which is why this is not ``choices=``).
    """
    from dlspec_ray.environments import ENVIRONMENTS

    names = ENVIRONMENTS.names()
    if value in names:
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r}: no such environment{near_match_hint(value, names)} "
        f"Available: {', '.join(names)}."
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return str(value)

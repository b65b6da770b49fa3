"""``dlspec-ray down``: end the local Ray head that ``dlspec-ray up`` started.

Only its own processes end (those naming its temp dir), never another Ray's.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, print_json

NAME = "down"
HELP = "end the local Ray head started by `dlspec-ray up` (its processes, temp dir, record)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser, 'what was ended, {"ended": ..., "address": ..., "processes": N}')


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.runtime.head import stop_head

    head, ended = stop_head()
    if args.json:
        print_json(
            {
                "ended": head is not None,
                "address": head.address if head else None,
                "processes": len(ended),
            }
        )
        return 0
    if head is None:
        print("no local Ray head is recorded: nothing to end")
        return 0
    print(f"ended the local Ray head at {head.address}: {len(ended)} process(es), temp dir removed")
    return 0

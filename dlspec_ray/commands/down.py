"""``dlspec-ray down``: end the local Ray head that ``dlspec-ray up`` started.

Only its own processes end (those naming its temp dir), never another Ray's.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

NAME = "down"
HELP = "end the local Ray head started by `dlspec-ray up` (its processes, temp dir, record)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.runtime.head import stop_head

    head, ended = stop_head()
    if head is None:
        print("no local Ray head is recorded: nothing to end")
        return 0
    print(f"ended the local Ray head at {head.address}: {len(ended)} process(es), temp dir removed")
    return 0

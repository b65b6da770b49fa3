"""``dlspec-ray status``: whether the local Ray head of ``dlspec-ray up`` runs, and where."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, print_json

NAME = "status"
HELP = "say whether the local Ray head of `dlspec-ray up` runs, and where"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser, "the head's record")


def handle(args: argparse.Namespace) -> int:
    """Exit 0 when the head runs, 1 when it is recorded but gone, 3 when there is none."""
    from dataclasses import asdict

    from dlspec_ray.runtime.head import recorded_head, warm_actors

    head = recorded_head()
    alive = head is not None and head.alive()
    warm = warm_actors() if alive else []
    if args.json:
        report = {"running": alive, "head": asdict(head) if head else None, "warm": warm}
        print_json(report)
    elif head is None:
        print("no local Ray head: runs embed their own Ray (`dlspec-ray up` starts one)")
    elif alive:
        print(f"local Ray head running at {head.address} since {head.started_at} "
              f"(temp dir {head.temp_dir}); runs without --address use it")  # fmt: skip
        print(f"warm actors: {len(warm)}" + "".join(f"\n  {a['name']}" for a in warm))
    else:
        print(f"the local Ray head recorded at {head.address} is not running; "
              "`dlspec-ray down` clears its record, `dlspec-ray up` starts a new one")  # fmt: skip
    return 0 if alive else (1 if head is not None else 3)

"""``dlspec-ray up``: start a persistent local Ray head that later runs here join.

A run then skips starting Ray (most of a short run's time). See ``runtime/head.py``.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json

NAME = "up"
HELP = "start a persistent local Ray head (loopback only) that later runs on this machine use"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=6391,
        metavar="BASE",
        help="the GCS port; the head's other 7 ports follow it (default 6391)",
    )
    parser.add_argument("--num-cpus", type=int, metavar="N", help="default: all of this machine's")
    parser.add_argument("--json", action="store_true", help="print the head's record as JSON")


def handle(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from dlspec_ray.runtime.head import HeadPorts, running_head, start_head

    already = running_head()
    head = already or start_head(ports=HeadPorts(args.port), num_cpus=args.num_cpus)
    if args.json:
        print(json.dumps(asdict(head), indent=2))
        return 0
    state = "already running" if already else "started"
    print(f"local Ray head {state} at {head.address} (temp dir {head.temp_dir})")
    print("runs on this machine without --address now use it; `dlspec-ray down` ends it")
    return 0

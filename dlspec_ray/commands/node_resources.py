"""``dlspec-ray node-resources``: what this node offers, as JSON for ``ray start --resources``.

    ray start --address=HEAD:6379 --resources="$(dlspec-ray node-resources)"

makes the node advertise ``cpu_arch:<arch>`` and one ``gpu_arch:<arch>`` unit
per GPU, the names hardware manifests' requests use. Ray counts CPUs, GPUs and
memory itself.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json
import sys

NAME = "node-resources"
HELP = "print this node's custom resources as JSON for `ray start --resources`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also say on stderr how the GPUs were found (NVML, nvidia-smi or none)",
    )


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.hardware import detect_gpus, host_cpu_arch, node_resources

    gpus = detect_gpus()
    if args.verbose:
        found = ", ".join(gpus.archs) or "no GPU"
        note = f" ({gpus.note})" if gpus.note else ""
        print(
            f"dlspec-ray: cpu arch {host_cpu_arch()}; GPUs via {gpus.source}: {found}{note}",
            file=sys.stderr,
        )
    print(json.dumps(node_resources(list(gpus.archs)), sort_keys=True))
    return 0

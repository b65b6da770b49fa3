"""``dlspec-ray node-resources``: what this node offers, for ``ray start``.

    ray start --address=HEAD:6379 --resources="$(dlspec-ray node-resources)" \\
        --labels="$(dlspec-ray node-resources --labels)"

The resources (JSON, for ``--resources``) are ``cpu_arch:<arch>``, one
``gpu_arch:<arch>`` unit per GPU, the names hardware manifests' requests use, and on a
GPU node Ray's ``accelerator_type:<type>`` (``V100``, ``H100``). Ray counts CPUs, GPUs and
memory itself. The labels (``k=v,k2=v2``, for ``--labels``) are ``dlspec/cpu-arch`` and
``dlspec/gpu-arch`` (the GPUs' architecture, or ``none``): placement keeps CPU-only tasks
on the nodes labelled ``none``. See ``runtime/advertise.py``.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
import json
import sys

NAME = "node-resources"
HELP = "print this node's custom resources (or --labels) for `ray start`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        action="store_true",
        help="print the node labels instead, as k=v,k2=v2 for `ray start --labels`",
    )
    parser.add_argument(
        "--accelerator-type",
        metavar="TYPE",
        help="Ray's accelerator type of this node's GPUs, such as V100 or H100 (default: "
        "what Ray's NVML detection finds; left out without NVML)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also say on stderr how the GPUs were found (NVML, nvidia-smi or none)",
    )


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.hardware import host_cpu_arch
    from dlspec_ray.hardware.labels import labels_text
    from dlspec_ray.runtime.advertise import advertised

    node = advertised(accelerator_type=args.accelerator_type)
    gpus = node.gpus
    if args.verbose and gpus is not None:
        found = ", ".join(gpus.archs) or "no GPU"
        note = f" ({gpus.note})" if gpus.note else ""
        print(
            f"dlspec-ray: cpu arch {host_cpu_arch()}; GPUs via {gpus.source}: {found}{note}",
            file=sys.stderr,
        )
    if args.labels:
        print(labels_text(node.labels))
    else:
        print(json.dumps(node.resources, sort_keys=True))
    return 0

"""One module per ``dlspec-ray`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``handle(args) -> int``, and is listed in ``COMMANDS``. Modules import their
heavy dependencies inside ``handle`` so ``dlspec-ray --help`` stays fast.
``common.py`` is not a subcommand: it holds the conventions they share (``--json``,
notes on stderr, ``-q``, checked names).
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

COMMANDS = (
    "dlspec_ray.commands.init",
    "dlspec_ray.commands.validate",
    "dlspec_ray.commands.manifests",
    "dlspec_ray.commands.run",
    "dlspec_ray.commands.env",
    "dlspec_ray.commands.images",
    "dlspec_ray.commands.sweep",
    "dlspec_ray.commands.runs",
    "dlspec_ray.commands.compare",
    "dlspec_ray.commands.reproduce",
    "dlspec_ray.commands.report",
    "dlspec_ray.commands.node_resources",
    "dlspec_ray.commands.submit",
    "dlspec_ray.commands.checksum",
    "dlspec_ray.commands.up",
    "dlspec_ray.commands.down",
    "dlspec_ray.commands.status",
    "dlspec_ray.commands.completion",
)

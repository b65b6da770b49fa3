"""One module per ``dlspec-ray`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``handle(args) -> int``, and is listed in ``COMMANDS``. Modules import their
heavy dependencies inside ``handle`` so ``dlspec-ray --help`` stays fast.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

COMMANDS = (
    "dlspec_ray.commands.validate",
    "dlspec_ray.commands.run",
)

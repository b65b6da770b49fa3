"""``dlspec-ray completion bash|zsh``: a shell completion script, made from the parser itself.

shtab reads the argparse parser and writes a static script, so the completion
always knows every subcommand, flag and ``choices=`` this version has:

    dlspec-ray completion bash > ~/.local/share/bash-completion/completions/dlspec-ray
    dlspec-ray completion zsh > "${fpath[1]}/_dlspec-ray"
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "SHELLS", "add_arguments", "handle", "script"]

import argparse

NAME = "completion"
HELP = "print a bash or zsh completion script for dlspec-ray"
SHELLS = ("bash", "zsh")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def handle(args: argparse.Namespace) -> int:
    print(script(args.shell), end="")
    return 0


def script(shell: str) -> str:
    """The completion script for ``shell``; BadInput naming the pip install without shtab."""
    from dlspec_ray.cli import build_parser
    from dlspec_ray.errors import BadInput

    try:
        import shtab
    except ImportError:
        raise BadInput(
            "completion: the shtab package is not installed here; install it with "
            "`pip install shtab` (into the environment that runs dlspec-ray), then run "
            f"`dlspec-ray completion {shell}` again"
        ) from None
    text = shtab.complete(build_parser(), shell=shell)
    return text if text.endswith("\n") else text + "\n"

"""``dlspec-ray init DIR``: a folder of the shipped manifests and MNIST assets to start from.

A pip-installed dlspec-ray already resolves the shipped refs from any folder; ``init``
gives a user copies to read and edit, laid out as the repository is (``manifests/``
beside ``assets/``, so the manifests' relative sources hold). Run from ``DIR``, its
``manifests/`` comes before the shipped ones. It never writes over a file: a ``DIR``
that already has ``manifests/`` or ``assets/`` is refused.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "init_folder"]

import argparse
import shutil
import sys
from pathlib import Path

from dlspec_ray.errors import UsageError

NAME = "init"
HELP = "copy the shipped example manifests and MNIST assets into a folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="the folder to fill (made if missing)")


def handle(args: argparse.Namespace) -> int:
    made = init_folder(args.dir)
    print(
        f"dlspec-ray: {len(made)} files in {args.dir}; from there run\n"
        "  dlspec-ray run --model mnist-8@1.0.0 --dataset mnist-test@1.0.0 "
        "--reference mnist-8-onnxruntime-reference@1.0.0",
        file=sys.stderr,
    )
    return 0


def init_folder(target: Path) -> list[Path]:
    """Copy the examples into ``target``; the files written."""
    from dlspec_ray.examples import EXAMPLE_ASSETS, EXAMPLE_MANIFESTS

    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: expected a folder to fill, got a file")
    taken = [target / n for n in ("manifests", "assets") if (target / n).exists()]
    if taken:
        raise UsageError(
            f"{', '.join(map(str, taken))} already exists; init writes over nothing: give a "
            "new folder, or move it away"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(EXAMPLE_MANIFESTS, target / "manifests")
        shutil.copytree(EXAMPLE_ASSETS, target / "assets")
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the examples there ({exc.strerror})") from None
    return sorted(p for p in target.rglob("*") if p.is_file())

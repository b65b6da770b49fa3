"""``dlspec-ray images build SOFTWARE``: a framework image, built offline (no registry)."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse

from dlspec_ray.commands.common import add_json_flag, print_json

NAME = "images"
HELP = "build framework images for the docker environment, offline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = sub.add_parser(
        "build",
        help="build a software manifest's container image from its packages",
        description=(
            "Build the image a software manifest's `container` names: a debootstrap base with "
            "Python (cached), its `packages` installed with pip --no-index from wheels fetched "
            "on this host, and the dlspec-ray agent. Needs a Docker engine (DOCKER_HOST)."
        ),
    )
    build.add_argument("software", nargs="+", metavar="SOFTWARE", help="path, name@version or id")
    build.add_argument("--rebuild", action="store_true", help="build even if the image is current")
    build.add_argument(
        "--manifests", action="append", default=[], metavar="DIR", help="extra manifest root"
    )
    add_json_flag(build, "a list of the images, {name, id, size, cached}")


def handle(args: argparse.Namespace) -> int:
    from typing import cast

    from dlspec_ray.environments.images import build_image
    from dlspec_ray.spec.catalog import Catalog
    from dlspec_ray.spec.types import SoftwareManifest

    catalog = Catalog.default(extra_roots=args.manifests)
    software = [cast(SoftwareManifest, catalog.resolve(r, "software")) for r in args.software]
    images = []
    for manifest in software:
        built = build_image(manifest, rebuild=args.rebuild)
        images.append(
            {"name": built.name, "id": built.id, "size": built.size, "cached": built.cached}
        )
        if not args.json:
            state = "up to date" if built.cached else "built"
            print(f"{built.name}: {state} ({built.id[7:19]}, {built.size / 2**20:.0f} MiB)")
    if args.json:
        print_json(images)
    return 0

"""``dlspec-ray env``: prepare environments ahead of a run, and remove what killed actors left."""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle"]

import argparse
from typing import Any

from dlspec_ray.commands.common import add_json_flag, environment_name, print_json

NAME = "env"
HELP = "prepare software environments; remove orphaned containers, shared memory, partial downloads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="env_command", required=True, metavar="ACTION")
    gc = sub.add_parser(
        "gc",
        help="remove containers and shared-memory folders whose host actor is gone",
        description=(
            "ray.kill ends a host actor without closing its environment. Remove every "
            "dlspec-ray container and /dev/shm folder on this host whose owning process no "
            "longer runs (containers only where DOCKER_HOST answers), the partial "
            "downloads and unpacks that dead processes left in the artifact cache, and what "
            "killed drivers left: staging folders, their embedded Ray's temp dir and processes."
        ),
    )
    gc.add_argument("--all", action="store_true", help="remove live environments' too")
    gc.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the artifact cache to sweep (default: $DLSPEC_RAY_CACHE or ~/.cache/dlspec-ray)",
    )
    add_json_flag(gc, "what was removed")
    prepare = sub.add_parser(
        "prepare",
        help="build a software manifest's venv, or check its image, before a run",
    )
    prepare.add_argument("software", metavar="SOFTWARE", help="path, name@version or id")
    prepare.add_argument(
        "--environment", type=environment_name, help="default: the software manifest's"
    )
    prepare.add_argument(
        "--manifests", action="append", default=[], metavar="DIR", help="extra manifest root"
    )
    add_json_flag(prepare, "{software, environment, ready}")


def handle(args: argparse.Namespace) -> int:
    if args.env_command == "gc":
        return _gc(args)
    return _prepare(args)


def _gc(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlspec_ray.artifacts.cache import default_cache_dir, sweep_partial
    from dlspec_ray.environments.sweeper import sweep

    report = sweep(everything=args.all)
    # Live downloads are kept even with --all: only dead owners' (or day-old) partial work goes.
    cache = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    if args.json:
        from dlspec_ray.inflight import sweep_inflight

        print_json(_gc_record(report, cache, sweep_partial(cache), sweep_inflight()))
        return 0
    for name in report.containers:
        print(f"removed container {name}")
    for pid in report.agents:
        print(f"ended agent process {pid}")
    for path in report.folders:
        print(f"removed {path}")
    if report.docker_skipped:
        print(f"containers not checked: {report.docker_skipped}")
    print(f"{len(report.containers)} container(s), {len(report.folders)} folder(s) removed")
    partial = sweep_partial(cache)
    for path in partial:
        print(f"removed {path}")
    print(f"{len(partial)} partial download(s) or unpack(s) removed from the cache {cache}")
    from dlspec_ray.inflight import sweep_inflight

    left = sweep_inflight()
    for line in left:
        print(line)
    print(f"{len(left)} staging folder(s), Ray temp dir(s) and process(es) of killed runs cleaned")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from typing import cast

    from dlspec_ray.environments import prepare_environment
    from dlspec_ray.spec.catalog import Catalog
    from dlspec_ray.spec.types import SoftwareManifest

    catalog = Catalog.default(extra_roots=args.manifests)
    software = cast(SoftwareManifest, catalog.resolve(args.software, "software"))
    kind = args.environment or software.environment
    ready = prepare_environment(kind, software)
    if args.json:
        print_json({"software": software.ref, "environment": kind, "ready": ready or None})
        return 0
    print(f"{software.ref}: the {kind} environment is ready{': ' + ready if ready else ''}")
    return 0


def _gc_record(report: Any, cache: Any, partial: list, left: list) -> dict[str, Any]:
    """What ``env gc --json`` prints: each thing removed, by what it was."""
    return {
        "containers": list(report.containers),
        "agents": list(report.agents),
        "folders": [str(p) for p in report.folders],
        "containers_not_checked": report.docker_skipped,
        "cache": str(cache),
        "partial": [str(p) for p in partial],
        "killed_runs": [str(line) for line in left],
    }

"""The ``dlspec-ray`` command.

Heavy modules (ray, pyarrow) are imported inside the subcommands that need
them, so ``dlspec-ray validate`` and ``--help`` start fast.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import sys
import traceback
from collections.abc import Sequence

from dlspec_ray.errors import DLSpecError, EvaluationFailed


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except DLSpecError as exc:
        _report(args, exc, "error")
        return exc.exit_code
    except EvaluationFailed as exc:
        _report(args, exc, "failed")
        return exc.exit_code
    except KeyboardInterrupt:
        print("dlspec-ray: interrupted; nothing was written to --out", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlspec-ray", description="Evaluate DLSpec deep-learning tasks on Ray."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser("validate", help="check manifest files or directories")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(handler=_validate)

    run = sub.add_parser("run", help="evaluate a model on a dataset")
    run.add_argument("--model", required=True, help="path, name@version or id")
    run.add_argument("--dataset", help="path, name@version or id (default: the reference's)")
    run.add_argument("--software", help="default: the reference's, else the first that fits")
    run.add_argument("--hardware", help="default: the reference's, else any node with a CPU")
    run.add_argument("--reference", help="a reference log to check the run against")
    run.add_argument("--batch-size", type=int, default=64, metavar="N")
    run.add_argument("--actors", type=int, metavar="K", help="default: as many as CPUs allow")
    run.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N samples")
    run.add_argument(
        "--max-errors",
        type=int,
        default=0,
        metavar="N",
        help="failed samples tolerated before the run stops (default 0)",
    )
    run.add_argument("--environment", help="override the software manifest's environment")
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model option (ctx['options']); repeatable",
    )
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local)")
    run.add_argument("--out", help="run directory (default: runs/<run id>)")
    run.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    run.add_argument(
        "--manifests",
        action="append",
        default=[],
        metavar="DIR",
        help="extra manifest root for name@version lookups; repeatable",
    )
    run.add_argument(
        "--cache-dir", help="artifact cache (default: DLSPEC_RAY_CACHE, else ~/.cache/dlspec-ray)"
    )
    run.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds host actors may take to start (default 300)",
    )
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--json", action="store_true", help="print summary.json instead of a table")
    run.add_argument("--debug", action="store_true", help="show tracebacks")
    run.set_defaults(handler=_run)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from dlspec_ray.spec import validate_paths

    manifests, problems = validate_paths(args.paths)
    for problem in problems:
        print(problem)
    files = len(manifests) + len({p.file for p in problems})
    if problems:
        print(f"{len(problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 2
    print(f"{len(manifests)} manifest(s) valid")
    return 0


def _run(args: argparse.Namespace) -> int:
    import json

    from dlspec_ray.evaluation import evaluate

    result = evaluate(
        args.model,
        args.dataset,
        software=args.software,
        hardware=args.hardware,
        reference=args.reference,
        batch_size=args.batch_size,
        actors=args.actors,
        limit=args.limit,
        max_errors=args.max_errors,
        options=_parse_options(args.option),
        environment=args.environment,
        address=args.address,
        out=args.out,
        overwrite=args.overwrite,
        manifest_roots=args.manifests,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        ready_timeout_s=args.ready_timeout,
    )
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        print(result.format())
        print(f"\nrun directory: {result.out_dir}")
    status = result.summary["status"]
    if status == "error_budget_exceeded":
        errors = result.summary["errors"]
        first = "\n".join(f"  - {m['message']}" for m in errors["messages"][:3])
        raise EvaluationFailed(
            f"{errors['count']} sample(s) failed, more than --max-errors {args.max_errors}; "
            f"the run stopped. First errors:\n{first}"
        )
    if status == "reference_failed":
        raise EvaluationFailed(
            f"the run does not match the reference log {result.summary['reference']['reference']}"
        )
    return 0


def _parse_options(items: Sequence[str]) -> dict[str, object]:
    import yaml

    from dlspec_ray.errors import UsageError

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r}: expected KEY=VALUE, for example top_k=5")
        options[key] = yaml.safe_load(value)
    return options


def _report(args: argparse.Namespace, exc: BaseException, label: str) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(f"dlspec-ray: {label}: {exc}", file=sys.stderr)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlspec-ray")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())

"""``dlspec-ray run``: evaluate one task and write its run directory."""

from __future__ import annotations

__all__ = [
    "HELP",
    "NAME",
    "add_arguments",
    "handle",
    "out_location",
    "parse_options",
    "run_options",
    "task_args",
]

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dlspec_ray.commands.common import (
    add_json_flag,
    environment_name,
    note,
    print_json,
    quiet,
)
from dlspec_ray.commands.runs import add_storage_option
from dlspec_ray.errors import EvaluationFailed, UsageError

if TYPE_CHECKING:
    from dlspec_ray.options import RunOptions

NAME = "run"
HELP = "evaluate a model on a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--model", help="path, name@version or id (required unless --resume)")
    add("--dataset", help="path, name@version or id (default: the reference's)")
    add("--software", help="default: the reference's, else the first that fits the model")
    add("--hardware", help="default: the reference's, else any node with a CPU")
    add("--reference", help="a reference log to check the run against")
    add("--batch-size", type=int, metavar="N", help="samples per batch (default 64)")
    add("--actors", type=int, metavar="K", help="default: as many as the CPUs allow")
    add(
        "--keep-stage-outputs",
        type=int,
        default=0,
        metavar="N",
        help="save the pre-process, run and post-process outputs of the first N batches "
        "(DIR/stage_outputs/batch-<id>.npz), to see where two runs part (default 0)",
    )
    add(
        "--pre-actors",
        type=int,
        default=0,
        metavar="N",
        help="pre-process and post-process on N CPU actors of their own, on nodes without "
        "GPUs where there are any; the host actors then only run the model (default 0: "
        "the host actors do all three)",
    )
    add("--limit", type=int, metavar="N", help="evaluate only the first N samples")
    add(
        "--resume",
        metavar="DIR",
        help="finish the interrupted run in DIR (its --out): only the shards it lacks run; "
        "the manifests, artifacts and settings must be the ones it started with",
    )
    add(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="times a shard runs again after its host actor died under it or a batch "
        "failed, before its samples are quarantined (default 2)",
    )
    add(
        "--warmup",
        type=int,
        default=0,
        metavar="N",
        help="leave the run's first N batches out of the latency figures (default 0)",
    )
    add(
        "--repeats",
        type=int,
        default=1,
        metavar="K",
        help="time K passes over the dataset (the first writes the results); summary.json "
        "reports the median and spread of throughput and each latency (default 1)",
    )
    add(
        "--max-errors",
        type=int,
        default=0,
        metavar="N",
        help="failed samples tolerated before the run stops (default 0)",
    )
    add(
        "--environment",
        type=environment_name,
        help="override the software manifest's environment (inline, process, docker, or "
        "a plugin's)",
    )
    add(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model option (ctx['options']); repeatable",
    )
    add("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    add(
        "--out",
        help="run directory: a folder, or an object-storage URI such as s3://bucket/runs/x "
        "(default: runs/<run id>)",
    )
    add("--overwrite", action="store_true", help="replace a non-empty --out")
    add(
        "--manifests",
        action="append",
        default=[],
        metavar="DIR",
        help="extra manifest root for name@version lookups; repeatable",
    )
    add("--cache-dir", help="artifact cache (default: DLSPEC_RAY_CACHE, else ~/.cache/dlspec-ray)")
    add(
        "--batches-per-call",
        type=int,
        metavar="N",
        help="batches each chained pre/run/post call carries (default: chosen from the data; "
        "smaller gives finer progress and error stops, larger less overhead)",
    )
    add(
        "--ready-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds host actors may take to start (default 300)",
    )
    add(
        "--stage-timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="seconds one stage call may take before its host actor is ended (Ray restarts "
        "it) and its shard retried (default 3600)",
    )
    add(
        "--allow-host-setup",
        action="store_true",
        help="run the hardware manifest's setup commands on each node that holds a host actor",
    )
    add_storage_option(parser)
    add(
        "--allow-unverified",
        action="store_true",
        help="use folder sources that carry no checksum (marked unverified in summary.json)",
    )
    add(
        "--trust",
        action="store_true",
        help="run code (stages in inline, a dataset reader) from manifests outside the "
        "trusted roots (the project's manifests/ and DLSPEC_RAY_TRUSTED_ROOTS)",
    )
    loadgen = parser.add_argument_group(
        "MLPerf LoadGen (docs/loadgen.md)",
        "With --scenario, LoadGen drives the model's stage code in this process and the run "
        "directory holds LoadGen's logs and verdict instead of the per-sample results.",
    )
    loadgen.add_argument(
        "--scenario",
        choices=("offline", "single-stream", "multi-stream", "server"),
        help="run the task under LoadGen in this scenario",
    )
    loadgen.add_argument(
        "--mode",
        choices=("accuracy", "performance", "both"),
        default="performance",
        help="LoadGen's mode; both: accuracy, then performance, checked against each other "
        "(default performance)",
    )
    loadgen.add_argument(
        "--loadgen-conf",
        metavar="FILE",
        help="settings in the style of mlperf.conf/user.conf (*.Offline.target_qps = 100)",
    )
    loadgen.add_argument(
        "--min-duration", type=float, metavar="S", help="LoadGen's min duration (default 10 s)"
    )
    loadgen.add_argument(
        "--min-query-count", type=int, metavar="N", help="LoadGen's min query count (default 100)"
    )
    loadgen.add_argument(
        "--target-qps",
        type=float,
        metavar="Q",
        help="offline expected / server scheduled QPS (default: measured in a warm-up)",
    )
    loadgen.add_argument(
        "--timed-post-process",
        action="store_true",
        help="each query also runs the model's post-process before its response (default: "
        "the response is the run stage's output, and the accuracy log is post-processed "
        "afterwards, as in MLPerf)",
    )
    add("--dry-run", action="store_true", help="print the plan and the setup commands; run nothing")
    add(
        "--trace",
        action="store_true",
        help="write DIR/trace.json: each batch's spans per node and host actor, for Perfetto",
    )
    add("--no-progress", action="store_true", help="no progress line on stderr")
    add(
        "--verbose",
        "-v",
        action="store_true",
        help="echo what stage code prints to stderr (it always goes to DIR/stage.log)",
    )
    add_json_flag(parser, "summary.json (with --dry-run: the plan) instead of a table")


def run_options(args: argparse.Namespace) -> RunOptions:
    """The ``RunOptions`` the run flags stand for (checked as they are built)."""
    from pathlib import Path

    from dlspec_ray.options import RunOptions

    given = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    return RunOptions(
        **given,
        actors=args.actors,
        limit=args.limit,
        max_errors=args.max_errors,
        options=parse_options(args.option),
        environment=args.environment,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress=not args.no_progress and not quiet(args),
        batches_per_call=args.batches_per_call,
        ready_timeout_s=args.ready_timeout,
        allow_host_setup=args.allow_host_setup,
        allow_unverified=args.allow_unverified,
        verbose=args.verbose,
        stage_timeout_s=args.stage_timeout,
        retries=args.retries,
        warmup=args.warmup,
        repeats=args.repeats,
        trace=args.trace,
        trust=args.trust,
        pre_actors=args.pre_actors,
        keep_stage_outputs=args.keep_stage_outputs,
    )


def out_location(args: argparse.Namespace) -> Any:
    """``--out`` as given, or with ``--storage-option``s as a ``StorageLocation``."""
    if not args.storage_option:
        return args.out
    from dlspec_ray.results.storage import StorageLocation, parse_storage_options

    if not args.out:
        raise UsageError("--storage-option: applies to an object-storage --out; give --out too")
    return StorageLocation.parse(args.out, parse_storage_options(args.storage_option))


def task_args(args: argparse.Namespace) -> dict[str, Any]:
    """The manifests the flags name, and where else to look them up."""
    return {
        "model": args.model,
        "dataset": args.dataset,
        "software": args.software,
        "hardware": args.hardware,
        "reference": args.reference,
        "manifest_roots": args.manifests,
    }


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.evaluation import dry_run, evaluate

    options = run_options(args)
    where = {"out": out_location(args), "overwrite": args.overwrite, "address": args.address}
    if args.resume and args.dry_run:
        raise UsageError(
            "--resume and --dry-run: a resumed run's plan is the one in its run.json; "
            "`dlspec-ray runs ROOT` shows how far it got. Drop --dry-run to finish it."
        )
    if args.resume:
        where["resume"] = args.resume
    elif not args.model:
        raise UsageError("--model: required (or --resume DIR, to finish an interrupted run)")
    if args.scenario:
        return _loadgen(args, options)
    if args.dry_run:
        plan = dry_run(**task_args(args), run=options, **where)
        if args.json:
            print_json(plan.as_dict())
        else:
            print(plan.describe())
        return 0
    result = evaluate(**task_args(args), run=options, **where)
    if args.json:
        print_json(result.summary)
        note(args, f"run directory: {result.out_dir}")
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


def loadgen_settings(args: argparse.Namespace) -> Any:
    """The ``LoadGenSettings`` of the LoadGen flags: the conf file's, then the flags'."""
    from dlspec_ray.loadgen import LoadGenSettings

    settings = LoadGenSettings(scenario=args.scenario, mode=args.mode)
    if args.loadgen_conf:
        settings = LoadGenSettings.from_conf(
            args.loadgen_conf, scenario=args.scenario, mode=args.mode, base=settings
        )
    given = {
        "min_duration_s": args.min_duration,
        "min_query_count": args.min_query_count,
        "target_qps": args.target_qps,
        "timed_post_process": args.timed_post_process or None,
    }
    return settings.replace(**{k: v for k, v in given.items() if v is not None})


def _loadgen(args: argparse.Namespace, options: RunOptions) -> int:
    """``run --scenario``: a LoadGen run, its table, or its summary as JSON."""
    from dlspec_ray.loadgen import evaluate_loadgen

    if args.resume or args.dry_run:
        raise UsageError("--scenario: --resume and --dry-run are not built for LoadGen runs")
    result = evaluate_loadgen(
        **task_args(args), settings=loadgen_settings(args), run=options, out=args.out,
        overwrite=args.overwrite,
    )  # fmt: skip
    summary = result.summary
    if args.json:
        print_json(summary)
        note(args, f"run directory: {result.out_dir}")
    else:
        print(format_loadgen(summary))
        print(f"\nrun directory: {result.out_dir}")
    if summary["status"] == "loadgen_invalid":
        reasons = "; ".join(summary["loadgen"].get("reasons", [])) or "see its log"
        raise EvaluationFailed(
            f"LoadGen found the {args.scenario} run INVALID ({reasons}); its logs: "
            f"{result.out_dir}/loadgen"
        )
    if summary["status"] == "noncompliant":
        raise EvaluationFailed(
            "the performance run's answers differ from accuracy mode's (the compliance "
            f"check); see loadgen.compliance in {result.out_dir}/summary.json"
        )
    return 0


def format_loadgen(summary: dict[str, Any]) -> str:
    """The LoadGen verdict as the terminal shows it."""
    section = summary["loadgen"]
    lines = [f"dlspec-ray LoadGen run {summary['run_id']}: {section['scenario']}, "
             f"{section['mode']} mode, {summary['samples']:,} samples, batch "
             f"{section['batch_size']}"]  # fmt: skip
    metric = section.get("metric")
    if metric is not None:
        name = metric["name"].replace("_per_s", " per second").replace("_", " ")
        if metric["unit"] == "samples_per_s":
            lines.append(f"  {name}: {metric['value']:,.1f}")
        else:
            lines.append(f"  {name.removesuffix(' ms')}: {metric['value']:.4f} {metric['unit']}")
        lines.append(f"  result: {section['result']}")
        lines += [f"    - {reason}" for reason in section.get("reasons", [])]
    for name, value in (summary.get("accuracy") or {}).items():
        interval = summary["accuracy_ci95"][name]
        lines.append(
            f"  {name}: {value:.4f}  95% CI [{interval['low']:.4f}, {interval['high']:.4f}]"
        )
    compliance = section.get("compliance")
    if compliance is not None:
        verdict = "PASS" if compliance["passed"] else "FAIL"
        lines.append(
            f"  compliance (TEST01's spirit): {verdict}: {compliance['identical']:,} of "
            f"{compliance['checked']:,} logged answers identical to accuracy mode's"
        )
    return "\n".join(lines)


def parse_options(items: Sequence[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs; values are read as YAML, so ``top_k=5`` gives an int."""
    import yaml

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r}: expected KEY=VALUE, for example top_k=5")
        options[key] = yaml.safe_load(value)
    return options

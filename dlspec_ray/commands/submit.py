"""``dlspec-ray submit``: run an evaluation on a Ray cluster as a Ray job.

Takes ``dlspec-ray run``'s arguments; ``--address`` is the cluster's job
server (its dashboard, ``http://HEAD:8265``) and ``--out`` is where the run
directory is copied back to. The task is resolved and checked here before
anything is submitted, so bad manifests fail fast and never reach the cluster.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "remote_run_args"]

import argparse
import os
import shlex
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from dlspec_ray.commands import run as run_command
from dlspec_ray.errors import EvaluationFailed, UsageError

NAME = "submit"
HELP = "submit an evaluation to a Ray cluster as a Ray job"

# run's arguments that mean something else here, or only on this machine.
_NOT_FORWARDED = {
    "model",
    "dataset",
    "software",
    "hardware",
    "reference",
    "address",
    "out",
    "overwrite",
    "manifests",
    "dry_run",
    "no_progress",
    "json",
    "help",
}
_LOG_TAIL_LINES = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_command.add_arguments(parser)
    # Same flags as `run`, but two of them point elsewhere for a job.
    helps = {
        "address": "the Ray job server, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)",
        "out": "where to copy the run directory back to (default: runs/<job id>)",
    }
    for action in parser._actions:
        action.help = helps.get(action.dest, action.help)
    parser.add_argument(
        "--cluster-out",
        metavar="DIR",
        help="the run directory on the cluster (default: ~/dlspec-ray-runs/<job id>)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="print the job id and return at once"
    )


def handle(args: argparse.Namespace) -> int:
    from dlspec_ray.jobs import bundle_task, follow_job
    from dlspec_ray.plan import ClusterView, check_host_setup, environment_kind, plan
    from dlspec_ray.run_output import check_output
    from dlspec_ray.trust import check_trusted

    if args.no_wait and args.out:
        raise UsageError(
            "--out and --no-wait conflict: copying the run directory back needs the job to "
            "finish. Drop --no-wait to wait for it, or drop --out and find the run on the "
            "cluster (--cluster-out)."
        )
    if args.resume or not args.model:
        raise UsageError(
            "submit: give --model; --resume is not built for jobs yet: to finish an "
            "interrupted job's run, submit `dlspec-ray run --resume DIR` as your own job, "
            "or run it on the cluster's head"
        )
    address = _job_server(args.address)
    options = run_command.run_options(args)
    task = _resolve(args)
    check_host_setup(task.hardware, allowed=args.allow_host_setup)
    check_trusted(task, environment_kind(task, options.environment), trust=options.trust)
    _check_local_artifacts(task, args.cache_dir)

    job_id = f"dlspec-ray-{uuid.uuid4().hex[:12]}"
    remote = _remote_out(args)
    if remote is not None:
        # The job writes the run there itself; nothing travels through its log.
        check_output(remote, args.overwrite)
        cluster_out = remote.uri
    else:
        cluster_out = args.cluster_out or f"~/dlspec-ray-runs/{job_id}"
    with tempfile.TemporaryDirectory(prefix="dlspec-ray-job-") as tmp:
        bundle = bundle_task(task.manifests(), Path(tmp) / "job")
        job_args = remote_run_args(args, bundle.manifests)
        if "--trust" not in job_args:
            # Checked against the trusted roots here, where they are; on the cluster the
            # manifests are copies in the job's own folder, which no root names.
            job_args.insert(-1, "--trust")
        entrypoint = shlex.join(
            ["python", "-m", "dlspec_ray.jobs", "--out", cluster_out, "--", *job_args]
        )
        if args.dry_run:
            print(plan(task, options, ClusterView.elsewhere()).describe())
            print(f"job entrypoint: {entrypoint}")
            print(f"job working dir: {', '.join([*bundle.manifests.values(), *bundle.artifacts])}")
            return 0
        client = _client(address)
        try:
            client.submit_job(
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env=_runtime_env(bundle.working_dir, storage=remote is not None),
                metadata={"dlspec_ray_task": task.describe()},
            )
        except (RuntimeError, ConnectionError, OSError) as exc:
            raise _unreachable(address, exc) from None
    print(f"dlspec-ray: submitted job {job_id} to {address}", file=sys.stderr)
    if args.no_wait:
        print(job_id)
        print(
            f"dlspec-ray: follow it with `ray job logs --follow --address {address} {job_id}`; "
            f"its run directory on the cluster: {cluster_out}",
            file=sys.stderr,
        )
        return 0
    return _finish(client, job_id, args, cluster_out, follow_job)


def remote_run_args(args: argparse.Namespace, manifests: dict[str, str]) -> list[str]:
    """``dlspec-ray run`` arguments for the cluster: the shipped manifests, then every
    other run flag the user set, forwarded as given."""
    argv = ["run"]
    for kind in ("model", "dataset", "software", "hardware", "reference"):
        if kind in manifests:
            argv += [f"--{kind}", manifests[kind]]
    probe = argparse.ArgumentParser(add_help=False)
    run_command.add_arguments(probe)
    for action in probe._actions:
        if action.dest in _NOT_FORWARDED or not action.option_strings:
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[0]
        if action.nargs == 0:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return [*argv, "--no-progress"]


def _finish(
    client: Any, job_id: str, args: argparse.Namespace, cluster_out: str, follow: Any
) -> int:
    from dlspec_ray.jobs import JobFailed, ResultBlockFilter, extract_run_dir

    outcome = follow(client, job_id, echo=sys.stdout)
    where = f"on the cluster: {cluster_out}"
    remote = _remote_out(args)
    if remote is not None and (outcome.status == "SUCCEEDED" or outcome.exit_code == 1):
        where = _check_remote_run(remote, job_id)
        print(f"\nrun directory: {where}")
    elif outcome.status == "SUCCEEDED" or outcome.exit_code == 1:
        out_dir = Path(args.out) if args.out else Path("runs") / job_id
        copied = extract_run_dir(outcome.logs, out_dir, overwrite=args.overwrite)
        if copied is not None:
            where = f"{copied} (and {where})"
        print(f"\nrun directory: {where}")
    if outcome.status == "SUCCEEDED":
        return 0
    if outcome.exit_code == 1:
        raise EvaluationFailed(
            f"the job {job_id} ran, but the run failed its reference check or its error "
            f"budget; run directory: {where}"
        )
    lines = ResultBlockFilter()(outcome.logs.splitlines(keepends=True))
    tail = "".join(lines[-_LOG_TAIL_LINES:]).rstrip() or "(the job wrote no log)"
    code = "no exit code" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
    reason = f": {outcome.message}" if outcome.message else ""
    raise JobFailed(
        f"the Ray job {job_id} ended {outcome.status} ({code}){reason}\n"
        f"The last lines of its log:\n{tail}"
    )


def _resolve(args: argparse.Namespace) -> Any:
    from dlspec_ray.task import resolve_task

    return resolve_task(
        args.model,
        args.dataset,
        args.software,
        args.hardware,
        args.reference,
        extra_roots=args.manifests,
    )


def _check_local_artifacts(task: Any, cache_dir: str | None) -> None:
    """Verify local artifacts here, as `run` does, so a bad checksum never reaches a cluster."""
    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.jobs import local_sources

    for manifest in task.manifests().values():
        if manifest is not None:
            fetch_all(local_sources(manifest), Path(cache_dir) if cache_dir else None)


def _job_server(address: str | None) -> str:
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS")
    if not address:
        raise UsageError(
            "--address: give the Ray job server's URL, for example http://HEAD:8265 (the "
            "dashboard port of the head node), or set RAY_API_SERVER_ADDRESS"
        )
    if not address.startswith(("http://", "https://")):
        raise UsageError(
            f"--address {address}: expected the Ray job server's URL, such as "
            "http://HEAD:8265 (the dashboard port), not a GCS address"
        )
    return address.rstrip("/")


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (RuntimeError, ConnectionError, OSError, ValueError) as exc:
        raise _unreachable(address, exc) from None


def _unreachable(address: str, exc: Exception) -> Exception:
    from dlspec_ray.jobs import JobFailed

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return JobFailed(
        f"--address {address}: cannot reach the Ray job server ({first}). Check the address "
        "(http://HEAD:8265, the head node's dashboard port), that the head runs with its "
        "dashboard (`ray start --head --include-dashboard=true`), and that RAY_AUTH_MODE "
        "(and the token, if any) is the same here as on the cluster."
    )


def _remote_out(args: argparse.Namespace) -> Any:
    """``--out`` as a StorageLocation when it is object storage, else None."""
    from dlspec_ray.run_output import is_uri

    if not args.out or not is_uri(args.out):
        return None
    from dlspec_ray.results.storage import StorageLocation

    return StorageLocation.parse(run_command.out_location(args))


def _check_remote_run(remote: Any, job_id: str) -> str:
    """The run the job wrote to object storage: complete only with its summary.json."""
    from dlspec_ray.jobs import JobFailed

    if not remote.child("summary.json").exists():
        raise JobFailed(
            f"the job {job_id} ended, but {remote.uri} holds no summary.json: the run did not "
            "complete there (see the job's log above)"
        )
    return remote.uri


def _runtime_env(working_dir: Path, *, storage: bool = False) -> dict[str, Any]:
    import dlspec_ray
    from dlspec_ray.results.storage import ENV_OPTIONS

    env: dict[str, str] = {}
    if storage:
        # The job writes to object storage as this client would: with the client's endpoint,
        # region and credentials, when it has them set (a cluster may have its own instead).
        names = {v for variables in ENV_OPTIONS.values() for v in variables}
        env = {name: os.environ[name] for name in sorted(names) if os.environ.get(name)}
    return {
        **({"env_vars": env} if env else {}),
        "working_dir": str(working_dir),
        # The cluster runs this client's dlspec-ray, whatever version it has installed.
        "py_modules": [str(Path(dlspec_ray.__file__).parent)],
        "excludes": ["__pycache__", "*.pyc"],
    }

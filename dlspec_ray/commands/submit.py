"""``dlspec-ray submit``: run an evaluation on a Ray cluster as a Ray job.

Takes ``dlspec-ray run``'s arguments; ``--address`` is the cluster's job
server (its dashboard, ``http://HEAD:8265``) and ``--out`` is where the run
directory is copied back to. The task is resolved and checked here before
anything is submitted, so bad manifests fail fast and never reach the cluster.

``ray job submit``'s conventions hold: the address falls back to
``RAY_API_SERVER_ADDRESS``, then ``RAY_ADDRESS``; ``--submission-id`` names the job;
``--runtime-env FILE`` adds the user's runtime environment to the one dlspec-ray sends
(``jobs.merge_runtime_env``). ``--install-packages`` asks Ray to pip-install the software
manifest's ``packages`` for the job, so a stock ``rayproject/ray`` image can run the
framework. ``--json`` prints one JSON document on stdout (the job's id, status and run
directory, and the summary once it is back); the job's log then goes to stderr.
"""

from __future__ import annotations

__all__ = ["HELP", "NAME", "add_arguments", "handle", "remote_run_args"]

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlspec_ray.commands import run as run_command
from dlspec_ray.commands.common import print_json
from dlspec_ray.errors import DLSpecError, EvaluationFailed, UsageError

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
# Where the job server's address comes from when --address is not given, in order (Ray's).
_ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
# A submission id is also a folder name (the default --cluster-out) and part of a URL.
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_command.add_arguments(parser)
    # Same flags as `run`, but two of them point elsewhere for a job.
    helps = {
        "address": "the Ray job server, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, "
        "else RAY_ADDRESS)",
        "out": "where to copy the run directory back to (default: runs/<job id>)",
        "json": "print the job's id, status, run directory and summary as JSON on stdout; "
        "the job's log and messages go to stderr",
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
    parser.add_argument(
        "--submission-id",
        metavar="ID",
        help="the job's id (letters, digits, . _ -; default: dlspec-ray-<random>)",
    )
    parser.add_argument(
        "--runtime-env",
        metavar="FILE",
        help="a YAML or JSON runtime_env merged with the one dlspec-ray sends (env_vars, "
        "pip, py_modules, ...; not working_dir)",
    )
    parser.add_argument(
        "--install-packages",
        action="store_true",
        help="have Ray pip-install the software manifest's packages for the job (for a "
        "cluster whose image lacks the framework, such as a stock rayproject/ray)",
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
    job_id = _submission_id(args.submission_id)
    user_env = _user_runtime_env(args.runtime_env)
    options = run_command.run_options(args)
    task = _resolve(args)
    kind = environment_kind(task, options.environment)
    check_host_setup(task.hardware, allowed=args.allow_host_setup)
    check_trusted(task, kind, trust=options.trust)
    _check_local_artifacts(task, args.cache_dir)
    packages = _packages(task, kind) if args.install_packages else []

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
        runtime_env = _runtime_env(
            bundle.working_dir, storage=remote is not None, packages=packages, user=user_env
        )
        shipped = [*bundle.manifests.values(), *bundle.artifacts]
        if args.dry_run:
            the_plan = plan(task, options, ClusterView.elsewhere())
            if args.json:
                print_json(
                    {
                        "plan": the_plan.as_dict(),
                        "submission_id": job_id,
                        "entrypoint": entrypoint,
                        "working_dir": shipped,
                        "runtime_env": _shown_runtime_env(runtime_env),
                    }
                )
                return 0
            print(the_plan.describe())
            print(f"job entrypoint: {entrypoint}")
            print(f"job working dir: {', '.join(shipped)}")
            if packages:
                print(f"job pip packages: {', '.join(runtime_env['pip'])}")
            return 0
        client = _client(address)
        try:
            client.submit_job(
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env=runtime_env,
                metadata={"dlspec_ray_task": task.describe()},
            )
        except (RuntimeError, ConnectionError, OSError) as exc:
            raise _refused(address, job_id, exc) from None
    print(f"dlspec-ray: submitted job {job_id} to {address}", file=sys.stderr)
    if args.no_wait:
        if args.json:
            print_json(_outcome_json(job_id, address, "SUBMITTED", cluster_out))
        else:
            print(job_id)
        print(
            f"dlspec-ray: follow it with `ray job logs --follow --address {address} {job_id}`; "
            f"its run directory on the cluster: {cluster_out}",
            file=sys.stderr,
        )
        return 0
    return _finish(client, job_id, args, cluster_out, follow_job, address=address)


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
    client: Any,
    job_id: str,
    args: argparse.Namespace,
    cluster_out: str,
    follow: Any,
    *,
    address: str = "",
) -> int:
    from dlspec_ray.jobs import JobFailed, ResultBlockFilter, extract_run_dir

    # With --json, stdout holds the one JSON document: the job's log goes to stderr.
    shown = sys.stderr if args.json else sys.stdout
    outcome = follow(client, job_id, echo=shown)
    where = f"on the cluster: {cluster_out}"
    run_dir: str | None = None
    summary: Any = None
    remote = _remote_out(args)
    if remote is not None and (outcome.status == "SUCCEEDED" or outcome.exit_code == 1):
        where = run_dir = _check_remote_run(remote, job_id)
        summary = _read_summary(lambda: remote.child("summary.json").read_text())
        print(f"\nrun directory: {where}", file=shown)
    elif outcome.status == "SUCCEEDED" or outcome.exit_code == 1:
        out_dir = Path(args.out) if args.out else Path("runs") / job_id
        copied = extract_run_dir(outcome.logs, out_dir, overwrite=args.overwrite)
        if copied is not None:
            where = f"{copied} (and {where})"
            run_dir = str(copied)
            summary = _read_summary(lambda: (copied / "summary.json").read_text())
        print(f"\nrun directory: {where}", file=shown)
    if args.json:
        print_json(
            {
                **_outcome_json(job_id, address, outcome.status, cluster_out),
                "exit_code": outcome.exit_code,
                "message": outcome.message,
                "run_dir": run_dir,
                "summary": summary,
            }
        )
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
        f"The last lines of its log:\n{tail}",
        exit_code=2 if outcome.exit_code == 2 else None,
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
    """``--address``, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS`` (as ``ray job
    submit`` looks), checked to be the job server's URL."""
    origin = f"--address {address}"
    if not address:
        found = next(((n, os.environ[n]) for n in _ADDRESS_ENV if os.environ.get(n)), None)
        if found is None:
            raise UsageError(
                "--address: give the Ray job server's URL, for example http://HEAD:8265 (the "
                "dashboard port of the head node), or set RAY_API_SERVER_ADDRESS (or "
                "RAY_ADDRESS)"
            )
        origin, address = f"{found[0]}={found[1]}", found[1]
    if not address.startswith(("http://", "https://")):
        raise UsageError(
            f"{origin}: expected the Ray job server's URL, such as http://HEAD:8265 (the "
            "dashboard port), not a GCS address; give --address, or set "
            "RAY_API_SERVER_ADDRESS, to the job server"
        )
    return address.rstrip("/")


def _submission_id(given: str | None) -> str:
    if given is None:
        return f"dlspec-ray-{uuid.uuid4().hex[:12]}"
    if not _SUBMISSION_ID.fullmatch(given):
        raise UsageError(
            f"--submission-id {given!r}: expected up to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it also names the run's folder on the cluster)"
        )
    return given


def _user_runtime_env(path: str | None) -> dict[str, Any]:
    from dlspec_ray.jobs import load_runtime_env

    return {} if path is None else load_runtime_env(path)


def _packages(task: Any, kind: str) -> list[str]:
    """The software manifest's packages, for the job's pip; none for environments that
    bring their own (a process environment's venv, a docker image)."""
    software = task.software
    packages = list(software.packages) if software is not None else []
    if not packages:
        name = software.ref if software is not None else "(none given)"
        raise UsageError(
            f"--install-packages: the software manifest {name} has no `packages:` to "
            "install; drop the flag, or list the framework's packages in the manifest"
        )
    if kind != "inline":
        print(
            f"dlspec-ray: --install-packages: the {kind} environment installs its own "
            "packages; the job's Python gets them too",
            file=sys.stderr,
        )
    return packages


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        with _address_env_hidden():
            return JobSubmissionClient(address)
    except (RuntimeError, ConnectionError, OSError, ValueError) as exc:
        raise _unreachable(address, exc) from None


@contextlib.contextmanager
def _address_env_hidden() -> Iterator[None]:
    """Ray's client takes ``RAY_API_SERVER_ADDRESS`` or ``RAY_ADDRESS`` over the address it
    is given; the address was chosen already (``_job_server``), so they are hidden while
    the client is made."""
    saved = {name: os.environ.pop(name) for name in _ADDRESS_ENV if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _refused(address: str, job_id: str, exc: Exception) -> DLSpecError:
    """The job server answered but refused the job (an id in use), or did not answer."""
    text = str(exc)
    if "already exists" in text or "already in use" in text:
        return UsageError(
            f"--submission-id {job_id}: the job server at {address} has a job of that id "
            "already; choose another id, or leave --submission-id out"
        )
    if "runtime_env" in text or "runtime env" in text.lower():
        first = text.strip().splitlines()[0]
        return UsageError(f"--runtime-env: the job server refused the runtime_env: {first}")
    return _unreachable(address, exc)


def _unreachable(address: str, exc: Exception) -> Exception:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(
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


def _outcome_json(job_id: str, address: str, status: str, cluster_out: str) -> dict[str, Any]:
    return {"job_id": job_id, "address": address, "status": status, "cluster_out": cluster_out}


def _read_summary(read: Any) -> Any:
    """summary.json as data, or None when it cannot be read (the run says why)."""
    try:
        return json.loads(read())
    except (OSError, ValueError):
        return None


def _shown_runtime_env(runtime_env: dict[str, Any]) -> dict[str, Any]:
    """The runtime_env for a dry run's JSON, with the values of env_vars hidden (they may
    be the object store's credentials)."""
    shown = dict(runtime_env)
    if "env_vars" in shown:
        shown["env_vars"] = {name: "..." for name in shown["env_vars"]}
    return shown


def _runtime_env(
    working_dir: Path,
    *,
    storage: bool = False,
    packages: list[str] | None = None,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import dlspec_ray
    from dlspec_ray.jobs import merge_runtime_env
    from dlspec_ray.results.storage import ENV_OPTIONS

    env: dict[str, str] = {}
    if storage:
        # The job writes to object storage as this client would: with the client's endpoint,
        # region and credentials, when it has them set (a cluster may have its own instead).
        names = {v for variables in ENV_OPTIONS.values() for v in variables}
        env = {name: os.environ[name] for name in sorted(names) if os.environ.get(name)}
    ours: dict[str, Any] = {
        **({"env_vars": env} if env else {}),
        "working_dir": str(working_dir),
        # The cluster runs this client's dlspec-ray, whatever version it has installed.
        "py_modules": [str(Path(dlspec_ray.__file__).parent)],
        "excludes": ["__pycache__", "*.pyc"],
        **({"pip": list(packages)} if packages else {}),
    }
    return merge_runtime_env(ours, user or {})

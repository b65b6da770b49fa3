"""Evaluations as Ray jobs: what travels to the cluster, and how the run comes back.

The client resolves and checks the task first (bad input costs milliseconds
and never reaches the cluster), then ships a working dir holding copies of the
task's manifests and their local artifacts, with each manifest's ``source:``
rewritten to point at its shipped copy. dlspec-ray's own code travels as a
``py_modules`` entry, so the cluster runs the client's version of it.

A user's own runtime environment (``submit --runtime-env FILE``, YAML or JSON, what
``ray job submit --runtime-env`` takes) is merged with that: its ``env_vars`` beside
dlspec-ray's, its ``py_modules``, ``excludes`` and ``pip`` packages after dlspec-ray's, every
other field as given; only ``working_dir`` is dlspec-ray's own (it holds the manifests).

On the cluster, ``python -m dlspec_ray.jobs`` runs ``dlspec-ray run`` and then
prints the finished run directory into the job's log as one framed, base64
tar.gz block: the Ray job server's only channel back to the client is the log,
so that is how ``summary.json`` and the Parquet files come home. A run
directory bigger than ``MAX_RESULT_BYTES`` stays on the cluster and the client
says where.
"""

from __future__ import annotations

__all__ = [
    "MAX_RESULT_BYTES",
    "RESULT_BEGIN",
    "RESULT_END",
    "JobBundle",
    "JobFailed",
    "JobOutcome",
    "ResultBlockFilter",
    "bundle_task",
    "emit_run_dir",
    "extract_run_dir",
    "follow_job",
    "job_main",
    "load_runtime_env",
    "local_sources",
    "merge_runtime_env",
]

import asyncio
import base64
import dataclasses
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dlspec_ray.artifacts import local_path
from dlspec_ray.errors import RunFailed, UsageError
from dlspec_ray.spec.types import Manifest, Source

RESULT_BEGIN = "==dlspec-ray-run-dir== begin"
RESULT_END = "==dlspec-ray-run-dir== end"
MAX_RESULT_BYTES = 64 * 2**20
_LINE = 76
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobFailed(RunFailed):
    """The Ray job ran and failed (exit 1), or its run refused its input on the cluster: then
    ``submit`` exits with the job's own code, 2, as ``run`` would have there."""

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


@dataclass(frozen=True)
class JobBundle:
    """The job's working dir: manifest copies by kind, and the artifacts shipped with them."""

    working_dir: Path
    manifests: dict[str, str]
    artifacts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    status: str
    exit_code: int | None
    logs: str
    message: str = ""


def bundle_task(manifests: dict[str, Manifest | None], working_dir: Path) -> JobBundle:
    """Copy each manifest, and every local artifact it names, into ``working_dir``.

    Remote (http/https) sources stay as they are: the cluster fetches them.
    """
    working_dir.mkdir(parents=True, exist_ok=True)
    shipped: dict[str, str] = {}
    artifacts: list[str] = []
    for kind, manifest in manifests.items():
        if manifest is None:
            continue
        if manifest.path is None:
            raise UsageError(
                f"{kind} {manifest.ref}: a manifest built in memory cannot be submitted; "
                "save it as a YAML file and give its path"
            )
        text = Path(manifest.path).read_text()
        rel_manifest = Path("manifests") / kind / Path(manifest.path).name
        for source in local_sources(manifest):
            original = local_path(source)
            rel_artifact = Path("artifacts") / kind / source.name / original.name
            target = working_dir / rel_artifact
            target.parent.mkdir(parents=True, exist_ok=True)
            if original.is_dir():
                shutil.copytree(original, target)
            else:
                shutil.copy2(original, target)
            artifacts.append(str(rel_artifact))
            text = _rewrite_source(text, source, f"../../{rel_artifact.as_posix()}", manifest)
        (working_dir / rel_manifest).parent.mkdir(parents=True, exist_ok=True)
        (working_dir / rel_manifest).write_text(text)
        shipped[kind] = rel_manifest.as_posix()
    return JobBundle(working_dir=working_dir, manifests=shipped, artifacts=artifacts)


def follow_job(
    client: Any, job_id: str, *, echo: TextIO | None = sys.stdout, poll_s: float = 1.0
) -> JobOutcome:
    """Stream the job's log to ``echo`` (without the result block) until it ends.

    The live tail is only a preview: Ray's log stream can close before the job
    ends, and on a loaded machine it did, dropping the summary table. So once
    the job is over, its whole log is read and whatever the tail did not show
    is echoed, through the same filter, and the outcome carries that whole log.
    """
    shown = _LogEcho(echo) if echo is not None else None
    if shown is not None:
        asyncio.run(shown.tail(client, job_id))
    while True:
        info = client.get_job_info(job_id)
        status = str(getattr(info.status, "value", info.status))
        if status in _TERMINAL:
            break
        time.sleep(poll_s)
    logs = client.get_job_logs(job_id)
    if shown is not None:
        shown.finish(logs)
    return JobOutcome(
        job_id=job_id,
        status=status,
        exit_code=getattr(info, "driver_exit_code", None),
        logs=logs,
        message=str(getattr(info, "message", "") or ""),
    )


class _LogEcho:
    """Echoes a job's log once, whole lines only: first as the tail streams it, then the rest.

    ``done`` counts the characters of the log already echoed (as whole lines),
    so the full log read at the end can be echoed from there without repeats.
    """

    def __init__(self, echo: TextIO) -> None:
        self.echo = echo
        self.keep = ResultBlockFilter()
        self.done = 0
        self.pending = ""

    async def tail(self, client: Any, job_id: str) -> None:
        try:
            async for chunk in client.tail_job_logs(job_id):
                self.feed(chunk)
        except (RuntimeError, OSError):  # the stream broke (Ray's words); the job goes on
            pass

    def feed(self, text: str) -> None:
        """Echo the whole lines of ``text``; a trailing part line waits for the rest of it."""
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.echo.writelines(self.keep([line + "\n" for line in lines]))
            self.echo.flush()
            self.done += sum(len(line) + 1 for line in lines)

    def finish(self, logs: str) -> None:
        """Echo what of the whole log ``logs`` the tail did not, ending its last line."""
        self.pending = ""
        self.feed(logs[self.done :])
        if self.pending:
            self.feed("\n")


class ResultBlockFilter:
    """Drops the base64 block that carries the run directory from log lines, across chunks."""

    def __init__(self) -> None:
        self.inside = False

    def __call__(self, lines: Iterable[str]) -> list[str]:
        shown = []
        for line in lines:
            if line.startswith(RESULT_BEGIN):
                self.inside = True
                size = line.split()[-1]
                shown.append(f"(the run directory comes back through the log: {size} bytes)\n")
            elif self.inside:
                self.inside = not line.startswith(RESULT_END)
            else:
                shown.append(line)
        return shown


def extract_run_dir(logs: str, out_dir: Path, *, overwrite: bool = False) -> Path | None:
    """Unpack the run directory block of ``logs`` into ``out_dir``; None when there is none.

    The folder appears whole or not at all: it is unpacked beside ``out_dir``
    and renamed into place by the results layer's rules, which replace only a
    previous run (``--overwrite``), never a folder of anything else.
    """
    match = re.search(
        rf"^{re.escape(RESULT_BEGIN)} ([0-9a-f]{{64}}) (\d+)\n(.*?)^{re.escape(RESULT_END)}",
        logs,
        re.MULTILINE | re.DOTALL,
    )
    if match is None:
        return None
    digest, size = match.group(1), int(match.group(2))
    payload = base64.b64decode("".join(match.group(3).split()))
    if len(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
        raise JobFailed(
            f"the run directory in the job's log is damaged (expected {size} bytes with sha256 "
            f"{digest[:12]}..., got {len(payload)} bytes); the run is still on the cluster"
        )
    from dlspec_ray.artifacts import safe_unpack
    from dlspec_ray.results.run_dir import check_out_dir, publish

    try:
        check_out_dir(out_dir, overwrite)
    except UsageError as exc:
        raise UsageError(f"{exc}. The run is still on the cluster.") from None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        archive = work / "run.tar.gz"
        archive.write_bytes(payload)
        publish(safe_unpack(archive, work / "run"), out_dir, overwrite)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


def job_main(argv: Sequence[str] | None = None) -> int:
    """The job's entry point: ``python -m dlspec_ray.jobs --out DIR -- run ARGS...``.

    Runs the evaluation, then prints the run directory (when it exists and is
    small enough) as the framed block ``extract_run_dir`` reads. Exits with the
    run's own exit code, so the job's status says whether it passed.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[0] != "--out" or "--" not in args:
        print("usage: python -m dlspec_ray.jobs --out DIR -- run ARGS...", file=sys.stderr)
        return 2
    run_args = args[args.index("--") + 1 :]
    from dlspec_ray.cli import main
    from dlspec_ray.run_output import is_uri

    if is_uri(args[1]):  # object storage: the run is written there, nothing comes back here
        return main([*run_args, "--out", args[1]])
    out_dir = Path(os.path.expanduser(args[1]))
    code = main([*run_args, "--out", str(out_dir)])
    sys.stdout.flush()
    sys.stderr.flush()
    if out_dir.is_dir():
        emit_run_dir(out_dir, sys.stdout)
    return code


def emit_run_dir(out_dir: Path, stream: TextIO, limit: int = MAX_RESULT_BYTES) -> bool:
    """Print ``out_dir`` as a framed base64 tar.gz block; False when it is too big to send."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(out_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(out_dir).as_posix(), recursive=False)
    payload = buffer.getvalue()
    if len(payload) > limit:
        print(
            f"dlspec-ray: the run directory is {len(payload)} bytes packed, more than the "
            f"{limit} that come back through the job's log; copy it from the cluster",
            file=stream,
            flush=True,
        )
        return False
    text = base64.b64encode(payload).decode()
    stream.write(f"{RESULT_BEGIN} {hashlib.sha256(payload).hexdigest()} {len(payload)}\n")
    for start in range(0, len(text), _LINE):
        stream.write(text[start : start + _LINE] + "\n")
    stream.write(f"{RESULT_END}\n")
    stream.flush()
    return True


# runtime_env fields whose value is a list that dlspec-ray's entries come first in.
_LIST_FIELDS = ("py_modules", "excludes")


def load_runtime_env(path: str | Path) -> dict[str, Any]:
    """A runtime environment from a YAML or JSON file (JSON is YAML), checked enough that
    ``merge_runtime_env`` can merge it; anything wrong is a ``UsageError`` naming the file."""
    import yaml

    where = f"--runtime-env {path}"
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: not YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{where}: expected a mapping of runtime_env fields (such as env_vars: or pip:), "
            f"got {type(data).__name__}"
        )
    if "working_dir" in data:
        raise UsageError(
            f"{where}: working_dir: dlspec-ray ships the task's manifests and artifacts as the "
            "job's working_dir; drop the field, and put your own files under py_modules"
        )
    env_vars = data.get("env_vars", {})
    if not isinstance(env_vars, dict) or not all(isinstance(v, str) for v in env_vars.values()):
        raise UsageError(f"{where}: env_vars: expected a mapping of names to strings")
    for name in _LIST_FIELDS:
        if not isinstance(data.get(name, []), list):
            raise UsageError(f"{where}: {name}: expected a list")
    pip = data.get("pip", [])
    if isinstance(pip, str):  # a requirements file, relative to this one, as Ray reads it
        requirements = Path(path).parent / os.path.expanduser(pip)
        try:
            lines = requirements.read_text().splitlines()
        except OSError as exc:
            raise UsageError(
                f"{where}: pip: cannot read the requirements file {requirements} "
                f"({exc.strerror or exc})"
            ) from None
        data["pip"] = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    elif not isinstance(pip, list | dict) or not isinstance(
        pip if isinstance(pip, list) else pip.get("packages", []), list
    ):
        raise UsageError(
            f"{where}: pip: expected a list of requirements, a requirements file's path, "
            "or a mapping with packages: (a list)"
        )
    return data


def merge_runtime_env(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """dlspec-ray's runtime environment with the user's merged in (see the module's
    docstring); the user's ``env_vars`` win over dlspec-ray's of the same name."""
    merged = {**theirs, **ours}
    env_vars = {**ours.get("env_vars", {}), **theirs.get("env_vars", {})}
    if env_vars:
        merged["env_vars"] = env_vars
    for name in _LIST_FIELDS:
        items = [*ours.get(name, []), *theirs.get(name, [])]
        if items:
            merged[name] = list(dict.fromkeys(items))
    if "pip" in ours or "pip" in theirs:
        merged["pip"] = _merge_pip(ours.get("pip", []), theirs.get("pip", []))
    return merged


def _merge_pip(ours: list[str], theirs: Any) -> Any:
    """The user's pip field with dlspec-ray's packages first, in whichever form it has."""
    if isinstance(theirs, dict):
        packages = list(dict.fromkeys([*ours, *theirs.get("packages", [])]))
        return {**theirs, "packages": packages}
    return list(dict.fromkeys([*ours, *theirs]))


def local_sources(manifest: Manifest) -> list[Source]:
    """Every local ``Source`` the manifest holds, whatever field it sits in."""
    found: list[Source] = []
    for f in dataclasses.fields(manifest):
        value = getattr(manifest, f.name)
        items = value if isinstance(value, tuple) else (value,)
        found += [s for s in items if isinstance(s, Source) and not s.is_remote]
    return found


def _rewrite_source(text: str, source: Source, new: str, manifest: Manifest) -> str:
    pattern = re.compile(
        rf"(\bsource:[ \t]*)([\"']?){re.escape(source.source)}\2(?=[ \t]*(?:[,}}#\n]|$))"
    )
    rewritten, count = pattern.subn(lambda m: f'{m.group(1)}"{new}"', text)
    if count == 0:
        where = f"{source.field}.source" if source.field else "source"
        raise UsageError(
            f"{manifest.path}: {where}: cannot find `source: {source.source}` "
            "in the file to point it at the copy shipped with the job; write the source on "
            "one line as `source: PATH`"
        )
    return rewritten


if __name__ == "__main__":
    sys.exit(job_main())

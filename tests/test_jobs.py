"""What travels with a Ray job, and how the run directory comes back through its log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.errors import UsageError
from dlspec_ray.jobs import (
    RESULT_BEGIN,
    JobFailed,
    ResultBlockFilter,
    bundle_task,
    emit_run_dir,
    extract_run_dir,
    follow_job,
    job_main,
    load_runtime_env,
    merge_runtime_env,
)
from dlspec_ray.spec.loader import load_manifest
from dlspec_ray.task import resolve_task

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_the_bundle_holds_the_manifests_and_their_local_artifacts(
    mnist_manifests, repo_cwd, tmp_path, where
):
    if where == "absolute":  # the copies' sources are absolute paths into the repo
        task = resolve_task(mnist_manifests.path("model"), mnist_manifests.path("dataset"))
    else:  # the shipped manifests' sources are relative to the manifest
        task = resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0", "onnxruntime-cpu@1.0.0")
    bundle = bundle_task(task.manifests(), tmp_path / "job")
    assert bundle.manifests["model"] == "manifests/model/mnist-8.yaml"
    assert "artifacts/model/graph/mnist-8-dynbatch.onnx" in bundle.artifacts
    assert "artifacts/dataset/images/t10k-images-idx3-ubyte.gz" in bundle.artifacts
    for kind in ("model", "dataset"):
        copy = load_manifest(tmp_path / "job" / bundle.manifests[kind])
        sources = copy.artifacts if kind == "model" else copy.sources
        assert all(s.source.startswith("../../artifacts/") for s in sources)
        # The copies verify against their checksums from their new place.
        assert set(fetch_all(sources, tmp_path / "cache")) == {s.name for s in sources}


def test_a_source_written_across_lines_cannot_be_pointed_at_its_copy(mnist_manifests, tmp_path):
    mnist_manifests.edit("dataset", "    source: /", "    source: >-\n      /")
    task = resolve_task(mnist_manifests.path("model"), mnist_manifests.path("dataset"))
    with pytest.raises(UsageError, match=r"mnist-test\.yaml: sources\[0\]\.source: cannot find"):
        bundle_task(task.manifests(), tmp_path / "job")


def run_dir(root: Path) -> Path:
    (root / "samples").mkdir(parents=True)
    (root / "summary.json").write_text('{"run_id": "r"}')
    (root / "samples" / "shard-00000.parquet").write_bytes(bytes(range(256)) * 40)
    return root


def test_a_run_directory_comes_back_through_the_log(tmp_path):
    log = io.StringIO()
    assert emit_run_dir(run_dir(tmp_path / "cluster"), log)
    text = "job output\n" + log.getvalue() + "more output\n"
    back = extract_run_dir(text, tmp_path / "back")
    assert back == tmp_path / "back"
    assert (back / "summary.json").read_text() == '{"run_id": "r"}'
    assert (back / "samples" / "shard-00000.parquet").read_bytes() == bytes(range(256)) * 40
    assert extract_run_dir("no block here\n", tmp_path / "none") is None


def test_a_damaged_block_is_refused(tmp_path):
    log = io.StringIO()
    emit_run_dir(run_dir(tmp_path / "cluster"), log)
    lines = log.getvalue().splitlines(keepends=True)
    lines[1] = lines[1][:10] + ("A" if lines[1][10] != "A" else "B") + lines[1][11:]
    with pytest.raises(JobFailed, match="the run directory in the job's log is damaged"):
        extract_run_dir("".join(lines), tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_an_existing_out_dir_is_only_replaced_with_overwrite(tmp_path):
    log = io.StringIO()
    emit_run_dir(run_dir(tmp_path / "cluster"), log)
    previous = run_dir(tmp_path / "back")
    (previous / "old").write_text("old")
    with pytest.raises(UsageError, match="pass --overwrite to replace it"):
        extract_run_dir(log.getvalue(), tmp_path / "back")
    extract_run_dir(log.getvalue(), tmp_path / "back", overwrite=True)
    assert not (tmp_path / "back" / "old").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "cluster"]


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path):
    log = io.StringIO()
    emit_run_dir(run_dir(tmp_path / "cluster"), log)
    (tmp_path / "back" / "sub").mkdir(parents=True)
    (tmp_path / "back" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"(?s)holds other files: notes\.txt, sub/.*still on the"):
        extract_run_dir(log.getvalue(), tmp_path / "back", overwrite=True)
    assert (tmp_path / "back" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "cluster"]


def test_a_run_directory_too_big_for_the_log_stays_on_the_cluster(tmp_path):
    log = io.StringIO()
    assert not emit_run_dir(run_dir(tmp_path / "cluster"), log, limit=100)
    assert RESULT_BEGIN not in log.getvalue()
    assert "copy it from the cluster" in log.getvalue()


def test_the_block_is_hidden_from_the_streamed_log_across_chunks(tmp_path):
    log = io.StringIO()
    emit_run_dir(run_dir(tmp_path / "cluster"), log)
    lines = ["before\n", *log.getvalue().splitlines(keepends=True), "after\n"]
    keep = ResultBlockFilter()
    shown = keep(lines[:3]) + keep(lines[3:])
    assert shown[0] == "before\n" and shown[-1] == "after\n"
    assert len(shown) == 3 and "comes back through the log" in shown[1]


@pytest.mark.usefixtures("ray_session")
def test_the_job_entry_point_runs_the_evaluation_and_prints_its_run_dir(
    mnist_manifests, tmp_path, capsys
):
    args = ["--out", str(tmp_path / "cluster"), "--", *mnist_manifests.run_args("--limit", "128")]
    assert job_main(args) == 0
    back = extract_run_dir(capsys.readouterr().out, tmp_path / "back")
    assert back is not None
    sent = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    assert json.loads((back / "summary.json").read_text()) == sent
    assert sent["samples"] == 128


def test_the_job_entry_point_needs_its_arguments(capsys):
    assert job_main(["run", "--model", "x"]) == 2
    assert "usage: python -m dlspec_ray.jobs --out DIR -- run ARGS" in capsys.readouterr().err


# A job's whole log: lines, the run directory block, and the summary table after it.
JOB_LOG = (
    "starting\n"
    f"{RESULT_BEGIN} {'0' * 64} 3\n"
    "QUJD\n"
    "==dlspec-ray-run-dir== end\n"
    "  top1          0.9890  over 10,000 labelled samples\n"
    "reference mnist-8-onnxruntime-reference@1.0.0: PASS"  # no newline at the end
)
SHOWN = (
    "starting\n"
    "(the run directory comes back through the log: 3 bytes)\n"
    "  top1          0.9890  over 10,000 labelled samples\n"
    "reference mnist-8-onnxruntime-reference@1.0.0: PASS\n"
)


class FakeJobClient:
    """The three calls ``follow_job`` makes, with a tail that streams only ``streamed``.

    Ray's log stream can close before the job ends (seen on a loaded machine),
    or break with a RuntimeError; the whole log is there once the job is over.
    """

    def __init__(self, streamed: list[str], *, breaks: bool = False, running_polls: int = 0):
        self.streamed, self.breaks, self.running_polls = streamed, breaks, running_polls

    async def tail_job_logs(self, job_id):
        for chunk in self.streamed:
            yield chunk
        if self.breaks:
            raise RuntimeError("WebSocket connection closed unexpectedly with close code 1006")

    def get_job_info(self, job_id):
        from types import SimpleNamespace

        status = "RUNNING" if self.running_polls > 0 else "SUCCEEDED"
        self.running_polls -= 1
        return SimpleNamespace(status=status, driver_exit_code=0, message="")

    def get_job_logs(self, job_id):
        return JOB_LOG


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize(
    ("streamed", "breaks"),
    [
        ([], False),  # the stream closed at once
        (["start"], False),  # ... in the middle of the first line
        (["starting\n", JOB_LOG[9:60]], False),  # ... in the middle of the block
        (chunks(JOB_LOG[:-20], 7), False),  # ... in the middle of the last line
        (chunks(JOB_LOG, 5), False),  # everything came through the tail
        (["starting\n", "==dlspec"], True),  # the stream broke
    ],
    ids=["at-once", "mid-line", "mid-block", "mid-last-line", "whole", "broken"],
)
def test_the_whole_log_is_echoed_once_when_the_tail_ends_early(streamed, breaks):
    echo = io.StringIO()
    outcome = follow_job(FakeJobClient(streamed, breaks=breaks), "job-1", echo=echo)
    assert echo.getvalue() == SHOWN
    assert outcome.logs == JOB_LOG and outcome.status == "SUCCEEDED"


def test_the_log_is_read_only_after_the_job_has_ended():
    echo = io.StringIO()
    client = FakeJobClient(["starting\n"], running_polls=3)
    outcome = follow_job(client, "job-1", echo=echo, poll_s=0)
    assert client.running_polls < 0 and outcome.status == "SUCCEEDED"
    assert echo.getvalue() == SHOWN


OURS = {
    "env_vars": {"AWS_REGION": "here"},
    "working_dir": "/tmp/job",
    "py_modules": ["/src/dlspec_ray"],
    "excludes": ["*.pyc"],
    "pip": ["onnxruntime==1.32.0"],
}


def test_a_users_runtime_env_is_merged_with_what_submit_sends(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned\nrich==13.0.0\n\nonnxruntime==1.32.0\n")
    path = tmp_path / "env.yaml"
    path.write_text(
        "env_vars: {AWS_REGION: mine, OMP_NUM_THREADS: '2'}\n"
        "py_modules: [/src/mine]\n"
        "pip: requirements.txt\n"
        "config: {setup_timeout_seconds: 1200}\n"
    )
    merged = merge_runtime_env(OURS, load_runtime_env(path))
    assert merged == {
        # The user's variables win over dlspec-ray's of the same name.
        "env_vars": {"AWS_REGION": "mine", "OMP_NUM_THREADS": "2"},
        "working_dir": "/tmp/job",
        "py_modules": ["/src/dlspec_ray", "/src/mine"],
        "excludes": ["*.pyc"],
        # dlspec-ray's packages first, the requirements file's after, each once.
        "pip": ["onnxruntime==1.32.0", "rich==13.0.0"],
        "config": {"setup_timeout_seconds": 1200},
    }


def test_a_pip_mapping_keeps_its_options_and_gains_the_packages(tmp_path):
    path = tmp_path / "env.json"  # JSON is YAML
    path.write_text('{"pip": {"packages": ["rich==13.0.0"], "pip_check": false}}')
    merged = merge_runtime_env(OURS, load_runtime_env(path))
    assert merged["pip"] == {
        "packages": ["onnxruntime==1.32.0", "rich==13.0.0"],
        "pip_check": False,
    }
    assert merge_runtime_env({"working_dir": "/w"}, {}) == {"working_dir": "/w"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, r"env\.yaml: cannot read it"),
        ("env_vars: [a\n", r"env\.yaml: not YAML or JSON"),
        ("[1, 2]\n", r"env\.yaml: expected a mapping of runtime_env fields .* got list"),
        ("working_dir: /mine\n", r"env\.yaml: working_dir: dlspec-ray ships the task"),
        ("env_vars: {N: 2}\n", r"env\.yaml: env_vars: expected a mapping of names to strings"),
        ("py_modules: /src/mine\n", r"env\.yaml: py_modules: expected a list"),
        ("pip: 3\n", r"env\.yaml: pip: expected a list of requirements"),
        ("pip: missing.txt\n", r"pip: cannot read the requirements file .*missing\.txt"),
    ],
    ids=[
        "missing-file",
        "not-yaml",
        "not-a-mapping",
        "working-dir",
        "env-var-not-a-string",
        "py-modules-not-a-list",
        "pip-not-a-list",
        "missing-requirements-file",
    ],
)
def test_a_bad_runtime_env_file_is_bad_input(tmp_path, text, match):
    path = tmp_path / "env.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError, match=match):
        load_runtime_env(path)

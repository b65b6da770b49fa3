"""``dlspec-ray submit`` against a real local head (``ray start --head``, job server on
127.0.0.1:26102, ports 26100-26169, own temp dir, stopped by PID), and its bad inputs.

The client never connects to Ray: it talks to the job server over HTTP, so it runs in
this process beside the shared test Ray.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
PORT_BASE = 26100
NOWHERE = "http://127.0.0.1:26999"  # in this port range; nothing listens there


@pytest.fixture(autouse=True)
def _same_auth_mode_as_the_head(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture(scope="module")
def job_head(ray_clusters, tmp_path_factory):
    """A head node that advertises what `dlspec-ray node-resources` detects here."""
    temp = tmp_path_factory.mktemp("job-head")
    detected = subprocess.run(
        [sys.executable, "-m", "dlspec_ray.cli", "node-resources"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    head = ray_clusters.start_head(
        port_base=PORT_BASE,
        num_cpus=2,
        resources=json.loads(detected),
        env={"DLSPEC_RAY_CACHE": str(temp / "cluster-cache")},
    )
    yield head
    head.stop()


def mnist_args(*extra: str) -> list[str]:
    return [
        "submit",
        "--model", "mnist-8@1.0.0",
        "--dataset", "mnist-test@1.0.0",
        "--software", "onnxruntime-cpu@1.0.0",
        "--hardware", "x86-64-cpu@1.0.0",
        *extra,
    ]  # fmt: skip


def test_the_submitted_mnist_job_gives_0_9890(job_head, repo_cwd, tmp_path, capsys):
    args = mnist_args(
        "--reference", "mnist-8-onnxruntime-reference@1.0.0",
        "--batch-size", "256",
        "--address", job_head.dashboard_url,
        "--out", str(tmp_path / "out"),
        "--cluster-out", str(tmp_path / "on-the-cluster"),
    )  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    # Echoed from the job's log, whole and once, however early Ray's log tail closed. Any
    # spacing: the table's value column is as wide as its widest value, the throughput,
    # which gains a digit on a fast machine.
    top1 = r"^ +top1 +0\.9890  95% CI \[0\.9868, 0\.9909\], over 10,000 labelled samples$"
    assert len(re.findall(top1, out, re.M)) == 1
    assert out.count("reference mnist-8-onnxruntime-reference@1.0.0: PASS") == 1
    assert f"run directory: {tmp_path / 'out'} (and on the cluster: " in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["accuracy"]["top1"] == 0.989 and summary["reference"]["verdict"] == "PASS"
    assert summary["ray"]["embedded"] is False
    assert pq.read_table(tmp_path / "out" / "samples").num_rows == 10_000
    assert (tmp_path / "on-the-cluster" / "summary.json").exists()


def test_a_job_that_fails_gives_the_tail_of_its_log(job_head, mnist_manifests, tmp_path, capsys):
    mnist_manifests.edit(
        "model", "import onnxruntime as ort", "raise RuntimeError('boom: no such provider')"
    )
    args = [
        "submit",
        *mnist_manifests.run_args()[1:],
        "--address", job_head.dashboard_url,
        "--out", str(tmp_path / "out"),
        "--cluster-out", str(tmp_path / "on-the-cluster"),
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ended FAILED (exit code 2)" in err
    assert "The last lines of its log:" in err
    assert "boom: no such provider" in err.split("The last lines of its log:")[1]
    assert not (tmp_path / "out").exists()


def test_no_wait_returns_the_job_id(job_head, repo_cwd, tmp_path, capsys):
    from ray.job_submission import JobSubmissionClient

    args = mnist_args(
        "--limit", "500",
        "--address", job_head.dashboard_url,
        "--cluster-out", str(tmp_path / "on-the-cluster"),
        "--no-wait",
    )  # fmt: skip
    assert main(args) == 0
    job_id = capsys.readouterr().out.strip()
    assert job_id.startswith("dlspec-ray-")
    client = JobSubmissionClient(job_head.dashboard_url)
    # Polls for the job's end; the deadline only bounds a hung job, and is generous for a
    # loaded 2-core machine, where the job's runtime env and its Ray take long to start.
    deadline = time.monotonic() + 600
    while str(client.get_job_status(job_id)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"the job {job_id} did not end within 600 s"
        time.sleep(1)
    assert str(client.get_job_status(job_id)) == "SUCCEEDED"
    assert (tmp_path / "on-the-cluster" / "summary.json").exists()


def test_ray_address_runtime_env_submission_id_and_json(
    job_head, repo_cwd, tmp_path, capsys, monkeypatch
):
    """`ray job submit`'s conventions: no --address, so RAY_ADDRESS (the fallback after
    RAY_API_SERVER_ADDRESS) names the job server; the job gets the id asked for and the
    user's runtime_env merged with dlspec-ray's; --json prints one JSON document."""
    from ray.job_submission import JobSubmissionClient

    monkeypatch.setenv("RAY_ADDRESS", job_head.dashboard_url)
    env_file = tmp_path / "env.yaml"
    env_file.write_text("env_vars: {DLSPEC_RAY_TEST_MARK: from-the-user}\n")
    args = mnist_args(
        "--limit", "500",
        "--submission-id", "issue13-conventions",
        "--runtime-env", str(env_file),
        "--out", str(tmp_path / "out"),
        "--cluster-out", str(tmp_path / "on-the-cluster"),
        "--json",
    )  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    outcome = json.loads(captured.out)  # stdout is the JSON document and nothing else
    assert outcome["job_id"] == "issue13-conventions"
    assert outcome["address"] == job_head.dashboard_url and outcome["status"] == "SUCCEEDED"
    assert outcome["exit_code"] == 0 and outcome["run_dir"] == str(tmp_path / "out")
    assert outcome["summary"]["samples"] == 500
    assert outcome["summary"] == json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "top1" in captured.err  # the job's log went to stderr
    with monkeypatch.context() as env:
        env.delenv("RAY_ADDRESS")  # a client of this test's own: it would take RAY_ADDRESS
        info = JobSubmissionClient(job_head.dashboard_url).get_job_info("issue13-conventions")
    assert info.runtime_env["env_vars"]["DLSPEC_RAY_TEST_MARK"] == "from-the-user"
    assert info.runtime_env["py_modules"]  # dlspec-ray's own code, uploaded beside it
    # The id is taken now: asking for it again is refused before anything runs.
    again = mnist_args("--submission-id", "issue13-conventions", "--no-wait")
    assert main(again) == 2
    assert "has a job of that id already" in capsys.readouterr().err


def test_an_explicit_address_wins_over_the_environment(job_head, repo_cwd, tmp_path, capsys,
                                                       monkeypatch):  # fmt: skip
    """Ray's own client would take RAY_API_SERVER_ADDRESS over the address it is given."""
    from ray.job_submission import JobSubmissionClient

    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", NOWHERE)
    monkeypatch.setenv("RAY_ADDRESS", NOWHERE)
    args = mnist_args(
        "--limit", "200",
        "--address", job_head.dashboard_url,
        "--cluster-out", str(tmp_path / "on-the-cluster"),
        "--no-wait",
        "--json",
    )  # fmt: skip
    assert main(args) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["status"] == "SUBMITTED" and submitted["address"] == job_head.dashboard_url
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS")  # this test's own client would obey them
    monkeypatch.delenv("RAY_ADDRESS")
    client = JobSubmissionClient(job_head.dashboard_url)
    deadline = time.monotonic() + 600  # bounds a hung job only
    while str(client.get_job_status(submitted["job_id"])) not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, "the job did not end within 600 s"
        time.sleep(1)
    assert str(client.get_job_status(submitted["job_id"])) == "SUCCEEDED"


def test_a_dry_run_as_json_shows_the_merged_runtime_env(mnist_manifests, tmp_path, capsys):
    env_file = tmp_path / "env.json"
    env_file.write_text('{"pip": ["rich==13.0.0"], "env_vars": {"SECRET": "s3cr3t"}}')
    args = [
        "submit",
        *mnist_manifests.run_args()[1:],
        "--address", NOWHERE,
        "--submission-id", "dry-1",
        "--runtime-env", str(env_file),
        "--install-packages",
        "--dry-run",
        "--json",
    ]  # fmt: skip
    assert main(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["submission_id"] == "dry-1"
    assert shown["entrypoint"].startswith(
        "python -m dlspec_ray.jobs --out '~/dlspec-ray-runs/dry-1' -- run "
    )
    # The software manifest's packages first, then the user's; secrets stay hidden.
    assert shown["runtime_env"]["pip"] == ["onnxruntime==1.32.0", "rich==13.0.0"]
    assert shown["runtime_env"]["env_vars"] == {"SECRET": "..."}
    assert shown["plan"]["request"]["CPU"] == 1


# (edit to make, extra arguments, what the message must say); none reaches a cluster.
BAD_INPUT = [
    (None, ["--address", NOWHERE], r"--address http://127\.0\.0\.1:26999: cannot reach the Ray"),
    (None, ["--address", "127.0.0.1:6379"], r"expected the Ray job server's URL, such as http"),
    (None, [], r"--address: give the Ray job server's URL"),
    (
        ("hardware", "arch: x86_64", "arch: sparc64"),
        ["--address", NOWHERE],
        r"x86-64-cpu\.yaml:\d+: cpu\.arch: .*unknown CPU architecture 'sparc64'",
    ),
    (
        ("software", 'version: "1.32.0"', 'version: "1.10.0"'),
        ["--address", NOWHERE],
        r"framework\.version: the model needs onnxruntime >=1\.16, but onnxruntime-cpu@1\.0\.0",
    ),
    (None, ["--address", NOWHERE, "--no-wait", "--out", "x"], r"--out and --no-wait conflict"),
    (
        ("hardware", "  ncpu: 1\n", "  ncpu: 1\nsetup: [cpupower frequency-set -g performance]\n"),
        ["--address", NOWHERE],
        r"(?s)has host setup commands.*1\. cpupower frequency-set -g performance",
    ),
    (None, ["--address", NOWHERE, "--runtime-env", "no/such.yaml"], r"no/such\.yaml: cannot"),
    (None, ["--address", NOWHERE, "--submission-id", "a b"], r"--submission-id 'a b': expected"),
]


@pytest.mark.parametrize(
    ("edit", "extra", "match"),
    BAD_INPUT,
    ids=[
        "unreachable-address",
        "not-a-job-server-url",
        "no-address",
        "unknown-architecture",
        "conflicting-framework-requirements",
        "conflicting-no-wait-and-out",
        "host-setup-not-allowed",
        "missing-runtime-env",
        "bad-submission-id",
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    mnist_manifests, capsys, monkeypatch, edit, extra, match
):
    from ray.job_submission import JobSubmissionClient

    def submit_job(*args, **kwargs):
        raise AssertionError("bad input must be refused before anything is submitted")

    monkeypatch.setattr(JobSubmissionClient, "submit_job", submit_job)
    if edit is not None:
        mnist_manifests.edit(*edit)
    assert main(["submit", *mnist_manifests.run_args()[1:], *extra]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "match"),
    [
        ("RAY_API_SERVER_ADDRESS", r"RAY_API_SERVER_ADDRESS=127\.0\.0\.1:6379: expected the"),
        ("RAY_ADDRESS", r"RAY_ADDRESS=127\.0\.0\.1:6379: expected the Ray job server's URL"),
    ],
)
def test_a_gcs_address_in_the_environment_is_refused_by_name(
    mnist_manifests, capsys, monkeypatch, variable, match
):
    monkeypatch.setenv(variable, "127.0.0.1:6379")
    assert main(["submit", *mnist_manifests.run_args()[1:], "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err


def test_a_dry_run_shows_the_job_and_forwards_the_run_flags(mnist_manifests, capsys):
    args = [
        "submit",
        *mnist_manifests.run_args()[1:],
        "--address", NOWHERE,
        "--out", "runs/here",
        "--limit", "500",
        "--option", "top_k=3",
        "--cluster-out", "/data/runs/x",
        "--dry-run",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    entrypoint = next(line for line in out.splitlines() if line.startswith("job entrypoint: "))
    assert entrypoint == (
        "job entrypoint: python -m dlspec_ray.jobs --out /data/runs/x -- run "
        "--model manifests/model/mnist-8.yaml --dataset manifests/dataset/mnist-test.yaml "
        "--software manifests/software/onnxruntime-cpu.yaml "
        "--hardware manifests/hardware/x86-64-cpu.yaml "
        "--limit 500 --option top_k=3 --trust --no-progress"
    )
    assert "artifacts/model/graph/mnist-8-dynbatch.onnx" in out
    assert "dry run: nothing was started or run." in out


def test_a_200_mib_result_comes_back_through_object_storage_not_the_log(
    job_head, repo_cwd, mnist_manifests, s3_env, tmp_path, capsys
):
    """More than the log channel's 64 MiB: the job writes the run to the bucket itself.

    The model's post-process adds 1,024 random float32 outputs per sample (incompressible),
    and the dataset is MNIST tiled six times: 60,000 rows of about 4 KiB of outputs each.
    """
    from dlspec_ray.jobs import MAX_RESULT_BYTES, RESULT_BEGIN
    from dlspec_ray.results.storage import StorageLocation

    mnist_manifests.edit(
        "model",
        '          "output": logits,',
        '          "output": np.random.default_rng(len(logits)).standard_normal(\n'
        "              (len(logits), 1024), dtype=np.float32),",
    )
    mnist_manifests.edit(
        "dataset",
        "      return {\n",
        "      images = np.tile(images, (6, 1, 1))\n      labels = np.tile(labels, 6)\n"
        "      return {\n",
    )
    bucket = s3_env.make_bucket()
    out = f"s3://{bucket}/runs/big"
    args = [
        "submit",
        "--model", mnist_manifests.path("model"),
        "--dataset", mnist_manifests.path("dataset"),
        "--software", mnist_manifests.path("software"),
        "--hardware", mnist_manifests.path("hardware"),
        "--batch-size", "1000",
        "--address", job_head.dashboard_url,
        "--out", out,
    ]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert RESULT_BEGIN not in printed and "comes back through the log" not in printed
    assert f"run directory: {out}" in printed
    run = StorageLocation.parse(out)
    shards = [f for f in run.list_files(recursive=True) if f.startswith("samples/")]
    size = sum(run.child(f).open_input_file().size() for f in shards)
    assert size > 200 * 2**20 > MAX_RESULT_BYTES
    summary = json.loads(run.child("summary.json").read_text())
    assert summary["samples"] == 60_000 and summary["errors"]["count"] == 0

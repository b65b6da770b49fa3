"""The command line, as a user meets it: exit codes, and one clear paragraph per bad input."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[1]
GRAPH = "assets/mnist/mnist-8-dynbatch.onnx"
GRAPH_SUM = "sha256:53b122a5db5e9b5d8a3183d72d6c32b0b2fda70e6f41cd7b119e7188018a1d30"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_validate_accepts_the_shipped_manifests(repo_cwd, capsys):
    assert main(["validate", "manifests"]) == 0
    shipped = len(list((REPO / "manifests").rglob("*.yaml")))
    assert f"{shipped} manifest(s) valid" in capsys.readouterr().out


def test_validate_prints_one_line_per_problem(mnist_manifests, capsys):
    mnist_manifests.edit("hardware", "ncpu: 1", "ncpus: 1")
    mnist_manifests.edit("model", 'version: "1.0.0"', 'version: "1.0"')
    assert main(["validate", str(mnist_manifests.root)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert any("x86-64-cpu.yaml" in line and "did you mean 'ncpu'" in line for line in out)
    assert any("mnist-8.yaml" in line and "version" in line for line in out)


# (kind edited, old text, new text, what the message must say)
BAD_MANIFESTS = [
    ("model", "kind: model", "kind: model\nbad: [unclosed", r"mnist-8\.yaml:\d+: .*"),
    ("software", "name: onnxruntime-cpu\n", "", r"onnxruntime-cpu\.yaml.*'name'"),
    ("hardware", "ncpu: 1", "ncpus: 1", r"x86-64-cpu\.yaml:\d+: .*did you mean 'ncpu'"),
    ("hardware", "ncpu: 1", "ncpu: many", r"x86-64-cpu\.yaml:\d+: cpu\.ncpu: .*many"),
    ("model", 'version: "1.0.0"', 'version: "1.0"', r"mnist-8\.yaml:\d+: version: .*1\.0"),
    ("dataset", "id: d183312e-c43e-415e-8fce-2dd01d944caf", "id: not-a-uuid", r"id: .*UUID"),
    ("model", GRAPH_SUM, "sha256:xyz", r"mnist-8\.yaml:\d+: model\[0\]\.checksum"),
    ("model", 'return ctx["model"].run(', 'return ctx["model"].run((', r"mnist-8\.yaml:\d+: run"),
]


@pytest.mark.parametrize(
    ("kind", "old", "new", "match"),
    BAD_MANIFESTS,
    ids=[
        "invalid-yaml",
        "missing-field",
        "unknown-field",
        "wrong-type",
        "bad-semver",
        "bad-uuid",
        "bad-checksum",
        "syntax-error-in-stage",
    ],
)
def test_bad_manifests_exit_2_with_file_field_and_no_traceback(
    mnist_manifests, capsys, tmp_path, kind, old, new, match
):
    mnist_manifests.edit(kind, old, new)
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--out", str(out))) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlspec-ray: error: ")
    assert "Traceback" not in err
    assert re.search(match, err), err
    assert not out.exists()


def test_syntax_error_points_at_the_yaml_line(mnist_manifests, capsys):
    path = mnist_manifests.edit("model", 'return ctx["model"].run(', 'return ctx["model"].run((')
    line = next(
        i for i, text in enumerate(Path(path).read_text().splitlines(), 1) if ".run((" in text
    )
    assert main(mnist_manifests.run_args()) == 2
    assert f"mnist-8.yaml:{line}:" in capsys.readouterr().err


def test_remote_source_without_checksum_is_refused(mnist_manifests, capsys):
    mnist_manifests.edit("model", f'checksum: "{GRAPH_SUM}"', "")
    mnist_manifests.edit("model", f"source: {REPO}/", "source: http://127.0.0.1:9/")
    assert main(mnist_manifests.run_args()) == 2
    assert "checksum" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (f"/{GRAPH}", "/no/such/dir/graph.onnx", r"model\[0\].*no/such/dir/graph\.onnx"),
        (GRAPH_SUM, "sha256:" + "0" * 64, r"checksum"),
    ],
    ids=["missing-artifact", "checksum-mismatch"],
)
def test_bad_local_artifacts_exit_2_before_ray_starts(
    mnist_manifests, capsys, old, new, match, tmp_path, monkeypatch
):
    import dlspec_ray.runtime

    def no_ray(*args, **kwargs):
        raise AssertionError("a bad artifact must be refused before Ray is used")

    monkeypatch.setattr(dlspec_ray.runtime, "connect", no_ray)
    _check_bad_artifact(mnist_manifests, capsys, old, new, match, tmp_path)


def test_an_unreachable_artifact_url_exits_2_from_the_node(
    ray_session, mnist_manifests, capsys, tmp_path
):
    """A remote artifact is fetched by each node, never by the driver: the node says why not."""
    old, new = f"{REPO}/{GRAPH}", "http://127.0.0.1:{port}/graph.onnx"
    _check_bad_artifact(mnist_manifests, capsys, old, new, r"127\.0\.0\.1", tmp_path)


def _check_bad_artifact(mnist_manifests, capsys, old, new, match, tmp_path):
    new = new.replace("{port}", str(closed_port()))
    mnist_manifests.edit("model", old, new)
    # A fresh cache: a blob cached by an earlier test would be found by its checksum.
    args = ("--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"))
    assert main(mnist_manifests.run_args(*args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(match, err), err
    assert not (tmp_path / "run").exists()


def test_unknown_reference_suggests_the_nearest(repo_cwd, capsys):
    args = ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0"]
    assert main([*args, "--software", "onnxruntime-cpu@1.0.1"]) == 2
    err = capsys.readouterr().err
    assert "onnxruntime-cpu@1.0.1" in err
    assert "did you mean 'onnxruntime-cpu@1.0.0'" in err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--batch-size", "0"], r"batch_size: expected a positive integer, got 0"),
        (["--max-errors", "-1"], r"max_errors: expected 0 or more, got -1"),
        (["--option", "top_k"], r"--option 'top_k': expected KEY=VALUE"),
        (["--environment", "docker"], r"container: the docker environment needs an image"),
        (["--environment", "dokcer"], r"no such environment; did you mean 'docker'\?"),
        (["--environment", "inlin"], r"no such environment; did you mean 'inline'\?"),
        (["--actors", "0"], r"actors: expected a positive integer, got 0"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_bad_arguments_exit_2(mnist_manifests, capsys, args, match, dry_run):
    """A dry run refuses exactly what a real run refuses."""
    extra = ["--dry-run"] if dry_run else []
    assert main(mnist_manifests.run_args(*args, *extra)) == 2
    assert re.search(match, capsys.readouterr().err)


def test_hardware_no_node_can_host_fails_fast_with_the_node_table(
    ray_session, mnist_manifests, capsys, tmp_path
):
    mnist_manifests.edit("hardware", "arch: x86_64", "arch: riscv64")
    assert main(mnist_manifests.run_args("--out", str(tmp_path / "run"))) == 2
    err = capsys.readouterr().err
    # Fast means found by the node check before any actor is made, not after waiting for one.
    assert "waiting" not in err
    assert "no node of the Ray cluster can host mnist-8@1.0.0" in err
    assert "cpu_arch:riscv64=0.001" in err
    assert "The live nodes offer:" in err and "cpu_arch:x86_64=1" in err
    assert not (tmp_path / "run").exists()


# --debug, -q and -v are global: before the subcommand and after it, one dest each.
GLOBAL_POSITIONS = [
    (["--debug", "validate", "x"], ("debug", True)),
    (["validate", "--debug", "x"], ("debug", True)),
    (["validate", "x"], ("debug", False)),
    (["-q", "checksum", "x"], ("quiet", True)),
    (["checksum", "-q", "x"], ("quiet", True)),
    (["checksum", "--quiet", "x"], ("quiet", True)),
    (["checksum", "x"], ("quiet", False)),
    (["-v", "run", "--model", "m"], ("verbose", True)),
    (["run", "-v", "--model", "m"], ("verbose", True)),
    (["run", "--verbose", "--model", "m"], ("verbose", True)),
    (["run", "--model", "m"], ("verbose", False)),
    (["-v", "node-resources"], ("verbose", True)),
    (["node-resources", "-v"], ("verbose", True)),
    (["--debug", "env", "gc", "-q"], ("quiet", True)),
    (["env", "gc", "--debug"], ("debug", True)),
]


@pytest.mark.parametrize(
    ("argv", "expected"), GLOBAL_POSITIONS, ids=[" ".join(a) for a, _ in GLOBAL_POSITIONS]
)
def test_global_flags_work_before_and_after_the_subcommand(argv, expected):
    from dlspec_ray.cli import build_parser

    dest, value = expected
    assert getattr(build_parser().parse_args(argv), dest) is value


@pytest.mark.parametrize("flag_first", [True, False], ids=["before", "after"])
def test_debug_before_or_after_validate_shows_the_traceback(tmp_path, capsys, flag_first):
    missing = str(tmp_path / "no-such-file")
    argv = ["--debug", "checksum", missing] if flag_first else ["checksum", "--debug", missing]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "dlspec-ray: error: no such file or folder" in err


@pytest.mark.parametrize("argv", [["-q", "checksum"], ["checksum", "-q"]], ids=["before", "after"])
def test_quiet_before_or_after_checksum_prints_the_checksum_alone(tmp_path, capsys, argv):
    file = tmp_path / "f.txt"
    file.write_bytes(b"n")
    assert main([*argv, str(file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sha256:") and str(file) not in out


# (command line, the near match the refusal must offer): every closed set of names.
NEAR_MATCHES = [
    (["valdate", "manifests"], "'validate'"),
    (["manifest"], "'manifests'"),
    (["run", "--scenario", "ofline"], "'offline'"),
    (["run", "--mode", "acuracy"], "'accuracy'"),
    (["run", "--model", "m", "--environment", "inlin"], "'inline'"),
    (["reproduce", "runs/x", "--environment", "proces"], "'process'"),
    (["env", "prepare", "s", "--environment", "dokcer"], "'docker'"),
    (["env", "gcc"], "'gc'"),
    (["images", "biuld", "s"], "'build'"),
    (["manifests", "--kind", "sofware"], "'software'"),
    (["manifests", "lss"], "'ls'"),
    (["completion", "bsh"], "'bash'"),
]


@pytest.mark.parametrize(
    ("argv", "suggestion"), NEAR_MATCHES, ids=[" ".join(a) for a, _ in NEAR_MATCHES]
)
def test_a_mistyped_name_exits_2_with_the_nearest_and_no_traceback(capsys, argv, suggestion):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"did you mean {suggestion}" in err, err
    assert "Traceback" not in err


def test_a_name_far_from_every_choice_lists_them_without_a_guess(capsys):
    assert main(["completion", "powershell"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'powershell' (choose from bash, zsh)" in err
    assert "did you mean" not in err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """``dlspec-ray runs ROOT --json | head -1``: no BrokenPipeError traceback, exit 141."""
    import json
    import subprocess
    import sys

    record = {
        "path": "r", "started_at": "2024-01-01T00:00:00", "finished_at": "2024-01-01T00:00:01",
        "status": "ok", "task": {"model": {"ref": "m@1.0.0"}},
        "environment": {"kind": "inline"}, "environment_fingerprint": "abc123",
    }  # fmt: skip
    lines = [json.dumps({**record, "run_id": f"run-{i:05d}"}) for i in range(3000)]
    (tmp_path / "index.jsonl").write_text("\n".join(lines) + "\n")  # ~700 KB of JSON: > a pipe
    code = "import sys; from dlspec_ray.cli import main; sys.exit(main())"
    child = subprocess.Popen(
        [sys.executable, "-c", code, "runs", str(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout.readline() == b"[\n"
    child.stdout.close()  # the reader goes away, as head does after its line
    err = child.stderr.read().decode()
    assert child.wait() == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""

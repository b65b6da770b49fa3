"""The sweep, runs, compare and report commands on bad input: exit 2, one clear message."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("path", "first_line", "reason"),
    [
        (
            "sweeps/mnist-frameworks.yaml",
            "sweep mnist-frameworks: 8 combination(s), 4 task(s) to run, 4 dropped",
            "framework: the model needs onnxruntime, the software provides onnx-reference",
        ),
        (
            "sweeps/imagenet-frameworks.yaml",
            "sweep imagenet-frameworks: 18 combination(s), 6 task(s) to run, 12 dropped",
            "framework: the model needs ai-edge-litert, the software provides torch",
        ),
    ],
)
def test_the_shipped_sweeps_plan(repo_cwd, capsys, path, first_line, reason):
    assert main(["sweep", path, "--plan"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == first_line
    assert reason in out


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (
            "models: [mnist-8]\ndatasets: [mnist-test]\nbatchsizes: [8]\n",
            [],
            r"sweep\.yaml:3: batchsizes: unknown key 'batchsizes'; did you mean 'batch_sizes'\?",
        ),
        (
            "models: [mnist-8]\ndatasets: [mnist-test]\nsoftware: [pytorch-cpu]\n",
            [],
            r"(?s)has no task left.*framework: removed 1.*the model needs onnxruntime, the "
            r"software provides torch",
        ),
        (
            "models: [mnist-8]\ndatasets: [mnist-test]\n",
            ["--concurrency", "0"],
            r"--concurrency: expected a positive integer, got 0",
        ),
    ],
)
def test_bad_sweeps_exit_2_with_a_clear_message(repo_cwd, tmp_path, capsys, text, args, message):
    code = main(["sweep", write(tmp_path, text), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("dlspec-ray: error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_a_sweep_whose_only_framework_is_missing_names_the_extra(
    repo_cwd, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "torch", None)
    text = (
        "models: [efficientnet-lite0-pytorch]\ndatasets: [imagenet-samples]\n"
        "software: pytorch-cpu\n"
    )
    assert main(["sweep", write(tmp_path, text), "--plan"]) == 2
    err = capsys.readouterr().err
    assert "framework extra: removed 1" in err and "pip install 'dlspec-ray[pytorch]'" in err


def make_runs(tmp_path: Path) -> tuple[Path, Path]:
    # The results tests' builder of real run directories, loaded by path.
    spec = importlib.util.spec_from_file_location(
        "results_run_factory", REPO / "tests" / "results" / "conftest.py"
    )
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)
    make_run = factory.make_run
    logits = np.eye(4, dtype=np.float32)
    a = make_run(tmp_path / "a", logits, np.arange(4), run_id="aaaa", dataset="digits")
    b = make_run(tmp_path / "b", logits, np.arange(4), run_id="bbbb", dataset="letters")
    return a, b


def test_compare_refuses_runs_of_different_datasets(tmp_path, capsys):
    a, b = make_runs(tmp_path)
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "evaluated dataset digits@1.0.0" in err and "letters@1.0.0" in err
    assert "--shared-samples" in err
    assert main(["compare", str(a), str(b), "--shared-samples"]) == 0
    out = capsys.readouterr().out
    assert "note: different datasets (digits@1.0.0 vs letters@1.0.0)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "{tmp}/nope", "{tmp}/a"], r"no run directory there.*--root RESULTS_ROOT"),
        (["runs", "{tmp}/missing"], r"no such results root"),
        (["report", "{tmp}/empty"], r"no runs to report"),
    ],
)
def test_result_commands_explain_missing_runs(tmp_path, capsys, args, message):
    make_runs(tmp_path)
    (tmp_path / "empty").mkdir()
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err), err

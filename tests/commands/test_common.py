"""``--json`` on every command that reports: one JSON document on stdout, messages on stderr."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = 22  # files under manifests/


def make_run_dirs(root: Path) -> tuple[Path, Path]:
    """Two real run directories (the results tests' builder, loaded by path)."""
    spec = importlib.util.spec_from_file_location(
        "results_run_factory", REPO / "tests" / "results" / "conftest.py"
    )
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)
    logits = np.eye(4, dtype=np.float32)
    a = factory.make_run(root / "a", logits, np.arange(4), run_id="aaaa")
    b = factory.make_run(root / "b", logits, np.arange(4), run_id="bbbb", started=1)
    return a, b


def run_json(capsys, argv: list[str], code: int = 0):
    assert main(argv) == code
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_validate_json(repo_cwd, capsys):
    data, err = run_json(capsys, ["validate", "manifests", "sweeps", "--json"])
    assert data["valid"] is True and data["problems"] == [] and data["crossrefs_checked"]
    assert len(data["manifests"]) == SHIPPED
    assert {s["name"] for s in data["sweeps"]} == {"mnist-frameworks", "imagenet-frameworks"}
    assert err == ""


def test_validate_json_lists_the_problems(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("kind: model\n")
    data, err = run_json(capsys, ["validate", str(tmp_path), "--json"], code=2)
    assert data["valid"] is False and not data["crossrefs_checked"]
    assert {p["field"] for p in data["problems"]} >= {"id", "name", "version"}
    assert "problem(s) in 1 file(s)" in err


def test_report_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    make_run_dirs(tmp_path)
    data, _ = run_json(capsys, ["report", str(tmp_path), "--json"])
    assert data == {"report": str(tmp_path / "report.html")}
    assert (tmp_path / "report.html").is_file()


@pytest.mark.parametrize("flag_first", [False, True], ids=["json-last", "json-first"])
def test_run_dry_run_json(repo_cwd, capsys, flag_first):
    task = ["--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0", "--dry-run"]
    argv = ["run", "--json", *task] if flag_first else ["run", *task, "--json"]
    plan, _ = run_json(capsys, argv)
    assert plan["task"] == "mnist-8@1.0.0 on mnist-test@1.0.0 with onnxruntime-cpu@1.0.0"
    assert plan["environment"] == "inline" and plan["samples"] == 10_000


def test_runs_and_compare_json(tmp_path, capsys):
    a, b = make_run_dirs(tmp_path)
    assert main(["runs", str(tmp_path), "--rebuild"]) == 0
    capsys.readouterr()
    records, _ = run_json(capsys, ["runs", str(tmp_path), "--json"])
    assert [r["run_id"] for r in records] == ["aaaa", "bbbb"]
    comparison, _ = run_json(capsys, ["compare", str(a), str(b), "--json"])
    assert isinstance(comparison, dict) and comparison


def test_checksum_json(tmp_path, capsys):
    import hashlib

    file = tmp_path / "f.txt"
    file.write_bytes(b"n")
    data, _ = run_json(capsys, ["checksum", str(file), "--json"])
    assert data == [{"path": str(file), "checksum": f"sha256:{hashlib.sha256(b'n').hexdigest()}"}]


def test_sweep_plan_json(repo_cwd, capsys):
    plan, _ = run_json(capsys, ["sweep", "sweeps/mnist-frameworks.yaml", "--plan", "--json"])
    assert (plan["name"], plan["combinations"]) == ("mnist-frameworks", 8)
    assert len(plan["tasks"]) == 4 and len(plan["dropped"]) == 4
    assert {t["software"] for t in plan["tasks"]} == {
        "onnxruntime-cpu@1.0.0",
        "onnx-reference-cpu@1.0.0",
    }


def test_manifests_json(repo_cwd, capsys):
    rows, _ = run_json(capsys, ["manifests", "--json"])
    assert len(rows) == SHIPPED

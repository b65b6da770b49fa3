"""The pip path: the built wheel, installed into a fresh venv outside the repository, runs
the default task from another folder, with nothing from the checkout on its path.

The venv installs with no index, from the wheels ``make test-prep`` downloads into
``$DLSPEC_RAY_PACKAGE_WHEELS`` (dlspec-ray's dependencies and its onnxruntime extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELS = os.environ.get("DLSPEC_RAY_PACKAGE_WHEELS", "")


@pytest.mark.skipif(
    not WHEELS or not Path(WHEELS).is_dir(),
    reason="DLSPEC_RAY_PACKAGE_WHEELS is not a folder of wheels: `make test` sets it and "
    "`make test-prep` fills it",
)
def test_the_wheel_installed_in_a_fresh_venv_runs_the_default_task_from_any_folder(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(dist), str(REPO)], cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("dlspec_ray-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
          "--find-links", WHEELS, f"{wheel}[onnxruntime]"], cwd=tmp_path)  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DLSPEC_RAY_"))}
    env["RAY_TMPDIR"] = str(tmp_path / "ray")
    cli = str(venv / "bin" / "dlspec-ray")
    listing = _run([cli, "manifests", "--kind", "model", "--json"], cwd=elsewhere, env=env)
    files = [row["file"] for row in json.loads(listing.stdout)]
    assert files and all(str(venv) in f for f in files), files  # the wheel's copies

    done = _run(
        [cli, "run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
         "--reference", "mnist-8-onnxruntime-reference@1.0.0", "--out", "runs/default"],
        cwd=elsewhere, env=env,
    )  # fmt: skip
    summary = json.loads((elsewhere / "runs" / "default" / "summary.json").read_text())
    assert summary["accuracy"]["top1"] == pytest.approx(0.9890, abs=5e-5)
    assert summary["reference"]["verdict"] == "PASS" and summary["status"] == "ok"
    assert summary["samples"] == 10_000
    assert "PASS" in done.stdout

    # init: editable copies in a folder of the user's own, which then come first.
    _run([cli, "init", "mine"], cwd=elsewhere, env=env)
    mine = _run([cli, "manifests", "--kind", "model", "--json"], cwd=elsewhere / "mine", env=env)
    model = next(r for r in json.loads(mine.stdout) if r["ref"] == "mnist-8@1.0.0")
    assert Path(model["file"]).is_relative_to(elsewhere / "mine" / "manifests")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done

"""``dlspec-ray manifests [ls]``: what refs resolve to, by kind, ref, id and file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "manifests").rglob("*.yaml"))


def test_lists_the_22_shipped_manifests_with_kind_ref_and_file(repo_cwd, capsys):
    assert len(SHIPPED) == 22
    assert main(["manifests"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["kind", "ref", "id", "file"]
    rows = [line.split() for line in out[1:] if line.strip()][:-1]
    assert len(rows) == 22
    assert {Path(row[3]).resolve() for row in rows} == {p.resolve() for p in SHIPPED}
    assert ["software", "litert-cpu@1.0.0", "5c92cbac-3d70-4bb4-8982-ec05432410eb"] in [
        row[:3] for row in rows
    ]
    assert out[-1] == f"22 manifest(s) in {REPO / 'manifests'}, the manifests dlspec-ray ships"


@pytest.mark.parametrize(
    ("kind", "count"),
    [("hardware", 5), ("software", 6), ("dataset", 2), ("model", 5), ("reference", 4)],
)
def test_kind_filters_and_ls_is_the_default(tmp_path, monkeypatch, capsys, kind, count):
    monkeypatch.chdir(tmp_path)  # no ./manifests: only --roots
    argv = ["ls", "--kind", kind, "--roots", str(REPO / "manifests"), "--json"]
    assert main(["manifests", *argv]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == count and {r["kind"] for r in rows} == {kind}
    assert all(r["ref"] == f"{r['name']}@{r['version']}" for r in rows)
    assert all(Path(r["file"]).is_file() for r in rows)
    assert rows == sorted(rows, key=lambda r: (r["name"], r["version"]))


def test_with_no_roots_it_lists_what_dlspec_ray_ships(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLSPEC_RAY_MANIFEST_PATH", raising=False)
    assert main(["manifests", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 22 and {"mnist-8@1.0.0", "x86-64-cpu@1.0.0"} <= {r["ref"] for r in rows}

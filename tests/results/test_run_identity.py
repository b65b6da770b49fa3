"""run.json: what a resume must match, and the changes it names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.results.run_identity import RunIdentity, manifest_digest
from dlspec_ray.spec import load_manifest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "manifests/models/mnist-8.yaml"


def identity(**changes) -> RunIdentity:
    base = RunIdentity(
        run_id="abc", out="/runs/x", driver="host/1.2", created_at="2026-12-01T00:00:00",
        manifests={"model": {"ref": "mnist-8@1.0.0", "digest": "a" * 64, "path": "/m.yaml"}},
        artifacts={"model:graph": "sha256:1"}, settings={"batch_size": 64, "limit": None},
        layout={"samples": 1024, "shards": 8},
    )  # fmt: skip
    return replace(base, **changes)


def test_the_same_run_has_no_differences_wherever_its_manifests_were_loaded_from():
    moved = identity(
        manifests={"model": {"ref": "mnist-8@1.0.0", "digest": "a" * 64, "path": "/b.yaml"}},
        driver="other/3.4",
        created_at="later",
    )
    assert identity().differences(moved) == []


def test_a_copy_of_a_manifest_elsewhere_has_the_same_digest(tmp_path):
    copy = tmp_path / "team" / "models" / "mnist-8.yaml"  # the same text, another folder
    copy.parent.mkdir(parents=True)
    copy.write_text(MODEL.read_text())
    assert manifest_digest(load_manifest(copy)) == manifest_digest(load_manifest(MODEL))
    copy.write_text(MODEL.read_text().replace("options: {top_k: 5}", "options: {top_k: 3}"))
    assert manifest_digest(load_manifest(copy)) != manifest_digest(load_manifest(MODEL))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"manifests": {"model": {"ref": "mnist-8@1.0.0", "digest": "b" * 64}}},
         "model mnist-8@1.0.0: its content changed (digest aaaaaaaaaaaa -> bbbbbbbbbbbb)"),
        ({"manifests": {"model": {"ref": "mnist-8@2.0.0", "digest": "a" * 64}}},
         "model: mnist-8@1.0.0 -> mnist-8@2.0.0"),
        ({"artifacts": {"model:graph": "sha256:2"}},
         "artifact model:graph: 'sha256:1' -> 'sha256:2'"),
        ({"settings": {"batch_size": 128, "limit": None}}, "setting batch_size: 64 -> 128"),
        ({"layout": {"samples": 1000, "shards": 8}}, "layout samples: 1024 -> 1000"),
    ],
)  # fmt: skip
def test_each_change_is_named(changes, expected):
    assert identity().differences(identity(**changes)) == [expected]


def test_it_round_trips_and_a_bad_file_is_bad_input(tmp_path):
    identity(roots=("/extra",)).write(tmp_path)
    assert RunIdentity.read(tmp_path) == identity(roots=("/extra",))
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"run.json: cannot be read .* Start it again"):
        RunIdentity.read(tmp_path)
    with pytest.raises(UsageError, match=r"run.json: not found"):
        RunIdentity.read(tmp_path / "nothing")

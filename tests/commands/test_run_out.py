"""``dlspec-ray run --out``: a run replaces only a previous run, and a bad --out fails up front.

Every refused --out is refused before Ray is used: the tests make connecting to
Ray fail them, so "before any work" is checked, not timed. Mount points and
read-only filesystems are real tmpfs mounts in the test's tmp dir (root only:
without it those tests skip and say why).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlspec_ray.cli import main


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if the evaluation gets as far as connecting to Ray."""
    import dlspec_ray.runtime

    def refuse(*args, **kwargs):
        raise AssertionError("a bad --out must be refused before Ray is used")

    monkeypatch.setattr(dlspec_ray.runtime, "connect", refuse)


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def refused(capsys, argv: list[str], match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.usefixtures("no_ray")
def test_overwrite_never_deletes_a_folder_that_is_not_a_run(mnist_manifests, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "data.csv").write_text("a,b\n1,2\n")
    before = tree(tmp_path)
    argv = mnist_manifests.run_args("--limit", "64", "--out", str(out), "--overwrite")
    refused(
        capsys,
        argv,
        f"--overwrite replaces only a dlspec-ray run directory (one with summary.json or "
        f"ledger.jsonl); {out} holds other files: notes.txt, sub/; choose another --out",
    )
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "sub" / "data.csv").read_text() == "a,b\n1,2\n"
    assert tree(tmp_path) == before  # nothing partial beside it either


@pytest.mark.usefixtures("ray_session")
def test_overwrite_replaces_a_previous_run(mnist_manifests, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a relative --out, published from a relative staging path
    argv = mnist_manifests.run_args("--limit", "64", "--out", "run")
    assert main(argv) == 0
    first = json.loads((tmp_path / "run" / "summary.json").read_text())["run_id"]
    refused(capsys, argv, "run: the directory already holds files")
    assert main([*argv, "--overwrite"]) == 0
    second = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert second["run_id"] != first and second["samples"] == 64
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "manifests") == [
        "index.jsonl",
        "run",
    ]
    # The index of the results root lists the run that is there, not the one it replaced.
    (record,) = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert record["run_id"] == second["run_id"] and record["path"] == "run"


@pytest.mark.usefixtures("no_ray")
def test_the_working_directory_is_refused_as_out(mnist_manifests, tmp_path, monkeypatch, capsys):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    refused(
        capsys,
        mnist_manifests.run_args("--limit", "64", "--out", "."),
        f"is the working directory ({tmp_path / 'here'}) or a folder above it; a run is "
        "renamed into place",
    )
    assert tree(tmp_path / "here") == []


@pytest.mark.usefixtures("no_ray")
def test_an_empty_mount_point_is_refused(mnist_manifests, tmp_path, capsys, tmpfs):
    with tmpfs(tmp_path / "mnt") as mnt:
        refused(
            capsys,
            mnist_manifests.run_args("--limit", "64", "--out", str(mnt)),
            f"--out {mnt}: is a mount point, and a run is built beside --out and renamed into "
            f"place, which a mount point cannot be; choose a folder inside it, such as --out "
            f"{mnt / 'run'}",
        )
        assert tree(mnt) == []


@pytest.mark.usefixtures("no_ray")
def test_a_read_only_filesystem_is_refused(mnist_manifests, tmp_path, capsys, tmpfs):
    with tmpfs(tmp_path / "ro", "ro") as ro:
        refused(
            capsys,
            mnist_manifests.run_args("--limit", "64", "--out", str(ro / "out")),
            f"--out {ro / 'out'}: {ro} is on a read-only filesystem",
        )


@pytest.mark.usefixtures("no_ray")
def test_a_pseudo_filesystem_is_refused(mnist_manifests, capsys):
    refused(
        capsys,
        mnist_manifests.run_args("--limit", "64", "--out", "/proc/dlspec-out"),
        "--out /proc/dlspec-out: is inside /proc, a kernel pseudo-filesystem",
    )


@pytest.mark.usefixtures("ray_session")
def test_single_runs_are_listed_and_compared_by_id_in_their_results_root(
    mnist_manifests, tmp_path, capsys
):
    root = tmp_path / "runs"
    for name in ("a", "b"):
        argv = mnist_manifests.run_args("--limit", "128", "--out", str(root / name))
        assert main([*argv, "--json"]) == 0
    ids = [json.loads(line)["run_id"] for line in (root / "index.jsonl").read_text().splitlines()]
    capsys.readouterr()
    assert main(["runs", str(root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["run_id"] for r in listed) == sorted(ids)
    assert sorted(r["path"] for r in listed) == ["a", "b"]
    assert main(["compare", ids[0], ids[1], "--root", str(root), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["compared"] == 128 and comparison["disagreement_count"] == 0

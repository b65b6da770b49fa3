"""The run directory's rules: which --out a run may go to, and that publishing loses nothing.

Mount points and read-only filesystems are real tmpfs mounts, made inside the
test's own tmp dir and unmounted in a ``finally``; without root (CAP_SYS_ADMIN)
those tests skip and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.results import LEDGER_NAME, SUMMARY_NAME, check_out_dir, is_run_dir, publish


def a_run(path: Path, marker: str = SUMMARY_NAME) -> Path:
    (path / "samples").mkdir(parents=True)
    (path / marker).write_text('{"run_id": "old"}')
    (path / "samples" / "shard-00000.parquet").write_bytes(b"old rows")
    return path


def user_files(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    (path / "sub" / "data.csv").write_text("a,b\n")
    return path


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: a_run(p), True),
        (lambda p: a_run(p, LEDGER_NAME), True),
        (lambda p: p.mkdir(), False),
        (lambda p: user_files(p), False),
        (lambda p: (p / SUMMARY_NAME).mkdir(parents=True), False),  # a folder named so
        (lambda p: p.write_text("a file"), False),
        (lambda p: None, False),  # nothing there
    ],
    ids=["summary", "ledger", "empty", "user-files", "summary-is-a-folder", "file", "missing"],
)
def test_what_counts_as_a_run_directory(tmp_path, make, expected):
    make(tmp_path / "out")
    assert is_run_dir(tmp_path / "out") is expected


@pytest.mark.parametrize(
    ("make", "overwrite"),
    [
        (lambda p: None, False),
        (lambda p: p.mkdir(), False),
        (lambda p: a_run(p), True),
        (lambda p: a_run(p, LEDGER_NAME), True),
    ],
    ids=["missing", "empty", "previous-run-overwrite", "ledger-only-overwrite"],
)
def test_an_out_dir_a_run_can_go_to_is_accepted_and_nothing_is_left(tmp_path, make, overwrite):
    make(tmp_path / "out")
    before = tree(tmp_path)
    check_out_dir(tmp_path / "out", overwrite)
    check_out_dir(tmp_path / "new" / "deeper" / "out", overwrite)
    assert tree(tmp_path) == before  # the write probe is removed; no parent is made


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "out").write_text("x")
    return tmp_path / "out"


def in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "out"


def a_symlink(tmp_path: Path) -> Path:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    return tmp_path / "out"


# (how to make the bad --out, --overwrite, what the message must say)
REFUSED = [
    (a_file, True, r"exists and is not a directory"),
    (lambda t: a_run(t / "out"), False, r"already holds files; .*pass --overwrite to replace it"),
    (
        lambda t: user_files(t / "out"),
        True,
        r"--overwrite replaces only a dlspec-ray run directory \(one with summary\.json or "
        r"ledger\.jsonl\); .*/out holds other files: notes\.txt, sub/; choose another --out",
    ),
    (a_symlink, True, r"is a symbolic link \(to .*/real\); .*give that folder instead"),
    (in_the_way, False, r"/a-file is a file, so no folder can be made under it"),
    (
        lambda t: Path("/proc/dlspec-out"),
        False,
        r"^--out /proc/dlspec-out: is inside /proc, a kernel",
    ),
    (
        lambda t: Path("/sys/dlspec-out/x"),
        False,
        r"^--out /sys/dlspec-out/x: is inside /sys, a kernel",
    ),
]


@pytest.mark.parametrize(
    ("make", "overwrite", "match"),
    REFUSED,
    ids=["a-file", "full-no-overwrite", "not-a-run", "symlink", "file-in-the-way", "proc", "sys"],
)
def test_a_bad_out_dir_is_refused_before_any_work(tmp_path, make, overwrite, match):
    out = make(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(UsageError, match=match):
        check_out_dir(out, overwrite)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("given", [".", "..", "./"])
def test_the_working_directory_is_refused_as_out(tmp_path, monkeypatch, given):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(UsageError, match=r"is the working directory \(.*/here\) or a folder above"):
        check_out_dir(Path(given), overwrite=True)


def test_a_relative_out_is_checked_where_it_really_is(tmp_path, monkeypatch):
    user_files(tmp_path / "out")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match=r"^--out \.\./out: .*holds other files: notes\.txt"):
        check_out_dir(Path("../out"), overwrite=True)


def test_a_mount_point_is_refused(tmp_path, tmpfs):
    with tmpfs(tmp_path / "mnt") as mnt:
        with pytest.raises(UsageError, match=r"is a mount point.*choose a folder inside it"):
            check_out_dir(mnt, overwrite=False)
        check_out_dir(mnt / "run", overwrite=False)  # a folder inside it is fine


def test_a_read_only_filesystem_is_refused(tmp_path, tmpfs):
    with (
        tmpfs(tmp_path / "ro", "ro") as ro,
        pytest.raises(UsageError, match=r"/ro is on a read-only filesystem"),
    ):
        check_out_dir(ro / "runs" / "out", overwrite=False)


def test_a_folder_it_may_not_write_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write to any folder, whatever its permission bits say")
    (tmp_path / "locked").mkdir(mode=0o500)
    try:
        with pytest.raises(UsageError, match=r"cannot create a folder in .*/locked \(Permission"):
            check_out_dir(tmp_path / "locked" / "out", overwrite=False)
    finally:
        (tmp_path / "locked").chmod(0o700)


def staged(tmp_path: Path, run_id: str = "abc123") -> Path:
    staging = tmp_path / f".out.partial-{run_id}"
    (staging / "samples").mkdir(parents=True)
    (staging / SUMMARY_NAME).write_text('{"run_id": "new"}')
    return staging


@pytest.mark.parametrize(
    ("make", "overwrite"),
    [(lambda p: None, False), (lambda p: p.mkdir(), False), (lambda p: a_run(p), True)],
    ids=["missing", "empty", "previous-run"],
)
def test_publish_moves_the_run_into_place(tmp_path, make, overwrite):
    make(tmp_path / "out")
    publish(staged(tmp_path), tmp_path / "out", overwrite)
    assert tree(tmp_path) == ["out", "out/samples", "out/summary.json"]
    assert (tmp_path / "out" / SUMMARY_NAME).read_text() == '{"run_id": "new"}'


@pytest.mark.parametrize(
    ("make", "overwrite", "match"),
    [
        (user_files, True, r"holds other files: notes\.txt, sub/"),
        (a_run, False, r"already holds files"),
    ],
    ids=["became-not-a-run", "filled-without-overwrite"],
)
def test_publish_keeps_the_run_when_out_changed_meanwhile(tmp_path, make, overwrite, match):
    staging = staged(tmp_path)
    make(tmp_path / "out")
    theirs = tree(tmp_path / "out")
    kept = tmp_path / "out.kept-abc123"
    with pytest.raises(UsageError, match=rf"{match}.*; the finished run is kept at {kept}$"):
        publish(staging, tmp_path / "out", overwrite)
    assert tree(tmp_path / "out") == theirs  # nothing of theirs is touched
    assert (kept / SUMMARY_NAME).read_text() == '{"run_id": "new"}'
    assert not staging.exists()  # so a caller cleaning up its staging folder cannot lose it


def test_a_failed_rename_puts_the_previous_run_back(tmp_path):
    a_run(tmp_path / "out")
    before = tree(tmp_path)
    with pytest.raises(UsageError, match=r"cannot move the finished run into place"):
        publish(tmp_path / ".out.partial-gone", tmp_path / "out", overwrite=True)
    assert tree(tmp_path) == before


def test_publish_works_from_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a_run(tmp_path / "out")
    publish(Path(staged(tmp_path).name), Path("out"), overwrite=True)
    assert tree(tmp_path) == ["out", "out/samples", "out/summary.json"]

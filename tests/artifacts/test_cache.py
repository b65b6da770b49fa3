from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlspec_ray.artifacts.cache import (
    ENV_VAR,
    STALE_AFTER_S,
    blob_dir,
    cached_blob,
    default_cache_dir,
    owner_tag,
    publish_blob,
    remove_tree,
    staged_file,
    sweep_partial,
    unpacked_dir,
)

DATA = b"model bytes"
HEX = hashlib.sha256(DATA).hexdigest()


def test_default_cache_dir_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_default_cache_dir_falls_back_to_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    assert default_cache_dir() == tmp_path / ".cache" / "dlspec-ray"


def test_layout_is_content_addressed(tmp_path: Path) -> None:
    assert blob_dir(tmp_path, HEX) == tmp_path / "sha256" / HEX
    assert unpacked_dir(tmp_path, HEX) == tmp_path / "unpacked" / HEX


def test_publish_keeps_the_name_and_makes_the_blob_read_only(tmp_path: Path) -> None:
    assert cached_blob(tmp_path, HEX, "model.onnx") is None
    with staged_file(tmp_path, "model.onnx") as staged:
        staged.write_bytes(DATA)
        published = publish_blob(tmp_path, HEX, staged)
    assert published == tmp_path / "sha256" / HEX / "model.onnx"
    assert published.read_bytes() == DATA
    assert not published.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert cached_blob(tmp_path, HEX, "model.onnx") == published
    assert os.listdir(tmp_path / "tmp") == []
    # Readable by others, such as a container's unprivileged user.
    assert stat.S_IMODE(published.parent.stat().st_mode) == 0o755


def test_an_entry_published_0700_is_opened_for_readers_when_next_used(tmp_path: Path) -> None:
    with staged_file(tmp_path, "model.onnx") as staged:
        staged.write_bytes(DATA)
        published = publish_blob(tmp_path, HEX, staged)
    published.parent.chmod(0o700)  # as earlier versions left it
    assert cached_blob(tmp_path, HEX, "model.onnx") == published
    assert stat.S_IMODE(published.parent.stat().st_mode) == 0o755


def test_losing_a_publish_race_uses_the_winner(tmp_path: Path) -> None:
    with staged_file(tmp_path, "a.bin") as first, staged_file(tmp_path, "a.bin") as second:
        first.write_bytes(DATA)
        second.write_bytes(DATA)
        winner = publish_blob(tmp_path, HEX, first)
        loser = publish_blob(tmp_path, HEX, second)
    assert winner == loser
    assert [p.name for p in (tmp_path / "sha256" / HEX).iterdir()] == ["a.bin"]
    assert os.listdir(tmp_path / "tmp") == []


def test_same_bytes_under_another_name_get_an_alias(tmp_path: Path) -> None:
    with staged_file(tmp_path, "t10k.gz") as staged:
        staged.write_bytes(DATA)
        publish_blob(tmp_path, HEX, staged)
    alias = cached_blob(tmp_path, HEX, "copy.gz")
    assert alias == tmp_path / "sha256" / HEX / "copy.gz"
    assert alias.read_bytes() == DATA
    assert sorted(os.listdir(tmp_path / "sha256" / HEX)) == ["copy.gz", "t10k.gz"]


def test_remove_tree_removes_read_only_folders(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "locked" / "inner").mkdir(parents=True)
    (tree / "locked" / "inner" / "f").write_bytes(b"x")
    (tree / "locked" / "inner").chmod(0o500)
    (tree / "locked").chmod(0o500)
    remove_tree(tree)
    assert not tree.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sweep_removes_partial_work_of_dead_owners_and_nothing_else(tmp_path: Path) -> None:
    host = owner_tag().split("@")[1]
    dead = f"{_dead_pid()}.1@{host}"
    stale_download = tmp_path / "tmp" / f"blob-{dead}-model.onnx-x1y2z3" / "model.onnx"
    stale_alias = tmp_path / "tmp" / f"alias-{dead}-q9w8e7"
    stale_unpack = tmp_path / "unpacked" / f".tmp-{dead}-{HEX[:40]}-a1b2c3"
    old_style = tmp_path / "tmp" / "blob-model.onnx-oldold"  # before owners were named
    for folder in (stale_download.parent, stale_alias, stale_unpack / "images", old_style):
        folder.mkdir(parents=True)
    stale_download.write_bytes(b"half a mod")
    day_ago = time.time() - 2 * STALE_AFTER_S
    os.utime(old_style, (day_ago, day_ago))
    # Kept: what is not dlspec-ray's, a recent folder of unknown owner, and a live download.
    other_host = tmp_path / "tmp" / "blob-12.34@0000beef-x.bin-abcdef"
    other_host.mkdir()
    unrelated = [tmp_path / "tmp" / "notes.txt", tmp_path / "blob-x.bin", tmp_path / "mine"]
    unrelated[0].write_text("mine")
    unrelated[1].write_text("mine")
    unrelated[2].mkdir()
    with staged_file(tmp_path, "live.bin") as live:
        live.write_bytes(DATA)
        with staged_file(tmp_path, "done.bin") as done:
            done.write_bytes(DATA)
            published = publish_blob(tmp_path, HEX, done)
        removed = sweep_partial(tmp_path)
        assert live.read_bytes() == DATA
    assert sorted(removed) == sorted([stale_download.parent, stale_alias, stale_unpack, old_style])
    assert all(not p.exists() for p in removed)
    assert other_host.is_dir() and published.is_file()
    assert all(p.exists() for p in unrelated)


def test_sweep_of_a_cache_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    assert sweep_partial(tmp_path / "nowhere") == []
    assert not (tmp_path / "nowhere").exists()

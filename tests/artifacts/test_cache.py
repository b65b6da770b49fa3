from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from dlspec_ray.artifacts.cache import (
    ENV_VAR,
    blob_dir,
    cached_blob,
    default_cache_dir,
    publish_blob,
    remove_tree,
    staged_file,
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

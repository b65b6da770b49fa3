"""``dlspec-ray checksum PATH...``: the checksum a manifest needs, for a file or a folder."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlspec_ray.artifacts import tree_digest
from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "assets" / "imagenet-samples" / "images"


def _tree(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "a.jpg").write_bytes(b"a cat")
    (root / "notes.txt").write_bytes(b"n")
    return root


def test_prints_a_files_and_a_folders_checksum_like_sha256sum(tmp_path, capsys):
    folder = _tree(tmp_path / "images")
    file = folder / "notes.txt"
    assert main(["checksum", str(folder), str(file)]) == 0
    assert capsys.readouterr().out == (
        f"sha256-tree:{tree_digest(folder)}  {folder}\n"
        f"sha256:{hashlib.sha256(b'n').hexdigest()}  {file}\n"
    )


def test_quiet_prints_only_the_checksums(tmp_path, capsys):
    folder = _tree(tmp_path / "images")
    assert main(["checksum", "-q", str(folder)]) == 0
    assert capsys.readouterr().out == f"sha256-tree:{tree_digest(folder)}\n"


def test_the_shipped_photos_checksum_is_the_one_in_their_manifest(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["checksum", "--quiet", "assets/imagenet-samples/images"]) == 0
    checksum = capsys.readouterr().out.strip()
    manifest = (REPO / "manifests" / "datasets" / "imagenet-samples.yaml").read_text()
    assert f"checksum: {checksum}\n" in manifest


def _dangling(tmp_path: Path) -> list[str]:
    folder = _tree(tmp_path / "images")
    (folder / "gone").symlink_to("nowhere")
    return [str(folder)]


def _escaping(tmp_path: Path) -> list[str]:
    folder = _tree(tmp_path / "images")
    (folder / "up").symlink_to("..", target_is_directory=True)
    return [str(folder)]


def _fifo(tmp_path: Path) -> list[str]:
    os.mkfifo(tmp_path / "pipe")
    return [str(tmp_path / "pipe")]


BAD = [
    (lambda p: [str(p / "missing")], r"no such file or folder: '\S+/missing'; give the path"),
    (
        lambda p: [str(_tree(p / "ok")), str(p / "a"), str(p / "b")],
        r"no such file or folder: '\S+/a', '\S+/b'; give the path",
    ),
    (_dangling, r"images/gone is a symlink to 'nowhere', which does not exist"),
    (_escaping, r"images/up is a symlink to '\.\.', which resolves to \S+, outside the folder"),
    (_fifo, r"pipe is not a regular file or folder, so it has no checksum"),
]


@pytest.mark.parametrize(
    ("make", "message"), BAD, ids=["missing", "two-missing", "dangling", "escaping", "fifo"]
)
def test_bad_paths_exit_2_with_a_message_and_no_traceback(tmp_path, capsys, make, message):
    assert main(["checksum", *make(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing printed before a missing path is found
    assert captured.err.startswith("dlspec-ray: error: ")
    assert len(captured.err.strip().splitlines()) == 1
    assert re.search(message, captured.err), captured.err
    assert "Traceback" not in captured.err


def test_the_command_runs_as_a_process(tmp_path):
    folder = _tree(tmp_path / "images")
    done = subprocess.run(
        [sys.executable, "-m", "dlspec_ray.cli", "checksum", "images"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"sha256-tree:{tree_digest(folder)}  images\n")
    missing = subprocess.run(
        [sys.executable, "-m", "dlspec_ray.cli", "checksum", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "no such file or folder: 'nope'" in missing.stderr

from __future__ import annotations

import subprocess
import sys

import pytest

from dlspec_ray.cli import main
from dlspec_ray.environments.shm import shm_root
from dlspec_ray.owner import owner_token


def test_gc_removes_orphaned_shared_memory_and_says_what_it_did(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = owner_token(child.pid)
    child.wait()
    orphan = shm_root() / f"dlspec-ray-{dead}-0badc0de"
    orphan.mkdir()
    assert main(["env", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"removed {orphan}" in out
    assert "containers not checked: the Docker engine at DOCKER_HOST=" in out
    assert not orphan.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("python: /no/python3\n", r"python: '/no/python3' does not exist"),
        ("packages: [dlspec-ray-no-such-package==1]\n", r"cannot be installed offline"),
    ],
)
def test_prepare_refuses_a_bad_process_environment_with_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "sw.yaml"
    path.write_text(
        "kind: software\nid: 0b7a3c53-2ad6-4a4c-9d0b-6a7a1e2f9a10\nname: sw\nversion: '1.0.0'\n"
        "framework: {name: onnxruntime, version: '1.32.0'}\nenvironment: process\n" + text
    )
    assert main(["env", "prepare", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"dlspec-ray: error: {path}: " in err
    assert __import__("re").search(message, err)


def test_prepare_reports_the_interpreter_it_will_use(tmp_path, capsys):
    path = tmp_path / "sw.yaml"
    path.write_text(
        "kind: software\nid: 0b7a3c53-2ad6-4a4c-9d0b-6a7a1e2f9a11\nname: sw\nversion: '1.0.0'\n"
        f"framework: {{name: x, version: '1'}}\nenvironment: process\npython: {sys.executable}\n"
    )
    assert main(["env", "prepare", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"sw@1.0.0: the process environment is ready: interpreter {sys.executable}"
    )


def test_gc_removes_stale_partial_downloads_but_nothing_else_in_the_cache(
    capsys, monkeypatch, tmp_path
):
    from dlspec_ray.artifacts.cache import owner_tag

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    cache = tmp_path / "cache"
    monkeypatch.setenv("DLSPEC_RAY_CACHE", str(cache))
    stale = cache / "tmp" / f"blob-{child.pid}.1@{owner_tag().split('@')[1]}-m.onnx-abc123"
    stale.mkdir(parents=True)
    (stale / "m.onnx").write_bytes(b"half")
    unrelated = [cache / "tmp" / "notes.txt", cache / "blob-m.onnx-abc123"]
    for path in unrelated:
        path.write_text("not dlspec-ray's")
    assert main(["env", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}\n" in out
    assert f"1 partial download(s) or unpack(s) removed from the cache {cache}\n" in out
    assert not stale.exists()
    assert all(path.read_text() == "not dlspec-ray's" for path in unrelated)
    assert main(["env", "gc", "--cache-dir", str(tmp_path / "elsewhere")]) == 0
    assert "0 partial download(s) or unpack(s) removed from the cache " in capsys.readouterr().out

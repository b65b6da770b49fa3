from __future__ import annotations

import pytest

from dlspec_ray.cli import main

SOFTWARE = (
    "kind: software\nid: 0b7a3c53-2ad6-4a4c-9d0b-6a7a1e2f9a12\nname: sw\nversion: '1.0.0'\n"
    "framework: {name: onnxruntime, version: '1.32.0'}\n"
)


@pytest.mark.parametrize(
    "text, message",
    [
        ("packages: [onnxruntime==1.32.0]\n", r"container: the docker environment needs an image"),
        ("container: x/y:1\n", r"packages: an image is built from the software manifest's package"),
        ("container: x/y:1\npackages: [onnxruntime==1.32.0]\n",
         r"the Docker engine at DOCKER_HOST=unix://\S+/none.sock does not answer"),
    ],
)  # fmt: skip
def test_build_refuses_what_cannot_be_built_with_exit_2(
    tmp_path, capsys, monkeypatch, text, message
):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    path = tmp_path / "sw.yaml"
    path.write_text(SOFTWARE + text)
    assert main(["images", "build", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_an_unknown_software_ref_is_exit_2(repo_cwd, capsys):
    assert main(["images", "build", "onnxruntime-cpu-dokcer"]) == 2
    assert "onnxruntime-cpu-docker" in capsys.readouterr().err

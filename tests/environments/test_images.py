"""Framework images built offline: base from debootstrap, wheels with pip --no-index."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlspec_ray.cli import main
from dlspec_ray.environments import EnvironmentUnavailable
from dlspec_ray.environments.images import _dockerfile, build_image, debian_source
from dlspec_ray.spec.loader import load_manifest

REPO = Path(__file__).resolve().parents[2]
DOCKER_SOFTWARE = REPO / "manifests" / "software" / "onnxruntime-cpu-docker.yaml"

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"sources.list.d/debian.sources": DEB822}, ("http://mirror.example/debian", "bookworm")),
        (
            {"sources.list": "# comment\ndeb [arch=amd64 signed-by=/k.gpg] "
                             "http://m.example/debian trixie main contrib\n"},
            ("http://m.example/debian", "trixie"),
        ),
        (
            {"sources.list": "deb-src http://m.example/debian trixie main\n",
             "sources.list.d/x.list": "deb http://m.example/debian bookworm main\n"},
            ("http://m.example/debian", "bookworm"),
        ),
    ],
)  # fmt: skip
def test_the_mirror_comes_from_the_machines_apt_sources(tmp_path, files, expected):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    paths = [tmp_path / "sources.list", tmp_path / "sources.list.d"]
    assert debian_source(paths) == expected


@pytest.mark.parametrize(
    "text",
    ["", "deb http://m.example/debian-security bookworm-security main\n",
     "deb http://m.example/debian bookworm contrib\n"],
)  # fmt: skip
def test_no_usable_mirror_is_a_clear_error(tmp_path, text):
    (tmp_path / "sources.list").write_text(text)
    with pytest.raises(EnvironmentUnavailable, match=r"no Debian mirror in this machine's apt"):
        debian_source([tmp_path / "sources.list"])


def test_the_dockerfile_installs_offline_and_keeps_no_wheels():
    software = load_manifest(DOCKER_SOFTWARE)
    text = _dockerfile("dlspec-ray/base:x", "pip-26.0-py3-none-any.whl", software, "d1")
    install_stage, final_stage = text.split("FROM dlspec-ray/base:x\n")
    assert '"--no-index"' in install_stage and '"onnxruntime==1.32.0"' in install_stage
    assert "wheels" not in final_stage
    assert 'ENV OMP_NUM_THREADS="1"' in final_stage
    assert 'LABEL dlspec-ray.recipe="d1"' in final_stage


def test_the_image_is_small_and_a_rebuild_is_free(onnxruntime_image, capsys):
    assert onnxruntime_image.size < 400 * 2**20
    again = build_image(load_manifest(DOCKER_SOFTWARE))
    assert again.cached and again.id == onnxruntime_image.id  # found, not built
    assert main(["images", "build", str(DOCKER_SOFTWARE)]) == 0
    assert "dlspec-ray/onnxruntime-cpu:1.32.0: up to date" in capsys.readouterr().out


def test_packages_that_have_no_wheel_fail_the_build_clearly(onnxruntime_image, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        DOCKER_SOFTWARE.read_text().replace(
            "packages: [onnxruntime==1.32.0, numpy==2.4.6, pillow==13.0.0]",
            "packages: [dlspec-ray-no-such-package==1.0]",
        )
    )
    with pytest.raises(
        EnvironmentUnavailable,
        match=rf"^{path}: packages: \['dlspec-ray-no-such-package==1.0'\] cannot be fetched as "
        r"wheels for Python 3\.\d+: .*DLSPEC_RAY_WHEELHOUSE",
    ):
        build_image(load_manifest(path))

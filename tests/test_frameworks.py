"""A task whose framework is not installed fails before Ray starts, naming the pip extra."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dlspec_ray.cli import main
from dlspec_ray.frameworks import (
    MissingFramework,
    check_framework,
    missing_framework,
    require_module,
)
from dlspec_ray.spec import Catalog

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


@pytest.fixture(scope="module")
def catalog():
    return Catalog([MANIFESTS])


@pytest.mark.parametrize(
    ("module", "software", "model", "extra"),
    [
        ("torch", "pytorch-cpu", "efficientnet-lite0-pytorch", "pytorch"),
        ("ai_edge_litert", "litert-cpu", "mobilenet-v1-0.25-128-quant-tflite", "litert"),
        ("onnxruntime", "onnxruntime-cpu", "mnist-8", "onnxruntime"),
        ("onnx", "onnx-reference-cpu", "mnist-8-onnx-reference", "onnx-reference"),
    ],
)
def test_a_missing_framework_names_its_extra(catalog, monkeypatch, module, software, model, extra):
    sw, m = catalog.resolve(software, "software"), catalog.resolve(model, "model")
    assert missing_framework(sw, "inline", m) is None  # make installs every extra
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module as absent
    with pytest.raises(MissingFramework, match=rf"pip install 'dlspec-ray\[{extra}\]'") as info:
        check_framework(sw, "inline", m)
    assert info.value.exit_code == 2 and software in str(info.value)
    assert missing_framework(sw, "process", m) is None  # other environments bring their own


def test_a_missing_system_requirement_names_the_package(catalog):
    model = catalog.resolve("efficientnet-lite0-pytorch", "model")
    model = replace(model, system_requirements=("surely-not-a-package-xyz==1.0",))
    problem = missing_framework(catalog.resolve("pytorch-cpu", "software"), "inline", model)
    assert "pip install 'surely-not-a-package-xyz==1.0'" in problem
    assert "efficientnet-lite0-pytorch.yaml" in problem


def test_require_module_for_plots(monkeypatch):
    require_module("json", "notebook", "plots")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingFramework, match=r"pip install 'dlspec-ray\[notebook\]'"):
        require_module("matplotlib", "notebook", "the report's plots")


def test_dlspec_ray_run_refuses_a_missing_extra_with_exit_2(repo_cwd, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    code = main(["run", "--model", "efficientnet-lite0-pytorch", "--dataset", "imagenet-samples",
                 "--software", "pytorch-cpu", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "the torch framework (pytorch-cpu@1.0.0) is not installed" in err
    assert "pip install 'dlspec-ray[pytorch]'" in err and "Traceback" not in err

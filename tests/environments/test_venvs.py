"""Venvs for the process environment: built offline from a package list, cached by its hash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlspec_ray.environments import EnvironmentUnavailable, venvs
from dlspec_ray.environments.venvs import ensure_venv, interpreter_for, venv_key
from dlspec_ray.spec.types import FrameworkSpec, SoftwareManifest

BASE = getattr(sys, "_base_executable", sys.executable)


def software(**fields) -> SoftwareManifest:
    base = dict(kind="software", id="0", name="sw", version="1.0.0", description="",
                path=Path("software/sw.yaml"), framework=FrameworkSpec("x", "1"))  # fmt: skip
    return SoftwareManifest(**{**base, **fields})


def test_the_key_ignores_the_order_of_the_list():
    assert venv_key(["a==1", "b==2"], BASE, "3.11.7") == venv_key(["b==2", "a==1"], BASE, "3.11.7")
    assert venv_key(["a==1"], BASE, "3.11.7") != venv_key(["a==2"], BASE, "3.11.7")
    assert venv_key(["a==1"], BASE, "3.11.7") != venv_key(["a==1"], BASE, "3.12.1")


def test_a_venv_is_built_once_and_holds_exactly_its_packages(monkeypatch):
    # numpy's wheel is in pip's cache after the first run: seconds, not minutes.
    python = ensure_venv(["numpy==2.4.6"], BASE)

    def build_again(*args, **kwargs):
        raise AssertionError("the venv was built again")

    monkeypatch.setattr(venvs, "_build", build_again)
    assert ensure_venv(["numpy==2.4.6"], BASE) == python
    done = subprocess.run(
        [str(python), "-c", "import numpy, importlib.util as u; print(numpy.__version__, "
         "u.find_spec('ray') is None, u.find_spec('onnxruntime') is None)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["2.4.6", "True", "True"]


@pytest.mark.parametrize(
    "packages, message",
    [
        (["dlspec-ray-no-such-package==1.0"], r"cannot be installed offline for Python 3\.\d+: "),
        (["numpy==0.0.0"], r"No matching distribution found for numpy==0.0.0"),
    ],
)
def test_a_package_list_that_cannot_be_installed_offline_is_refused(packages, message):
    with pytest.raises(EnvironmentUnavailable, match=message) as error:
        interpreter_for(software(packages=tuple(packages)))
    assert str(error.value).startswith("software/sw.yaml: packages: ")
    assert "DLSPEC_RAY_WHEELHOUSE" in str(error.value)


def test_no_packages_and_no_python_is_this_interpreter():
    assert interpreter_for(software()) == Path(sys.executable)
    assert interpreter_for(None) == Path(sys.executable)

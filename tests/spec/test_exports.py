"""Keep ``dlspec_ray.spec.__all__`` honest: it exports what exists, and everything public."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import dlspec_ray.spec as spec

# The validator's machinery: importable, but not part of the public API.
INTERNAL_MODULES = {"rules", "yaml_lines"}


def _modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(spec.__path__) if m.name not in INTERNAL_MODULES]


def test_every_name_in_all_exists() -> None:
    missing = [name for name in spec.__all__ if not hasattr(spec, name)]
    assert missing == []
    assert len(set(spec.__all__)) == len(spec.__all__)


def test_every_public_name_of_the_spec_modules_is_exported() -> None:
    assert set(_modules()) >= {"arch", "catalog", "loader", "schemas", "types", "versions"}
    not_exported = {
        f"{module}.{name}"
        for module in _modules()
        for name in importlib.import_module(f"dlspec_ray.spec.{module}").__all__
        if name not in spec.__all__
    }
    assert not_exported == set()


def test_exports_are_the_module_objects_themselves() -> None:
    for module in _modules():
        loaded = importlib.import_module(f"dlspec_ray.spec.{module}")
        for name in loaded.__all__:
            assert getattr(spec, name) is getattr(loaded, name)


def test_every_module_declares_all() -> None:
    for info in pkgutil.iter_modules(spec.__path__):
        module = importlib.import_module(f"dlspec_ray.spec.{info.name}")
        assert isinstance(module.__all__, list), info.name
        assert all(hasattr(module, name) for name in module.__all__), info.name


def test_spec_imports_neither_ray_nor_docker() -> None:
    code = "import sys, dlspec_ray.spec; print(sorted({'ray', 'docker'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

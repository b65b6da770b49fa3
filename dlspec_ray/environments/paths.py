"""Where environments keep what they build: venvs, wheels, agent bundles, base images."""

from __future__ import annotations

__all__ = ["ENV_CACHE_VAR", "IMAGE_CACHE_VAR", "env_cache_dir", "image_cache_dir"]

import os
from pathlib import Path

from dlspec_ray.artifacts.cache import default_cache_dir

ENV_CACHE_VAR = "DLSPEC_RAY_ENV_CACHE"
IMAGE_CACHE_VAR = "DLSPEC_RAY_IMAGE_CACHE"


def env_cache_dir() -> Path:
    """``$DLSPEC_RAY_ENV_CACHE``, else ``environments/`` in the artifact cache."""
    configured = os.environ.get(ENV_CACHE_VAR, "").strip()
    return Path(configured).expanduser() if configured else default_cache_dir() / "environments"


def image_cache_dir() -> Path:
    """``$DLSPEC_RAY_IMAGE_CACHE``, else ``~/.cache/dlspec-ray/images``.

    Separate from the artifact cache on purpose: a base root filesystem takes a
    minute to make, so it is kept where the machine keeps it, across test runs
    that each use a fresh artifact cache.
    """
    configured = os.environ.get(IMAGE_CACHE_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "dlspec-ray" / "images"

"""Artifacts: fetching sources into a content-addressed cache, verified and unpacked."""

from __future__ import annotations

__all__ = [
    "SUPPORTED_ARCHIVES",
    "Progress",
    "archive_format",
    "default_cache_dir",
    "fetch",
    "fetch_all",
    "parse_checksum",
    "safe_unpack",
    "sha256_file",
]

from dlspec_ray.artifacts.cache import default_cache_dir
from dlspec_ray.artifacts.checksum import parse_checksum, sha256_file
from dlspec_ray.artifacts.fetch import Progress, fetch, fetch_all
from dlspec_ray.artifacts.unpack import SUPPORTED_ARCHIVES, archive_format, safe_unpack

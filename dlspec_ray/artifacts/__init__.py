"""Artifacts: fetching sources into a content-addressed cache, verified and unpacked."""

from __future__ import annotations

__all__ = [
    "SUPPORTED_ARCHIVES",
    "Checksum",
    "Progress",
    "archive_format",
    "checksum_of",
    "default_cache_dir",
    "fetch",
    "fetch_all",
    "local_path",
    "parse_any_checksum",
    "parse_checksum",
    "safe_unpack",
    "sha256_file",
    "tree_digest",
    "unverified_sources",
]

from dlspec_ray.artifacts.cache import default_cache_dir
from dlspec_ray.artifacts.checksum import (
    Checksum,
    checksum_of,
    parse_any_checksum,
    parse_checksum,
    sha256_file,
    tree_digest,
)
from dlspec_ray.artifacts.fetch import Progress, fetch, fetch_all, local_path, unverified_sources
from dlspec_ray.artifacts.unpack import SUPPORTED_ARCHIVES, archive_format, safe_unpack

"""SHA-256 digests of artifacts, and the ``sha256:<hex>`` form manifests write them in.

Artifacts can be gigabytes, so files are hashed in fixed-size chunks and never
read whole into memory.
"""

from __future__ import annotations

__all__ = ["CHUNK_SIZE", "format_checksum", "parse_checksum", "sha256_file"]

import hashlib
import re
from pathlib import Path

from dlspec_ray.errors import ArtifactError

CHUNK_SIZE = 1 << 20

_CHECKSUM = re.compile(r"sha256:([0-9a-fA-F]{64})")


def sha256_file(path: str | Path) -> str:
    """The lowercase hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def parse_checksum(text: str) -> str:
    """The lowercase hex digest of ``sha256:<hex>``; the only algorithm manifests use."""
    match = _CHECKSUM.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ArtifactError(
            f"checksum must be 'sha256:' followed by 64 hex digits, got {text!r}; "
            "compute it with `sha256sum FILE` on a trusted copy and write "
            "checksum: sha256:<digest>."
        )
    return match.group(1).lower()


def format_checksum(hex_digest: str) -> str:
    return f"sha256:{hex_digest}"

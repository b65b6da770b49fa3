from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dlspec_ray.artifacts.checksum import CHUNK_SIZE, parse_checksum, sha256_file
from dlspec_ray.errors import ArtifactError

HEX = hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 3])
def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "text",
    [f"sha256:{HEX}", f"sha256:{HEX.upper()}", f"  sha256:{HEX}\n"],
    ids=["lower", "upper", "whitespace"],
)
def test_parse_checksum_returns_lowercase_hex(text: str) -> None:
    assert parse_checksum(text) == HEX


@pytest.mark.parametrize(
    "text",
    [
        HEX,
        f"md5:{HEX}",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        "sha256:" + "g" * 64,
        "",
        f"sha256: {HEX}",
    ],
    ids=["no-prefix", "md5", "short", "long", "not-hex", "empty", "space"],
)
def test_parse_checksum_refuses_malformed(text: str) -> None:
    with pytest.raises(
        ArtifactError, match=r"'sha256:' followed by 64 hex digits, got .*sha256sum"
    ):
        parse_checksum(text)

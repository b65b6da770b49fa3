from __future__ import annotations

import pytest

from dlspec_ray.spec.sizes import parse_byte_size


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        ("16GiB", 16 * 2**30),
        ("512MB", 512 * 10**6),
        ("2 GiB", 2 * 2**30),
        ("1.5KiB", 1536),
        ("10KB", 10_000),
        ("3TiB", 3 * 2**40),
        ("7B", 7),
        ("16gib", 16 * 2**30),
        ("123456789012345678901", 123456789012345678901),
    ],
)
def test_parse_byte_size(value: int | str, expected: int) -> None:
    assert parse_byte_size(value) == expected


@pytest.mark.parametrize("value", ["16 GB of RAM", "GiB", "-1GiB", "1e9", "16Gi", True, 1.5, None])
def test_parse_byte_size_rejects_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected a size in bytes.*'16GiB'"):
        parse_byte_size(value)  # type: ignore[arg-type]


def test_parse_byte_size_rejects_negative_ints() -> None:
    with pytest.raises(ValueError, match="expected a size of at least 0 bytes, got -5"):
        parse_byte_size(-5)

from __future__ import annotations

import pytest

from dlspec_ray.spec.versions import (
    check_constraint,
    check_framework_version,
    is_semver,
    semver_key,
    version_satisfies,
)


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.32.0", ">=1.16", True),
        ("1.15.1", ">=1.16", False),
        ("1.32.0", "==1.32.0", True),
        ("1.32.1", "==1.32.0", False),
        ("1.32.0", "1.32.0", True),
        ("1.32.1", "1.32.0", False),
        ("1.32.0", "1.32.*", True),
        ("1.33.0", "1.32.*", False),
        ("1.32.0", "*", True),
        ("0.0.1", "", True),
        ("1.32.0", ">=1.16,<2", True),
        ("2.0.0", ">=1.16,<2", False),
        ("1.17.0rc1", ">=1.16", True),
        ("2.1.0+cu121", "==2.1.0", True),
        ("1.32.0", "~=1.30", True),
        ("1.32.0", "!=1.32.0", False),
        ("1.32", " >= 1.16 ", True),
    ],
)
def test_version_satisfies(version: str, constraint: str, expected: bool) -> None:
    assert version_satisfies(version, constraint) is expected


@pytest.mark.parametrize(
    ("version", "constraint", "message"),
    [
        ("1.32.0", ">=abc", r"expected a version constraint like '>=1\.16'.*got '>=abc'"),
        ("1.32.0", "=>1.0", r"expected a version constraint"),
        ("not a version", ">=1.0", r"expected a PEP 440 version like '1\.32\.0', got 'not a"),
    ],
)
def test_version_satisfies_rejects_bad_input(version: str, constraint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        version_satisfies(version, constraint)


def test_check_helpers_return_their_input_or_explain() -> None:
    assert check_constraint(">=1.16") == ">=1.16"
    assert check_framework_version("2.3.1.post1") == "2.3.1.post1"
    with pytest.raises(ValueError, match="expected a PEP 440 version"):
        check_framework_version("2.3.0-gpu-x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0.0", True),
        ("0.1.0-alpha.1+build.5", True),
        ("10.20.30", True),
        ("1.0.0-rc.1", True),
        ("1.0", False),
        ("1", False),
        ("v1.0.0", False),
        ("01.0.0", False),
        ("1.0.0-", False),
        ("1.0.0 ", False),
    ],
)
def test_is_semver(text: str, expected: bool) -> None:
    assert is_semver(text) is expected


def test_semver_key_orders_by_precedence() -> None:
    # The order given by semver.org's specification, item 11.
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(reversed(ordered), key=semver_key) == ordered


def test_semver_key_rejects_non_semver() -> None:
    with pytest.raises(ValueError, match="expected a semantic version"):
        semver_key("1.0")

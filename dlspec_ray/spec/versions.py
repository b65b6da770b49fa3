"""Two kinds of version: semver for manifests, PEP 440 for frameworks.

A manifest's own ``version`` is semantic versioning (it names a published
artifact); a framework's version is whatever its Python package says, so a
model's ``framework.version`` is a PEP 440 specifier matched with ``packaging``
(a dependency of Ray, so always present next to it).
"""

from __future__ import annotations

__all__ = [
    "SEMVER_PATTERN",
    "check_constraint",
    "check_framework_version",
    "is_semver",
    "semver_key",
    "version_satisfies",
]

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# semver.org 2.0.0, without the leading "v".
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SEMVER_PATTERN = _SEMVER.pattern


def is_semver(text: str) -> bool:
    return _SEMVER.fullmatch(text) is not None


def semver_key(text: str) -> tuple:
    """A sort key giving semver precedence: a release sorts above its pre-releases."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a semantic version like '1.0.0', got {text!r}")
    major, minor, patch, pre, _build = match.groups()
    release = (int(major), int(minor), int(patch))
    if pre is None:
        return (release, 1, ())
    # Numeric identifiers sort below alphanumeric ones, and numerically among themselves.
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (release, 0, parts)


def _specifier(constraint: str) -> SpecifierSet:
    text = constraint.strip()
    if text in ("", "*"):
        return SpecifierSet("")
    if text[0].isdigit():
        text = f"=={text}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(
            f"expected a version constraint like '>=1.16', '==1.32.0', '1.32.0' or '*', "
            f"got {constraint!r}"
        ) from None


def check_constraint(constraint: str) -> str:
    """Return ``constraint`` unchanged if it parses, else raise ValueError saying why."""
    _specifier(constraint)
    return constraint


def check_framework_version(version: str) -> str:
    """Return ``version`` unchanged if it is a PEP 440 version, else raise ValueError."""
    try:
        Version(version)
    except InvalidVersion:
        raise ValueError(
            f"expected a PEP 440 version like '1.32.0' or '2.3.1.post1', got {version!r}"
        ) from None
    return version


def version_satisfies(version: str, constraint: str) -> bool:
    """Whether a framework ``version`` meets a model's ``constraint``.

    A bare version means ``==`` and ``*`` means any. Pre-releases count, because
    the question is whether the installed framework is acceptable, not which
    release an installer should pick.
    """
    specifier = _specifier(constraint)
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise ValueError(f"expected a PEP 440 version like '1.32.0', got {version!r}") from None
    return specifier.contains(parsed, prereleases=True)

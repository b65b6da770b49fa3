"""Fuzzing the loader and the validator: bad input of any shape is one of our errors.

Whatever text a manifest file holds, loading it either returns a manifest or
raises a ``DLSpecError`` (a ``ManifestError`` listing problems): never a
``RecursionError``, ``MemoryError``, ``TypeError`` or other traceback.

The normal suite runs a few hundred examples per test. A longer run::

    DLSPEC_RAY_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest -q tests/spec/test_fuzz.py

sets the examples of every test here (``make fuzz`` runs that).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlspec_ray.errors import DLSpecError, Problem
from dlspec_ray.spec.loader import _header_of, load_manifest_text
from dlspec_ray.spec.types import KINDS
from dlspec_ray.spec.validate import validate_data
from dlspec_ray.spec.yaml_lines import parse_yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "manifests").rglob("*.yaml"))
TEXTS = [(path, path.read_text(encoding="utf-8")) for path in SHIPPED]

EXAMPLES_ENV = "DLSPEC_RAY_FUZZ_EXAMPLES"


def _examples(default: int) -> int:
    value = os.environ.get(EXAMPLES_ENV, "").strip()
    return int(value) if value else default


def fuzz(default: int):
    return settings(
        max_examples=_examples(default),
        deadline=None,
        database=None,
        derandomize=not os.environ.get(EXAMPLES_ENV),  # the normal suite is reproducible
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def check_text(text: str, base_dir: Path = REPO) -> None:
    """Load ``text`` as a manifest (and index its header): only our own errors may escape."""
    try:
        load_manifest_text(text, file="fuzz.yaml", base_dir=base_dir)
    except DLSpecError as error:
        assert str(error), "an error must say what is wrong"
    header, problems = _header_of(text, "fuzz.yaml", base_dir / "fuzz.yaml", "digest")
    assert (header is None) == bool(problems)
    assert all(isinstance(p, Problem) for p in problems)


def check_data(data: object) -> None:
    manifest, problems = validate_data(data, file="fuzz.yaml", base_dir=REPO)
    assert (manifest is None) == bool(problems)
    for problem in problems:
        assert isinstance(problem, Problem) and str(problem)


TOKENS = st.one_of(
    st.sampled_from(list("-:?,[]{}&*!|>'\"%@`#\n \t.0123456789eE+~")),
    st.sampled_from(["kind: ", "id: ", "model", "<<: ", "!!", "\n  ", "- ", "&a ", "*a"]),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)
YAMLISH = st.lists(TOKENS, max_size=200).map("".join)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["1.0.0", "float32", "x86_64", "nvidia/sm70", "16GiB", "sha256:" + "0" * 64]),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=5),
    ),
    max_leaves=40,
)
KEYS = st.sampled_from(
    ["kind", "id", "name", "version", "inputs", "outputs", "framework", "sources", "model",
     "cpu", "gpu", "task", "accuracy", "options", "run", "pre-process", "environment", "env"]
)  # fmt: skip


@fuzz(400)
@given(YAMLISH)
def test_yaml_ish_text_gives_our_errors_only(text: str) -> None:
    check_text(text)


@fuzz(300)
@given(st.sampled_from(KINDS), st.dictionaries(KEYS, STRUCTURES, max_size=8), STRUCTURES)
def test_random_structures_dumped_to_yaml_give_our_errors_only(
    kind: str, fields: dict, anything: object
) -> None:
    for data in ({"kind": kind, **fields}, anything):
        check_text(yaml.safe_dump(data, allow_unicode=True))
        check_data(data)


@st.composite
def mutated_manifest(draw) -> tuple[Path, str]:
    path, text = draw(st.sampled_from(TEXTS))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "repeat", "swap", "splice", "indent", "value"]))
        if how == "drop":
            del lines[at]
        elif how == "repeat":
            lines.insert(at, lines[at])
        elif how == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif how == "splice":
            line = lines[at]
            cut = draw(st.integers(0, len(line)))
            lines[at] = line[:cut] + draw(YAMLISH) + line[cut:]
        elif how == "indent":
            lines[at] = draw(st.sampled_from(["  ", "    ", "- ", ""])) + lines[at].lstrip()
        else:
            key, colon, _value = lines[at].partition(":")
            if colon:
                dumped = yaml.safe_dump(draw(STRUCTURES), default_flow_style=True).strip()
                lines[at] = f"{key}: {dumped}\n"
    return path, "".join(lines)


@fuzz(400)
@given(mutated_manifest())
def test_mutated_shipped_manifests_give_our_errors_only(case: tuple[Path, str]) -> None:
    path, text = case
    check_text(text, base_dir=path.parent)


@st.composite
def mutated_data(draw) -> object:
    """A shipped manifest as data, with one value somewhere replaced by anything."""
    _path, text = draw(st.sampled_from(TEXTS))
    data, problems = parse_yaml(text, "fuzz.yaml")
    assert problems == []
    node = data
    for _ in range(draw(st.integers(0, 4))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or draw(st.booleans()):
            node[key] = draw(STRUCTURES)
            return data
        node = child
    if isinstance(node, dict):
        node[draw(st.one_of(KEYS, st.text(max_size=8)))] = draw(STRUCTURES)
    return data


@fuzz(400)
@given(mutated_data())
def test_mutated_shipped_data_gives_problems_not_exceptions(data: object) -> None:
    check_data(data)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_manifest_loads(path: Path) -> None:
    load_manifest_text(path.read_text(encoding="utf-8"), file=str(path), base_dir=path.parent)


# Inputs the fuzzer found that once escaped as other exceptions.
FOUND = [
    ("kind: hardware\ncpu: {}\n", None),  # TypeError: CpuSpec() missing 'arch'
    ("when: 2024-13-01\n", r"fuzz\.yaml:1: invalid YAML: cannot read this timestamp"),  # ValueError
]


@pytest.mark.parametrize(("text", "message"), FOUND)
def test_what_the_fuzzer_found(text: str, message: str | None) -> None:
    check_text(text)
    if message is not None:
        with pytest.raises(DLSpecError, match=message):
            load_manifest_text(text, file="fuzz.yaml")

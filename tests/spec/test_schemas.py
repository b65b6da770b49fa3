from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dlspec_ray.errors import UsageError
from dlspec_ray.spec.loader import find_manifest_files, load_manifest
from dlspec_ray.spec.rules import ListOf, MapOf, OneOrList, Record, Rule
from dlspec_ray.spec.schemas import build_schema, load_schema, schema_path, write_schemas
from dlspec_ray.spec.types import KINDS
from dlspec_ray.spec.validate import KIND_RULES, accepted_keys

REPO_MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    schema = load_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema_path(kind).name == f"{kind}.json"
    assert json.loads(schema_path(kind).read_text()) == schema


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schema_is_what_the_validator_describes(kind: str) -> None:
    assert load_schema(kind) == build_schema(kind), (
        "the shipped schema is stale: run python -m dlspec_ray.spec.schemas"
    )


def test_write_schemas_writes_one_file_per_kind(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{k}.json" for k in KINDS)
    assert json.loads((tmp_path / "model.json").read_text()) == build_schema("model")


def _record_keys(rule: Rule, path: str = "") -> dict[str, set[str]]:
    """Accepted keys of every mapping below ``rule``, by field path."""
    if isinstance(rule, Record):
        found = {path: set(rule.by_name)}
        for field in rule.fields:
            found |= _record_keys(field.rule, f"{path}.{field.name}".lstrip("."))
        return found
    if isinstance(rule, (ListOf, OneOrList)):
        return _record_keys(rule.item, f"{path}[]")
    if isinstance(rule, MapOf):
        return _record_keys(rule.value, f"{path}{{}}")
    return {}


def _schema_keys(schema: dict[str, Any], path: str = "") -> dict[str, set[str]]:
    """Property names of every closed object schema below ``schema``, by field path."""
    found: dict[str, set[str]] = {}
    if "properties" in schema:
        found[path] = set(schema["properties"])
        for name, sub in schema["properties"].items():
            found |= _schema_keys(sub, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("items"), dict):
        found |= _schema_keys(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found |= _schema_keys(schema["additionalProperties"], f"{path}{{}}")
    for option in schema.get("anyOf", []):
        found |= _schema_keys(option, path)
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_schema_property_names_equal_the_keys_the_validator_accepts(kind: str) -> None:
    schema = load_schema(kind)
    assert set(schema["properties"]) == accepted_keys(kind)
    assert set(schema["required"]) == {f.name for f in KIND_RULES[kind].fields if f.required}
    assert _schema_keys(schema) == _record_keys(KIND_RULES[kind])


def _repo_manifests() -> list[Path]:
    return find_manifest_files(REPO_MANIFESTS) if REPO_MANIFESTS.is_dir() else []


@pytest.mark.parametrize(
    "path", _repo_manifests(), ids=lambda p: p.relative_to(REPO_MANIFESTS).as_posix()
)
def test_every_repo_manifest_loads_and_matches_its_schema(path: Path) -> None:
    manifest = load_manifest(path)
    _validator(manifest.kind).validate(yaml.safe_load(path.read_text()))


def test_the_repo_has_a_manifest_of_every_kind() -> None:
    kinds = {yaml.safe_load(p.read_text()).get("kind") for p in _repo_manifests()}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_valid_fixtures_match_their_schema(valid_texts: dict[str, str], kind: str) -> None:
    _validator(kind).validate(yaml.safe_load(valid_texts[kind]))


@pytest.mark.parametrize(
    ("kind", "old", "new", "path"),
    [
        ("hardware", "ncpu: 2", "ncpus: 2", ["cpu"]),
        ("hardware", 'version: "1.2.0"', "version: 1.2", ["version"]),
        ("software", "environment: process", "environment: podman", ["environment"]),
        ("dataset", "checksum: sha256:ab", "checksum: md5:ab", ["sources", 0, "checksum"]),
        ("model", "shape: [-1, 10]", "shape: [-2, 10]", ["outputs", 0, "shape", 0]),
        ("model", "job_type: inference", "colour: red", []),
        ("reference", "value: 0.989", "value: 98.9", ["accuracy", "top1", "value"]),
    ],
)
def test_schema_rejects_what_the_validator_rejects(
    valid_texts: dict[str, str], kind: str, old: str, new: str, path: list
) -> None:
    data = yaml.safe_load(valid_texts[kind].replace(old, new, 1))
    errors = list(_validator(kind).iter_errors(data))
    assert [list(e.absolute_path) for e in errors] == [path]


def test_unknown_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"expected a manifest kind in hardware, .*got 'modle'"):
        load_schema("modle")

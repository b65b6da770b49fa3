from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dlspec_ray.errors import DLSpecError, ManifestError, UsageError
from dlspec_ray.spec.catalog import MANIFEST_PATH_ENV, Catalog, UnknownManifest

Write = Callable[[str, str], Path]

MODEL_ID = "8e3f9d81-4c50-4f6e-8db1-a09f8e7d6c54"


def _version(text: str, version: str, uuid_tail: str) -> str:
    """The same manifest at another version, with its own id."""
    return text.replace('version: "1.0.0"', f'version: "{version}"', 1).replace(
        "-a09f8e7d6c54", f"-{uuid_tail}", 1
    )


@pytest.fixture
def catalog(write: Write, valid_texts: dict[str, str], tmp_path: Path) -> Catalog:
    for kind, text in valid_texts.items():
        write(f"root/{kind}s/{kind}.yaml", text)
    model = valid_texts["model"]
    write("root/models/net-1.10.0.yaml", _version(model, "1.10.0", "000000000110"))
    write("root/models/net-1.9.0.yaml", _version(model, "1.9.0", "000000000109"))
    write("root/models/net-2.0.0-rc.1.yaml", _version(model, "2.0.0-rc.1", "0000000002c1"))
    return Catalog([tmp_path / "root"])


def test_resolve_by_name_at_version(catalog: Catalog) -> None:
    manifest = catalog.resolve("test-net@1.9.0", "model")
    assert (manifest.kind, manifest.ref) == ("model", "test-net@1.9.0")
    assert catalog.resolve("test-digits@2.0.0-rc.1", "dataset").name == "test-digits"


def test_resolve_by_id_in_any_case(catalog: Catalog) -> None:
    assert catalog.resolve(MODEL_ID, "model").ref == "test-net@1.0.0"
    assert catalog.resolve(MODEL_ID.upper(), "model").ref == "test-net@1.0.0"


def test_a_bare_name_resolves_to_the_highest_release(catalog: Catalog) -> None:
    # Semver precedence, not string order: 2.0.0-rc.1 > 1.10.0 > 1.9.0 > 1.0.0.
    assert catalog.resolve("test-net", "model").version == "2.0.0-rc.1"


def test_a_bare_name_prefers_a_release_over_its_pre_release(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    model = valid_texts["model"]
    write("r/a.yaml", _version(model, "2.0.0-rc.1", "0000000002c1"))
    write("r/b.yaml", _version(model, "2.0.0", "000000000200"))
    write("r/c.yaml", _version(model, "1.10.0", "000000000110"))
    assert Catalog([tmp_path / "r"]).resolve("test-net", "model").version == "2.0.0"


def test_resolve_a_path_even_outside_the_roots(
    catalog: Catalog, write: Write, valid_texts: dict[str, str]
) -> None:
    outside = write("elsewhere/hw.yaml", valid_texts["hardware"].replace("1.2.0", "9.9.9"))
    assert catalog.resolve(str(outside), "hardware").version == "9.9.9"
    assert catalog.resolve(outside, "hardware").path == outside.resolve()


def test_resolve_a_relative_path(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "root")
    assert catalog.resolve("models/model.yaml", "model").ref == "test-net@1.0.0"


def test_resolve_a_broken_file_by_path_raises_its_problems(catalog: Catalog, write: Write) -> None:
    broken = write("elsewhere/broken.yaml", "kind: model\n")
    with pytest.raises(ManifestError, match="missing required key 'id'"):
        catalog.resolve(str(broken), "model")


def test_a_missing_path_is_unknown(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(UnknownManifest, match=r"no model manifest file at '.*nope\.yaml'"):
        catalog.resolve(str(tmp_path / "nope.yaml"), "model")


@pytest.mark.parametrize(
    ("ref", "kind", "message"),
    [
        ("test-nett@1.0.0", "model", r"did you mean 'test-net@1\.0\.0'"),
        ("test-net@3.0.0", "model", r"no model manifest matches 'test-net@3\.0\.0'"),
        ("tset-net", "model", r"no model manifest matches 'tset-net' \(searched: .*root\)"),
        (
            "00000000-0000-0000-0000-000000000000",
            "model",
            r"no model manifest matches '00000000-.*; known model manifests: test-net@1\.0\.0",
        ),
        ("test-net@1.0.0", "dataset", r"expected a dataset manifest, got model"),
        ("test-net", "dataset", r"expected a dataset manifest, got model"),
        (MODEL_ID, "software", r"expected a software manifest, got model"),
    ],
)
def test_unknown_refs(catalog: Catalog, ref: str, kind: str, message: str) -> None:
    with pytest.raises(UnknownManifest, match=message) as caught:
        catalog.resolve(ref, kind)
    assert isinstance(caught.value, DLSpecError)


def test_a_wrong_kind_for_a_path(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "root" / "datasets" / "dataset.yaml"
    with pytest.raises(UnknownManifest, match=r"expected a model manifest, got dataset"):
        catalog.resolve(str(path), "model")


def test_an_unknown_kind_is_a_usage_error(catalog: Catalog) -> None:
    with pytest.raises(UsageError, match=r"expected a kind in hardware, .*got 'modle'"):
        catalog.resolve("test-net", "modle")


def test_broken_files_are_kept_as_problems_not_skipped(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    write("root/good.yaml", valid_texts["software"])
    write("root/bad-model.yaml", valid_texts["model"].replace('version: "1.0.0"', "version: 1"))
    write("root/bad-yaml.yaml", "kind: [\n")
    catalog = Catalog([tmp_path / "root"])
    assert catalog.resolve("test-ort@1.0.0", "software").name == "test-ort"
    assert {Path(p.file).name for p in catalog.problems} == {"bad-model.yaml", "bad-yaml.yaml"}
    with pytest.raises(UnknownManifest) as caught:
        catalog.resolve("test-net@1.0.0", "model")
    message = str(caught.value)
    assert "2 file(s) under the roots failed validation" in message
    assert f"dlspec-ray validate {tmp_path / 'root'}" in message


def test_identical_copies_of_a_manifest_are_one_manifest(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    write("root/a.yaml", valid_texts["hardware"])
    write("root/copy/a.yaml", valid_texts["hardware"])
    catalog = Catalog([tmp_path / "root"])
    assert catalog.problems == ()
    assert catalog.resolve("test-gpu-box@1.2.0", "hardware").name == "test-gpu-box"
    assert catalog.resolve("test-gpu-box", "hardware").version == "1.2.0"


HARDWARE_ID = "5b0c6a5e-1f2d-4c3b-9a8e-7d6c5b4a3f21"


@pytest.mark.parametrize(
    "ref", ["test-gpu-box@1.2.0", "test-gpu-box", HARDWARE_ID, "test-gpu-box@1.3.0"]
)
def test_one_id_with_two_contents_is_a_problem_and_ambiguous(
    write: Write, valid_texts: dict[str, str], tmp_path: Path, ref: str
) -> None:
    first = write("root/a.yaml", valid_texts["hardware"])
    second = write("root/b.yaml", valid_texts["hardware"].replace("1.2.0", "1.3.0"))
    catalog = Catalog([tmp_path / "root"])
    assert [(p.file, p.field, p.line) for p in catalog.problems] == [(str(second), "id", 2)]
    assert str(first) in catalog.problems[0].message
    both = rf"{second}: id: {first} has the same id {HARDWARE_ID} with different content"
    with pytest.raises(UsageError, match=rf"{both}.*give one of them a new id"):
        catalog.resolve(ref, "hardware")


def test_one_name_at_version_with_two_ids_is_a_problem_and_ambiguous(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    first = write("root/a.yaml", valid_texts["hardware"])
    write("root/b.yaml", valid_texts["hardware"].replace("-7d6c5b4a3f21", "-000000000001"))
    catalog = Catalog([tmp_path / "root"])
    assert [p.field for p in catalog.problems] == ["version"]
    assert str(first) in catalog.problems[0].message
    with pytest.raises(UnknownManifest, match=r"names more than one hardware manifest"):
        catalog.resolve("test-gpu-box@1.2.0", "hardware")


def test_the_same_name_at_the_same_version_may_exist_in_two_kinds(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    write("root/model.yaml", valid_texts["model"].replace("name: test-net", "name: shared"))
    write("root/data.yaml", valid_texts["dataset"].replace("name: test-digits", "name: shared"))
    catalog = Catalog([tmp_path / "root"])
    assert catalog.problems == ()
    assert catalog.resolve("shared", "model").kind == "model"
    assert catalog.resolve("shared", "dataset").kind == "dataset"


def test_default_roots(
    write: Write, valid_texts: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("project/manifests/hw.yaml", valid_texts["hardware"])
    write("env1/sw.yaml", valid_texts["software"])
    write("env2/data.yaml", valid_texts["dataset"])
    write("extra/model.yaml", valid_texts["model"])
    monkeypatch.chdir(tmp_path / "project")
    env = os.pathsep.join([str(tmp_path / "env1"), "", str(tmp_path / "env2")])
    monkeypatch.setenv(MANIFEST_PATH_ENV, env)
    catalog = Catalog.default(extra_roots=[tmp_path / "extra"])
    assert [r.name for r in catalog.roots] == ["manifests", "env1", "env2", "extra"]
    assert sorted(m.kind for m in catalog.manifests) == [
        "dataset",
        "hardware",
        "model",
        "software",
    ]
    assert catalog.problems == ()


def test_default_roots_without_a_manifests_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MANIFEST_PATH_ENV, raising=False)
    catalog = Catalog.default()
    assert catalog.roots == ()
    with pytest.raises(UnknownManifest, match=rf"no manifest folders: .*set {MANIFEST_PATH_ENV}"):
        catalog.resolve("test-net@1.0.0", "model")


def test_a_missing_root_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MANIFEST_PATH_ENV, str(tmp_path / "typo"))
    monkeypatch.chdir(tmp_path)
    catalog = Catalog.default()
    assert [(p.file, p.message) for p in catalog.problems] == [
        (str(tmp_path / "typo"), "no such file or directory")
    ]


def test_overlapping_roots_load_each_file_once(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    write("root/sub/hw.yaml", valid_texts["hardware"])
    catalog = Catalog([tmp_path / "root", tmp_path / "root" / "sub", tmp_path / "root"])
    assert len(catalog.manifests) == 1
    assert catalog.problems == ()
    assert len(catalog.roots) == 2


def test_of_kind(catalog: Catalog) -> None:
    assert sorted(m.version for m in catalog.of_kind("model")) == [
        "1.0.0",
        "1.10.0",
        "1.9.0",
        "2.0.0-rc.1",
    ]


def test_a_catalog_indexes_headers_and_loads_only_what_a_lookup_needs(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dlspec_ray.spec.catalog as catalog_module

    loaded: list[str] = []
    real = catalog_module.load_manifest

    def counting(path):
        loaded.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(catalog_module, "load_manifest", counting)
    fresh = Catalog([tmp_path / "root"])
    assert len(fresh.headers) == 8 and loaded == []
    assert fresh.resolve("test-net@1.9.0", "model").version == "1.9.0"
    assert fresh.resolve("test-net@1.9.0", "model").version == "1.9.0"
    assert loaded == ["net-1.9.0.yaml"]
    assert [m.kind for m in fresh.of_kind("dataset")] == ["dataset"]
    assert loaded == ["net-1.9.0.yaml", "dataset.yaml"]


OPTIONS = "options: {top_k: 5, nested: {a: [1, 2]}}"


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda model: model.replace(OPTIONS, "options:\n" + _indented(_bomb())), "aliases"),
        (lambda model: model + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n", "nested more"),
        (lambda model: _bomb() + model, "refused: aliases"),
        (lambda model: model + ("# padding\n" * 220_000), "refused: the file is"),
        (lambda model: model.replace("kind: model", "kind: [model"), "invalid YAML"),
        (lambda model: model.replace("id: 8e3f9d81", "id: 9e3f9d81-nope"), "id: expected a UUID"),
    ],
    ids=["bomb-in-options", "deep", "bomb-at-top", "large", "bad-yaml", "bad-id"],
)
def test_a_broken_file_in_a_root_warns_once_and_breaks_no_other_ref(
    write: Write,
    valid_texts: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bad: Callable[[str], str],
    message: str,
) -> None:
    write("root/good.yaml", valid_texts["software"])
    broken = write("root/bad.yaml", bad(valid_texts["model"]))
    for _ in range(2):
        catalog = Catalog([tmp_path / "root"])
        assert catalog.resolve("test-ort@1.0.0", "software").name == "test-ort"
        assert catalog.resolve("test-ort", "software").name == "test-ort"
        catalog.of_kind("model")  # the broken model is skipped, not raised
    err = capsys.readouterr().err
    assert err.count("dlspec-ray: warning:") == 1, err
    assert f"dlspec-ray: warning: {broken}" in err
    assert err.rstrip().endswith("(skipped: this file is not used)")
    assert message in err
    assert len(err.splitlines()) == 1
    with pytest.raises((ManifestError, UnknownManifest)):
        catalog.resolve("test-net@1.0.0", "model")


def test_a_ref_no_root_holds_falls_back_to_the_shipped_manifest(
    write: Write, valid_texts: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlspec_ray.spec.catalog import SHIPPED_MANIFESTS

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MANIFEST_PATH_ENV, raising=False)
    shipped = Catalog.default().resolve("mnist-8@1.0.0", "model")
    assert Path(shipped.path).is_relative_to(SHIPPED_MANIFESTS.resolve())
    # A root that holds the ref comes first; a plain Catalog never falls back.
    write("mine/model.yaml", valid_texts["model"])
    own = Catalog.default(extra_roots=[tmp_path / "mine"])
    name = own.of_kind("model")[0].ref
    assert Path(own.resolve(name, "model").path).is_relative_to(tmp_path / "mine")
    with pytest.raises(UnknownManifest, match=r"no model manifest matches 'mnist-8@1\.0\.0'"):
        Catalog([tmp_path / "mine"]).resolve("mnist-8@1.0.0", "model")

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dlspec_ray.errors import DLSpecError, ManifestError
from dlspec_ray.spec.loader import (
    find_manifest_files,
    load_manifest,
    load_manifest_text,
    validate_paths,
)
from dlspec_ray.spec.types import DatasetManifest

Write = Callable[[str, str], Path]


def test_load_manifest_locates_sources_next_to_the_file(
    write: Write, valid_texts: dict[str, str]
) -> None:
    path = write("sets/digits.yaml", valid_texts["dataset"])
    manifest = load_manifest(path)
    assert isinstance(manifest, DatasetManifest)
    assert manifest.path == path.resolve()
    source = manifest.sources[0]
    assert source.base_dir == path.parent.resolve()
    assert (source.origin, source.field) == (str(path), "sources[0]")
    assert manifest.reader is not None
    assert manifest.reader.file == str(path)


def test_load_manifest_accepts_a_string_path(write: Write, valid_texts: dict[str, str]) -> None:
    path = write("hw.yml", valid_texts["hardware"])
    assert load_manifest(str(path)).name == "test-gpu-box"


def test_load_manifest_reports_problems_with_the_file_name_and_line(
    write: Write, valid_texts: dict[str, str]
) -> None:
    path = write("bad.yaml", valid_texts["hardware"].replace("ncpu: 2", "ncpu: two"))
    with pytest.raises(ManifestError, match=rf"^{path}:8: cpu.ncpu: expected a number > 0") as e:
        load_manifest(path)
    assert isinstance(e.value, DLSpecError)
    assert e.value.exit_code == 2


def test_load_manifest_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nope\.yaml: cannot read the file: No such file"):
        load_manifest(tmp_path / "nope.yaml")


def test_load_manifest_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin1\.yaml: expected UTF-8 text"):
        load_manifest(path)


def test_load_manifest_text_resolves_sources_against_base_dir(
    valid_texts: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest_text(valid_texts["dataset"], "x.yaml", tmp_path)
    assert manifest.path is None
    assert manifest.sources[0].base_dir == tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    assert load_manifest_text(valid_texts["dataset"]).sources[0].base_dir == tmp_path
    assert load_manifest_text(valid_texts["dataset"]).sources[0].origin == "<string>"


def test_validate_paths_walks_folders_and_reports_every_file(
    write: Write, valid_texts: dict[str, str], tmp_path: Path
) -> None:
    write("a/hardware.yaml", valid_texts["hardware"])
    write("a/deep/er/model.yml", valid_texts["model"])
    write("a/.hidden/broken.yaml", "kind: [")
    write("a/notes.txt", "not a manifest")
    write("a/broken1.yaml", "kind: model\n")
    write("a/broken2.yaml", "kind: [\n")
    single = write("b/software.yaml", valid_texts["software"])
    manifests, problems = validate_paths(
        [tmp_path / "a", str(single), tmp_path / "missing", single]
    )
    assert sorted(m.kind for m in manifests) == ["hardware", "model", "software"]
    files = {Path(p.file).name for p in problems}
    assert files == {"broken1.yaml", "broken2.yaml", "missing"}
    assert [p.message for p in problems if p.file.endswith("missing")] == [
        "no such file or directory"
    ]
    broken1 = [p.field for p in problems if p.file.endswith("broken1.yaml")]
    assert set(broken1) == {"id", "name", "version", "inputs", "outputs"} | {
        "pre-process",
        "run",
        "post-process",
        "framework",
    }


def test_find_manifest_files_is_sorted_and_skips_hidden(write: Write, tmp_path: Path) -> None:
    for name in ["z.yaml", "a.yml", "m/b.yaml", ".git/c.yaml", "m/.d.yaml", "e.json"]:
        write(name, "x: 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in find_manifest_files(tmp_path)]
    assert found == ["a.yml", "m/b.yaml", "z.yaml"]
    assert find_manifest_files(tmp_path / "e.json") == [tmp_path / "e.json"]


def test_syntax_error_in_a_file_is_reported_at_its_line(
    write: Write, valid_texts: dict[str, str]
) -> None:
    text = valid_texts["model"].replace("      return data\n", "      return data)\n", 1)
    path = write("m.yaml", text)
    line = text.splitlines().index("      return data)") + 1
    with pytest.raises(ManifestError, match=rf"^{path}:{line}: pre-process: Python syntax error"):
        load_manifest(path)

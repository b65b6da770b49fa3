"""Bounded parsing: size, nesting and alias limits, each a one-line problem at its line."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from dlspec_ray.cli import main
from dlspec_ray.errors import ManifestError, UsageError
from dlspec_ray.spec.loader import (
    DEFAULT_MAX_MANIFEST_BYTES,
    MAX_MANIFEST_BYTES_ENV,
    load_manifest,
    load_manifest_text,
    max_manifest_bytes,
)
from dlspec_ray.spec.yaml_lines import MAX_ALIAS_NODES, MAX_DEPTH, parse_yaml

Write = Callable[[str, str], Path]


def alias_bomb(levels: int = 10, width: int = 9) -> str:
    """``a: &a [x, ...]``, ``b: &b [*a, *a, ...]``, ...: width**levels items once expanded."""
    names = [f"n{i}" for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + "\n"


def model_with_options(model: str, options: str) -> str:
    """The model manifest with ``options`` replaced by the YAML block ``options``."""
    start = model.index("options:")
    end = model.index("\n", start)
    return model[:start] + "options:\n" + options + model[end:]


def deep(levels: int, flow: bool) -> str:
    if flow:
        return "x: " + "[" * levels + "]" * levels + "\n"
    return "x:\n" + "".join("  " * i + "-\n" for i in range(1, levels + 1))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (alias_bomb(), 5, rf"aliases \(\*n3 and others\) expand to more than {MAX_ALIAS_NODES}"),
        ("a: &a [1, *a]\n", 1, r"alias \*a is inside its own anchor &a"),
        ("a: 0\nb: &b {c: *b}\n", 2, r"alias \*b is inside its own anchor &b"),
        (deep(10_000, flow=True), 1, rf"nested more than {MAX_DEPTH} levels deep; flatten"),
        (deep(500, flow=False), MAX_DEPTH + 1, rf"nested more than {MAX_DEPTH} levels"),
        ("a: 1\nwhen: 2024-13-01\n", 2, r"cannot read this timestamp: month .*; quote it"),
        ("a: 1\nn: " + "9" * 5000 + "\n", 2, r"cannot read this int: .*; quote it"),
    ],
)
def test_parse_limits_are_problems_at_their_line(text: str, line: int, message: str) -> None:
    data, problems = parse_yaml(text, "f.yaml")
    assert data is None
    assert len(problems) == 1
    assert problems[0].line == line
    assert "\n" not in str(problems[0])
    with pytest.raises(ManifestError, match=rf"^f\.yaml:{line}: .*{message}"):
        load_manifest_text(text, file="f.yaml")


def test_aliases_within_the_budget_still_work() -> None:
    text = "base: &base {top_k: 5, mean: [0.5, 0.5]}\nrun:\n  <<: *base\n  top_k: 1\nagain: *base\n"
    data, problems = parse_yaml(text, "f.yaml")
    assert problems == []
    assert data["run"] == {"top_k": 1, "mean": [0.5, 0.5]}
    assert data["again"] == data["base"]


def test_nesting_up_to_the_limit_is_fine() -> None:
    _data, problems = parse_yaml(deep(MAX_DEPTH - 1, flow=True), "f.yaml")
    assert problems == []


def test_an_alias_bomb_in_a_models_options_is_refused(
    write: Write, valid_texts: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = "".join(f"  {line}\n" for line in alias_bomb().splitlines())
    path = write("bomb.yaml", model_with_options(valid_texts["model"], bomb))
    with pytest.raises(ManifestError, match=r"bomb\.yaml:\d+: refused: aliases"):
        load_manifest(path)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert "refused: aliases" in out.out
    assert "Traceback" not in out.out + out.err


def test_ten_thousand_levels_of_nesting_exit_2_without_a_traceback(
    write: Write, valid_texts: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        "deep.yaml", valid_texts["model"] + deep(10_000, flow=True).replace("x:", "extra:")
    )
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert f"deep.yaml:{valid_texts['model'].count(chr(10)) + 1}: refused: nested" in out.out
    assert "Traceback" not in out.out + out.err
    assert "RecursionError" not in out.out + out.err


def test_a_2_mib_manifest_is_refused_before_parsing(
    write: Write, valid_texts: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    padding = "# " + "x" * 78 + "\n"
    path = write("big.yaml", valid_texts["hardware"] + padding * (2 * 2**20 // len(padding)))
    assert path.stat().st_size > 2 * 2**20 - 100
    with pytest.raises(
        ManifestError,
        match=rf"big\.yaml: refused: the file is \d+ bytes, over the "
        rf"{DEFAULT_MAX_MANIFEST_BYTES}-byte limit.*raise \${MAX_MANIFEST_BYTES_ENV}",
    ):
        load_manifest(path)
    assert main(["validate", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_size_limit_is_configurable(
    write: Write, valid_texts: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write("hw.yaml", valid_texts["hardware"])
    monkeypatch.setenv(MAX_MANIFEST_BYTES_ENV, "100")
    assert max_manifest_bytes() == 100
    with pytest.raises(ManifestError, match=r"over the 100-byte limit"):
        load_manifest(path)
    with pytest.raises(ManifestError, match=r"<string>: refused: .*over the 100-byte limit"):
        load_manifest_text(valid_texts["hardware"])
    monkeypatch.setenv(MAX_MANIFEST_BYTES_ENV, "4MiB")
    assert max_manifest_bytes() == 4 * 2**20
    assert load_manifest(path).kind == "hardware"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", r"expected a size in bytes.*unset it for 1MiB"),
        ("0", r"expected at least 1 byte, got .0.; unset it"),
    ],
)
def test_a_bad_size_limit_is_a_usage_error(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_MANIFEST_BYTES_ENV, value)
    with pytest.raises(UsageError, match=rf"\${MAX_MANIFEST_BYTES_ENV}: {message}"):
        max_manifest_bytes()


@pytest.fixture
def away_from_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ./manifests and no $DLSPEC_RAY_MANIFEST_PATH: only the roots a test names."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DLSPEC_RAY_MANIFEST_PATH", raising=False)
    return work


def _by_name_args(copies, *extra: str) -> list[str]:
    """A dry run of mnist-8 looked up by name@version in the copies' root."""
    args = copies.run_args("--dry-run", "--manifests", str(copies.root), *extra)
    args[args.index("--model") + 1] = "mnist-8@1.0.0"
    return args


def test_an_alias_bomb_in_a_manifests_root_does_not_break_an_unrelated_run(
    mnist_manifests, away_from_the_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = (tmp_path / "manifests" / mnist_manifests.FILES["model"]).read_text()
    bombs = tmp_path / "bombs"
    bombs.mkdir()
    start = model.index("\nid:")
    (bombs / "bomb.yaml").write_text(
        model[:start].replace("mnist-8", "bomb") + "\n" + alias_bomb() + model[start:]
    )
    assert main(_by_name_args(mnist_manifests, "--manifests", str(bombs))) == 0
    captured = capsys.readouterr()
    assert "dry run: nothing was started or run." in captured.out
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert str(bombs / "bomb.yaml") in warnings[0] and "refused: aliases" in warnings[0]
    # validate still reports it as an error.
    assert main(["validate", str(bombs)]) == 2
    assert "bomb.yaml:" in capsys.readouterr().out


def test_duplicate_ids_with_different_content_fail_validate_and_a_run(
    mnist_manifests, away_from_the_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = Path(mnist_manifests.path("model"))
    second = tmp_path / "manifests" / "models" / "mnist-8-edited.yaml"
    second.write_text(first.read_text().replace("author: ONNX Model Zoo", "author: Someone Else"))
    assert main(["validate", str(tmp_path / "manifests")]) == 2
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "duplicate id" in line]
    assert ":2: id: duplicate id e0b800cb-f477-4b52-b88f-57ef5c2f8694: " in line
    assert str(first) in line and str(second) in line and "give one of them a new id" in line

    assert main(_by_name_args(mnist_manifests)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "error" in line]
    assert str(first) in line and str(second) in line
    assert "has the same id e0b800cb-f477-4b52-b88f-57ef5c2f8694 with different content" in line
    assert line.endswith("give one of them a new id")


def test_an_identical_copy_of_a_manifest_is_fine(
    mnist_manifests, away_from_the_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = Path(mnist_manifests.path("model"))
    (first.parent / "copy.yaml").write_text(first.read_text())
    assert main(["validate", str(tmp_path / "manifests")]) == 0
    assert main(_by_name_args(mnist_manifests)) == 0
    assert "warning" not in capsys.readouterr().err

from __future__ import annotations

import re

import pytest

from dlspec_ray.spec.yaml_lines import LineDict, LineList, parse_yaml

TEXT = """\
# a comment
name: x
nested:
  inner: 1
items:
  - a
  -
    b
code: |
  first line
  second line
folded: >-
  one
  two
flow: {a: 1, b: [2, 3]}
"""


def test_lines_of_keys_values_and_items() -> None:
    data, problems = parse_yaml(TEXT, "t.yaml")
    assert problems == []
    assert isinstance(data, LineDict)
    assert data.key_lines["name"] == 2
    assert data.value_lines["name"] == 2
    assert data.key_lines["nested"] == 3
    assert data.value_lines["nested"] == 4
    assert data["nested"].value_lines["inner"] == 4
    assert isinstance(data["items"], LineList)
    assert data["items"].item_lines == [6, 8]
    assert data["flow"]["b"].item_lines == [15, 15]


def test_block_scalars_record_the_line_of_their_first_content_line() -> None:
    data, _ = parse_yaml(TEXT, "t.yaml")
    assert data["code"] == "first line\nsecond line\n"
    assert data.key_lines["code"] == 9
    assert data.value_lines["code"] == 10
    assert TEXT.splitlines()[data.value_lines["code"] - 1].strip() == "first line"
    assert data.value_lines["folded"] == 13


def test_duplicate_keys_are_recorded_with_both_lines() -> None:
    data, _ = parse_yaml("a: 1\nb: 2\na: 3\n", "t.yaml")
    assert data["a"] == 3
    assert data.duplicates == [("a", 3, 1)]


def test_data_is_plain_dicts_and_lists_with_safe_tags_only() -> None:
    data, _ = parse_yaml("a: [1, 2.5, true, null, '3']\n", "t.yaml")
    assert data == {"a": [1, 2.5, True, None, "3"]}
    _, problems = parse_yaml("a: !!python/object:os.system ls\n", "t.yaml")
    assert len(problems) == 1
    assert "could not determine a constructor" in problems[0].message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, r"invalid YAML: .*expected ',' or ']'"),
        ("a: 1\n  b: 2\n", 2, r"invalid YAML: mapping values are not allowed here"),
        ("a: 1\n\tb: 2\n", 2, r"invalid YAML: .*found character '\\t'"),
        ("a: 'open\n", 2, r"invalid YAML: .*quoted scalar"),
        ("a: 1\n---\nb: 2\n", 2, r"invalid YAML: .*expected a single document"),
        ("a: 1\nb: \x07\n", 2, r"invalid YAML: .*special characters are not allowed"),
    ],
    ids=["unclosed-flow", "bad-indent", "tab", "unclosed-quote", "two-documents", "control-char"],
)
def test_invalid_yaml_is_one_problem_at_the_error_line(text: str, line: int, message: str) -> None:
    data, problems = parse_yaml(text, "bad.yaml")
    assert data is None
    assert len(problems) == 1
    assert problems[0].file == "bad.yaml"
    assert problems[0].line == line
    assert problems[0].message == problems[0].message.strip()
    assert re.search(message, problems[0].message), problems[0].message

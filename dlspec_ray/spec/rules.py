"""The validation mechanism: small rules composed into one table per manifest kind.

A rule checks one YAML value and converts it to what the typed manifest holds.
On bad input it records a Problem and returns ``INVALID`` instead of raising, so
one pass over a file reports every problem in it. The same rules also describe
themselves as JSON Schema, which keeps the shipped schemas and the validator
from drifting apart.
"""

from __future__ import annotations

__all__ = [
    "INVALID",
    "Boolean",
    "Checker",
    "Choice",
    "Const",
    "Field",
    "FreeMapping",
    "Integer",
    "ListOf",
    "MapOf",
    "Node",
    "Number",
    "OneOrList",
    "Record",
    "Rule",
    "Text",
    "construct",
    "describe",
    "suggest",
]

import datetime
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlspec_ray.errors import Problem


class _Invalid:
    """Marks a value that failed its check; the problem is already recorded."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
_MISSING: Any = object()


@dataclass
class Checker:
    """What rules need to know about the file they check, and the problems found so far."""

    file: str
    base_dir: Path
    path: Path | None = None
    problems: list[Problem] = field(default_factory=list)

    def report(self, node: Node, message: str, *, at: str = "", line: int | None = None) -> Any:
        """Record a problem with ``node`` (or its child field ``at``); returns INVALID."""
        where = node.join(at) if at else node.path
        self.problems.append(Problem(self.file, where, message, line or node.line))
        return INVALID


@dataclass(frozen=True)
class Node:
    """A value from the YAML file, with its field path and line."""

    value: Any
    path: str = ""
    line: int | None = None
    key: str = ""

    def join(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def entry(self, key: Any) -> Node:
        lines = getattr(self.value, "value_lines", {})
        return Node(self.value[key], self.join(str(key)), lines.get(key, self.line), str(key))

    def item(self, index: int) -> Node:
        lines = getattr(self.value, "item_lines", ())
        line = lines[index] if index < len(lines) else self.line
        return Node(self.value[index], f"{self.path}[{index}]", line, self.key)

    def key_line(self, key: Any) -> int | None:
        return getattr(self.value, "key_lines", {}).get(key, self.line)


def describe(value: Any) -> str:
    """A value as a message shows it: ``'abc' (str)``, ``1.0 (float)``."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        kind = "mapping"
    elif isinstance(value, list):
        kind = "list"
    elif isinstance(value, datetime.date):
        kind = "date"
    else:
        kind = type(value).__name__
    text = repr(value) if not isinstance(value, datetime.date) else str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


def suggest(word: Any, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest options, or an empty string."""
    matches = difflib.get_close_matches(str(word), list(options), n=3, cutoff=0.6)
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    if len(quoted) > 1:
        return f"; did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"
    return f"; did you mean {quoted[0]}?"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, datetime.date))


class Rule:
    """Checks and converts one value; describes itself as JSON Schema."""

    def check(self, checker: Checker, node: Node) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


class Text(Rule):
    """A string, optionally converted (and so validated) by ``convert``.

    ``convert`` raises ValueError with the whole message when the string is bad.
    A number or date where a string belongs is almost always YAML's reading of
    an unquoted value, so the message says to quote it.
    """

    def __init__(
        self,
        what: str = "a string",
        convert: Callable[[str], Any] | None = None,
        schema: dict[str, Any] | None = None,
        non_empty: bool = False,
    ):
        self.what = what
        self.convert = convert
        self.extra = schema or {}
        self.non_empty = non_empty

    def check(self, checker: Checker, node: Node) -> Any:
        value = node.value
        if not isinstance(value, str):
            hint = " (quote it)" if _is_scalar(value) else ""
            return checker.report(node, f"expected {self.what}{hint}, got {describe(value)}")
        if self.non_empty and not value.strip():
            return checker.report(node, f"expected {self.what}, got an empty string")
        if self.convert is None:
            return value
        try:
            return self.convert(value)
        except ValueError as error:
            return checker.report(node, str(error))

    def schema(self) -> dict[str, Any]:
        base: dict[str, Any] = {"type": "string"}
        if self.non_empty:
            base["minLength"] = 1
        return {**base, **self.extra}


class Integer(Rule):
    def __init__(self, minimum: int | None = None):
        self.minimum = minimum

    def check(self, checker: Checker, node: Node) -> Any:
        value = node.value
        what = "an integer" if self.minimum is None else f"an integer >= {self.minimum}"
        if not isinstance(value, int) or isinstance(value, bool):
            return checker.report(node, f"expected {what}, got {describe(value)}")
        if self.minimum is not None and value < self.minimum:
            return checker.report(node, f"expected {what}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        return schema


class Number(Rule):
    """An int or float in ``[minimum, maximum]``; ``positive`` excludes 0."""

    def __init__(
        self, minimum: float | None = None, maximum: float | None = None, positive: bool = False
    ):
        self.minimum = minimum
        self.maximum = maximum
        self.positive = positive

    def _what(self) -> str:
        if self.positive:
            return "a number > 0"
        if self.minimum is not None and self.maximum is not None:
            return f"a number in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"a number >= {self.minimum:g}"
        return "a number"

    def check(self, checker: Checker, node: Node) -> Any:
        value = node.value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return checker.report(node, f"expected {self._what()}, got {describe(value)}")
        if (
            (self.positive and value <= 0)
            or (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or value != value  # NaN
        ):
            return checker.report(node, f"expected {self._what()}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "number"}
        if self.positive:
            schema["exclusiveMinimum"] = 0
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


class Boolean(Rule):
    def check(self, checker: Checker, node: Node) -> Any:
        if not isinstance(node.value, bool):
            return checker.report(node, f"expected true or false, got {describe(node.value)}")
        return node.value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Choice(Rule):
    def __init__(self, options: Sequence[str]):
        self.options = tuple(options)

    def check(self, checker: Checker, node: Node) -> Any:
        if node.value in self.options:
            return node.value
        expected = ", ".join(self.options)
        return checker.report(
            node,
            f"expected one of {expected}, got {describe(node.value)}"
            + suggest(node.value, self.options),
        )

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.options)}


class Const(Rule):
    def __init__(self, value: str):
        self.value = value

    def check(self, checker: Checker, node: Node) -> Any:
        if node.value != self.value:
            return checker.report(node, f"expected {self.value!r}, got {describe(node.value)}")
        return node.value

    def schema(self) -> dict[str, Any]:
        return {"const": self.value}


class ListOf(Rule):
    """A list of ``item``; with ``unique``, that attribute of the items must not repeat."""

    def __init__(
        self, item: Rule, what: str, min_items: int = 0, unique: str = "", unique_what: str = ""
    ):
        self.item = item
        self.what = what
        self.min_items = min_items
        self.unique = unique
        self.unique_what = unique_what or unique

    def check(self, checker: Checker, node: Node) -> Any:
        if not isinstance(node.value, list):
            return checker.report(node, f"expected {self.what}, got {describe(node.value)}")
        if len(node.value) < self.min_items:
            plural = "s" if self.min_items > 1 else ""
            got = len(node.value) or "an empty list"
            return checker.report(
                node, f"expected at least {self.min_items} item{plural}, got {got}"
            )
        items = [self.item.check(checker, node.item(i)) for i in range(len(node.value))]
        if self.unique:
            self._check_unique(checker, node, items)
        return INVALID if any(i is INVALID for i in items) else tuple(items)

    def _check_unique(self, checker: Checker, node: Node, items: list[Any]) -> None:
        first: dict[Any, int] = {}
        for index, item in enumerate(items):
            if item is INVALID:
                continue
            value = getattr(item, self.unique)
            if value in first:
                checker.report(
                    node.item(index),
                    f"duplicate {self.unique_what} {value!r}; "
                    f"{node.path}[{first[value]}] has it already",
                    at=self.unique,
                )
            else:
                first[value] = index

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            schema["minItems"] = self.min_items
        return schema


class OneOrList(Rule):
    """One value or a non-empty list of them; always converted to a tuple."""

    def __init__(self, item: Rule, what: str):
        self.item = item
        self.what = what

    def check(self, checker: Checker, node: Node) -> Any:
        if isinstance(node.value, list):
            return ListOf(self.item, self.what, min_items=1).check(checker, node)
        value = self.item.check(checker, node)
        return INVALID if value is INVALID else (value,)

    def schema(self) -> dict[str, Any]:
        item = self.item.schema()
        return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


class MapOf(Rule):
    """A mapping from string keys (checked by ``key``) to values checked by ``value``."""

    def __init__(self, value: Rule, what: str, key: Text | None = None):
        self.value = value
        self.what = what
        self.key = key or Text("a string key")

    def check(self, checker: Checker, node: Node) -> Any:
        if not isinstance(node.value, dict):
            return checker.report(node, f"expected {self.what}, got {describe(node.value)}")
        _report_duplicates(checker, node)
        result: dict[str, Any] = {}
        for key in node.value:
            key_node = Node(key, node.join(str(key)), node.key_line(key))
            checked_key = self.key.check(checker, key_node)
            checked = self.value.check(checker, node.entry(key))
            if checked_key is not INVALID and checked is not INVALID:
                result[checked_key] = checked
        return result if len(result) == len(node.value) else INVALID

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value.schema()}
        key_schema = {k: v for k, v in self.key.schema().items() if k != "type"}
        if key_schema:
            schema["propertyNames"] = key_schema
        return schema


class FreeMapping(Rule):
    """Any mapping with string keys, returned as plain dicts and lists."""

    def __init__(self, what: str):
        self.what = what

    def check(self, checker: Checker, node: Node) -> Any:
        if not isinstance(node.value, dict):
            return checker.report(node, f"expected {self.what}, got {describe(node.value)}")
        _report_duplicates(checker, node)
        bad = [key for key in node.value if not isinstance(key, str)]
        for key in bad:
            checker.report(
                node,
                f"expected string keys, got {describe(key)} (quote it)",
                at=str(key),
                line=node.key_line(key),
            )
        return INVALID if bad else _plain(node.value)

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}


def _plain(value: Any) -> Any:
    """YAML data without line bookkeeping, so manifests pickle and compare as plain data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its rule, whether it is required, and its attribute name.

    An absent optional key (or a ``null`` one when ``nullable``) is left out of
    the converted values, so the typed manifest's own default applies, unless
    ``default`` is given.
    """

    name: str
    rule: Rule
    required: bool = False
    nullable: bool = False
    doc: str = ""
    attr: str = ""
    default: Any = _MISSING

    @property
    def attribute(self) -> str:
        return self.attr or self.name


Build = Callable[[Checker, Node, dict[str, Any]], Any]


class Record(Rule):
    """A mapping with a fixed set of keys.

    Unknown keys are rejected with the nearest valid name (unless
    ``allow_unknown``), and
    every field is checked even after one failed. ``build`` turns the converted
    values (keyed by attribute name) into the result; it may report more
    problems (cross-field rules) and return INVALID.
    """

    def __init__(
        self,
        fields: Sequence[Field],
        what: str = "a mapping",
        build: Build | None = None,
        allow_unknown: bool = False,
    ):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        self.what = what
        self.build = build
        self.allow_unknown = allow_unknown

    def check(self, checker: Checker, node: Node) -> Any:
        mapping = node.value
        if not isinstance(mapping, dict):
            return checker.report(node, f"expected {self.what}, got {describe(mapping)}")
        _report_duplicates(checker, node)
        ok = True
        if not self.allow_unknown:
            for key in mapping:
                if key not in self.by_name:
                    ok = False
                    checker.report(
                        node,
                        f"unknown key {key!r}" + (suggest(key, self.by_name) or self._expected()),
                        at=str(key),
                        line=node.key_line(key),
                    )
        values: dict[str, Any] = {}
        for spec in self.fields:
            if spec.name not in mapping:
                if spec.required:
                    ok = False
                    checker.report(node, f"missing required key {spec.name!r}", at=spec.name)
                elif spec.default is not _MISSING:
                    values[spec.attribute] = spec.default
                continue
            child = node.entry(spec.name)
            if child.value is None and spec.nullable:
                if spec.default is not _MISSING:
                    values[spec.attribute] = spec.default
                continue
            value = spec.rule.check(checker, child)
            ok = ok and value is not INVALID
            values[spec.attribute] = value
        if not ok:
            return INVALID
        return self.build(checker, node, values) if self.build else values

    def _expected(self) -> str:
        return f"; expected one of: {', '.join(self.by_name)}"

    def schema(self) -> dict[str, Any]:
        properties = {}
        for spec in self.fields:
            prop = spec.rule.schema()
            if spec.nullable:
                prop = _or_null(prop)
            properties[spec.name] = {"description": spec.doc, **prop} if spec.doc else prop
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        required = [f.name for f in self.fields if f.required]
        if required:
            schema["required"] = required
        if not self.allow_unknown:
            schema["additionalProperties"] = False
        return schema


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if list(schema) == ["anyOf"]:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def _report_duplicates(checker: Checker, node: Node) -> None:
    for key, line, first_line in getattr(node.value, "duplicates", ()):
        checker.report(
            node,
            f"duplicate key {key!r} (first at line {first_line}); YAML would keep only the last",
            at=str(key),
            line=line,
        )


def construct(cls: Callable[..., Any]) -> Build:
    """A ``build`` that passes the values to ``cls`` as keyword arguments."""
    return lambda _checker, _node, values: cls(**values)

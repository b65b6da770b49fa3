"""YAML loading that remembers where every key and value sits in the file.

Validation reports ``file:line``, and embedded stage code must compile with the
line numbers of the YAML file, so the loader keeps the line of each mapping key,
each mapping value and each list item next to the plain data.
"""

from __future__ import annotations

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "LimitExceeded",
    "LineDict",
    "LineList",
    "LineLoader",
    "compose_yaml",
    "parse_yaml",
]

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode

from dlspec_ray.errors import Problem

# Deeper nesting than this is refused while composing, long before Python's
# recursion limit (about 300 levels for PyYAML's recursive composer).
MAX_DEPTH = 64
# An alias stands for its anchor's whole subtree; the nodes all aliases of one
# document stand for together are capped, so `&a [*b, *b, ...]` bombs cannot
# make later passes walk billions of items.
MAX_ALIAS_NODES = 10_000


class LineDict(dict):
    """A mapping from YAML, with 1-based lines of its keys and values.

    ``duplicates`` lists ``(key, line, first_line)`` for keys written twice:
    YAML keeps the last value silently, validation should not.
    """

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []


class LineList(list):
    """A list from YAML, with the 1-based line of each item."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


def value_line(node: Node) -> int:
    """The line where a node's content starts.

    A block scalar (``|`` or ``>``) starts on the line after its indicator, which
    is where the first line of embedded code really is.
    """
    line = node.start_mark.line + 1
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


class LimitExceeded(yaml.MarkedYAMLError):
    """A document nests too deeply or expands too many aliases; ``problem`` says how to fix it."""


class LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings and sequences are LineDict and LineList.

    Composing is bounded: nesting deeper than MAX_DEPTH, an alias of an anchor
    that contains it, and aliases standing for more than MAX_ALIAS_NODES nodes
    in all raise LimitExceeded at the offending line.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: list[str | None] = []
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            return self._compose_alias(event)
        if isinstance(event, CollectionStartEvent):
            if self._depth >= MAX_DEPTH:
                raise LimitExceeded(
                    problem=f"nested more than {MAX_DEPTH} levels deep; "
                    "flatten the structure (manifests need only a few levels)",
                    problem_mark=event.start_mark,
                )
            self._depth += 1
            self._open_anchors.append(event.anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
                self._open_anchors.pop()
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as error:
            # A scalar the resolver accepted but Python cannot build, such as the
            # timestamp 2024-13-01 or an integer of more than 4300 digits.
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read this {node.tag.rsplit(':', 1)[-1]}: {error}; "
                "quote it to keep it as text",
                problem_mark=node.start_mark,
            ) from None

    def _compose_alias(self, event: AliasEvent) -> Node:
        if event.anchor in self._open_anchors:
            raise LimitExceeded(
                problem=f"the alias *{event.anchor} is inside its own anchor &{event.anchor}, "
                "which would make an endless structure; write the value out instead",
                problem_mark=event.start_mark,
            )
        node = super().compose_node(None, None)  # the anchored node, or "undefined alias"
        self._alias_nodes += self._size(node)
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise LimitExceeded(
                problem=f"aliases (*{event.anchor} and others) expand to more than "
                f"{MAX_ALIAS_NODES} values; write the values out, or use fewer aliases",
                problem_mark=event.start_mark,
            )
        return node

    def _size(self, node: Node) -> int:
        """How many nodes ``node`` stands for once every alias inside it is expanded."""
        key = id(node)
        if key not in self._sizes:
            if not isinstance(node, CollectionNode):
                size = 1
            elif isinstance(node, MappingNode):
                size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            else:
                size = 1 + sum(self._size(item) for item in node.value)
            self._sizes[key] = min(size, MAX_ALIAS_NODES + 1)
        return self._sizes[key]

    def construct_line_dict(self, node: MappingNode):
        data = LineDict(node.start_mark.line + 1)
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=False)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                ) from None
            key_line = key_node.start_mark.line + 1
            if key in data:
                data.duplicates.append((key, key_line, data.key_lines[key]))
            data[key] = self.construct_object(value_node, deep=False)
            data.key_lines[key] = key_line
            data.value_lines[key] = value_line(value_node)

    def construct_line_list(self, node: SequenceNode):
        data = LineList(node.start_mark.line + 1)
        yield data
        for item in node.value:
            data.append(self.construct_object(item, deep=False))
            data.item_lines.append(value_line(item))


LineLoader.add_constructor("tag:yaml.org,2002:map", LineLoader.construct_line_dict)
LineLoader.add_constructor("tag:yaml.org,2002:seq", LineLoader.construct_line_list)


def parse_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """The document in ``text``, or None and the problem that stopped the parser."""
    return _bounded(yaml.load, text, file)


def compose_yaml(text: str, file: str) -> tuple[Node | None, list[Problem]]:
    """The node graph of ``text`` (no Python values built), under the same limits."""
    return _bounded(yaml.compose, text, file)


def _bounded(how, text: str, file: str) -> tuple[Any, list[Problem]]:
    try:
        return how(text, Loader=LineLoader), []
    except LimitExceeded as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        return None, [Problem(file, "", f"refused: {error.problem}", line)]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = "; ".join(part for part in (error.context, error.problem) if part)
        line = mark.line + 1 if mark else None
        return None, [Problem(file, "", f"invalid YAML: {what}", line)]
    except yaml.YAMLError as error:
        position = getattr(error, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        return None, [Problem(file, "", f"invalid YAML: {error}", line)]

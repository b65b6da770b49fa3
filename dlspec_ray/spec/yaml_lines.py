"""YAML loading that remembers where every key and value sits in the file.

Validation reports ``file:line``, and embedded stage code must compile with the
line numbers of the YAML file, so the loader keeps the line of each mapping key,
each mapping value and each list item next to the plain data.
"""

from __future__ import annotations

__all__ = ["LineDict", "LineList", "LineLoader", "parse_yaml"]

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dlspec_ray.errors import Problem


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


class LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings and sequences are LineDict and LineList."""

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
    try:
        return yaml.load(text, Loader=LineLoader), []
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = "; ".join(part for part in (error.context, error.problem) if part)
        line = mark.line + 1 if mark else None
        return None, [Problem(file, "", f"invalid YAML: {what}", line)]
    except yaml.YAMLError as error:
        position = getattr(error, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        return None, [Problem(file, "", f"invalid YAML: {error}", line)]

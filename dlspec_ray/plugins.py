"""The one plugin mechanism: a named registry, filled by the project and by entry points.

Environments, frameworks and metrics are all looked up by name from a manifest
or a flag, so they share one registry type whose unknown-name error lists what
exists and suggests the nearest match. Third-party packages add entries through
the entry-point group ``dlspec_ray.<registry name>`` without touching this code.
"""

from __future__ import annotations

__all__ = ["Registry"]

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from dlspec_ray.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to plugins; entry points are read lazily, on first lookup."""

    def __init__(self, name: str, what: str):
        self.name = name
        self.what = what
        self._entries: dict[str, T] = {}
        self._loaded_entry_points = False

    @property
    def entry_point_group(self) -> str:
        return f"dlspec_ray.{self.name}"

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            raise UsageError(self._unknown(name)) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _unknown(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"unknown {self.what} {name!r}; known: {', '.join(known) or 'none'}.{hint} "
            f"Plugins add more through the entry-point group {self.entry_point_group!r}."
        )

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.load()

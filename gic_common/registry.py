"""Things by name, in one style: spaces, models, data layouts, samplers and pruners are each a
Registry. The CLI takes its choices from them, and an unknown name is one line listing the known
ones, so a new entry needs no second list anywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from gic_common.errors import UserError

__all__ = ["Registry", "either"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping from name to entry (a module, a builder, a factory), in the order the
    entries were added. ``error`` is raised for an unknown name (a UserError by default: the name
    came from a flag or a preset), worded ``unknown KIND 'x'; KNOWN: a, b``."""

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None, error: type[Exception] = UserError,
                 known: str | None = None, sort_names: bool = False):
        self.kind, self.error = kind, error
        self.known = known or f"known {kind}s"
        self.sort_names = sort_names  # list the known names sorted in the error (registration order varies)
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.add(name, entry)

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            owner = getattr(self._entries[name], "__module__", None)
            raise ValueError(f"{self.kind} {name!r} is already registered{f' (by {owner})' if owner else ''}")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that adds the decorated object under ``name``."""
        return lambda entry: self.add(name, entry)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries) if self.sort_names else list(self._entries)
            raise self.error(f"unknown {self.kind} {name!r}; {self.known}: {', '.join(names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def either(names) -> str:
    """``a, b or c``: names as a help text lists them."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

"""Blinker signals that call their receivers in the order they were connected.

Blinker keeps a signal's receivers in sets, so plain `send` calls them in an order that can
change from one process to the next. Erasure and bounce handling promise a stable order
(the composition root connects the receivers once, in a fixed order), so their signals are
`OrderedSignal`s: the same receivers, called in the order of their first `connect`.
Connecting a receiver again changes nothing: it is still called once, in its first place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

from blinker import NamedSignal


class _InsertionOrderedSet(MutableSet[Any]):
    """The set blinker keeps receiver and sender ids in, iterated in insertion order."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: dict[Any, None] = dict.fromkeys(items)

    @classmethod
    def _from_iterable(cls, items: Iterable[Any]) -> _InsertionOrderedSet:
        return cls(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: Any) -> None:
        """Add `value` at the end (a value already present keeps its place)."""
        self._items.setdefault(value, None)

    def discard(self, value: Any) -> None:
        """Remove `value` if present."""
        self._items.pop(value, None)

    def copy(self) -> _InsertionOrderedSet:
        """A shallow copy in the same order."""
        return _InsertionOrderedSet(self._items)


class OrderedSignal(NamedSignal):
    """A named signal whose receivers are called in the order they were first connected."""

    # Blinker documents `set_class` as the way to order receivers; its annotation says
    # `type[set]`, which an ordered set (a MutableSet, not a set subclass) cannot be.
    set_class = _InsertionOrderedSet  # type: ignore[assignment]

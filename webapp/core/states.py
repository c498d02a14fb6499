"""One style for every status: an enum, one table of the moves it allows, one function that
moves a record.

A feature writes its table once, as `StateMachine(name, {state: {next states}})`, and changes
a loaded row's status only through `move`. Workers that change many rows with one
conditional UPDATE take the WHERE from the same table (`sources`), so the SQL and the
Python cannot disagree about which moves exist.

Two kinds of moving function use a table. One that acts on a request (staff, a reader's
link, a worker) raises the feature's `IllegalMove` for a move the table lacks. One that
applies outside events in whatever order they arrive (Stripe's, for donations and plans)
asks `allows` (or `supersedes`, where the events' times decide between peers) and ignores
such a move, returning False: a late "failed" after "paid" is not an error, it is history
already superseded.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=enum.Enum)


class IllegalMove(ValueError):
    """A status change the feature's table does not allow."""


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """The allowed moves between the states of one kind of record."""

    #: What the records are, for messages ("outbox message", "issue").
    name: str
    #: Every state with the states it may move to. A state that may "move" to itself (a
    #: retry that stays pending) lists itself; one that ends lists nothing.
    moves: Mapping[S, Iterable[S]]
    #: The exception `move` raises; a feature may name its own (a subclass of IllegalMove).
    error: type[IllegalMove] = IllegalMove
    _table: dict[S, frozenset[S]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {state: frozenset(targets) for state, targets in self.moves.items()}
        states = set(table)
        enum_class = type(next(iter(states)))
        missing = set(enum_class) - states
        if missing:
            # Every state must say where it may go, ending states included: a state added
            # to the enum later cannot silently allow nothing, or everything.
            raise ValueError(f"{self.name}: no moves written for {sorted(s.name for s in missing)}")
        strays = {t for targets in table.values() for t in targets} - states
        if strays:
            raise ValueError(f"{self.name}: moves to unknown states {strays}")
        object.__setattr__(self, "_table", table)

    def allows(self, current: S, target: S) -> bool:
        """Whether a record in `current` may move to `target`."""
        return target in self._table[current]

    def both_ways(self, one: S, other: S) -> bool:
        """Whether the table allows `one` -> `other` and back (a state and itself count).

        Order-independent books decide between such peers by the events' times
        (`supersedes`); a move written one way only is forward and needs no tie-break."""
        return one == other or (self.allows(one, other) and self.allows(other, one))

    def supersedes(
        self,
        current: S,
        current_at: datetime | None,
        target: S,
        target_at: datetime,
        *,
        precedence: Callable[[S], int],
    ) -> bool:
        """Whether an outside event's `target` (produced at `target_at`) replaces `current`
        (applied from an event at `current_at`, None when unknown), so that applying the
        same events in any order ends on the same state.

        A move the table lacks never does (out of an end, or backwards). A move written one
        way only is forward and always does, whatever the times. Between peers (`both_ways`,
        a state and itself included) the newer event does, then the higher `precedence`
        for two produced in the same second; with no time known, it does."""
        if current != target and not self.allows(current, target):
            return False
        if current_at is None or not self.both_ways(current, target):
            return True
        return (target_at, precedence(target)) > (current_at, precedence(current))

    def check(
        self, current: S, target: S, ident: Any = None, *, only_from: Iterable[S] | None = None
    ) -> None:
        """Raise `error` unless `current` -> `target` is allowed (and `current` is one of
        `only_from`, when given)."""
        if not self.allows(current, target) or (
            only_from is not None and current not in set(only_from)
        ):
            self.refuse(current, target, ident)

    def refuse(self, current: S, target: S, ident: Any = None) -> None:
        """Raise `error` for the move `current` -> `target` (the message says which)."""
        label = f"{self.name} {ident}" if ident is not None else self.name
        raise self.error(f"{label} is {current.value}, cannot become {target.value}")

    def move(
        self,
        record: Any,
        target: S,
        *,
        only_from: Iterable[S] | None = None,
        attribute: str = "status",
    ) -> None:
        """Set `record.<attribute>` to `target`, or raise `error` if the table forbids it.

        `only_from` narrows the table for one action: "resume" and "approve" both lead to
        sending, but resume only from paused."""
        current = type(target)(getattr(record, attribute))
        self.check(current, target, getattr(record, "id", None), only_from=only_from)
        setattr(record, attribute, target)

    def sources(self, target: S) -> frozenset[S]:
        """The states that may move to `target` (the WHERE of a conditional bulk UPDATE)."""
        return frozenset(state for state, targets in self._table.items() if target in targets)

    def ends(self) -> frozenset[S]:
        """The states nothing moves out of."""
        return frozenset(state for state, targets in self._table.items() if not targets)

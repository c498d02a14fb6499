"""The clock behind a protocol, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from flask import Flask, current_app


class Clock(Protocol):
    """Something that tells the current time (aware, UTC)."""

    def now(self) -> datetime:
        """The current time in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The frozen time."""
        return self.current

    def advance(self, **kwargs: float) -> None:
        """Move the clock forward by a `timedelta(**kwargs)`."""
        self.current += timedelta(**kwargs)


def init_app(app: Flask, clock: Clock | None = None) -> None:
    """Install the clock the app uses (the system clock unless one is given)."""
    app.extensions["clock"] = clock or SystemClock()


def get_clock(app: Flask | None = None) -> Clock:
    """The current app's clock."""
    clock: Clock = (app or current_app).extensions["clock"]
    return clock


def utcnow() -> datetime:
    """The current app's time; shorthand for views."""
    return get_clock().now()


def as_utc(value: datetime) -> datetime:
    """Attach UTC to naive datetimes read back from SQLite."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)

"""Leases: how a sending worker owns the rows it claimed. One mechanism for the transactional
outbox and the digest deliveries.

A leased table has `id`, `status`, `attempts`, `claimed_by` and `next_attempt_at`. A worker
run claims due pending rows by writing its random token into `claimed_by` and moving
`next_attempt_at` to the end of its lease; other runs claim only rows whose `next_attempt_at`
has passed, so a claimed row belongs to one run until its lease runs out.

Why a worker never sends a row it lost: before each message `Lease.holds` checks the row is
still its own and that enough of the lease is left for one message on the wire (the SMTP
timeout); when it is not, the run renews the leases of every row it still holds in one
conditional UPDATE (`WHERE claimed_by = <token>`) and drops the rows another run took over.
A slow relay or a low send rate therefore never lets a lease lapse under a running worker:
the renewal is the heartbeat, sized to the lease. Results are recorded with `finish`, also
conditional on the token, and `release` gives back only the run's own rows.

What can still go twice: a message whose send outlasts the whole lease (the server took
longer than the lease to answer) or whose worker died after the server's "250 OK" and before
the commit. Both are the message in flight; every other row is either committed as done or
still pending for someone to send.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, bindparam, select, text, update
from sqlalchemy.orm import Session

from webapp.db import Database

#: A claimed row belongs to its worker run this long unless renewed (SEND_LEASE_SECONDS).
DEFAULT_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class LeaseTerms:
    """How long a claim lasts and how much of it one message needs."""

    #: A claim (or its latest renewal) lasts this long.
    duration: timedelta = DEFAULT_LEASE
    #: The longest one message may take on the wire (the SMTP timeout): a row is renewed
    #: before it is sent unless at least this much of its lease is left.
    send_budget: timedelta = timedelta(seconds=30)

    @property
    def renew_when_left(self) -> timedelta:
        """Renew once no more than this is left: the send budget, and never later than half
        way through the lease (so a renewal that fails has time to be noticed)."""
        return max(self.send_budget, self.duration / 2)


def lease_terms(config: Mapping[str, Any]) -> LeaseTerms:
    """`LeaseTerms` from an app's configuration (`SEND_LEASE_SECONDS`, `SMTP_TIMEOUT`)."""
    return LeaseTerms(
        duration=timedelta(seconds=float(config.get("SEND_LEASE_SECONDS", 600))),
        send_budget=timedelta(seconds=float(config.get("SMTP_TIMEOUT", 30))),
    )


@dataclass
class Lease:
    """One worker run's claim on rows of one leased table (`OutboxMessage`, `DigestDelivery`)."""

    database: Database
    #: The mapped class of the leased table.
    model: Any
    #: The table's "waiting to be sent" status value.
    pending: Any
    terms: LeaseTerms
    now: Callable[[], datetime]
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    #: Rows this run holds, and until when (the same for all: claims and renewals are batch-wide).
    held: set[int] = field(default_factory=set)
    held_until: datetime | None = None
    #: Rows this run found taken over by another run (lease ran out before a renewal).
    lost: int = 0
    _statements: dict[frozenset[str], Any] = field(default_factory=dict)

    def claim(
        self, due: Sequence[ColumnElement[bool]], *, limit: int, order_by: Sequence[Any]
    ) -> list[int]:
        """Lease up to `limit` pending rows meeting `due` (besides pending and not leased)
        to this run; returns their ids in `order_by` order and adds them to `held`."""
        model = self.model
        now = self.now()
        conditions = (
            model.status == self.pending,
            model.next_attempt_at <= now,
            *due,
        )
        with self.database.session() as session:
            query = select(model.id).where(*conditions).order_by(*order_by).limit(limit)
            if self.database.is_postgres:
                # Rows another worker is claiming right now are passed over, not waited for.
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                session.rollback()
                return []
            until = now + self.terms.duration
            # The WHERE repeats the conditions: on SQLite (no row locks) a row another run
            # claimed in between is not claimed twice.
            session.execute(
                update(model)
                .where(model.id.in_(ids), *conditions)
                .values(claimed_by=self.token, next_attempt_at=until, attempts=model.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            claimed = list(
                session.scalars(
                    select(model.id)
                    .where(model.id.in_(ids), model.claimed_by == self.token)
                    .order_by(*order_by)
                )
            )
        self.held.update(claimed)
        self.held_until = until
        return claimed

    def holds(self, session: Session, row_id: int) -> bool:
        """True when this run may send `row_id` now: it still holds the row, with at least
        the send budget of its lease left (renewing the run's leases first when needed).
        Commits the session when it renews."""
        if row_id not in self.held:
            return False
        now = self.now()
        if self.held_until is None or self.held_until - now <= self.terms.renew_when_left:
            self.renew(session, now)
        return row_id in self.held

    def forget(self, row_id: int) -> None:
        """Note that a read found `row_id` no longer this run's (taken over, or erased)."""
        if row_id in self.held:
            self.held.discard(row_id)
            self.lost += 1

    def renew(self, session: Session, now: datetime) -> None:
        """Extend the lease of every row this run still holds; forget those it lost."""
        if not self.held:
            return
        model = self.model
        until = now + self.terms.duration
        mine = (model.id.in_(self.held), model.claimed_by == self.token)
        session.execute(
            update(model)
            .where(*mine, model.status == self.pending)
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        still = set(session.scalars(select(model.id).where(*mine, model.status == self.pending)))
        session.commit()
        self.lost += len(self.held - still)
        self.held = still
        self.held_until = until

    def finish(self, session: Session, row_id: int, values: Mapping[str, Any]) -> bool:
        """Record a result for a row this run holds (`values` are column values; the claim
        is cleared). False, and nothing written, when another run holds the row now. The
        caller commits."""
        self.held.discard(row_id)
        keys = frozenset(values)
        statement = self._statements.get(keys)
        if statement is None:
            # Built once per set of columns, as plain SQL with typed parameters: this runs once
            # per message, and a Core UPDATE costs more to compile-check than to run.
            table = self.model.__table__
            names = sorted(keys)
            assignments = ", ".join(f"{name} = :{name}" for name in names)
            statement = text(
                f"UPDATE {table.name} SET claimed_by = NULL, {assignments}"
                " WHERE id = :_row_id AND claimed_by = :_token"
            ).bindparams(
                *(bindparam(name, type_=table.c[name].type) for name in names),
                bindparam("_row_id", type_=Integer()),
                bindparam("_token", type_=String()),
            )
            self._statements[keys] = statement
        result = session.connection().execute(
            statement, {"_row_id": row_id, "_token": self.token, **values}
        )
        if result.rowcount == 1:
            return True
        self.lost += 1
        return False

    def release(self, session: Session, ids: Iterable[int], values: Mapping[str, Any]) -> int:
        """Give back rows of this run's (others' rows are never touched), setting `values`;
        returns how many. The caller commits."""
        ids = [row_id for row_id in ids if row_id in self.held]
        if not ids:
            return 0
        self.held.difference_update(ids)
        model = self.model
        result = session.execute(
            update(model)
            .where(model.id.in_(ids), model.claimed_by == self.token)
            .values(claimed_by=None, **values)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

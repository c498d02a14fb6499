"""The composition root's feature half: every feature's `init_app` is called here, and every
cross-feature reaction is a blinker signal connected here (nowhere else).

`register_features(app, csrf)` (called once by `create_app`) sets each feature up on `app`,
its gateways, blueprints, nav items and configuration going into `app` and
`app.extensions`; then `connect_signals()` wires the features to each other:

* `webapp.outbox.signals.permanent_failure` (a server refused an address for good) ->
  the subscriber with that address is suppressed;
* `webapp.subscribers.signals.erasing` (a person is erased) -> their donor record, then
  their digest deliveries, then the email events about them (a running regular gift blocks
  the erasure: `ErasureBlocked`);
* `webapp.subscribers.signals.loading_demo` / `loading_demo_history` (`readership demo`) ->
  the donations' and then the digest's demo data, and the large donation history.

Receiver scoping. The receivers are connected for any sender (blinker's `ANY`), once per
process in effect: they are the module-level functions below, and blinker keys a signal's
receivers by identity, so the `connect` that each further `create_app` in the process
repeats (tests build many apps) changes nothing: no receiver runs twice, and none runs in a
different order (the signals are `webapp.core.signals.OrderedSignal`s: connection order).
Scoping them to one app (`connect(receiver, sender=app)`, `send(current_app...)`) was the
alternative; it is not used because the senders are services that, like every service, take
a session and never reach for `current_app`, and the outbox delivers from jobs and tests with
no app context pushed: a per-app receiver would then silently not run (a 5xx with no
suppression). The receivers need no app either: everything they touch comes in the signal's
arguments (the session above all). Every process that has a database to work on built it
with `create_app`, so the receivers are connected before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session


def register_features(app: Flask, csrf: CSRFProtect) -> None:
    """Wire every feature package into `app` (the one place that knows them all), then
    connect the signals through which the features react to each other."""
    # Staff first: it owns the staff nav every other feature adds a section to.
    from webapp.staff.setup import init_app as init_staff

    init_staff(app, publication_name=_publication_name)

    # The publication: public start page, its staff settings page, `site` in templates.
    from webapp.site.setup import init_app as init_site

    init_site(app)

    # Email: the Mailer (renderer + sender), the staff mailbox viewer and outbox pages.
    from webapp.outbox.setup import init_app as init_outbox

    init_outbox(app)

    # The newsletter list: public signup/preferences pages, staff pages, CSV and demo CLI.
    from webapp.subscribers.setup import init_app as init_subscribers

    init_subscribers(app, csrf)

    # Donations: donation and campaign pages, Stripe Checkout and webhooks, self-service.
    from webapp.donations.setup import init_app as init_donations

    init_donations(app, csrf)

    # Articles: feed import (the digest and top reads build on them).
    from webapp.articles.setup import init_app as init_articles

    init_articles(app, csrf)

    # The weekly digest: issues, staff review, public archive, the sending engine.
    from webapp.digests.setup import init_app as init_digests

    init_digests(app)

    # Bounces and complaints that relays report by webhook (`/email-events/<provider>`).
    from webapp.email_events.setup import init_app as init_email_events

    init_email_events(app, csrf)

    # Supporter reports: the dashboard (the staff start page) and the reports behind it.
    from webapp.reports.setup import init_app as init_reports

    init_reports(app)

    connect_signals()


def connect_signals() -> None:
    """Connect every cross-feature receiver, in the order they are to run. Safe to call
    again (each `create_app` does): a receiver connected twice still runs once, in its
    first place."""
    from webapp.outbox.signals import permanent_failure
    from webapp.subscribers.signals import erasing, loading_demo, loading_demo_history

    permanent_failure.connect(_suppress_bounced_subscriber)
    erasing.connect(_erase_donor)
    erasing.connect(_erase_digest_deliveries)
    erasing.connect(_erase_email_events)
    loading_demo.connect(_load_demo_donations)
    loading_demo.connect(_load_demo_digest)
    loading_demo_history.connect(_load_demo_history)


def _publication_name(session: Session) -> str:
    """The site's publication name: staff shows it as the TOTP issuer."""
    from webapp.site.services import get_site_settings

    return str(get_site_settings(session).publication_name or "")


# --- Receivers: each adapts a signal's arguments to one feature's function ----------------


def _suppress_bounced_subscriber(
    _sender: Any, *, session: Session, address: str, reason: str
) -> None:
    from webapp.subscribers.services import suppress_on_permanent_failure

    suppress_on_permanent_failure(session, address, reason)


def _erase_donor(_sender: Any, *, session: Session, email: str, subscriber_id: int | None) -> None:
    from webapp.donations.erasure import erase_donor

    erase_donor(session, email, subscriber_id)


def _erase_digest_deliveries(
    _sender: Any, *, session: Session, email: str, subscriber_id: int | None
) -> None:
    from webapp.digests.setup import erase_deliveries

    erase_deliveries(session, email, subscriber_id)


def _erase_email_events(
    _sender: Any, *, session: Session, email: str, subscriber_id: int | None
) -> None:
    from webapp.email_events.setup import erase_email_events

    erase_email_events(session, email, subscriber_id)


def _load_demo_donations(_sender: Any, *, session: Session, now: datetime) -> str:
    from webapp.donations.demo import load_demo_donations

    added = load_demo_donations(session, now=now)
    return f"{added} donors with their gifts" if added else ""


def _load_demo_digest(_sender: Any, *, session: Session, now: datetime) -> str:
    from webapp.digests.demo import load_demo_digest

    return load_demo_digest(session, now=now)


def _load_demo_history(
    _sender: Any,
    *,
    session: Session,
    donors: int,
    donations: int,
    now: datetime,
    progress: Callable[[int], Any],
) -> str:
    from webapp.donations.history import generate_history

    return str(
        generate_history(session, donors=donors, donations=donations, now=now, progress=progress)
    )

"""The composition root: features react to each other only through the signals connected in
`webapp.features`, in a fixed order, once per process however many apps are built; each app
has its own staff nav; and the cross-feature reactions work in a fresh process that builds
one app and nothing else (a job process)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue, deliveries
from tests.donations.factories import make_donor, make_plan
from tests.helpers.smtp import SmtpSink
from tests.outbox.conftest import queue
from tests.subscribers.factories import event_kinds, get_subscriber, make_subscriber
from webapp import create_app, features
from webapp.core.clock import FrozenClock
from webapp.core.signals import OrderedSignal
from webapp.db import get_database
from webapp.donations.models import Donor
from webapp.outbox.signals import permanent_failure
from webapp.site.services import get_site_settings
from webapp.staff.nav import get_nav
from webapp.staff.setup import PUBLICATION_NAME_KEY
from webapp.subscribers.erasure import ErasureBlocked, erase_subscriber
from webapp.subscribers.models import Subscriber
from webapp.subscribers.signals import erasing, loading_demo, loading_demo_history

ROOT = Path(__file__).resolve().parents[1]

#: Every cross-feature receiver, in the order it runs.
EXPECTED_RECEIVERS = {
    "permanent_failure": [features._suppress_bounced_subscriber],
    "erasing": [
        features._erase_donor,
        features._erase_digest_deliveries,
        features._erase_email_events,
    ],
    "loading_demo": [features._load_demo_donations, features._load_demo_digest],
    "loading_demo_history": [features._load_demo_history],
}

# A process of its own: builds one app from the JSON config in argv[1], then runs one
# cross-feature action and prints the receivers it found connected.
CHILD = """
import json, sys
from datetime import datetime

from webapp import create_app
from webapp.core.clock import FrozenClock, get_clock
from webapp.outbox.signals import permanent_failure
from webapp.subscribers.signals import erasing

config = json.loads(sys.argv[1])
config["CLOCK"] = FrozenClock(datetime.fromisoformat(config.pop("NOW")))
app = create_app(config)
if sys.argv[2] == "send-email":
    from jobs.registry import run_job

    summary = run_job(app, "send-email")
else:
    from webapp.db import get_database
    from webapp.subscribers.erasure import erase_person

    with get_database(app).session() as session:
        summary = erase_person(session, sys.argv[3], staff=None, ip=None,
                               secret=app.config["SECRET_KEY"], now=get_clock(app).now())
        session.commit()
print(json.dumps({
    "summary": summary,
    "permanent_failure": [r.__name__ for r in permanent_failure.receivers_for(None)],
    "erasing": [r.__name__ for r in erasing.receivers_for(None)],
}))
"""


def run_child(app_config: dict[str, Any], clock: FrozenClock, *args: str) -> dict[str, Any]:
    config = {key: value for key, value in app_config.items() if key != "CLOCK"}
    config["NOW"] = clock.now().isoformat()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def receivers(signal: OrderedSignal) -> list[Any]:
    return list(signal.receivers_for(None))


def test_a_permanent_failure_in_a_fresh_process_suppresses_the_subscriber(
    app: Flask,
    app_config: dict[str, Any],
    db_session: Session,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    make_subscriber(db_session, email="gone@example.com")
    db_session.commit()
    queue(db_session, app, clock.now(), to="gone@example.com")
    smtp_sink.handler.reply_for["gone@example.com"] = "550 5.1.1 no such user"

    child = run_child(app_config, clock, "send-email")

    assert child["permanent_failure"] == ["_suppress_bounced_subscriber"]
    assert child["summary"].startswith("outbox: sent 0, retry later 0, failed 1;")
    subscriber = get_subscriber(db_session, "gone@example.com")
    assert subscriber is not None and subscriber.status == "bounced"
    assert subscriber.suppressed and subscriber.suppression_reason == "hard_bounce"


def test_an_erasure_in_a_fresh_process_reaches_donations_and_digests(
    app: Flask, app_config: dict[str, Any], db_session: Session, clock: FrozenClock
) -> None:
    issue_id, (reader, other) = approved_issue(app, db_session, clock, readers=2)
    email = reader.email
    donor = make_donor(db_session, email=email, name="Rita Reader")
    db_session.commit()
    assert set(deliveries(db_session, issue_id)) == {reader.id, other.id}

    child = run_child(app_config, clock, "erase", email)

    assert child["erasing"] == ["_erase_donor", "_erase_digest_deliveries", "_erase_email_events"]
    db_session.expire_all()
    erased_donor = db_session.get(Donor, donor.id)
    assert erased_donor is not None and erased_donor.email.endswith("@erased.invalid")
    assert erased_donor.name == ""
    assert set(deliveries(db_session, issue_id)) == {other.id}
    erased = db_session.get(Subscriber, reader.id)
    assert erased is not None and erased.erased_at is not None


def test_a_blocking_receiver_stops_the_erasure_with_nothing_changed(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    issue_id, (reader,) = approved_issue(app, db_session, clock, readers=1)
    email = reader.email
    donor = make_donor(db_session, email=email)
    make_plan(db_session, donor=donor)
    db_session.commit()

    with pytest.raises(ErasureBlocked):
        erase_subscriber(
            db_session,
            reader,
            staff=None,
            secret=app.config["SECRET_KEY"],
            now=clock.now(),
            ip=None,
        )
    db_session.rollback()

    assert db_session.get(Subscriber, reader.id).email == email  # type: ignore[union-attr]
    assert db_session.get(Donor, donor.id).email == email  # type: ignore[union-attr]
    assert set(deliveries(db_session, issue_id)) == {reader.id}


def test_more_apps_in_one_process_connect_each_receiver_once_in_order(
    app: Flask,
    app_config: dict[str, Any],
    db_session: Session,
) -> None:
    for _ in range(2):
        get_database(create_app(app_config)).engine.dispose()
    features.connect_signals()
    assert {
        "permanent_failure": receivers(permanent_failure),
        "erasing": receivers(erasing),
        "loading_demo": receivers(loading_demo),
        "loading_demo_history": receivers(loading_demo_history),
    } == EXPECTED_RECEIVERS

    # One bounce, one suppression event, however many apps were built.
    make_subscriber(db_session, email="twice@example.com")
    db_session.commit()
    from webapp.outbox.services import run_permanent_failure_hooks

    run_permanent_failure_hooks(db_session, "twice@example.com", "550 no such user")
    db_session.commit()
    subscriber = get_subscriber(db_session, "twice@example.com")
    assert subscriber is not None
    assert event_kinds(db_session, subscriber.id).count("bounced") == 1


def test_an_ordered_signal_calls_receivers_in_the_order_first_connected() -> None:
    signal = OrderedSignal("test.ordered")
    calls: list[int] = []
    made = []
    for number in (7, 3, 11, 0, 5, 2, 9, 1, 8, 4, 10, 6):

        def receiver(_sender: object, number: int = number) -> int:
            calls.append(number)
            return number

        made.append(receiver)
        signal.connect(receiver)
    signal.connect(made[0])  # again: still once, still first
    assert [value for _, value in signal.send(None)] == [7, 3, 11, 0, 5, 2, 9, 1, 8, 4, 10, 6]
    assert calls == [7, 3, 11, 0, 5, 2, 9, 1, 8, 4, 10, 6]
    signal.disconnect(made[1])
    assert [value for _, value in signal.send(None)] == [7, 11, 0, 5, 2, 9, 1, 8, 4, 10, 6]


def test_each_app_has_its_own_staff_nav(app: Flask, app_config: dict[str, Any]) -> None:
    other = create_app(app_config)
    get_database(other).engine.dispose()
    assert get_nav(app) is not get_nav(other)
    endpoints = [item.endpoint for item in get_nav(app).items()]
    assert endpoints == [item.endpoint for item in get_nav(other).items()]
    assert endpoints == [
        "staff.dashboard",
        "reports.dashboard",
        "donations_staff.index",
        "subscribers_staff.index",
        "digests_staff.index",
        "articles_staff.index",
        "outbox.mailbox",
        "staff_users.index",
        "staff_audit.index",
        "staff_settings.edit",
    ]


def test_staff_names_the_publication_through_the_lookup_it_was_given(
    app: Flask, db_session: Session
) -> None:
    get_site_settings(db_session).publication_name = "The Test Review"
    db_session.commit()
    assert app.extensions[PUBLICATION_NAME_KEY](db_session) == "The Test Review"


def test_staff_imports_nothing_from_site() -> None:
    for path in sorted((ROOT / "webapp" / "staff").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "webapp.site" or n.startswith("webapp.site.") for n in names), path

"""Every role against every staff page and action, on realistic data, HTML included.

`tests/test_staff_access.py` proves each `/staff` rule refuses roles without its permission.
This walks the rules a role *may* open, with real ids (every donor, subscriber, mailbox
message, report...), and checks what the answers contain: no page shows a person, or a
personal sign-in link, that the role's rights do not cover. What a role may not download it
may not see either.

The world: a donor with a plan who asked for a self-service link on the public page (the
email sits in the local mailbox), a lapsed donor, a donor who also subscribes, subscribers
with confirm and preferences links in the mailbox, a test email from an admin, a digest
issue, a feed, a Stripe event, audit entries.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from emails.mailbox import LocalMailbox
from tests.digests.factories import approved_issue
from tests.donations.factories import make_donation, make_donor, make_plan
from tests.helpers.html import csrf_token
from tests.outbox.conftest import queue
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import make_subscriber, sign_up
from tests.test_staff_access import _ARG, protected
from webapp.articles.models import Article, Feed
from webapp.core.clock import FrozenClock
from webapp.core.limits import limiter
from webapp.db import get_database
from webapp.digests.models import DigestIssue
from webapp.donations.models import Campaign, Donation, Donor, PlanStatus, StripeEvent
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import OutboxMessage
from webapp.outbox.services import deliver_pending
from webapp.reports.tables import REPORTS
from webapp.staff.models import StaffUser
from webapp.staff.roles import Permission, Role, role_allows
from webapp.subscribers.models import ImportJob, Subscriber

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

#: People only the donations right may see (they are not subscribers).
DONOR = ("Dorotea Quixley", "dorotea.quixley@donors.example")
LAPSED = ("Lazlo Vantreck", "lazlo.vantreck@donors.example")
#: A donor who also subscribes: a subscriber to those who see subscribers.
BOTH = ("Bartholomew Ossine", "bart.ossine@both.example")
#: People the subscribers right shows.
SUBSCRIBER = ("Samwise Ovelgrund", "samwise.ovelgrund@readers.example")
PENDING = ("Pria Nendell", "pria.nendell@readers.example")

#: The signed tokens of emailed links, by kind ("donor" or "subscriber").
_LINK = re.compile(
    r"/(?:en|ru)/(?P<path>donate/manage|subscribe/confirm|subscription|unsubscribe)/"
    r"(?P<token>[A-Za-z0-9_.-]{20,})"
)


@dataclass
class World:
    """What the walker must not see, and the ids of everything a page may be about."""

    donor_tokens: set[str] = field(default_factory=set)
    subscriber_tokens: set[str] = field(default_factory=set)
    ids: dict[str, list[str]] = field(default_factory=dict)
    hidden_outbox_id: int = 0


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # The no-SMTP mode: every email lands in the local mailbox.
    return {**app_config, "SMTP_URL": None}


@pytest.fixture(autouse=True)
def _no_rate_limits(app: Flask) -> Iterator[None]:
    limiter.enabled = False
    yield
    limiter.enabled = True


def _tokens_in_mailbox(app: Flask, world: World) -> None:
    box = LocalMailbox(app.config["MAILBOX_DIR"])
    for key in box.keys_newest_first():
        message = box.get(key)
        for text in (message.text or "", message.html or "", message.raw_text):
            for match in _LINK.finditer(text):
                kind = "donor" if match["path"] == "donate/manage" else "subscriber"
                (world.donor_tokens if kind == "donor" else world.subscriber_tokens).add(
                    match["token"]
                )


@pytest.fixture
def world(app: Flask, db_session: Session, clock: FrozenClock) -> World:
    clock.current = NOW
    client = app.test_client()
    donor = make_donor(db_session, name=DONOR[0], email=DONOR[1])
    plan = make_plan(db_session, donor=donor, started_at=NOW - timedelta(days=60))
    make_donation(db_session, donor=donor, plan=plan, paid_at=NOW - timedelta(days=30))
    lapsed = make_donor(db_session, name=LAPSED[0], email=LAPSED[1])
    make_plan(
        db_session,
        donor=lapsed,
        status=PlanStatus.CANCELED,
        started_at=NOW - timedelta(days=200),
        canceled_at=NOW - timedelta(days=10),
    )
    make_donation(db_session, donor=lapsed, paid_at=NOW - timedelta(days=100))
    both = make_donor(db_session, name=BOTH[0], email=BOTH[1])
    make_donation(db_session, donor=both, paid_at=NOW - timedelta(days=5))
    make_subscriber(db_session, name=BOTH[0], email=BOTH[1], confirmed_at=NOW - timedelta(days=90))
    make_subscriber(
        db_session, name=SUBSCRIBER[0], email=SUBSCRIBER[1], confirmed_at=NOW - timedelta(days=9)
    )
    db_session.add(Feed(url="https://news.example.org/feed.xml", language="en", created_at=NOW))
    db_session.add(
        StripeEvent(
            id="evt_roles_1",
            type="invoice.paid",
            created_at=NOW,
            received_at=NOW,
            outcome=f"recorded for donor {donor.id}",
        )
    )
    admin = make_staff(db_session, role="admin", email="boss@staff.example")
    db_session.commit()

    # Through the public pages, as the hostile editor did: the donor's self-service link,
    # a confirmation link and a preferences link, all delivered to the local mailbox.
    page = client.get("/en/donate/manage")
    assert page.status_code == 200
    asked = client.post(
        "/en/donate/manage", data={"email": DONOR[1], "csrf_token": csrf_token(page.text)}
    )
    assert asked.status_code == 200, asked.status_code
    sign_up(client, PENDING[1], name=PENDING[0])
    sign_up(client, SUBSCRIBER[1])  # known and confirmed: a link to the preferences
    queue(db_session, app, NOW, to=admin.email, context={"requested_by": admin.email})
    queue(
        db_session,
        app,
        NOW,
        to=DONOR[1],
        template="donor_access",
        context={"manage_url": "http://localhost/en/donate/manage", "link_valid_hours": 1},
    )
    approved_issue(app, db_session, clock, readers=2)
    deliver_pending(get_database(app), get_mailer(app), NOW)

    world = World()
    _tokens_in_mailbox(app, world)
    assert world.donor_tokens and world.subscriber_tokens, "the mailbox holds no links"
    world.hidden_outbox_id = int(
        db_session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.purpose == "donor_access")
        ).first()
        or 0
    )
    ids = world.ids
    column_ids = {
        "donation_id": Donation.id,
        "donor_id": Donor.id,
        "campaign_id": Campaign.id,
        "subscriber_id": Subscriber.id,
        "job_id": ImportJob.id,
        "issue_id": DigestIssue.id,
        "article_id": Article.id,
        "feed_id": Feed.id,
        "user_id": StaffUser.id,
        "message_id": OutboxMessage.id,
    }
    for name, column in column_ids.items():
        ids[name] = [str(value) for value in db_session.scalars(select(column).limit(8))]
    ids["key"] = LocalMailbox(app.config["MAILBOX_DIR"]).keys_newest_first()
    ids["slug"] = [report.slug for report in REPORTS]
    return world


def real_paths(rule: Rule, ids: dict[str, list[str]]) -> list[str]:
    """The rule's path for every real value of its variables (the first of each when it has
    several), or a value that exists nowhere when there is no such row."""
    names = [match.group("name") for match in _ARG.finditer(rule.rule)]
    choices: list[list[str]] = []
    for match in _ARG.finditer(rule.rule):
        name, converter = match.group("name"), match.group("converter")
        if converter == "any":
            values = [v.strip().strip("'\"") for v in (match.group("args") or "").split(",")]
        else:
            values = ids.get(name) or ["999999"]
        choices.append(values if len(names) == 1 else values[:1])
    pieces = _ARG.split(rule.rule)
    # split() returns the text between variables, then each variable's four groups.
    texts = pieces[:: len(_ARG.groupindex) + 1]
    paths = []
    for combination in itertools.product(*choices):
        path = texts[0]
        for value, text in zip(combination, texts[1:], strict=True):
            path += value + text
        paths.append(path)
    return paths


def forbidden_for(role: Role, world: World) -> dict[str, str]:
    """What must not appear in any answer to `role`: text -> why."""
    forbidden: dict[str, str] = {}
    donors = role_allows(role, Permission.DONATIONS)
    subscribers = role_allows(role, Permission.SUBSCRIBERS_VIEW)
    if not donors:
        for name, email in (DONOR, LAPSED):
            forbidden[name] = "a donor's name"
            forbidden[email] = "a donor's address"
        for token in world.donor_tokens:
            forbidden[token] = "a donor's self-service token"
    if not (donors or subscribers):
        forbidden[BOTH[0]] = forbidden[BOTH[1]] = "a donor and subscriber"
    if not subscribers:
        for name, email in (SUBSCRIBER, PENDING):
            forbidden[name] = "a subscriber's name"
            forbidden[email] = "a subscriber's address"
    if not role_allows(role, Permission.SUBSCRIBERS_MANAGE):
        for token in world.subscriber_tokens:
            forbidden[token] = "a subscriber's sign-in token"
    if not role_allows(role, Permission.MAILBOX):
        # Even a role that may act for everyone in the mailbox must not have any other's
        # message handed to it through the mailbox unless it has the mailbox right.
        for token in world.donor_tokens | world.subscriber_tokens:
            forbidden[token] = "a sign-in token from someone else's mail"
    return forbidden


def sign_in(client: FlaskClient, db_session: Session, role: Role) -> StaffUser:
    user = make_staff(db_session, role=role.value, email=f"me-{role.value}@staff.example")
    db_session.commit()
    force_login(client, db_session, user)
    return user


def token(client: FlaskClient) -> dict[str, str]:
    """Form data with this session's CSRF token (every role may open its account page)."""
    return {"csrf_token": csrf_token(client.get("/staff/account").text)}


@pytest.mark.parametrize("role", list(Role))
def test_no_page_shows_what_the_role_may_not_see(
    app: Flask, client: FlaskClient, db_session: Session, world: World, role: Role
) -> None:
    sign_in(client, db_session, role)
    forbidden = forbidden_for(role, world)
    assert forbidden or role == Role.ADMIN
    opened, leaks, errors = 0, [], []
    for rule, view, method, _dummy in protected(app):
        if method != "GET":
            continue
        permission = getattr(view, "required_permission", None)
        if permission is None or not role_allows(role.value, permission):
            continue  # refused: tests/test_staff_access.py
        for path in real_paths(rule, world.ids):
            response = client.get(path)
            if response.status_code >= 500:
                errors.append(f"GET {path}: {response.status_code}")
                continue
            opened += 1
            body = response.get_data(as_text=True)
            leaks += [
                f"GET {path} ({response.status_code}) shows {why}: {text[:24]}"
                for text, why in forbidden.items()
                if text in body
            ]
    assert opened >= 10
    assert not errors, "\n".join(errors)
    assert not leaks, f"{role} sees what it may not:\n" + "\n".join(sorted(set(leaks)))


def test_the_walker_does_find_people_where_they_belong(
    app: Flask, client: FlaskClient, db_session: Session, world: World
) -> None:
    """The same walk finds the donor and every token for an admin: a check that cannot
    find anything would pass for every role."""
    sign_in(client, db_session, Role.ADMIN)
    seen = ""
    for key in world.ids["key"]:
        seen += client.get(f"/staff/mailbox/{key}").get_data(as_text=True)
    seen += client.get("/staff/reports/lapsed").get_data(as_text=True)
    assert all(token in seen for token in world.donor_tokens | world.subscriber_tokens)
    assert LAPSED[1] in seen


@pytest.mark.parametrize("role", [Role.EDITOR, Role.FUNDRAISER])
def test_staff_without_the_mailbox_right_see_only_their_own_messages(
    app: Flask, client: FlaskClient, db_session: Session, world: World, role: Role
) -> None:
    user = sign_in(client, db_session, role)
    page = client.get("/staff/mailbox")
    assert page.status_code == 200 and "only the messages sent to your own address" in page.text
    assert "0 messages" in page.text
    for key in world.ids["key"]:  # someone else's: as if it did not exist
        for suffix in ("", "/html", "/raw"):
            assert client.get(f"/staff/mailbox/{key}{suffix}").status_code == 404
    sent = client.post("/staff/mailbox/test", data={"csrf_token": csrf_token(page.text)})
    assert sent.status_code == 303
    listing = client.get("/staff/mailbox")
    assert "1 message" in listing.text and user.email in listing.text
    (own,) = [
        key
        for key in LocalMailbox(app.config["MAILBOX_DIR"]).keys_newest_first()
        if key not in world.ids["key"]
    ]
    assert client.get(f"/staff/mailbox/{own}").status_code == 200
    assert client.get(f"/staff/mailbox/{own}/raw").status_code == 200


def test_the_outbox_hides_people_the_role_may_not_see(
    app: Flask, client: FlaskClient, db_session: Session, world: World
) -> None:
    sign_in(client, db_session, Role.EDITOR)
    page = client.get("/staff/outbox?status=all")
    assert page.status_code == 200
    assert DONOR[1] not in page.text and "donor_access" in page.text and "hidden" in page.text
    assert SUBSCRIBER[1] in page.text  # editors see subscribers
    assert "boss@staff.example" not in page.text  # another staff member's test email
    # Retrying a message to someone the role may not see is refused like the page is.
    refused = client.post(f"/staff/outbox/{world.hidden_outbox_id}/retry", data=token(client))
    assert refused.status_code == 403

    client.post("/staff/logout", data=token(client))
    sign_in(client, db_session, Role.FUNDRAISER)
    page = client.get("/staff/outbox?status=all")
    assert DONOR[1] in page.text and SUBSCRIBER[1] in page.text


def test_a_viewer_gets_aggregates_but_no_list_of_people(
    app: Flask, client: FlaskClient, db_session: Session, world: World
) -> None:
    sign_in(client, db_session, Role.VIEWER)
    menu = client.get("/staff/reports/revenue")
    assert menu.status_code == 200
    personal = [report for report in REPORTS if report.personal]
    assert {report.slug for report in personal} == {"lapsed", "donor-subscribers"}
    for report in personal:
        assert f'/staff/reports/{report.slug}"' not in menu.text  # not offered
        assert client.get(f"/staff/reports/{report.slug}").status_code == 403
        refused = client.post(f"/staff/reports/{report.slug}.csv", data=token(client))
        assert refused.status_code == 403
    client.post("/staff/logout", data=token(client))
    sign_in(client, db_session, Role.FUNDRAISER)
    assert LAPSED[1] in client.get("/staff/reports/lapsed").text


#: Row-level refusals on top of the role table: (endpoint, why).
ROW_LEVEL_403 = {
    "outbox.retry_message": "a message to someone the role may not see",
}


@pytest.mark.parametrize("role", list(Role))
def test_every_action_a_role_may_take_answers_without_403_or_500(
    app: Flask, client: FlaskClient, db_session: Session, world: World, role: Role
) -> None:
    """Each POST the role table allows reaches its view (no 403) and answers with a clear
    status (no 500), even with an empty form; the refused ones are 403 (the access test)."""
    user = sign_in(client, db_session, role)
    others = [i for i in world.ids["user_id"] if i != str(user.id)]
    ids = {**world.ids, "user_id": others}
    wrong = []
    for rule, view, method, _dummy in protected(app):
        if method != "POST":
            continue
        permission = getattr(view, "required_permission", None)
        allowed = permission is not None and role_allows(role.value, permission)
        for path in real_paths(rule, ids)[:3]:
            force_login(client, db_session, user)  # a sign-out action ends the session
            status = client.post(path, data=token(client)).status_code
            if not allowed and status != 403:
                wrong.append(f"POST {path}: {status}, expected 403")
            elif allowed and status >= 500:
                wrong.append(f"POST {path}: {status}")
            elif allowed and status == 403 and rule.endpoint not in ROW_LEVEL_403:
                wrong.append(f"POST {path}: 403 although {role} has {permission}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)

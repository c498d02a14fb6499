"""Hypothesis over every public endpoint that takes input (the signup and embed forms, the
donation pages, the self-service request, confirm/preferences/unsubscribe links, the view
beacon, the top reads, the Stripe webhook): raw bytes, huge and empty bodies, odd content
types, junk query strings and tokens. Never a 500, and a refused request writes nothing.

Forms are posted both raw (no CSRF token: refused) and as real forms with a valid CSRF
token and arbitrary values, so the validation behind the token is reached too.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from webapp.core.limits import limiter
from webapp.donations.models import Donation, Donor, StripeEvent
from webapp.subscribers.models import Subscriber

EXAMPLES = 400 if os.environ.get("READERSHIP_SOAK") else 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Endpoints that take a body, with the page that hands out their CSRF token (None: exempt).
POSTS = [
    ("/en/subscribe", "/en/subscribe"),
    ("/ru/subscribe", "/ru/subscribe"),
    ("/en/embed/subscribe", None),
    ("/en/donate", "/en/donate"),
    ("/ru/donate", "/ru/donate"),
    ("/en/donate/manage", "/en/donate/manage"),
    ("/en/subscribe/confirm/junk-token", None),
    ("/en/unsubscribe/junk-token", None),
    ("/en/subscription/junk-token", None),
    ("/t/view", None),
    ("/stripe/webhook", None),
]
GETS = [
    "/en/subscribe/confirm/",
    "/en/unsubscribe/",
    "/en/subscription/",
    "/en/donate/manage/",
    "/en/digest/",
    "/en/donate/",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "text/plain; charset=koi8-r",
    "",
]

text = st.text(max_size=300)
bodies = st.one_of(
    st.binary(max_size=3000),
    st.just(b""),
    st.builds(lambda n: b"a=" + b"x" * n, st.integers(min_value=1_048_000, max_value=1_049_000)),
    text.map(lambda t: t.encode("utf-8", "surrogatepass")),
)
query = st.dictionaries(st.text(max_size=20), text, max_size=4)
form_values = st.dictionaries(
    st.sampled_from(
        ["email", "name", "language", "languages", "amount", "custom_amount", "currency",
         "frequency", "campaign", "website", "consent", "next", "source", "digest", "u"]
    ),
    st.one_of(text, st.lists(text, max_size=3)),
    max_size=8,
)


def written(session: Session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(
        int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Subscriber, Donor, Donation, StripeEvent)
    )


def acceptable(path: str, status: int) -> bool:
    return status < 500


@FUZZ
@given(
    target=st.sampled_from(POSTS),
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    args=query,
)
def test_raw_bodies_never_fail_and_write_nothing(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    target: tuple[str, str | None],
    body: bytes,
    content_type: str,
    args: dict[str, str],
) -> None:
    limiter.reset()
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_hostile"  # configured: bodies reach the check
    before = written(db_session)
    path, _ = target
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, data=body, headers=headers, query_string=args)
    assert acceptable(path, response.status_code), (path, response.status_code)
    # No CSRF token and no valid signature: nothing may be written.
    assert written(db_session) == before


@FUZZ
@given(
    target=st.sampled_from([t for t in POSTS if t[1] is not None] + [POSTS[2]]),
    values=form_values,
)
def test_forms_with_a_valid_token_and_any_values_never_fail(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    target: tuple[str, str | None],
    values: dict[str, Any],
) -> None:
    limiter.reset()
    path, token_page = target
    data: dict[str, Any] = dict(values)
    if token_page is not None:
        data["csrf_token"] = csrf_token(client.get(token_page).get_data(as_text=True))
    before = written(db_session)
    response = client.post(path, data=data)
    assert acceptable(path, response.status_code), (path, response.status_code, values)
    if response.status_code >= 400:
        assert written(db_session) == before  # a refused form leaves no half-written row


@FUZZ
@given(prefix=st.sampled_from(GETS), token=st.text(max_size=200), args=query)
def test_links_and_pages_with_junk_never_fail(
    client: FlaskClient, prefix: str, token: str, args: dict[str, str]
) -> None:
    limiter.reset()
    response = client.get(prefix + quote(token, safe=""), query_string=args)
    assert response.status_code < 500, (prefix, token, response.status_code)


@FUZZ
@given(args=query, lang=text, u=text, origin=text)
def test_the_beacon_and_top_reads_with_junk_never_fail(
    client: FlaskClient, args: dict[str, str], lang: str, u: str, origin: str
) -> None:
    limiter.reset()
    headers = {"Origin": origin.replace("\n", " ").replace("\r", " ")}
    top = client.get("/api/top-reads", query_string={**args, "lang": lang}, headers=headers)
    assert top.status_code < 500
    assert client.get("/t/view", query_string={**args, "u": u}).status_code < 500

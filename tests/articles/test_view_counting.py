"""Views one client cannot pump: at most `VIEWS_PER_ADDRESS` counted views of an article per
IP address and day whatever the User-Agent (even with the rate limiter off, and for
parallel beacons), and the beacon's refusals are compact answers, never a page or a 500."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.articles.test_reading import BROWSER, make_article, view, views_of
from webapp import create_app
from webapp.articles.models import ArticleViewSeen
from webapp.articles.reading import get_top_reads
from webapp.core.clock import FrozenClock
from webapp.db import get_database


@pytest.fixture
def unlimited_app(app_config: dict[str, Any], app: Flask) -> Iterator[Flask]:
    """The app with the beacon's rate limiter off: only the per-address cap is left."""
    # `app` is asked for so its teardown empties the tables this app writes to.
    unlimited = create_app({**app_config, "RATELIMIT_ENABLED": False})
    yield unlimited
    get_database(unlimited).engine.dispose()


def test_the_cap_alone_keeps_400_user_agents_from_one_address_to_three_views(
    unlimited_app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    client = unlimited_app.test_client()
    obscure = make_article(db_session, "obscure")
    liked = make_article(db_session, "liked")
    db_session.commit()
    answers = {
        view(client, obscure.url, ip="198.51.100.9", agent=f"{BROWSER} b/{n}", beacon=n % 2 == 0)
        for n in range(400)
    }
    assert answers == {200, 204}  # refused quietly: the reader's page never sees a difference
    assert views_of(db_session, obscure) == 3
    for n in range(4):
        view(client, liked.url, ip=f"192.0.2.{n + 1}")
    reads = get_top_reads(db_session, "en", now=clock.now(), days=7, limit=2)
    assert [(read.article.id, read.views) for read in reads] == [(liked.id, 4), (obscure.id, 3)]
    # Uncounted beacons leave no rows behind: one per counted visitor and one per slot.
    assert db_session.scalar(select(func.count()).select_from(ArticleViewSeen)) == 3 * 2 + 4 * 2


def test_the_cap_is_per_day_and_per_article(
    unlimited_app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    client = unlimited_app.test_client()
    first, second = make_article(db_session, "first"), make_article(db_session, "second")
    db_session.commit()
    for n in range(6):
        view(client, first.url, agent=f"{BROWSER} {n}")
        view(client, second.url, agent=f"{BROWSER} {n}")
    assert (views_of(db_session, first), views_of(db_session, second)) == (3, 3)
    clock.advance(days=1)
    for n in range(6):
        view(client, first.url, agent=f"{BROWSER} {n}")
    assert views_of(db_session, first) == 6


def test_parallel_beacons_from_one_address_cannot_overshoot_the_cap(
    unlimited_app: Flask, db_session: Session
) -> None:
    article = make_article(db_session, "raced")
    db_session.commit()

    def beacon(n: int) -> int:
        # Each thread its own client, so its own request context and database session.
        return view(
            unlimited_app.test_client(),
            article.url,
            ip="198.51.100.20",
            agent=f"{BROWSER} r/{n}",
            beacon=True,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = set(pool.map(beacon, range(48)))
    assert answers == {204}
    assert views_of(db_session, article) == 3


def test_a_setting_changes_the_cap(
    app_config: dict[str, Any], app: Flask, db_session: Session
) -> None:
    single = create_app({**app_config, "VIEWS_PER_ADDRESS": 1, "RATELIMIT_ENABLED": False})
    try:
        article = make_article(db_session, "single")
        db_session.commit()
        for n in range(3):
            view(single.test_client(), article.url, agent=f"{BROWSER} {n}")
        assert views_of(db_session, article) == 1
    finally:
        get_database(single).engine.dispose()


def test_over_the_rate_limit_the_beacon_answers_a_bare_429(app: Flask, db_session: Session) -> None:
    app.config["VIEW_RATE_LIMIT"] = "5 per minute"
    client = app.test_client()
    article = make_article(db_session, "limited")
    db_session.commit()
    answers = [view(client, article.url, agent=f"{BROWSER} {n}") for n in range(5)]
    assert answers == [200] * 5
    same_address = {"REMOTE_ADDR": "203.0.113.7"}
    headers = {"User-Agent": BROWSER}
    pixel = client.get(
        "/t/view", query_string={"u": article.url}, headers=headers, environ_base=same_address
    )
    beacon = client.post(
        "/t/view",
        data=article.url,
        content_type="text/plain",
        headers=headers,
        environ_base=same_address,
    )
    # The pixel and the beacon share one budget per address.
    for response in (pixel, beacon):
        assert response.status_code == 429
        assert response.data == b"" and "Retry-After" in response.headers
    # Another address is not affected.
    assert view(client, article.url, ip="192.0.2.99") == 200
    assert views_of(db_session, article) == 4  # three from the first address, one more


def test_an_ipv6_client_cannot_take_a_new_address_of_its_64_for_every_view(
    unlimited_app: Flask, db_session: Session
) -> None:
    client = unlimited_app.test_client()
    article = make_article(db_session, "v6")
    db_session.commit()
    for n in range(50):
        view(client, article.url, ip=f"2001:db8:5:7::{n + 1:x}", agent=f"{BROWSER} {n}")
    assert views_of(db_session, article) == 3
    # Another /64 is another household; an IPv4-mapped address counts as its IPv4 one.
    view(client, article.url, ip="2001:db8:5:8::1")
    for n in range(4):
        view(client, article.url, ip=f"::ffff:192.0.2.{7 if n else 8}", agent=f"{BROWSER} {n}")
    view(client, article.url, ip="192.0.2.7", agent=f"{BROWSER} x")
    assert views_of(db_session, article) == 3 + 1 + 1 + 3


def test_address_groups() -> None:
    from webapp.articles.reading import address_group

    assert address_group("203.0.113.9") == "203.0.113.9"
    assert address_group("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_group("::ffff:198.51.100.1") == "198.51.100.1"
    assert address_group("not an address") == "not an address"

"""A reader in a real browser: subscribe in Russian, confirm from the link in the email,
change preferences, unsubscribe with the button; and a signup done with the keyboard only.

The emails are the ones the app really sent to the aiosmtpd sink; every link the browser
follows is taken from them. Texts are looked up in the app's own catalogue (`translate`),
so the tests hold whether or not a string has its Russian translation yet; the language is
proved by the `lang` attribute and the `/ru/` prefix of the emailed links.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import ReceivedMessage, SmtpSink
from tests.subscribers.factories import event_kinds, get_subscriber, one_email_to, path_of, sign_up
from webapp.subscribers.models import SubscriberEvent


def translate(app: Flask, language: str, msgid: str, **variables: Any) -> str:
    """`msgid` as the app shows it in `language` (the English text while untranslated)."""
    with app.test_request_context(), force_locale(language):
        return gettext(msgid, **variables)


def html_lang(page: Any) -> str:
    """The `lang` attribute of the page's root element."""
    return str(page.locator("html").get_attribute("lang"))


@dataclass(frozen=True)
class ReaderLinks:
    """The signed links a new reader finds in their emails."""

    email: str
    confirm: str
    preferences: str | None = None
    unsubscribe: str | None = None


def new_reader_links(
    live_server: LiveServer, smtp_sink: SmtpSink, email: str, *, language: str, confirm: bool
) -> ReaderLinks:
    """Sign `email` up through the live app (its own test client, so links carry the live
    origin) and return the links from the emails; with `confirm`, also press the confirm
    button and read the preferences and unsubscribe links from the welcome email."""
    client = live_server.app.test_client()
    response = sign_up(client, email, language=language, prefix=f"/{language}")
    assert response.status_code == 303, response.status_code
    confirmation = one_email_to(smtp_sink, email)
    confirm_url = first_url_containing(confirmation.part("text/plain"), "/subscribe/confirm/")
    if not confirm:
        return ReaderLinks(email=email, confirm=confirm_url)
    page = client.get(path_of(confirm_url))
    assert page.status_code == 200, page.status_code
    done = client.post(path_of(confirm_url), data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200, done.status_code
    welcome = one_email_to(smtp_sink, email, count=2)
    return ReaderLinks(
        email=email,
        confirm=confirm_url,
        preferences=first_url_containing(welcome.part("text/plain"), "/subscription/"),
        unsubscribe=_list_unsubscribe_url(welcome),
    )


def _list_unsubscribe_url(message: ReceivedMessage) -> str:
    header = str(message.message["List-Unsubscribe"])
    match = re.search(r"<(https?://[^>]+)>", header)
    assert match, header
    return match.group(1)


def test_reader_subscribes_in_russian_confirms_and_changes_preferences(
    page: Any, live_server: LiveServer, smtp_sink: SmtpSink, db_session: Session
) -> None:
    app = live_server.app

    def ru(msgid: str, **variables: Any) -> str:
        return translate(app, "ru", msgid, **variables)

    address = "olga@example.com"

    # The signup page, in Russian, filled in by label like a person would.
    response = page.goto("/ru/subscribe")
    assert response is not None and response.status == 200
    assert html_lang(page) == "ru"
    publication = page.locator(".brand__name").inner_text().strip()
    assert page.get_by_label(ru("Digest language")).input_value() == "ru"
    page.get_by_label(ru("Email address"), exact=True).fill(address)
    page.get_by_role("button", name=ru("Subscribe"), exact=True).click()

    page.wait_for_url(re.compile(r"/ru/subscribe/check-your-email$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(ru("Check your inbox"))
    assert html_lang(page) == "ru"

    # The confirmation email arrives, written in Russian, with links in Russian.
    smtp_sink.wait_for(1)
    confirmation = one_email_to(smtp_sink, address)
    assert confirmation.subject == ru("Confirm your subscription to %(name)s", name=publication)
    text = confirmation.part("text/plain")
    assert ru("Please confirm your subscription") in text
    assert re.search(r'<html[^>]*\blang="ru"', confirmation.part("text/html"))
    confirm_url = first_url_containing(text, "/subscribe/confirm/")
    assert confirm_url.startswith(f"{live_server.url}/ru/subscribe/confirm/"), confirm_url
    subscriber = get_subscriber(db_session, address)
    assert subscriber is not None and subscriber.status == "pending"
    assert subscriber.language == "ru"

    # The link only shows a button: opening it (as a mail scanner would) confirms nothing.
    page.goto(confirm_url)
    assert html_lang(page) == "ru"
    confirm_button = page.get_by_role("button", name=ru("Confirm my subscription"))
    expect(confirm_button).to_be_visible()
    assert get_subscriber(db_session, address).status == "pending"  # type: ignore[union-attr]

    confirm_button.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ru("You are subscribed"))
    subscriber = get_subscriber(db_session, address)
    assert subscriber is not None and subscriber.status == "confirmed"
    assert subscriber.confirmed_at is not None

    # The welcome email links to the preferences page, in Russian.
    welcome = one_email_to(smtp_sink, address, count=2)
    assert welcome.subject == ru("Welcome to %(name)s", name=publication)
    preferences_url = first_url_containing(welcome.part("text/plain"), "/subscription/")
    assert preferences_url.startswith(f"{live_server.url}/ru/subscription/"), preferences_url

    page.goto(preferences_url)
    assert html_lang(page) == "ru"
    expect(page.locator(".lede")).to_have_text(ru("You receive the weekly digest."))
    russian_box = page.get_by_role("checkbox", name="Русский")
    english_box = page.get_by_role("checkbox", name="English")
    assert russian_box.is_checked() and not english_box.is_checked()

    # Add English to the digest languages.
    english_box.check()
    page.get_by_role("button", name=ru("Save languages")).click()
    expect(page.get_by_role("status")).to_have_text(ru("Your language choice is saved."))
    expect(page.get_by_role("checkbox", name="English")).to_be_checked()
    subscriber = get_subscriber(db_session, address)
    assert subscriber is not None and subscriber.languages == ["ru", "en"]

    # Pause the digest.
    page.get_by_role("button", name=ru("Pause the digest")).click()
    expect(page.get_by_role("status")).to_have_text(
        ru("The digest is paused. Resume it here whenever you like.")
    )
    expect(page.get_by_role("button", name=ru("Resume the digest"))).to_be_visible()
    subscriber = get_subscriber(db_session, address)
    assert subscriber is not None and subscriber.paused and subscriber.status == "confirmed"
    kinds = event_kinds(db_session, subscriber.id)
    assert {"signup", "confirmed", "preferences_changed", "paused"} <= set(kinds), kinds


def test_reader_unsubscribes_with_the_button_on_the_unsubscribe_page(
    page: Any, live_server: LiveServer, smtp_sink: SmtpSink, db_session: Session
) -> None:
    links = new_reader_links(
        live_server, smtp_sink, "pyotr@example.com", language="ru", confirm=True
    )
    assert links.unsubscribe is not None
    assert links.unsubscribe.startswith(f"{live_server.url}/ru/unsubscribe/"), links.unsubscribe

    def ru(msgid: str) -> str:
        return translate(live_server.app, "ru", msgid)

    # Opening the link (a GET) asks first and changes nothing.
    response = page.goto(links.unsubscribe)
    assert response is not None and response.status == 200
    assert html_lang(page) == "ru"
    expect(page.get_by_role("heading", level=1)).to_have_text(
        ru("Unsubscribe from the weekly digest?")
    )
    assert get_subscriber(db_session, links.email).status == "confirmed"  # type: ignore[union-attr]

    page.get_by_role("button", name=ru("Unsubscribe"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ru("You are unsubscribed"))
    subscriber = get_subscriber(db_session, links.email)
    assert subscriber is not None and subscriber.status == "unsubscribed"
    assert subscriber.unsubscribed_at is not None
    assert event_kinds(db_session, subscriber.id)[-1] == "unsubscribed"
    last = db_session.scalars(
        select(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber.id)
        .order_by(SubscriberEvent.id.desc())
    ).first()
    assert last is not None and json.loads(last.detail).get("how") == "unsubscribe_page"

    # The way back is offered, and it is the reader's preferences page.
    back = page.get_by_role("link", name=ru("Unsubscribed by mistake? Subscribe again"))
    back.click()
    expect(page.locator(".lede")).to_have_text(ru("You are not subscribed."))
    expect(page.get_by_role("button", name=ru("Subscribe again"))).to_be_visible()


def test_signup_works_with_the_keyboard_alone(
    page: Any, live_server: LiveServer, smtp_sink: SmtpSink, db_session: Session
) -> None:
    page.goto("/subscribe")

    def focused() -> dict[str, str]:
        return page.evaluate(
            """() => ({tag: document.activeElement.tagName.toLowerCase(),
                       id: document.activeElement.id || '',
                       type: document.activeElement.getAttribute('type') || ''})"""
        )

    # Tab from the top of the page until the email field has focus.
    for _ in range(10):
        page.keyboard.press("Tab")
        if focused()["id"] == "email":
            break
    else:
        raise AssertionError(f"Tab never reached the email field; focus is on {focused()}")
    page.keyboard.type("keys@example.com")

    # Onwards to the button: only the visible fields are on the way (not the honeypot).
    path = []
    for _ in range(6):
        page.keyboard.press("Tab")
        now = focused()
        path.append(now["id"] or now["tag"])
        if now["tag"] == "button":
            break
    assert path == ["name", "language", "button"], path
    # The focused button shows it has focus.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/subscribe/check-your-email$"))
    message = one_email_to(smtp_sink, "keys@example.com")
    assert "/en/subscribe/confirm/" in message.part("text/plain")
    subscriber = get_subscriber(db_session, "keys@example.com")
    assert subscriber is not None and subscriber.status == "pending"
    assert subscriber.language == "en"

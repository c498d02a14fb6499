"""Public pages in a real browser: axe-core finds no serious or critical problem, the layout
fits a phone, and the keyboard reaches the content through the skip link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from tests.browser.support import axe, format_violations
from tests.browser.test_subscribe_flow import new_reader_links
from tests.helpers.live_server import LiveServer
from tests.helpers.smtp import SmtpSink

PHONE_WIDTH = 375


@dataclass(frozen=True)
class PublicPage:
    """A page the axe check visits."""

    path: str
    status: int = 200
    #: While set, the page is skipped with this reason if its route does not exist yet.
    pending: str | None = None


AXE_PAGES = [
    PublicPage("/"),
    PublicPage("/ru/"),
    PublicPage("/no-such-page-here", status=404),
    PublicPage("/ru/no-such-page-here", status=404),
    PublicPage("/subscribe"),
    PublicPage("/ru/subscribe"),
    PublicPage("/donate"),
    PublicPage("/ru/donate"),
    PublicPage("/donate/manage"),
    PublicPage("/ru/donate/manage"),
    PublicPage("/subscribe/check-your-email"),
    PublicPage("/ru/subscribe/check-your-email"),
    PublicPage("/embed/subscribe-form"),
    PublicPage("/ru/embed/subscribe-form"),
    PublicPage("/ru/subscribe/confirm/not-a-real-token", status=400),
    PublicPage("/staff/login"),
]


def _has_get_route(app: Flask, path: str) -> bool:
    """True when `path` matches a GET route of `app` (a slash redirect counts)."""
    with app.app_context():
        adapter = app.url_map.bind("127.0.0.1")
        try:
            adapter.match(path, method="GET")
        except RequestRedirect:
            return True
        except (NotFound, MethodNotAllowed):
            return False
    return True


@pytest.mark.parametrize("target", AXE_PAGES, ids=[p.path for p in AXE_PAGES])
def test_page_has_no_serious_accessibility_violations(
    page: Any, live_server: LiveServer, target: PublicPage
) -> None:
    if target.pending and not _has_get_route(live_server.app, target.path):
        pytest.skip(f"{target.path}: no route yet ({target.pending})")

    response = page.goto(target.path)

    assert response is not None and response.status == target.status
    violations = axe(page)
    assert violations == [], f"{target.path}:\n{format_violations(violations)}"


#: Pages behind signed links, reached the way a reader does: from the emails.
SIGNED_PAGES = [
    (kind, lang) for kind in ("confirm", "preferences", "unsubscribe") for lang in ("en", "ru")
]


@pytest.mark.parametrize(
    ("kind", "lang"), SIGNED_PAGES, ids=[f"{kind}-{lang}" for kind, lang in SIGNED_PAGES]
)
def test_signed_link_page_has_no_serious_accessibility_violations(
    page: Any, live_server: LiveServer, smtp_sink: SmtpSink, kind: str, lang: str
) -> None:
    links = new_reader_links(
        live_server,
        smtp_sink,
        f"axe-{kind}-{lang}@example.com",
        language=lang,
        confirm=kind != "confirm",
    )
    url = getattr(links, kind)
    assert url is not None and url.startswith(f"{live_server.url}/{lang}/"), url

    response = page.goto(url)

    assert response is not None and response.status == 200
    assert page.locator("html").get_attribute("lang") == lang
    violations = axe(page)
    assert violations == [], f"{kind} ({lang}):\n{format_violations(violations)}"


@pytest.mark.parametrize(
    "path", ["/", "/ru/", "/subscribe", "/ru/subscribe", "/donate", "/ru/donate"]
)
def test_page_fits_a_phone_screen_without_horizontal_scroll(page: Any, path: str) -> None:
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 740})
    page.goto(path)

    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= PHONE_WIDTH, f"{path} is {scroll_width}px wide at {PHONE_WIDTH}px"


def test_first_tab_reaches_the_skip_link_which_moves_focus_to_main(page: Any) -> None:
    page.goto("/")

    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => ({cls: document.activeElement.className,"
        " href: document.activeElement.getAttribute('href')})"
    )
    assert focused == {"cls": "skip-link", "href": "#main"}
    # A skip link nobody can see when it has focus helps no one.
    box = page.locator("a.skip-link").bounding_box()
    assert box is not None and box["width"] > 1 and box["height"] > 1
    assert box["y"] >= 0 and box["x"] >= 0

    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # The next Tab continues from the content onwards, not back in the masthead.
    page.keyboard.press("Tab")
    assert page.evaluate(
        """() => {
            const main = document.getElementById('main');
            const position = main.compareDocumentPosition(document.activeElement);
            return (position & Node.DOCUMENT_POSITION_FOLLOWING) !== 0;
        }"""
    )

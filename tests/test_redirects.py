"""`next` targets are judged as a browser reads them: never a way off the site.

The reference is a WHATWG URL parser (`ada_url`, the parser of Node.js), resolving the
target against a page of ours as a browser resolves a `Location` header; Werkzeug's own
`redirect()` is checked as well, since it rewrites the target before it is sent (it drops
a tab, which is how `/\\t/evil.example/` once became `//evil.example/`).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import ada_url
import pytest
from flask import Flask, redirect, request, url_for
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tests.helpers.html import csrf_token
from tests.staff.factories import DEFAULT_PASSWORD, make_staff
from webapp.core.net import is_safe_redirect

#: A page of ours, as the browser sees it (the test app's BASE_URL / SERVER_NAME).
PAGE = "http://localhost/staff/login?next=x"
ORIGIN = "http://localhost"
EMBED_ALLOWED = "https://example.org"  # the default site_url, an allowed embed origin

#: Targets that once fooled, or commonly fool, a redirect check.
ATTACKS = [
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r/evil.example/",
    "/\t\t/evil.example",
    "\t//evil.example/",
    " //evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\/evil.example/",
    "/\\/evil.example/",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%5c%5cevil.example",
    "/%09/evil.example",
    "/%252F%252Fevil.example",
    "/\x00/evil.example",
    "/\x00",
    "\x00//evil.example",
    "/\x7f/evil.example",
    "/\x85/evil.example",
    "/\u3000/evil.example",
    "/\u3000",
    "/\u200b/evil.example",
    "/\u2028/evil.example",
    "/\ufeff/evil.example",
    "/staff/ ",
    " /staff/",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


def browser_resolution(target: str, base: str = PAGE) -> str | None:
    """The URL a browser on `base` goes to for a `Location: target` (None if it cannot)."""
    try:
        return str(ada_url.join_url(base, target))
    except ValueError:
        return None


def origin_of(url: str) -> str:
    return str(ada_url.URL(url).origin)


def where(url: str | None) -> tuple[str, str, str, str] | None:
    """Origin, path, query and fragment of a resolved URL, the same for URLs that name the
    same page: Werkzeug drops an empty `?` or `#` and percent-encodes characters such as `|`
    that a browser sends as they are (our routing decodes both alike)."""
    if url is None:
        return None
    parsed = ada_url.URL(url)
    return (
        str(parsed.origin),
        unquote(parsed.pathname),
        unquote(parsed.search),
        unquote(parsed.hash),
    )


@pytest.fixture
def redirect_client(app: Flask) -> Iterator[FlaskClient]:
    """The app with one extra route answering `redirect(to)`, exactly as our views do."""

    def bounce() -> Response:
        return redirect(request.args["to"], code=303)

    app.add_url_rule("/_test/redirect", "test_redirect", bounce)
    yield app.test_client()


def location_sent_for(client: FlaskClient, target: str) -> str:
    response = client.get("/_test/redirect", query_string={"to": target})
    assert response.status_code == 303
    return str(response.headers["Location"])


# Characters that matter to URL parsers, mixed with plain ones.
tricky = st.sampled_from(
    [
        "/",
        "\\",
        "\t",
        "\n",
        "\r",
        " ",
        "\x00",
        "\x0b",
        "\x1f",
        "\x7f",
        "\x85",
        "\xa0",
        "\u3000",
        "\u200b",
        "\u2028",
        "\ufeff",
        "%",
        "%2F",
        "%2f",
        "%5C",
        "%09",
        "%00",
        "%25",
        "%2e",
        ".",
        "..",
        "@",
        ":",
        "?",
        "#",
        "evil.example",
        "staff",
        "ж",
        "é",
        "a",
    ]
)
# Printable parts only, so that many targets pass the check and their resolution is tested.
printable = st.sampled_from(
    [
        "/",
        "%2F",
        "%2f",
        "%5C",
        "%2e",
        "%2E%2E",
        ".",
        "..",
        "@",
        ":",
        "?",
        "#",
        "&",
        "=",
        ";",
        "%",
        "%25",
        "%20",
        "%u3000",
        "~",
        "evil.example",
        "staff",
        "ж",
        "é",
        "a",
        "http:",
        "//",
    ]
)
targets = st.one_of(
    st.lists(printable, min_size=1, max_size=8).map(lambda parts: "/" + "".join(parts)),
    st.lists(printable, max_size=8).map(lambda parts: "/a" + "".join(parts)),
    st.lists(tricky, max_size=8).map("".join),
    st.lists(tricky, max_size=8).map(lambda parts: "/" + "".join(parts)),
    st.text(max_size=40),
    st.text(max_size=40).map(lambda text: "/" + text),
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=targets)
@example(target="/\t/evil.example/")
@example(target="/%2F%2Fevil")
@example(target="/статья?q=a%20b#x")
def test_an_accepted_target_stays_on_the_site_as_a_browser_reads_it(
    redirect_client: FlaskClient, target: str
) -> None:
    if not is_safe_redirect(target):
        return  # refusing is always safe; what is accepted must hold
    resolved = browser_resolution(target)
    assert resolved is not None, target
    assert origin_of(resolved) == ORIGIN, (target, resolved)
    # What Werkzeug actually sends resolves to the very same URL.
    sent = location_sent_for(redirect_client, target)
    assert where(browser_resolution(sent)) == where(resolved), (target, sent, resolved)
    # And the target is not another site's under any page of ours.
    assert origin_of(browser_resolution(target, "https://site.example/a/b/") or "") == (
        "https://site.example"
    )


@pytest.mark.parametrize("target", ATTACKS)
def test_known_tricks_are_refused(target: str) -> None:
    assert not is_safe_redirect(target)


def test_the_old_check_was_fooled_where_the_browser_leaves_the_site(
    redirect_client: FlaskClient,
) -> None:
    # The regression, shown with the real parts: Werkzeug sends `//evil.example/`.
    sent = location_sent_for(redirect_client, "/\t/evil.example/")
    assert origin_of(browser_resolution(sent) or "") == "http://evil.example"
    assert not is_safe_redirect("/\t/evil.example/")


def test_our_own_links_are_accepted(app: Flask) -> None:
    with app.test_request_context():
        own = [
            url_for(rule.endpoint)
            for rule in app.url_map.iter_rules()
            if not rule.arguments and "GET" in (rule.methods or ()) and rule.endpoint != "static"
        ]
        own += [
            url_for("staff.dashboard", q="два слова / and more", page=2, _anchor="x y"),
            url_for("staff.account", _anchor="totp"),
        ]
    assert len(own) > 10
    refused = [path for path in own if not is_safe_redirect(path)]
    assert refused == []


def embed_post(client: FlaskClient, next_: str):  # noqa: ANN201 - a werkzeug TestResponse
    return client.post(
        "/embed/subscribe",
        data={"email": "embed@example.com", "language": "en", "next": next_},
        headers={"Origin": EMBED_ALLOWED},
        environ_base={"REMOTE_ADDR": "203.0.113.60"},
    )


def test_embed_form_with_a_tab_trick_does_not_redirect_away(
    client: FlaskClient, db_session: Session
) -> None:
    response = embed_post(client, "/\t/evil.example/")
    assert response.status_code == 200  # the small answer page, no redirect
    assert "Location" not in response.headers
    assert "evil.example" not in response.text


@pytest.mark.parametrize("target", [t for t in ATTACKS if t])
def test_embed_form_never_sends_the_browser_off_the_allowed_sites(
    client: FlaskClient, db_session: Session, target: str
) -> None:
    response = embed_post(client, target)
    assert response.status_code in (200, 303)
    location = response.headers.get("Location")
    if location is not None:
        resolved = browser_resolution(location) or ""
        assert origin_of(resolved) in (ORIGIN, EMBED_ALLOWED), (target, location)


def test_embed_form_still_returns_to_our_own_page_and_the_publication(
    client: FlaskClient, db_session: Session
) -> None:
    own = embed_post(client, "/en/subscribe/check-your-email")
    assert own.status_code == 303
    assert own.headers["Location"] == "/en/subscribe/check-your-email"
    publication = embed_post(client, f"{EMBED_ALLOWED}/thanks")
    assert publication.headers["Location"] == f"{EMBED_ALLOWED}/thanks"
    tab = embed_post(client, f"{EMBED_ALLOWED}/\t/thanks")
    assert "Location" not in tab.headers


@pytest.mark.parametrize("target", ["/staff/\t/evil.example/", "/staff/%2F%2Fevil", *ATTACKS[:8]])
def test_sign_in_next_never_leaves_the_site(
    client: FlaskClient, db_session: Session, target: str
) -> None:
    make_staff(db_session, email="next@example.org")
    db_session.commit()
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={
            "email": "next@example.org",
            "password": DEFAULT_PASSWORD,
            "next": target,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    resolved = browser_resolution(response.headers["Location"]) or ""
    assert resolved.startswith(f"{ORIGIN}/staff/"), (target, resolved)

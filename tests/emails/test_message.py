"""MIME building: multipart/alternative, UTF-8, CRLF, Message-ID, Date, extra headers."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from emails import RenderedEmail, build_message, message_bytes
from emails.message import HeaderError, address_domain, build_message_bytes, format_sender

RENDERED = RenderedEmail(
    subject="Подтвердите подписку",
    html="<p>Привет, <b>мир</b></p>\n" + "<p>" + "x" * 3000 + "</p>",
    text="Привет, мир\nвторая строка\n",
)


def build(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "sender": format_sender("Новая газета · Review", "news@review.example"),
        "to": "reader@example.org",
        "headers": {
            "List-Unsubscribe": "<https://readers.review.example/u/TOKEN>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": "Review digest <digest.review.example>",
        },
        "message_id_domain": "review.example",
        "date": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    }
    arguments.update(overrides)
    return message_bytes(build_message(RENDERED, **arguments))  # type: ignore[arg-type]


def test_multipart_alternative_with_text_then_html() -> None:
    raw = build()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]  # type: ignore[attr-defined]
    assert parts == ["text/plain", "text/html"]
    # The parts travel with CRLF line ends; the content is the same text.
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == RENDERED.text
    assert html.replace("\r\n", "\n").rstrip("\n") == RENDERED.html
    for part in parsed.iter_parts():  # type: ignore[attr-defined]
        assert part.get_content_charset() == "utf-8"


def test_crlf_only_and_short_lines() -> None:
    raw = build()
    assert b"\r\n" in raw
    assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_headers() -> None:
    parsed = email.message_from_bytes(build(), policy=email.policy.default)
    assert parsed["Subject"] == RENDERED.subject
    assert parsed["To"] == "reader@example.org"
    assert parsed["From"].addresses[0].display_name == "Новая газета · Review"
    assert parsed["From"].addresses[0].addr_spec == "news@review.example"
    assert parsed["Date"].datetime == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert re.fullmatch(r"<[^@>]+@review\.example>", parsed["Message-ID"])
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"] == "<https://readers.review.example/u/TOKEN>"
    assert parsed["List-Id"] == "Review digest <digest.review.example>"
    assert parsed["MIME-Version"] == "1.0"


def test_each_message_gets_its_own_message_id() -> None:
    ids = {
        email.message_from_bytes(build(), policy=email.policy.default)["Message-ID"]
        for _ in range(20)
    }
    assert len(ids) == 20


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": "reader@example.org\r\nBcc: victim@example.org"},
        {"headers": {"List-Id": "x\nBcc: victim@example.org"}},
        {"headers": {"Subject": "another subject"}},
        {"headers": {"X-Bad\r\nBcc": "v@example.org"}},
    ],
)
def test_hostile_header_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(HeaderError):
        build(**overrides)


def test_address_domain() -> None:
    assert address_domain("Review <news@Review.example>") == "Review.example"
    assert address_domain("nobody") == "localhost"


# --- The fast writer for bulk sending -------------------------------------------------------


def parsed_headers(raw: bytes) -> dict[str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return {name: str(value) for name, value in message.items()}


def parts(raw: bytes) -> list[tuple[str, str]]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [
        (part.get_content_type(), part.get_content().replace("\r\n", "\n"))  # type: ignore[attr-defined]
        for part in message.iter_parts()  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize(
    ("sender", "subject", "extra"),
    [
        ("Review <news@review.example>", "Plain subject", {}),
        (
            format_sender("Новая газета, «Обзор»", "news@review.example"),
            "Дайджест недели: " + "очень длинная тема " * 6,
            {
                "List-Id": "Дайджест «Обзора» <digest.review.example>",
                "List-Unsubscribe": "<https://readers.review.example/u/" + "T" * 120 + ">",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        ),
    ],
)
def test_fast_writer_makes_the_same_message(
    sender: str, subject: str, extra: dict[str, str]
) -> None:
    rendered = RenderedEmail(subject=subject, html=RENDERED.html, text=RENDERED.text)
    arguments: dict[str, Any] = {
        "sender": sender,
        "to": "Ann Reader <reader@example.org>",
        "headers": extra,
        "message_id_domain": "review.example",
        "date": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    }
    slow = message_bytes(build_message(rendered, **arguments))
    fast = build_message_bytes(rendered, **arguments)
    slow_headers, fast_headers = parsed_headers(slow), parsed_headers(fast)
    for name in ("Message-ID", "Content-Type"):  # random by design
        slow_headers.pop(name), fast_headers.pop(name)
    assert fast_headers == slow_headers
    assert fast_headers["Subject"] == subject
    assert parts(fast) == parts(slow)
    assert re.search(rb"(?<!\r)\n", fast) is None
    assert max(len(line) for line in fast.split(b"\r\n")) <= 998
    assert fast.isascii()


def test_fast_writer_checks_headers_the_same_way() -> None:
    with pytest.raises(HeaderError):
        build_message_bytes(
            RENDERED,
            sender="a@b.example",
            to="x@y.example\nBcc: z@y.example",
            headers=None,
            message_id_domain="b.example",
        )
    with pytest.raises(HeaderError):
        build_message_bytes(
            RENDERED,
            sender="a@b.example",
            to="x@y.example",
            headers={"Date": "now"},
            message_id_domain="b.example",
        )

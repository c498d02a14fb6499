"""Two-stage rendering: compile once, fill per recipient."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from emails import EmailRenderer, UnknownEmail
from emails.rendering import load_translations
from tests.emails.conftest import EMAIL_CONTEXTS, RECIPIENT, context_for, recipient_for
from tests.helpers.html import links

#: What a recipient marker looks like before `fill` (see emails.rendering._Recipient).
MARKER = re.compile(r"rcpt[0-9a-f]{16}x\d+x")


def write_email(root: Path, name: str, subject: str, mjml: str, text: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text(subject)
    (folder / "body.mjml").write_text(mjml)
    (folder / "body.txt").write_text(text)


def mini_mjml(content: str) -> str:
    return (
        "<mjml><mj-body><mj-section><mj-column>"
        f"<mj-text>{content}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )


@pytest.fixture
def mini(tmp_path: Path) -> EmailRenderer:
    """A renderer over one small email using several recipient fields."""
    write_email(
        tmp_path / "templates",
        "hello",
        "Hi {{ recipient.name }}\n",
        mini_mjml(
            'Dear {{ recipient.name }}, <a href="{{ recipient.link }}">open</a> from {{ sender }}'
        ),
        "Dear {{ recipient.name }}, open {{ recipient.link }} from {{ sender }}\n",
    )
    return EmailRenderer(tmp_path / "templates", tmp_path / "translations")


def test_every_email_renders_in_both_languages(renderer: EmailRenderer) -> None:
    assert renderer.names() == sorted(EMAIL_CONTEXTS)
    for name in renderer.names():
        for language in ("en", "ru"):
            email = renderer.render(name, language, context_for(name), recipient_for(name))
            assert email.subject and "\n" not in email.subject
            assert email.html.startswith("<!DOCTYPE html>")
            assert f'lang="{language}"' in email.html
            assert "reader@example.org" in email.html and "reader@example.org" in email.text
            assert "The Test Review" in email.text
            assert not MARKER.search(email.html + email.text + email.subject)


def test_recipient_values_are_escaped_in_html_and_raw_in_text(mini: EmailRenderer) -> None:
    compiled = mini.compile("hello", "en", {"sender": "Ann & Bob"})
    assert compiled.fields == ("name", "link")
    email = compiled.fill({"name": "<Zoë>", "link": "https://x.example/a?b=1&c=2"})
    assert "Dear &lt;Zoë&gt;," in email.html
    assert "<Zoë>" not in email.html
    assert "https://x.example/a?b=1&c=2" in links(email.html)
    assert "Ann &amp; Bob" in email.html
    assert email.text == "Dear <Zoë>, open https://x.example/a?b=1&c=2 from Ann & Bob\n"
    assert email.subject == "Hi <Zoë>"


def test_subject_is_one_line_whatever_the_values(mini: EmailRenderer) -> None:
    email = mini.render("hello", "en", {"sender": "x"}, {"name": "A\r\nBcc: evil", "link": ""})
    assert email.subject == "Hi A Bcc: evil"


def test_missing_recipient_field_is_a_key_error(mini: EmailRenderer) -> None:
    compiled = mini.compile("hello", "en", {"sender": "x"})
    with pytest.raises(KeyError, match="link"):
        compiled.fill({"name": "Ann"})


def test_missing_context_value_is_an_error_not_an_empty_string(mini: EmailRenderer) -> None:
    with pytest.raises(UndefinedError):
        mini.compile("hello", "en", {})


def test_unknown_email(renderer: EmailRenderer) -> None:
    with pytest.raises(UnknownEmail):
        renderer.compile("no_such_email", "en", {})


def test_recipient_is_not_a_context_value(mini: EmailRenderer) -> None:
    with pytest.raises(ValueError, match="fill"):
        mini.compile("hello", "en", {"sender": "x", "recipient": {"name": "a"}})


def test_compiled_once_per_language_and_context(renderer: EmailRenderer) -> None:
    context = context_for("confirm_subscription")
    first = renderer.compile("confirm_subscription", "en", context)
    assert renderer.compile("confirm_subscription", "en", dict(context)) is first
    assert renderer.mjml_compiles == 1
    renderer.compile("confirm_subscription", "ru", context)
    renderer.compile("confirm_subscription", "en", {**context, "confirm_url": "https://o/x"})
    assert renderer.mjml_compiles == 3


def test_cache_is_bounded(mini: EmailRenderer) -> None:
    mini.cache_size = 2
    for sender in ("a", "b", "c"):
        mini.compile("hello", "en", {"sender": sender})
    mini.compile("hello", "en", {"sender": "c"})
    assert mini.mjml_compiles == 3
    mini.compile("hello", "en", {"sender": "a"})  # dropped, compiled again
    assert mini.mjml_compiles == 4


def test_fill_runs_no_mjml_and_is_fast(renderer: EmailRenderer) -> None:
    compiled = renderer.compile("confirm_subscription", "en", context_for("confirm_subscription"))
    started = time.perf_counter()
    bodies = {compiled.fill({"email": f"reader{i}@example.org"}).html for i in range(2000)}
    per_fill = (time.perf_counter() - started) / 2000
    assert len(bodies) == 2000
    assert renderer.mjml_compiles == 1
    # The target is well under 0.5 ms; the bound is loose so a busy machine does not flake.
    assert per_fill < 0.005


def test_translations_come_from_the_po_file_when_not_compiled(tmp_path: Path) -> None:
    folder = tmp_path / "xx" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Unsubscribe"\nmsgstr "Abmelden"\n',
        encoding="utf-8",
    )
    assert load_translations(tmp_path, "xx").gettext("Unsubscribe") == "Abmelden"
    assert load_translations(tmp_path, "zz").gettext("Unsubscribe") == "Unsubscribe"


def test_unknown_language_falls_back_to_english(renderer: EmailRenderer) -> None:
    email = renderer.render("staff_test", "zz", context_for("staff_test"), RECIPIENT)
    assert email.subject == "Test email from The Test Review"

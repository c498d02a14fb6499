"""Every email in every language, HTML and text, compared with stored snapshots.

The Russian snapshots change when translations land; that is expected. Update them all with:

    .venv/bin/python -m pytest tests/emails --snapshot-update -p no:cacheprovider
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from emails import EmailRenderer
from tests.emails.conftest import EMAIL_CONTEXTS, RECIPIENT, context_for, recipient_for


class HtmlSnapshot(SingleFileSnapshotExtension):
    """One .html file per snapshot, so a reviewer can open it in a browser."""

    file_extension = "html"
    _write_mode = WriteMode.TEXT


class TextSnapshot(SingleFileSnapshotExtension):
    """One .txt file per snapshot."""

    file_extension = "txt"
    _write_mode = WriteMode.TEXT


CASES = [(name, language) for name in sorted(EMAIL_CONTEXTS) for language in ("en", "ru")]


@pytest.mark.parametrize(("name", "language"), CASES)
def test_html(
    renderer: EmailRenderer, snapshot: SnapshotAssertion, name: str, language: str
) -> None:
    email = renderer.render(name, language, context_for(name), recipient_for(name))
    assert email.html == snapshot(extension_class=HtmlSnapshot)


@pytest.mark.parametrize(("name", "language"), CASES)
def test_text(
    renderer: EmailRenderer, snapshot: SnapshotAssertion, name: str, language: str
) -> None:
    email = renderer.render(name, language, context_for(name), recipient_for(name))
    assert f"Subject: {email.subject}\n\n{email.text}" == snapshot(extension_class=TextSnapshot)


def test_logo_replaces_the_name_in_the_header(renderer: EmailRenderer) -> None:
    context = context_for("staff_test", logo_url="https://readers.review.example/logo")
    email = renderer.render("staff_test", "en", context, RECIPIENT)
    assert 'src="https://readers.review.example/logo"' in email.html
    assert 'alt="The Test Review"' in email.html

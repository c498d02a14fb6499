"""Address normalisation: one spelling per mailbox; the fast path agrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.core.addresses import InvalidEmail, normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann.Lee@Example.COM ", "ann.lee@example.com"),
        ("o'brien+news@mail.example.org", "o'brien+news@mail.example.org"),
        ("ПОЧТА@пример.рф", "почта@пример.рф"),
    ],
)
def test_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plain",
        "a@b",
        "a..b@example.com",
        ".a@example.com",
        "a@-example.com",
        "a@example.test",
        "a@localhost",
        "a@example.local",
        "a@" + "b" * 250 + ".com",
        "a\x00b@example.com",
        "a b@example.com",
        "@example.com",
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(raw)


def _validator(address: str) -> str | None:
    try:
        return validate_email(
            address.strip().lower(), check_deliverability=False
        ).normalized.lower()
    except (EmailNotValidError, ValueError, UnicodeError):
        return None


def _ours(address: str) -> str | None:
    try:
        return normalise_email(address)
    except InvalidEmail:
        return None


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.emails(), st.text(alphabet="abcXYZ.-_+@0123456789", max_size=40)))
def test_fast_path_never_disagrees_with_email_validator(address: str) -> None:
    assert _ours(address) == _validator(address)

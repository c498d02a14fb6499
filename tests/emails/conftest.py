"""Fixtures for the email package: a renderer on the real templates and catalogues, and a
DKIM key with its DNS record."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from emails import TEMPLATES_DIR, EmailRenderer

TRANSLATIONS_DIR = Path(__file__).resolve().parents[2] / "webapp" / "translations"

#: The fixed context every snapshot is rendered with.
SITE_CONTEXT: dict[str, Any] = {
    "publication_name": "The Test Review",
    "tagline": "Independent analysis",
    "site_url": "https://review.example",
    "base_url": "https://readers.review.example",
    "logo_url": None,
    "primary_color": "#1d4ed8",
    "accent_color": "#b91c1c",
    "postal_address": "1 Press Street\n10115 Berlin",
}

#: Per-email values, as the features pass them.
EMAIL_CONTEXTS: dict[str, dict[str, Any]] = {
    "confirm_subscription": {
        "confirm_url": "https://readers.review.example/subscribe/confirm/TOKEN?x=1&y=2",
        "link_valid_hours": 72,
    },
    "subscription_confirmed": {
        "preferences_url": "https://readers.review.example/preferences/PREFS",
        "unsubscribe_url": "https://readers.review.example/unsubscribe/UNSUB",
    },
    "manage_subscription": {
        "preferences_url": "https://readers.review.example/preferences/PREFS",
        "link_valid_hours": 72,
    },
    "staff_test": {"requested_by": "editor@review.example"},
    "donation_receipt": {
        "frequency": "month",
        "is_renewal": False,
        "has_name": True,
        "has_campaign": True,
        "has_fee": True,
        "payment_method": "",
        "manage_url": "https://readers.review.example/en/donate/manage",
    },
    "donation_payment_failed": {
        "donor_name": "Ann Reader",
        "amount": "€10",
        "frequency": "month",
        "update_card_url": "https://readers.review.example/en/donate/manage/TOKEN",
        "next_attempt_on": "4 October 2026",
    },
    "donor_access": {
        "manage_url": "https://readers.review.example/en/donate/manage/TOKEN",
        "link_valid_hours": 72,
    },
    "donation_plan_changed": {
        "donor_name": "",
        "change": "amount",
        "amount": "€15",
        "frequency": "month",
        "manage_url": "https://readers.review.example/en/donate/manage",
    },
    "yearly_statement": {
        "donor_name": "Ann Reader",
        "year": 2025,
        "gifts": [
            {
                "date": "1 March 2025",
                "amount": "€10",
                "kind": "Monthly gift",
                "receipt_number": "R-000007",
                "campaign": "",
            },
            {
                "date": "5 May 2025",
                "amount": "$25",
                "kind": "One-time gift",
                "receipt_number": "R-000031",
                "campaign": "Keep us independent",
            },
        ],
        "totals": ["€10", "$25"],
        "manage_url": "https://readers.review.example/en/donate/manage",
    },
}

_ARTICLE = {
    "title": "Why the river towns are emptying",
    "url": "https://review.example/en/river-towns?utm_source=newsletter&utm_medium=email",
    "lede": "Three towns, one dam and a decade of quiet departures.",
    "author": "Ann Writer",
    "section": "Analysis",
    "image_url": "https://review.example/img/river.jpg",
    "date": "24 November",
}

EMAIL_CONTEXTS["digest"] = {
    "issue_subject": "The Test Review: the week of 26 November 2026",
    "intro_paragraphs": ["A short intro.", "And a second paragraph."],
    "top": [_ARTICLE, {**_ARTICLE, "title": "Second most read", "image_url": ""}],
    "new": [{**_ARTICLE, "title": "New this week", "author": "", "section": ""}],
    "archive_url": "https://readers.review.example/en/digest/7",
}

RECIPIENT = {"email": "reader@example.org"}

#: Per-recipient values of the emails that have them (filled in after the one compile).
RECIPIENT_FIELDS: dict[str, dict[str, str]] = {
    "donation_receipt": {
        "donor_name": "Ann Reader",
        "amount": "€10",
        "paid_on": "1 October 2026",
        "receipt_number": "R-000123",
        "campaign_title": "Keep us independent",
        "fee_covered": "€0.42",
    },
    "digest": {
        "greeting": "Hello, Ann!",
        "support_html": Markup(
            '<p style="margin:0">'
            '<a href="https://readers.review.example/en/donate">Support us</a></p>'
        ),
        "support_text": "Support us: https://readers.review.example/en/donate",
        "unsubscribe_url": "https://readers.review.example/en/unsubscribe/UNSUB",
        "preferences_url": "https://readers.review.example/en/subscription/PREFS",
    },
}


def recipient_for(name: str) -> dict[str, str]:
    """The recipient values one email is filled with in the snapshot tests."""
    return {**RECIPIENT, **RECIPIENT_FIELDS.get(name, {})}


def context_for(name: str, **extra: Any) -> dict[str, Any]:
    """The fixed context of one email, with `extra` on top."""
    return {**SITE_CONTEXT, **EMAIL_CONTEXTS[name], **extra}


@pytest.fixture
def renderer() -> EmailRenderer:
    """A fresh renderer (empty cache, zero compiles) on the real templates."""
    return EmailRenderer(TEMPLATES_DIR, TRANSLATIONS_DIR)


@dataclass(frozen=True)
class DkimKey:
    """An RSA key made for the test run, and the DNS TXT record that publishes it."""

    #: The PEM private key file (what DKIM_PRIVATE_KEY_PATH points to).
    path: Path
    #: `v=DKIM1; k=rsa; p=...`, as published at `<selector>._domainkey.<domain>`.
    record: bytes

    def dnsfunc(self, selector: str, domain: str) -> Callable[..., bytes | None]:
        """A `dnsfunc` for `dkim.verify` that answers only for `selector` at `domain`."""
        expected = f"{selector}._domainkey.{domain}.".encode()

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            return self.record if name == expected else None

        return lookup


def make_rsa_key(path: Path, bits: int = 2048) -> DkimKey:
    """An RSA key made with openssl (Debian has it) at `path`, with its DNS record."""
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), str(bits)], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return DkimKey(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    """One 2048-bit key for the whole run (making one takes a moment)."""
    return make_rsa_key(tmp_path_factory.mktemp("dkim") / "dkim.pem")

"""The donation emails say what a donor needs to know, in both languages, beyond the snapshots:
the amount, the receipt number, the date, the working links (HTML and text), a one-line subject,
and the right wording for each kind of gift."""

from __future__ import annotations

import re
from typing import Any

import pytest

from emails import EmailRenderer, RenderedEmail
from tests.emails.conftest import RECIPIENT, context_for, recipient_for
from tests.helpers.html import links, urls_in_text

LANGUAGES = ("en", "ru")
MANAGE = "https://readers.review.example/en/donate/manage"
TOKEN_LINK = "https://readers.review.example/en/donate/manage/TOKEN"


def render(
    renderer: EmailRenderer,
    name: str,
    language: str,
    recipient: dict[str, str] | None = None,
    **extra: Any,
) -> RenderedEmail:
    """One email with the fixed test context, `extra` on top."""
    values = {**recipient_for(name), **(recipient or {})}
    return renderer.render(name, language, context_for(name, **extra), values)


def assert_basics(email: RenderedEmail, *facts: str, link: str) -> None:
    """Facts every donation email must carry in both parts, and a link that works in both."""
    assert email.subject and "\n" not in email.subject and "\r" not in email.subject
    for fact in facts:
        assert fact in email.html, fact
        assert fact in email.text, fact
    assert link in links(email.html)
    assert link in urls_in_text(email.text)


def visible_text(html: str) -> str:
    """The words of an HTML email, tags and head dropped (for "is not shown" checks)."""
    body = html[html.index("<body") :]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


# -- donation_receipt -----------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_receipt_carries_the_gift_and_the_manage_link(
    renderer: EmailRenderer, language: str
) -> None:
    email = render(renderer, "donation_receipt", language)
    assert_basics(
        email,
        "€10",
        "R-000123",
        "1 October 2026",
        "Keep us independent",
        "€0.42",
        "Ann Reader",
        link=MANAGE,
    )
    if language != "en":
        assert email.subject != render(renderer, "donation_receipt", "en").subject


def test_receipt_wording_in_english(renderer: EmailRenderer) -> None:
    email = render(renderer, "donation_receipt", "en")
    assert email.subject == "Thank you for your gift to The Test Review"
    for part in (email.text, visible_text(email.html)):
        assert "Thank you, Ann Reader!" in part
        assert "it is your receipt" in part
        assert "Monthly" in part
        assert "renew every month" in part
        assert "Change or cancel my gift" in part


@pytest.mark.parametrize(
    ("frequency", "subject"),
    [
        ("month", "Receipt for your monthly gift to The Test Review"),
        ("year", "Receipt for your yearly gift to The Test Review"),
    ],
)
def test_renewal_receipt_subject_names_the_frequency(
    renderer: EmailRenderer, frequency: str, subject: str
) -> None:
    email = render(renderer, "donation_receipt", "en", frequency=frequency, is_renewal=True)
    assert email.subject == subject
    assert "went through" in email.text
    assert f"renew every {frequency}" in email.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_renewal_subjects_are_translated(renderer: EmailRenderer, language: str) -> None:
    first = render(renderer, "donation_receipt", language)
    renewal = render(renderer, "donation_receipt", language, is_renewal=True)
    yearly = render(renderer, "donation_receipt", language, is_renewal=True, frequency="year")
    assert len({first.subject, renewal.subject, yearly.subject}) == 3


def test_one_time_receipt_has_no_renewal_and_no_cancel_button(renderer: EmailRenderer) -> None:
    email = render(renderer, "donation_receipt", "en", frequency="one_time")
    for part in (email.text, visible_text(email.html)):
        assert "One-time" in part
        assert "renew" not in part
        assert "Change or cancel" not in part
        assert "See all your gifts:" in part
    assert MANAGE in links(email.html) and MANAGE in urls_in_text(email.text)


def test_receipt_leaves_out_what_the_gift_does_not_have(renderer: EmailRenderer) -> None:
    email = render(
        renderer,
        "donation_receipt",
        "en",
        recipient={"donor_name": "", "campaign_title": "", "fee_covered": ""},
        has_name=False,
        has_campaign=False,
        has_fee=False,
    )
    for part in (email.text, visible_text(email.html)):
        assert "Thank you!" in part
        assert "Campaign" not in part
        assert "Card fee" not in part
        assert "Paid by" not in part
        assert "R-000123" in part and "€10" in part


def test_offline_receipt_names_the_payment_method(renderer: EmailRenderer) -> None:
    email = render(
        renderer, "donation_receipt", "en", frequency="one_time", payment_method="bank transfer"
    )
    assert "Paid by: bank transfer" in email.text
    assert "bank transfer" in visible_text(email.html)


def test_receipt_escapes_the_donor_values_in_html(renderer: EmailRenderer) -> None:
    email = render(
        renderer,
        "donation_receipt",
        "en",
        recipient={"donor_name": "<Zoë & Co>", "campaign_title": "Rent & <b>ink</b>"},
    )
    assert "&lt;Zoë &amp; Co&gt;" in email.html and "<Zoë" not in email.html
    assert "<b>ink</b>" not in email.html
    assert "Thank you, <Zoë & Co>!" in email.text
    assert "Campaign: Rent & <b>ink</b>" in email.text


def test_receipts_of_one_kind_share_one_compile(renderer: EmailRenderer) -> None:
    """A burst of renewals runs MJML once; each receipt still shows its own values."""
    compiled = renderer.compile("donation_receipt", "en", context_for("donation_receipt"))
    first = compiled.fill(recipient_for("donation_receipt"))
    second = compiled.fill(
        {**recipient_for("donation_receipt"), "receipt_number": "R-000124", "amount": "€25"}
    )
    assert renderer.mjml_compiles == 1
    assert "R-000123" in first.text and "R-000124" not in first.text
    assert "R-000124" in second.html and "€25" in second.text


# -- donation_payment_failed -------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_payment_failed_links_to_the_card_update(renderer: EmailRenderer, language: str) -> None:
    email = render(renderer, "donation_payment_failed", language)
    assert_basics(email, "€10", "4 October 2026", "Ann Reader", link=TOKEN_LINK)
    # The button and the copy-paste fallback both point at the self-service page.
    assert links(email.html).count(TOKEN_LINK) == 2


def test_payment_failed_wording(renderer: EmailRenderer) -> None:
    email = render(renderer, "donation_payment_failed", "en")
    assert email.subject == "Your gift to The Test Review did not go through"
    for part in (email.text, visible_text(email.html)):
        assert "monthly gift of €10" in part
        assert "We will try again on 4 October 2026." in part
        assert "Update my card" in part


def test_payment_failed_without_retry_date_and_yearly(renderer: EmailRenderer) -> None:
    email = render(renderer, "donation_payment_failed", "en", next_attempt_on="", frequency="year")
    for part in (email.text, visible_text(email.html)):
        assert "yearly gift of €10" in part
        assert "try again" not in part


# -- donor_access ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_donor_access_gives_the_link_and_its_validity(
    renderer: EmailRenderer, language: str
) -> None:
    email = render(renderer, "donor_access", language)
    assert_basics(email, "72", link=TOKEN_LINK)
    assert links(email.html).count(TOKEN_LINK) == 2


@pytest.mark.parametrize(
    ("language", "hours", "line"),
    [
        ("en", 1, "The link works for 1 hour."),
        ("en", 72, "The link works for 72 hours."),
        ("ru", 1, "Ссылка действует 1 час."),
        ("ru", 2, "Ссылка действует 2 часа."),
        ("ru", 72, "Ссылка действует 72 часа."),
        ("ru", 48, "Ссылка действует 48 часов."),
    ],
)
def test_donor_access_validity_is_pluralised(
    renderer: EmailRenderer, language: str, hours: int, line: str
) -> None:
    email = render(renderer, "donor_access", language, link_valid_hours=hours)
    assert line in email.text and line in email.html


def test_donor_access_wording(renderer: EmailRenderer) -> None:
    email = render(renderer, "donor_access", "en")
    assert email.subject == "Your gifts to The Test Review"
    assert "If you did not ask for this link, you can ignore this email" in email.text


# -- donation_plan_changed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "frequency", "subject", "sentence"),
    [
        ("amount", "month", "Your monthly gift has been updated", "monthly gift to"),
        ("amount", "year", "Your yearly gift has been updated", "yearly gift to"),
        ("canceled", "month", "Your monthly gift has been cancelled", "has been cancelled"),
        ("canceled", "year", "Your yearly gift has been cancelled", "has been cancelled"),
    ],
)
def test_plan_changed_subject_and_body(
    renderer: EmailRenderer, change: str, frequency: str, subject: str, sentence: str
) -> None:
    email = render(renderer, "donation_plan_changed", "en", change=change, frequency=frequency)
    assert email.subject == subject
    for part in (email.text, visible_text(email.html)):
        assert sentence in part and "€15" in part
        assert ("No further payments" in part) == (change == "canceled")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("change", ["amount", "canceled"])
def test_plan_changed_in_both_languages(
    renderer: EmailRenderer, language: str, change: str
) -> None:
    email = render(
        renderer, "donation_plan_changed", language, change=change, donor_name="Ann Reader"
    )
    assert_basics(email, "€15", "Ann Reader", link=MANAGE)
    updated = render(renderer, "donation_plan_changed", language, change="amount")
    cancelled = render(renderer, "donation_plan_changed", language, change="canceled")
    assert updated.subject != cancelled.subject


# -- yearly_statement --------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_yearly_statement_lists_every_gift_and_the_totals(
    renderer: EmailRenderer, language: str
) -> None:
    email = render(renderer, "yearly_statement", language)
    assert_basics(
        email,
        "2025",
        "R-000007",
        "R-000031",
        "1 March 2025",
        "5 May 2025",
        "Monthly gift",
        "One-time gift",
        "Keep us independent",
        "€10",
        "$25",
        link=MANAGE,
    )
    assert "2025" in email.subject
    # Gifts in an HTML table: one row per gift plus the header and the total row.
    assert email.html.count("R-0000") == 2
    assert len(re.findall(r"<tr[ >]", email.html)) >= 4


def test_yearly_statement_subject(renderer: EmailRenderer) -> None:
    email = render(renderer, "yearly_statement", "en")
    assert email.subject == "Your 2025 statement of gifts to The Test Review"


@pytest.mark.parametrize("language", LANGUAGES)
def test_yearly_statement_text_is_an_aligned_list(renderer: EmailRenderer, language: str) -> None:
    gifts = [
        {
            "date": "12 December 2025",
            "amount": "€1,200.00",
            "kind": "Yearly gift",
            "receipt_number": "R-001000",
            "campaign": "",
        },
        {
            "date": "1 May 2025",
            "amount": "€5.00",
            "kind": "Offline gift",
            "receipt_number": "R-12",
            "campaign": "Spring",
        },
    ]
    totals = ["€1,205.00", "$25.00"]
    email = render(renderer, "yearly_statement", language, gifts=gifts, totals=totals)
    lines = email.text.splitlines()
    rows = [next(line for line in lines if g["receipt_number"] in line) for g in gifts]
    # Receipt numbers and kinds start at the same place on every row...
    starts = {(row.index("R-"), row.index(g["kind"])) for row, g in zip(rows, gifts, strict=True)}
    assert len(starts) == 1
    # ...amounts and totals are right-aligned on one edge.
    edges = {row.index(g["amount"]) + len(g["amount"]) for row, g in zip(rows, gifts, strict=True)}
    for total in totals:
        line = next(line for line in lines if line.endswith(total))
        edges.add(len(line))
    assert len(edges) == 1
    assert "Offline gift (Spring)" in email.text


def test_yearly_statement_escapes_campaigns_in_html(renderer: EmailRenderer) -> None:
    gifts = [
        {
            "date": "1 May 2025",
            "amount": "€5",
            "kind": "One-time gift",
            "receipt_number": "R-1",
            "campaign": "Rent & <ink>",
        }
    ]
    email = render(renderer, "yearly_statement", "en", gifts=gifts, totals=["€5"])
    assert "Rent &amp; &lt;ink&gt;" in email.html and "<ink>" not in email.html
    assert "One-time gift (Rent & <ink>)" in email.text


def test_every_donation_email_goes_to_the_one_recipient(renderer: EmailRenderer) -> None:
    for name in (
        "donation_receipt",
        "donation_payment_failed",
        "donor_access",
        "donation_plan_changed",
        "yearly_statement",
    ):
        email = render(renderer, name, "en")
        assert RECIPIENT["email"] in email.text and RECIPIENT["email"] in email.html
        # No unsubscribe footer: these are transactional, one person each.
        assert "Unsubscribe" not in email.text

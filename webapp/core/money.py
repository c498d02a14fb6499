"""Money as an integer of minor units plus an ISO 4217 currency code, never a float.

Parsing what a reader typed and formatting for a language live here so every page, email
and CSV shows amounts the same way.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import format_currency, get_currency_precision

_AMOUNT = re.compile(r"^\d{1,9}([.,]\d{1,3})?$")


class InvalidAmount(ValueError):
    """Text that is not an amount of money in the given currency."""


def precision(currency: str) -> int:
    """How many decimal places `currency` has (2 for EUR, 0 for JPY)."""
    return int(get_currency_precision(currency.upper()))


def to_minor(text: str, currency: str) -> int:
    """Parse what a person typed ("10", "10.50", "10,50", "1 000") into minor units.

    Raises `InvalidAmount` for anything else, including more decimals than the currency has.
    """
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if not _AMOUNT.match(cleaned):
        raise InvalidAmount(text)
    places = precision(currency)
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern already rules it out
        raise InvalidAmount(text) from exc
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise InvalidAmount(text)
    return int(minor)


def to_major(amount_minor: int, currency: str) -> Decimal:
    """The amount in major units as an exact `Decimal` (for CSV columns and forms)."""
    return Decimal(amount_minor).scaleb(-precision(currency))


def format_money(amount_minor: int, currency: str, language: str = "en") -> str:
    """The amount for people reading `language`, e.g. "€10.00" or "10,00 €".

    Whole amounts drop the decimals ("€10"), as donation pages and receipts usually do.
    """
    major = to_major(amount_minor, currency)
    if major == major.to_integral_value():
        pattern = Locale.parse(language).currency_formats["standard"].pattern
        whole = re.sub(r"\.0+", "", pattern)
        return format_currency(
            major, currency.upper(), format=whole, locale=language, currency_digits=False
        )
    return format_currency(major, currency.upper(), locale=language)


def format_plain(amount_minor: int, currency: str) -> str:
    """Machine-friendly "10.50" (dot, no symbol) for CSV files and form values."""
    return f"{to_major(amount_minor, currency):f}"

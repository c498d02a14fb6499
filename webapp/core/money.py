"""Money as an integer of minor units plus an ISO 4217 currency code, never a float.

Parsing what a reader typed and formatting for a language live here so every page, email
and CSV shows amounts the same way.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel import Locale
from babel.numbers import (
    NumberFormatError,
    format_currency,
    get_currency_precision,
    parse_decimal,
)

#: What an amount may look like before Babel reads it: digits and the marks people use.
_AMOUNT_CHARACTERS = re.compile(r"^[\d.,]{1,15}$")
#: One mark followed by one or two digits can only be a decimal mark, in any language
#: ("10,50" on the English page, "10.50" on the Russian one).
_PLAIN_DECIMAL = re.compile(r"^(\d{1,9})[.,](\d{1,2})$")
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'")


class InvalidAmount(ValueError):
    """Text that is not an amount of money in the given currency, or that could be read
    as more than one amount ("1.000" on an English page: one euro or a thousand?)."""


def precision(currency: str) -> int:
    """How many decimal places `currency` has (2 for EUR, 0 for JPY)."""
    return int(get_currency_precision(currency.upper()))


def to_minor(text: str, currency: str, language: str = "en") -> int:
    """Parse what a person typed on a page in `language` into minor units.

    The language's own marks are read by Babel ("2,500" is 2500 in English, "2 500,50" is
    2500.50 in Russian); a single mark followed by one or two digits is a decimal mark
    whatever the language. Anything else raises `InvalidAmount`, rather than quietly
    becoming another amount: more decimals than the currency has ("2,500" on the Russian
    page, "1.000" on the English one), misplaced group marks, letters.
    """
    cleaned = text.strip().translate(_SPACES)
    if not _AMOUNT_CHARACTERS.match(cleaned):
        raise InvalidAmount(text)
    plain = _PLAIN_DECIMAL.match(cleaned)
    if plain:
        value = Decimal(f"{plain.group(1)}.{plain.group(2)}")
    elif cleaned.isdigit():
        value = Decimal(cleaned)
    else:
        try:
            value = parse_decimal(cleaned, locale=language, strict=True)
        except (NumberFormatError, ValueError) as exc:
            raise InvalidAmount(text) from exc
    places = precision(currency)
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or -exponent > places or value > 10**9:
        raise InvalidAmount(text)
    return int(value.scaleb(places))


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

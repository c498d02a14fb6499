"""The one CSV writer of every export: no cell is run as a formula by a spreadsheet.

Names, notes, sources and addresses come from the public (the signup and donation forms)
or from files others made. A spreadsheet program opening our CSV runs a cell that starts
with `=`, `+`, `-` or `@` as a formula (and tab or CR can hide such a start), so
`=HYPERLINK("http://evil","x")` as someone's name would become a link in the staff
member's spreadsheet. OWASP's rule applies to every text cell: one starting with `=`,
`+`, `-`, `@`, tab or CR is written with a single quote in front, which spreadsheets
read as "this is text" and do not show.

Numbers we write from numbers are exempt: an `int`, `float`, `Decimal` or a `PlainNumber`
(a decimal string such as `-5.00` made from an amount) is written as it is, so money and
counts stay numbers a spreadsheet can add up. Such a cell is only digits, one dot and
perhaps a leading minus, which no spreadsheet runs as anything but a number. Text that
merely looks like a number (a name "-5") is text and gets the quote.

A text that already starts with quotes before one of those characters gets one quote more,
so `unescape_cell` (used when our own export is imported again) gives back exactly what
was written: `unescape_cell(escape_cell(text)) == text` for every text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, Any

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class PlainNumber(str):
    """A decimal number as text ("10.50", "-5.00"), written to CSV without escaping.

    Raises `ValueError` for anything else, so only real numbers are exempt from the rule.
    """

    def __new__(cls, text: str) -> PlainNumber:
        if not _PLAIN_NUMBER.fullmatch(text):
            raise ValueError(f"{text!r} is not a plain decimal number.")
        return super().__new__(cls, text)


#: What a cell may be: text (escaped as needed), a number (as is) or None (empty).
Cell = str | int | float | Decimal | None


def _starts_like_a_formula(text: str) -> bool:
    return text.lstrip("'")[:1] in FORMULA_STARTS


def escape_cell(value: Cell) -> str:
    """The cell as written: numbers as they are, text with a `'` in front when a
    spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, PlainNumber | int | float | Decimal):  # bool is an int: "True"
        return str(value)
    text = str(value)
    return "'" + text if _starts_like_a_formula(text) else text


def unescape_cell(text: str) -> str:
    """What `escape_cell` was given, from the text it wrote (for re-importing an export)."""
    if text.startswith("'") and _starts_like_a_formula(text[1:]):
        return text[1:]
    return text


class CsvWriter:
    """Writes rows of `Cell`s to a text stream (opened with `newline=""`) as CSV with CRLF
    line ends, every cell through `escape_cell`; with `bom`, a UTF-8 byte-order mark
    first, so spreadsheet programs read non-Latin names right."""

    def __init__(self, out: IO[str] | Any, *, bom: bool = False) -> None:
        if bom:
            out.write("\ufeff")
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, cells: Iterable[Cell]) -> None:
        """Write one row."""
        self._writer.writerow([escape_cell(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        """Write every row."""
        for row in rows:
            self.writerow(row)

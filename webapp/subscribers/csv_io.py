"""CSV export and import of the subscriber list.

Export writes our own format (`EXPORT_COLUMNS`), UTF-8 with a byte-order mark so
spreadsheet programs show non-Latin names right, through the one CSV writer of every export
(`webapp.core.csv_out`: a cell a spreadsheet would run as a formula gets a leading `'`).
Import reads our own format (so an export restores the list, statuses and dates included,
and names and addresses without that quote) and the exports of Substack, Ghost, Mailchimp
(subscribed, unsubscribed, cleaned and "all contacts") and listmonk, recognised by their
header row. Statuses come from values, never from which columns exist.

Import rules:

* The encoding is UTF-8 (with or without a byte-order mark), UTF-16/32 with a mark, or a
  legacy 8-bit encoding found by charset-normalizer; staff see it (and the first rows
  decoded) before the import starts, and can choose another.
* The delimiter is the one of , ; tab | that makes an email column of the header.
* Every record is checked; a refused one is reported with its line number and a reason
  (`RejectReason`) and the rest is imported. A malformed record (unterminated quote,
  wrong number of cells, NUL byte, over `MAX_RECORD_CHARS`) costs its first line only:
  reading resumes at the next physical line, so created + updated + unchanged + rejected
  is always the number of records (data lines, blank lines aside).
* A date in the future or unreadable is set to the import time and counted
  (`ImportJob.dates_clamped`).
* Addresses are deduplicated within the file (later copies are refused as duplicates)
  and against the list: people who are unsubscribed or bounced here stay so whatever the
  file says; an unsubscribe or bounce in the file is applied to people on the list;
  a pending signup confirmed in the file becomes confirmed; anything else is left alone.
* Rows are written in batches, each batch committed with the job's progress, so the
  staff page can show progress and a rerun of the same file skips what is in already.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from webapp.core.addresses import InvalidEmail, normalise_email
from webapp.core.clock import as_utc
from webapp.core.csv_out import CsvWriter, unescape_cell
from webapp.subscribers.models import (
    IMPORT_MOVES,
    EventActor,
    EventKind,
    ImportJob,
    ImportRejection,
    ImportStatus,
    Subscriber,
    SubscriberEvent,
    SubscriberSource,
    SubscriberStatus,
    SuppressionReason,
    change_import_status,
    change_status,
    pack_languages,
)

#: Columns of our own format, in export order.
EXPORT_COLUMNS = (
    "email",
    "name",
    "language",
    "languages",
    "status",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "paused",
    "suppressed",
    "suppression_reason",
)
#: Rows written per transaction during an import.
BATCH_SIZE = 2000
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


class CsvFormat(enum.StrEnum):
    """Import formats; `detect_format` tells them apart by header."""

    READERSHIP = "readership"
    SUBSTACK = "substack"
    GHOST = "ghost"
    MAILCHIMP = "mailchimp"
    LISTMONK = "listmonk"


class RejectReason(enum.StrEnum):
    """Why an import row was refused."""

    MISSING_EMAIL = "missing_email"
    BAD_EMAIL = "bad_email"
    DUPLICATE = "duplicate_in_file"
    UNKNOWN_STATUS = "unknown_status"
    UNKNOWN_LANGUAGE = "unknown_language"
    BAD_DATE = "bad_date"  # no longer given (dates are clamped); kept for old reports
    BAD_VALUE = "bad_value"
    NOT_SUBSCRIBED = "not_subscribed"
    MALFORMED = "malformed_row"
    UNTERMINATED_QUOTE = "unterminated_quote"
    WRONG_FIELD_COUNT = "wrong_field_count"
    NUL_BYTE = "nul_byte"
    TOO_LONG = "row_too_long"
    UNDECODABLE = "undecodable_text"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; `str()` says why, for staff."""


@dataclass(slots=True)
class ImportRow:
    """One valid row, mapped to our fields."""

    line: int
    email: str
    name: str = ""
    language: str = ""
    languages: list[str] = field(default_factory=list)
    status: SubscriberStatus = SubscriberStatus.CONFIRMED
    source: SubscriberSource = SubscriberSource.IMPORT
    created_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    opt_in_at: datetime | None = None
    paused: bool = False
    suppression_reason: str | None = None
    suppressed_at: datetime | None = None


class RowRejected(Exception):
    """Raised by row mappers; carries the reason."""

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


# --- Export -----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return as_utc(value).isoformat(timespec="seconds") if value is not None else ""


def export_subscribers(
    session: Session, out: IO[str], *, status: SubscriberStatus | None = None
) -> int:
    """Write the list (erased people left out) as CSV in our own format; returns the row
    count. `out` is a text stream opened with `newline=""`; a BOM is written first, and
    cells a spreadsheet would run as formulas are escaped (`webapp.core.csv_out`)."""
    writer = CsvWriter(out, bom=True)
    writer.writerow(EXPORT_COLUMNS)
    query = select(Subscriber).where(Subscriber.erased_at.is_(None)).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    count = 0
    for subscriber in session.scalars(query.execution_options(yield_per=1000)):
        writer.writerow(
            (
                subscriber.email,
                subscriber.name,
                subscriber.language,
                " ".join(subscriber.languages),
                subscriber.status.value,
                subscriber.source.value,
                _iso(subscriber.created_at),
                _iso(subscriber.confirmed_at),
                _iso(subscriber.unsubscribed_at),
                "true" if subscriber.paused else "false",
                "true" if subscriber.suppressed else "false",
                subscriber.suppression_reason or "",
            )
        )
        count += 1
    return count


# --- Reading the file -------------------------------------------------------------------

#: Byte-order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: The legacy encodings charset-normalizer chooses among. Left free, it calls a short
#: windows-1251 list "cp1125" and a KOI8-R one "cp932"; these are what Excel and old
#: exports write for the readers we serve (Russian, Western European).
_LEGACY_ENCODINGS = ("cp1251", "koi8_r", "cp1252", "cp866", "mac_cyrillic", "iso8859_5")
_DETECTION_BYTES = 1 << 20
#: A record longer than this is refused: no subscriber row needs it, and an unclosed quote
#: would otherwise read the rest of the file into one cell.
MAX_RECORD_CHARS = 1_000_000
#: A quoted cell may span lines (a note with line breaks), but not more than this many.
MAX_RECORD_LINES = 200
#: Undecodable bytes under `surrogateescape` (only a forced or legacy encoding has them).
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_LOOKS_LIKE_EMAIL = re.compile(r"^\s*\"?[^@\s\",;]+@[^@\s\",;]+\.[^@\s\",;]+\"?\s*$")


def check_encoding(name: str) -> str:
    """The canonical codec name for `name` ("utf-8" for UTF-8 with or without a BOM);
    raises `ImportFileError` for a name Python does not know or a non-text codec."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ImportFileError(f"Unknown text encoding “{name[:40]}”.") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ImportFileError(f"“{name[:40]}” is not a text encoding.")
    return "utf-8" if info.name in {"utf-8", "utf-8-sig"} else info.name


def detect_encoding(path: Path) -> str:
    """The file's text encoding: from its byte-order mark, else UTF-8 when every byte is
    valid UTF-8, else the best legacy 8-bit encoding by charset-normalizer."""
    with path.open("rb") as handle:
        head = handle.read(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        sample = b""
        try:
            while chunk := handle.read(1 << 20):
                if not sample:
                    sample = chunk[:_DETECTION_BYTES]
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    import charset_normalizer  # here: most files are UTF-8, and the CLI starts faster

    best = charset_normalizer.from_bytes(sample, cp_isolation=list(_LEGACY_ENCODINGS)).best()
    if best is None:
        raise ImportFileError(
            "The file’s text encoding cannot be recognised. Save it as “CSV UTF-8”, "
            "or choose its encoding."
        )
    return check_encoding(best.encoding)


def _count_lines(path: Path) -> int:
    """Physical lines in the file (an estimate of its rows, for the progress bar)."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


def _normalise_header(cell: str) -> str:
    return cell.strip().strip("\ufeff").strip().lower()


_EMAIL_COLUMNS = ("email", "email address", "email_address", "e-mail")


def detect_format(header: Sequence[str]) -> CsvFormat | None:
    """The export a header row comes from, or None when it has no email column."""
    names = {_normalise_header(cell) for cell in header}
    if not names & set(_EMAIL_COLUMNS):
        return None
    if {"optin_time", "confirm_time", "leid", "euid", "member_rating"} & names:
        return CsvFormat.MAILCHIMP
    if "active_subscription" in names or "email_disabled" in names:
        return CsvFormat.SUBSTACK
    if {"subscribed_to_emails", "subscribed"} & names or {
        "complimentary_plan",
        "stripe_customer_id",
    } <= names:
        return CsvFormat.GHOST
    if "attributes" in names:
        return CsvFormat.LISTMONK
    if "email address" in names:
        return CsvFormat.MAILCHIMP  # a trimmed Mailchimp export: its address column
    return CsvFormat.READERSHIP


class _Dialect(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    doublequote = True
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL
    strict = True


def _split_header(line: str) -> tuple[str, list[str]]:
    """(delimiter, cells) of the header line: the delimiter among , ; tab | that shows an
    email column, splitting into the most columns (a name may hold the others)."""
    found: list[tuple[int, str, list[str]]] = []
    for delimiter in (",", ";", "\t", "|"):
        try:
            cells = next(csv.reader([line], delimiter=delimiter, strict=False), [])
        except csv.Error:
            continue
        if detect_format(cells) is not None:
            found.append((len(cells), delimiter, cells))
    if not found:
        raise ImportFileError(
            "No email column found in the header row "
            "(expected “email” or Mailchimp’s “Email Address”)."
        )
    _, delimiter, cells = max(found, key=lambda item: item[0])
    return delimiter, cells


@dataclass(slots=True)
class Record:
    """One record of the file: its first physical line and its cells, or why it was
    refused (`problem`) with the start of its text (`raw`) for the report."""

    line: int
    cells: list[str] | None
    problem: RejectReason | None = None
    raw: str = ""


def _report_text(text: str) -> str:
    """The start of a refused record, storable: no control characters, and a byte that
    could not be decoded shown as U+FFFD."""
    return _clean(_UNDECODABLE.sub("\ufffd", text[:300]), 300)


class _Lines:
    """Physical lines (any of CR, LF, CRLF ends) with their numbers; lines read ahead can
    be handed back, so reading resumes right after a refused record's first line."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._back: list[str] = []
        self.number = 0

    def take(self) -> str | None:
        line = self._back.pop() if self._back else next(self._lines, None)
        if line is not None:
            self.number += 1
        return line

    def give_back(self, lines: Sequence[str]) -> None:
        self._back.extend(reversed(lines))
        self.number -= len(lines)


class _RecordReader:
    """Splits the lines after the header into records.

    A line without a quote is split as it is (most lines; csv would do the same, slower).
    A line with an open quote takes the following lines until the quote closes; that
    record is kept only when it closes within `MAX_RECORD_LINES`/`MAX_RECORD_CHARS`, has
    the header's width, and no line it swallowed looks like a row of its own. Otherwise
    its first line is refused and reading resumes at the next physical line: an
    unterminated quote costs one row, reported, never the rows after it.
    """

    def __init__(
        self,
        lines: _Lines,
        dialect: type[csv.Dialect],
        width: int,
        email_index: int,
        check_decoding: bool,
    ) -> None:
        self.lines = lines
        self.dialect = dialect
        self.delimiter = str(dialect.delimiter)
        self.width = width
        self.email_index = email_index
        self.check_decoding = check_decoding

    def __iter__(self) -> Iterator[Record]:
        lines = self.lines
        while True:
            try:
                line = lines.take()
            except UnicodeError:
                # Past what surrogateescape can carry (a broken UTF-16 pair): the rest of
                # the file is one refused record, reported, not a crash.
                yield Record(
                    lines.number + 1,
                    None,
                    RejectReason.UNDECODABLE,
                    "(the rest of the file cannot be decoded)",
                )
                return
            if line is None:
                return
            start = lines.number
            if '"' not in line:
                record = self._record(start, line.rstrip("\r\n"), None)
            else:
                record = self._quoted(start, line)
            if record is not None:
                yield record

    def _record(self, start: int, text: str, cells: list[str] | None) -> Record | None:
        """The record for `text` (cells already parsed for quoted text); None if blank."""
        problem = None
        if len(text) > MAX_RECORD_CHARS:
            problem = RejectReason.TOO_LONG
        elif "\x00" in text:
            problem = RejectReason.NUL_BYTE
        elif self.check_decoding and _UNDECODABLE.search(text):
            problem = RejectReason.UNDECODABLE
        else:
            if cells is None:
                cells = text.split(self.delimiter)
            if all(not cell.strip() for cell in cells):
                return None  # a blank line, or only separators: not a row
            if len(cells) != self.width:
                # A trailing empty cell or two (a stray separator) is harmless.
                if len(cells) < self.width or any(c.strip() for c in cells[self.width :]):
                    problem = RejectReason.WRONG_FIELD_COUNT
                else:
                    del cells[self.width :]
        if problem is not None:
            return Record(start, None, problem, _report_text(text))
        return Record(start, cells)

    def _quoted(self, start: int, first: str) -> Record | None:
        parts = [first]
        quotes = first.count('"')
        size = len(first)
        while quotes % 2 and len(parts) < MAX_RECORD_LINES and size <= MAX_RECORD_CHARS:
            more = self.lines.take()
            if more is None:
                break
            parts.append(more)
            quotes += more.count('"')
            size += len(more)
        problem = None
        cells: list[str] | None = None
        if size > MAX_RECORD_CHARS:
            problem = RejectReason.TOO_LONG
        elif quotes % 2 or any(self._looks_like_a_row(part) for part in parts[1:]):
            problem = RejectReason.UNTERMINATED_QUOTE
        elif "\x00" in first or (len(parts) > 1 and any("\x00" in part for part in parts)):
            problem = RejectReason.NUL_BYTE
        else:
            try:
                reader = csv.reader(parts, self.dialect)
                cells = next(reader)
                if reader.line_num != len(parts):
                    problem = RejectReason.MALFORMED
            except (csv.Error, StopIteration):
                problem = RejectReason.MALFORMED
        if problem is not None:
            self.lines.give_back(parts[1:])
            return Record(start, None, problem, _report_text(first))
        return self._record(start, "".join(parts).rstrip("\r\n"), cells)

    def _looks_like_a_row(self, line: str) -> bool:
        """A swallowed line that is a row of its own: no quote, the header's width, an
        address where the email column is."""
        if '"' in line:
            return False
        cells = line.rstrip("\r\n").split(self.delimiter)
        return (
            len(cells) == self.width
            and _LOOKS_LIKE_EMAIL.match(cells[self.email_index]) is not None
        )


@dataclass
class _Source:
    """An open CSV file: its encoding, header, format and records."""

    format: CsvFormat
    encoding: str
    header: list[str]
    records: Iterator[Record]
    handle: IO[str]


def open_csv(path: Path, requested: str = "auto", encoding: str | None = None) -> _Source:
    """Open `path` for import in `encoding` (detected when None): check the format against
    the header (`ImportFileError`); the caller closes `handle`."""
    forced = bool(encoding)
    encoding = check_encoding(encoding) if encoding else detect_encoding(path)
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    # surrogateescape: a byte the encoding cannot decode refuses its row, not the file.
    handle = path.open("r", encoding=codec, errors="surrogateescape", newline="")
    try:
        lines = _Lines(iter(handle))
        try:
            first = lines.take()
        except UnicodeError as exc:
            raise ImportFileError(f"The file cannot be read as {encoding}: {exc}.") from exc
        if first is None or not first.strip("\ufeff\r\n \t"):
            raise ImportFileError("The file is empty.")
        # A header byte the encoding cannot decode shows as U+FFFD (pages must render it).
        delimiter, header = _split_header(_UNDECODABLE.sub("\ufffd", first.rstrip("\r\n")))
        detected = detect_format(header)
        assert detected is not None  # _split_header found an email column
        if requested != "auto" and requested != detected.value:
            # A readership-looking header may be a minimal list for any format, but a
            # recognisable export of another service must not be read as something else.
            if detected != CsvFormat.READERSHIP:
                raise ImportFileError(
                    f"The header looks like a {detected.value} export, not {requested}."
                )
            detected = CsvFormat(requested)
        names = [_normalise_header(cell) for cell in header]
        email_index = next(names.index(n) for n in _EMAIL_COLUMNS if n in names)
        dialect = type("Sniffed", (_Dialect,), {"delimiter": delimiter})
        records = _RecordReader(
            lines,
            dialect,
            len(header),
            email_index,
            # detect_encoding said UTF-8 only after decoding it all
            check_decoding=forced or encoding != "utf-8",
        )
        return _Source(detected, encoding, header, iter(records), handle)
    except BaseException:
        handle.close()
        raise


@dataclass
class FilePreview:
    """What staff see before an import starts: the encoding, format and first rows."""

    encoding: str
    detected_encoding: bool
    format: CsvFormat
    header: list[str]
    rows: list[Record]


def preview_csv(
    path: Path, *, requested_format: str = "auto", encoding: str | None = None, rows: int = 5
) -> FilePreview:
    """The first `rows` records of `path` decoded as the import will read them; raises
    `ImportFileError` when the file cannot be imported at all."""
    source = open_csv(path, requested_format, encoding)
    with source.handle:
        first = [record for _, record in zip(range(rows), source.records, strict=False)]
    return FilePreview(source.encoding, encoding is None, source.format, source.header, first)


# --- Row mapping ------------------------------------------------------------------------


_STATUSES = {status.value: status for status in SubscriberStatus}
_SOURCES = {source.value: source for source in SubscriberSource}
_IMPORTABLE_REASONS = frozenset(
    reason.value for reason in SuppressionReason if reason != SuppressionReason.ERASED
)
#: Control characters (NUL included, which PostgreSQL text cannot hold) become spaces.
_CONTROL_TO_SPACE = {code: " " for code in [*range(32), 127]}
#: Go's `time.Time.String()` (listmonk's export): "2024-01-02 15:04:05.123 +0530 IST".
_GO_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)? ([+-]\d\d)(\d\d)(?: [A-Za-z0-9+-]+)?$"
)
#: One-column names, and first/last name columns, as exports spell them.
_NAME_COLUMNS = ("name", "full name", "full_name", "fullname", "display name", "display_name")
_FIRST_NAME_COLUMNS = ("first name", "first_name", "firstname", "fname", "given name")
_LAST_NAME_COLUMNS = ("last name", "last_name", "lastname", "lname", "surname", "family name")
#: Mailchimp's status, where an export carries it as a column.
_MAILCHIMP_STATUS_COLUMNS = ("status", "email marketing status", "email marketing")
_MAILCHIMP_STATUSES = {
    "subscribed": SubscriberStatus.CONFIRMED,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED,
    "cleaned": SubscriberStatus.BOUNCED,
    "pending": SubscriberStatus.PENDING,
}
#: Mailchimp contacts who never subscribed to marketing email: not readers to import.
_MAILCHIMP_NOT_SUBSCRIBED = frozenset(
    {"non-subscribed", "nonsubscribed", "transactional", "archived"}
)
#: listmonk's subscriber statuses: "blocklisted" (and "disabled") get no email.
_LISTMONK_STATUSES = {
    "": SubscriberStatus.CONFIRMED,
    "enabled": SubscriberStatus.CONFIRMED,
    "disabled": SubscriberStatus.UNSUBSCRIBED,
    "blocklisted": SubscriberStatus.UNSUBSCRIBED,
}


def _parse_bool(value: str) -> bool:
    text = value.lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowRejected(RejectReason.BAD_VALUE)


def _clean(value: str, limit: int) -> str:
    """`value` without control characters or runs of spaces, at most `limit` long."""
    if not value.isprintable():
        value = value.translate(_CONTROL_TO_SPACE)
    if "  " in value or not value.isprintable():
        value = " ".join(value.split())
    return value.strip()[:limit]


def _first_index(index: dict[str, int], names: Sequence[str]) -> int:
    return next((index[name] for name in names if name in index), -1)


class _Mapper:
    """Turns a row of one format into an `ImportRow`; counts the rows whose dates were
    clamped to the import time (`clamped_rows`)."""

    def __init__(
        self,
        fmt: CsvFormat,
        header: Sequence[str],
        languages: Sequence[str],
        default: str,
        now: datetime,
    ) -> None:
        self.format = fmt
        self.index = {_normalise_header(name): i for i, name in enumerate(header)}
        # Rows have the header's width plus one empty cell at the end (`pad`), so a column
        # the file lacks (position -1) reads as "".
        self.ix: dict[str, int] = defaultdict(lambda: -1, self.index)
        self.readership_columns = tuple(
            self.ix[name]
            for name in (
                "language",
                "languages",
                "status",
                "source",
                "created_at",
                "confirmed_at",
                "unsubscribed_at",
                "paused",
                "suppressed",
                "suppression_reason",
            )
        )
        self.name_columns = (
            _first_index(self.index, _NAME_COLUMNS),
            _first_index(self.index, _FIRST_NAME_COLUMNS),
            _first_index(self.index, _LAST_NAME_COLUMNS),
        )
        self.mailchimp_status_column = _first_index(self.index, _MAILCHIMP_STATUS_COLUMNS)
        self.languages = tuple(languages)
        self.default_language = default
        self.now = now
        self.clamped_rows = 0
        self._clamped = False
        self.email_column = next(name for name in _EMAIL_COLUMNS if name in self.index)
        self.map_format = getattr(self, f"_map_{fmt.value}")

    def cell(self, cells: Sequence[str], name: str) -> str:
        """The stripped value of column `name` in a padded row ("" when absent)."""
        return cells[self.ix[name]].strip()

    def pad(self, cells: Sequence[str]) -> list[str]:
        """`cells` plus the empty cell that missing columns read."""
        padded = list(cells)
        padded.append("")
        return padded

    def language(self, value: str) -> str:
        code = value.strip().lower()
        if not code:
            return self.default_language
        if code not in self.languages:
            raise RowRejected(RejectReason.UNKNOWN_LANGUAGE)
        return code

    def name(self, cells: Sequence[str]) -> str:
        """The one name column when it has a value, else first and last name joined."""
        whole, first, last = self.name_columns
        name = cells[whole].strip()
        if not name:
            name = f"{cells[first].strip()} {cells[last].strip()}"
        if self.format == CsvFormat.READERSHIP:
            name = unescape_cell(name)
        return _clean(name, 200)

    def date(self, text: str) -> datetime | None:
        """An ISO 8601 time (a trailing Z or " UTC", or Go's format, allowed) as aware UTC;
        None when empty. A date in the future or unreadable becomes the import time (a
        reader's history cannot start later than now) and is counted."""
        text = text.strip()
        if not text:
            return None
        go_time = _GO_TIME.match(text)
        if go_time:
            text = f"{go_time[1]}{(go_time[2] or '')[:7]}{go_time[3]}:{go_time[4]}"
        try:
            parsed = datetime.fromisoformat(text.replace(" UTC", "").replace("Z", "+00:00"))
        except ValueError:
            self._clamped = True
            return self.now
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if parsed > self.now:
            self._clamped = True
            return self.now
        return parsed

    def map(self, line: int, cells: Sequence[str]) -> ImportRow:
        cells = self.pad(cells)
        raw_email = self.cell(cells, self.email_column)
        if self.format == CsvFormat.READERSHIP:
            raw_email = unescape_cell(raw_email)  # our export quoted a leading "+", "=", …
        if not raw_email:
            raise RowRejected(RejectReason.MISSING_EMAIL)
        try:
            email = normalise_email(raw_email)
        except InvalidEmail:
            raise RowRejected(RejectReason.BAD_EMAIL) from None
        row = ImportRow(line=line, email=email)
        self._clamped = False
        self.map_format(row, cells)
        if self._clamped:
            self.clamped_rows += 1
        if not row.languages:
            row.languages = [row.language]
        if row.created_at is None:
            row.created_at = row.opt_in_at or row.confirmed_at
        return row

    def _map_readership(self, row: ImportRow, cells: Sequence[str]) -> None:
        # The hot path of a large import (and of restoring an export): plain indexing.
        (
            language,
            languages,
            status_,
            source,
            created_at,
            confirmed_at,
            unsubscribed_at,
            paused,
            suppressed,
            reason_,
        ) = self.readership_columns
        row.name = self.name(cells)
        row.language = self.language(cells[language])
        extra = cells[languages]
        if extra.strip():
            row.languages = [row.language] + [
                code
                for code in (self.language(c) for c in extra.replace(",", " ").split())
                if code != row.language
            ]
        status = _STATUSES.get(cells[status_].strip().lower() or "confirmed")
        if status is None:
            raise RowRejected(RejectReason.UNKNOWN_STATUS)
        row.status = status
        row.source = _SOURCES.get(cells[source].strip().lower(), SubscriberSource.IMPORT)
        row.created_at = self.date(cells[created_at])
        row.confirmed_at = self.date(cells[confirmed_at])
        row.unsubscribed_at = self.date(cells[unsubscribed_at])
        row.paused = _parse_bool(cells[paused].strip())
        if _parse_bool(cells[suppressed].strip()) or status == SubscriberStatus.BOUNCED:
            reason = cells[reason_].strip().lower()
            row.suppression_reason = (
                reason
                if reason in _IMPORTABLE_REASONS
                else (
                    SuppressionReason.HARD_BOUNCE.value
                    if status == SubscriberStatus.BOUNCED
                    else SuppressionReason.STAFF.value
                )
            )

    def _map_substack(self, row: ImportRow, cells: Sequence[str]) -> None:
        # `active_subscription` and `expiry` are about paying, not about email: only
        # `email_disabled` says the reader gets none.
        row.name = self.name(cells)
        row.language = self.language(self.cell(cells, "language"))
        created = self.date(self.cell(cells, "created_at"))
        row.created_at = row.opt_in_at = created
        if _parse_bool(self.cell(cells, "email_disabled")):
            row.status = SubscriberStatus.UNSUBSCRIBED
        else:
            row.status = SubscriberStatus.CONFIRMED
            row.confirmed_at = created

    def _map_ghost(self, row: ImportRow, cells: Sequence[str]) -> None:
        # A Ghost member gets newsletters unless `subscribed_to_emails` (older exports:
        # `subscribed`) is false or the member was deleted; `complimentary_plan`, tiers and
        # Stripe ids are about paid access and change nothing here.
        row.name = self.name(cells)
        language = self.cell(cells, "language")
        if not language:
            # Bilingual Ghost sites often keep the language as a label ("ru", "lang:ru").
            for label in self.cell(cells, "labels").split(","):
                code = label.strip().lower().removeprefix("lang:").removeprefix("language:")
                if code in self.languages:
                    language = code
                    break
        row.language = self.language(language)
        created = self.date(self.cell(cells, "created_at"))
        deleted = self.date(self.cell(cells, "deleted_at"))
        row.created_at = row.opt_in_at = created
        subscribed = self.cell(cells, "subscribed_to_emails") or self.cell(cells, "subscribed")
        if deleted is not None or not _parse_bool(subscribed or "true"):
            row.status = SubscriberStatus.UNSUBSCRIBED
            row.unsubscribed_at = deleted
        else:
            row.status = SubscriberStatus.CONFIRMED
            row.confirmed_at = created

    def _map_mailchimp(self, row: ImportRow, cells: Sequence[str]) -> None:
        # The status comes from values: a status column where the export has one, else a
        # CLEAN_TIME (cleaned: bounced) or an UNSUB_TIME (unsubscribed). The columns alone
        # say nothing: an "all contacts" export has UNSUB_* columns, empty for subscribers.
        row.name = self.name(cells)
        row.language = self.language(self.cell(cells, "language"))
        opt_in = self.date(self.cell(cells, "optin_time"))
        confirmed = self.date(self.cell(cells, "confirm_time"))
        row.opt_in_at = opt_in or confirmed
        row.created_at = opt_in or confirmed
        row.confirmed_at = confirmed or opt_in
        cleaned_at = self.date(self.cell(cells, "clean_time"))
        unsubscribed_at = self.date(self.cell(cells, "unsub_time"))
        stated = cells[self.mailchimp_status_column].strip().lower()
        if stated in _MAILCHIMP_NOT_SUBSCRIBED:
            raise RowRejected(RejectReason.NOT_SUBSCRIBED)
        if stated:
            if stated not in _MAILCHIMP_STATUSES:
                raise RowRejected(RejectReason.UNKNOWN_STATUS)
            row.status = _MAILCHIMP_STATUSES[stated]
        elif cleaned_at is not None:
            row.status = SubscriberStatus.BOUNCED
        elif unsubscribed_at is not None:
            row.status = SubscriberStatus.UNSUBSCRIBED
        else:
            row.status = SubscriberStatus.CONFIRMED
        if row.status == SubscriberStatus.UNSUBSCRIBED:
            row.unsubscribed_at = unsubscribed_at
        elif row.status == SubscriberStatus.BOUNCED:
            row.suppression_reason = SuppressionReason.HARD_BOUNCE.value
            row.suppressed_at = cleaned_at

    def _map_listmonk(self, row: ImportRow, cells: Sequence[str]) -> None:
        # listmonk's import file is email,name,attributes (JSON); its export adds uuid,
        # status, created_at, updated_at. The language may sit in the attributes.
        row.name = self.name(cells)
        attributes_text = self.cell(cells, "attributes")
        language = ""
        if attributes_text:
            try:
                attributes = json.loads(attributes_text)
            except ValueError:
                raise RowRejected(RejectReason.BAD_VALUE) from None
            if not isinstance(attributes, dict):
                raise RowRejected(RejectReason.BAD_VALUE)
            for key in ("language", "lang", "locale"):
                value = attributes.get(key)
                if isinstance(value, str) and value.strip().lower() in self.languages:
                    language = value
                    break
        row.language = self.language(language or self.cell(cells, "language"))
        status = _LISTMONK_STATUSES.get(self.cell(cells, "status").lower())
        if status is None:
            raise RowRejected(RejectReason.UNKNOWN_STATUS)
        row.status = status
        created = self.date(self.cell(cells, "created_at"))
        row.created_at = row.opt_in_at = created
        if status == SubscriberStatus.CONFIRMED:
            row.confirmed_at = created
        else:
            row.unsubscribed_at = self.date(self.cell(cells, "updated_at"))


# --- Import -----------------------------------------------------------------------------


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    processed: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


ProgressCallback = Callable[[int, int], None]


def start_import(
    session: Session,
    *,
    filename: str,
    requested_format: str,
    default_language: str,
    now: datetime,
    staff_user_id: int | None = None,
    requested_encoding: str = "auto",
) -> ImportJob:
    """Create the `ImportJob` row for a file about to be imported (the caller commits)."""
    job = ImportJob(
        status=ImportStatus.QUEUED,
        filename=filename[:255],
        requested_format=requested_format,
        requested_encoding=requested_encoding,
        default_language=default_language,
        staff_user_id=staff_user_id,
        created_at=now,
    )
    session.add(job)
    session.flush()
    return job


def run_import(
    session: Session,
    job: ImportJob,
    path: Path,
    *,
    languages: Sequence[str],
    now: Callable[[], datetime],
    progress: ProgressCallback | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportJob:
    """Import `path` into the list under `job`, committing after every batch.

    Unlike other services this one commits: progress lives in the job row and each batch
    is durable on its own. A file-level problem (encoding unknown, no email column) marks
    the job failed before any subscriber is written; an unexpected error marks it failed
    after rolling back the batch in flight. `progress(processed, total)` is called per
    batch; `total` is estimated from the line count until the end, then exact.
    """
    change_import_status(job, ImportStatus.RUNNING, now=now())
    session.commit()
    encoding = None if job.requested_encoding in ("", "auto") else job.requested_encoding
    try:
        source = open_csv(path, job.requested_format, encoding)
        job.total_rows = max(_count_lines(path) - 1, 0)
    except ImportFileError as exc:
        return _fail(session, job, str(exc), now())
    except OSError as exc:
        return _fail(session, job, f"The file cannot be read: {exc.strerror}.", now())
    job.detected_format = source.format.value
    job.encoding = source.encoding
    session.commit()
    try:
        with source.handle:
            _import_rows(session, job, source, languages, now, progress, batch_size)
    except Exception as exc:
        session.rollback()
        _fail(session, job, f"The import stopped: {type(exc).__name__}.", now())
        raise
    change_import_status(job, ImportStatus.FINISHED, now=now())
    session.commit()
    return job


def refuse_import(session: Session, job: ImportJob, message: str, at: datetime) -> ImportJob:
    """Mark a queued import failed with `message` for staff, before it reads a row."""
    return _fail(session, job, message, at)


def claim_import(
    session: Session, job: ImportJob, *, requested_encoding: str, now: datetime
) -> bool:
    """Claim a queued import for one run, with the encoding staff chose; False when it was
    claimed already (a second click on "Start" starts nothing)."""
    # Only an import that may still start running (by `IMPORT_MOVES`: a queued one) and
    # that no run has taken yet.
    claimed = session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job.id,
            ImportJob.status.in_(sorted(IMPORT_MOVES.sources(ImportStatus.RUNNING))),
            ImportJob.started_at.is_(None),
        )
        .values(started_at=now, requested_encoding=requested_encoding)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    session.refresh(job)
    return bool(claimed)


def _fail(session: Session, job: ImportJob, message: str, at: datetime) -> ImportJob:
    job.error = message
    change_import_status(job, ImportStatus.FAILED, now=at)
    session.commit()
    return job


def _import_rows(
    session: Session,
    job: ImportJob,
    source: _Source,
    languages: Sequence[str],
    now: Callable[[], datetime],
    progress: ProgressCallback | None,
    batch_size: int,
) -> None:
    default = job.default_language if job.default_language in languages else languages[0]
    mapper = _Mapper(source.format, source.header, languages, default, now())
    seen: set[str] = set()
    batch: list[ImportRow] = []
    counts = _Counts()
    for record in source.records:
        counts.processed += 1
        line, cells = record.line, record.cells
        if cells is None:
            problem = record.problem or RejectReason.MALFORMED
            counts.rejected.append((line, record.raw, problem.value))
        else:
            try:
                row = mapper.map(line, cells)
            except RowRejected as exc:
                counts.rejected.append(
                    (line, _clean(_email_cell(mapper, cells), 300), exc.reason.value)
                )
            else:
                if row.email in seen:
                    counts.rejected.append((line, row.email, RejectReason.DUPLICATE.value))
                else:
                    seen.add(row.email)
                    batch.append(row)
        if len(batch) >= batch_size or len(counts.rejected) >= batch_size:
            job.dates_clamped = mapper.clamped_rows
            _flush(session, job, batch, counts, now())
            batch = []
            if progress:
                progress(job.processed_rows, max(job.total_rows, job.processed_rows))
    job.dates_clamped = mapper.clamped_rows
    job.total_rows = counts.processed  # the estimate counted lines; now the records are known
    _flush(session, job, batch, counts, now())
    if progress:
        progress(job.processed_rows, job.total_rows)


def _email_cell(mapper: _Mapper, cells: Sequence[str]) -> str:
    return mapper.cell(mapper.pad(cells), mapper.email_column)


def _flush(
    session: Session, job: ImportJob, batch: list[ImportRow], counts: _Counts, now: datetime
) -> None:
    """Write one batch, its rejections and the job's counters; commit."""
    if batch:
        known = _ids_by_email(session, [row.email for row in batch])
        existing = (
            {
                s.email: s
                for s in session.scalars(
                    select(Subscriber).where(Subscriber.id.in_(list(known.values())))
                )
            }
            if known
            else {}
        )
        new_rows = [row for row in batch if row.email not in existing]
        for row in batch:
            subscriber = existing.get(row.email)
            if subscriber is None:
                continue
            if _merge_into(session, subscriber, row, job, now):
                counts.updated += 1
            else:
                counts.unchanged += 1
        _insert_new(session, new_rows, job, now)
        counts.created += len(new_rows)
    if counts.rejected:
        session.execute(
            insert(ImportRejection),
            [
                {"job_id": job.id, "line": line, "value": value, "reason": reason}
                for line, value, reason in counts.rejected
            ],
        )
    job.processed_rows = counts.processed
    job.created_count = counts.created
    job.updated_count = counts.updated
    job.unchanged_count = counts.unchanged
    job.rejected_count += len(counts.rejected)
    counts.rejected = []
    session.commit()


class _BulkInsert:
    """Bulk INSERTs straight to the driver for one table and column list.

    The bulk of an import is one plain INSERT per row; going through SQLAlchemy's
    per-value parameter processing made that several times slower than the bare
    `executemany` it is measured against. Callers pass values the driver takes as they
    are: strings (enum values), ints, bools, and datetimes already passed through
    `_time_converter` (SQLite stores them as text in SQLAlchemy's format).

    psycopg's `executemany` pipelines the rows and is the fastest way in; sqlite3's steps
    one statement per row, so there multi-row VALUES lists of `SQLITE_ROWS` rows are sent
    (SQLite allows 32766 parameters per statement).
    """

    SQLITE_ROWS = 500

    def __init__(self, session: Session, table: Any, columns: Sequence[str]) -> None:
        self.connection = session.connection()
        self.multi_row = self.connection.dialect.name == "sqlite"
        placeholder = "?" if self.connection.dialect.paramstyle == "qmark" else "%s"
        self.head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
        self.row_sql = f"({', '.join([placeholder] * len(columns))})"
        self._statements: dict[int, str] = {}

    def _statement(self, rows: int) -> str:
        if rows not in self._statements:
            self._statements[rows] = self.head + ", ".join([self.row_sql] * rows)
        return self._statements[rows]

    def run(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert `rows` (values in column order)."""
        if not rows:
            return
        if not self.multi_row:
            self.connection.exec_driver_sql(self._statement(1), list(rows))
            return
        for start in range(0, len(rows), self.SQLITE_ROWS):
            chunk = rows[start : start + self.SQLITE_ROWS]
            self.connection.exec_driver_sql(
                self._statement(len(chunk)), tuple(chain.from_iterable(chunk))
            )


def _ids_by_email(session: Session, emails: Sequence[str]) -> dict[str, int]:
    """{email: id} of the subscribers among `emails`, in one driver-level query (the
    ORM's expanding IN costs more than the lookup itself at import sizes)."""
    if not emails:
        return {}
    connection = session.connection()
    placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"SELECT email, id FROM {Subscriber.__tablename__} "
        f"WHERE email IN ({', '.join([placeholder] * len(emails))})"
    )
    return {
        email: subscriber_id
        for email, subscriber_id in connection.exec_driver_sql(sql, tuple(emails))
    }


def _time_converter(session: Session) -> Callable[[datetime | None], Any]:
    """How datetimes are handed to the driver: text for SQLite (each distinct value
    formatted once per batch: a row's times repeat in its consent record), as they are
    otherwise."""
    if session.connection().dialect.name != "sqlite":
        return lambda value: value
    cache: dict[datetime | None, str | None] = {None: None}

    def convert(value: datetime | None) -> str | None:
        text = cache.get(value)
        if text is None and value is not None:
            text = cache[value] = _sqlite_datetime(value)
        return text

    return convert


def _sqlite_datetime(value: datetime) -> str:
    """A UTC datetime the way SQLAlchemy stores it in SQLite ("2026-11-02 09:00:00.000000").

    Every datetime of an import is UTC already (`_parse_dt`, the app clock), so the text
    is the ISO form with its "+00:00" cut off.
    """
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


_SUBSCRIBER_COLUMNS = (
    "email",
    "name",
    "name_key",
    "language",
    "digest_languages",
    "status",
    "paused",
    "paused_at",
    "suppressed",
    "suppression_reason",
    "suppressed_at",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "soft_bounce_count",
    "import_job_id",
)


def _insert_new(session: Session, rows: list[ImportRow], job: ImportJob, now: datetime) -> None:
    """Insert new subscribers, each pointing at `job` (their "imported" history line).

    Neither a consent record nor an event row is written per person: a file carries no
    form, page, wording or IP to record, and the import is one fact for all its rows. The
    evidence for imported people is the `ImportJob` (who imported which file, when, in
    which format) plus the original opt-in and confirmation times from the file, kept as
    `created_at`/`confirmed_at`. (This also keeps a large import within 3x the time of a
    bare `executemany` of the same rows.)
    """
    if not rows:
        return
    db_time = _time_converter(session)
    at = db_time(now)
    job_id = job.id
    values = []
    for row in rows:
        created = row.created_at or now
        status = row.status
        suppressed = row.suppression_reason is not None
        confirmed_at = row.confirmed_at
        if status == SubscriberStatus.CONFIRMED and confirmed_at is None:
            confirmed_at = created
        unsubscribed_at = row.unsubscribed_at
        if status == SubscriberStatus.UNSUBSCRIBED and unsubscribed_at is None:
            unsubscribed_at = now
        paused = row.paused and status == SubscriberStatus.CONFIRMED
        values.append(
            (
                row.email,
                row.name,
                row.name.casefold(),
                row.language,
                pack_languages(row.languages),
                status.value,
                paused,
                at if paused else None,
                suppressed,
                row.suppression_reason,
                db_time(row.suppressed_at or now) if suppressed else None,
                row.source.value,
                db_time(created),
                db_time(confirmed_at),
                db_time(unsubscribed_at),
                0,
                job_id,
            )
        )
    _BulkInsert(session, Subscriber.__table__, _SUBSCRIBER_COLUMNS).run(values)


def _merge_into(
    session: Session, subscriber: Subscriber, row: ImportRow, job: ImportJob, now: datetime
) -> bool:
    """Apply a row about someone already on the list; True when something changed."""
    current = SubscriberStatus(subscriber.status)
    if subscriber.erased_at is not None or current in {
        SubscriberStatus.UNSUBSCRIBED,
        SubscriberStatus.BOUNCED,
    }:
        return False  # people who left stay gone, whatever the file says
    target = row.status
    if target == current or target == SubscriberStatus.PENDING:
        return False
    if target == SubscriberStatus.CONFIRMED and current != SubscriberStatus.PENDING:
        return False
    change_status(subscriber, target, now=now)
    if target == SubscriberStatus.CONFIRMED and row.confirmed_at is not None:
        subscriber.confirmed_at = row.confirmed_at
    if target == SubscriberStatus.UNSUBSCRIBED and row.unsubscribed_at is not None:
        subscriber.unsubscribed_at = row.unsubscribed_at
    if target == SubscriberStatus.BOUNCED and not subscriber.suppressed:
        subscriber.suppressed = True
        subscriber.suppression_reason = row.suppression_reason or SuppressionReason.HARD_BOUNCE
        subscriber.suppressed_at = row.suppressed_at or now
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber.id,
            at=now,
            kind=EventKind.IMPORTED.value,
            actor=EventActor.IMPORT.value,
            staff_user_id=job.staff_user_id,
            detail=json.dumps(
                {
                    "format": job.detected_format,
                    "import": job.id,
                    "before": current.value,
                    "after": target.value,
                }
            ),
        )
    )
    return True


def rejections_csv(job: ImportJob) -> str:
    """The rejected rows of an import as CSV text (line, email, reason); the offending
    values come from someone else's file, so they are formula-escaped like every export."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(("line", "email", "reason"))
    for rejection in job.rejections:
        writer.writerow((rejection.line, rejection.value, rejection.reason))
    return buffer.getvalue()

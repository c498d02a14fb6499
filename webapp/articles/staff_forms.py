"""Forms of the staff article and feed pages.

Every text is cleaned of control characters (PostgreSQL text cannot hold NUL) and capped at
its column's length, so bad or huge input is a form error, never a database error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    Field,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError

from webapp.core.forms import choices, language_choices

#: Control characters never belong in a one-line value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: In a multi-line value, only tabs and line breaks are kept.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Whitespace inside an address means it was mistyped or pasted with something else.
_SPACE = re.compile(r"\s")
#: The earliest and latest year a publication date may have (a typo guard).
MIN_YEAR, MAX_YEAR = 1900, 2200
#: How the datetime-local input sends its value.
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
#: The quick top-reads actions of the list.
TOP_READS_ACTIONS = ("pin", "unpin", "exclude", "include")


def one_line(value: Any) -> Any:
    """Control characters turned into spaces, then stripped (a filter for one-line fields)."""
    return _CONTROL.sub(" ", value).strip() if isinstance(value, str) else value


def multi_line(value: Any) -> Any:
    """Control characters other than tabs and line breaks removed, then stripped."""
    return _CONTROL_MULTILINE.sub("", value).strip() if isinstance(value, str) else value


def _raw_strip(value: Any) -> Any:
    # Addresses keep their control characters so the validator can refuse them.
    return value.strip() if isinstance(value, str) else value


def check_web_address(value: str) -> str | None:
    """Why `value` is not an http(s) address with a host, or None when it is one."""
    if _SPACE.search(value) or _CONTROL.search(value):
        return str(_l("The address cannot contain spaces or control characters."))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return str(_l("This is not a valid address."))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return str(_l("Enter an address starting with http:// or https://."))
    return None


def web_address(form: FlaskForm, field: Field) -> None:
    """WTForms validator: empty, or an http(s) address with a host."""
    if field.data:
        problem = check_web_address(field.data)
        if problem:
            raise ValidationError(problem)


class ArticleFilterForm(FlaskForm):
    """Search and language filter of the article list (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Title contains"),
        filters=[one_line],
        validators=[Optional(), Length(max=200, message=_l("Search for at most 200 characters."))],
    )
    language = SelectField(_l("Language"), default="", validate_choice=True)

    def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = [SelectChoice("", _l("Any language")), *language_choices(languages)]

    def active_filters(self) -> dict[str, str]:
        """The non-empty filters as query-string values (for the pager's links)."""
        return {name: str(self[name].data) for name in ("q", "language") if self[name].data}


class ArticleForm(FlaskForm):
    """Add or edit an article. The view checks what needs the database: that the address
    is not taken and that the chosen translation exists in another language."""

    url = StringField(
        _l("Address"),
        filters=[_raw_strip],
        validators=[
            DataRequired(_l("Enter the article's address.")),
            Length(max=1000, message=_l("The address can have at most 1000 characters.")),
            web_address,
        ],
        description=_l(
            "The article's page, e.g. https://example.org/en/story. Views are "
            "counted for this address without ?query or #fragment."
        ),
    )
    title = StringField(
        _l("Title"),
        filters=[one_line],
        validators=[
            DataRequired(_l("Enter a title.")),
            Length(max=500, message=_l("The title can have at most 500 characters.")),
        ],
    )
    lede = TextAreaField(
        _l("Lede"),
        filters=[multi_line],
        validators=[Length(max=2000, message=_l("The lede can have at most 2000 characters."))],
    )
    author = StringField(
        _l("Author"),
        filters=[one_line],
        validators=[Length(max=300, message=_l("At most 300 characters."))],
    )
    section = StringField(
        _l("Section"),
        filters=[one_line],
        validators=[Length(max=200, message=_l("At most 200 characters."))],
    )
    image_url = StringField(
        _l("Image address (optional)"),
        filters=[_raw_strip],
        validators=[
            Length(max=1000, message=_l("The address can have at most 1000 characters.")),
            web_address,
        ],
    )
    published_at = DateTimeLocalField(
        _l("Published (UTC)"),
        format=DATETIME_LOCAL_FORMATS,
        validators=[Optional()],
    )
    language = SelectField(_l("Language"), validate_choice=True)
    translation_of = SelectField(
        _l("Translation of"),
        default="",
        # Checked by the view against the database: the list shown is only the most recent.
        validate_choice=False,
        description=_l("The same article in another language. Both are linked to each other."),
    )
    pinned_in_top_reads = BooleanField(_l("Pin to the top reads of its language"))
    excluded_from_top_reads = BooleanField(_l("Keep out of the top reads"))

    def __init__(
        self,
        *args: Any,
        languages: Sequence[str],
        translations: Sequence[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices(languages)
        self.translation_of.choices = choices([("", _l("None")), *translations])

    def validate_published_at(self, field: Any) -> None:
        """A plausible year (the database and the feeds would take anything)."""
        if field.data and not MIN_YEAR <= field.data.year <= MAX_YEAR:
            raise ValidationError(
                _l("Enter a date between %(start)d and %(end)d.", start=MIN_YEAR, end=MAX_YEAR)
            )

    def validate_translation_of(self, field: Any) -> None:
        """Empty, or an article id."""
        value = field.data or ""
        if value and not (value.isdigit() and len(value) < 10):
            raise ValidationError(_l("Choose an article from the list."))

    def validate_excluded_from_top_reads(self, field: Any) -> None:
        """Pinned and excluded contradict each other."""
        if field.data and self.pinned_in_top_reads.data:
            raise ValidationError(
                _l("An article cannot be pinned to and kept out of the top reads at once.")
            )

    @property
    def translation_id(self) -> int | None:
        """The chosen translation's id (after validation), or None."""
        value = self.translation_of.data or ""
        return int(value) if value.isdigit() else None


class TopReadsActionForm(FlaskForm):
    """A quick pin/unpin/exclude/include button of the list."""

    action = HiddenField(
        validators=[
            DataRequired(),
            AnyOf(TOP_READS_ACTIONS, message=_l("Unknown action.")),
        ]
    )
    next = HiddenField(validators=[Optional(), Length(max=2000)])


class FeedForm(FlaskForm):
    """Add a feed."""

    url = StringField(
        _l("Feed address"),
        filters=[_raw_strip],
        validators=[
            DataRequired(_l("Enter the feed's address.")),
            Length(max=1000, message=_l("The address can have at most 1000 characters.")),
            web_address,
        ],
        description=_l("An RSS or Atom feed, e.g. https://example.org/en/feed.xml"),
    )
    language = SelectField(_l("Language of its articles"), validate_choice=True)

    def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices(languages)

"""Form pieces every feature's forms share: cleaning filters, the email validator, choices,
the CSRF-only form of a state-changing button and the typed confirmation of an erasure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.core.addresses import InvalidEmail, normalise_email
from webapp.i18n import LANGUAGE_NAMES

#: Control characters (and NUL, which PostgreSQL text cannot hold) never belong in a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def strip_text(value: Any) -> Any:
    """WTForms filter: surrounding white space dropped from text."""
    return value.strip() if isinstance(value, str) else value


def clean_name(value: Any) -> Any:
    """WTForms filter: a person's name without control characters or surrounding space."""
    return _CONTROL.sub(" ", value).strip() if isinstance(value, str) else value


def valid_email(form: FlaskForm, field: Field) -> None:
    """WTForms validator: the address must pass `normalise_email`."""
    try:
        normalise_email(field.data or "")
    except InvalidEmail as exc:
        raise ValidationError(
            _l("Please enter a valid email address, like name@example.com.")
        ) from exc


def choices(pairs: Sequence[tuple[str, Any]]) -> list[SelectChoice]:
    """`SelectChoice`s from (value, label) pairs (WTForms 3.3 deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


def language_choices(languages: Sequence[str]) -> list[SelectChoice]:
    """Options for a language menu, each named in its own language."""
    return choices([(code, LANGUAGE_NAMES.get(code, code)) for code in languages])


class EmptyForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type hints
    """A form with only the CSRF token (buttons that change state)."""


class EraseForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type hints
    """Erasure needs the address typed again."""

    confirm_email = StringField(
        _l("Type the subscriber's email address to confirm"),
        filters=[strip_text],
        validators=[DataRequired(_l("Type the address to confirm.")), Length(max=254)],
    )

    def __init__(self, *args: Any, expected_email: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._expected = expected_email

    def validate_confirm_email(self, field: Field) -> None:
        """The typed address must be the subscriber's (any letter case)."""
        if (field.data or "").strip().lower() != self._expected.lower():
            raise ValidationError(_l("That is not this subscriber's address."))

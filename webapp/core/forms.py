"""Form pieces every feature's forms share: cleaning filters, the email validator, choices."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

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

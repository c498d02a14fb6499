"""Forms of the staff donation pages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from babel.numbers import is_currency
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from webapp.core.money import InvalidAmount, to_minor
from webapp.donations.campaigns import RESERVED_SLUGS
from webapp.donations.models import (
    DonationKind,
    DonationStatus,
    Frequency,
    OfflineMethod,
)
from webapp.subscribers.forms import _clean_name, _strip, choices, valid_email

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class DonationFilterForm(FlaskForm):
    """The list's search and filters (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[_strip], validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), default="", validate_choice=True)
    kind = SelectField(_l("Kind"), default="", validate_choice=True)
    frequency = SelectField(_l("Frequency"), default="", validate_choice=True)
    currency = SelectField(_l("Currency"), default="", validate_choice=True)
    campaign = SelectField(_l("Campaign"), default="", validate_choice=True)
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    unseen = BooleanField(_l("Unseen refunds and disputes only"))

    def __init__(
        self, *args: Any, currencies: Sequence[str], campaigns: Sequence[Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        anything = [("", _l("Any"))]
        self.status.choices = choices(anything + [(s.value, s.value) for s in DonationStatus])
        self.kind.choices = choices(anything + [(k.value, k.value) for k in DonationKind])
        self.frequency.choices = choices(anything + [(f.value, f.value) for f in Frequency])
        self.currency.choices = choices(anything + [(c, c) for c in currencies])
        self.campaign.choices = choices(anything + [(str(c.id), c.slug) for c in campaigns])


def _amount_field(label: Any) -> StringField:
    return StringField(label, filters=[_strip], validators=[DataRequired(_l("Enter an amount."))])


class OfflineGiftForm(FlaskForm):
    """A gift staff record by hand."""

    email = StringField(
        _l("Donor email"),
        filters=[_strip],
        validators=[DataRequired(_l("Enter the donor's email.")), valid_email],
    )
    name = StringField(_l("Donor name"), filters=[_clean_name], validators=[Length(max=200)])
    amount = _amount_field(_l("Amount"))
    currency = SelectField(_l("Currency"), validate_choice=True)
    received_on = DateField(_l("Date received"), validators=[DataRequired(_l("Enter a date."))])
    method = SelectField(_l("Paid by"), validate_choice=True)
    note = TextAreaField(_l("Reference or note"), validators=[Length(max=2000)])
    campaign = SelectField(_l("Campaign"), validate_choice=True)
    source = StringField(_l("Source"), filters=[_strip], validators=[Length(max=300)])
    language = SelectField(_l("Receipt language"), validate_choice=True)
    send_receipt = BooleanField(_l("Email a receipt to the donor"))

    def __init__(
        self,
        *args: Any,
        currencies: Sequence[str],
        campaigns: Sequence[Any],
        languages: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.currency.choices = choices([(c, c) for c in currencies])
        self.method.choices = choices(
            [
                (OfflineMethod.BANK_TRANSFER.value, _l("Bank transfer")),
                (OfflineMethod.CASH.value, _l("Cash")),
                (OfflineMethod.CHEQUE.value, _l("Cheque")),
                (OfflineMethod.OTHER.value, _l("Other")),
            ]
        )
        self.campaign.choices = choices(
            [("", _l("None"))] + [(str(c.id), c.slug) for c in campaigns]
        )
        self.language.choices = choices([(code, code) for code in languages])
        self.amount_minor = 0

    def validate_amount(self, field: Any) -> None:
        """The amount must be money in the chosen currency, above zero."""
        try:
            self.amount_minor = to_minor(field.data or "", str(self.currency.data or "EUR"))
        except InvalidAmount as exc:
            raise ValidationError(_l("Enter an amount like 25 or 25.50.")) from exc
        if self.amount_minor <= 0:
            raise ValidationError(_l("The amount must be more than zero."))


class CampaignForm(FlaskForm):
    """Create or edit a campaign."""

    slug = StringField(
        _l("Address (slug)"),
        filters=[lambda v: v.strip().lower() if v else v],
        validators=[DataRequired(), Length(max=80)],
        description=_l("Lower-case letters, digits and dashes: /donate/<slug>"),
    )
    goal = DecimalField(
        _l("Goal (optional)"),
        places=2,
        validators=[Optional(), NumberRange(min=0, max=1_000_000_000)],
    )
    currency = SelectField(_l("Goal currency"), validate_choice=True)
    ends_on = DateField(_l("Deadline (optional)"), validators=[Optional()])
    is_active = BooleanField(_l("Active (the page is online)"), default=True)

    def __init__(
        self, *args: Any, languages: Sequence[str], currencies: Sequence[str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.languages = list(languages)
        self.currency.choices = choices([(c, c) for c in currencies])

    def validate_slug(self, field: Any) -> None:
        """URL-safe and not one of the pages under /donate."""
        if not _SLUG.match(field.data or "") or field.data in RESERVED_SLUGS:
            raise ValidationError(_l("Use lower-case letters, digits and dashes only."))


def _minor_list(text: str, currency: str) -> list[int]:
    values = [part for part in re.split(r"[;\s]+|,\s+", text.strip()) if part]
    try:
        return [to_minor(value, currency) for value in values]
    except InvalidAmount as exc:
        raise ValidationError(_l("Presets are amounts separated by spaces or commas.")) from exc


class DonationSettingsForm(FlaskForm):
    """Currencies, presets, limits and the card fee."""

    currencies = StringField(
        _l("Currencies offered"),
        filters=[_strip],
        validators=[DataRequired()],
        description=_l("ISO codes in order, e.g. EUR USD GBP"),
    )
    minimum = StringField(_l("Smallest gift"), filters=[_strip], validators=[DataRequired()])
    maximum = StringField(_l("Largest gift"), filters=[_strip], validators=[DataRequired()])
    fee_percent = DecimalField(
        _l("Card fee, percent"), places=2, validators=[DataRequired(), NumberRange(min=0, max=20)]
    )
    fee_fixed = StringField(
        _l("Card fee, fixed part"), filters=[_strip], validators=[DataRequired()]
    )

    def currency_list(self) -> list[str]:
        """The currencies as entered, validated."""
        codes = [c.upper() for c in re.split(r"[,\s]+", self.currencies.data or "") if c]
        for code in codes:
            if not re.fullmatch(r"[A-Z]{3}", code) or not is_currency(code):
                raise ValidationError(_l("Unknown currency code: %(code)s.", code=code[:10]))
        if not codes:
            raise ValidationError(_l("Offer at least one currency."))
        return list(dict.fromkeys(codes))

    def parse_presets(self, formdata: Any, codes: Sequence[str]) -> dict[str, dict[str, list[int]]]:
        """Presets from the `preset-<CUR>-<frequency>` inputs."""
        presets: dict[str, dict[str, list[int]]] = {}
        for code in codes:
            presets[code] = {}
            for frequency in Frequency:
                text = formdata.get(f"preset-{code}-{frequency.value}", "")
                presets[code][frequency.value] = _minor_list(text, code)
        return presets

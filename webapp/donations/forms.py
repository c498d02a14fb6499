"""The donation form. Field names are part of the public contract: `frequency`, `amount`,
`custom_amount`, `currency`, `email`, `name`, `subscribe` (plus `cover_fee`, `anonymous`,
the hidden `source`/`utm_*` and `checkout_token`)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.validators import DataRequired, Length, Optional

from webapp.core.forms import choices, clean_name, strip_text, valid_email
from webapp.core.money import InvalidAmount, format_money, precision, to_minor
from webapp.donations.fees import fee_to_cover
from webapp.donations.models import DonationSettings, Frequency

#: What readers (and scripts) may send as `frequency`, and what it means.
FREQUENCY_ALIASES = {
    "one_time": Frequency.ONE_TIME,
    "once": Frequency.ONE_TIME,
    "onetime": Frequency.ONE_TIME,
    "monthly": Frequency.MONTHLY,
    "month": Frequency.MONTHLY,
    "yearly": Frequency.YEARLY,
    "year": Frequency.YEARLY,
    "annual": Frequency.YEARLY,
}
#: The form's own values for the three frequencies.
FREQUENCY_VALUES = {
    Frequency.ONE_TIME: "one_time",
    Frequency.MONTHLY: "monthly",
    Frequency.YEARLY: "yearly",
}
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def _two_readings(text: str, currency: str) -> tuple[int, int] | None:
    """(thousands, decimals) for "1.000" / "2,500": a mark followed by three digits."""
    found = re.fullmatch(r"(\d{1,6})[.,](\d{3})", text.strip())
    if not found:
        return None
    whole, part = int(found.group(1)), int(found.group(2))
    places = precision(currency)
    if places > 3 or part % 10 ** (3 - places):
        return None  # "10.555" in euros: no second reading, just a wrong amount
    thousands = (whole * 1000 + part) * 10**places
    decimals = whole * 10**places + part // 10 ** (3 - places)
    return thousands, decimals


def _frequency_filter(value: Any) -> Any:
    if isinstance(value, str):
        found = FREQUENCY_ALIASES.get(value.strip().lower())
        return FREQUENCY_VALUES[found] if found else value
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _short(length: int) -> Any:
    def cut(value: Any) -> Any:
        return value.strip()[:length] if isinstance(value, str) else value

    return cut


class DonationForm(FlaskForm):
    """One gift: how often, how much, in which currency, and who gives."""

    frequency = RadioField(
        _l("How often"),
        filters=[_frequency_filter],
        validators=[DataRequired(_l("Please choose how often you would like to give."))],
    )
    amount = StringField(_l("Amount"), filters=[strip_text])
    custom_amount = StringField(_l("Other amount"), filters=[strip_text])
    currency = RadioField(_l("Currency"), filters=[_upper])
    email = StringField(
        _l("Email address"),
        filters=[strip_text],
        validators=[
            DataRequired(_l("Please enter your email address: your receipt goes there.")),
            Length(max=254, message=_l("That address is too long.")),
            valid_email,
        ],
    )
    name = StringField(
        _l("Name (optional)"),
        filters=[clean_name],
        validators=[Optional(), Length(max=200, message=_l("Please use at most 200 characters."))],
    )
    cover_fee = BooleanField(_l("Add the card fee to my gift, so all of it reaches the newsroom"))
    anonymous = BooleanField(_l("Do not show my name among supporters"))
    subscribe = BooleanField(_l("Send me the weekly digest (we will ask you to confirm)"))
    source = HiddenField(filters=[_short(300)])
    utm_source = HiddenField(filters=[_short(100)])
    utm_medium = HiddenField(filters=[_short(100)])
    utm_campaign = HiddenField(filters=[_short(100)])
    utm_content = HiddenField(filters=[_short(100)])
    utm_term = HiddenField(filters=[_short(100)])
    #: One per page view: a double click sends the same token, which opens one checkout.
    checkout_token = HiddenField(filters=[_short(64)])
    #: The honeypot: hidden from people, filled in by bots.
    website = StringField(_l("Leave this field empty"))

    def __init__(self, *args: Any, settings: DonationSettings, language: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.language = language
        self.frequency.choices = choices(
            [
                ("one_time", _l("One time")),
                ("monthly", _l("Monthly")),
                ("yearly", _l("Yearly")),
            ]
        )
        self.currency.choices = choices([(code, code) for code in settings.currencies])
        if not self.currency.data or self.currency.data == "NONE":
            self.currency.data = settings.default_currency.get(language) or settings.currencies[0]
        if not self.frequency.data:
            self.frequency.data = "one_time"
        if not self.checkout_token.data or len(self.checkout_token.data) < 16:
            self.checkout_token.data = secrets.token_urlsafe(24)
        #: Set by `validate`: the gift in minor units and the fee added to it.
        self.gift_minor = 0
        self.fee_minor = 0

    @property
    def chosen_frequency(self) -> Frequency:
        """The frequency as the model's enum."""
        return FREQUENCY_ALIASES.get(str(self.frequency.data), Frequency.ONE_TIME)

    def is_bot(self) -> bool:
        """True when the honeypot field was filled in."""
        return bool((self.website.data or "").strip())

    def presets(self) -> list[int]:
        """Preset amounts (minor units) for the chosen currency and frequency."""
        return self.settings.presets_for(str(self.currency.data), self.chosen_frequency)

    def validate(self, extra_validators: Any = None) -> bool:
        """Field checks, then the amount against the currency, minimum and maximum."""
        valid = super().validate(extra_validators)
        currency = str(self.currency.data or "")
        if currency not in self.settings.currencies:
            self.currency.errors = [_("Please choose one of the currencies offered.")]
            return False
        if self.frequency.errors:
            self.frequency.errors = [_("Please choose one time, monthly or yearly.")]
            return False
        text = self.custom_amount.data or ""
        if not text and self.amount.data not in (None, "", "other"):
            text = str(self.amount.data)
        if not text:
            self.custom_amount.errors = [_("Please choose or enter an amount.")]
            return False
        try:
            gift = to_minor(text, currency, self.language)
        except InvalidAmount:
            self.custom_amount.errors = [self._amount_problem(text, currency)]
            return False
        lowest, highest = self.settings.minimum_minor, self.settings.maximum_minor
        if gift < lowest:
            self.custom_amount.errors = [
                _(
                    "The smallest gift is %(amount)s.",
                    amount=format_money(lowest, currency, self.language),
                )
            ]
            return False
        if gift > highest:
            self.custom_amount.errors = [
                _(
                    "The largest gift through this page is %(amount)s; "
                    "for more, please write to us.",
                    amount=format_money(highest, currency, self.language),
                )
            ]
            return False
        self.gift_minor = gift
        self.fee_minor = (
            fee_to_cover(
                gift,
                percent_bp=self.settings.fee_percent_bp,
                fixed_minor=self.settings.fee_fixed_minor,
            )
            if self.cover_fee.data
            else 0
        )
        return valid

    def _amount_problem(self, text: str, currency: str) -> str:
        """What to tell a donor whose amount could not be read: for "1.000" or "2,500"
        typed where it could mean either, both readings, so they choose."""
        readings = _two_readings(text, currency)
        if readings:
            first, second = (
                format_money(r, currency, self.language).replace("\u00a0", " ") for r in readings
            )
            return _(
                "Did you mean %(first)s or %(second)s? Please type the amount again "
                "without the dot or comma for thousands.",
                first=first,
                second=second,
            )
        return _(
            "Please enter an amount in numbers, like %(example)s.",
            example=format_money(2500, currency, self.language).replace("\u00a0", " "),
        )

    def utm(self) -> dict[str, str]:
        """The UTM fields as sent."""
        return {name: str(getattr(self, name).data or "") for name in UTM_FIELDS}

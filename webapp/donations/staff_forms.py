"""Forms of the staff donation pages.

Amounts are typed in major units ("25", "25.50") and parsed with `to_minor` for the chosen
currency, so a value the currency cannot hold is a form error, never a crash later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from babel.numbers import is_currency
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from webapp.core.forms import choices, clean_name, strip_text, valid_email
from webapp.core.money import InvalidAmount, to_minor
from webapp.donations.campaigns import RESERVED_SLUGS
from webapp.donations.models import (
    DonationKind,
    DonationStatus,
    Frequency,
    OfflineMethod,
)

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Card fee percent: up to two decimals ("2.9", "1,5").
_PERCENT = re.compile(r"^\d{1,2}(?:[.,]\d{1,2})?$")
#: The highest card fee percent staff may set (a typo guard, not a business rule).
MAX_FEE_PERCENT_BP = 2000


def status_labels() -> dict[str, Any]:
    """Staff wording for `DonationStatus` values."""
    return {
        DonationStatus.PENDING.value: _l("pending"),
        DonationStatus.PROCESSING.value: _l("processing"),
        DonationStatus.PAID.value: _l("paid"),
        DonationStatus.FAILED.value: _l("failed"),
        DonationStatus.EXPIRED.value: _l("expired"),
    }


def kind_labels() -> dict[str, Any]:
    """Staff wording for `DonationKind` values."""
    return {
        DonationKind.ONE_TIME.value: _l("one-time"),
        DonationKind.RECURRING.value: _l("recurring"),
        DonationKind.OFFLINE.value: _l("offline"),
    }


def frequency_labels() -> dict[str, Any]:
    """Staff wording for `Frequency` values."""
    return {
        Frequency.ONE_TIME.value: _l("once"),
        Frequency.MONTHLY.value: _l("monthly"),
        Frequency.YEARLY.value: _l("yearly"),
    }


def method_labels() -> dict[str, Any]:
    """Staff wording for `OfflineMethod` values."""
    return {
        OfflineMethod.BANK_TRANSFER.value: _l("bank transfer"),
        OfflineMethod.CASH.value: _l("cash"),
        OfflineMethod.CHEQUE.value: _l("cheque"),
        OfflineMethod.OTHER.value: _l("other"),
    }


class DonationFilterForm(FlaskForm):
    """The list's search and filters (read from the query string, or from the CSV download's
    POST; the global CSRF check covers that POST, so the form itself has none)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[strip_text], validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), default="", validate_choice=True)
    kind = SelectField(_l("Kind"), default="", validate_choice=True)
    frequency = SelectField(_l("Frequency"), default="", validate_choice=True)
    currency = SelectField(_l("Currency"), default="", validate_choice=True)
    campaign = SelectField(_l("Campaign"), default="", validate_choice=True)
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    unseen = BooleanField(_l("Unseen refunds and disputes only"))

    #: The fields a filtered list carries in its links (paging, CSV download).
    FILTER_FIELDS = (
        "q",
        "status",
        "kind",
        "frequency",
        "currency",
        "campaign",
        "date_from",
        "date_to",
        "unseen",
    )

    def __init__(
        self, *args: Any, currencies: Sequence[str], campaigns: Sequence[Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        anything = [("", _l("Any"))]
        self.status.choices = choices(anything + list(status_labels().items()))
        self.kind.choices = choices(anything + list(kind_labels().items()))
        self.frequency.choices = choices(anything + list(frequency_labels().items()))
        self.currency.choices = choices(anything + [(c, c) for c in currencies])
        self.campaign.choices = choices(anything + [(str(c.id), c.slug) for c in campaigns])

    def validate_date_to(self, field: Any) -> None:
        """The range must not end before it starts."""
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))

    def active_filters(self) -> dict[str, str]:
        """The non-empty filters as query-string values (for links and the CSV form)."""
        values: dict[str, str] = {}
        for name in self.FILTER_FIELDS:
            field = self[name]
            if name == "unseen":
                if field.data:
                    values[name] = "y"
            elif field.data:
                values[name] = (
                    field.data.isoformat() if isinstance(field.data, date) else str(field.data)
                )
        return values


class OfflineGiftForm(FlaskForm):
    """A gift staff record by hand."""

    email = StringField(
        _l("Donor email"),
        filters=[strip_text],
        validators=[DataRequired(_l("Enter the donor's email.")), valid_email],
    )
    name = StringField(_l("Donor name"), filters=[clean_name], validators=[Length(max=200)])
    amount = StringField(
        _l("Amount"), filters=[strip_text], validators=[DataRequired(_l("Enter an amount."))]
    )
    currency = SelectField(_l("Currency"), validate_choice=True)
    received_on = DateField(_l("Date received"), validators=[DataRequired(_l("Enter a date."))])
    method = SelectField(_l("Paid by"), validate_choice=True)
    note = TextAreaField(_l("Reference or note"), validators=[Length(max=2000)])
    campaign = SelectField(_l("Campaign"), default="", validate_choice=True)
    source = StringField(_l("Source"), filters=[strip_text], validators=[Length(max=300)])
    language = SelectField(_l("Receipt language"), validate_choice=True)
    send_receipt = BooleanField(_l("Email a receipt to the donor"))

    def __init__(
        self,
        *args: Any,
        currencies: Sequence[str],
        campaigns: Sequence[Any],
        languages: Sequence[str],
        today: date,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.currency.choices = choices([(c, c) for c in currencies])
        self.method.choices = choices(list(method_labels().items()))
        self.campaign.choices = choices(
            [("", _l("None"))] + [(str(c.id), c.slug) for c in campaigns]
        )
        self.language.choices = choices([(code, code) for code in languages])
        #: The amount in minor units, set by validation.
        self.amount_minor = 0

    def validate_amount(self, field: Any) -> None:
        """The amount must be money in the chosen currency, above zero."""
        if self.currency.data not in {c.value for c in self.currency.choices or []}:
            return  # the currency field reports its own error
        try:
            self.amount_minor = to_minor(field.data or "", str(self.currency.data))
        except InvalidAmount as exc:
            raise ValidationError(_l("Enter an amount like 25 or 25.50.")) from exc
        if self.amount_minor <= 0:
            raise ValidationError(_l("The amount must be more than zero."))

    def validate_received_on(self, field: Any) -> None:
        """Money cannot arrive in the future."""
        if field.data and field.data > self.today:
            raise ValidationError(_l("The date cannot be in the future."))

    @property
    def campaign_id(self) -> int | None:
        """The chosen campaign's id, or None."""
        value = self.campaign.data or ""
        return int(value) if value.isdigit() else None


class CampaignForm(FlaskForm):
    """Create or edit a campaign (titles and descriptions per language are read by the view
    from `title_<lang>` / `description_<lang>`)."""

    slug = StringField(
        _l("Address (slug)"),
        filters=[lambda v: v.strip().lower() if v else v],
        validators=[DataRequired(_l("Enter an address.")), Length(max=80)],
        description=_l("Lower-case letters, digits and dashes: /donate/<slug>"),
    )
    goal = StringField(
        _l("Goal (optional)"),
        filters=[strip_text],
        validators=[Length(max=30)],
        description=_l("In the goal currency, e.g. 5000 or 5000.50"),
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
        #: The goal in minor units (None: no goal), set by validation.
        self.goal_minor: int | None = None

    def validate_slug(self, field: Any) -> None:
        """URL-safe and not one of the pages under /donate."""
        if not _SLUG.match(field.data or ""):
            raise ValidationError(_l("Use lower-case letters, digits and dashes only."))
        if field.data in RESERVED_SLUGS:
            raise ValidationError(_l("This address is taken by another page."))

    def validate_goal(self, field: Any) -> None:
        """Empty (no goal) or an amount above zero in the goal currency."""
        if not field.data:
            self.goal_minor = None
            return
        try:
            self.goal_minor = to_minor(field.data, str(self.currency.data or "EUR"))
        except InvalidAmount as exc:
            raise ValidationError(_l("Enter a goal like 5000 or 5000.50.")) from exc
        if self.goal_minor <= 0:
            raise ValidationError(_l("The goal must be more than zero, or left empty."))


def _minor_list(text: str, currency: str) -> list[int]:
    # Commas separate amounts only when a space follows ("5, 10"); "2,50" stays one amount,
    # so a decimal comma is never silently split into two presets.
    values = [part for part in re.split(r"[;\s]+|,\s+", text.strip()) if part]
    if len(values) > 12:
        raise ValidationError(_l("At most 12 preset amounts."))
    try:
        amounts = [to_minor(value, currency) for value in values]
    except InvalidAmount as exc:
        raise ValidationError(
            _l("Presets are amounts separated by spaces or commas, like 5, 10, 25.")
        ) from exc
    if any(amount <= 0 for amount in amounts):
        raise ValidationError(_l("Presets must be more than zero."))
    return sorted(set(amounts))


@dataclass(frozen=True)
class SettingsValues:
    """What a valid settings form says, in the model's units."""

    currencies: list[str]
    default_currency: dict[str, str]
    presets: dict[str, dict[str, list[int]]]
    minimum_minor: int
    maximum_minor: int
    fee_percent_bp: int
    fee_fixed_minor: int


class DonationSettingsForm(FlaskForm):
    """Currencies, presets, limits and the card fee.

    The preset inputs (`preset-<CUR>-<frequency>`) and default currencies (`default-<lang>`)
    depend on the currencies offered, so they are read from `raw` (the posted data); their errors
    land in `preset_errors` / `default_errors`. After `validate_on_submit()` succeeds,
    `values` holds the parsed result.
    """

    currencies = StringField(
        _l("Currencies offered"),
        filters=[strip_text],
        validators=[DataRequired(_l("Offer at least one currency.")), Length(max=200)],
        description=_l("ISO codes in order, e.g. EUR USD GBP"),
    )
    minimum = StringField(
        _l("Smallest gift"),
        filters=[strip_text],
        validators=[DataRequired(_l("Enter the smallest gift."))],
        description=_l("The same number in every currency, in the first currency's units"),
    )
    maximum = StringField(
        _l("Largest gift"),
        filters=[strip_text],
        validators=[DataRequired(_l("Enter the largest gift."))],
        description=_l("Bigger gifts can be recorded as offline gifts"),
    )
    fee_percent = StringField(
        _l("Card fee, percent"),
        filters=[strip_text],
        validators=[DataRequired(_l("Enter the card fee percent (0 for none)."))],
        description=_l("e.g. 2.9"),
    )
    fee_fixed = StringField(
        _l("Card fee, fixed part"),
        filters=[strip_text],
        validators=[DataRequired(_l("Enter the fixed card fee (0 for none)."))],
        description=_l("In the first currency's units, e.g. 0.30"),
    )

    def __init__(
        self, *args: Any, languages: Sequence[str], raw: Mapping[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.languages = list(languages)
        self._raw = raw
        self.preset_errors: dict[str, str] = {}
        self.default_errors: dict[str, str] = {}
        self.values: SettingsValues | None = None
        self._codes: list[str] = []

    def currency_list(self) -> list[str]:
        """The currencies as entered (upper-cased, duplicates dropped); empty when invalid."""
        return list(self._codes)

    def validate_currencies(self, field: Any) -> None:
        """ISO 4217 codes that Babel knows."""
        codes = [c.upper() for c in re.split(r"[,;\s]+", field.data or "") if c]
        for code in codes:
            if not re.fullmatch(r"[A-Z]{3}", code) or not is_currency(code):
                raise ValidationError(_l("Unknown currency code: %(code)s.", code=code[:10]))
        if not codes:
            raise ValidationError(_l("Offer at least one currency."))
        if len(codes) > 20:
            raise ValidationError(_l("Offer at most 20 currencies."))
        self._codes = list(dict.fromkeys(codes))

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        """Field checks first, then the parts that need the currencies (amounts, presets,
        default currencies) and how they relate (minimum <= presets <= maximum)."""
        valid = super().validate(extra_validators)
        if not self._codes:
            return False
        base = self._codes[0]
        parsed: dict[str, int] = {}
        for name in ("minimum", "maximum", "fee_fixed"):
            field = self[name]
            if field.errors:
                continue
            try:
                parsed[name] = to_minor(field.data or "", base)
            except InvalidAmount:
                field.errors = [_l("Enter an amount like 5 or 2.50 (%(code)s).", code=base)]
                valid = False
        percent_bp = self._percent_bp()
        valid = valid and percent_bp is not None
        if "minimum" in parsed and parsed["minimum"] <= 0:
            self.minimum.errors = [_l("The smallest gift must be more than zero.")]
            valid = False
        if "minimum" in parsed and "maximum" in parsed and parsed["maximum"] < parsed["minimum"]:
            self.maximum.errors = [_l("The largest gift must not be below the smallest.")]
            valid = False
        presets = self._presets(parsed.get("minimum"), parsed.get("maximum"))
        defaults = self._defaults()
        if not valid or self.preset_errors or self.default_errors or percent_bp is None:
            return False
        self.values = SettingsValues(
            currencies=list(self._codes),
            default_currency=defaults,
            presets=presets,
            minimum_minor=parsed["minimum"],
            maximum_minor=parsed["maximum"],
            fee_percent_bp=percent_bp,
            fee_fixed_minor=parsed["fee_fixed"],
        )
        return True

    def _percent_bp(self) -> int | None:
        if self.fee_percent.errors:
            return None
        text = (self.fee_percent.data or "").replace(",", ".")
        if not _PERCENT.match(text):
            self.fee_percent.errors = [_l("Enter a percent like 2.9 (0 for none).")]
            return None
        whole, _dot, fraction = text.partition(".")
        bp = int(whole) * 100 + int((fraction + "00")[:2])
        if bp > MAX_FEE_PERCENT_BP:
            self.fee_percent.errors = [_l("The card fee cannot be more than 20%.")]
            return None
        return bp

    def _presets(self, minimum: int | None, maximum: int | None) -> dict[str, dict[str, list[int]]]:
        presets: dict[str, dict[str, list[int]]] = {}
        for code in self._codes:
            presets[code] = {}
            for frequency in Frequency:
                name = f"preset-{code}-{frequency.value}"
                try:
                    amounts = _minor_list(str(self._raw.get(name, ""))[:500], code)
                except ValidationError as exc:
                    self.preset_errors[name] = str(exc)
                    continue
                if (
                    minimum is not None
                    and maximum is not None
                    and any(not minimum <= amount <= maximum for amount in amounts)
                ):
                    self.preset_errors[name] = str(
                        _l("Presets must lie between the smallest and the largest gift.")
                    )
                    continue
                presets[code][frequency.value] = amounts
        return presets

    def _defaults(self) -> dict[str, str]:
        defaults: dict[str, str] = {}
        for language in self.languages:
            value = str(self._raw.get(f"default-{language}", "") or self._codes[0])
            if value not in self._codes:
                self.default_errors[language] = str(_l("Choose one of the currencies offered."))
                continue
            defaults[language] = value
        return defaults

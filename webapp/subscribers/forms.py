"""Forms of the subscriber pages (public and staff)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    Field,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.core.forms import choices, clean_name, language_choices, strip_text, valid_email
from webapp.subscribers.models import SubscriberSource, SubscriberStatus


class SignupForm(FlaskForm):
    """The signup page's form (CSRF-protected)."""

    email = StringField(
        _l("Email address"),
        filters=[strip_text],
        validators=[
            DataRequired(_l("Please enter your email address.")),
            Length(max=254, message=_l("That address is too long.")),
            valid_email,
        ],
    )
    name = StringField(
        _l("Name (optional)"),
        filters=[clean_name],
        validators=[Optional(), Length(max=200, message=_l("Please use at most 200 characters."))],
    )
    language = SelectField(_l("Digest language"), validate_choice=True)
    #: The honeypot: hidden from people, filled in by bots. Any value means "do nothing".
    website = StringField(_l("Leave this field empty"))
    submit = SubmitField(_l("Subscribe"))

    def __init__(self, *args: Any, languages: Sequence[str], default_language: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices(languages)
        if not self.language.data or self.language.data == "None":
            self.language.data = default_language

    def is_bot(self) -> bool:
        """True when the honeypot field was filled in."""
        return bool((self.website.data or "").strip())


class EmbedSignupForm(SignupForm):
    """The embeddable form: posted cross-site, so no CSRF token (the Origin is checked)."""

    class Meta:
        csrf = False

    next = HiddenField()


class ConfirmForm(FlaskForm):
    """The button on the confirmation link's page (only its POST confirms)."""

    submit = SubmitField(_l("Confirm my subscription"))


class MultiCheckboxField(SelectMultipleField):
    """A group of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PreferencesForm(FlaskForm):
    """The preferences page; `action` says which button was pressed."""

    languages = MultiCheckboxField(_l("Send me the digest in"), validate_choice=True)
    action = StringField(
        validators=[
            DataRequired(),
            AnyOf(["save", "pause", "resume", "unsubscribe", "resubscribe"]),
        ]
    )

    def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.languages.choices = language_choices(languages)

    def validate_languages(self, field: Field) -> None:
        """Saving needs at least one language; the other buttons ignore the boxes."""
        if self.action.data == "save" and not field.data:
            raise ValidationError(_l("Choose at least one language."))


# --- Staff ------------------------------------------------------------------------------


class SubscriberFilterForm(FlaskForm):
    """Search and filters of the staff list (a GET form: no CSRF, nothing changes)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[strip_text], validators=[Optional(), Length(max=254)])
    status = SelectField(_l("Status"), default="", validate_choice=True)
    language = SelectField(_l("Language"), default="", validate_choice=True)
    source = SelectField(_l("Source"), default="", validate_choice=True)

    def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.status.choices = choices(
            [("", _l("Any status"))] + [(s.value, status_label(s.value)) for s in SubscriberStatus]
        )
        self.language.choices = [SelectChoice("", _l("Any language")), *language_choices(languages)]
        self.source.choices = choices(
            [("", _l("Any source"))] + [(s.value, source_label(s.value)) for s in SubscriberSource]
        )


class StatusActionForm(FlaskForm):
    """One staff action on a subscriber's status."""

    action = HiddenField(validators=[DataRequired()])


IMPORT_FORMATS = ("auto", "readership", "substack", "ghost", "mailchimp", "listmonk")


class ImportForm(FlaskForm):
    """The staff CSV upload."""

    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])
    format = SelectField(_l("Format"), validate_choice=True)
    language = SelectField(_l("Language for rows that name none"), validate_choice=True)

    def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.format.choices = choices(
            [
                ("auto", _l("Detect from the header row")),
                ("readership", "Readership"),
                ("substack", "Substack"),
                ("ghost", "Ghost"),
                ("mailchimp", "Mailchimp"),
                ("listmonk", "listmonk"),
            ]
        )
        self.language.choices = language_choices(languages)


#: Encodings staff can choose for an import (any Python codec works on the command line).
IMPORT_ENCODINGS = (
    ("utf-8", "UTF-8"),
    ("utf-16", "UTF-16"),
    ("cp1251", "Windows-1251"),
    ("koi8-r", "KOI8-R"),
    ("cp866", "CP866 (DOS)"),
    ("mac-cyrillic", "Mac Cyrillic"),
    ("cp1252", "Windows-1252"),
    ("latin-1", "ISO-8859-1"),
    ("cp1250", "Windows-1250"),
)


class ImportStartForm(FlaskForm):
    """The preview page's form: the encoding to read the file in, then preview or start."""

    encoding = SelectField(_l("Text encoding"), validate_choice=True)
    action = SelectField(validate_choice=True)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.encoding.choices = choices(
            [("auto", _l("Detect automatically"))] + list(IMPORT_ENCODINGS)
        )
        self.action.choices = choices([("preview", "preview"), ("start", "start")])


class ExportForm(FlaskForm):
    """The export button (a POST: the download is written to the audit log)."""

    status = SelectField(_l("Status"), validate_choice=True)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.status.choices = choices(
            [("", _l("Everyone"))] + [(s.value, status_label(s.value)) for s in SubscriberStatus]
        )


_STATUS_LABELS = {
    "pending": _l("Pending"),
    "confirmed": _l("Confirmed"),
    "unsubscribed": _l("Unsubscribed"),
    "bounced": _l("Bounced"),
}
_SOURCE_LABELS = {
    "signup_page": _l("Signup page"),
    "embed": _l("Embedded form"),
    "import": _l("Import"),
    "donation": _l("Donation"),
    "staff": _l("Staff"),
}


def status_label(value: str) -> Any:
    """A translated label for a status value."""
    return _STATUS_LABELS.get(value, value)


def source_label(value: str) -> Any:
    """A translated label for a source value."""
    return _SOURCE_LABELS.get(value, value)

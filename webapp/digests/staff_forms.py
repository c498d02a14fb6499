"""Forms of the staff digest pages."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.core.forms import choices
from webapp.digests.services import INTRO_MAX, SUBJECT_MAX

WEEKDAYS = choices(
    [
        ("0", _l("Monday")),
        ("1", _l("Tuesday")),
        ("2", _l("Wednesday")),
        ("3", _l("Thursday")),
        ("4", _l("Friday")),
        ("5", _l("Saturday")),
        ("6", _l("Sunday")),
    ]
)


class IssueForm(FlaskForm):
    """Subject and intro of a draft."""

    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=SUBJECT_MAX)])
    intro = TextAreaField(_l("Intro"), validators=[Length(max=INTRO_MAX)], render_kw={"rows": 6})


class TestSendForm(FlaskForm):
    """Send the issue to one address, as a donor or not."""

    to = StringField(_l("Send to"), validators=[DataRequired(), Email(), Length(max=254)])
    as_donor = BooleanField(_l("As a donor"))


class ActionForm(FlaskForm):
    """A button that changes something (approve, pause, move an item): only the CSRF token."""


def _valid_timezone(_form: FlaskForm, field: StringField) -> None:
    if field.data not in available_timezones():
        raise ValidationError(_l("Unknown time zone; use a name like Europe/Berlin or UTC."))


class _Checkboxes(SelectMultipleField):
    """A group of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DigestSettingsForm(FlaskForm):
    """When issues are built and whether they go out on their own."""

    weekday = SelectField(_l("Day"), choices=WEEKDAYS, coerce=int, validators=[InputRequired()])
    send_time = StringField(
        _l("Time"),
        validators=[
            DataRequired(),
            Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message=_l("Use the form HH:MM, e.g. 08:00.")),
        ],
    )
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), _valid_timezone])
    auto_send = SelectField(
        _l("When an issue is built"),
        choices=choices([("wait", _l("Wait for approval")), ("auto", _l("Send automatically"))]),
    )
    new_articles_limit = IntegerField(
        _l("New articles per issue, at most"),
        validators=[InputRequired(), NumberRange(min=1, max=50)],
    )
    #: Choices are the site's languages (set by the view).
    click_redirect_languages = _Checkboxes(
        _l("Count clicks on links (through the redirect) in"),
        description=_l(
            "Counts each link of an issue, never who followed it. Untick a language where"
            " the redirect's address would be blocked: its issues then link straight to"
            " the articles."
        ),
        validate_choice=True,
    )

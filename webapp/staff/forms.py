"""Forms of the staff area: sign-in, own account, staff management, audit filter."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from webapp.staff.roles import Role
from webapp.staff.services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, totp_digits


def role_choices() -> list[tuple[str, str]]:
    """Roles as (value, label) pairs for a select."""
    labels = {
        Role.ADMIN: _l("Admin — everything, manages staff and settings"),
        Role.EDITOR: _l("Editor — articles, digests, subscribers"),
        Role.FUNDRAISER: _l("Fundraiser — donations and reports"),
        Role.VIEWER: _l("Viewer — read-only reports"),
    }
    return [(role.value, str(labels[role])) for role in Role]


def _new_password_length() -> Length:
    return Length(
        min=MIN_PASSWORD_LENGTH,
        max=MAX_PASSWORD_LENGTH,
        message=_l("Use at least %(min)d characters.", min=MIN_PASSWORD_LENGTH),
    )


def _six_digits(_form: FlaskForm, field: StringField) -> None:
    """A TOTP code is six digits 0-9 (other scripts' digits are refused with this message)."""
    if field.data and totp_digits(field.data) is None:
        raise ValidationError(_l("Enter the six digits 0-9 that your authenticator app shows."))


class LoginForm(FlaskForm):
    """Step one of sign-in (field names are part of the public contract)."""

    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    next = HiddenField()


class TotpLoginForm(FlaskForm):
    """Step two of sign-in for accounts with two-factor sign-in."""

    code = StringField(
        _l("Six-digit code from your authenticator app"),
        validators=[DataRequired(), Length(max=12), _six_digits],
    )


class ChangePasswordForm(FlaskForm):
    """Change one's own password."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), _new_password_length()]
    )
    confirm_password = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The passwords differ."))],
    )


class TotpCodeForm(FlaskForm):
    """A TOTP code confirming enabling or disabling two-factor sign-in."""

    totp_code = StringField(
        _l("Six-digit code"), validators=[DataRequired(), Length(max=12), _six_digits]
    )


class NewStaffForm(FlaskForm):
    """An admin adds a staff user."""

    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=role_choices, validators=[DataRequired()])
    password = PasswordField(
        _l("Password"),
        description=_l("Leave empty to generate a temporary password, shown once."),
        validators=[Optional(), _new_password_length()],
    )

    def validate_name(self, field: StringField) -> None:
        """Names are one line of visible text."""
        if any(ord(ch) < 32 for ch in field.data or ""):
            raise ValidationError(_l("Remove the invisible control characters from the name."))

    def validate_email(self, field: StringField) -> None:
        """A sign-in address needs an @ with something on both sides."""
        local, _, domain = (field.data or "").strip().partition("@")
        if not local or not domain or "@" in domain:
            raise ValidationError(_l("Enter an email address like name@example.org."))


class RoleForm(FlaskForm):
    """An admin changes someone's role."""

    role = SelectField(_l("Role"), choices=role_choices, validators=[DataRequired()])


class AuditFilterForm(FlaskForm):
    """Filters of the audit log page (GET, no CSRF)."""

    class Meta:
        csrf = False

    action = SelectField(_l("Action"), choices=[], validators=[Optional()], validate_choice=False)
    actor = StringField(_l("Actor email contains"), validators=[Optional(), Length(max=254)])

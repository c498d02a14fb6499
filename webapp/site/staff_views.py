"""Staff page for the publication's settings: name, taglines, site URL, colours, logo."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from webapp.core.clock import utcnow
from webapp.core.net import client_ip
from webapp.db import get_session
from webapp.site import editing
from webapp.site.services import get_site_settings
from webapp.staff.services import Permission, current_staff, requires

bp = Blueprint("staff_settings", __name__, url_prefix="/staff/settings")


class SettingsForm(FlaskForm):
    """The editable settings (values are checked again by `editing.clean_changes`)."""

    publication_name = StringField(
        _l("Publication name"), validators=[DataRequired(), Length(max=200)]
    )
    tagline_en = StringField(_l("Tagline (English)"), validators=[Optional(), Length(max=300)])
    tagline_ru = StringField(_l("Tagline (Russian)"), validators=[Optional(), Length(max=300)])
    site_url = StringField(
        _l("Site address"),
        description=_l("Your publication's own site, e.g. https://example.org."),
        validators=[DataRequired(), Length(max=300)],
    )
    extra_embed_origins = TextAreaField(
        _l("Other sites allowed to embed the signup form"),
        description=_l("One origin per line, e.g. https://blog.example.org."),
        validators=[Optional(), Length(max=4000)],
    )
    primary_color = StringField(
        _l("Primary colour"),
        description=_l("Links and buttons, as #rrggbb."),
        validators=[DataRequired(), Length(max=7)],
    )
    accent_color = StringField(
        _l("Accent colour"),
        description=_l("Highlights, as #rrggbb."),
        validators=[DataRequired(), Length(max=7)],
    )
    postal_address = TextAreaField(
        _l("Postal address"),
        description=_l("Shown in email footers; anti-spam laws ask for it."),
        validators=[Optional(), Length(max=1000)],
    )


class LogoForm(FlaskForm):
    """Upload a new logo."""

    logo = FileField(
        _l("Logo"),
        description=_l("PNG, JPEG, WebP or SVG, at most 512 KB."),
        validators=[FileRequired(_l("Choose an image file."))],
    )


class RemoveLogoForm(FlaskForm):
    """Only the CSRF token."""


def _field_message(name: str, message: str) -> str:
    # Service messages are English; the translated ones for each rule live here.
    messages = {
        "primary_color": _("Use a colour like #1d4ed8 (a # and six hexadecimal digits)."),
        "accent_color": _("Use a colour like #1d4ed8 (a # and six hexadecimal digits)."),
        "site_url": _("Enter the full address of the site, like https://example.org."),
        "publication_name": _("The publication needs a name."),
    }
    if "NUL" in message:
        return _("Remove the invisible control characters from this text.")
    if name == "extra_embed_origins":
        return _(
            "Enter origins only (scheme and host, like https://example.org): %(detail)s",
            detail=message.partition(": ")[2],
        )
    return messages.get(name, message)


def _render(
    form: SettingsForm | None = None, logo_form: LogoForm | None = None, status: int = 200
) -> tuple[str, int]:
    settings = get_site_settings(get_session())
    if form is None:
        form = SettingsForm(formdata=None, obj=settings)
        form.extra_embed_origins.data = "\n".join(settings.extra_embed_origins.split())
    return render_template(
        "staff/settings.html",
        form=form,
        logo_form=logo_form or LogoForm(formdata=None),
        remove_form=RemoveLogoForm(formdata=None),
        settings=settings,
        warnings=editing.contrast_warnings(settings),
        min_contrast=editing.MIN_CONTRAST,
        max_logo_kb=editing.MAX_LOGO_BYTES // 1024,
    ), status


@bp.get("/")
@requires(Permission.SETTINGS)
def edit() -> Any:
    """The settings form, with contrast warnings for the current colours."""
    return _render()


@bp.post("/")
@requires(Permission.SETTINGS)
def save() -> Any:
    """Validate and save the settings; nothing is saved when any value is wrong."""
    form = SettingsForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    db = get_session()
    raw = {name: getattr(form, name).data for name in editing.EDITABLE_FIELDS}
    try:
        changed = editing.save_site_settings(
            db, actor=current_staff(), raw=raw, now=utcnow(), ip=client_ip()
        )
    except ValueError as exc:
        db.rollback()
        field = exc.args[1] if len(exc.args) > 1 else "publication_name"
        getattr(form, field).errors = [_field_message(field, str(exc.args[0]))]
        return _render(form, status=422)
    db.commit()
    if changed:
        flash(_("Settings saved."), "ok")
    else:
        flash(_("Nothing changed."), "ok")
    for name, ratio in editing.contrast_warnings(get_site_settings(db)).items():
        flash(
            _(
                "%(field)s has a contrast of %(ratio)s:1 against white; text in it may be "
                "hard to read (aim for at least 4.5:1).",
                field=getattr(form, name).label.text,
                ratio=ratio,
            ),
            "error",
        )
    return redirect(url_for("staff_settings.edit"))


@bp.post("/logo")
@requires(Permission.SETTINGS)
def upload_logo() -> Any:
    """Replace the logo: 413 when over 512 KB, 422 when it is not a PNG/JPEG/WebP/SVG."""
    if (request.content_length or 0) > editing.MAX_LOGO_BYTES + 64 * 1024:
        abort(413)
    form = LogoForm()
    if not form.validate_on_submit():
        return _render(logo_form=form, status=422)
    data = form.logo.data.stream.read(editing.MAX_LOGO_BYTES + 1)
    db = get_session()
    try:
        editing.set_logo(db, actor=current_staff(), data=data, now=utcnow(), ip=client_ip())
    except editing.LogoTooLarge:
        db.rollback()
        form.logo.errors = [_("The logo must be at most 512 KB.")]
        return _render(logo_form=form, status=413)
    except ValueError:
        db.rollback()
        form.logo.errors = [_("Upload a PNG, JPEG, WebP or SVG image (SVGs without scripts).")]
        return _render(logo_form=form, status=422)
    db.commit()
    flash(_("The logo has been updated."), "ok")
    return redirect(url_for("staff_settings.edit"))


@bp.post("/logo/remove")
@requires(Permission.SETTINGS)
def remove_logo() -> Any:
    """Remove the logo (the publication's name is shown instead)."""
    if not RemoveLogoForm().validate_on_submit():
        abort(400)
    db = get_session()
    removed = editing.remove_logo(db, actor=current_staff(), now=utcnow(), ip=client_ip())
    db.commit()
    flash(_("The logo has been removed.") if removed else _("There was no logo."), "ok")
    return redirect(url_for("staff_settings.edit"))

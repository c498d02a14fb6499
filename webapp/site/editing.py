"""Staff editing of the publication's settings: validation rules, logo checks, audited saves."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from webapp.site.models import SiteSettings
from webapp.site.services import get_site_settings, update_site_settings
from webapp.staff.models import StaffUser
from webapp.staff.services import record_audit

#: Largest logo accepted, in bytes.
MAX_LOGO_BYTES = 512 * 1024
#: WCAG AA minimum for normal text against its background.
MIN_CONTRAST = 4.5
#: Fields staff edit on the settings page.
EDITABLE_FIELDS = (
    "publication_name",
    "tagline_en",
    "tagline_ru",
    "site_url",
    "extra_embed_origins",
    "primary_color",
    "accent_color",
    "postal_address",
)

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SVG_DANGER = re.compile(rb"<script|javascript:|<foreignobject|\son[a-z]+\s*=|<!entity", re.I)


class LogoTooLarge(ValueError):
    """The uploaded logo is over `MAX_LOGO_BYTES` (answer 413)."""


def parse_color(value: str) -> str:
    """`value` as a lower-case `#rrggbb`; raises `ValueError` otherwise."""
    text = (value or "").strip()
    if not _COLOR.match(text):
        raise ValueError("Use a colour like #1d4ed8 (a # and six hexadecimal digits).")
    return text.lower()


def _luminance(color: str) -> float:
    channels = []
    for i in (1, 3, 5):
        c = int(color[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(color: str, background: str = "#ffffff") -> float:
    """The WCAG contrast ratio of two `#rrggbb` colours (1 to 21)."""
    a, b = _luminance(parse_color(color)), _luminance(parse_color(background))
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def parse_site_url(value: str) -> str:
    """An http(s) URL with a host, without a trailing slash; raises `ValueError` otherwise."""
    text = (value or "").strip()
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in text)
    ):
        raise ValueError("Enter the full address of the site, like https://example.org.")
    return text.rstrip("/")


def parse_origins(value: str) -> str:
    """Origins (`scheme://host[:port]`, separated by spaces or lines), normalised.

    Raises `ValueError` naming the entries that are not origins.
    """
    good: list[str] = []
    bad: list[str] = []
    for item in (value or "").split():
        parts = urlsplit(item.rstrip("/"))
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (
            parts.scheme in ("http", "https")
            and parts.hostname
            and port_ok
            and not parts.path
            and not parts.query
            and not parts.fragment
            and "@" not in parts.netloc
        ):
            origin = f"{parts.scheme}://{parts.netloc.lower()}"
            if origin not in good:
                good.append(origin)
        else:
            bad.append(item)
    if bad:
        raise ValueError(
            "These are not origins (scheme and host only, like https://example.org): "
            + ", ".join(bad[:5])
        )
    return " ".join(good)


def clean_changes(raw: dict[str, Any]) -> dict[str, Any]:
    """Validated values for the editable fields present in `raw`.

    Raises `ValueError` with the field name as `args[1]` on the first bad value.
    """
    changes: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name not in raw:
            continue
        value = raw[name] if raw[name] is not None else ""
        try:
            if "\x00" in value:
                raise ValueError("The text contains a NUL character.")
            if name in ("primary_color", "accent_color"):
                value = parse_color(value)
            elif name == "site_url":
                value = parse_site_url(value)
            elif name == "extra_embed_origins":
                value = parse_origins(value)
            elif name == "publication_name":
                value = value.strip()
                if not value:
                    raise ValueError("The publication needs a name.")
            else:
                value = value.strip()
        except ValueError as exc:
            raise ValueError(str(exc), name) from None
        changes[name] = value
    return changes


def contrast_warnings(settings: SiteSettings) -> dict[str, float]:
    """Colour fields whose contrast against white is below `MIN_CONTRAST`, with the ratio."""
    warnings = {}
    for name in ("primary_color", "accent_color"):
        try:
            ratio = contrast_ratio(getattr(settings, name))
        except ValueError:
            continue
        if ratio < MIN_CONTRAST:
            warnings[name] = round(ratio, 2)
    return warnings


def save_site_settings(
    session: Session,
    *,
    actor: StaffUser | None,
    raw: dict[str, Any],
    now: datetime,
    ip: str | None = None,
) -> list[str]:
    """Validate and apply the editable settings in `raw`; audited. Returns the changed names.

    Raises `ValueError(message, field)` and changes nothing when a value is invalid.
    The caller commits.
    """
    changes = clean_changes(raw)
    settings = get_site_settings(session)
    changed = [name for name, value in changes.items() if getattr(settings, name) != value]
    if not changed:
        return []
    update_site_settings(session, {name: changes[name] for name in changed}, now)
    record_audit(
        session,
        actor=actor,
        action="settings.updated",
        target_type="site_settings",
        target_id=settings.id,
        details={"changed": changed},
        ip=ip,
        now=now,
    )
    return changed


def detect_image_mime(data: bytes) -> str | None:
    """The image type from its first bytes (PNG, JPEG, WebP or SVG), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:2048].lstrip(b"\xef\xbb\xbf").lstrip()
    # An SVG starts with its root element, maybe after an XML declaration, comments or doctype.
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!DOCTYPE svg", b"<!doctype svg")) and (
        b"<svg" in head
    ):
        return "image/svg+xml"
    return None


def check_logo(data: bytes) -> str:
    """The MIME type of an acceptable logo.

    Raises `LogoTooLarge` over `MAX_LOGO_BYTES`, and `ValueError` for anything that is not
    a PNG, JPEG, WebP or a script-free SVG.
    """
    if len(data) > MAX_LOGO_BYTES:
        raise LogoTooLarge(f"The logo must be at most {MAX_LOGO_BYTES // 1024} KB.")
    if not data:
        raise ValueError("The file is empty.")
    mime = detect_image_mime(data)
    if mime is None:
        raise ValueError("Upload a PNG, JPEG, WebP or SVG image.")
    if mime == "image/svg+xml":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("The SVG file is not valid UTF-8 text.") from None
        if _SVG_DANGER.search(data):
            raise ValueError("SVG logos may not contain scripts, event handlers or entities.")
    return mime


def set_logo(
    session: Session,
    *,
    actor: StaffUser | None,
    data: bytes,
    now: datetime,
    ip: str | None = None,
) -> SiteSettings:
    """Store a new logo after `check_logo`; audited. The caller commits."""
    mime = check_logo(data)
    settings = update_site_settings(session, {"logo_data": data, "logo_mime": mime}, now)
    record_audit(
        session,
        actor=actor,
        action="settings.logo_uploaded",
        target_type="site_settings",
        target_id=settings.id,
        details={"mime": mime, "bytes": len(data)},
        ip=ip,
        now=now,
    )
    return settings


def remove_logo(
    session: Session, *, actor: StaffUser | None, now: datetime, ip: str | None = None
) -> bool:
    """Drop the logo; audited. False when there was none."""
    settings = get_site_settings(session)
    if not settings.logo_data:
        return False
    update_site_settings(session, {"logo_data": None, "logo_mime": None}, now)
    record_audit(
        session,
        actor=actor,
        action="settings.logo_removed",
        target_type="site_settings",
        target_id=settings.id,
        ip=ip,
        now=now,
    )
    return True

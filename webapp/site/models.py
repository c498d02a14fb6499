"""The publication's settings: one row, edited by admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


class SiteSettings(Base):
    """What readers see of the publication on public pages and in emails."""

    __tablename__ = "site_settings"

    #: Always 1: there is one publication per installation.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    #: The publication's name in page titles, headers and email senders.
    publication_name: Mapped[str] = mapped_column(String(200), default="Readership")
    #: A one-line description under the name (English).
    tagline_en: Mapped[str] = mapped_column(String(300), default="Independent analysis")
    #: The same line in Russian.
    tagline_ru: Mapped[str] = mapped_column(String(300), default="Независимая аналитика")
    #: The publication's own site, e.g. https://example.org; also the embed form's allowed origin.
    site_url: Mapped[str] = mapped_column(String(300), default="https://example.org")
    #: Extra origins allowed to post the embeddable signup form, space separated.
    extra_embed_origins: Mapped[str] = mapped_column(Text, default="")
    #: Main colour (links, buttons) as #rrggbb.
    primary_color: Mapped[str] = mapped_column(String(7), default="#1d4ed8")
    #: Accent colour (highlights) as #rrggbb.
    accent_color: Mapped[str] = mapped_column(String(7), default="#b91c1c")
    #: Uploaded logo image bytes (PNG, JPEG, SVG or WebP), served at /logo.
    logo_data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: MIME type of the logo.
    logo_mime: Mapped[str | None] = mapped_column(String(50), nullable=True)
    #: Postal address shown in email footers (anti-spam laws ask for one).
    postal_address: Mapped[str] = mapped_column(Text, default="")
    #: When an admin last changed anything here.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def embed_origins(self) -> set[str]:
        """Origins allowed to post the embeddable signup form."""
        origins = {self.site_url.rstrip("/")} if self.site_url else set()
        origins.update(o.rstrip("/") for o in self.extra_embed_origins.split() if o)
        return origins

    def tagline(self, language: str) -> str:
        """The tagline in `language` (English when there is none in that language)."""
        return str(getattr(self, f"tagline_{language}", None) or self.tagline_en)

"""Feeds and the articles imported from them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db import Base


class Feed(Base):
    """An RSS or Atom feed of the publication, in one language."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The feed's address (http or https).
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    #: Language of the articles in this feed.
    language: Mapped[str] = mapped_column(String(8))
    #: The feed's own title, as last read.
    title: Mapped[str] = mapped_column(String(300), default="")
    #: Inactive feeds are not imported by the job.
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: When the last import was tried, and when one last worked.
    last_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Why the last import failed (shown to staff); empty after a success.
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: What the last import skipped or kept without a date, counted by reason
    #: (`feeds.ENTRY_NOTES`), for the staff page.
    last_import_notes: Mapped[dict[str, int]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Article(Base):
    """One article of the publication, in one language."""

    __tablename__ = "articles"
    __table_args__ = (Index("ix_articles_language_published_at", "language", "published_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The article's address: one row per address, so re-imports update, never duplicate.
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    #: The feed entry's id (guid), when it has one.
    guid: Mapped[str | None] = mapped_column(String(1000), nullable=True, index=True)
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(500))
    #: The standfirst: the feed's summary as plain text.
    lede: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(300), default="")
    #: The section (the entry's first category).
    section: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str] = mapped_column(String(1000), default="")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Articles with the same key are translations of each other (from the URL's slug, or
    #: set by staff).
    translation_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    #: Staff pinned it to the top reads of its language.
    pinned_in_top_reads: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Staff keep it out of the top reads.
    excluded_from_top_reads: Mapped[bool] = mapped_column(Boolean, default=False)
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeds.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    feed: Mapped[Feed | None] = relationship()


class ArticleViewDay(Base):
    """Views of one article on one day (UTC): all that is kept of reading, long term."""

    __tablename__ = "article_view_days"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    views: Mapped[int] = mapped_column(Integer, default=0)


class ArticleViewSeen(Base):
    """Raw data behind the one-view-per-visitor rule: a visitor hash (keyed with a salt that
    changes every day, so it cannot be followed from one day to the next and names nobody)
    per article and day. Deleted by the clean-up job after two days."""

    __tablename__ = "article_view_seen"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    visitor_hash: Mapped[str] = mapped_column(String(32), primary_key=True)

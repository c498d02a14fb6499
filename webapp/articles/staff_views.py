"""Staff article pages (editor and admin): the article list with the current top reads,
adding and editing an article (with its translation link), quick pin and exclude buttons,
and the feeds (add, switch on or off, delete, import now). Every change is audit-logged.

The queries and changes behind the pages are in `webapp.articles.services`; the views
validate a form, call them, write the audit row and commit.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.articles.models import Article, Feed
from webapp.articles.services import (
    MAX_ID,
    VIEW_DAYS,
    ImportResult,
    add_feed,
    apply_article_values,
    article_counts,
    configured_fetcher,
    current_top_reads,
    feeds_by_language,
    import_feed_row,
    in_utc,
    link_translation,
    linked_translation,
    list_articles,
    set_top_reads_flag,
    translation_candidates,
)
from webapp.articles.staff_forms import (
    ArticleFilterForm,
    ArticleForm,
    FeedForm,
    TopReadsActionForm,
)
from webapp.core.clock import utcnow
from webapp.core.forms import EmptyForm
from webapp.core.net import is_safe_redirect
from webapp.db import get_session
from webapp.staff.services import Permission, audit_request, requires

bp = Blueprint(
    "articles_staff", __name__, url_prefix="/staff/articles", template_folder="templates"
)

# --- Helpers of the views -----------------------------------------------------------------


def _article_values(form: ArticleForm) -> dict[str, Any]:
    published = form.published_at.data
    return {
        "url": form.url.data or "",
        "title": form.title.data or "",
        "lede": form.lede.data or "",
        "author": form.author.data or "",
        "section": form.section.data or "",
        "image_url": form.image_url.data or "",
        # The form's time is UTC, as its label says.
        "published_at": published.replace(tzinfo=UTC) if published else None,
        "language": str(form.language.data),
        "pinned_in_top_reads": bool(form.pinned_in_top_reads.data),
        "excluded_from_top_reads": bool(form.excluded_from_top_reads.data),
    }


def _languages() -> list[str]:
    return list(current_app.config["LANGUAGES"])


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


def _article_or_404(article_id: int) -> Article:
    article = get_session().get(Article, article_id) if article_id <= MAX_ID else None
    if article is None:
        abort(404)
    return article


def _feed_or_404(feed_id: int) -> Feed:
    feed = get_session().get(Feed, feed_id) if feed_id <= MAX_ID else None
    if feed is None:
        abort(404)
    return feed


def _back_to_list() -> Any:
    target = request.form.get("next", "")
    if is_safe_redirect(target) and target.startswith(bp.url_prefix or "/staff/articles"):
        return redirect(target, code=303)
    return redirect(url_for(".index"), code=303)


def _add_error(field: Any, message: str) -> None:
    field.errors = [*field.errors, message]


# --- The list -----------------------------------------------------------------------------


@bp.get("/")
@requires(Permission.ARTICLES)
def index() -> Any:
    """Articles, newest published first, filtered by language and title; the current top
    reads of each language above them."""
    session = get_session()
    languages = _languages()
    now = utcnow()
    top = current_top_reads(
        session,
        languages,
        now=now,
        days=int(current_app.config.get("TOP_READS_DAYS", 7)),
        limit=int(current_app.config.get("TOP_READS_COUNT", 6)),
    )
    form = ArticleFilterForm(request.args, languages=languages)
    if not form.validate():
        return render_template(
            "articles/staff/index.html", form=form, page=None, filters={}, top=top
        ), 400
    page = list_articles(
        session,
        language=form.language.data or "",
        q=form.q.data or "",
        page=_page_number(),
        now=now,
    )
    return render_template(
        "articles/staff/index.html",
        form=form,
        page=page,
        filters=form.active_filters(),
        top=top,
        view_days=VIEW_DAYS,
    )


@bp.post("/<int:article_id>/top-reads")
@requires(Permission.ARTICLES)
def top_reads_action(article_id: int) -> Any:
    """The list's quick buttons: pin, unpin, exclude, include."""
    article = _article_or_404(article_id)
    form = TopReadsActionForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    action = str(form.action.data)
    if set_top_reads_flag(article, action, utcnow()):
        audit_request(
            session,
            action=f"article.{action}",
            target_type="article",
            target_id=article.id,
            details={"url": article.url, "language": article.language},
        )
        session.commit()
        messages = {
            "pin": _("“%(title)s” is pinned to the top reads.", title=article.title),
            "unpin": _("“%(title)s” is no longer pinned.", title=article.title),
            "exclude": _("“%(title)s” is kept out of the top reads.", title=article.title),
            "include": _("“%(title)s” can be in the top reads again.", title=article.title),
        }
        flash(messages[action], "success")
    return _back_to_list()


# --- Adding and editing -------------------------------------------------------------------


def _choice_label(article: Article) -> str:
    title = article.title if len(article.title) <= 90 else article.title[:89] + "…"
    published = in_utc(article.published_at)
    day = published.strftime("%Y-%m-%d") if published else "—"
    return f"{article.language} · {title} ({day})"


def _posted_id(name: str) -> int | None:
    value = request.form.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _translation_choices(
    session: Session, language: str, article: Article | None, linked: Article | None
) -> list[tuple[str, str]]:
    """The menu: recent articles in other languages, plus the current translation and the
    posted choice (so a re-shown form keeps what was chosen)."""
    exclude_id = article.id if article is not None else None
    options = translation_candidates(session, language, exclude_id=exclude_id)
    extra = [linked]
    if request.method == "POST":
        posted = _posted_id("translation_of")
        if posted is not None and posted <= MAX_ID and posted != exclude_id:
            extra.append(session.get(Article, posted))
    for other in extra:
        if other is not None and other not in options:
            options.append(other)
    return [(str(other.id), _choice_label(other)) for other in options]


def _translation_problem(
    session: Session, article: Article | None, other_id: int, language: str
) -> tuple[Article | None, str | None]:
    """The chosen translation, or why it cannot be one."""
    other = session.get(Article, other_id) if other_id <= MAX_ID else None
    if other is None:
        return None, _("That article does not exist (any more). Choose another one.")
    if article is not None and other.id == article.id:
        return None, _("An article cannot be its own translation.")
    if other.language == language:
        return None, _("The translation must be in another language than this article.")
    if other.translation_key:
        # Another article in this language already has that translation: two articles in
        # one language cannot both be "the" translation.
        same_language = select(Article).where(
            Article.translation_key == other.translation_key, Article.language == language
        )
        if article is not None:
            same_language = same_language.where(Article.id != article.id)
        clash = session.scalar(same_language.limit(1))
        if clash is not None:
            return None, _(
                "“%(other)s” is already linked to “%(clash)s” in this language. Remove that "
                "link first (edit “%(clash)s” and choose None).",
                other=other.title,
                clash=clash.title,
            )
    return other, None


def _url_problem(session: Session, article: Article | None, url: str) -> str | None:
    clash = session.scalar(select(Article).where(Article.url == url).limit(1))
    if clash is not None and clash is not article:
        return _("Another article has this address: “%(title)s”.", title=clash.title)
    parts = urlsplit(url)
    if (parts.query or parts.fragment) and (article is None or article.url != url):
        # Views are counted by the page address without query and fragment.
        return _("Enter the address without the part after ? or #.")
    return None


def _article_page(
    form: ArticleForm, article: Article | None, status: int = 200, **context: Any
) -> Any:
    return render_template(
        "articles/staff/article_form.html", form=form, article=article, **context
    ), status


def _save_article(article: Article | None) -> Any:
    session = get_session()
    languages = _languages()
    language = request.form.get("language", "") if request.method == "POST" else ""
    if language not in languages:
        language = article.language if article is not None else languages[0]
    linked = linked_translation(session, article) if article is not None else None
    form = ArticleForm(
        obj=article,
        languages=languages,
        translations=_translation_choices(session, language, article, linked),
    )
    if request.method == "GET":
        if article is not None:
            published = in_utc(article.published_at)
            form.published_at.data = published.replace(tzinfo=None) if published else None
            form.translation_of.data = str(linked.id) if linked is not None else ""
        return _article_page(form, article, linked=linked)

    valid = form.validate_on_submit()
    if form.url.data and not form.url.errors:
        problem = _url_problem(session, article, form.url.data)
        if problem:
            _add_error(form.url, problem)
            valid = False
    other = None
    if (
        form.translation_id is not None
        and not form.translation_of.errors
        and not form.language.errors
    ):
        other, problem = _translation_problem(
            session, article, form.translation_id, str(form.language.data)
        )
        if problem:
            _add_error(form.translation_of, problem)
            valid = False
    if not valid:
        return _article_page(form, article, 400, linked=linked)

    now = utcnow()
    created = article is None
    if article is None:
        article = Article(created_at=now, translation_key="")
        session.add(article)
    changed = apply_article_values(article, _article_values(form), now)
    try:
        session.flush()  # the id names a new translation key
        if link_translation(article, other, previously_linked=linked):
            changed.append("translation")
            article.updated_at = now
        if created or changed:
            audit_request(
                session,
                action="article.create" if created else "article.update",
                target_type="article",
                target_id=article.id,
                details={
                    "url": article.url,
                    "changed": changed,
                    "translation_of": other.id if other is not None else None,
                },
            )
        session.commit()
    except IntegrityError:
        # Someone saved the same address a moment ago.
        session.rollback()
        _add_error(form.url, _("Another article has this address."))
        return _article_page(form, None if created else article, 400, linked=linked)
    if created:
        flash(_("Article “%(title)s” added.", title=article.title), "success")
    elif changed:
        flash(_("Article “%(title)s” saved.", title=article.title), "success")
    else:
        flash(_("Nothing changed."), "success")
    return redirect(url_for(".edit", article_id=article.id), code=303)


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.ARTICLES)
def new() -> Any:
    """Add an article by hand (one that is not in a feed)."""
    return _save_article(None)


@bp.route("/<int:article_id>", methods=["GET", "POST"])
@requires(Permission.ARTICLES)
def edit(article_id: int) -> Any:
    """Edit an article: its fields, top-reads flags and translation link."""
    return _save_article(_article_or_404(article_id))


# --- Feeds --------------------------------------------------------------------------------


def describe_import_notes(notes: dict[str, int]) -> str:
    """What the feed's last import skipped and why, and how many articles it kept without a
    date, in the staff's language ("2 entries skipped: no link (1), …; 1 date unknown")."""
    labels = {
        "no_link": _("no link"),
        "no_title": _("no title"),
        "link_too_long": _("link too long"),
        "duplicate_link": _("same link twice"),
        "unreadable": _("unreadable entry"),
    }
    reasons = [
        (labels.get(name, name), count)
        for name, count in sorted(notes.items())
        if name != "undated" and count
    ]
    parts = []
    if reasons:
        skipped = sum(count for _label, count in reasons)
        parts.append(
            ngettext("%(num)d entry skipped", "%(num)d entries skipped", skipped)
            + ": "
            + ", ".join(f"{label} ({count})" for label, count in reasons)
        )
    if notes.get("undated"):
        parts.append(
            ngettext(
                "%(num)d date unknown (listed by import time)",
                "%(num)d dates unknown (listed by import time)",
                notes["undated"],
            )
        )
    return "; ".join(parts)


def _feeds_page(form: FeedForm, status: int = 200) -> Any:
    session = get_session()
    return render_template(
        "articles/staff/feeds.html",
        form=form,
        groups=feeds_by_language(session, _languages()),
        counts=article_counts(session),
        describe_import_notes=describe_import_notes,
    ), status


@bp.route("/feeds", methods=["GET", "POST"])
@requires(Permission.ARTICLES)
def feeds() -> Any:
    """The feeds by language, with their last outcome; the form to add one."""
    form = FeedForm(languages=_languages())
    if request.method == "GET":
        return _feeds_page(form)
    session = get_session()
    valid = form.validate_on_submit()
    if valid and session.scalar(select(Feed.id).where(Feed.url == form.url.data)) is not None:
        _add_error(form.url, _("This feed is already in the list."))
        valid = False
    if not valid:
        return _feeds_page(form, 400)
    try:
        feed = add_feed(session, str(form.url.data), str(form.language.data), now=utcnow())
        audit_request(
            session,
            action="feed.add",
            target_type="feed",
            target_id=feed.id,
            details={"url": feed.url, "language": feed.language},
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        _add_error(form.url, _("This feed is already in the list."))
        return _feeds_page(form, 400)
    flash(
        _("Feed added. Its articles are imported within the hour, or now with “Import now”."),
        "success",
    )
    return redirect(url_for(".feeds"), code=303)


@bp.post("/feeds/<int:feed_id>/active")
@requires(Permission.ARTICLES)
def feed_toggle(feed_id: int) -> Any:
    """Switch the feed's hourly import on or off."""
    feed = _feed_or_404(feed_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    session = get_session()
    feed.is_active = not feed.is_active
    audit_request(
        session,
        action="feed.activate" if feed.is_active else "feed.deactivate",
        target_type="feed",
        target_id=feed.id,
        details={"url": feed.url},
    )
    session.commit()
    if feed.is_active:
        flash(_("%(url)s is imported every hour again.", url=feed.url), "success")
    else:
        flash(_("%(url)s is no longer imported.", url=feed.url), "success")
    return redirect(url_for(".feeds"), code=303)


@bp.post("/feeds/<int:feed_id>/delete")
@requires(Permission.ARTICLES)
def feed_delete(feed_id: int) -> Any:
    """Remove the feed; its articles stay (no longer linked to a feed)."""
    feed = _feed_or_404(feed_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    session = get_session()
    details = {"url": feed.url, "language": feed.language}
    # The foreign key sets the articles' feed_id to NULL.
    session.delete(feed)
    audit_request(
        session, action="feed.delete", target_type="feed", target_id=feed_id, details=details
    )
    session.commit()
    flash(_("%(url)s removed; its articles stay.", url=details["url"]), "success")
    return redirect(url_for(".feeds"), code=303)


@bp.post("/feeds/<int:feed_id>/import")
@requires(Permission.ARTICLES)
def feed_import(feed_id: int) -> Any:
    """Import the feed now and say what happened (a broken feed is a message, not an
    error page)."""
    feed = _feed_or_404(feed_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    session = get_session()
    now = utcnow()
    url = feed.url
    try:
        result = import_feed_row(
            session,
            feed,
            fetcher=configured_fetcher(current_app.config),
            languages=tuple(_languages()),
            now=now,
        )
        _audit_import(session, feed_id, url, result)
        session.commit()
    except Exception as exc:  # whatever went wrong is reported on the feed, never a 500
        session.rollback()
        current_app.logger.exception("feed %s failed", url)
        result = ImportResult(error=f"import failed: {type(exc).__name__}")
        failed = session.get(Feed, feed_id)
        if failed is not None:
            failed.last_fetched_at = now
            failed.last_error = result.error
            _audit_import(session, feed_id, url, result)
            session.commit()
    _flash_import(url, result)
    return redirect(url_for(".feeds"), code=303)


def _audit_import(session: Session, feed_id: int, url: str, result: ImportResult) -> None:
    audit_request(
        session,
        action="feed.import",
        target_type="feed",
        target_id=feed_id,
        details={
            "url": url,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "skipped": result.skipped,
            "error": result.error,
        },
    )


def _flash_import(url: str, result: ImportResult) -> None:
    if result.error and not (result.created or result.updated or result.unchanged):
        flash(_("%(url)s could not be imported: %(error)s", url=url, error=result.error), "error")
        return
    flash(
        _(
            "%(url)s imported: %(created)d new, %(updated)d updated, %(unchanged)d unchanged, "
            "%(skipped)d skipped.",
            url=url,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            skipped=result.skipped,
        ),
        "success",
    )
    if result.error:
        flash(_("The feed has a problem: %(error)s", error=result.error), "error")

"""An issue as email: compiled once per issue and language, filled in per recipient.

`compile_issue` loads the issue's articles, renders the MJML once (through the shared
`EmailRenderer`) and renders the support block twice, for donors and for everyone else.
`IssueEmail.message_for` then builds one recipient's bytes: greeting, signed links, the right
support block and the bulk-mail headers, with no Jinja or MJML run per person.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from babel.dates import format_date
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from emails.message import build_message_bytes
from emails.rendering import CompiledEmail, RenderedEmail, load_translations
from webapp.articles.models import Article
from webapp.core.clock import as_utc
from webapp.core.money import format_money
from webapp.digests.building import get_digest_settings
from webapp.digests.clicks import click_wrapper, redirect_is_on
from webapp.digests.models import DigestIssue
from webapp.donations.models import Campaign
from webapp.donations.services import campaign_progress
from webapp.outbox.services import Mailer, site_context
from webapp.subscribers.services import LinkPurpose, link_url, list_unsubscribe_headers

#: Turns a link of the issue into the link the reader gets (the click redirect, or itself).
LinkWrapper = Callable[[str], str]


def plain_link(url: str) -> str:
    """The link itself (the web archive, and languages with the click redirect off)."""
    return url


#: The per-recipient values of the digest template.
RECIPIENT_FIELDS = (
    "greeting",
    "support_html",
    "support_text",
    "unsubscribe_url",
    "preferences_url",
)


def with_utm(url: str, campaign: str, content: str = "") -> str:
    """`url` with `utm_source`, `utm_medium` and `utm_campaign` (and `utm_content`) added;
    tags already in the URL are kept; non-web URLs are returned as they are."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _value in query}
    tags = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": campaign}
    if content:
        tags["utm_content"] = content
    query += [(key, value) for key, value in tags.items() if key not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def utm_campaign(issue: DigestIssue) -> str:
    """The `utm_campaign` of an issue's links, e.g. "digest-2026-11-26-en"."""
    return f"digest-{as_utc(issue.created_at):%Y-%m-%d}-{issue.language}"


def issue_articles(session: Session, issue: DigestIssue) -> list[tuple[str, Article]]:
    """The issue's (section, article) pairs in order; deleted articles are left out."""
    ids = [int(item["article_id"]) for item in issue.items]
    found = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
    return [
        (str(item.get("section", "new")), found[int(item["article_id"])])
        for item in issue.items
        if int(item["article_id"]) in found
    ]


def archive_url(base_url: str, issue: DigestIssue) -> str:
    """The public web page of the issue."""
    return f"{base_url}/{issue.language}/digest/{issue.id}"


def active_campaign_for_digest(session: Session, now: datetime) -> Campaign | None:
    """The campaign the support block shows: active, not ended, with a goal; the one ending
    first (open-ended ones after), newest among equals."""
    campaigns = session.scalars(
        select(Campaign).where(Campaign.is_active.is_(True), Campaign.goal_minor.is_not(None))
    ).all()
    running = [c for c in campaigns if c.ends_at is None or as_utc(c.ends_at) > now]
    if not running:
        return None
    running.sort(key=lambda c: (c.ends_at is None, c.ends_at and as_utc(c.ends_at), -c.id))
    return running[0]


@dataclass(frozen=True)
class IssueEmail:
    """One issue in one language, ready to be filled in for each recipient."""

    issue_id: int
    language: str
    compiled: CompiledEmail
    #: (html, text) of the support block for donors and for everyone else.
    support_donor: tuple[Markup, str]
    support_others: tuple[Markup, str]
    #: Greeting with a "{name}" hole, and without a name.
    greeting_named: str
    greeting_plain: str
    sender: str
    list_id: str
    message_id_domain: str
    base_url: str
    secret: str
    #: The address of `List-Unsubscribe`'s mailto: form, None for the HTTPS link alone.
    unsubscribe_mailto: str | None = None

    def render_for(
        self,
        *,
        subscriber_id: int,
        email: str,
        name: str,
        is_donor: bool,
        unsubscribe_url: str | None = None,
    ) -> RenderedEmail:
        """The email for one reader (`unsubscribe_url` when the caller signed it already)."""
        html, text = self.support_donor if is_donor else self.support_others
        clean_name = " ".join(name.split())
        greeting = (
            self.greeting_named.replace("{name}", clean_name) if clean_name else self.greeting_plain
        )
        token_holder = _Reader(subscriber_id, email)
        return self.compiled.fill(
            {
                "email": email,
                "greeting": greeting,
                "support_html": html,
                "support_text": text,
                "unsubscribe_url": unsubscribe_url
                or self._link(token_holder, LinkPurpose.UNSUBSCRIBE),
                "preferences_url": self._link(token_holder, LinkPurpose.PREFERENCES),
            }
        )

    def message_for(
        self,
        *,
        subscriber_id: int,
        email: str,
        name: str,
        is_donor: bool,
        now: datetime,
        delivery_id: int | None = None,
    ) -> bytes:
        """The whole MIME message for one reader, with the bulk-mail headers; with
        `delivery_id` its Message-ID names the delivery (`delivery_message_id`)."""
        # Signing a link needs only .id, .email and .language, not a loaded `Subscriber`.
        list_headers = list_unsubscribe_headers(
            _Reader(subscriber_id, email, self.language),  # type: ignore[arg-type]
            self.base_url,
            self.secret,
            mailto=self.unsubscribe_mailto,
        )
        # The body's unsubscribe link is the header's HTTPS one (its first <...>): one
        # signature per reader, and both say the same.
        unsubscribe = list_headers["List-Unsubscribe"].split(">", 1)[0].removeprefix("<")
        rendered = self.render_for(
            subscriber_id=subscriber_id,
            email=email,
            name=name,
            is_donor=is_donor,
            unsubscribe_url=unsubscribe,
        )
        return build_message_bytes(
            rendered,
            sender=self.sender,
            to=email,
            headers={
                "Content-Language": self.language,
                "List-Id": self.list_id,
                **list_headers,
                "Precedence": "bulk",
                "X-Readership-Issue": str(self.issue_id),
            },
            message_id_domain=self.message_id_domain,
            date=now,
            message_id=delivery_message_id(delivery_id, self.message_id_domain)
            if delivery_id is not None
            else None,
        )

    def _link(self, reader: _Reader, purpose: LinkPurpose) -> str:
        return link_url(
            reader,  # type: ignore[arg-type]  # links need only .id and .email
            purpose,
            self.base_url,
            self.secret,
            language=self.language,
        )


@dataclass(frozen=True)
class _Reader:
    """What signing a reader's link needs (a `Subscriber` without loading one)."""

    id: int
    email: str
    language: str = ""


def article_view(
    article: Article,
    campaign: str,
    language: str,
    position: int,
    link: LinkWrapper = plain_link,
) -> dict[str, Any]:
    """An article as the digest template shows it; `link` wraps its URL (click redirect)."""
    published = as_utc(article.published_at) if article.published_at else None
    return {
        "id": article.id,
        "title": article.title,
        "url": link(with_utm(article.url, campaign, f"item-{position}")),
        "lede": article.lede,
        "author": article.author,
        "section": article.section,
        "image_url": article.image_url,
        "date": format_date(published, "d MMMM", locale=language) if published else "",
    }


def issue_context(
    session: Session,
    mailer: Mailer,
    issue: DigestIssue,
    base_url: str,
    link: LinkWrapper = plain_link,
) -> dict[str, Any]:
    """The template context of an issue (everything but the per-recipient values); `link`
    wraps the article links."""
    campaign = utm_campaign(issue)
    top: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for position, (section, article) in enumerate(issue_articles(session, issue), start=1):
        (top if section == "top" else new).append(
            article_view(article, campaign, issue.language, position, link)
        )
    paragraphs = [" ".join(p.split()) for p in issue.intro.replace("\r\n", "\n").split("\n\n")]
    return {
        **site_context(session, mailer, issue.language),
        "issue_subject": issue.subject,
        "intro_paragraphs": [p for p in paragraphs if p],
        "top": top,
        "new": new,
        "archive_url": archive_url(base_url, issue),
    }


def support_context(
    session: Session,
    issue: DigestIssue,
    base_url: str,
    now: datetime,
    link: LinkWrapper = plain_link,
) -> dict[str, Any]:
    """What the support block shows, for both variants; `link` wraps the donate link."""
    campaign = utm_campaign(issue)
    language = issue.language
    shown = active_campaign_for_digest(session, now)
    donate_url = f"{base_url}/{language}/donate"
    campaign_values = None
    if shown is not None:
        progress = campaign_progress(session, shown)
        donate_url = f"{base_url}/{language}/donate/{shown.slug}"
        titles = shown.titles or {}
        campaign_values = {
            "title": titles.get(language) or next(iter(titles.values()), shown.slug),
            "raised": format_money(progress.raised_minor, progress.currency, language),
            "goal": format_money(progress.goal_minor, progress.currency, language)
            if progress.goal_minor
            else "",
            "percent": progress.percent,
            "donors": progress.donors,
        }
    return {
        "donate_url": link(with_utm(donate_url, campaign, "support")),
        "manage_url": with_utm(f"{base_url}/{language}/donate/manage", campaign, "support"),
        "campaign": campaign_values,
    }


def compile_issue(
    session: Session,
    mailer: Mailer,
    issue: DigestIssue,
    *,
    secret: str,
    now: datetime,
    unsubscribe_mailto: str | None = None,
) -> IssueEmail:
    """Compile `issue` (one MJML run, cached by the renderer) and its two support blocks.

    Article and donate links go through the click redirect unless the issue's language has
    it off; the redirect links are the same for every reader. `unsubscribe_mailto` adds the
    mailto: form to `List-Unsubscribe`.
    """
    base_url = mailer.base_url
    link: LinkWrapper = plain_link
    if redirect_is_on(get_digest_settings(session), issue.language):
        link = click_wrapper(base_url, secret, issue.id)
    context = issue_context(session, mailer, issue, base_url, link)
    compiled = mailer.renderer.compile(
        "digest", issue.language, context, recipient_fields=RECIPIENT_FIELDS
    )
    env = mailer.renderer.environment(issue.language)
    support_values = {**context, **support_context(session, issue, base_url, now, link)}
    blocks = {}
    for donor in (True, False):
        values = {**support_values, "donor": donor}
        html = env.get_template("digest/support.html").render(values).strip()
        text = env.get_template("digest/support.txt").render(values).strip()
        # Rendered by our autoescaping template: its output is safe HTML.
        blocks[donor] = (Markup(html), text)  # noqa: S704
    translations = load_translations(mailer.renderer.translations_dir, issue.language)
    publication = context["publication_name"]
    return IssueEmail(
        issue_id=issue.id,
        language=issue.language,
        compiled=compiled,
        support_donor=blocks[True],
        support_others=blocks[False],
        # "{name}" survives gettext's %-formatting and is replaced per reader.
        greeting_named=translations.gettext("Hello, %(name)s!") % {"name": "{name}"},
        greeting_plain=translations.gettext("Hello!"),
        sender=mailer.from_header(publication),
        list_id=_list_id(publication, issue.language, mailer.message_id_domain),
        message_id_domain=mailer.message_id_domain,
        base_url=base_url,
        secret=secret,
        unsubscribe_mailto=unsubscribe_mailto or None,
    )


def _list_id(publication: str, language: str, domain: str) -> str:
    # RFC 2919: a phrase, then <list-label.domain>; one list per language.
    phrase = " ".join(publication.replace('"', "").split()) or "Digest"
    return f'"{phrase} digest ({language})" <digest-{language}.{domain}>'


#: Our Message-ID of a digest delivery; relays report it back with bounces and complaints.
_DELIVERY_MESSAGE_ID = re.compile(r"^<?rd\.(\d{1,18})\.[0-9a-f]{12}@", re.IGNORECASE)


def delivery_message_id(delivery_id: int, domain: str) -> str:
    """`<rd.<delivery id>.<random>@<domain>>`: unique (the random part: a database restored
    or started again reuses ids) and naming the delivery a relay's later report is about."""
    return f"<rd.{delivery_id}.{secrets.token_hex(6)}@{domain}>"


def delivery_id_of(message_id: str) -> int | None:
    """The delivery a Message-ID of ours names (with or without its angle brackets)."""
    found = _DELIVERY_MESSAGE_ID.match(message_id.strip())
    return int(found.group(1)) if found else None

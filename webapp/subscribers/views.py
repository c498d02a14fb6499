"""Public subscriber pages: signup, embeddable form, confirmation, preferences, unsubscribe.

Every page is registered with and without a language prefix (`/subscribe`, `/ru/subscribe`).
Links in emails carry the prefix, so they open in the language the email was written in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from webapp.core.addresses import keyed_hash
from webapp.core.clock import utcnow
from webapp.core.limits import limiter
from webapp.core.net import client_ip, has_unsafe_url_characters, hash_ip, is_safe_redirect
from webapp.db import get_session
from webapp.i18n import current_language, public_route
from webapp.site.services import get_site_settings
from webapp.subscribers import mail, services
from webapp.subscribers.forms import ConfirmForm, EmbedSignupForm, PreferencesForm, SignupForm
from webapp.subscribers.links import LinkError, LinkProblem, LinkPurpose, resolve_link
from webapp.subscribers.models import SubscriberSource, SubscriberStatus
from webapp.subscribers.settings import ListSettings, list_settings

bp = Blueprint(
    "subscribers",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/subscribers/assets",
)

#: Version of the sentence under the embeddable form (README: "Embedding the signup form").
EMBED_WORDING_VERSION = "embed-2026-11-v1"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _settings() -> ListSettings:
    return list_settings(current_app.config)


def _subscribe_limit() -> str:
    return str(current_app.config["SUBSCRIBE_RATE_LIMIT"])


# Signup page and embed share one per-IP budget.
_signup_limit = limiter.shared_limit(_subscribe_limit, scope="subscribe", methods=["POST"])


def _deliver(message_ids: Sequence[int]) -> None:
    """First try at sending the emails a committed change queued (what fails stays queued
    for the send-email job). Addresses that were throttled or suppressed get no email, so
    their answer is a little faster; that only tells someone the address was asked for
    within the last few minutes, never whether it is on the list."""
    if message_ids:
        mail.deliver(current_app._get_current_object(), message_ids, utcnow())  # type: ignore[attr-defined]


def _page_url(value: str | None) -> str | None:
    """A page address for the consent record, without query string or fragment."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:500]


def _signup_request(
    form: SignupForm, source: SubscriberSource, page_url: str | None, wording: str
) -> services.SignupRequest:
    agent = request.headers.get("User-Agent", "")
    return services.SignupRequest(
        email=form.email.data or "",
        name=form.name.data or "",
        language=form.language.data or current_language(),
        source=source,
        page_url=page_url,
        ip_hash=hash_ip(client_ip()),
        user_agent_hash=keyed_hash(agent, current_app.config["SECRET_KEY"]) if agent else None,
        wording_version=wording,
    )


def _subscribe(
    form: SignupForm, source: SubscriberSource, page_url: str | None, wording: str
) -> None:
    session = get_session()
    outcome = services.request_subscription(
        session,
        mail.get_mailer(),
        _signup_request(form, source, page_url, wording),
        settings=_settings(),
        now=utcnow(),
    )
    session.commit()
    _deliver(outcome.message_ids)


# --- Signup page ------------------------------------------------------------------------


@public_route(bp, "/subscribe", methods=["GET", "POST"])
@_signup_limit
def signup() -> Any:
    """The signup page; a valid POST always leads to the same "check your email" page."""
    settings = _settings()
    form = SignupForm(languages=settings.languages, default_language=current_language())
    if request.method == "POST":
        if form.is_bot():
            return redirect(url_for(".check_email"), code=303)
        if form.validate_on_submit():
            _subscribe(
                form,
                SubscriberSource.SIGNUP_PAGE,
                request.base_url,
                services.CONSENT_WORDING_VERSION,
            )
            return redirect(url_for(".check_email"), code=303)
        return render_template("subscribers/signup.html", form=form), 422
    return render_template("subscribers/signup.html", form=form)


@public_route(bp, "/subscribe/check-your-email")
def check_email() -> str:
    """The one answer to every signup, whether the address was known or not."""
    return render_template("subscribers/check_email.html")


# --- Embeddable form --------------------------------------------------------------------


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_origins() -> set[str]:
    """The publication's configured origins plus the app's own (its iframe form posts here)."""
    origins = {o.lower() for o in get_site_settings(get_session()).embed_origins()}
    own = _origin_of(current_app.config["BASE_URL"])
    if own:
        origins.add(own)
    origins.add(f"{request.scheme}://{request.host}".lower())
    return {o for o in origins if _ORIGIN.match(o)}


def _frame_ancestors(origins: set[str]) -> str:
    return " ".join(["'self'", *sorted(origins)])


def _request_origin() -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return _origin_of(origin)
    return _origin_of(request.headers.get("Referer"))


def _safe_next(target: str | None, origins: set[str]) -> str | None:
    """`target` when it is one of the app's paths or a page on an allowed origin."""
    if not target or len(target) > 2000:
        return None
    if is_safe_redirect(target):
        return target
    if has_unsafe_url_characters(target):  # what a browser would strip or reread
        return None
    origin = _origin_of(target)
    return target if origin and origin in origins else None


@public_route(bp, "/embed/subscribe-form")
def embed_form() -> str:
    """A small signup page made to sit in an iframe on the publication's site."""
    settings = _settings()
    g.frame_ancestors = _frame_ancestors(_allowed_origins())
    form = EmbedSignupForm(languages=settings.languages, default_language=current_language())
    return render_template("subscribers/embed_form.html", form=form)


@public_route(bp, "/embed/subscribe", methods=["POST"])
@_signup_limit
def embed_subscribe() -> Any:
    """The embeddable form's endpoint: no CSRF token, the `Origin` is checked instead."""
    origins = _allowed_origins()
    g.frame_ancestors = _frame_ancestors(origins)
    origin = _request_origin()
    if origin is None or origin not in origins:
        return render_template("subscribers/embed_result.html", outcome="forbidden"), 403
    settings = _settings()
    form = EmbedSignupForm(languages=settings.languages, default_language=current_language())
    next_url = _safe_next(form.next.data, origins)
    if not form.is_bot():
        if not form.validate():
            return render_template("subscribers/embed_form.html", form=form, origin_ok=True), 422
        page = _page_url(request.headers.get("Referer"))
        _subscribe(form, SubscriberSource.EMBED, page, EMBED_WORDING_VERSION)
    if next_url:
        return redirect(next_url, code=303)
    return render_template("subscribers/embed_result.html", outcome="sent")


# --- Double opt-in ----------------------------------------------------------------------

_PROBLEM_STATUS = {LinkProblem.INVALID: 400, LinkProblem.EXPIRED: 410, LinkProblem.GONE: 410}


def _link_problem(problem: LinkProblem, purpose: LinkPurpose) -> tuple[str, int]:
    return (
        render_template(
            "subscribers/link_problem.html", problem=problem.value, purpose=purpose.value
        ),
        _PROBLEM_STATUS[problem],
    )


@public_route(bp, "/subscribe/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> Any:
    """The confirmation link: GET shows a button (mail scanners open links), POST confirms."""
    settings = _settings()
    session = get_session()
    now = utcnow()
    try:
        target = resolve_link(
            session,
            token,
            LinkPurpose.CONFIRM,
            settings.secret,
            now=now,
            max_age=settings.confirm_max_age,
            for_change=request.method == "POST",
        )
    except LinkError as exc:
        return _link_problem(exc.problem, LinkPurpose.CONFIRM)
    form = ConfirmForm()
    subscriber = target.subscriber
    if request.method == "POST" and form.validate_on_submit():
        outcome = services.confirm_subscription(
            session,
            mail.get_mailer(),
            target,
            settings=settings,
            now=now,
            ip_hash=hash_ip(client_ip()),
        )
        session.commit()
        _deliver(outcome.message_ids)
        return render_template(
            "subscribers/confirmed.html",
            already=outcome.already_confirmed,
            preferences_url=_local_preferences_url(subscriber, settings),
        )
    already = subscriber.status == SubscriberStatus.CONFIRMED
    return render_template(
        "subscribers/confirm.html",
        form=form,
        already=already,
        preferences_url=_local_preferences_url(subscriber, settings) if already else None,
    )


def _local_preferences_url(subscriber: Any, settings: ListSettings) -> str:
    """The preferences page in the language of the current page."""
    from webapp.subscribers.links import make_token

    token = make_token(subscriber, LinkPurpose.PREFERENCES, settings.secret)
    return url_for(".preferences", token=token, lang=current_language())


# --- Preferences ------------------------------------------------------------------------


@public_route(bp, "/subscription/<token>", methods=["GET", "POST"])
def preferences(token: str) -> Any:
    """The reader's preferences: digest languages, pause, unsubscribe, resubscribe."""
    settings = _settings()
    session = get_session()
    now = utcnow()
    try:
        target = resolve_link(
            session,
            token,
            LinkPurpose.PREFERENCES,
            settings.secret,
            now=now,
            for_change=request.method == "POST",
        )
    except LinkError as exc:
        return _link_problem(exc.problem, LinkPurpose.PREFERENCES)
    subscriber = target.subscriber
    form = PreferencesForm(languages=settings.languages)
    if request.method != "POST":
        form.languages.data = [c for c in subscriber.languages if c in settings.languages]
        return render_template("subscribers/preferences.html", form=form, subscriber=subscriber)
    if not form.validate_on_submit():
        return render_template(
            "subscribers/preferences.html", form=form, subscriber=subscriber
        ), 422
    action = form.action.data
    message = None
    if action == "save":
        if services.update_preferences(
            session,
            subscriber,
            languages=form.languages.data or [],
            offered=settings.languages,
            now=now,
        ):
            message = _("Your language choice is saved.")
        else:
            message = _("Nothing changed.")
    elif action == "pause":
        services.pause_subscription(session, subscriber, now=now)
        message = _("The digest is paused. Resume it here whenever you like.")
    elif action == "resume":
        services.resume_subscription(session, subscriber, now=now)
        message = _("Welcome back: the digest is on again.")
    elif action == "unsubscribe":
        services.unsubscribe(session, subscriber, how=services.UnsubscribeHow.PREFERENCES, now=now)
        message = _("You are unsubscribed. You will get no more digests.")
    elif action == "resubscribe":
        if services.resubscribe_from_link(session, subscriber, now=now):
            message = _("You are subscribed again.")
        else:
            message = _("We cannot subscribe this address again. Please write to us.")
    session.commit()
    flash(message or "", "ok")
    return redirect(url_for(".preferences", token=token), code=303)


# --- One-click unsubscribe (RFC 8058) ---------------------------------------------------


@public_route(bp, "/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """GET shows a page with a button and changes nothing. POST with the body
    `List-Unsubscribe=One-Click` (from a mail client, without cookies or a CSRF token, or
    from the page's button) unsubscribes and answers 200."""
    settings = _settings()
    session = get_session()
    now = utcnow()
    if request.method == "POST" and request.form.get("List-Unsubscribe") != "One-Click":
        abort(400)
    try:
        target = resolve_link(
            session,
            token,
            LinkPurpose.UNSUBSCRIBE,
            settings.secret,
            now=now,
            for_change=request.method == "POST",
        )
    except LinkError as exc:
        if exc.problem == LinkProblem.GONE and request.method == "POST":
            # The address is no longer on the list at all: that is what was asked for.
            return render_template("subscribers/unsubscribed.html", preferences_url=None)
        return _link_problem(exc.problem, LinkPurpose.UNSUBSCRIBE)
    subscriber = target.subscriber
    if request.method != "POST":
        return render_template(
            "subscribers/unsubscribe.html",
            subscriber=subscriber,
            already=subscriber.status == SubscriberStatus.UNSUBSCRIBED,
            preferences_url=_local_preferences_url(subscriber, settings),
        )
    how = (
        services.UnsubscribeHow.UNSUBSCRIBE_PAGE
        if request.form.get("from") == "page"
        else services.UnsubscribeHow.ONE_CLICK
    )
    services.unsubscribe(session, subscriber, how=how, now=now)
    session.commit()
    return render_template(
        "subscribers/unsubscribed.html",
        preferences_url=_local_preferences_url(subscriber, settings),
    )


def exempt_from_csrf(csrf: Any) -> None:
    """The two endpoints that cannot carry a CSRF token (see QUALITY.md)."""
    csrf.exempt(embed_subscribe)
    csrf.exempt(unsubscribe)

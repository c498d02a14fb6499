"""Language selection: the URL prefix, then the reader's choice, then `Accept-Language`.

Public routes are registered twice with `public_route`: `/subscribe` and `/<lang>/subscribe`.
A prefixed visit remembers the language in the session so later unprefixed pages keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, g, request, session
from flask_babel import Babel
from werkzeug.routing import BaseConverter, ValidationError

from webapp.core.limits import body_limit, has_body_limit

babel = Babel()

#: Names shown in the language switcher, in their own language.
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "uk": "Українська", "de": "Deutsch"}


class LanguageConverter(BaseConverter):
    """Matches only configured language codes, so `/xx/donate` is a 404, not a page."""

    regex = r"[a-z]{2}"

    def to_python(self, value: str) -> str:
        if value not in current_app.config["LANGUAGES"]:
            raise ValidationError()
        return value


def public_route(blueprint: Blueprint, rule: str, **options: Any) -> Callable[..., Any]:
    """Register a view at `rule` and at `/<lang>rule` under one endpoint. A reader's page
    takes small bodies only (`FORM_MAX_CONTENT_LENGTH`) unless the view says otherwise."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        if not has_body_limit(view):
            view = body_limit("FORM_MAX_CONTENT_LENGTH")(view)
        blueprint.add_url_rule(rule, view_func=view, **options)
        prefixed = "/<lang:lang>" + (rule if rule != "/" else "/")
        blueprint.add_url_rule(prefixed, view_func=view, **options)
        return view

    return decorator


def select_language() -> str:
    """The language of the current request."""
    languages = current_app.config["LANGUAGES"]
    url_lang = g.get("url_lang")
    if url_lang in languages:
        return str(url_lang)
    chosen = session.get("lang") if request else None
    if chosen in languages:
        return str(chosen)
    if request:
        best = request.accept_languages.best_match(languages)
        if best:
            return str(best)
    return str(current_app.config["DEFAULT_LANGUAGE"])


def current_language() -> str:
    """The language pages and emails of this request are in."""
    if "lang" not in g:
        g.lang = select_language()
    return str(g.lang)


def init_app(app: Flask) -> None:
    """Install Flask-Babel, the `lang` converter and the URL prefix handling."""
    app.url_map.converters["lang"] = LanguageConverter
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=current_language, timezone_selector=lambda: "UTC")

    @app.url_value_preprocessor
    def _take_lang(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and "lang" in values:
            g.url_lang = values.pop("lang")
            # Staff-only requests never touch the reader session; a prefixed visit is a choice.
            session["lang"] = g.url_lang

    @app.url_defaults
    def _keep_lang(endpoint: str, values: dict[str, Any]) -> None:
        # Links on a prefixed page stay in that language.
        if "lang" in values or not g.get("url_lang"):
            return
        if app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values["lang"] = g.url_lang

    @app.context_processor
    def _language_context() -> dict[str, Any]:
        return {
            "current_language": current_language(),
            "languages": app.config["LANGUAGES"],
            "language_names": LANGUAGE_NAMES,
        }

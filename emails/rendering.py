"""Two-stage email rendering: compile once per (email, language, context), fill per recipient.

Stage one (`EmailRenderer.compile`) renders the Jinja templates of one email folder with the
gettext catalogue of a language and runs MJML (`mrml.to_html`) once. Per-recipient values are
written in templates as `{{ recipient.<field> }}`; at compile time they render to unique
markers, and the compiled parts are split around those markers once.

Stage two (`CompiledEmail.fill`) joins the precomputed pieces with one recipient's values
(HTML-escaped in the HTML part, as-is in the subject and text part). No Jinja and no MJML run
per recipient, which is what makes sending a digest to many people fast.

Recipient values are inserted verbatim: template filters applied to `recipient.<field>` act
on the marker, not on the value, so pass values already in their final form (full URLs).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mrml
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from markupsafe import Markup

log = logging.getLogger("readership.emails")

#: Values every layout may read; a template context overrides them.
LAYOUT_DEFAULTS: dict[str, Any] = {
    "publication_name": "Readership",
    "tagline": "",
    "site_url": "",
    "base_url": "",
    "logo_url": None,
    "primary_color": "#1d4ed8",
    "accent_color": "#b91c1c",
    "postal_address": "",
    "preferences_url": None,
    "unsubscribe_url": None,
}

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UnknownEmail(LookupError):
    """There is no email folder with this name."""


@dataclass(frozen=True)
class RenderedEmail:
    """One finished email for one recipient."""

    subject: str
    html: str
    text: str


class _Recipient:
    """Stands for the recipient at compile time: each attribute is a unique marker."""

    def __init__(self, nonce: str) -> None:
        self._nonce = nonce
        self._fields: list[str] = []

    def __getattr__(self, name: str) -> str:
        if name.startswith("_") or not _FIELD_NAME.match(name):
            raise AttributeError(name)
        if name not in self._fields:
            self._fields.append(name)
        # Letters and digits only: survives HTML escaping, MJML, URL quoting and CSS inlining.
        return f"rcpt{self._nonce}x{self._fields.index(name)}x"

    __getitem__ = __getattr__

    def _used(self) -> tuple[str, ...]:
        return tuple(self._fields)


@dataclass(frozen=True)
class _Pieces:
    """A text split around recipient markers: literal, field, literal, field, ..., literal."""

    literals: tuple[str, ...]
    fields: tuple[str, ...]

    @classmethod
    def split(cls, text: str, nonce: str, names: tuple[str, ...]) -> _Pieces:
        parts = re.split(f"rcpt{nonce}x(\\d+)x", text)
        literals = tuple(parts[0::2])
        fields = tuple(names[int(index)] for index in parts[1::2])
        return cls(literals, fields)

    def join(self, values: Mapping[str, str]) -> str:
        if not self.fields:
            return self.literals[0]
        out = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            out.append(values[field])
            out.append(literal)
        return "".join(out)


@dataclass(frozen=True)
class CompiledEmail:
    """An email compiled for one language and context, waiting for recipient values."""

    #: Folder name of the email, e.g. "confirm_subscription".
    name: str
    #: Language code the texts were translated into.
    language: str
    #: Recipient fields the templates use; `fill` needs a value for each.
    fields: tuple[str, ...]
    _subject: _Pieces
    _html: _Pieces
    _text: _Pieces

    def fill(self, recipient: Mapping[str, str]) -> RenderedEmail:
        """The email for one recipient.

        Raises `KeyError` naming the first field the templates use that `recipient` lacks.
        Values are HTML-escaped in the HTML part and inserted as they are elsewhere; line
        breaks in the subject become spaces (a subject is one header line). A
        `markupsafe.Markup` value is HTML already (a block rendered once per variant, such as
        the digest's support block) and goes into the HTML part unescaped.
        """
        missing = [field for field in self.fields if field not in recipient]
        if missing:
            raise KeyError(missing[0])
        raw = {field: str(recipient[field]) for field in self.fields}
        escaped = {
            field: value if isinstance(recipient[field], Markup) else html.escape(value, quote=True)
            for field, value in raw.items()
        }
        subject = " ".join(self._subject.join(raw).split())
        return RenderedEmail(subject, self._html.join(escaped), self._text.join(raw))


def load_translations(translations_dir: Path, language: str) -> NullTranslations:
    """The gettext catalogue (domain `messages`) of `language`, or no translation at all.

    A compiled `.mo` is used when it is at least as new as its `.po`; otherwise the `.po` is
    compiled in memory, so a fresh checkout (catalogues not compiled yet) and an edited
    catalogue both render what the `.po` says.
    """
    folder = translations_dir / language / "LC_MESSAGES"
    mo_path, po_path = folder / "messages.mo", folder / "messages.po"
    if mo_path.exists() and (
        not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime
    ):
        with mo_path.open("rb") as handle:
            return Translations(handle, domain="messages")
    if po_path.exists():
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer, domain="messages")
    return NullTranslations()


def context_fingerprint(context: Mapping[str, Any]) -> str:
    """A stable digest of a template context (used as part of the compile cache key)."""
    encoded = json.dumps(context, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(encoded.encode("utf-8"), digest_size=16).hexdigest()


class EmailRenderer:
    """Renders the email folders under `templates_dir` in any language of `translations_dir`.

    Thread-safe; compiled emails are cached per (name, language, context fingerprint), up to
    `cache_size` entries (least recently used dropped first).
    """

    def __init__(
        self, templates_dir: str | Path, translations_dir: str | Path, cache_size: int = 256
    ) -> None:
        self.templates_dir = Path(templates_dir)
        self.translations_dir = Path(translations_dir)
        self.cache_size = cache_size
        #: How many times MJML ran (tests and benchmarks read it).
        self.mjml_compiles = 0
        self._lock = threading.Lock()
        self._environments: dict[str, Environment] = {}
        self._cache: OrderedDict[tuple[str, str, str, tuple[str, ...]], CompiledEmail] = (
            OrderedDict()
        )

    def names(self) -> list[str]:
        """Every email this renderer knows (folders holding a `body.mjml`)."""
        return sorted(p.parent.name for p in self.templates_dir.glob("*/body.mjml"))

    def environment(self, language: str) -> Environment:
        """The Jinja environment with `language`'s catalogue installed (one per language)."""
        with self._lock:
            env = self._environments.get(language)
            if env is None:
                env = Environment(
                    loader=FileSystemLoader(self.templates_dir),
                    # HTML-ish templates escape; subject.txt and body.txt are plain text.
                    autoescape=select_autoescape(
                        enabled_extensions=("mjml", "html"), default_for_string=True
                    ),
                    undefined=StrictUndefined,
                    extensions=["jinja2.ext.i18n"],
                    keep_trailing_newline=True,
                )
                translations = load_translations(self.translations_dir, language)
                env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
                self._environments[language] = env
            return env

    def compile(
        self,
        name: str,
        language: str,
        context: Mapping[str, Any],
        recipient_fields: Sequence[str] = (),
    ) -> CompiledEmail:
        """Render `name` in `language` with `context` and run MJML once; cached.

        `context` must not hold a `recipient` key (recipient values come through `fill`).
        Each name in `recipient_fields` is a top-level template value that differs per
        person (a confirmation link, say): it compiles to the recipient marker of that name,
        so one compiled email serves everyone and `fill` supplies the value.
        Raises `UnknownEmail` for a name without a folder and `jinja2.UndefinedError` when a
        template reads a context value that is missing.
        """
        if "recipient" in context:
            raise ValueError("pass recipient values to fill(), not in the context")
        fields = tuple(recipient_fields)
        if any(field in context for field in fields):
            raise ValueError("a recipient field is also in the context")
        key = (name, language, context_fingerprint(context), fields)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        compiled = self._compile(name, language, context, fields)
        with self._lock:
            self._cache[key] = compiled
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return compiled

    def render(
        self,
        name: str,
        language: str,
        context: Mapping[str, Any],
        recipient: Mapping[str, str],
    ) -> RenderedEmail:
        """Compile (or reuse) and fill in one step."""
        return self.compile(name, language, context).fill(recipient)

    def _compile(
        self,
        name: str,
        language: str,
        context: Mapping[str, Any],
        recipient_fields: tuple[str, ...],
    ) -> CompiledEmail:
        env = self.environment(language)
        nonce = secrets.token_hex(8)
        recipient = _Recipient(nonce)
        per_person = {field: getattr(recipient, field) for field in recipient_fields}
        values = {**LAYOUT_DEFAULTS, **context, **per_person}
        values.update(recipient=recipient, language=language)
        try:
            subject = " ".join(env.get_template(f"{name}/subject.txt").render(values).split())
            # The layout shows the subject as the HTML title; autoescaped there.
            values["subject"] = subject
            mjml_source = env.get_template(f"{name}/body.mjml").render(values)
            text = env.get_template(f"{name}/body.txt").render(values)
        except TemplateNotFound as exc:
            raise UnknownEmail(name) from exc
        output = mrml.to_html(mjml_source)
        for warning in output.warnings:
            log.warning("MJML warning in %s (%s): %s", name, language, warning)
        html_out = output.content
        with self._lock:
            self.mjml_compiles += 1
        fields = recipient._used()
        return CompiledEmail(
            name=name,
            language=language,
            fields=fields,
            _subject=_Pieces.split(subject, nonce, fields),
            _html=_Pieces.split(html_out, nonce, fields),
            _text=_Pieces.split(_tidy_text(text), nonce, fields),
        )


def _tidy_text(text: str) -> str:
    # Jinja blocks leave runs of blank lines and trailing spaces; a plain-text email reads
    # better with at most one empty line between paragraphs.
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"

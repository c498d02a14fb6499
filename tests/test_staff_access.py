"""Every `/staff` route, found by walking the URL map, denies anonymous users and roles
without its permission. Generic on purpose: a route added by any feature is checked too.

CSRF and rate limits are switched off here so each request reaches the permission layer
(CSRF has its own tests); the views themselves never run for a denied request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from tests.staff.factories import force_login, make_staff
from webapp.core.limits import limiter
from webapp.staff.auth import is_marked
from webapp.staff.roles import Role, role_allows

_ARG = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)
_DUMMIES = {
    "int": "1",
    "float": "1.0",
    "uuid": "00000000-0000-4000-8000-000000000001",
    "path": "x",
    "string": "x",
    "default": "x",
    "lang": "en",
}
_SKIPPED_METHODS = {"HEAD", "OPTIONS"}


def _dummy(match: re.Match[str]) -> str:
    converter = match.group("converter") or "default"
    if converter == "any":
        first = (match.group("args") or "x").split(",")[0]
        return first.strip().strip("'\"")
    return _DUMMIES.get(converter, "1")


def dummy_path(rule: Rule) -> str:
    """The rule's path with a plausible value for every variable."""
    return _ARG.sub(_dummy, rule.rule)


def staff_rules(app: Flask) -> list[Rule]:
    """Every rule under /staff."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule == "/staff" or rule.rule.startswith("/staff/")
    ]


def protected(app: Flask) -> Iterator[tuple[Rule, Any, str, str]]:
    """(rule, view, method, path) for every non-public staff rule and method."""
    for rule in staff_rules(app):
        view = app.view_functions[rule.endpoint]
        if getattr(view, "public_staff_endpoint", False):
            continue
        for method in sorted((rule.methods or set()) - _SKIPPED_METHODS):
            yield rule, view, method, dummy_path(rule)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "WTF_CSRF_ENABLED": False}


@pytest.fixture(autouse=True)
def _no_rate_limits(app: Flask) -> Iterator[None]:
    # Switched off after init (RATELIMIT_ENABLED=False would leave the limiter without the
    # storage conftest resets); the next create_app switches it back on from the config.
    limiter.enabled = False
    yield
    limiter.enabled = True


def test_every_staff_rule_is_marked(app: Flask) -> None:
    rules = staff_rules(app)
    assert any(r.endpoint == "staff.login" for r in rules)
    assert any(r.endpoint == "staff.dashboard" for r in rules)
    unmarked = [
        f"{rule.rule} -> {rule.endpoint}"
        for rule in rules
        if not is_marked(app.view_functions[rule.endpoint])
    ]
    assert not unmarked, "staff views without @requires or @public_staff_endpoint: " + ", ".join(
        unmarked
    )


def test_public_staff_endpoints_are_only_the_sign_in_steps(app: Flask) -> None:
    public = {
        rule.endpoint
        for rule in staff_rules(app)
        if getattr(app.view_functions[rule.endpoint], "public_staff_endpoint", False)
    }
    assert public == {"staff.login", "staff.login_totp"}


def test_anonymous_users_are_sent_to_sign_in(app: Flask, client: FlaskClient) -> None:
    checked, wrong = 0, []
    for rule, _view, method, path in protected(app):
        response = client.open(path, method=method)
        location = response.headers.get("Location", "")
        ok = response.status_code == 403 or (
            response.status_code in (302, 303) and "/staff/login" in location
        )
        checked += 1
        if not ok:
            wrong.append(f"{method} {path} ({rule.endpoint}): {response.status_code} {location}")
    assert checked > 10
    assert not wrong, "anonymous requests not denied:\n" + "\n".join(wrong)


@pytest.mark.parametrize("role", list(Role))
def test_roles_without_the_permission_get_403(
    app: Flask, client: FlaskClient, db_session: Session, role: Role
) -> None:
    user = make_staff(db_session, role=role.value)
    db_session.commit()
    force_login(client, db_session, user)
    assert client.get("/staff/").status_code == 200  # really signed in
    wrong = []
    for rule, view, method, path in protected(app):
        permission = getattr(view, "required_permission", None)
        if permission is not None and role_allows(role.value, permission):
            continue
        response = client.open(path, method=method)
        if response.status_code != 403:
            wrong.append(
                f"{method} {path} ({rule.endpoint}, needs {permission}): {response.status_code}"
            )
    assert not wrong, f"{role} was not refused:\n" + "\n".join(wrong)


def test_dummy_paths_cover_every_converter() -> None:
    rule = Rule("/staff/<int:a>/<b>/<path:c>/<any(x, y):d>/<uuid:e>/<custom:f>")
    assert dummy_path(rule) == "/staff/1/x/x/x/00000000-0000-4000-8000-000000000001/1"

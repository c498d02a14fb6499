"""Browser tests: the real app on a live server, driven by Debian's Chromium via Playwright.

Fixtures:
- `live_server` (in tests/conftest.py): the app (same database, clock and SMTP sink as the
  `app` fixture) served on 127.0.0.1; `live_server.url` is its origin and the app's `BASE_URL`.
- `browser` (session), `context` and `page` (fresh per test; relative URLs in `page.goto`
  resolve against `live_server.url`). A failing test leaves a screenshot in `test-artifacts/`.
- `axe(page)` (plain function in `tests.browser.axe`): serious and critical axe-core violations.

Without `/usr/bin/chromium` the browser tests skip on a developer machine and fail in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import (
    ARTIFACTS_DIR,
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    require_or_skip,
)
from tests.helpers.live_server import LiveServer

_BROWSER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser with `browser` (so `-m "not browser"` works)."""
    for item in items:
        if _BROWSER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item so `page` can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for the whole run (one process, a context per test)."""
    require_or_skip(
        Path(CHROMIUM_PATH).exists(),
        f"{CHROMIUM_PATH} is missing (install Debian's chromium: apt-get install chromium)",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    """Extra `new_context` options; a test module may override this fixture."""
    return {}


@pytest.fixture
def context(
    browser: Any, live_server: LiveServer, browser_context_options: dict[str, Any]
) -> Iterator[Any]:
    """A fresh browser profile (cookies, storage) per test, based at the live server.

    It depends on `live_server` so it is closed before the server stops.
    """
    options: dict[str, Any] = {
        "base_url": live_server.url,
        "viewport": {"width": 1280, "height": 800},
        "locale": "en-GB",
        "timezone_id": "UTC",
        **browser_context_options,
    }
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in the test's context; on failure a full-page screenshot goes to test-artifacts/."""
    browser_page = context.new_page()
    yield browser_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-180:]
        try:
            browser_page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"), full_page=True)
        except Exception as exc:  # a dead page must not hide the test's own failure
            print(f"screenshot failed: {exc!r}")

"""What the browser tests share: where Chromium and axe-core are, and the axe check.

`axe(page)` runs axe-core (the npm package pinned in package.json, installed by
`make test`) in the page and returns the serious and critical violations.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Debian's Chromium; Playwright never downloads a browser here.
CHROMIUM_PATH = "/usr/bin/chromium"
#: Quiet, offline, root-friendly flags: no sandbox (CI runs as root), no GPU, no phoning home.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
AXE_PATH = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: Failure screenshots land here (gitignored).
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
#: axe impacts that fail a test.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def in_ci() -> bool:
    """True when running in CI (`CI` set to anything but empty/0/false/no)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip the test when `condition` is false on a developer machine; fail it in CI.

    CI must never pass by silently skipping the browser tests.
    """
    if condition:
        return
    if in_ci():
        _fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def _fail(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


@functools.cache
def _axe_source() -> str:
    return AXE_PATH.read_text(encoding="utf-8")


def axe(page: Any, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; return the serious and critical violations.

    The script is evaluated through Playwright (the DevTools protocol), which the page's
    Content-Security-Policy does not govern, so the app's CSP stays strict during the test.
    Each violation is axe's own dict (`id`, `impact`, `help`, `helpUrl`, `nodes`, ...).
    """
    require_or_skip(AXE_PATH.exists(), f"{AXE_PATH} is missing: run `npm ci` (make test does)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(
        """async (options) => {
            const results = await window.axe.run(document, options);
            return results.violations;
        }""",
        {"resultTypes": ["violations"], **(options or {})},
    )
    return [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]


def format_violations(violations: list[dict[str, Any]]) -> str:
    """A readable list of violations for an assertion message."""
    lines: list[str] = []
    for violation in violations:
        lines.append(f"[{violation.get('impact')}] {violation.get('id')}: {violation.get('help')}")
        for node in violation.get("nodes", [])[:5]:
            target = ", ".join(str(t) for t in node.get("target", []))
            lines.append(f"    at {target}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)

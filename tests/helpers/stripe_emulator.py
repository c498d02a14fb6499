"""The Stripe emulator (`devtools.stripe_emulator`) in a subprocess on 127.0.0.1.

Tests talk to it through the real `stripe` SDK (`emulator.client()`, or `api_base` and
`api_key`) and act as the donor's browser with `pay()`.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import stripe

from tests.helpers.smtp import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PayResult:
    """What the pay page answered: 303 and `location` on success, the page again otherwise."""

    status: int
    location: str | None
    html: str


class StripeEmulator:
    """Starts, configures and stops one emulator process."""

    api_key = "sk_test_readership_emulator"

    def __init__(self, store_dir: Path | None = None, webhook_delay: float = 0.05) -> None:
        self.store_dir = store_dir
        self.webhook_delay = webhook_delay
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="stripe-emulator-", suffix=".log")
        os.close(handle)
        self._log_path: Path | None = Path(name)
        self._final_log = ""

    @property
    def api_base(self) -> str:
        """The emulator's origin, `http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> StripeEmulator:
        """Start on a free port and wait until it answers; retries if the port was taken."""
        for _attempt in range(3):
            self.port = free_port()
            command = [
                sys.executable,
                "-m",
                "devtools.stripe_emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--webhook-delay",
                str(self.webhook_delay),
            ]
            if self.store_dir is not None:
                command += ["--store", str(self.store_dir)]
            assert self._log_path is not None, "a stopped emulator does not start again"
            with open(self._log_path, "ab") as log:  # the child keeps its own descriptor
                self._process = subprocess.Popen(
                    command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
                )
            if self._wait_until_ready(timeout):
                return self
        self.stop()
        raise RuntimeError(f"the Stripe emulator did not start:\n{self.log}")

    def _wait_until_ready(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False  # most likely the port was taken meanwhile
            try:
                self._request("GET", "/_config/deliveries")
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the Stripe emulator did not answer in {timeout}s:\n{self.log}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and remove its log file."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log_path is not None:
            self._final_log = self.log
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    @property
    def log(self) -> str:
        """What the process printed so far (for failure messages), also after `stop()`."""
        if self._log_path is None:
            return self._final_log
        return self._log_path.read_text(errors="replace")

    def client(self) -> stripe.StripeClient:
        """A real SDK client aimed at the emulator (no network retries: failures show at once)."""
        return stripe.StripeClient(
            self.api_key, base_addresses={"api": self.api_base}, max_network_retries=0
        )

    def register_webhook(
        self, url: str, secret: str, events: list[str] | None = None, webhook_id: str | None = None
    ) -> str:
        """Send events (all, or only `events`) to `url`, signed with `secret`; returns the id."""
        webhook_id = webhook_id or f"wh_{uuid.uuid4().hex[:12]}"
        form: list[tuple[str, str]] = [("url", url), ("secret", secret)]
        form += [("events[]", name) for name in events or []]
        self._expect(200, "POST", f"/_config/webhooks/{webhook_id}", form)
        return webhook_id

    def unregister_webhook(self, webhook_id: str) -> None:
        """Stop sending events to that receiver."""
        self._expect(200, "DELETE", f"/_config/webhooks/{webhook_id}")

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far: event, type, webhook, url, status or error."""
        return json.loads(self._expect(200, "GET", "/_config/deliveries")[1])  # type: ignore[no-any-return]

    def pay(
        self,
        checkout_url_or_session_id: str,
        outcome: str = "success",
        email: str | None = None,
        name: str = "Test Donor",
    ) -> PayResult:
        """What the donor's browser does: open the pay page, then press a button on it."""
        session_id = checkout_url_or_session_id.rstrip("/").rsplit("/", 1)[-1]
        status, page, _ = self._request("GET", f"/_checkout/{session_id}")
        if status != 200:
            return PayResult(status, None, page)
        form = [("outcome", outcome), ("name", name)]
        if email is not None:
            form.append(("email", email))
        status, page, location = self._request("POST", f"/_checkout/{session_id}/pay", form)
        return PayResult(status, location, page)

    def settle(self, session_id: str, outcome: str = "success") -> dict[str, Any]:
        """Finish a delayed (`outcome="async"`) payment; returns the session."""
        path = f"/_checkout/{session_id}/settle"
        return json.loads(self._expect(200, "POST", path, [("outcome", outcome)])[1])  # type: ignore[no-any-return]

    def get(self, url_or_path: str) -> tuple[int, str]:
        """GET a page of the emulator (a full URL or a path); returns status and text."""
        parts = urlsplit(url_or_path)
        status, text, _ = self._request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else "")
        )
        return status, text

    def _expect(
        self, status: int, method: str, path: str, form: list[tuple[str, str]] | None = None
    ) -> tuple[int, str]:
        got, text, _ = self._request(method, path, form)
        if got != status:
            raise AssertionError(f"{method} {path}: expected {status}, got {got}: {text}")
        return got, text

    def _request(
        self, method: str, path: str, form: list[tuple[str, str]] | None = None
    ) -> tuple[int, str, str | None]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = urlencode(form) if form is not None else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            return response.status, text, response.getheader("Location")
        finally:
            connection.close()

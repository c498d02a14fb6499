"""signup_load: the signup POST under load, against a bare Flask hello route.

Two gunicorn servers with the same settings (2 sync workers, 127.0.0.1), one after the
other:

* the baseline: `bench.bare_app:app`, a hello-world Flask route;
* the app: `webapp:create_app()` on a fresh SQLite database migrated with
  `readership db upgrade`, its SMTP pointed at an aiosmtpd sink running in this process
  (every signup really sends its confirmation email), rate limits off for the benchmark.

Each load client first GETs the signup page (CSRF token and session cookie, untimed),
then POSTs signups with distinct addresses; the bare app gets the same POSTs. Reported:
requests/s and latency of each at saturation (closed loop), their ratio, and the latency
of signups at a fixed 100 requests/s.

QUALITY.md targets: signup requests/s >= 0.5 of bare; p99 < 100 ms at 100 req/s.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench.common import SmtpSink
from bench.http_load import HttpClient, PhaseStats, closed_loop, fixed_rate, pooled
from bench.report import BenchResult
from bench.server import WORKER_CLASS, WORKERS, bench_environment, gunicorn

NAME = "signup_load"
#: Signup requests/s must be at least this share of the bare route's (QUALITY.md).
TARGET_SHARE = 0.5
#: p99 latency at `FIXED_RATE` requests/s must stay under this (QUALITY.md).
TARGET_P99_MS = 100.0
FIXED_RATE = 100.0
SIGNUP_PATH = "/subscribe"
_CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class LoadSizes:
    """How much load each phase sends (bounded in count and in time)."""

    clients: int = 8
    #: Bare and signup requests are split into this many alternating rounds.
    rounds: int = 3
    #: Requests to the bare app, all rounds together.
    bare_requests: int = 3000
    #: Signup POSTs, all rounds together.
    signup_requests: int = 900
    #: Seconds of the fixed-rate phase.
    fixed_seconds: float = 5.0
    #: Clients (connections) available to the fixed-rate phase.
    fixed_clients: int = 16
    #: Time cap of each closed-loop phase, in seconds.
    max_seconds: float = 45.0
    warmup: int = 3


QUICK = LoadSizes(
    clients=4,
    rounds=2,
    bare_requests=400,
    signup_requests=120,
    fixed_seconds=2.0,
    fixed_clients=8,
    max_seconds=20.0,
    warmup=2,
)


def _form_body(csrf: str, email: str) -> bytes:
    return urlencode(
        {
            "csrf_token": csrf,
            "email": email,
            "name": "Bench Reader",
            "language": "en",
            "website": "",
        }
    ).encode()


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class SignupScenario:
    """GET the signup page once per client; each timed request POSTs a new address."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag
        #: Addresses whose signup was accepted (each must get one confirmation email).
        self.accepted: set[str] = set()
        self._lock = threading.Lock()

    def address(self, key: str) -> str:
        """The distinct address used for request `key`."""
        return f"bench-{self.run_tag}-{key}@readers-bench.org"

    def prepare(self, client: HttpClient) -> None:
        status, body = client.request("GET", SIGNUP_PATH)
        match = _CSRF.search(body)
        if status != 200 or match is None:
            raise RuntimeError(f"GET {SIGNUP_PATH} gave {status} without a CSRF token")
        client.state["csrf"] = match.group(1).decode()

    def send(self, client: HttpClient, key: str) -> str:
        address = self.address(key)
        status, _ = client.request(
            "POST", SIGNUP_PATH, _form_body(client.state["csrf"], address), _FORM
        )
        # The one answer to every accepted signup: 303 to "check your email".
        if status != 303:
            return str(status)
        with self._lock:
            self.accepted.add(address)
        return "ok"


class BareScenario:
    """The same form POST to the bare hello route."""

    def prepare(self, client: HttpClient) -> None:
        status, _ = client.request("GET", "/")
        if status != 200:
            raise RuntimeError(f"GET / gave {status}")
        client.state["csrf"] = "x" * 91  # the length of a real token: the same bytes sent

    def send(self, client: HttpClient, key: str) -> str:
        body = _form_body(client.state["csrf"], f"bench-{key}@readers-bench.org")
        status, _ = client.request("POST", "/", body, _FORM)
        return "ok" if status == 200 else str(status)


def _readership_command() -> list[str]:
    script = Path(sys.executable).with_name("readership")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from webapp.cli import main; main()"]


def migrate(env: dict[str, str], workdir: Path) -> None:
    """`readership db upgrade` on the database in `env`; raises with its output on failure."""
    done = subprocess.run(
        [*_readership_command(), "db", "upgrade"],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"readership db upgrade failed:\n{done.stdout}\n{done.stderr}")


def _app_environment(workdir: Path, smtp_url: str) -> dict[str, str]:
    """The app server's environment: a fresh SQLite file, SMTP to the sink, no rate limits
    (every request comes from 127.0.0.1; the limits would turn the load into 429s)."""
    return bench_environment(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'signup.sqlite3'}",
            "SECRET_KEY": f"bench-{uuid.uuid4().hex}-{uuid.uuid4().hex}",
            "SMTP_URL": smtp_url,
            "MAIL_FROM": "Readership Bench <newsletter@readers-bench.org>",
            "MAILBOX_DIR": str(workdir / "mailbox"),
            "RATELIMIT_ENABLED": "false",
            "RATELIMIT_STORAGE_URI": "memory://",
            "LANGUAGES": "en,ru",
        }
    )


def run(sizes: LoadSizes = LoadSizes()) -> BenchResult:
    """Serve the bare app and the real app side by side, load them in alternating rounds
    (so both see the same neighbours on a shared machine), then hold the real app at a
    fixed rate; return the table lines. Servers and the SMTP sink are always stopped."""
    result = BenchResult(
        NAME,
        params=asdict(sizes)
        | {"fixed_rate": FIXED_RATE, "workers": WORKERS, "worker_class": WORKER_CLASS},
    )
    scenario = SignupScenario(uuid.uuid4().hex[:8])
    bare_rounds: list[PhaseStats] = []
    signup_rounds: list[PhaseStats] = []
    with tempfile.TemporaryDirectory(prefix="readership-bench-load-") as tmp, SmtpSink() as sink:
        workdir = Path(tmp)
        env = _app_environment(workdir, sink.url)
        migrate(env, workdir)
        with (
            gunicorn("bench.bare_app:app", env=bench_environment({}), workdir=workdir) as bare_srv,
            gunicorn(
                "webapp:create_app()", env=env, workdir=workdir, ready_path=SIGNUP_PATH
            ) as app_srv,
        ):
            for round_ in range(sizes.rounds):
                bare_rounds.append(
                    closed_loop(
                        lambda: HttpClient("127.0.0.1", bare_srv.port),
                        BareScenario(),
                        phase=f"bare{round_}",
                        clients=sizes.clients,
                        requests=sizes.bare_requests // sizes.rounds,
                        max_seconds=sizes.max_seconds,
                        warmup=sizes.warmup,
                    )
                )
                signup_rounds.append(
                    closed_loop(
                        lambda: HttpClient("127.0.0.1", app_srv.port),
                        scenario,
                        phase=f"signup{round_}",
                        clients=sizes.clients,
                        requests=sizes.signup_requests // sizes.rounds,
                        max_seconds=sizes.max_seconds,
                        warmup=sizes.warmup,
                    )
                )
            steady = fixed_rate(
                lambda: HttpClient("127.0.0.1", app_srv.port),
                scenario,
                phase="fixed",
                rate=FIXED_RATE,
                seconds=sizes.fixed_seconds,
                clients=sizes.fixed_clients,
            )
        # Every accepted signup of a new address sends one confirmation email (before the
        # response is written, or from the outbox when that first try fails).
        accepted = len(scenario.accepted)
        sink.wait_for(accepted, timeout=10)
        emails = sink.received
        reached = sink.received_by(scenario.accepted)

    bare = pooled("bare", bare_rounds)
    signup = pooled("signup", signup_rounds)
    share = signup.rps / bare.rps if bare.rps else float("nan")
    result.details = {
        "bare": bare.summary(),
        "signup": signup.summary(),
        "fixed_rate": steady.summary(),
        "rounds": [
            {"bare_rps": b.rps, "signup_rps": s.rps, "share": s.rps / b.rps if b.rps else None}
            for b, s in zip(bare_rounds, signup_rounds, strict=True)
        ],
        "signups_accepted": accepted,
        "emails_received": emails,
        "addresses_reached": reached,
    }
    result.add("bare hello POST", bare.rps, "req/s")
    result.add("bare hello p50", bare.p50_ms, "ms")
    result.add("bare hello p99", bare.p99_ms, "ms")
    result.add("signup POST", signup.rps, "req/s")
    result.add("signup POST p50", signup.p50_ms, "ms")
    result.add("signup POST p99", signup.p99_ms, "ms")
    result.add(
        "signup / bare req/s", share, "x", target=f">= {TARGET_SHARE:g}x", ok=share >= TARGET_SHARE
    )
    rate = f"{FIXED_RATE:g} req/s"
    result.add(f"signup at {rate}: achieved", steady.rps, "req/s")
    result.add(f"signup at {rate}: p50", steady.p50_ms, "ms")
    steady_ok = steady.p99_ms < TARGET_P99_MS and not steady.errors and not steady.capped
    result.add(
        f"signup at {rate}: p99",
        steady.p99_ms,
        "ms",
        target=f"< {TARGET_P99_MS:g} ms",
        ok=steady_ok,
    )
    failed = sum(sum(stats.errors.values()) for stats in (bare, signup, steady))
    result.add("failed requests (all phases)", failed, "", target="0", ok=failed == 0)
    result.add(
        "confirmation emails received",
        emails,
        "",
        target=f"= {accepted} signups",
        ok=emails == accepted == reached,
    )
    return result

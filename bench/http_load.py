"""A small HTTP load generator in pure Python: threads, one keep-alive connection each.

Two kinds of phase:

* `closed_loop`: N clients send requests back to back until a fixed number of requests
  (or a time cap) is reached — measures throughput (requests/s) at saturation.
* `fixed_rate`: requests are scheduled at a constant rate (e.g. 100 per second) and handed
  to a pool of clients — measures latency at a given load. Latency counts from the
  *scheduled* start, so when the server falls behind, the waiting shows in the numbers
  instead of silently lowering the rate ("coordinated omission").

What a request is comes from a `Scenario`: `prepare` runs once per client before timing
(e.g. fetch a form's CSRF token and cookie) and `send` makes one timed request.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bench.report import percentile


class HttpClient:
    """One simulated browser: a keep-alive HTTP/1.1 connection to one server and a cookie
    jar. A server that closes the connection (gunicorn's sync workers do, after every
    response) is reconnected to on the next request."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.host = host
        self.port = port
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self.cookies: dict[str, str] = {}
        #: Whatever a scenario keeps per client (a CSRF token...).
        self.state: dict[str, Any] = {}

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer; returns (status, body).

        Connection errors are raised (the caller counts them); the connection is reset so
        the next request opens a new one.
        """
        sent = {
            "Host": f"{self.host}:{self.port}",
            "User-Agent": "readership-bench/1",
            "Accept": "text/html",
        }
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if headers:
            sent.update(headers)
        try:
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if name.strip():
                self.cookies[name.strip()] = value.strip()
        return response.status, data

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


class Scenario(Protocol):
    """What one timed request is."""

    def prepare(self, client: HttpClient) -> None:
        """Per-client set-up before timing starts (raise when the server is not usable)."""

    def send(self, client: HttpClient, key: str) -> str:
        """Make one request; `key` is unique within the run (for distinct form values).
        Returns "ok", or a short label of what went wrong (e.g. "500")."""


@dataclass
class PhaseStats:
    """What one load phase measured. Latencies in milliseconds."""

    phase: str
    clients: int
    #: Requests timed (sent and answered or failed).
    requests: int
    #: Of those, answered as the scenario expects.
    ok: int
    #: Failures by label ("500", "ConnectionResetError"...).
    errors: dict[str, int]
    #: From the first scheduled/started request to the last answer.
    duration_s: float
    #: Successful requests per second over `duration_s`.
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: Fixed-rate phases: the rate asked for (requests/s); None for closed-loop phases.
    target_rate: float | None = None
    #: Fixed-rate phases: median time from actually sending to the answer (no queueing).
    service_p50_ms: float | None = None
    #: Fixed-rate phases: 99th percentile of that service time.
    service_p99_ms: float | None = None
    #: True when the phase stopped at its time cap before sending every request.
    capped: bool = False
    #: Every latency, for pooling rounds (left out of the JSON: see `summary`).
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """The numbers without the raw latencies, for the JSON file."""
        return {k: v for k, v in asdict(self).items() if k != "latencies_ms"}


def pooled(phase: str, rounds: list[PhaseStats]) -> PhaseStats:
    """Several closed-loop rounds of one kind as one: counts and durations added up
    (requests/s = all successes / all time under load), percentiles over every sample."""
    samples = [value for stats in rounds for value in stats.latencies_ms]
    errors: Counter[str] = Counter()
    for stats in rounds:
        errors.update(stats.errors)
    ok = sum(stats.ok for stats in rounds)
    duration = sum(stats.duration_s for stats in rounds)
    return PhaseStats(
        phase=phase,
        clients=max((stats.clients for stats in rounds), default=0),
        requests=sum(stats.requests for stats in rounds),
        ok=ok,
        errors=dict(errors),
        duration_s=duration,
        rps=ok / duration if duration else 0.0,
        p50_ms=percentile(samples, 50),
        p90_ms=percentile(samples, 90),
        p99_ms=percentile(samples, 99),
        max_ms=max(samples) if samples else float("nan"),
        capped=any(stats.capped for stats in rounds),
        latencies_ms=samples,
    )


@dataclass
class _Recorder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    first_start: float = float("inf")
    last_end: float = 0.0
    failures: list[BaseException] = field(default_factory=list)

    def record(self, start: float, sent: float, end: float, outcome: str) -> None:
        with self.lock:
            self.latencies.append(end - start)
            self.service.append(end - sent)
            self.outcomes[outcome] += 1
            self.first_start = min(self.first_start, start)
            self.last_end = max(self.last_end, end)


def _timed_send(scenario: Scenario, client: HttpClient, key: str) -> str:
    try:
        return scenario.send(client, key)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__


def _stats(
    phase: str, clients: int, recorder: _Recorder, *, target_rate: float | None, capped: bool
) -> PhaseStats:
    ms = [value * 1000 for value in recorder.latencies]
    ok = recorder.outcomes.get("ok", 0)
    duration = max(recorder.last_end - recorder.first_start, 1e-9) if ms else 0.0
    service = [value * 1000 for value in recorder.service]
    return PhaseStats(
        phase=phase,
        clients=clients,
        requests=len(ms),
        ok=ok,
        errors={k: v for k, v in recorder.outcomes.items() if k != "ok"},
        duration_s=duration,
        rps=ok / duration if duration else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms) if ms else float("nan"),
        target_rate=target_rate,
        service_p50_ms=percentile(service, 50) if target_rate else None,
        service_p99_ms=percentile(service, 99) if target_rate else None,
        capped=capped,
        latencies_ms=ms,
    )


def _run_clients(
    phase: str,
    clients: int,
    make_client: Callable[[], HttpClient],
    scenario: Scenario,
    warmup: int,
    body: Callable[[HttpClient, _Recorder], None],
    recorder: _Recorder,
    on_release: Callable[[], None],
) -> None:
    """Start `clients` threads: each prepares and warms up its client, all wait at a
    barrier, `on_release` runs in this thread just before they go, then each runs `body`."""
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        client = make_client()
        try:
            try:
                scenario.prepare(client)
                for n in range(warmup):
                    outcome = _timed_send(scenario, client, f"{phase}-warm{index}-{n}")
                    if outcome != "ok":
                        raise RuntimeError(f"warm-up request failed: {outcome}")
            except BaseException as exc:
                with recorder.lock:
                    recorder.failures.append(exc)
                barrier.abort()
                return
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                return
            body(client, recorder)
        finally:
            client.close()

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"load-{i}", daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        on_release()
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join()
    if recorder.failures:
        raise RuntimeError(
            f"a load client could not start: {recorder.failures[0]!r}"
        ) from recorder.failures[0]


def closed_loop(
    make_client: Callable[[], HttpClient],
    scenario: Scenario,
    *,
    phase: str,
    clients: int,
    requests: int,
    max_seconds: float,
    warmup: int = 3,
) -> PhaseStats:
    """`clients` clients send `requests` requests in total, back to back (stopping early
    at `max_seconds`); returns throughput and latency."""
    counter = itertools.count()
    recorder = _Recorder()
    deadline = [float("inf")]
    capped = threading.Event()

    def body(client: HttpClient, rec: _Recorder) -> None:
        while True:
            index = next(counter)  # atomic under the GIL
            if index >= requests:
                return
            start = time.perf_counter()
            if start > deadline[0]:
                capped.set()
                return
            outcome = _timed_send(scenario, client, f"{phase}-{index}")
            rec.record(start, start, time.perf_counter(), outcome)

    def release() -> None:
        deadline[0] = time.perf_counter() + max_seconds

    _run_clients(phase, clients, make_client, scenario, warmup, body, recorder, release)
    return _stats(phase, clients, recorder, target_rate=None, capped=capped.is_set())


def fixed_rate(
    make_client: Callable[[], HttpClient],
    scenario: Scenario,
    *,
    phase: str,
    rate: float,
    seconds: float,
    clients: int,
    warmup: int = 1,
) -> PhaseStats:
    """Send `rate` requests per second for `seconds` seconds from a pool of `clients`;
    latency counts from each request's scheduled time."""
    total = max(1, int(rate * seconds))
    counter = itertools.count()
    recorder = _Recorder()
    start_at = [0.0]
    # However slow the server, the phase ends: nothing is sent after this many seconds.
    cap = seconds * 3 + 10
    capped = threading.Event()

    def body(client: HttpClient, rec: _Recorder) -> None:
        while True:
            index = next(counter)
            if index >= total:
                return
            scheduled = start_at[0] + index / rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            if sent > start_at[0] + cap:
                capped.set()
                return
            outcome = _timed_send(scenario, client, f"{phase}-{index}")
            rec.record(scheduled, sent, time.perf_counter(), outcome)

    def release() -> None:
        start_at[0] = time.perf_counter() + 0.05

    _run_clients(phase, clients, make_client, scenario, warmup, body, recorder, release)
    return _stats(phase, clients, recorder, target_rate=rate, capped=capped.is_set())

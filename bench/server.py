"""Serving a WSGI app with gunicorn on 127.0.0.1 for the duration of a benchmark phase.

The server runs in its own process group, and is always stopped on the way out (SIGTERM
to the master, then SIGKILL to the group if it lingers), whatever happened in between.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT, free_port

#: gunicorn settings shared by every server a benchmark compares (QUALITY.md: 2 workers).
WORKERS = 2
WORKER_CLASS = "sync"


class ServerError(RuntimeError):
    """The server did not come up; the message ends with the tail of its log."""


@dataclass(frozen=True)
class RunningServer:
    """A gunicorn serving on 127.0.0.1."""

    host: str
    port: int
    pid: int
    log_path: Path

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"


def gunicorn_command(app_spec: str, port: int, log_path: Path, workers: int = WORKERS) -> list[str]:
    """The gunicorn command line for `app_spec` ("module:app" or "module:factory()")."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        WORKER_CLASS,
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log_path),
        # gunicorn 27 opens a control socket in ~/.gunicorn by default; a benchmark has no
        # business there (and must not collide with a server someone else runs).
        "--no-control-socket",
        app_spec,
    ]


def bench_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`, with the repository importable (so
    `bench.bare_app` loads) wherever the server's working directory is."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _ready(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master (it stops its workers), then SIGKILL to the process group
    for anything still there. Only this server's own process group is signalled."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    # The group gunicorn leads (start_new_session): workers left behind go too.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


@contextmanager
def gunicorn(
    app_spec: str,
    *,
    env: dict[str, str],
    workdir: Path,
    ready_path: str = "/",
    start_timeout: float = 60.0,
    attempts: int = 3,
) -> Iterator[RunningServer]:
    """Serve `app_spec` with gunicorn (`WORKERS` sync workers) on a free port of
    127.0.0.1 until the block ends; waits until `ready_path` answers 200.

    `env` is the server's whole environment (see `bench_environment`); the working
    directory is `workdir`, so no `.env` of the checkout is read. Raises `ServerError`
    when it does not come up.
    """
    last_error = "not started"
    for attempt in range(attempts):
        port = free_port()
        log_path = workdir / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            gunicorn_command(app_spec, port, log_path),
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + start_timeout
            while time.monotonic() < deadline and process.poll() is None:
                if _ready(port, ready_path):
                    break
                time.sleep(0.1)
            if process.poll() is not None or not _ready(port, ready_path):
                log = _tail(log_path)
                last_error = (
                    f"gunicorn for {app_spec} did not come up (exit {process.poll()}):\n{log}"
                )
                if "Address already in use" in log and attempt + 1 < attempts:
                    continue  # someone took the "free" port in between: try another
                raise ServerError(last_error)
            try:
                yield RunningServer("127.0.0.1", port, process.pid, log_path)
            except Exception:
                # The server's side of whatever went wrong.
                print(
                    f"--- gunicorn log ({app_spec}), last lines:\n{_tail(log_path)}",
                    file=sys.stderr,
                )
                raise
            return
        finally:
            _stop(process)
    raise ServerError(last_error)

"""`make run`: the web app on 127.0.0.1 and, with no Stripe key, the Stripe emulator.

    python -m devtools.run_local --host 127.0.0.1 --port 5000

When `STRIPE_SECRET_KEY` is not set, this starts `devtools.stripe_emulator` on
127.0.0.1:12111 (its store in `instance/stripe-emulator/`), points the app at it
(`STRIPE_API_BASE`, a test key, a fresh webhook secret) and registers the app's
`/stripe/webhook` with it, so a donation can be clicked through offline. With a real key
set, Stripe is used as configured. Then `readership scheduler` runs the jobs beside
`readership run`, which serves the app; Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_PORT = 12111


def _wait_until_up(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (our own 127.0.0.1 URL)
            return
        except urllib.error.HTTPError:
            return  # it answers, even if with an error status
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the Stripe emulator did not start at {url}")


def start_emulator(host: str, port: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the emulator and register the app's webhook; returns it and the env to set."""
    store = ROOT / "instance" / "stripe-emulator"
    store.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(EMULATOR_PORT),
            "--store",
            str(store),
        ],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{EMULATOR_PORT}"
    _wait_until_up(f"{base}/v1/customers")
    secret = "whsec_emulator_" + secrets.token_hex(16)
    # The emulator sends only to loopback, whatever address the web server binds.
    body = urlencode({"url": f"http://127.0.0.1:{port}/stripe/webhook", "secret": secret})
    request = urllib.request.Request(  # noqa: S310 (our own 127.0.0.1 URL)
        f"{base}/_config/webhooks/readership",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    urllib.request.urlopen(request, timeout=5)  # noqa: S310
    env = {
        "STRIPE_SECRET_KEY": "sk_test_emulator",
        "STRIPE_API_BASE": base,
        "STRIPE_WEBHOOK_SECRET": secret,
    }
    print(
        f"Stripe emulator on {base} (no STRIPE_SECRET_KEY set); its checkout page has a Pay button",
        flush=True,
    )
    return process, env


def main(argv: list[str] | None = None) -> int:
    """Start what `make run` serves and wait until it stops."""
    parser = argparse.ArgumentParser(prog="python -m devtools.run_local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    # Links in emails and Stripe's return addresses must point at this server.
    env.setdefault("BASE_URL", f"http://{args.host}:{args.port}")
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not env.get("STRIPE_SECRET_KEY"):
            emulator, stripe_env = start_emulator(args.host, args.port)
            children.append(emulator)
            env.update(stripe_env)
        readership = Path(sys.executable).parent / "readership"
        # The scheduler runs in its own process, never inside the web server.
        children.append(subprocess.Popen([str(readership), "scheduler"], cwd=ROOT, env=env))
        web = subprocess.Popen(
            [str(readership), "run", "--host", args.host, "--port", str(args.port)],
            cwd=ROOT,
            env=env,
        )
        children.append(web)
        return web.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit runs main's `finally`, which stops the children (a bare SIGTERM would not).
    sys.exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())

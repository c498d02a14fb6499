"""`python -m devtools.stripe_emulator --port 12111 [--store DIR]`: serve until killed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import tempfile
from pathlib import Path

from devtools.stripe_emulator.extensions import LOOPBACK_HOSTS, install


def main(argv: list[str] | None = None) -> None:
    """Start the emulator on a loopback address and print its origin on one line."""
    parser = argparse.ArgumentParser(prog="python -m devtools.stripe_emulator")
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK_HOSTS)
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--store", type=Path, help="folder for the store (default: temporary)")
    parser.add_argument("--webhook-url", help="register this receiver at start (loopback only)")
    parser.add_argument("--webhook-secret", default="whsec_emulator")
    parser.add_argument("--webhook-delay", type=float, default=0.1, help="seconds")
    parser.add_argument("--webhook-timeout", type=float, default=5.0, help="seconds")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    # Imported late: localstripe builds its app at import time.
    from aiohttp import web
    from localstripe.webhooks import register_webhook

    from devtools.stripe_emulator.extensions import _is_loopback

    with contextlib.ExitStack() as stack:
        if args.store:
            args.store.mkdir(parents=True, exist_ok=True)
            store_dir = args.store
        else:
            temporary = tempfile.TemporaryDirectory(prefix="stripe-emulator-")
            store_dir = Path(stack.enter_context(temporary))
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
        origin = f"http://{host}:{sock.getsockname()[1]}"
        app = install(
            origin, store_dir / "localstripe.pickle", args.webhook_delay, args.webhook_timeout
        )
        if args.webhook_url:
            if not _is_loopback(args.webhook_url):
                parser.error("--webhook-url must be on 127.0.0.1, localhost or ::1")
            register_webhook("cli", args.webhook_url, args.webhook_secret, None)
        print(f"Stripe emulator on {origin}", flush=True)
        web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()

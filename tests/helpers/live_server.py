"""The real app served over HTTP on 127.0.0.1, for a browser or any HTTP client.

The server socket is bound first (port 0, so no race for a "free" port) and the app is
built afterwards with `BASE_URL` set to the server's own origin, so links the app writes
(in pages and emails) lead back to this server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Dispatcher:
    """Forwards to the app once it exists; before that every request is a 503."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"app not ready"]
        return self.app(environ, start_response)


class LiveServer:
    """A threaded werkzeug server for one Flask app; `url` is its origin.

    Use `LiveServer.start(build_app)`: `build_app(origin)` receives the origin (such as
    `http://127.0.0.1:41234`) and returns the app to serve. `stop()` shuts it down.
    """

    def __init__(self, server: BaseWSGIServer, dispatcher: _Dispatcher) -> None:
        self._server = server
        self._dispatcher = dispatcher
        # A short poll interval keeps `stop()` quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"live-server-{server.server_port}",
            daemon=True,
        )

    @classmethod
    def start(cls, build_app: Callable[[str], Flask], host: str = "127.0.0.1") -> LiveServer:
        """Bind a free port on `host`, build the app for that origin and serve it in a thread."""
        dispatcher = _Dispatcher()
        server = make_server(host, 0, dispatcher, threaded=True)
        # Browsers keep HTTP/1.1 connections open; closing the server must not wait for
        # their idle handler threads (they are daemon threads and end with the run).
        server.block_on_close = False  # type: ignore[attr-defined]
        live = cls(server, dispatcher)
        try:
            dispatcher.app = build_app(live.url)
        except BaseException:
            server.server_close()
            raise
        live._thread.start()
        return live

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """The origin, without a trailing slash: `http://127.0.0.1:PORT`."""
        return f"http://{self._server.server_address[0]}:{self.port}"

    @property
    def app(self) -> Flask:
        """The Flask app being served."""
        assert self._dispatcher.app is not None
        return self._dispatcher.app

    def stop(self) -> None:
        """Stop serving and close the socket; waits for the serving thread to end."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

"""The baseline server app: a bare Flask "hello" route, served by the same gunicorn
settings as the real app, so a ratio to it shows what the app adds to each request."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def hello() -> str:
    """Answer every request with a fixed text (a POSTed form is not even read)."""
    return "Hello, world!"

"""The `readership` command in its own process, as an operator runs it (kill -9 included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[2]


def cli(app: Flask, tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`readership ARGS` in its own process, on the test's database and SMTP sink."""
    values = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SMTP_URL": app.config["SMTP_URL"],
        "MAIL_FROM": app.config["MAIL_FROM"],
        "BASE_URL": app.config["BASE_URL"],
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    code = "import sys; from webapp.cli import main; sys.argv[0] = 'readership'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=values,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

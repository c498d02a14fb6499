"""`readership subscribers import/export` and `readership demo`."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from tqdm import tqdm

from webapp.core.clock import get_clock
from webapp.db import get_database
from webapp.subscribers import csv_io, demo
from webapp.subscribers.forms import IMPORT_FORMATS
from webapp.subscribers.models import ImportStatus, SubscriberStatus
from webapp.subscribers.signals import loading_demo, loading_demo_history

subscribers_group = AppGroup("subscribers", help="Import and export the subscriber list (CSV).")

#: Rejected rows echoed after an import (all of them go to --report).
_SHOWN_REJECTIONS = 20


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(IMPORT_FORMATS),
    default="auto",
    show_default=True,
    help="Detected from the header row when auto.",
)
@click.option(
    "--language",
    default=None,
    help="Language for rows that name none (default: the first configured).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write every rejected row (line, email, reason) to this CSV.",
)
@click.option(
    "--encoding",
    default=None,
    metavar="NAME",
    help="Read the file in this encoding (e.g. cp1251, koi8-r, utf-16) instead of "
    "the detected one.",
)
def import_command(
    fmt: str, file: Path, language: str | None, report: Path | None, encoding: str | None
) -> None:
    """Import subscribers from FILE (ours, Substack, Ghost, Mailchimp or listmonk CSV)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    languages = tuple(app.config["LANGUAGES"])
    if language is not None and language not in languages:
        raise click.BadParameter(f"choose one of {', '.join(languages)}", param_hint="--language")
    if encoding is not None:
        try:
            encoding = csv_io.check_encoding(encoding)
        except csv_io.ImportFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--encoding") from None
    clock = get_clock(app)
    with get_database(app).session() as session:
        job = csv_io.start_import(
            session,
            filename=file.name,
            requested_format=fmt,
            default_language=language or languages[0],
            now=clock.now(),
            requested_encoding=encoding or "auto",
        )
        session.commit()
        with tqdm(
            total=0,
            unit="rows",
            desc="Importing",
            file=sys.stderr,
            disable=None,
            dynamic_ncols=True,
        ) as bar:

            def progress(processed: int, total: int) -> None:
                bar.total = max(total, processed)
                bar.n = processed
                bar.refresh()

            csv_io.run_import(
                session, job, file, languages=languages, now=clock.now, progress=progress
            )
        if job.status == ImportStatus.FAILED:
            raise click.ClickException(job.error or "the import failed")
        click.echo(f"Encoding: {job.encoding} ({'as asked' if encoding else 'detected'}).")
        click.echo(
            f"Import {job.id} ({job.detected_format}): {job.created_count} added, "
            f"{job.updated_count} changed, {job.unchanged_count} already on the list, "
            f"{job.rejected_count} rejected."
        )
        if job.dates_clamped:
            click.echo(
                f"  {job.dates_clamped} rows had a date in the future or unreadable: "
                "set to the import time."
            )
        if job.rejected_count:
            for rejection in job.rejections[:_SHOWN_REJECTIONS]:
                click.echo(f"  line {rejection.line}: {rejection.reason} {rejection.value}")
            if job.rejected_count > _SHOWN_REJECTIONS and report is None:
                click.echo(
                    f"  … and {job.rejected_count - _SHOWN_REJECTIONS} more "
                    "(use --report FILE for all)."
                )
        if report is not None:
            report.write_text(csv_io.rejections_csv(job), encoding="utf-8")
            click.echo(f"Rejected rows written to {report}.")


@subscribers_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    default=None,
    help="Only subscribers with this status.",
)
def export_command(file: Path, status: str | None) -> None:
    """Export the list to FILE in our own CSV format (re-importable)."""
    from webapp.staff.services import record_audit

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with get_database(app).session() as session:
        with file.open("w", encoding="utf-8", newline="") as out:
            count = csv_io.export_subscribers(
                session, out, status=SubscriberStatus(status) if status else None
            )
        record_audit(
            session,
            actor=None,
            action="subscribers.export",
            target_type="subscriber",
            details={"rows": count, "status": status or "all", "via": "cli"},
            now=get_clock(app).now(),
        )
        session.commit()
    click.echo(f"Exported {count} subscribers to {file}.")


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has data already.")
@click.option(
    "--subscribers",
    "count",
    type=click.IntRange(0, 1_000_000),
    default=300,
    show_default=True,
    help="How many demo subscribers.",
)
@click.option(
    "--password", default=None, help="Password of the demo admin (default: a random one, printed)."
)
@click.option(
    "--donors",
    type=click.IntRange(0, 10_000_000),
    default=0,
    help="Also generate this many donors with a realistic history (benchmarks).",
)
@click.option(
    "--donations",
    type=click.IntRange(0, 100_000_000),
    default=0,
    help="...and about this many donations (recurring renewals and one-time gifts).",
)
@with_appcontext
def demo_command(
    if_empty: bool, count: int, password: str | None, donors: int, donations: int
) -> None:
    """Load demo data: subscribers in every language with history, and a demo admin."""
    from webapp.site.services import get_site_settings
    from webapp.staff.services import create_staff_user, get_staff_by_email

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    login_url = f"{app.config['BASE_URL']}/staff/login"
    now = get_clock(app).now()
    with get_database(app).session() as session:
        if if_empty and not demo.database_is_empty(session):
            click.echo("database not empty, demo skipped")
            _print_sign_in_help(
                login_url, existing=get_staff_by_email(session, demo.DEMO_STAFF_EMAIL) is not None
            )
            return
        site = get_site_settings(session)
        if site.publication_name == "Readership":
            # A believable publication for the demo; staff rename it in /staff/settings.
            site.publication_name = "The Meridian"
            site.tagline_en = "Independent analysis of Russia and Eastern Europe"
            site.tagline_ru = "Независимая аналитика о России и Восточной Европе"
            site.site_url = "https://meridian.example.org"
        result = demo.load_demo_subscribers(
            session,
            count=count,
            now=now,
            languages=tuple(app.config["LANGUAGES"]),
            site_url=site.site_url,
            base_url=app.config["BASE_URL"],
        )
        extras = [text for _, text in loading_demo.send(app, session=session, now=now)]
        if donors and loading_demo_history.receivers:
            session.commit()
            with tqdm(
                total=donors + donations,
                unit="rows",
                desc="History",
                file=sys.stderr,
                disable=None,
                dynamic_ncols=True,
            ) as bar:
                extras += [
                    text
                    for _, text in loading_demo_history.send(
                        app,
                        session=session,
                        donors=donors,
                        donations=max(donations, donors),
                        now=now,
                        progress=bar.update,
                    )
                ]
        new_password = None
        if get_staff_by_email(session, demo.DEMO_STAFF_EMAIL) is None:
            new_password = password or secrets.token_urlsafe(12)
            try:
                create_staff_user(
                    session,
                    email=demo.DEMO_STAFF_EMAIL,
                    role="admin",
                    password=new_password,
                    now=now,
                    name="Demo admin",
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(
        f"Demo data loaded: {result.created} subscribers"
        + (f" ({result.skipped} were there already)" if result.skipped else "")
        + "".join(f", {extra}" for extra in extras if extra)
        + "."
    )
    if new_password:
        click.echo(f"Demo staff login: {demo.DEMO_STAFF_EMAIL} / {new_password}")
        click.echo(f"Sign in at {login_url}")
    else:
        _print_sign_in_help(login_url, existing=True)


def _print_sign_in_help(login_url: str, *, existing: bool) -> None:
    if existing:
        click.echo(
            f"Sign in at {login_url} as {demo.DEMO_STAFF_EMAIL} with the password "
            "printed when the demo was loaded "
            f"(forgotten? readership staff set-password {demo.DEMO_STAFF_EMAIL})."
        )
    else:
        click.echo(
            f"Sign in at {login_url}; create a staff user first with: "
            "readership staff create EMAIL --role admin"
        )

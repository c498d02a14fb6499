"""Staff pages for the list: search and filters, one subscriber's page, status changes,
erasure, CSV export and import with a live progress page."""

from __future__ import annotations

import io
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.core.clock import get_clock, utcnow
from webapp.core.forms import EraseForm
from webapp.core.net import client_ip
from webapp.db import get_database, get_session
from webapp.outbox.services import erase_local_mailbox_copies, get_mailer
from webapp.staff.services import Permission, current_staff, record_audit, requires, role_allows
from webapp.subscribers import csv_io, mail, queries, services
from webapp.subscribers.erasure import ErasureBlocked, erase_subscriber
from webapp.subscribers.forms import (
    ExportForm,
    ImportForm,
    ImportStartForm,
    StatusActionForm,
    SubscriberFilterForm,
    source_label,
    status_label,
)
from webapp.subscribers.models import (
    ImportJob,
    ImportStatus,
    InvalidTransition,
    Subscriber,
    SubscriberStatus,
)

log = logging.getLogger("readership.subscribers")

bp = Blueprint(
    "subscribers_staff", __name__, url_prefix="/staff/subscribers", template_folder="templates"
)


@bp.app_template_global()
def subscriber_status_label(value: str) -> Any:
    """Template helper: a translated status name."""
    return status_label(str(value))


@bp.app_template_global()
def subscriber_source_label(value: str) -> Any:
    """Template helper: a translated source name."""
    return source_label(str(value))


def _can(permission: Permission) -> bool:
    staff = current_staff()
    return staff is not None and role_allows(staff.role, permission)


def _subscriber_or_404(subscriber_id: int) -> Subscriber:
    subscriber = get_session().get(Subscriber, subscriber_id)
    if subscriber is None:
        abort(404)
    return subscriber


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


# --- List -------------------------------------------------------------------------------


@bp.get("/")
@requires(Permission.SUBSCRIBERS_VIEW)
def index() -> Any:
    """The list: prefix search, filters, keyset paging, counts."""
    languages = current_app.config["LANGUAGES"]
    form = SubscriberFilterForm(request.args, languages=languages)
    if not form.validate():
        return render_template(
            "staff/subscribers/index.html",
            form=form,
            page=None,
            counts={},
            filters={},
            export_form=ExportForm(),
            can_export=_can(Permission.SUBSCRIBERS_EXPORT),
            can_manage=_can(Permission.SUBSCRIBERS_MANAGE),
        ), 400
    flt = queries.SubscriberFilter(
        q=form.q.data or "",
        status=form.status.data or "",
        language=form.language.data or "",
        source=form.source.data or "",
    )
    session = get_session()
    page = queries.list_subscribers(
        session, flt, before=_int_arg("before"), after=_int_arg("after")
    )
    return render_template(
        "staff/subscribers/index.html",
        form=form,
        page=page,
        counts=queries.status_counts(session),
        filters=flt.as_args(),
        export_form=ExportForm(),
        can_export=_can(Permission.SUBSCRIBERS_EXPORT),
        can_manage=_can(Permission.SUBSCRIBERS_MANAGE),
    )


# --- One subscriber ---------------------------------------------------------------------


def _detail(subscriber: Subscriber, status: int = 200, error: str | None = None) -> Any:
    session = get_session()
    return render_template(
        "staff/subscribers/detail.html",
        subscriber=subscriber,
        consents=queries.consent_records(session, subscriber.id),
        history=queries.history(session, subscriber),
        emails=mail.emails_for(session, subscriber.id),
        action_form=StatusActionForm(),
        can_manage=_can(Permission.SUBSCRIBERS_MANAGE),
        can_erase=_can(Permission.SUBSCRIBERS_ERASE),
        error=error,
    ), status


@bp.get("/<int:subscriber_id>")
@requires(Permission.SUBSCRIBERS_VIEW)
def detail(subscriber_id: int) -> Any:
    """One subscriber: details, consent records, history, emails sent."""
    return _detail(_subscriber_or_404(subscriber_id))


@bp.post("/<int:subscriber_id>/status")
@requires(Permission.SUBSCRIBERS_MANAGE)
def change_status(subscriber_id: int) -> Any:
    """Confirm by hand, unsubscribe, suppress or lift a suppression (audit-logged)."""
    subscriber = _subscriber_or_404(subscriber_id)
    form = StatusActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        action = services.StaffAction(form.action.data)
    except ValueError:
        abort(400)
    session = get_session()
    try:
        changed = services.staff_change_status(
            session, subscriber, action, staff=current_staff(), now=utcnow(), ip=client_ip()
        )
    except InvalidTransition:
        session.rollback()
        return _detail(subscriber, 409, _("That change is not possible for this subscriber."))
    session.commit()
    flash(_("Saved.") if changed else _("Nothing to change."), "ok")
    return redirect(url_for(".detail", subscriber_id=subscriber.id), code=303)


@bp.route("/<int:subscriber_id>/erase", methods=["GET", "POST"])
@requires(Permission.SUBSCRIBERS_ERASE)
def erase(subscriber_id: int) -> Any:
    """Erase a person everywhere, after the address is typed again (audit-logged)."""
    subscriber = _subscriber_or_404(subscriber_id)
    if subscriber.erased_at is not None:
        flash(_("This person was erased already."), "ok")
        return redirect(url_for(".detail", subscriber_id=subscriber.id), code=303)
    form = EraseForm(expected_email=subscriber.email)
    if request.method != "POST":
        return render_template("staff/subscribers/erase.html", form=form, subscriber=subscriber)
    if not form.validate_on_submit():
        return render_template(
            "staff/subscribers/erase.html", form=form, subscriber=subscriber
        ), 422
    session = get_session()
    address = subscriber.email
    try:
        fingerprint = erase_subscriber(
            session,
            subscriber,
            staff=current_staff(),
            secret=current_app.config["SECRET_KEY"],
            now=utcnow(),
            ip=client_ip(),
        )
    except ErasureBlocked as blocked:
        session.rollback()
        flash(str(blocked), "error")
        return render_template(
            "staff/subscribers/erase.html", form=form, subscriber=subscriber
        ), 409
    session.commit()
    erase_local_mailbox_copies(get_mailer(), address)
    flash(
        _("The person was erased. Reference kept in the audit log: %(ref)s", ref=fingerprint), "ok"
    )
    return redirect(url_for(".index"), code=303)


# --- Export -----------------------------------------------------------------------------


@bp.post("/export")
@requires(Permission.SUBSCRIBERS_EXPORT)
def export() -> Any:
    """Download the list as CSV in our own format (audit-logged)."""
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400)
    status = SubscriberStatus(form.status.data) if form.status.data else None
    session = get_session()
    now = utcnow()
    # Not a `with` block: send_file streams the file and closes it when the response ends.
    handle = tempfile.TemporaryFile()  # noqa: SIM115
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    count = csv_io.export_subscribers(session, text, status=status)
    text.flush()
    text.detach()
    handle.seek(0)
    record_audit(
        session,
        actor=current_staff(),
        action="subscribers.export",
        target_type="subscriber",
        details={"rows": count, "status": status.value if status else "all"},
        ip=client_ip(),
        now=now,
    )
    session.commit()
    suffix = f"-{status.value}" if status else ""
    return send_file(
        handle,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"subscribers{suffix}-{now:%Y-%m-%d}.csv",
        max_age=0,
    )


# --- Import -----------------------------------------------------------------------------


def limit_import_upload() -> None:
    """Before CSRF reads the form: refuse an upload larger than the limit with 413."""
    if request.endpoint != "subscribers_staff.import_upload" or request.method != "POST":
        return
    limit = int(current_app.config["SUBSCRIBER_IMPORT_MAX_BYTES"])
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = limit


def _import_dir(app: Flask) -> Path:
    path = Path(app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_in_background(app: Flask, job_id: int, path: Path) -> threading.Thread:
    """Import in a thread with its own session; progress is committed to the job row."""

    def work() -> None:
        try:
            with app.app_context(), get_database(app).session() as session:
                job = session.get(ImportJob, job_id)
                if job is not None:
                    csv_io.run_import(
                        session,
                        job,
                        path,
                        languages=tuple(app.config["LANGUAGES"]),
                        now=get_clock(app).now,
                    )
        except Exception:
            log.exception("subscriber import %s failed", job_id)
        finally:
            path.unlink(missing_ok=True)

    thread = threading.Thread(target=work, name=f"subscriber-import-{job_id}", daemon=True)
    thread.start()
    return thread


def _upload_path(app: Flask, job_id: int) -> Path:
    """Where an uploaded file waits for its import (named by the job: nothing from the
    request goes into a path)."""
    return _import_dir(app) / f"job-{job_id}.csv"


@bp.route("/import", methods=["GET", "POST"])
@requires(Permission.SUBSCRIBERS_MANAGE)
def import_upload() -> Any:
    """Upload a CSV; this redirects to its preview (encoding, format, first rows), where
    staff start the import, which then runs in the background."""
    languages = current_app.config["LANGUAGES"]
    form = ImportForm(languages=languages)
    session = get_session()
    recent = list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(10)))
    if request.method != "POST":
        if not form.language.data:
            form.language.data = languages[0]
        return render_template("staff/subscribers/import.html", form=form, recent=recent)
    if not form.validate_on_submit():
        return render_template("staff/subscribers/import.html", form=form, recent=recent), 422
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    staff = current_staff()
    now = utcnow()
    job = csv_io.start_import(
        session,
        filename=form.file.data.filename or "upload.csv",
        requested_format=form.format.data or "auto",
        default_language=form.language.data,
        now=now,
        staff_user_id=staff.id if staff else None,
    )
    path = _upload_path(app, job.id)
    form.file.data.save(path)
    record_audit(
        session,
        actor=staff,
        action="subscribers.import",
        target_type="subscriber_import",
        target_id=job.id,
        details={"filename": job.filename, "format": job.requested_format},
        ip=client_ip(),
        now=now,
    )
    session.commit()
    try:
        csv_io.preview_csv(path, requested_format=job.requested_format)
    except csv_io.ImportFileError as exc:
        # Nothing to preview or start: the job page says why.
        csv_io.refuse_import(session, job, str(exc), utcnow())
        path.unlink(missing_ok=True)
    return redirect(url_for(".import_progress", job_id=job.id), code=303)


def _job_or_404(job_id: int) -> ImportJob:
    job = get_session().get(ImportJob, job_id)
    if job is None:
        abort(404)
    return job


def _preview(job: ImportJob) -> tuple[csv_io.FilePreview | None, str | None]:
    """The queued import's file as it will be read, or why it cannot be."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    path = _upload_path(app, job.id)
    if not path.exists():
        return None, _("The uploaded file is gone (the server restarted?). Upload it again.")
    encoding = None if job.requested_encoding == "auto" else job.requested_encoding
    try:
        return csv_io.preview_csv(
            path, requested_format=job.requested_format, encoding=encoding
        ), None
    except csv_io.ImportFileError as exc:
        return None, str(exc)


@bp.get("/import/<int:job_id>")
@requires(Permission.SUBSCRIBERS_MANAGE)
def import_progress(job_id: int) -> str:
    """A queued import's preview (encoding, format, first rows decoded) with its start
    button; then its live progress (polled by a static script) and, when done, its report."""
    job = _job_or_404(job_id)
    rejections = job.rejections[:200] if job.status == ImportStatus.FINISHED else []
    preview, preview_error, start_form = None, None, None
    if job.status == ImportStatus.QUEUED and job.started_at is None:
        preview, preview_error = _preview(job)
        start_form = ImportStartForm(data={"encoding": job.requested_encoding})
    return render_template(
        "staff/subscribers/import_progress.html",
        job=job,
        rejections=rejections,
        preview=preview,
        preview_error=preview_error,
        start_form=start_form,
    )


@bp.post("/import/<int:job_id>/start")
@requires(Permission.SUBSCRIBERS_MANAGE)
def import_start(job_id: int) -> Any:
    """Preview again in the chosen encoding, or start the import in it (once)."""
    job = _job_or_404(job_id)
    form = ImportStartForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    if job.status != ImportStatus.QUEUED or job.started_at is not None:
        return redirect(url_for(".import_progress", job_id=job.id), code=303)
    if form.action.data == "preview":
        job.requested_encoding = form.encoding.data
        session.commit()
        return redirect(url_for(".import_progress", job_id=job.id), code=303)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    path = _upload_path(app, job.id)
    if path.exists() and csv_io.claim_import(
        session, job, requested_encoding=form.encoding.data, now=utcnow()
    ):
        _run_in_background(app, job.id, path)
    return redirect(url_for(".import_progress", job_id=job.id), code=303)


def job_progress(job: ImportJob) -> dict[str, Any]:
    """The JSON the progress page polls."""
    return {
        "id": job.id,
        "status": job.status.value,
        "done": job.status in (ImportStatus.FINISHED, ImportStatus.FAILED),
        "total": job.total_rows,
        "processed": job.processed_rows,
        "percent": job.percent,
        "created": job.created_count,
        "updated": job.updated_count,
        "unchanged": job.unchanged_count,
        "rejected": job.rejected_count,
        "format": job.detected_format,
        "encoding": job.encoding,
        "dates_clamped": job.dates_clamped,
        "error": job.error,
    }


@bp.get("/import/<int:job_id>/progress.json")
@requires(Permission.SUBSCRIBERS_MANAGE)
def import_progress_json(job_id: int) -> Response:
    """Counters of one import, for the progress bar."""
    response = jsonify(job_progress(_job_or_404(job_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/import/<int:job_id>/rejected.csv")
@requires(Permission.SUBSCRIBERS_MANAGE)
def import_rejections(job_id: int) -> Response:
    """The rejected rows of one import (line, email, reason) as CSV."""
    job = _job_or_404(job_id)
    response = Response(csv_io.rejections_csv(job), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="import-{job.id}-rejected.csv"'
    return response

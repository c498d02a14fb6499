"""Smoke test of the benchmarks: each runs at a tiny size and hands back well-formed results.

Nothing here looks at how fast anything was (that is `make bench`'s job, on purpose not
part of the tests); it checks the benchmarks still work against the current code: the
import stores every row the baseline stores, every signup is answered and sends its
email, the table and the JSON come out. On CI's PostgreSQL run (TEST_DATABASE_URL set)
the import is measured there too, in scratch databases.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from bench import csv_import, digest, reports, signup_load, webhook_ingest
from bench.__main__ import main
from bench.report import BenchResult, format_table

pytestmark = pytest.mark.slow


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    return url if url and url.startswith("postgresql") else None


def _assert_well_formed(result: BenchResult) -> None:
    assert result.error is None
    assert result.measurements
    for measurement in result.measurements:
        assert measurement.what
        assert isinstance(measurement.value, int | float)
        assert math.isfinite(measurement.value), measurement
        # A growth from one run to another is a signed difference (two runs of nearly the
        # same peak differ by noise either way); every other figure is a size or a rate.
        if "growth" not in measurement.what:
            assert measurement.value >= 0, measurement
        assert (measurement.target is None) == (measurement.ok is None), measurement
    table = format_table([result])
    assert result.name in table
    assert all(m.what in table for m in result.measurements)


def test_csv_import_imports_every_row_and_compares_with_the_baseline() -> None:
    postgres = _postgres_url()
    result = csv_import.run(rows=150, database_url=postgres, repeat=1)

    _assert_well_formed(result)
    backends = ["sqlite"] + (["postgresql"] if postgres else [])
    assert result.params["backends"] == backends
    for kind in backends:
        detail = result.details[kind]
        assert detail["rows_identical"] is True
        assert detail["import_s"] > 0 and detail["executemany_s"] > 0
        assert detail["ratio"] == pytest.approx(detail["import_s"] / detail["executemany_s"])
        lines = {m.what: m for m in result.measurements}
        assert lines[f"{kind}: import / executemany"].target == "<= 3x"


def test_generated_file_is_read_back_by_the_import_as_written(tmp_path: Path) -> None:
    records = csv_import.generate_records(40)
    assert len({r.email for r in records}) == 40
    path = tmp_path / "list.csv"
    csv_import.write_csv(records, path)

    seconds, job = csv_import.time_import(f"sqlite:///{tmp_path / 'db.sqlite3'}", path, tmp_path)

    assert seconds > 0
    assert job.detected_format == "readership"
    assert (job.created_count, job.rejected_count) == (40, 0)


def test_signup_load_answers_every_request_and_sends_every_email() -> None:
    sizes = signup_load.LoadSizes(
        clients=2,
        rounds=1,
        bare_requests=20,
        signup_requests=8,
        fixed_seconds=0.2,
        fixed_clients=2,
        max_seconds=30,
        warmup=1,
    )
    result = signup_load.run(sizes)

    _assert_well_formed(result)
    details = result.details
    assert details["bare"]["ok"] == 20
    assert details["signup"]["ok"] == 8
    assert details["fixed_rate"]["ok"] == 20  # 100 req/s for 0.2 s
    assert details["bare"]["errors"] == {} and details["signup"]["errors"] == {}
    # Warm-up signups count too: 2 per closed-loop client, 1 per fixed-rate client.
    assert details["signups_accepted"] == 8 + 20 + 2 + 2
    assert details["emails_received"] == details["signups_accepted"]
    assert details["addresses_reached"] == details["signups_accepted"]
    lines = {m.what: m for m in result.measurements}
    assert lines["failed requests (all phases)"].value == 0
    assert lines["signup / bare req/s"].target == ">= 0.5x"
    assert lines["signup at 100 req/s: p99"].target == "< 100 ms"


def test_webhook_ingest_applies_every_event_once() -> None:
    result = webhook_ingest.run(webhook_ingest.IngestSizes(donations=30, clients=2, max_seconds=30))

    _assert_well_formed(result)
    for variant in ("receipts queued", "SMTP in request"):
        details = result.details[variant]
        # 30 events plus 3 duplicates, every one answered 200; each payment counted once.
        assert details["ok"] == 33 and details["errors"] == {}
        assert details["paid"] == details["event_rows"] == details["receipts"] == 30
    lines = {m.what: m for m in result.measurements}
    assert lines["ingest (receipts queued): events/s, 10% duplicates"].target == ">= 300"


def test_digest_sends_the_whole_issue_and_measures_memory() -> None:
    sizes = digest.DigestSizes(fill_messages=50, compile_messages=3, small_list=20, large_list=60)
    result = digest.run(sizes, database_url=_postgres_url())
    _assert_well_formed(result)
    lines = {m.what: m for m in result.measurements}
    assert lines["compile / fill-in"].target == "> 20x"
    assert lines["sqlite: engine / bare"].target == ">= 0.8"
    # The engine sent every reader exactly the list (the benchmark checks it with the sink).
    assert result.details["sqlite_large"]["engine"]["sent"] == 60
    assert result.details["sqlite_small"]["sent"] == 20
    if _postgres_url():
        assert result.details["postgresql_large"]["engine"]["sent"] == 60


def test_reports_measures_the_dashboard_and_every_report() -> None:
    sizes = reports.ReportSizes(donors=60, donations=400, subscribers=40)
    result = reports.run(sizes, _postgres_url())
    _assert_well_formed(result)
    lines = {m.what: m for m in result.measurements}
    assert lines["sqlite: subscribers written (40)"].unit == "s"
    assert lines["sqlite: dashboard / count(*)"].target == "<= 5x"
    assert "sqlite: lapsed / count(*)" in lines


def test_main_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results" / "latest.json"

    status = main(
        ["--only", "csv_import", "--rows", "30", "--repeat", "1", "--output", str(output)]
    )

    assert status == 0
    printed = capsys.readouterr().out
    assert "csv_import" in printed and "import / executemany" in printed
    payload = json.loads(output.read_text(encoding="utf-8"))
    assert set(payload["benchmarks"]) == {"csv_import"}
    bench = payload["benchmarks"]["csv_import"]
    assert bench["error"] is None
    assert bench["params"]["rows"] == 30
    assert {m["what"] for m in bench["measurements"]} >= {"sqlite: import / executemany"}
    assert payload["machine"]["cpus"] >= 1


def test_main_refuses_an_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "no_such_bench"])
    assert exit_info.value.code == 2
    assert "unknown benchmark" in capsys.readouterr().err

"""`python -m bench`: run the benchmarks, print a table, write JSON.

    python -m bench                       # everything, default sizes (a few minutes)
    python -m bench --quick               # small sizes, to check the benchmarks work
    python -m bench --only csv_import --rows 50000
    python -m bench --only csv_import --database-url postgresql+psycopg://user@host/db

Exit status: 0 when every benchmark ran (targets missed or not; add --strict to fail on a
missed target), 1 when a benchmark could not run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import csv_import, digest, reports, signup_load, webhook_ingest
from bench.report import BenchResult, format_table, write_json

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _csv_import(args: argparse.Namespace) -> BenchResult:
    rows = args.rows or (csv_import.QUICK_ROWS if args.quick else csv_import.DEFAULT_ROWS)
    repeat = args.repeat or (1 if args.quick else 2)
    return csv_import.run(rows=rows, database_url=args.database_url, repeat=repeat)


def _signup_load(args: argparse.Namespace) -> BenchResult:
    sizes = signup_load.QUICK if args.quick else signup_load.LoadSizes()
    return signup_load.run(sizes)


def _webhook_ingest(args: argparse.Namespace) -> BenchResult:
    sizes = webhook_ingest.QUICK if args.quick else webhook_ingest.IngestSizes()
    return webhook_ingest.run(sizes, database_url=args.database_url)


def _digest(args: argparse.Namespace) -> BenchResult:
    sizes = digest.QUICK if args.quick else digest.DigestSizes()
    return digest.run(sizes, database_url=args.database_url)


def _reports(args: argparse.Namespace) -> BenchResult:
    sizes = reports.QUICK if args.quick else reports.ReportSizes()
    return reports.run(sizes, database_url=args.database_url)


#: Every benchmark by name, in the order they run.
BENCHMARKS: dict[str, Callable[[argparse.Namespace], BenchResult]] = {
    csv_import.NAME: _csv_import,
    signup_load.NAME: _signup_load,
    webhook_ingest.NAME: _webhook_ingest,
    digest.NAME: _digest,
    reports.NAME: _reports,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this benchmark (repeatable; one of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help=f"csv_import: rows in the file (default {csv_import.DEFAULT_ROWS:,})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="csv_import: rounds per side, best counts (default 2; 1 with --quick)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="csv_import, webhook_ingest, digest: also measure on this "
        "PostgreSQL server (postgresql+psycopg://...; scratch databases "
        "are created there "
        "and dropped, the named database is not touched)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where the JSON goes (default bench/results/latest.json)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    names = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.rows is not None and args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.only = names
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; returns the exit status."""
    args = parse_args(argv)
    if args.list:
        for module in (csv_import, signup_load, webhook_ingest, digest, reports):
            print((module.__doc__ or module.NAME).splitlines()[0])
        return 0
    chosen = args.only or list(BENCHMARKS)
    results: list[BenchResult] = []
    for name in chosen:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            result = BENCHMARKS[name](args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            result = BenchResult(name, error=f"{type(exc).__name__}: {exc}")
        result.elapsed_s = time.perf_counter() - started
        print(f"  {name} done in {result.elapsed_s:.1f} s", file=sys.stderr, flush=True)
        results.append(result)
    print(format_table(results))
    write_json(
        args.output,
        results,
        {
            "only": chosen,
            "quick": args.quick,
            "rows": args.rows,
            "repeat": args.repeat,
            "database_url": "given" if args.database_url else None,
        },
    )
    print(f"\nJSON written to {args.output}")
    if any(result.error for result in results):
        return 1
    if args.strict and any(result.missed for result in results):
        return 1
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds through the benchmarks' `with` blocks, which stop the servers they
    # started (a plain SIGTERM would end this process and leave them running).
    sys.exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())

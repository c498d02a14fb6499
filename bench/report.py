"""What a benchmark hands back, and the table and JSON made from it."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Measurement:
    """One line of the table: a number, its unit, and the target it is held to (if any)."""

    #: What was measured, e.g. "sqlite: import / executemany".
    what: str
    #: The number (seconds, rows/s, req/s, ms or a ratio).
    value: float
    #: "s", "ms", "rows/s", "req/s", "x" (a ratio) or "" (a count).
    unit: str
    #: The target as written in QUALITY.md, e.g. "<= 3x"; None when the line is context.
    target: str | None = None
    #: True when the target is met, False when missed, None when there is no target.
    ok: bool | None = None

    def formatted_value(self) -> str:
        """The value with its unit, rounded for reading."""
        value = self.value
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        if self.unit == "x":
            return f"{value:.2f}x"
        if self.unit == "s":
            return f"{value:.3f} s"
        if self.unit == "ms":
            return f"{value:.1f} ms"
        if self.unit in {"rows/s", "req/s", "msg/s"}:
            return f"{value:,.0f} {self.unit}"
        if float(value).is_integer():
            return f"{int(value):,}{(' ' + self.unit) if self.unit else ''}"
        return f"{value:,.2f}{(' ' + self.unit) if self.unit else ''}"


@dataclass
class BenchResult:
    """Everything one benchmark measured."""

    #: The benchmark's name (its module name), e.g. "csv_import".
    name: str
    #: The sizes and settings it ran with.
    params: dict[str, Any] = field(default_factory=dict)
    #: The table lines, in order.
    measurements: list[Measurement] = field(default_factory=list)
    #: Raw numbers behind the table (per phase), for the JSON file.
    details: dict[str, Any] = field(default_factory=dict)
    #: Set when the benchmark could not finish: "ExceptionType: message".
    error: str | None = None
    #: Wall-clock seconds the benchmark took, set-up included.
    elapsed_s: float = 0.0

    def add(
        self,
        what: str,
        value: float,
        unit: str,
        target: str | None = None,
        ok: bool | None = None,
    ) -> Measurement:
        """Append a table line and return it."""
        measurement = Measurement(what, value, unit, target, ok)
        self.measurements.append(measurement)
        return measurement

    @property
    def missed(self) -> list[Measurement]:
        """The lines whose target was missed."""
        return [m for m in self.measurements if m.ok is False]


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0-100) of `values` by the nearest-rank method; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def format_table(results: Sequence[BenchResult]) -> str:
    """A plain-text table of every measurement, one benchmark after the other."""
    header = ("benchmark", "measurement", "value", "target", "verdict")
    lines: list[tuple[str, ...]] = []
    for result in results:
        if result.error:
            lines.append((result.name, "ERROR", result.error[:70], "", "error"))
            continue
        for m in result.measurements:
            verdict = "" if m.ok is None else ("ok" if m.ok else "MISSED")
            lines.append((result.name, m.what, m.formatted_value(), m.target or "", verdict))
    widths = [
        max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i])
        for i in range(len(header))
    ]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [render(header), render(["-" * w for w in widths])]
    previous = None
    for line in lines:
        shown = list(line)
        if line[0] == previous:
            shown[0] = ""
        previous = line[0]
        out.append(render(shown))
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (they only compare within one machine and run)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, results: Sequence[BenchResult], args: dict[str, Any]) -> None:
    """Write the run's results as JSON to `path` (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": args,
        "benchmarks": {result.name: asdict(result) for result in results},
    }
    text = json.dumps(_finite(payload), indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value

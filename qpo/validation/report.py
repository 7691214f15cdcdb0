"""What a validation returns: the report, its failed expectations, and each check's severity."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from qpo.errors import DataValidationError


class Severity(StrEnum):
    """What a failed check does to the run."""

    ERROR = "error"  # the data is wrong: the run stops (nothing written; a pipeline exits 2)
    WARNING = "warning"  # the data may be right but needs a look: reported, stops nothing

    @property
    def effect(self) -> str:
        return "stops the run" if self is Severity.ERROR else "reported, does not stop the run"


@dataclass
class FailedExpectation:
    check: str  # the defect, in words: "missing values", "high < low", ...
    expectation: str  # GX expectation type
    columns: list[str]
    unexpected_count: int
    unexpected_percent: float | None
    examples: list[dict[str, Any]] = field(default_factory=list)  # offending rows: ticker, date, value(s)
    observed: Any = None
    severity: Severity = Severity.ERROR
    # per ticker, in the data's order, for the first 20 tickers: {"ticker", "count", "first_date"} (wide panels)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    n_tickers: int | None = None  # how many tickers hold offending rows (wide panels; None when not counted)

    def __str__(self) -> str:
        rows = "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in self.examples[:5])
        more = f" (+{self.unexpected_count - 5} more)" if self.unexpected_count > 5 else ""
        obs = f" observed {self.observed}" if self.observed is not None else ""
        what = "failed" if self.severity is Severity.ERROR else "flagged"
        where = ""
        if self.n_tickers and (self.n_tickers > 1 or self.unexpected_count > 5):
            names = ", ".join(f"{t['ticker']} {t['count']} from {t['first_date']}" for t in self.tickers[:5])
            where = f" in {self.n_tickers} ticker(s) ({names}{', ...' if self.n_tickers > 5 else ''})"
        return (f"{self.check}: {self.expectation} on {', '.join(self.columns)} {what} "
                f"{self.unexpected_count} row(s){where}{obs}" + (f": {rows}{more}" if rows else ""))


def _where(failed: FailedExpectation) -> str:
    """Where a failed check's rows are, for a one-line summary: the first tickers with their count and
    first date (a panel's), else the first offending row's ticker and date; "" when neither is known."""
    if "against the last stored bar" in failed.check:  # the seam's check names its first row already
        return ""
    if failed.tickers:
        shown = ", ".join(f"{t['ticker']} {t['count']} from {t['first_date']}" for t in failed.tickers[:3])
        more = failed.n_tickers is not None and failed.n_tickers > 3
        return f" ({shown}{f', ... {failed.n_tickers} tickers' if more else ''})"
    if failed.examples and ("ticker" in failed.examples[0] or "date" in failed.examples[0]):
        ex = failed.examples[0]
        return f" (e.g. {' on '.join(str(ex[k]) for k in ('ticker', 'date') if k in ex)})"
    return ""


@dataclass
class ValidationReport:
    """``failures`` are the failed checks of severity ERROR (any one fails the data: ``success`` is
    False); ``warnings`` the failed checks of severity WARNING (rows to review; ``success`` stays
    True). ``checks`` gives the severity of every check that ran."""

    kind: str  # "prices" | "ohlcv"
    success: bool
    n_rows: int
    n_tickers: int
    start: str | None
    end: str | None
    n_expectations: int
    failures: list[FailedExpectation]
    data_docs: str | None
    parameters: dict[str, Any]
    warnings: list[FailedExpectation] = field(default_factory=list)
    checks: dict[str, Severity] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[str]:
        return [f.check for f in self.failures]

    @property
    def warning_checks(self) -> list[str]:
        return [f.check for f in self.warnings]

    def warning_summary(self) -> str | None:
        """One line naming each warning and its row count; None without warnings."""
        if not self.warnings:
            return None
        return "; ".join(f"{f.check}: {f.unexpected_count} row(s)" for f in self.warnings)

    def summary(self) -> str:
        warned = f"; {len(self.warnings)} warning(s) to review: {self.warning_summary()}" if self.warnings else ""
        if self.success:
            if not self.warnings:
                return f"{self.kind} data passed all {self.n_expectations} expectations"
            return f"{self.kind} data passed (no error in {self.n_expectations} expectations){warned}"
        return (f"{self.kind} data failed {len(self.failures)} of {self.n_expectations} expectations: "
                + "; ".join(f.check + _where(f) for f in self.failures) + warned)

    def __str__(self) -> str:
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        head = (f"{self.kind} validation: {'PASSED' if self.success else 'FAILED'}{warned} "
                f"({self.n_rows} rows, {self.n_tickers} tickers, {self.start} to {self.end}, "
                f"{self.n_expectations} expectations)")
        lines = [head] + [f"  - {f}" for f in self.failures]
        lines += [f"  - WARNING ({Severity.WARNING.effect}): {f}" for f in self.warnings]
        if self.data_docs:
            lines.append(f"  Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (severities as "error" / "warning")."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    def raise_if_failed(self) -> ValidationReport:
        """Raise :class:`~qpo.errors.DataValidationError` on any ERROR; warnings never raise."""
        if not self.success:
            raise DataValidationError(self)
        return self

"""What a validation returns: the report and its failed expectations."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from qpo.errors import DataValidationError


@dataclass
class FailedExpectation:
    check: str  # the defect, in words: "missing values", "high < low", ...
    expectation: str  # GX expectation type
    columns: list[str]
    unexpected_count: int
    unexpected_percent: float | None
    examples: list[dict[str, Any]] = field(default_factory=list)  # offending rows: ticker, date, value(s)
    observed: Any = None

    def __str__(self) -> str:
        rows = "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in self.examples[:5])
        more = f" (+{self.unexpected_count - 5} more)" if self.unexpected_count > 5 else ""
        obs = f" observed {self.observed}" if self.observed is not None else ""
        return (f"{self.check}: {self.expectation} on {', '.join(self.columns)} failed for "
                f"{self.unexpected_count} row(s){obs}" + (f": {rows}{more}" if rows else ""))


@dataclass
class ValidationReport:
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

    @property
    def failed_checks(self) -> list[str]:
        return [f.check for f in self.failures]

    def summary(self) -> str:
        if self.success:
            return f"{self.kind} data passed all {self.n_expectations} expectations"
        return (f"{self.kind} data failed {len(self.failures)} of {self.n_expectations} expectations: "
                + "; ".join(self.failed_checks))

    def __str__(self) -> str:
        head = (f"{self.kind} validation: {'PASSED' if self.success else 'FAILED'} "
                f"({self.n_rows} rows, {self.n_tickers} tickers, {self.start} to {self.end}, "
                f"{self.n_expectations} expectations)")
        lines = [head] + [f"  - {f}" for f in self.failures]
        if self.data_docs:
            lines.append(f"  Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    def raise_if_failed(self) -> ValidationReport:
        if not self.success:
            raise DataValidationError(self)
        return self

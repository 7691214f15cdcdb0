"""What a nightly run of :mod:`qpo.operations.nightly` did: :class:`NightlyResult` (its numbers,
warnings, summary and JSON)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: the ``ops_runs.kind`` of the two runs
VALUATION_KIND, RISK_KIND = "valuation", "risk"
#: what a run of an empty book says (its summary and its book report)
EMPTY_BOOK = ("the book is empty: no portfolio to {what} on {day} (add clients with `qpo portfolio create` or a "
              "synthetic book with `qpo db seed --book N`)")


@dataclass
class NightlyResult:
    """What a nightly run did. ``kind`` is ``valuation`` or ``risk``; ``seconds`` the time of each
    phase (``prices``, ``cluster``, ``compute``, ``write``, and for the risk run ``deliver`` and
    ``report``), ``total`` included. A valuation fills ``valued``, ``unpriced``, ``stale`` and
    ``empty``; a risk run ``breaches`` (failed checks), ``breaching`` (portfolios), the alerts
    (``new_alerts``, ``persisting_alerts``, ``resolved_alerts``), ``skipped`` (valued portfolios
    with no risk row, and why), ``checked`` (portfolios whose limits were checked), ``unchecked``
    (every portfolio of the date that holds names but was NOT risk-checked, and why: unpriced by the
    valuation, or skipped; unknown, never a pass), ``stale`` (portfolios checked at a stale price),
    ``delivery`` and ``report`` (the book report's path). Both fill ``stale_tickers`` (``{ticker:
    its last price's date}`` for the names with no bar on the date, carried at that price),
    ``unpriced_stale`` (the same for the held names without a bar for more than ``max_stale_days``
    trading days: not carried, their portfolios unpriced) and ``warnings`` (what an
    operator must know: stale prices, no new market data, no benchmark bar; logged, in the summary
    and the report)."""

    kind: str
    as_of: dt.date
    run_id: int
    portfolios: int
    price_source: str
    workers: int
    dashboard: str | None
    scheduler: str
    chunks: int
    seconds: dict[str, float] = field(default_factory=dict)
    valued: int | None = None
    unpriced: int | None = None
    stale: int | None = None
    empty: int | None = None
    splits_booked: int | None = None  # valuation: split entries written to ledgers before valuing
    breaches: int | None = None
    breaching: int | None = None
    new_alerts: int | None = None
    persisting_alerts: int | None = None
    resolved_alerts: int | None = None
    skipped: dict[int, str] = field(default_factory=dict)
    checked: int | None = None
    unchecked: dict[int, str] = field(default_factory=dict)
    stale_tickers: dict[str, str] = field(default_factory=dict)
    unpriced_stale: dict[str, str] = field(default_factory=dict)
    max_stale_days: int | None = None
    benchmarks: dict[str, int] = field(default_factory=dict)  # risk: portfolios measured against each benchmark
    warnings: list[str] = field(default_factory=list)
    delivery: str | None = None
    report: str | None = None
    alerts: dict[str, list[dict]] = field(default_factory=dict, repr=False)
    table: pd.DataFrame | None = field(default=None, repr=False)
    breach_list: list[dict] = field(default_factory=list, repr=False)

    def metrics(self) -> dict[str, Any]:
        """The numbers of the run, flat (what a pipeline records to MLflow)."""
        out: dict[str, Any] = {"portfolios": self.portfolios, "workers": self.workers, "chunks": self.chunks,
                               "ops_run_id": self.run_id}
        for name in ("valued", "unpriced", "stale", "empty", "splits_booked", "checked", "breaches", "breaching", "new_alerts",
                     "persisting_alerts", "resolved_alerts"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.kind == RISK_KIND:
            out["skipped"] = len(self.skipped)
            out["unchecked"] = len(self.unchecked)
        out["stale_tickers"] = len(self.stale_tickers)
        out["unpriced_stale"] = len(self.unpriced_stale)
        out["warnings"] = len(self.warnings)
        out.update({f"seconds_{k}": round(v, 3) for k, v in self.seconds.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("table", "alerts", "breach_list")}
        d["as_of"] = self.as_of.isoformat()
        d["skipped"] = {str(k): v for k, v in self.skipped.items()}
        d["unchecked"] = {str(k): v for k, v in self.unchecked.items()}
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        d["new_alert_list"] = [_plain(a) for a in self.alerts.get("new", [])]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    def summary(self) -> str:
        """The run in a few lines, for a terminal or a log."""
        t = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        lines = [f"{self.kind} of {self.as_of}: {self.portfolios:,} portfolios on {self.workers} worker(s), "
                 f"{self.chunks} chunk(s); prices from the {self.price_source} panel; ops run {self.run_id}", t]
        if self.portfolios == 0:
            lines.append(EMPTY_BOOK.format(day=self.as_of, what="value" if self.kind == VALUATION_KIND else
                                           "risk-check"))
        if self.kind == VALUATION_KIND:
            lines.append(f"valued {self.valued:,}, unpriced {self.unpriced:,}, with stale prices {self.stale:,}, "
                         f"empty {self.empty:,}")
        else:
            checked = self.checked if self.checked is not None else self.portfolios
            lines.append(f"risk-checked {checked:,}, NOT risk-checked {len(self.unchecked):,} (unknown, not a pass), "
                         f"checked at stale prices {self.stale or 0:,}")
            if self.benchmarks:
                lines.append("beta and market shocks against " + ", ".join(
                    f"{b} ({n:,})" for b, n in self.benchmarks.items()) + " (each portfolio's own benchmark where "
                    "it has prices, else the SP500)")
            lines.append(f"{self.breaches:,} failed check(s) in {self.breaching:,} portfolio(s); alerts: "
                         f"{self.new_alerts} new, {self.persisting_alerts} persisting, {self.resolved_alerts} resolved")
            if self.unchecked:
                shown = "; ".join(f"{pid}: {why}" for pid, why in list(self.unchecked.items())[:3])
                lines.append(f"not risk-checked: {shown}" + (" ..." if len(self.unchecked) > 3 else "")
                             + " (see the report)")
            if self.delivery:
                lines.append(f"delivery: {self.delivery}")
            if self.report:
                lines.append(f"book report {self.report}")
        lines += [f"WARNING: {w}" for w in self.warnings]
        if self.dashboard:
            lines.append(f"Dask dashboard (while it ran) {self.dashboard}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""What a nightly risk run of :mod:`qpo.operations.nightly` leaves for people: its new alerts
delivered (:mod:`qpo.operations.delivery`), and the book report (:mod:`qpo.reporting.book`)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from qpo.operations._nightly_result import EMPTY_BOOK, NightlyResult


def empty_risk_table() -> pd.DataFrame:
    from qpo.store.operations import RISK_COLUMNS

    table = pd.DataFrame({c: pd.Series(dtype=float) for c in RISK_COLUMNS})
    table["compliant"] = pd.Series(dtype=bool)
    table["breaches"] = pd.Series(dtype=int)
    table.index.name = "portfolio_id"
    return table


def deliver(engine, new: list[dict], deliver: bool, log) -> str:
    """Send the new alerts, and any earlier one never delivered (a failed delivery is retried by
    the next run), when e-mail or a webhook is configured; a sentence saying what happened."""
    from qpo.operations.delivery import DeliverySettings, deliver_alerts
    from qpo.store.alerts import undelivered_alerts

    if not deliver:
        return f"{len(new)} new alert(s), not delivered (delivery turned off for this run)"
    settings = DeliverySettings.from_env()
    if not settings.configured:
        text = (f"{len(new)} new alert(s); no delivery is configured, so none was sent (set QPO_SMTP_HOST and "
                "QPO_ALERT_RECIPIENTS for e-mail, or QPO_ALERT_WEBHOOK for a webhook)")
        log(text)
        return text
    pending = undelivered_alerts(engine)
    if not pending:
        return "no alert to deliver"
    report = deliver_alerts(engine, pending, settings)
    channels = sorted({m["channel"] for m in report.sent})
    text = (f"{len(report.delivered)} of {len(pending)} undelivered alert(s) delivered"
            + (f" by {' and '.join(channels)}" if channels else "")
            + (f"; {len(report.errors)} delivery error(s): {'; '.join(report.errors)}" if report.errors else "")
            + (f"; {'; '.join(report.skipped)}" if report.skipped else ""))
    log(text)
    return text


def write_report(engine, result: NightlyResult, valuations: pd.DataFrame, names: dict[int, dict],
                  folder: str | Path, stale: Mapping[int, Mapping[str, str]] | None = None) -> Path:
    from qpo.reporting.book import book_report
    from qpo.store.operations import book_risk_on, previous_risk_date

    prev_day = previous_risk_date(engine, result.as_of)
    previous = book_risk_on(engine, prev_day) if prev_day is not None else None
    frame = pd.DataFrame.from_dict(names, orient="index")
    if "portfolio" in valuations.columns:  # every valued/unpriced portfolio's name, from the valuations
        known = valuations.set_index("portfolio_id")[["portfolio", "advisor_email"]].rename(columns={"portfolio": "name"})
        frame = known.combine_first(frame) if len(frame) else known
    facts: dict[str, object] = {"book": EMPTY_BOOK.format(what="risk-check", day=result.as_of)} \
        if result.portfolios == 0 else {}
    facts |= {"prices": f"the {result.price_source} panel", "ops run": result.run_id,
             "cluster": f"{result.workers} worker(s), {result.chunks} chunk(s) ({result.scheduler})",
             "delivery": result.delivery or ""}
    checked = result.table[result.table["compliant"].notna().to_numpy(dtype=bool)] if result.table is not None \
        and len(result.table) else None
    if checked is not None and len(checked):
        own = [b for b in result.benchmarks if b != "SP500"]
        against = ("the SP500" if not own else "its benchmark: " + ", ".join(
            f"{b} ({n:,} portfolios)" for b, n in result.benchmarks.items()) + " (its own where it has prices, else "
            "the SP500)")
        facts["market shocks"] = (f"-10 % and -20 % on each portfolio's beta to {against}"
                                  if checked["beta"].notna().any() else
                                  "-10 % and -20 % on each portfolio's beta to its own names equal-weighted (no "
                                  "SP500 return on every date of the window: see the warnings)")
    report = book_report(result.as_of, result.table, breaches=result.breach_list, names=frame, alerts=result.alerts,
                         valuations=valuations, previous=previous, previous_as_of=prev_day, facts=facts,
                         unchecked=result.unchecked, warnings=result.warnings, stale=stale)
    return report.write(Path(folder) / f"book-risk-{result.as_of}.html")


"""The dashboard's History tab: what was recorded about a portfolio over time.

* The risk numbers the daily report recorded (:func:`qpo.store.risk_history`), as a table and a
  chart of one metric, and the portfolio's value on every price date since its ledger's first
  entry (shares held that day x close, plus cash).
* The nightly valuations (:func:`qpo.store.operations.valuation_history`): a table and the value.
* The nightly risk numbers the book's 18:00 risk run recorded (:func:`qpo.store.book_history.book_risk_history`):
  volatility, VaRs, CVaR, beta, worst stress loss, compliance and breaches, a table newest first
  and a chart of the loss measures over time.
* Brinson-Fachler attribution (:func:`qpo.risk.brinson_fachler`) by sector over a chosen period,
  against the equal-weighted portfolio of the names the book's prices (the store's market data, else
  the bundled panel) price on every day of it (:mod:`qpo.workbench.tabs._attribution`).
* A portfolio that holds only cash (never any share): its value, and that there is no risk to report yet.
* The audit trail of the portfolio's changes, newest first, one line each.
"""
from __future__ import annotations

import datetime as dt
import html
import json

import numpy as np
import pandas as pd

from qpo.errors import DataError
from qpo.workbench._overview import NO_RISK_YET

#: the periods offered for the attribution (the last is the two date pickers' own)
PERIODS = ("1M", "3M", "YTD", "1Y", "3Y", "Custom")
#: the share kinds of a ledger and their sign
SHARE_SIGN = {"buy": 1.0, "transfer_in": 1.0, "sell": -1.0, "transfer_out": -1.0, "split": 1.0}
#: how many entries of an import the audit line names before "and n more"
AUDIT_ENTRIES_SHOWN = 3
NO_RISK = "no risk numbers recorded yet (the daily report records them)"
NO_VALUATIONS = "no nightly valuation recorded yet (the book's nightly valuation run records them)"
NO_BOOK_RISK = "no nightly risk numbers recorded yet (the book's nightly risk run records them)"
#: the columns of the nightly risk table: (the store's column, its heading, its format)
BOOK_RISK_TABLE = (("volatility", "volatility", "{:.2%}"), ("var_historical", "VaR (historical)", "{:.2%}"),
                   ("cvar_historical", "CVaR (historical)", "{:.2%}"), ("var_parametric", "VaR (normal)", "{:.2%}"),
                   ("beta", "beta", "{:.2f}"), ("max_drawdown", "max drawdown", "{:.2%}"),
                   ("worst_stress", "worst stress loss", "{:.2%}"))
#: the lines of the nightly risk chart: (the store's column, its name)
BOOK_RISK_LINES = (("volatility", "volatility"), ("var_historical", "VaR (historical)"),
                   ("cvar_historical", "CVaR (historical)"), ("worst_stress", "worst stress loss"))
#: the columns of the valuations table: (the store's column, its heading, its format)
VALUATION_TABLE = (("market_value", "market value", "${:,.0f}"), ("cash", "cash", "${:,.0f}"),
                   ("daily_return", "day", "{:+.2%}"), ("mtd_return", "month to date", "{:+.2%}"),
                   ("ytd_return", "year to date", "{:+.2%}"), ("inception_return", "since inception", "{:+.2%}"))


class _CashOnly(DataError):
    """A portfolio of cash only: nothing to attribute (said as a note, not an error)."""


def _error(text: str) -> str:
    return f"<div class='qpo-error' style='color:#c0392b'>{html.escape(text)}</div>"


def ledger_values(transactions: pd.DataFrame, prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Shares held (price dates x tickers), cash and value (shares x close + cash) on each date of
    ``prices`` from the ledger's first entry on, from :func:`qpo.store.list_transactions`' frame.
    A trade dated on a day without prices counts from the next price date."""
    from qpo.errors import DataError

    if transactions.empty:
        raise DataError("the portfolio's ledger is empty: it has no value to show")
    days = pd.to_datetime(transactions["trade_date"])
    first = days.min()
    dates = prices.index[prices.index >= first]
    if dates.empty:
        raise DataError(f"the prices end on {prices.index[-1].date()}, before the ledger's first entry ({first.date()})")
    signed = transactions["kind"].map(SHARE_SIGN).fillna(0.0) * transactions["quantity"].astype(float).fillna(0.0)
    moves = pd.DataFrame({"day": days, "ticker": transactions["ticker"], "q": signed})[signed != 0]
    if moves.empty:
        shares = pd.DataFrame(index=dates, dtype=float)
    else:
        shares = (moves.pivot_table(index="day", columns="ticker", values="q", aggfunc="sum").fillna(0.0).cumsum()
                  .reindex(dates, method="ffill").fillna(0.0))
        shares.columns.name = None
    missing = sorted(set(shares.columns) - set(prices.columns))
    if missing:
        raise DataError(f"the portfolio held {', '.join(missing)}, which the price data lacks: no value can be shown")
    cash = (pd.Series(transactions["cash_after"].to_numpy(), index=days).groupby(level=0).last()
            .reindex(dates, method="ffill").rename("cash"))
    px = prices.loc[dates, list(shares.columns)]
    invested = (shares * px).where(shares != 0, 0.0).sum(axis=1, skipna=False)
    return shares, cash, (invested + cash).rename("value")


def period_start(period: str, end: pd.Timestamp) -> pd.Timestamp:
    """The calendar day a period ending on ``end`` starts from (its first return is the next day's)."""
    from qpo.errors import UnknownOptionError

    offsets = {"1M": pd.DateOffset(months=1), "3M": pd.DateOffset(months=3), "1Y": pd.DateOffset(years=1),
               "3Y": pd.DateOffset(years=3)}
    if period == "YTD":
        return pd.Timestamp(end.year - 1, 12, 31)
    if period not in offsets:
        raise UnknownOptionError("attribution period", period, list(PERIODS[:-1]))
    return end - offsets[period]


def summarize_change(action: str, before, after) -> str:
    """One line a person reads for an audit row's before/after."""
    from qpo.store.ledger import Entry

    before, after = before or {}, after or {}

    def entries(rows) -> str:
        said = [Entry(**{k: r.get(k) for k in ("kind", "trade_date", "ticker", "quantity", "price", "amount")},
                      fees=r.get("fees") or 0.0).describe() for r in rows[:AUDIT_ENTRIES_SHOWN]]
        more = len(rows) - AUDIT_ENTRIES_SHOWN
        return "; ".join(said) + (f"; and {more} more" if more > 0 else "")

    if action == "create":
        opening = after.get("opening") or []
        return (f"created for {after.get('client')}, advisor {after.get('advisor')}, benchmark {after.get('benchmark')}"
                + (f"; opening: {entries(opening)}" if opening else ""))
    if action in ("transaction", "import"):
        rows = after.get("entries") or []
        cash = ""
        if "cash" in before and "cash" in after:
            cash = f" (cash ${before['cash']:,.2f} -> ${after['cash']:,.2f})"
        return f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}: {entries(rows)}{cash}"
    if action == "update":
        changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        parts = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" if not isinstance(after.get(k), dict | list)
                 and not isinstance(before.get(k), dict | list) else f"{k} changed" for k in changed]
        return "updated " + ("; ".join(parts) if parts else "(no field changed)")
    if action == "propose":
        n = len(after.get("trades") or [])
        return f"proposal #{after.get('id')} as of {after.get('as_of')}: {n} trade{'s' * (n != 1)}"
    if action == "accept":
        return f"accepted: {after.get('n_trades')} trade(s) recorded as transactions {after.get('transactions')}"
    if action == "reject":
        return f"rejected: {after.get('reason')}"
    if action == "delete":
        return f"deleted ({before.get('n_transactions')} transactions, cash ${before.get('cash', 0.0):,.2f})"
    text = json.dumps(after or before, default=str, sort_keys=True)
    return text if len(text) <= 200 else text[:199] + "…"


class HistoryTab:
    """Tab 5 of the advisor dashboard. ``show(name)`` reads the portfolio as ``board.actor`` and
    fills the tables and figures (the same figure widgets every time, updated in place). After it:
    ``risk`` (the risk history), ``shares``/``cash``/``values`` (from the ledger, by price date),
    ``attribution`` (by sector, ``Total`` last), ``window`` (its first and last date) and ``audit``
    (the rows shown, newest first). A qpo error is shown as a message, never a traceback."""

    def __init__(self, board) -> None:
        import ipywidgets as widgets

        from qpo.workbench.figure_widgets import figure_widget

        self.board = board
        self.name: str | None = None
        self._quiet = False
        self._clear_data()
        self.message = widgets.HTML()
        self.metric = widgets.Dropdown(description="Metric", options=[], layout=widgets.Layout(width="320px"))
        self.risk_table = widgets.HTML()
        self.value_note = widgets.HTML()
        self.period = widgets.Dropdown(description="Period", options=PERIODS, value="1Y",
                                       layout=widgets.Layout(width="200px"))
        self.start = widgets.DatePicker(description="From")
        self.end = widgets.DatePicker(description="To")
        self.attribution_note = widgets.HTML()
        self.attribution_table = widgets.HTML()
        self.audit_table = widgets.HTML()
        self.valuations_table = widgets.HTML()
        self.risk_fig = figure_widget(layout=dict(height=300, margin=dict(t=40, b=30), title="Recorded risk"))
        self.risk_fig.add_scatter(mode="lines+markers", name="metric")
        self.value_fig = figure_widget(layout=dict(height=320, margin=dict(t=40, b=30), title="Value",
                                                     yaxis=dict(tickprefix="$", tickformat=",.0f")))
        self.value_fig.add_scatter(mode="lines", name="value")
        self.valuations_fig = figure_widget(layout=dict(height=300, margin=dict(t=40, b=30), title="Nightly valuations",
                                                        yaxis=dict(tickprefix="$", tickformat=",.0f")))
        self.valuations_fig.add_scatter(mode="lines+markers", name="market value")
        self.book_risk_table = widgets.HTML()
        self.book_risk_fig = figure_widget(layout=dict(height=320, margin=dict(t=40, b=30), title="Nightly risk",
                                                       yaxis=dict(tickformat=".1%")))
        for _, label in BOOK_RISK_LINES:
            self.book_risk_fig.add_scatter(mode="lines+markers", name=label)
        self.attribution_fig = figure_widget(layout=dict(height=360, margin=dict(t=40, b=30), barmode="group",
                                                           title="Attribution by sector", yaxis=dict(tickformat=".2%")))
        for effect in ("allocation", "selection", "interaction"):
            self.attribution_fig.add_bar(name=effect)
        self.widget = widgets.VBox([
            self.message,
            widgets.HTML("<h4>Recorded risk numbers</h4>"), self.metric, self.risk_fig, self.risk_table,
            widgets.HTML("<h4>Value from the ledger</h4>"), self.value_note, self.value_fig,
            widgets.HTML("<h4>Nightly valuations</h4>"), self.valuations_fig, self.valuations_table,
            widgets.HTML("<h4>Nightly risk numbers</h4>"), self.book_risk_fig, self.book_risk_table,
            widgets.HTML("<h4>Performance attribution by sector</h4>"), self.attribution_note,
            widgets.HBox([self.period, self.start, self.end]), self.attribution_table, self.attribution_fig,
            widgets.HTML("<h4>Audit trail (times in UTC)</h4>"), self.audit_table,
        ])
        self.metric.observe(self._on_metric, names="value")
        self.period.observe(self._on_period, names="value")
        for picker in (self.start, self.end):
            picker.observe(self._on_dates, names="value")

    def _on_metric(self, _change) -> None:
        if not self._quiet:
            self._draw_risk_chart()

    def _on_period(self, change) -> None:
        if not self._quiet:
            self._choose_period(change["new"])

    def _on_dates(self, _change) -> None:
        if not self._quiet:
            self._choose_dates()

    def _clear_data(self) -> None:
        self.risk = pd.DataFrame(columns=["as_of", "metric", "value", "mlflow_run_id"])
        self.shares, self.cash, self.values = pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype=float)
        self.attribution: pd.DataFrame | None = None
        self.window: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self.left_out: list[str] = []  # the names the attribution's benchmark leaves out (no price every day)
        self.audit = pd.DataFrame(columns=["at", "actor", "action", "entity", "change"])
        self.valuations = pd.DataFrame(columns=["as_of", *(c for c, _, _ in VALUATION_TABLE), "status"])
        self.book_risk = pd.DataFrame(columns=["as_of", *(c for c, _, _ in BOOK_RISK_TABLE), "compliant", "breaches"])

    # -- reading ---------------------------------------------------------------------------------
    def show(self, name: str) -> None:
        """Draw portfolio ``name`` as the signed-in person reads it."""
        from sqlalchemy.exc import SQLAlchemyError

        from qpo.errors import QpoError
        from qpo.store import audit_trail, get_portfolio, list_transactions, risk_history, session_scope
        from qpo.store.book_history import book_risk_history
        from qpo.store.operations import valuation_history

        self.name = name
        self.message.value = ""
        try:
            with session_scope(self.board.engine, write=False) as session:
                risk = risk_history(session, self.board.actor, name)
                transactions = list_transactions(session, self.board.actor, name)
                trail = audit_trail(session, self.board.actor, portfolio=name)
                portfolio_id = get_portfolio(session, self.board.actor, name).id
            valuations = valuation_history(self.board.engine, portfolio_id, actor=self.board.actor)
            book_risk = book_risk_history(self.board.engine, portfolio_id, actor=self.board.actor)
        except QpoError as exc:
            return self._fail(str(exc))
        except SQLAlchemyError:  # its text may hold the store's URL: never shown
            return self._fail("the store cannot be read just now; try again, or ask the administrator")
        self._clear_data()
        self._show_values(transactions)
        self._show_risk(risk)
        self._show_valuations(valuations)
        self._show_book_risk(book_risk)
        self._show_audit(trail)
        chosen = self.period.value == "Custom" and self.start.value is not None and self.end.value is not None
        if not chosen:  # a named period is re-dated to the prices' end; dates a person chose stay
            self._quiet = True
            try:
                self._set_pickers(self.period.value if self.period.value != "Custom" else "1Y")
            finally:
                self._quiet = False
        self._draw_attribution()

    def _cash_only(self) -> bool:
        """Whether the ledger shown holds cash and never held a share."""
        return not self.values.empty and not bool((self.shares.abs() > 1e-9).to_numpy().any())

    def _fail(self, text: str) -> None:
        """Show ``text`` in place of everything (nothing of a portfolio the reader may not see stays)."""
        self._clear_data()
        self.message.value = _error(text)
        self._quiet = True
        try:
            self.metric.options = []
        finally:
            self._quiet = False
        for table in (self.risk_table, self.value_note, self.attribution_note, self.attribution_table, self.audit_table,
                      self.valuations_table, self.book_risk_table):
            table.value = ""
        for fig in (self.risk_fig, self.value_fig, self.attribution_fig, self.valuations_fig, self.book_risk_fig):
            with fig.batch_update():
                for trace in fig.data:
                    trace.x, trace.y = [], []
                fig.layout.title.text = ""

    # -- risk numbers and value ------------------------------------------------------------------
    def _show_risk(self, risk: pd.DataFrame) -> None:
        self.risk = risk
        metrics = sorted(risk["metric"].unique()) if len(risk) else []
        self._quiet = True
        try:
            keep = self.metric.value if self.metric.value in metrics else (metrics[0] if metrics else None)
            self.metric.options = metrics
            self.metric.value = keep
        finally:
            self._quiet = False
        if risk.empty:
            self.risk_table.value = (f"<p class='qpo-no-risk'>{html.escape(str(self.name))} {NO_RISK_YET}.</p>"
                                     if self._cash_only() else f"<p class='qpo-empty'>{NO_RISK}</p>")
        else:
            wide = (risk.assign(run=risk["mlflow_run_id"].fillna("(none)"))
                    .pivot_table(index=["as_of", "run"], columns="metric", values="value", aggfunc="last")
                    .sort_index(ascending=False))
            wide.columns.name = None
            self.risk_table.value = wide.to_html(classes="qpo-risk-history", border=0, float_format="{:.6g}".format,
                                                 na_rep="", escape=True)
        self._draw_risk_chart()

    def _draw_risk_chart(self) -> None:
        metric = self.metric.value
        rows = self.risk[self.risk["metric"] == metric].sort_values("as_of") if metric else self.risk.iloc[:0]
        with self.risk_fig.batch_update():
            self.risk_fig.data[0].x = pd.to_datetime(rows["as_of"]).tolist()
            self.risk_fig.data[0].y = rows["value"].astype(float).tolist()
            self.risk_fig.data[0].name = metric or "metric"
            self.risk_fig.layout.title.text = f"{self.name}: {metric}, as recorded" if metric else NO_RISK

    def _show_values(self, transactions: pd.DataFrame) -> None:
        from qpo.errors import QpoError

        try:
            self.shares, self.cash, self.values = ledger_values(transactions, self.board.prices)
        except QpoError as exc:
            self.value_note.value = _error(str(exc))
            with self.value_fig.batch_update():
                self.value_fig.data[0].x, self.value_fig.data[0].y = [], []
                self.value_fig.layout.title.text = ""
            return
        v = self.values
        self.value_note.value = (f"<p>Shares held each day x that day's close, plus cash, from the ledger's first "
                                 f"entry ({v.index[0].date()}): ${v.iloc[0]:,.0f} then, ${v.iloc[-1]:,.0f} on "
                                 f"{v.index[-1].date()} (cash ${self.cash.iloc[-1]:,.0f}).</p>")
        with self.value_fig.batch_update():
            self.value_fig.data[0].x = v.index.tolist()
            self.value_fig.data[0].y = v.to_numpy().tolist()
            self.value_fig.layout.title.text = f"{self.name}: value (holdings at the closes + cash)"

    def _show_valuations(self, valuations: pd.DataFrame) -> None:
        """The nightly valuations (oldest first from the store): the table newest first, the market
        value over time (a night whose holdings could not all be priced has no value: a gap)."""
        self.valuations = valuations
        with self.valuations_fig.batch_update():
            trace = self.valuations_fig.data[0]
            trace.x = pd.to_datetime(valuations["as_of"]).tolist()
            trace.y = [None if pd.isna(v) else float(v) for v in valuations["market_value"]]
            self.valuations_fig.layout.title.text = (f"{self.name}: market value, as valued each night"
                                                     if len(valuations) else NO_VALUATIONS)
        if valuations.empty:
            self.valuations_table.value = f"<p class='qpo-empty'>{NO_VALUATIONS}</p>"
            return
        rows = valuations.iloc[::-1]
        shown = _dated_table(rows, VALUATION_TABLE)
        shown["status"] = rows["status"].astype(str).to_numpy()
        shown["not priced / stale"] = [", ".join([*(u or []), *(st or [])]) for u, st in
                                       zip(rows["unpriced"], rows["stale"], strict=True)]
        self.valuations_table.value = shown.to_html(index=False, classes="qpo-valuations", border=0, escape=True)

    def _show_book_risk(self, rows: pd.DataFrame) -> None:
        """The nightly risk rows (oldest first from the store): the loss measures over time (a number
        the run could not compute is a gap), the table newest first with compliance and breaches."""
        self.book_risk = rows
        with self.book_risk_fig.batch_update():
            days = pd.to_datetime(rows["as_of"]).tolist()
            for trace, (column, _) in zip(self.book_risk_fig.data, BOOK_RISK_LINES, strict=True):
                trace.x = days
                trace.y = [None if pd.isna(v) else float(v) for v in rows[column]]
            self.book_risk_fig.layout.title.text = (f"{self.name}: risk, as measured each night"
                                                    if len(rows) else NO_BOOK_RISK)
        if rows.empty:
            self.book_risk_table.value = f"<p class='qpo-empty'>{NO_BOOK_RISK}</p>"
            return
        newest = rows.iloc[::-1]
        shown = _dated_table(newest, BOOK_RISK_TABLE)
        shown["compliant"] = ["not checked" if c is None else ("yes" if c else "no") for c in newest["compliant"]]
        shown["breaches"] = [int(b) for b in newest["breaches"]]
        self.book_risk_table.value = shown.to_html(index=False, classes="qpo-book-risk", border=0, escape=True)

    # -- attribution -----------------------------------------------------------------------------
    def _set_pickers(self, period: str) -> None:
        end = self.board.prices.index[-1]
        self.end.value = end.date()
        self.start.value = period_start(period, end).date()

    def _choose_period(self, period: str) -> None:
        if period == "Custom":
            return  # the pickers keep their dates; the person edits them
        self._quiet = True
        try:
            self._set_pickers(period)
        finally:
            self._quiet = False
        self._draw_attribution()

    def _choose_dates(self) -> None:
        self._quiet = True
        try:
            self.period.value = "Custom"
        finally:
            self._quiet = False
        self._draw_attribution()

    def _draw_attribution(self) -> None:
        from qpo.errors import QpoError
        from qpo.workbench.tabs._attribution import benchmark_note

        self.attribution, self.window = None, None
        if self.message.value:  # the portfolio could not be read: its message stands alone
            return
        try:
            if self._cash_only():
                raise _CashOnly(f"{self.name} {NO_RISK_YET}.")
            table = self._attribute(self.start.value, self.end.value)
        except QpoError as exc:
            self.attribution_note.value = (f"<p class='qpo-no-risk'>{html.escape(str(exc))}</p>"
                                           if isinstance(exc, _CashOnly) else _error(str(exc)))
            self.attribution_table.value = ""
            with self.attribution_fig.batch_update():
                for trace in self.attribution_fig.data:
                    trace.x, trace.y = [], []
                self.attribution_fig.layout.title.text = ""
            return
        assert self.window is not None
        first, last = self.window
        total = table.loc["Total"]
        note = benchmark_note(self.board.prices.shape[1] - len(self.left_out), self.left_out,
                              getattr(self.board, "prices_origin", None))
        note += (f"<p>From the close of {first.date()} to {last.date()}: portfolio {total['portfolio_return']:+.2%}, "
                 f"benchmark {total['benchmark_return']:+.2%}, active {total['total']:+.2%}.")
        asked = self.start.value
        if asked is not None and first > pd.Timestamp(asked) and first == self.values.index[0]:
            note += f" The period asked starts on {asked}, before the ledger's first entry: it starts on {first.date()}."
        held = self.values.loc[last] / self.values.loc[first] - 1
        note += (f" The ledger's own value changed {held:+.2%} (as held, trades and cash flows included, "
                 "not rebalanced).")
        days = self.board.prices.index
        index = (self.board.benchmark if self.board.benchmark is not None else pd.Series(dtype=float)).reindex(
            days[(days > first) & (days <= last)])
        if index.notna().all():
            note += f" For reference, the S&amp;P 500 index returned {float(np.prod(1 + index) - 1):+.2%}."
        self.attribution_note.value = f"<p>{note}</p>"
        pct = ["portfolio_weight", "benchmark_weight", "portfolio_return", "benchmark_return", "allocation",
               "selection", "interaction", "total"]
        self.attribution_table.value = table.to_html(classes="qpo-attribution", border=0,
                                                     formatters={c: "{:.2%}".format for c in pct})
        sectors = table.drop("Total")
        with self.attribution_fig.batch_update():
            for trace in self.attribution_fig.data:
                trace.x = sectors.index.tolist()
                trace.y = sectors[trace.name].tolist()
            self.attribution_fig.layout.title.text = (
                f"{self.name}: active {total['total']:+.2%} = allocation {total['allocation']:+.2%} + selection "
                f"{total['selection']:+.2%} + interaction {total['interaction']:+.2%}")

    def _attribute(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        """Brinson-Fachler from ``start`` to ``end`` (:func:`qpo.workbench.tabs._attribution.attribute`)."""
        from qpo.workbench.tabs._attribution import attribute

        table, self.window, self.left_out = attribute(self.board.prices, self.shares, self.values, self.board.sectors,
                                                      start, end)
        self.attribution = table
        return table

    # -- audit -----------------------------------------------------------------------------------
    def _show_audit(self, trail: pd.DataFrame) -> None:
        rows = trail.sort_values("id", ascending=False)
        self.audit = pd.DataFrame({
            "at": pd.to_datetime(rows["at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "actor": rows["actor"], "action": rows["action"],
            "entity": [f"{e} {i}" if i is not None else e for e, i in zip(rows["entity"], rows["entity_id"], strict=True)],
            "change": [summarize_change(a, b, c) for a, b, c in zip(rows["action"], rows["before"], rows["after"],
                                                                     strict=True)],
        })
        if self.audit.empty:
            self.audit_table.value = "<p class='qpo-empty'>no change recorded</p>"
        else:
            self.audit_table.value = self.audit.to_html(index=False, classes="qpo-audit", border=0, escape=True)


def _dated_table(rows: pd.DataFrame, spec) -> pd.DataFrame:
    """Each stored row's "as of" date and its ``spec`` (column, heading, format) cells; missing: empty."""
    shown = pd.DataFrame({"as of": pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d").to_numpy()})
    for column, heading, fmt in spec:
        shown[heading] = [("" if pd.isna(v) else fmt.format(v)) for v in rows[column]]
    return shown

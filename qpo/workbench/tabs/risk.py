"""The dashboard's Risk tab: a portfolio's risk as of a chosen date, against its own limits.

VaR and CVaR by every method at the chosen confidence and horizon, the contributions to volatility
and CVaR by asset and by sector, the stress table (historical windows replayed on today's weights,
market and sector shocks) and the drawdown, all from :func:`qpo.risk_report` on the ledger's
holdings of that date (weights of the whole value, cash included) over the board's lookback.
"""
from __future__ import annotations

import html
from typing import Any

import pandas as pd

from qpo.workbench._overview import failure_text

CONFIDENCES = (("95%", 0.95), ("99%", 0.99), ("97.5%", 0.975))
HORIZONS = (("1 day", 1), ("5 days", 5), ("10 days", 10))
#: Monte Carlo scenarios of the tab's VaR (a page answers in well under a second)
N_SCENARIOS = 20_000


def _error(text: str) -> str:
    return f"<div class='qpo-error' style='color:#c0392b'>{html.escape(text)}</div>"


def _pct(x) -> str:
    return "" if x is None or pd.isna(x) else f"{100 * float(x):.2f}%"


def _table(frame: pd.DataFrame, css: str, percent: tuple[str, ...] = (), index: bool = True) -> str:
    formatters = {c: _pct for c in percent if c in frame.columns}
    return frame.to_html(classes=css, border=0, index=index, escape=True, formatters=formatters, na_rep="")


class RiskTab:
    """Tab 2 of the advisor dashboard (see the module). ``show(name)`` draws portfolio ``name`` as of
    the date picked (default: the prices' last date); ``report`` keeps the last risk report."""

    def __init__(self, board) -> None:
        import ipywidgets as widgets

        from qpo.workbench.figure_widgets import figure_widget

        self.board = board
        last = board.prices.index[-1].date()
        self.as_of = widgets.DatePicker(description="As of", value=last)
        self.confidence = widgets.Dropdown(options=CONFIDENCES, value=0.95, description="Confidence")
        self.horizon = widgets.Dropdown(options=HORIZONS, value=1, description="Horizon")
        self.message = widgets.HTML()
        self.var = widgets.HTML()
        self.contributions = widgets.HTML()
        self.stress = widgets.HTML()
        self.drawdown_fig = figure_widget(layout=dict(template="plotly_white", height=300, title="Drawdown",
                                                        yaxis=dict(tickformat=".0%"),
                                                        margin=dict(l=50, r=20, t=50, b=40)))
        self.drawdown_fig.add_scatter(x=[], y=[], mode="lines", fill="tozeroy", name="drawdown",
                                      line=dict(color="#c0392b"))
        self.report: Any = None
        self.name: str | None = None
        controls = widgets.HBox([self.as_of, self.confidence, self.horizon])
        self.widget = widgets.VBox([controls, self.message, widgets.HBox([self.var, self.contributions],
                                                                          layout=widgets.Layout(gap="40px")),
                                    self.stress, self.drawdown_fig])
        for w in (self.as_of, self.confidence, self.horizon):
            w.observe(lambda change: self.name and self.show(self.name), names="value")

    def _clear(self, message: str, note: bool = False) -> None:
        """Nothing drawn; ``message`` said in red (``note``: in plain words, not an error)."""
        self.message.value = f"<p class='qpo-no-risk'>{html.escape(message)}</p>" if note else _error(message)
        self.var.value = self.contributions.value = self.stress.value = ""
        with self.drawdown_fig.batch_update():
            self.drawdown_fig.data[0].x, self.drawdown_fig.data[0].y = [], []
            self.drawdown_fig.layout.title.text = "Drawdown"  # not the last portfolio's maximum
        self.report = None

    def show(self, name: str) -> None:
        from qpo.data import prices_to_returns
        from qpo.errors import QpoError
        from qpo.reporting.daily import ledger_weights, portfolio_strategy
        from qpo.risk import drawdown_series, portfolio_returns, risk_report
        from qpo.store import get_portfolio, session_scope
        from qpo.workbench._overview import NO_RISK_YET, holds_only_cash

        self.name = name
        prices = self.board.prices
        day = pd.Timestamp(self.as_of.value) if self.as_of.value is not None else prices.index[-1]
        if day < prices.index[0] or day > prices.index[-1]:
            self._clear(f"pick a date between {prices.index[0].date()} and {prices.index[-1].date()}")
            return
        try:
            with session_scope(self.board.engine, write=False) as session:
                limits = portfolio_strategy(get_portfolio(session, self.board.actor, name)).limits
                cash = holds_only_cash(session, self.board.actor, name, day)
                if cash is not None:
                    return self._clear(f"{name} {NO_RISK_YET} (cash ${cash:,.2f} on {day.date()}).", note=True)
                weights, _cash = ledger_weights(session, self.board.actor, name, prices, day)
            lookback = int(getattr(self.board, "lookback_days", 756))
            px = prices.loc[:day, list(weights.index)]
            returns = prices_to_returns(px).iloc[-lookback:]
            # the index over the whole history: the board's last lookback window covers only the last date's
            bench = getattr(self.board, "benchmark_history", None)
            bench = getattr(self.board, "benchmark", None) if bench is None else bench
            bench = bench.reindex(returns.index) if bench is not None else None
            report = risk_report(weights, returns, benchmark=bench if bench is not None and bench.notna().all() else None,
                                 confidence=float(self.confidence.value), horizon=int(self.horizon.value),
                                 sectors=self.board.sectors, history=prices_to_returns(px, dropna="all"), limits=limits,
                                 n_scenarios=N_SCENARIOS)
        except QpoError as exc:
            self._clear(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a driver's text may hold the store's URL: named by its kind only
            self._clear(failure_text(exc, f"the risk of {name} could not be computed"))
            return
        self.report = report
        assert report.var_table is not None and report.contributions is not None  # a weighted report has them
        assert report.sector_contributions is not None
        conf = dict((v, k) for k, v in CONFIDENCES)[float(self.confidence.value)]
        hz = dict((v, k) for k, v in HORIZONS)[int(self.horizon.value)]
        self.message.value = (f"<p>{html.escape(name)}, holdings of {day.date()}, returns {returns.index[0].date()} to "
                              f"{returns.index[-1].date()}; VaR and CVaR at {conf}, {hz}, as a loss of the whole "
                              "value (cash included).</p>")
        var = report.var_table.rename(index=lambda m: m.replace("_", " "))
        self.var.value = "<h4>VaR and CVaR by method</h4>" + _table(var, "qpo-var", ("var", "cvar"))
        top = report.contributions.sort_values("vol_share", ascending=False)[["weight", "vol_share", "cvar_share"]]
        sectors = report.sector_contributions[["weight", "vol_share", "cvar_share"]].sort_values("vol_share",
                                                                                               ascending=False)
        share = ("weight", "vol_share", "cvar_share")
        self.contributions.value = ("<h4>Contributions by asset</h4>" + _table(top, "qpo-contrib", share)
                                    + "<h4>By sector</h4>" + _table(sectors, "qpo-sector-contrib", share))
        stress = report.stress[["scenario", "kind", "portfolio_return", "loss", "coverage", "note"]].copy() \
            if report.stress is not None else pd.DataFrame()
        self.stress.value = "<h4>Stress tests</h4>" + _table(stress, "qpo-stress", ("portfolio_return", "loss",
                                                                                     "coverage"), index=False)
        dd = drawdown_series(portfolio_returns(weights, returns))
        with self.drawdown_fig.batch_update():
            self.drawdown_fig.data[0].x = list(dd.index)
            self.drawdown_fig.data[0].y = dd.to_numpy()
            self.drawdown_fig.layout.title.text = f"{name}: drawdown (max {_pct(-dd.min())})"

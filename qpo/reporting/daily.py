"""The daily risk report of one client portfolio: what the pipeline notebook shows.

The portfolio is read from the store: its holdings from its ledger as of the report's date, its
compliance limits from its stored strategy (``Strategy.from_json(portfolio.strategy).limits``, the
default strategy's when none is stored), unless the caller overrides them. The report is an
operations job: it reads as the system actor ``system:daily-report`` unless given another actor.

The report is annualized at the prices' own frequency (:func:`qpo.data.infer_frequency`: 252 for
business days, 365 for prices on every calendar day, 52 weekly, 12 monthly) unless
``periods_per_year`` is given; its lookback and VaR horizon count periods of the prices (trading
days for daily prices)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpo.errors import DataError
from qpo.reporting._data_warnings import ROWS_SHOWN, DataWarnings, data_warnings, run_validation
from qpo.reporting._forecast_section import FORECASTER_NAME, ForecastSection, forecast_section
from qpo.reporting._what_if import NOT_RECORDED, WhatIf, what_if_overrides, what_if_proposal

if TYPE_CHECKING:
    from qpo.book.strategy import Strategy
    from qpo.risk import Limits, RiskReport

#: the what-if's column, series and bars in the report
WHAT_IF_LABEL = "what-if rebalance"


@dataclass
class DailyReport:
    portfolio: str
    as_of: pd.Timestamp
    weights: pd.Series
    asset_returns: pd.DataFrame
    returns: pd.Series
    benchmark_returns: pd.Series | None
    risk: RiskReport
    benchmark_risk: RiskReport | None
    what_if: WhatIf  # the dry-run rebalance proposal of the portfolio's own strategy (never stored)
    what_if_risk: RiskReport | None  # the weights after its trades, over the report's window (None: no column)
    limits: Limits | None = None  # the limits checked (the portfolio's own unless overridden)
    limits_source: str = ""  # where they came from, in words
    cash: float = 0.0  # the ledger's cash as of the report's date (not in the weights)
    what_if_returns: pd.DataFrame | None = None  # the report's window of the names held after the what-if
    data_warnings: DataWarnings | None = None  # the prices' validation warnings (None: no validation given)

    @property
    def breaches(self) -> list[str]:
        return self.risk.breaches

    def status_html(self) -> str:
        """The banner the report opens with: every compliance breach in red, or a green line."""
        import html

        r = self.risk
        if r.compliance is None:
            return "<p>No limits were given: compliance not checked.</p>"
        n = len(r.compliance)
        source = (f'<p class="qpo-limits">Limits: {html.escape(self.limits_source)}: '
                  f"{html.escape(describe_limits(self.limits))}.</p>" if self.limits_source else "")
        if self.breaches:
            items = "".join(f"<li>{html.escape(b)}</li>" for b in self.breaches)
            return (f'<div class="qpo-breach" style="background:#fdecea;border:2px solid #c0392b;padding:8px 12px">'
                    f"<b>COMPLIANCE BREACH: {len(self.breaches)} of {n} checks failed for "
                    f"{html.escape(self.portfolio)} on {self.as_of.date()}</b><ul>{items}</ul></div>{source}")
        if r.unchecked:  # a check that could not be made is neither a pass nor a breach: said
            items = "".join(f"<li>{html.escape(u)}</li>" for u in r.unchecked)
            return (f'<div class="qpo-compliant" style="background:#fef9e7;border:2px solid #b7950b;padding:8px 12px">'
                    f"<b>{n - len(r.unchecked)} of {n} checks pass for {html.escape(self.portfolio)} on "
                    f"{self.as_of.date()}; not checked:</b><ul>{items}</ul></div>{source}")
        return (f'<div class="qpo-compliant" style="background:#eafaf1;border:2px solid #27ae60;padding:8px 12px">'
                f"<b>Compliant: all {n} checks pass for {html.escape(self.portfolio)} on {self.as_of.date()}</b></div>"
                f"{source}")

    def metrics(self) -> dict[str, float]:
        m = dict(self.risk.metrics())
        if self.what_if_risk is not None:
            m.update({f"what_if_{k}": v for k, v in self.what_if_risk.metrics().items()})
        m.update({k: v for k, v in self.what_if.metrics().items() if isinstance(v, (int, float))})
        if self.data_warnings is not None:
            m["data_warning_rows"] = self.data_warnings.total
        if self.benchmark_risk is not None:
            m.update({f"benchmark_{k}": v for k, v in self.benchmark_risk.metrics().items()})
        return m

    def risk_table(self) -> pd.DataFrame:
        """The summary numbers side by side: the portfolio, the what-if rebalance (the weights after
        its trades, over the report's window; no column when there is no what-if) and the benchmark.
        Statistics against the benchmark are computed for the portfolio and the what-if; the
        benchmark's own row against itself is left empty (NaN) by definition."""
        cols = {"portfolio": self.risk.to_frame()["value"]}
        if self.what_if_risk is not None:
            cols[WHAT_IF_LABEL] = self.what_if_risk.to_frame()["value"]
        if self.benchmark_risk is not None:
            cols["S&P 500"] = self.benchmark_risk.to_frame()["value"]
        return pd.DataFrame(cols).reindex(cols["portfolio"].index)

    def styled_risk_table(self):
        """:meth:`risk_table` formatted for a reader (percentages, whole-number durations, empty
        cells where a number is undefined), with a note saying why cells are empty."""
        from qpo.reporting.risk import style_summary

        table = self.risk_table()
        note = None
        if self.benchmark_risk is not None:
            note = ("Statistics 'vs benchmark' compare each column with the S&P 500; the S&P 500 against "
                    "itself is left empty.")
        return style_summary(table, caption=note)

    def figures(self) -> dict:
        from qpo.reporting.figures import drawdown_figure, wealth_figure, weights_figure
        from qpo.reporting.risk import risk_figures
        from qpo.risk import drawdown_series, period_name, portfolio_returns

        unit = period_name(self.risk.periods_per_year)
        series = {self.portfolio: self.returns}
        after = self.what_if.weights
        if after is not None and self.what_if_returns is not None:
            series[WHAT_IF_LABEL] = portfolio_returns(after, self.what_if_returns)
        if self.benchmark_returns is not None:
            series["S&P 500"] = self.benchmark_returns
        risk = risk_figures(self.risk)
        return {
            "wealth": wealth_figure(series, f"Growth of $1 over {len(self.returns)} {unit}s to {self.as_of.date()}"),
            "drawdown": drawdown_figure(drawdown_series(self.returns), f"{self.portfolio}: drawdown"),
            "weights": weights_figure({"current": self.weights, **({WHAT_IF_LABEL: after} if after is not None else {})},
                                      "Current weights and the what-if rebalance (after its trades)"),
            **{k: risk[k] for k in ("distribution", "contributions", "sectors", "stress") if k in risk},
        }

    def styled_table(self, name: str):
        """One of the risk report's tables (``var``, ``contributions``, ``sectors``, ``stress``,
        ``compliance``, ...) formatted, its rows named (scenarios, checks), not numbered."""
        from qpo.reporting.risk import style_table

        tables = self.risk.tables()
        if name not in tables:
            raise DataError(f"the report has no {name!r} table; it has {sorted(tables)}")
        return style_table(name, tables[name])

    def forecast_section(self, prices: pd.DataFrame, *, model_name: str = FORECASTER_NAME,
                         tracking_uri: str | None = None) -> ForecastSection:
        """The champion forecaster's forecasts of the held names at the report's date, next to their
        historical mean over the report's lookback, annualized at the report's periods a year
        (:func:`forecast_section`)."""
        from qpo.risk import frequency_of

        ppy = self.risk.periods_per_year if self.risk is not None else frequency_of(self.asset_returns).periods_per_year
        return forecast_section(self.weights, prices, self.as_of, self.asset_returns.mean() * ppy,
                                model_name=model_name, tracking_uri=tracking_uri, periods_per_year=ppy)


#: the actor the daily report reads and writes as (an operations job, not a person)
REPORT_ACTOR_PURPOSE = "daily-report"


def portfolio_strategy(portfolio) -> Strategy:
    """The strategy stored with a :class:`~qpo.store.ClientPortfolio` (its JSON read by
    :meth:`Strategy.from_json`), or :meth:`Strategy.default` when it stores none."""
    from qpo.book.strategy import Strategy

    # stored strategies were checked whole when stored: read back without building a sample problem
    return Strategy.default() if portfolio.strategy is None else Strategy.from_json(portfolio.strategy,
                                                                                      check_builds=False)


def resolve_limits(own: Limits | None, limits=None) -> tuple[Limits | None, str]:
    """The limits a report checks, and where they came from in words: ``own`` (the portfolio's,
    from its strategy) when ``limits`` is None; ``limits`` itself when it is a
    :class:`~qpo.risk.Limits`; ``own`` with the fields of a dict ``limits`` replaced (its None values
    keep the portfolio's own: a notebook parameter left at None)."""
    from dataclasses import replace

    from qpo.errors import InvalidValueError
    from qpo.risk import Limits

    if limits is None:
        return own, "the portfolio's own (its stored strategy)"
    if isinstance(limits, Limits):
        return limits, "given for this report"
    if not isinstance(limits, dict):
        raise InvalidValueError(f"limits must be a qpo.Limits, a dict of the Limits fields to override or None (the "
                                f"portfolio's own), got {type(limits).__name__}")
    given = {k: v for k, v in limits.items() if v is not None}
    Limits.coerce(given)  # unknown fields and bad values: the Limits' own errors
    if not given:
        return own, "the portfolio's own (its stored strategy)"
    merged = replace(own if own is not None else Limits(), **given)
    return merged, f"the portfolio's own, with {', '.join(sorted(given))} given for this report"


def describe_limits(limits: Limits | None) -> str:
    """The limits in words: "largest name 30%, any sector 40%, at least 5 names, historical VaR 3.00%"."""
    if limits is None:
        return "none"
    parts = []
    if limits.max_weight is not None:
        parts.append(f"largest name {limits.max_weight:.0%}")
    if isinstance(limits.sector_max, dict):
        parts.append("sectors " + ", ".join(f"{s} {v:.0%}" for s, v in limits.sector_max.items()))
    elif limits.sector_max is not None:
        parts.append(f"any sector {limits.sector_max:.0%}")
    if limits.min_names is not None:
        parts.append(f"at least {limits.min_names} names")
    if limits.var_limit is not None:
        parts.append(f"{limits.var_method} VaR {limits.var_limit:.2%}")
    return ", ".join(parts) or "none set"


def report_actor(actor=None):
    """The actor of a report: ``actor`` when given (an Actor or a user's e-mail), else the system
    actor ``system:daily-report``."""
    from qpo.store import Actor

    return Actor.system(REPORT_ACTOR_PURPOSE) if actor is None else actor


def daily_report(portfolio: str, prices: pd.DataFrame, *, as_of=None, lookback_days: int = 756,
                 confidence: float = 0.95, risk_free_rate: float = 0.0, max_weight: float | None = None,
                 benchmark: pd.Series | None = None, engine=None, horizon: int = 1, limits=None,
                 sectors: dict[str, str] | None = None, n_scenarios: int = 100_000,
                 periods_per_year: int | None = None, actor=None, validation=None) -> DailyReport:
    """The full risk report (:func:`qpo.risk_report`) of ``portfolio`` (from the store) over the
    ``lookback_days`` returns up to ``as_of``: against the benchmark (its level series, when given
    and priced on every date of the window), with the historical stress windows replayed over the
    whole price history up to ``as_of``, and the compliance checks of the portfolio's limits; next
    to a **what-if rebalance**: the proposal the portfolio's own stored strategy makes on ``as_of``
    (:func:`qpo.book.propose_rebalance` with ``save=False``: its current weights, turnover cap and
    costs included, whole-share trades), never stored (see :mod:`qpo.reporting._what_if`).
    ``max_weight`` (None: the strategy's own) overrides the strategy's per-name cap for the what-if
    only. The risk table's what-if column is the weights after its trades over the report's window;
    a what-if that cannot be built leaves the column out and says why (:attr:`DailyReport.what_if`).

    ``validation`` (a :class:`~qpo.validation.ValidationReport` of the prices, or its JSON, e.g. the
    pipeline's ``validation.json``) gives the report's "Data warnings" (:attr:`DailyReport.data_warnings`,
    at most 20 rows, the held names first); None leaves them out.

    The holdings are the portfolio's ledger up to ``as_of`` (shares held that day, valued at that
    day's prices; cash is reported apart, not weighted): a date before its first holding is refused.
    The limits are the portfolio's own (its stored strategy's ``limits``); ``limits`` overrides them:
    a :class:`~qpo.risk.Limits` replaces them, a dict replaces only the fields it gives (None values
    keep the portfolio's own). ``actor`` (default: the system actor ``system:daily-report``) must
    be allowed to read the portfolio.

    ``lookback_days`` and ``horizon`` count periods of the prices (trading days for daily prices,
    months for monthly ones). ``periods_per_year`` None (default) reads the frequency from the
    prices' dates (irregular dates are a :class:`~qpo.errors.DataError`); the risk report's notes
    say which it used. ``as_of`` must lie within the prices' dates."""
    from qpo.data import check_as_of, infer_frequency
    from qpo.data.returns import prices_to_returns
    from qpo.risk import period_name, portfolio_returns, risk_report
    from qpo.store import connect, get_portfolio, session_scope

    if isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, np.integer)) or lookback_days < 20:
        raise DataError(f"lookback_days must be a whole number of at least 20 periods (trading days for daily "
                        f"prices), got {lookback_days!r}")
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a DataFrame of prices (dates x tickers), got {type(prices).__name__}")
    given, as_of = as_of, check_as_of(prices.index, as_of)
    upto = prices.index[prices.index <= as_of]
    infer_frequency(upto[-(lookback_days + 1):], periods_per_year)  # the window's irregular dates: refused first
    who = report_actor(actor)
    engine = engine or connect(create=False)
    if sectors is None:  # the book's map: the store's sectors over the bundled ones
        from qpo.store.sectors import book_sectors

        sectors = book_sectors(engine)
    with session_scope(engine, write=False) as session:
        held = get_portfolio(session, who, portfolio)
        strategy = portfolio_strategy(held)
        own = strategy.limits
        if given is None:  # the last date that prices every held name: a day that came in for only some is not it
            as_of = _last_priced_day(session, who, portfolio, prices, as_of)
        weights, cash = ledger_weights(session, who, portfolio, prices, as_of)
    frequency = infer_frequency(prices.index[prices.index <= as_of][-(lookback_days + 1):], periods_per_year)
    unit = period_name(frequency.periods_per_year)
    overrides = what_if_overrides(max_weight)
    strategy = strategy.with_overrides(**overrides) if overrides else strategy  # a bad value: the strategy's error
    checked, source = resolve_limits(own, limits)
    px = prices.loc[:as_of, list(weights.index)]
    if len(px) < lookback_days + 1:
        raise DataError(f"{len(px) - 1} {unit}s of returns up to {as_of.date()} for {portfolio!r}; "
                        f"lookback_days={lookback_days} needs {lookback_days + 1} prices. Lower it.")
    window = px.iloc[-(lookback_days + 1):]
    gaps = window.columns[window.isna().any()].tolist()
    if gaps:
        raise DataError(f"held tickers {gaps} have no price on some of the {lookback_days + 1} dates up to "
                        f"{as_of.date()} (first gap {window[gaps].isna().any(axis=1).idxmax().date()}); "
                        "shorten lookback_days or fill the prices")
    asset_returns = prices_to_returns(window)
    port = portfolio_returns(weights, asset_returns)
    bench_r = None
    if benchmark is not None:
        b = prices_to_returns(benchmark.loc[:as_of].to_frame(), dropna="none").iloc[:, 0].reindex(asset_returns.index)
        if b.notna().all():
            bench_r = b.rename("S&P 500")
    history = prices_to_returns(px, dropna="all")  # NaN before a listing is kept: stress coverage says so
    risk = risk_report(weights, asset_returns, benchmark=bench_r, confidence=confidence,
                       risk_free_rate=risk_free_rate, periods_per_year=frequency, horizon=horizon, sectors=sectors,
                       history=history, limits=checked, n_scenarios=n_scenarios)
    what_if = what_if_proposal(portfolio, prices, as_of, strategy=strategy, actor=who, engine=engine,
                               sectors=sectors, overrides=overrides)
    what_if_risk = what_if_returns = None
    after = what_if.weights
    if after is not None:
        what_if_returns, why = _window_returns(prices, list(after.index), as_of, lookback_days, asset_returns.index)
        if what_if_returns is None:
            what_if.message += f" Its risk column is left out of the risk table: {why}."
        else:
            what_if_risk = risk_report(after, what_if_returns, benchmark=bench_r, confidence=confidence,
                                       risk_free_rate=risk_free_rate, periods_per_year=frequency, stress_scenarios={},
                                       shocks=[], n_scenarios=n_scenarios)
    bench_risk = None
    if bench_r is not None:
        bench_risk = risk_report(None, bench_r, confidence=confidence, risk_free_rate=risk_free_rate,
                                 periods_per_year=frequency, n_scenarios=n_scenarios)
    warnings = None if validation is None else data_warnings(validation, weights.index)
    return DailyReport(portfolio, as_of, weights, asset_returns, port, bench_r, risk, bench_risk, what_if,
                       what_if_risk, limits=checked, limits_source=source, cash=cash, what_if_returns=what_if_returns,
                       data_warnings=warnings)


#: the most dates the report steps back over to the last one that prices every held name (a day whose
#: bars came in for some names only); past that a held name has stopped, and the report says so
ROLLBACK_DATES = 5


def _last_priced_day(session, actor, portfolio: str, prices: pd.DataFrame, day: pd.Timestamp) -> pd.Timestamp:
    """The last date up to ``day`` on which every name ``portfolio`` holds on ``day`` has a price;
    when it is earlier (a day's bars came in for only some names), a :class:`qpo.errors.DataWarning`
    names the day and the held names it lacks."""
    import warnings

    from qpo.errors import DataWarning
    from qpo.store import position

    names = [t for t in position(session, actor, portfolio, day.date()).shares.index if t in prices.columns]
    if not names:
        return day
    full = prices.loc[:day, names].notna().all(axis=1)
    if not full.any() or full.iloc[-1]:
        return day
    last = full.index[full.to_numpy()][-1]
    if int((full.index > last).sum()) > ROLLBACK_DATES:  # not a day still coming in: a name gone; the gap is said
        return day
    lacking = [t for t in names if pd.isna(prices.at[day, t])]
    warnings.warn(DataWarning(
        f"the prices' last date {day.date()} has no price for {len(lacking)} of the {len(names)} names "
        f"{portfolio!r} holds ({', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}): the report is as of "
        f"{last.date()}, the last date that prices them all (give as_of to choose)"), stacklevel=3)
    return last


def _window_returns(prices: pd.DataFrame, names: list[str], as_of: pd.Timestamp, lookback_days: int,
                    dates: pd.Index) -> tuple[pd.DataFrame | None, str]:
    """The returns of ``names`` on the report's window (``dates``), or None and why (a name the
    what-if buys that is not priced over the whole window)."""
    from qpo.data.returns import prices_to_returns

    missing = [t for t in names if t not in prices.columns]
    if missing:
        return None, f"no prices for {missing}"
    window = prices.loc[:as_of, names].iloc[-(lookback_days + 1):]
    gaps = window.columns[window.isna().any()].tolist()
    if gaps:
        return None, f"{gaps} are not priced on every date of the report's window"
    returns = prices_to_returns(window)
    return returns.reindex(dates), ""


def ledger_weights(session, actor, portfolio: str, prices: pd.DataFrame, as_of=None) -> tuple[pd.Series, float]:
    """The portfolio's asset weights from its ledger up to ``as_of`` (default: the prices' last
    date), valued at the last prices on or before it, as fractions of its whole value *cash
    included* (they sum to 1 less the cash's weight: the convention of rebalance proposals, so that
    the report, the dashboard and a proposal give one number for one portfolio), and its cash then.
    A date before the ledger's first holding is a :class:`~qpo.errors.StoreError` naming that first
    date."""
    from qpo.errors import StoreError
    from qpo.store import list_transactions, portfolio_weights, position

    day = pd.Timestamp(as_of) if as_of is not None else prices.index[-1]
    pos = position(session, actor, portfolio, day.date())
    if pos.shares.empty:
        ledger = list_transactions(session, actor, portfolio)
        bought = ledger.loc[ledger["kind"].isin(["buy", "transfer_in"]), "trade_date"]
        if bought.empty:
            raise StoreError(f"portfolio {portfolio!r} holds no shares (its ledger holds only cash): nothing to report")
        raise StoreError(f"portfolio {portfolio!r} held no shares on {day.date()}: its first holding in the ledger "
                         f"is dated {bought.min()}; report as of that date or later")
    invested = portfolio_weights(session, actor, portfolio, prices, day)
    px = prices.loc[:day, invested.index].dropna(how="any").iloc[-1]
    value = float((pos.shares.reindex(invested.index) * px).sum())
    total = value + float(pos.cash)
    return (invested * (value / total)).rename("weight"), float(pos.cash)


__all__ = ["FORECASTER_NAME", "NOT_RECORDED", "REPORT_ACTOR_PURPOSE", "ROWS_SHOWN", "WHAT_IF_LABEL", "DailyReport",
           "DataWarnings", "ForecastSection", "WhatIf", "daily_report", "data_warnings", "describe_limits",
           "forecast_section", "ledger_weights", "portfolio_strategy", "report_actor", "resolve_limits",
           "run_validation"]

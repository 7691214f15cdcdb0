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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpo.errors import DataError

if TYPE_CHECKING:
    from qpo.book.strategy import Strategy
    from qpo.forecasting import Forecast
    from qpo.optimization import OptimizationResult
    from qpo.risk import Limits, RiskReport

#: the registered model whose ``champion`` the report shows (qpo.tracking.MODEL_NAME, without importing it)
FORECASTER_NAME = "qpo-return-forecaster"


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
    what_if: OptimizationResult  # min-variance on the held names
    what_if_risk: RiskReport
    limits: Limits | None = None  # the limits checked (the portfolio's own unless overridden)
    limits_source: str = ""  # where they came from, in words
    cash: float = 0.0  # the ledger's cash as of the report's date (not in the weights)

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
        return (f'<div class="qpo-compliant" style="background:#eafaf1;border:2px solid #27ae60;padding:8px 12px">'
                f"<b>Compliant: all {n} checks pass for {html.escape(self.portfolio)} on {self.as_of.date()}</b></div>"
                f"{source}")

    def metrics(self) -> dict[str, float]:
        m = dict(self.risk.metrics())
        m.update({f"what_if_{k}": v for k, v in self.what_if_risk.metrics().items()})
        if self.benchmark_risk is not None:
            m.update({f"benchmark_{k}": v for k, v in self.benchmark_risk.metrics().items()})
        return m

    def risk_table(self) -> pd.DataFrame:
        """The summary numbers side by side: the portfolio, the what-if rebalance and the benchmark.
        Statistics against the benchmark are computed for the portfolio and the what-if; the
        benchmark's own row against itself is left empty (NaN) by definition."""
        cols = {"portfolio": self.risk.to_frame()["value"],
                "what-if min-variance": self.what_if_risk.to_frame()["value"]}
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
        series["what-if min-variance"] = portfolio_returns(self.what_if.weights, self.asset_returns)
        if self.benchmark_returns is not None:
            series["S&P 500"] = self.benchmark_returns
        risk = risk_figures(self.risk)
        return {
            "wealth": wealth_figure(series, f"Growth of $1 over {len(self.returns)} {unit}s to {self.as_of.date()}"),
            "drawdown": drawdown_figure(drawdown_series(self.returns), f"{self.portfolio}: drawdown"),
            "weights": weights_figure({"current": self.weights, "what-if min-variance": self.what_if.weights},
                                      "Current weights and the min-variance rebalance"),
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
                 confidence: float = 0.95, risk_free_rate: float = 0.0, max_weight: float = 0.25,
                 benchmark: pd.Series | None = None, engine=None, horizon: int = 1, limits=None,
                 sectors: dict[str, str] | None = None, n_scenarios: int = 100_000,
                 periods_per_year: int | None = None, actor=None) -> DailyReport:
    """The full risk report (:func:`qpo.risk_report`) of ``portfolio`` (from the store) over the
    ``lookback_days`` returns up to ``as_of``: against the benchmark (its level series, when given
    and priced on every date of the window), with the historical stress windows replayed over the
    whole price history up to ``as_of``, and the compliance checks of the portfolio's limits; next
    to a what-if long-only min-variance rebalance of the same names (weights <= max_weight).

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
    from qpo.optimization import Constraints, PortfolioProblem, optimize
    from qpo.risk import period_name, portfolio_returns, risk_report
    from qpo.store import connect, get_portfolio, session_scope

    if isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, np.integer)) or lookback_days < 20:
        raise DataError(f"lookback_days must be a whole number of at least 20 periods (trading days for daily "
                        f"prices), got {lookback_days!r}")
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a DataFrame of prices (dates x tickers), got {type(prices).__name__}")
    as_of = check_as_of(prices.index, as_of)
    frequency = infer_frequency(prices.index[prices.index <= as_of], periods_per_year)
    unit = period_name(frequency.periods_per_year)
    who = report_actor(actor)
    with session_scope(engine or connect(create=False)) as session:
        held = get_portfolio(session, who, portfolio)
        own = portfolio_strategy(held).limits
        weights, cash = ledger_weights(session, who, portfolio, prices, as_of)
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
    n = len(weights)
    problem = PortfolioProblem.from_returns(
        asset_returns, constraints=Constraints(max_weight=max(max_weight, 1.0 / n)), risk_free_rate=risk_free_rate,
        periods_per_year=frequency.periods_per_year)
    what_if = optimize(problem, "min_variance")
    what_if_risk = risk_report(what_if.weights, asset_returns, benchmark=bench_r, confidence=confidence,
                               risk_free_rate=risk_free_rate, periods_per_year=frequency, stress_scenarios={}, shocks=[],
                               n_scenarios=n_scenarios)
    bench_risk = None
    if bench_r is not None:
        bench_risk = risk_report(None, bench_r, confidence=confidence, risk_free_rate=risk_free_rate,
                                 periods_per_year=frequency, n_scenarios=n_scenarios)
    return DailyReport(portfolio, as_of, weights, asset_returns, port, bench_r, risk, bench_risk, what_if,
                       what_if_risk, limits=checked, limits_source=source, cash=cash)


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


# -- return forecasts ----------------------------------------------------------------------------
@dataclass
class ForecastSection:
    """What the daily report says about return forecasts: ``status`` is ``forecast`` (a table of
    the champion's forecasts), ``no_champion`` or ``unavailable`` (the champion exists but cannot
    forecast the held names, or could not be read; ``message`` says why)."""

    status: str
    message: str
    model_name: str
    table: pd.DataFrame | None = None  # qpo.reporting.forecast.forecast_comparison
    version: str | None = None
    oos_mean_ic: float | None = None
    baseline_mean_ic: float | None = None
    train_end: pd.Timestamp | None = None
    forecast: Forecast | None = field(default=None, repr=False)

    @property
    def available(self) -> bool:
        return self.status == "forecast"

    def html(self) -> str:
        import html

        css = {"forecast": "qpo-forecast", "no_champion": "qpo-no-forecast"}.get(self.status, "qpo-forecast-unavailable")
        text = f'<p class="{css}">{html.escape(self.message)}</p>'
        if self.table is None:
            return text
        pct = {c: "{:.2%}" for c in self.table.columns if c not in ("weight", "note")}
        styled = self.table.style.format({**pct, "weight": "{:.1%}"} if "weight" in self.table else pct, na_rep="–")
        return text + styled.to_html()

    def metrics(self) -> dict:
        """Flat values to record (numbers go to MLflow): availability, the champion's version and
        IC, and the portfolio's forecast and historical mean (annualized), with each name's."""
        out: dict = {"forecast_available": int(self.available), "forecast_status": self.status}
        if self.version is not None:
            out["champion_version"] = int(self.version)
        if self.oos_mean_ic is not None:
            out["champion_oos_mean_ic"] = self.oos_mean_ic
        if self.table is not None:
            t = self.table
            names = [i for i in t.index if i != "portfolio"]
            h = self.forecast.horizon if self.forecast is not None else None
            if h is not None:
                out["forecast_horizon"] = h
                out["forecast_horizon_returns"] = {n: _finite(t.loc[n, f"forecast {h}d"]) for n in names}
            out["forecast_annual"] = {n: _finite(t.loc[n, "forecast (annualized)"]) for n in names}
            out["historical_mean_annual"] = {n: _finite(t.loc[n, "historical mean (annualized)"]) for n in names}
            if "portfolio" in t.index:
                out["forecast_portfolio_annual"] = float(t.loc["portfolio", "forecast (annualized)"])
                out["historical_mean_portfolio_annual"] = float(t.loc["portfolio", "historical mean (annualized)"])
        return out


def _finite(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _surely_no_champion(tracking_uri: str | None, model_name: str) -> bool:
    """True when the tracking store certainly holds no ``champion`` alias of ``model_name``: a
    SQLite file that does not exist yet, or an SQL store whose alias table has no such row. Checked
    with SQLAlchemy, without importing MLflow (seconds) or creating the file; anything else (another
    kind of store, a table that is not what MLflow 3 writes) is False, and MLflow itself is asked."""
    from pathlib import Path

    import sqlalchemy as sa

    from qpo import config

    uri = tracking_uri or config.tracking_uri()
    try:
        url = sa.engine.make_url(uri)
    except Exception:  # noqa: BLE001 - not a database URL (a file store, a server): MLflow decides
        return False
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return False
        if not Path(url.database).exists():
            return True
    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text("SELECT version FROM registered_model_aliases WHERE name = :name "
                                           "AND alias = 'champion'"), {"name": model_name}).first()
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no such table or columns, no driver: MLflow decides
        return False
    return row is None


def forecast_section(weights: pd.Series, prices: pd.DataFrame, as_of, historical_mean: pd.Series, *,
                     model_name: str = FORECASTER_NAME, tracking_uri: str | None = None,
                     periods_per_year: int | None = None) -> ForecastSection:
    """The registered ``champion`` of ``model_name`` forecasting the held names (``weights``' index)
    from ``prices`` up to ``as_of``, next to ``historical_mean`` (annualized at ``periods_per_year``,
    per name; None: the prices' own, read from their dates). The forecasts are annualized at the
    same periods a year. Never raises: without a champion, or when it cannot forecast these names
    (not trained on them, too little history, a registry or model that cannot be read), the
    section says so and why."""
    try:
        return _forecast_section(weights, prices, as_of, historical_mean, model_name, tracking_uri, periods_per_year)
    except Exception as exc:  # noqa: BLE001 - the report never fails because of the forecaster
        return ForecastSection("unavailable", f"No forecasts are shown: the forecast section failed "
                                              f"({type(exc).__name__}: {exc}).", model_name)


def _forecast_section(weights, prices, as_of, historical_mean, model_name, tracking_uri,
                      periods_per_year=None) -> ForecastSection:
    from qpo.reporting.forecast import forecast_comparison
    from qpo.risk import period_adjective, period_name

    uri = f"models:/{model_name}@champion"
    none = ForecastSection("no_champion", f"No champion return forecaster is registered ({uri}); train one with "
                                          "`qpo pipeline run weekly-retrain`.", model_name)
    if _surely_no_champion(tracking_uri, model_name):
        return none
    try:
        from qpo.tracking import current_champion

        champion = current_champion(model_name, tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001 - the report never fails because of the forecaster
        return ForecastSection("unavailable", f"The model registry could not be read, so no forecasts are shown "
                                              f"({type(exc).__name__}: {exc}).", model_name)
    if champion is None:
        return none
    version = str(champion.version)

    from qpo.tracking import numeric_tag

    ic, base_ic = numeric_tag(champion.tags, "qpo.oos_mean_ic"), numeric_tag(champion.tags, "qpo.baseline_mean_ic")
    try:
        train_end = pd.Timestamp(champion.tags["qpo.train_end"])
    except (KeyError, TypeError, ValueError):
        train_end = None
    kw = dict(model_name=model_name, version=version, oos_mean_ic=ic, baseline_mean_ic=base_ic, train_end=train_end)
    held = list(weights.index)
    as_of = pd.Timestamp(as_of)
    try:
        from qpo.tracking import load_forecaster

        forecaster = load_forecaster(f"models:/{model_name}/{version}", tracking_uri=tracking_uri)
    except Exception as exc:  # noqa: BLE001
        return ForecastSection("unavailable", f"The champion {model_name} version {version} could not be loaded, so "
                                              f"no forecasts are shown ({type(exc).__name__}: {exc}).", **kw)
    try:
        # the rank features compare names on a date: forecast the whole universe the model knows (as it was
        # trained), then keep the held names; names it does not know are an error that names them
        known = set(forecaster.tickers)
        unknown = [t for t in held if str(t) not in known]
        if unknown:
            raise DataError(f"the model was not trained on tickers {unknown}; it knows {sorted(known)}")
        universe = [t for t in prices.columns if str(t) in known]
        forecast = forecaster.predict(prices.loc[:as_of, universe], as_of)
        forecast.values = forecast.values.reindex([t for t in held if t in forecast.values.index])
        forecast.dropped = {t: why for t, why in forecast.dropped.items() if t in held}
    except Exception as exc:  # noqa: BLE001 - DataError: names it was not trained on, too little history
        return ForecastSection("unavailable", f"The champion {model_name} version {version} cannot forecast the held "
                                              f"names on {as_of.date()}: {exc}", **kw)
    ppy = int(periods_per_year) if periods_per_year is not None else forecast.periods_per_year
    table = forecast_comparison(forecast, historical_mean.reindex(held), weights.reindex(held), periods_per_year=ppy)
    ic_text = f"out-of-sample mean rank IC {ic:.4f}" if ic is not None else "no recorded out-of-sample IC"
    if base_ic is not None:
        ic_text += f" against the historical mean's {base_ic:.4f}"
    msg = (f"Return forecasts of the champion {model_name} version {version} ({forecaster.config.model.upper()}, "
           f"{ic_text}): the next {forecast.horizon} {period_name(ppy)}s from {forecast.as_of.date()}, annualized "
           f"(x {ppy}/{forecast.horizon}), next to each name's historical mean over the report's lookback "
           f"({ppy} x the mean {period_adjective(ppy)} return).")
    if train_end is not None:
        if train_end > forecast.as_of:
            msg += (f" Caution: the champion was trained on prices up to {train_end.date()}, after this date; it has "
                    f"seen what followed, so these are in-sample numbers, not forecasts.")
        else:
            msg += f" The champion was trained on prices up to {train_end.date()}."
    if forecast.dropped:
        msg += " No forecast for " + "; ".join(f"{t}: {why}" for t, why in forecast.dropped.items()) + "."
    return ForecastSection("forecast", msg, table=table, forecast=forecast, **kw)

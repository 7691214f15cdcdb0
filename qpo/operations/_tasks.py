"""What the workers of the nightly runs compute (:mod:`qpo.operations.nightly`): one chunk of the
book valued, or its weights and risk; and the risk run's inputs from the price panel."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

#: the system actors of the two runs
VALUATION_ACTOR = "nightly-valuation"
RISK_ACTOR = "nightly-risk"
#: the risk run's settings: those of the daily report (qpo.reporting.daily.daily_report)
LOOKBACK_DAYS = 756
CONFIDENCE = 0.95
HORIZON = 1


def store_engine(url: str):
    """The store on a worker (engines are cached per URL in each process)."""
    from qpo.store import connect

    return connect(url, migrate=False, create=False)


def value_chunk(url: str, as_of: pd.Timestamp, prices: pd.DataFrame, ids: Sequence[int]) -> pd.DataFrame:
    """One task of the valuation: the valuation rows of portfolios ``ids``."""
    from qpo.book.valuation import value_book
    from qpo.store import Actor

    return value_book(store_engine(url), as_of, prices, actor=Actor.system(VALUATION_ACTOR), portfolio_ids=list(ids))


def risk_chunk(url: str, as_of: pd.Timestamp, prices: pd.DataFrame, returns: pd.DataFrame, history: pd.DataFrame,
               benchmark_returns: pd.Series | None, sectors: dict[str, str] | None, ids: Sequence[int]) -> dict[str, Any]:
    """One task of the risk run: the weights of portfolios ``ids`` (:func:`book_weights`) and their
    risk (:func:`compute_risk`), with the portfolios' names and advisors and why any has no row."""
    from qpo.book.valuation import book_weights
    from qpo.store import Actor

    weights, info = book_weights(store_engine(url), as_of, prices, actor=Actor.system(RISK_ACTOR), portfolio_ids=list(ids))
    names = {int(pid): {"name": i.get("name"), "advisor_email": i.get("advisor_email")} for pid, i in info.items()}
    skipped = {int(pid): str(i["skipped"]) for pid, i in info.items() if i.get("skipped")}
    if weights.empty:
        return {"table": None, "details": {}, "breaches": [], "names": names, "skipped": skipped}
    table, details, breaches, more = compute_risk(weights, returns, history, benchmark_returns, sectors,
                                                  [info[int(pid)]["limits"] for pid in weights.index], as_of)
    skipped.update({int(k): v for k, v in more.items()})
    return {"table": table, "details": details, "breaches": breaches, "names": names, "skipped": skipped}


def compute_risk(weights: pd.DataFrame, returns: pd.DataFrame, history: pd.DataFrame,
                 benchmark_returns: pd.Series | None, sectors: dict[str, str] | None, limits: list,
                 as_of: pd.Timestamp) -> tuple[pd.DataFrame, dict, list[dict], dict]:
    """The book risk of ``weights`` as the daily report computes each portfolio's
    (:func:`qpo.risk.book.book_risk` over the window ``returns``, the stress windows over
    ``history``, at :data:`CONFIDENCE` and :data:`HORIZON`). A portfolio it could not compute (a held
    name without a return in the window) keeps NaN numbers and ``compliant`` None (its checks were
    not evaluated, so its alerts stay as they are), and is listed with why."""
    from qpo.risk.book import book_risk

    cols = list(weights.columns)
    result = book_risk(weights, returns[cols], benchmark_returns=benchmark_returns, limits=limits, sectors=sectors,
                       confidence=CONFIDENCE, horizon=HORIZON, as_of=as_of, history=history[cols])
    table = result.table.copy()
    skipped = dict(result.skipped)
    if skipped:
        table["compliant"] = table["compliant"].astype(object)
        table.loc[list(skipped), "compliant"] = None
    return table, result.details, list(result.breaches), skipped


def risk_inputs(prices: pd.DataFrame, benchmark: pd.Series | None, as_of: pd.Timestamp,
                lookback_days: int = LOOKBACK_DAYS) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series | None]:
    """What the daily report computes one portfolio's risk from, for the whole panel: the returns of
    the last ``lookback_days`` periods up to ``as_of``, the returns over the whole history before
    (for the stress windows), and the benchmark's returns on the window's dates (None when it lacks
    one, as the report; :func:`benchmark_warning` says why).

    Each name's prices are carried forward from its last bar (:func:`carried_prices`): a stale name
    (no bar on the date) is risk-checked at its last price, its return 0 on a day without a bar,
    as the valuation holds its last price. Before a name's first price its returns stay NaN (a
    portfolio holding a name listed inside the window is reported as not risk-checked)."""
    from qpo.data.returns import prices_to_returns
    from qpo.errors import DataError

    px = carried_prices(prices, as_of)
    if len(px) < lookback_days + 1:
        raise DataError(f"the prices hold {len(px) - 1} periods of returns up to {as_of.date()}; the risk run needs "
                        f"{lookback_days} (three years of trading days) and {lookback_days + 1} prices")
    returns = prices_to_returns(px.iloc[-(lookback_days + 1):], dropna="none")
    history = prices_to_returns(px, dropna="none")
    bench_r = None
    if benchmark is not None and len(benchmark) > 1:
        b = prices_to_returns(benchmark.loc[:as_of].to_frame(), dropna="none").iloc[:, 0].reindex(returns.index)
        if b.notna().all():
            bench_r = b.rename("S&P 500")
    return returns, history, bench_r


def carried_prices(prices: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The prices up to ``as_of`` with each name's last price carried forward over the dates it has
    no bar (never before its first price): the prices the risk run checks a stale name at."""
    return prices.loc[:as_of].ffill()


def stale_tickers(prices: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, str]:
    """``{ticker: date of its last price}`` for every name priced before ``as_of`` but not on it
    (ISO dates, oldest first): the names the risk run checks at a stale price."""
    px = prices.loc[:as_of]
    if px.empty:
        return {}
    has = px.notna().to_numpy()
    last_pos = len(px.index) - 1 - has[::-1].argmax(axis=0)
    out = {str(t): px.index[k] for t, k, any_ in zip(px.columns, last_pos, has.any(axis=0), strict=True)
           if any_ and px.index[k] < as_of}
    return {t: d.date().isoformat() for t, d in sorted(out.items(), key=lambda kv: (kv[1], kv[0]))}


def benchmark_warning(benchmark: pd.Series | None, returns: pd.DataFrame, as_of: pd.Timestamp,
                      name: str = "SP500") -> str | None:
    """Why the risk run has no benchmark returns on the window of ``returns`` (so no beta, and the
    market shocks on each portfolio's equal-weighted names instead of its beta to the index), or
    None when it has them."""
    day = as_of.date()
    tail = ("beta is NULL for every portfolio and the market shocks (-10 %, -20 %) use each portfolio's beta to its "
            f"own names equal-weighted instead of to the {name}; ingest the index bar and rerun "
            f"`qpo nightly risk --as-of {day}`")
    if benchmark is None or benchmark.dropna().empty:
        return f"beta not computed: no {name} series in the store; {tail}"
    b = benchmark.dropna().loc[:as_of]
    if b.empty:
        return f"beta not computed: the {name} series starts after {day}; {tail}"
    last = b.index[-1]
    if last < as_of:
        return f"beta not computed: no {name} bar on {day}; last benchmark date {last.date()}; {tail}"
    missing = returns.index.difference(b.index)
    if len(missing):
        return (f"beta not computed: the {name} series lacks {len(missing)} date(s) of the risk window (first "
                f"{missing[0].date()}); {tail}")
    return None

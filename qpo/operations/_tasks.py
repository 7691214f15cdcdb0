"""What the workers of the nightly runs compute (:mod:`qpo.operations.nightly`): one chunk of the
book valued, or its weights and risk; and the risk run's inputs from the price panel."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: the system actors of the two runs
VALUATION_ACTOR = "nightly-valuation"
RISK_ACTOR = "nightly-risk"
#: the risk run's settings: those of the daily report (qpo.reporting.daily.daily_report)
LOOKBACK_DAYS = 756
#: the benchmark of a portfolio without one of its own (or whose own has no prices on the window)
DEFAULT_BENCHMARK = "SP500"
#: a held name whose last bar is more than this many trading days old is unpriced, not carried
MAX_STALE_DAYS = 5
CONFIDENCE = 0.95
HORIZON = 1


def store_engine(url: str):
    """The store on a worker (engines are cached per URL in each process)."""
    from qpo.store import connect

    return connect(url, migrate=False, create=False)


def value_chunk(url: str, as_of: pd.Timestamp, prices: pd.DataFrame, adjusted: pd.DataFrame | None,
                carry_until: dict | None, ids: Sequence[int]) -> pd.DataFrame:
    """One task of the valuation: the valuation rows of portfolios ``ids`` (``prices`` the actual
    closes; ``adjusted`` the adjusted ones where they differ, else None; ``carry_until`` the names
    past the staleness cap and their last bars: see ``value_book``)."""
    from qpo.book.valuation import value_book
    from qpo.store import Actor

    return value_book(store_engine(url), as_of, prices, actor=Actor.system(VALUATION_ACTOR), portfolio_ids=list(ids),
                      adjusted=adjusted, carry_until=carry_until)


def measured_against(own: str | None, benchmarks: Mapping[str, pd.Series | None]) -> str:
    """The benchmark a portfolio's beta and market shocks are measured against: its own
    (``own``) when its returns cover the window (a series in ``benchmarks``), else
    :data:`DEFAULT_BENCHMARK`."""
    return own if own and own != DEFAULT_BENCHMARK and benchmarks.get(own) is not None else DEFAULT_BENCHMARK


def risk_chunk(url: str, as_of: pd.Timestamp, prices: pd.DataFrame, returns: pd.DataFrame, history: pd.DataFrame,
               benchmark_returns: pd.Series | Mapping[str, pd.Series | None] | None, sectors: dict[str, str] | None,
               actual: pd.DataFrame | None, ids: Sequence[int]) -> dict[str, Any]:
    """One task of the risk run: the weights of portfolios ``ids`` (:func:`book_weights`) and their
    risk (:func:`compute_risk`), with the portfolios' names and advisors and why any has no row.
    ``benchmark_returns``: the SP500's returns on the window (None: none), or ``{benchmark: its
    returns or None}``: each portfolio is measured against its own benchmark where it has returns
    (:func:`measured_against`), the SP500 otherwise; ``details[pid]["benchmark"]`` says which.
    ``actual``: the actual closes where they differ from ``prices`` (the weights are then the
    valuation's: each position at the closes of its basis; see ``book_weights``), else None."""
    from qpo.book.valuation import book_weights
    from qpo.store import Actor

    benchmarks = dict(benchmark_returns) if isinstance(benchmark_returns, Mapping) else \
        {DEFAULT_BENCHMARK: benchmark_returns}
    weights, info = book_weights(store_engine(url), as_of, prices, actor=Actor.system(RISK_ACTOR), portfolio_ids=list(ids),
                                 actual=actual)
    names = {int(pid): {"name": i.get("name"), "advisor_email": i.get("advisor_email")} for pid, i in info.items()}
    skipped = {int(pid): str(i["skipped"]) for pid, i in info.items() if i.get("skipped")}
    # portfolios whose own benchmark has no returns on the window: measured against the SP500, said
    fallback = {int(pid): str(i["benchmark"]) for pid, i in info.items() if i.get("benchmark")
                and i["benchmark"] != DEFAULT_BENCHMARK and benchmarks.get(i["benchmark"]) is None
                and int(pid) in set(weights.index.astype(int))}
    cash = cash_only_risk({pid: info[pid] for pid, why in skipped.items() if why.startswith("holds no shares")},
                          sectors)
    for pid in cash["details"]:
        skipped.pop(pid, None)  # checked: cash alone
    if weights.empty:
        return {"table": cash["table"], "details": cash["details"], "breaches": cash["breaches"], "names": names,
                "skipped": skipped, "fallback": {}}
    against = pd.Series([measured_against(info[int(pid)].get("benchmark"), benchmarks) for pid in weights.index],
                        index=weights.index)
    tables, details, breaches = [], {}, []
    for name, group in against.groupby(against, sort=True):
        w = weights.loc[group.index]
        bench = benchmarks.get(str(name))
        table, det, br, more = compute_risk(w, returns, history, bench, sectors,
                                            [info[int(pid)]["limits"] for pid in w.index], as_of)
        tables.append(table)
        for pid, d in det.items():
            details[pid] = {**d, "benchmark": str(name) if bench is not None else None}
        breaches += br
        skipped.update({int(k): v for k, v in more.items()})
    if cash["table"] is not None:
        tables.append(cash["table"])
        details.update(cash["details"])
        breaches += cash["breaches"]
    table = pd.concat(tables).sort_index() if len(tables) > 1 else tables[0]
    return {"table": table, "details": details, "breaches": breaches, "names": names, "skipped": skipped,
            "fallback": fallback}


def cash_only_risk(info: Mapping[int, dict], sectors: dict[str, str] | None) -> dict[str, Any]:
    """The risk rows of portfolios that hold only cash on the date: no risk (volatility, VaR, CVaR,
    beta, drawdown and stress losses all 0) and their limits checked on no holdings (a minimum
    number of names breaches; every cap holds), so that their open alerts resolve or persist as
    the checks say instead of staying open for good."""
    from qpo.risk.compliance import ComplianceStatus, check_compliance
    from qpo.store.operations import RISK_COLUMNS

    if not info:
        return {"table": None, "details": {}, "breaches": []}
    rows, details, breaches = {}, {}, []
    for pid, item in info.items():
        limits = item["limits"]  # a strategy always has limits (the house limits by default)
        checks = check_compliance(pd.Series(dtype=float), limits, groups=sectors,
                                  var_values={limits.var_method: 0.0})  # cash has no VaR
        failed = checks[checks["status"] == ComplianceStatus.BREACH]
        for c in failed.to_dict("records"):
            breaches.append({"portfolio_id": int(pid), "check": c["check"], "value": c["value"], "limit": c["limit"],
                             "message": f"{c['check']}: {c['detail']} (the portfolio holds only cash)"})
        rows[int(pid)] = {**{c: 0.0 for c in RISK_COLUMNS}, "compliant": failed.empty, "breaches": len(failed)}
        details[int(pid)] = {"cash_only": True, "cash": item.get("cash"),
                             "compliance": [{k: (str(v) if k == "status" else v) for k, v in c.items()}
                                            for c in checks.to_dict("records")]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "portfolio_id"
    return {"table": table, "details": details, "breaches": breaches}


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


def benchmark_returns(series: pd.Series | None, returns: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series | None:
    """A benchmark's returns on the dates of the risk window ``returns`` (from its levels
    ``series``), as the daily report computes them; None when it lacks one of them."""
    from qpo.data.returns import prices_to_returns

    if series is None or len(series.dropna()) < 2:
        return None
    b = prices_to_returns(series.dropna().loc[:as_of].to_frame(), dropna="none").iloc[:, 0].reindex(returns.index)
    return b if b.notna().all() else None


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


#: the longest stretch of weekdays without a date in the panel taken for exchange holidays (five:
#: China's National Day week, the Lunar New Year, 9/11's four days); a longer one is days the store
#: missed, counted as trading days
HOLIDAY_RUN = 5


def past_stale_cap(prices: pd.DataFrame, as_of: pd.Timestamp, max_stale_days: int) -> dict[str, dict]:
    """The names whose last price is more than ``max_stale_days`` trading days (dates of the panel;
    where the panel misses more than five weekdays in a row, those weekdays too) before ``as_of``:
    ``{ticker: {"last": ISO date of its last bar, "days": trading days since}}``, oldest first.
    They are not carried at a frozen price: the runs treat them as unpriced
    (:func:`without`); a name stale for ``max_stale_days`` days or fewer is carried as before."""
    px = prices.loc[:as_of]
    if px.empty:
        return {}
    dates = px.index
    end = len(dates) - 1 if dates[-1] == as_of else len(dates)  # as_of off the panel: one date more
    out = {}
    for ticker, last in stale_tickers(px, as_of).items():
        behind = max(end - int(dates.get_loc(pd.Timestamp(last))), _weekdays_missed(dates, pd.Timestamp(last), as_of))
        if behind > max_stale_days:
            out[ticker] = {"last": last, "days": behind}
    return out


def _weekdays_missed(dates: pd.DatetimeIndex, last: pd.Timestamp, as_of: pd.Timestamp) -> int:
    """Trading days from ``last`` to ``as_of`` when the panel itself misses some: its dates in
    between, plus the weekdays of every stretch of more than :data:`HOLIDAY_RUN` weekdays the panel
    has no date in (a store that missed days of bars, not an exchange holiday)."""
    weekdays = pd.bdate_range(last + pd.Timedelta(days=1), as_of)
    if len(weekdays) == 0:
        return 0
    seen = weekdays.isin(dates.normalize())
    count, run = int(seen.sum()), 0
    for here in seen:
        if here:
            count += run if run > HOLIDAY_RUN else 0
            run = 0
        else:
            run += 1
    return count + (run if run > HOLIDAY_RUN else 0)


def without(prices: pd.DataFrame, names) -> pd.DataFrame:
    """``prices`` with the columns of ``names`` emptied (NaN): names held there are unpriced."""
    cols = [c for c in prices.columns if c in set(names)]
    if not cols:
        return prices
    out = prices.copy()
    out[cols] = float("nan")
    return out


def stale_cap_warning(capped: dict[str, dict], held: set[str], day: pd.Timestamp, portfolios: int,
                      max_stale_days: int) -> str | None:
    """What an operator is told about the held names past the staleness cap."""
    names = {t: v for t, v in capped.items() if t in held}
    if not names:
        return None
    shown = ", ".join(f"{t} (last bar {v['last']}, {v['days']} trading days before)" for t, v in list(names.items())[:8])
    return (f"no price for more than {max_stale_days} trading days: {len(names)} held name(s) are treated as unpriced "
            f"on {day.date()}, not carried at a frozen price: {shown}{' ...' if len(names) > 8 else ''}; "
            f"{portfolios:,} portfolio(s) holding them are unpriced (not valued, not risk-checked); ingest their "
            "bars or raise --max-stale-days")


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

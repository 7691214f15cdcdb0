"""qpo.risk.book.book_risk: the numbers of qpo.risk_report for every portfolio of a book, in bulk.

The reference for each portfolio is the call the daily report makes (qpo/reporting/daily.py): the
held names' returns over the window, the benchmark's returns, the history of the held names with
the dates on which none has a return dropped, the portfolio's own limits.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.data.returns import prices_to_returns
from qpo.errors import DataError, InvalidValueError
from qpo.risk import Limits, risk_report
from qpo.risk.book import COLUMNS, BookRiskResult, book_risk

LOOKBACK = 756
TOL = 1e-10


@pytest.fixture(scope="module")
def market(sp500):
    """A daily-report window on the bundled panel, with two names given real-looking gaps in the
    long history (a late listing and a month without prices) so that the stress windows' coverage
    rules are exercised."""
    prices = sp500.copy()
    tick = list(prices.columns)
    prices.loc[:"2008-06-30", tick[3]] = np.nan  # listed mid-2008: half the GFC window
    prices.loc["2011-08-01":"2011-08-31", tick[5]] = np.nan  # a gap inside the 2011 window
    window = prices.iloc[-(LOOKBACK + 1):]
    returns = prices_to_returns(window)
    history = prices_to_returns(prices, dropna="none")
    level = qpo.load_prices("sp500_index")["SP500"]
    bench = prices_to_returns(level.loc[:returns.index[-1]].to_frame(), dropna="none").iloc[:, 0].reindex(
        returns.index)
    sectors = qpo.load_sectors()
    return {"prices": prices, "returns": returns, "history": history, "bench": bench, "sectors": sectors}


def _book(tickers: list[str], seed: int = 7) -> tuple[pd.DataFrame, list]:
    """Long-only random portfolios, concentrated ones, a long-short one; their limits (house
    limits, sector caps by name, every bulk VaR method, a Monte Carlo VaR limit, none)."""
    rng = np.random.default_rng(seed)
    rows, limits = {}, []
    house = Limits(max_weight=0.3, sector_max=0.4, min_names=5, var_limit=0.03)
    for i in range(14):
        k = int(rng.integers(3, len(tickers) + 1))
        names = rng.choice(tickers, size=k, replace=False)
        w = rng.dirichlet(np.ones(k)) * (0.9 + 0.1 * rng.random())  # some cash
        rows[f"long-{i}"] = pd.Series(w, index=names)
        limits.append([house, None, Limits(sector_max={"Information Technology": 0.2, "Energy": 0.1}),
                       Limits(var_limit=0.02, var_method="normal"), Limits(var_limit=0.025, var_method="cornish_fisher"),
                       Limits(max_weight=0.5, min_names=10)][i % 6])
    rows["concentrated"] = pd.Series([0.7, 0.2, 0.1], index=tickers[:3])
    limits.append(house)
    rows["one-name"] = pd.Series([1.0], index=[tickers[4]])
    limits.append(Limits(max_weight=0.25, min_names=2, sector_max=0.3))
    rows["long-short"] = pd.Series([0.6, 0.5, -0.3, 0.2], index=tickers[5:9])
    limits.append(Limits(max_weight=0.55, var_limit=0.5))
    rows["listed-late"] = pd.Series([0.5, 0.5], index=[tickers[3], tickers[5]])
    limits.append(Limits(var_limit=0.01, var_method="monte_carlo_normal"))
    rows["equal"] = pd.Series(1 / 8, index=tickers[8:16])  # ties: sectors of equal weight, names over the cap
    limits.append(Limits(sector_max=0.25, max_weight=0.1))
    rows["only-late"] = pd.Series([1.0], index=[tickers[3]])  # no data before 2008: early windows not reached
    limits.append(None)
    W = pd.DataFrame(rows).T.reindex(columns=tickers).fillna(0.0)
    return W, limits


def _reference(w_row: pd.Series, lim, m, **kw):
    w = w_row[w_row != 0]
    held = list(w.index)
    hist = m["history"][held].dropna(how="all")
    return risk_report(w, m["returns"][held], benchmark=kw.get("bench", m["bench"]), history=hist, limits=lim,
                       sectors=kw.get("sectors", m["sectors"]), confidence=kw.get("confidence", 0.95),
                       horizon=kw.get("horizon", 1), n_scenarios=100_000)


def _close(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or math.isnan(a)) and (b is None or math.isnan(b))
    return abs(float(a) - float(b)) <= TOL


def _compare(res: BookRiskResult, W: pd.DataFrame, limits, m, **kw) -> None:
    for r, pid in enumerate(W.index):
        ref = _reference(W.loc[pid], limits[r], m, **kw)
        row = res.table.loc[pid]
        vt = ref.var_table
        want = {"volatility": ref.volatility, "var_historical": vt.loc["historical", "var"],
                "cvar_historical": vt.loc["historical", "cvar"], "var_parametric": vt.loc["normal", "var"],
                "cvar_parametric": vt.loc["normal", "cvar"],
                "beta": ref.benchmark["beta"] if ref.benchmark else float("nan"),
                "max_drawdown": ref.max_drawdown, "worst_stress": float(np.nanmax(ref.stress["loss"]))}
        for col in COLUMNS:
            assert _close(row[col], want[col]), (pid, col, row[col], want[col])
        stress = res.details[pid]["stress"]
        assert [s["scenario"] for s in stress] == list(ref.stress["scenario"]), pid
        for s, (_, x) in zip(stress, ref.stress.iterrows(), strict=True):
            assert _close(s["loss"], x["loss"]), (pid, s, x["loss"])
            assert abs(s["coverage"] - x["coverage"]) <= TOL and s["kind"] == x["kind"]
        checks = res.details[pid]["compliance"]
        if ref.compliance is None:
            assert checks == [] and bool(row["compliant"]) and row["breaches"] == 0
        else:
            assert [c["check"] for c in checks] == list(ref.compliance["check"]), pid
            for c, (_, x) in zip(checks, ref.compliance.iterrows(), strict=True):
                assert _close(c["value"], x["value"]) and c["limit"] == x["limit"], (pid, c, x)
                assert c["passed"] == {"pass": True, "breach": False, "not checked": None}[x["status"]], (pid, c, x)
            assert row["breaches"] == len(ref.breaches) and bool(row["compliant"]) == (not ref.breaches)
        mine = [b["message"] for b in res.breaches if b["portfolio_id"] == pid]
        assert mine == ref.breaches, (pid, mine, ref.breaches)


def test_book_equals_risk_report_per_portfolio(market):
    W, limits = _book(list(market["returns"].columns))
    res = book_risk(W, market["returns"], benchmark_returns=market["bench"], limits=limits,
                    sectors=market["sectors"], history=market["history"], chunk_size=7)
    assert list(res.table.columns) == [*COLUMNS, "compliant", "breaches"]
    assert res.table.index.equals(W.index) and res.skipped == {}
    assert res.table["compliant"].dtype == bool and res.table[list(COLUMNS)].dtypes.eq(float).all()
    json.dumps(res.details)  # JSON-able as stored
    _compare(res, W, limits, market)
    # the book holds breaches of several kinds, and the list is exactly the failed checks
    kinds = {b["check"] for b in res.breaches}
    assert {"max single name", "min names"} <= kinds and any(k.startswith("sector ") for k in kinds)
    assert any(k.startswith("VaR (") for k in kinds)
    failed = [(pid, c["check"]) for pid, d in res.details.items() for c in d["compliance"] if not c["passed"]]
    assert failed == [(b["portfolio_id"], b["check"]) for b in res.breaches]
    # the late-listed name's GFC window: left out, and the coverage says so
    late = {s["scenario"]: s for s in res.details["listed-late"]["stress"]}
    assert late["Global financial crisis 2008"]["coverage"] == pytest.approx(0.5)
    assert late["US downgrade 2011"]["coverage"] == pytest.approx(0.5)
    only = {s["scenario"]: s for s in res.details["only-late"]["stress"]}
    assert only["Dot-com bust 2000-02"]["loss"] is None and only["COVID crash 2020"]["loss"] is not None


def test_book_without_benchmark_bundled_sectors_ten_day_horizon(market):
    W, limits = _book(list(market["returns"].columns), seed=3)
    W, limits = W.iloc[::3], limits[::3]
    res = book_risk(W, market["returns"], benchmark_returns=None, limits=limits, history=market["history"],
                    confidence=0.99, horizon=10)
    assert res.table["beta"].isna().all()
    _compare(res, W, limits, market, bench=None, sectors=None, confidence=0.99, horizon=10)


def test_unpriced_names_are_reported_not_guessed(market):
    W, limits = _book(list(market["returns"].columns))
    returns = market["returns"].copy()
    gap = returns.columns[0]
    returns.iloc[100:105, 0] = np.nan
    res = book_risk(W, returns, benchmark_returns=market["bench"], limits=limits, sectors=market["sectors"],
                    history=market["history"])
    holders = W.index[W[gap] != 0]
    assert set(res.skipped) == set(holders) and len(holders)
    for pid in holders:
        assert res.table.loc[pid, list(COLUMNS)].isna().all() and not res.table.loc[pid, "compliant"]
        assert res.details[pid]["status"] == "unpriced" and gap in res.details[pid]["message"]
    rest = [i for i, pid in enumerate(W.index) if pid not in res.skipped]
    _compare(book_risk(W.iloc[rest], market["returns"], benchmark_returns=market["bench"],
                       limits=[limits[i] for i in rest], sectors=market["sectors"], history=market["history"]),
             W.iloc[rest], [limits[i] for i in rest], market)
    with pytest.raises(DataError, match="NaN returns in the window"):
        book_risk(W, returns, benchmark_returns=None, missing="raise")


def test_bad_input_is_a_clear_error(market):
    returns = market["returns"]
    W, _ = _book(list(returns.columns))
    with pytest.raises(DataError, match="tickers the returns do not have: \\['NOPE'\\]"):
        book_risk(W.assign(NOPE=0.1), returns, benchmark_returns=None)
    book_risk(W.iloc[:2].assign(NOPE=0.0), returns, benchmark_returns=None)  # an unheld unknown column is fine
    bad = W.copy()
    bad.iloc[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN/inf for 1 portfolio"):
        book_risk(bad, returns, benchmark_returns=None)
    with pytest.raises(DataError, match="the book is empty"):
        book_risk(W.iloc[:0], returns, benchmark_returns=None)
    with pytest.raises(DataError, match="benchmark has no return on 10 of the"):
        book_risk(W, returns, benchmark_returns=market["bench"].iloc[10:])
    with pytest.raises(DataError, match="Series of benchmark returns indexed by date"):
        book_risk(W, returns, benchmark_returns=market["bench"].reset_index(drop=True))
    with pytest.raises(InvalidValueError, match="limits has 3 entries for"):
        book_risk(W, returns, benchmark_returns=None, limits=[None] * 3)
    with pytest.raises(InvalidValueError, match="limits of portfolio 'long-0'"):
        book_risk(W, returns, benchmark_returns=None, limits={"long-0": {"max_weight": -1}})
    with pytest.raises(DataError, match="DatetimeIndex"):
        book_risk(W, returns.reset_index(drop=True), benchmark_returns=None)


def test_as_of_cuts_the_window_and_limits_by_id(market):
    returns, W = market["returns"], _book(list(market["returns"].columns))[0].iloc[:4]
    day = returns.index[-50]
    res = book_risk(W, returns, benchmark_returns=None, as_of=day, limits={W.index[0]: Limits(min_names=100)})
    assert res.end == day and res.as_of == day and res.n_periods == len(returns.loc[:day])
    assert [b["check"] for b in res.breaches] == ["min names"] and res.breaches[0]["portfolio_id"] == W.index[0]
    assert res.table["breaches"].tolist() == [1, 0, 0, 0]


def test_names_without_a_sector_are_not_checked_in_the_book_as_in_the_report(market):
    """Names a sector map does not name were one 'Unclassified' sector under a cap on every sector:
    a breach of a sector that does not exist, alerted each night. They are not checked (passed None,
    NOT_CHECKED in the report), and the named sectors still are."""
    W, limits = _book(list(market["returns"].columns))
    partial = dict(list(market["sectors"].items())[::2])  # half the names have no sector
    res = book_risk(W, market["returns"], benchmark_returns=market["bench"], limits=limits, sectors=partial,
                    history=market["history"])
    _compare(res, W, limits, market, sectors=partial)
    rows = [c for d in res.details.values() for c in d.get("compliance", []) if c["check"] == "sector Unclassified"]
    assert rows and all(c["passed"] is None for c in rows)
    assert not any(b["check"] == "sector Unclassified" for b in res.breaches)
    named = [c for d in res.details.values() for c in d.get("compliance", [])
             if c["check"].startswith("sector ") and c["check"] != "sector Unclassified"]
    assert any(c["passed"] is False for c in named)  # the sectors the map names are still capped

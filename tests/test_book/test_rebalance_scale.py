"""A 500-name rebalance proposal on the shared S&P 500 bars (skipped where they are absent; the
494 of their 504 names with three years of prices up to the proposal's date): it works, keeps
every constraint in whole and in fractional shares, and stays quick."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.book.rebalance import plan_rebalance
from qpo.book.strategy import Strategy
from tests.conftest import shared_file

AS_OF = "2021-03-31"


@pytest.fixture(scope="module")
def panel():
    closes = qpo.ohlcv_to_prices(qpo.load_ohlcv(shared_file("sp500_daily_adjusted.parquet")))
    sectors = qpo.load_sectors(shared_file("sp500_sectors.csv"))
    window = closes.loc[:AS_OF].iloc[-757:]
    names = list(window.columns[window.notna().all()])
    return closes, sectors, names


@pytest.mark.parametrize("fractional", [False, True])
def test_five_hundred_names(panel, fractional):
    closes, sectors, names = panel
    assert len(names) > 450
    last = closes.loc[:AS_OF, names].iloc[-1]
    rng = np.random.default_rng(0)
    held = pd.Series(np.floor(rng.uniform(2_000, 40_000, len(names)) / last.to_numpy()), index=names)
    s = Strategy(constraints={"max_weight": 0.02}, sector_max=0.25, commission=1.0, spread_bps=5.0, fractional=fractional,
                 limits={"max_weight": 0.02, "sector_max": 0.25, "min_names": 50})
    plan_rebalance(held, 50_000.0, closes, s, as_of="2021-02-26", sectors=sectors)  # the solver warmed up
    t0 = time.perf_counter()
    p = plan_rebalance(held, 50_000.0, closes, s, as_of=AS_OF, sectors=sectors)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"a 500-name proposal took {elapsed:.1f} s"
    assert len(p.weights) == int((held > 0).sum()) and p.violations == [] and p.cash_after >= 0
    after = p.weights["after"]
    assert after.max() <= 0.02 + 1e-8
    assert after.groupby(after.index.map(lambda t: sectors.get(t, "Unclassified"))).sum().max() <= 0.25 + 1e-8
    assert p.total_cost == pytest.approx(p.trades["cost"].sum())
    assert p.value_before - p.value_after == pytest.approx(p.total_cost, rel=1e-9)
    assert p.compliance["passed_after"].all()
    assert p.distance_to_target["max_abs"] < (1e-4 if fractional else 2e-3)

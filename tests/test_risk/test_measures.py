"""One VaR rule in qpo: qpo.measures, used by qpo.risk and by the min-CVaR optimizer's diagnostics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo import measures


def test_whole_tail_takes_the_kth_worst_loss():
    """k = (1 - c) T whole: VaR is the k-th worst loss (50th of 1,000 at 95 %), not the (k+1)-th."""
    r = np.random.default_rng(7).normal(0.0, 0.01, 1000)
    worst = np.sort(r)
    var, cvar = measures.var_cvar(r, 0.95)
    assert var == pytest.approx(-worst[49], rel=0, abs=0) and var != -worst[50]
    assert cvar == pytest.approx(-worst[:50].mean(), rel=1e-12)
    assert qpo.historical_var(r, 0.95) == var and qpo.historical_cvar(r, 0.95) == cvar


def test_fractional_tail_weights_the_boundary():
    r = np.arange(1, 101, dtype=float) / -1000  # losses 0.001 .. 0.1
    # k = 0.025 * 100 = 2.5: VaR is the 3rd worst loss; CVaR = (0.1 + 0.099 + 0.5 * 0.098) / 2.5
    var, cvar = measures.var_cvar(r, 0.975)
    assert var == pytest.approx(0.098) and cvar == pytest.approx((0.1 + 0.099 + 0.5 * 0.098) / 2.5)
    assert measures.var_cvar(r[:10], 0.95) == (pytest.approx(0.01), pytest.approx(0.01))  # k < 1: the worst


def test_min_cvar_diagnostics_use_the_risk_rule():
    """One asset and cash-like noise: the min-CVaR optimum holds the asset (weights fixed by the
    budget), so its diagnostics VaR must be qpo.risk's VaR of the same returns. The old rule took
    the (k+1)-th worst loss: on these 1,000 draws at 95 % the two differ."""
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2015-01-01", periods=1000)
    returns = pd.DataFrame({"A": rng.normal(0.0005, 0.01, 1000)}, index=dates)
    problem = qpo.PortfolioProblem.from_returns(returns)
    res = qpo.optimize(problem, "min_cvar", confidence=0.95)
    assert res.weights["A"] == pytest.approx(1.0)
    r = returns["A"].to_numpy()
    assert res.diagnostics["var"] == pytest.approx(qpo.historical_var(r, 0.95), rel=1e-12)
    assert res.diagnostics["cvar"] == pytest.approx(qpo.historical_cvar(r, 0.95), rel=1e-9)
    assert res.diagnostics["var"] != pytest.approx(-np.sort(r)[50], rel=1e-9)  # the (k+1)-th, the old rule


def test_confidence_is_checked_once_for_all():
    with pytest.raises(qpo.InvalidValueError, match="strictly between 0 and 1"):
        measures.var_cvar(np.zeros(10), 95)

"""Solvable mixed-integer problems are answered, not refused: a mixed-integer solver meets its limits
to its own feasibility tolerance (SCIP: 1e-6), so its answer is accepted that close and then
re-solved exactly on the holdings it chose; an answer that stays broken is refused."""
from __future__ import annotations

import numpy as np
import pytest

import qpo
from benchmarks.fuzz_optimizer import case, run_case, violations
from qpo.errors import SolverError


def test_the_reported_cardinality_efficient_risk_case(sp500):
    """sp500, last 600 days, first 10 names, at most 4 holdings of at most 50%, volatility 0.20: SCIP's
    answer was 0.200000039 and was refused as breaking the target."""
    returns = qpo.prices_to_returns(sp500).iloc[-600:, :10]
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_assets=4, max_weight=0.5))
    res = qpo.optimize(problem, "efficient_risk", target_volatility=0.20, confidence_level=None)
    w = res.weights.to_numpy()
    assert res.volatility <= 0.20 * (1 + 1e-6)
    assert res.volatility == pytest.approx(0.20, rel=1e-6)  # the limit binds: the most return at 0.20
    assert int((np.abs(w) > 0).sum()) == 4 and w.max() <= 0.5 + 1e-9 and w.sum() == pytest.approx(1.0, abs=1e-9)
    assert res.diagnostics["polished"].startswith("weights re-solved on the chosen holdings")
    # no other 4-name choice within the limits returns more (a continuous solve per support, exact)
    from itertools import combinations

    best = -np.inf
    for names in combinations(returns.columns, 4):
        sub = qpo.PortfolioProblem.from_returns(returns[list(names)], constraints=qpo.Constraints(max_weight=0.5))
        try:
            r = qpo.optimize(sub, "efficient_risk", target_volatility=0.20, confidence_level=None)
        except qpo.errors.QpoError:
            continue
        best = max(best, r.expected_return)
    assert res.expected_return >= best - 1e-7


@pytest.mark.parametrize("seed", [995, 1801, 4227, 4670])
def test_fuzz_cases_scip_left_a_tracking_error_just_broken(seed):
    """Fuzz cases SCIP answered with a tracking error 1e-7..4e-6 above its limit (refused before; 4670 is
    min_cvar, re-solved only because of that):
    re-solved on SCIP's holdings, they now meet every limit within 1e-6 (checked by the fuzz)."""
    cs = case(seed)
    assert cs.constraints.get("max_assets") is not None and cs.constraints.get("max_tracking_error") is not None
    kind, detail = run_case(cs)
    assert kind == "ok", detail


def test_an_answer_that_stays_broken_is_refused(monkeypatch):
    """When re-solving on the chosen holdings fails, an answer accepted only loosely (fuzz seed 1801:
    tracking error 4e-6 above its limit) is refused, naming the broken limit."""
    from qpo.optimization import classical

    cs = case(1801)
    problem = qpo.PortfolioProblem.from_returns(cs.returns, constraints=qpo.Constraints(**cs.constraints))
    monkeypatch.setattr(classical, "_polish_support", lambda *a, **k: None)
    with pytest.raises(SolverError, match=r"SCIP's answer breaks constraints \(tracking error .* above max_tracking_error"):
        qpo.optimize(problem, cs.objective, confidence_level=None, **cs.options)


def test_the_fuzz_checker_agrees(sp500):
    """The independent checker of the fuzz finds nothing broken in the reported case's answer."""
    returns = qpo.prices_to_returns(sp500).iloc[-600:, :10]
    cons = {"max_assets": 4, "max_weight": 0.5}
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(**cons))
    res = qpo.optimize(problem, "efficient_risk", target_volatility=0.20, confidence_level=None)
    from benchmarks.fuzz_optimizer import Case

    cs = Case(seed=-1, returns=returns, objective="efficient_risk", constraints=cons,
              options={"target_volatility": 0.20})
    assert violations(cs, res.weights.to_numpy(), problem.annual_cov(), problem.annual_mu()) == []

"""qpo.optimize cross-checked against PyPortfolioOpt, skfolio and independent cvxpy models, on the
bundled S&P 500 panel (2018-2022, 20 tickers), for objectives whose optimum is unique.

Conventions aligned here: qpo's moments are per-period sample moments (ddof=1, the same as
``DataFrame.cov()`` and skfolio's default ``EmpiricalCovariance(ddof=1)``) annualized with 252;
PyPortfolioOpt is given the same annualized ``mu`` and ``cov``. skfolio works on the daily
returns themselves; every skfolio objective used here (minimum variance, CVaR, risk budgeting,
maximum diversification) has the same minimizer whatever the covariance's scale, so no
annualization is needed there.
"""
import itertools

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

import qpo

P = 252

#: GICS sectors of the 20 bundled tickers, without spaces (skfolio parses constraint strings)
SECTORS = {t: s.replace(" ", "") for t, s in qpo.load_sectors().items()}


@pytest.fixture(scope="module")
def returns(sp500_clean):
    return qpo.prices_to_returns(sp500_clean.loc["2018-01-01":"2022-12-31"])


@pytest.fixture(scope="module")
def mu_a(returns):
    return returns.mean() * P


@pytest.fixture(scope="module")
def cov_a(returns):
    return returns.cov() * P


def _close(result, ref, atol=1e-4):
    """qpo's weights equal ``ref`` (a ticker -> weight mapping, or an array in column order)."""
    got = result.weights
    exp = pd.Series(ref, index=got.index) if isinstance(ref, np.ndarray) else pd.Series(ref)[got.index]
    np.testing.assert_allclose(got.to_numpy(), exp.to_numpy(dtype=float), atol=atol, rtol=0)


def _feasible_basics(w, lo=0.0, hi=1.0, budget=1.0):
    assert w.sum() == pytest.approx(budget, abs=1e-8)
    assert w.min() >= lo - 1e-8 and w.max() <= hi + 1e-8


# -- 1-3: frontier objectives vs PyPortfolioOpt -------------------------------------------------

@pytest.mark.parametrize("target", [0.15, 0.25, 0.35])
def test_efficient_return_matches_pypfopt(returns, mu_a, cov_a, target):
    """efficient_return (max_weight 0.3) has pypfopt's weights and volatility at each target."""
    from pypfopt import EfficientFrontier

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.3))
    result = qpo.optimize(problem, "efficient_return", target_return=target, confidence_level=None)
    ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(0, 0.3))
    ref = ef.efficient_return(target)
    _close(result, ref)
    _feasible_basics(result.weights, hi=0.3)
    ref_ret, ref_vol, _ = ef.portfolio_performance()
    # all targets lie above the min-variance return, so the target binds
    assert result.expected_return == pytest.approx(target, abs=1e-7)
    assert result.expected_return == pytest.approx(ref_ret, abs=1e-7)
    assert result.volatility == pytest.approx(ref_vol, rel=1e-7)


@pytest.mark.parametrize("target", [0.20, 0.22, 0.26])
def test_efficient_risk_matches_pypfopt(returns, mu_a, cov_a, target):
    """efficient_risk (max_weight 0.3) reaches pypfopt's return at the target volatility, same weights."""
    from pypfopt import EfficientFrontier

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.3))
    result = qpo.optimize(problem, "efficient_risk", target_volatility=target, confidence_level=None)
    ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(0, 0.3))
    ref = ef.efficient_risk(target)
    ref_ret, ref_vol, _ = ef.portfolio_performance()
    # A linear objective over the risk ellipsoid is only weakly curved: returns agree to ~1e-9 but
    # weights only to ~1e-5 (measured 4e-6 to 9e-6 at these targets; pypfopt runs at cvxpy's
    # default tolerance), so the objective value is the tight check.
    assert result.expected_return == pytest.approx(ref_ret, abs=1e-6)
    assert result.volatility == pytest.approx(target, abs=1e-7)
    assert ref_vol == pytest.approx(target, abs=1e-7)
    _close(result, ref, atol=3e-5)
    _feasible_basics(result.weights, hi=0.3)


@pytest.mark.parametrize("delta", [1.0, 3.0, 10.0])
def test_max_utility_matches_pypfopt(returns, mu_a, cov_a, delta):
    """max_utility equals pypfopt's max_quadratic_utility (weights and utility mu'w - delta/2 w'Sw)."""
    from pypfopt import EfficientFrontier

    problem = qpo.PortfolioProblem.from_returns(returns, constraints=qpo.Constraints(max_weight=0.3))
    result = qpo.optimize(problem, "max_utility", risk_aversion=delta, confidence_level=None)
    ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(0, 0.3))
    ref = pd.Series(ef.max_quadratic_utility(risk_aversion=delta))
    _close(result, ref)
    ref_ret, ref_vol, _ = ef.portfolio_performance()
    utility = result.expected_return - delta / 2 * result.volatility ** 2
    assert utility == pytest.approx(ref_ret - delta / 2 * ref_vol ** 2, abs=1e-8)
    # the optimum is not a corner: risk aversion moves it
    if delta == 10.0:
        assert (result.weights > 1e-3).sum() >= 6


# -- 4: sector constraints ---------------------------------------------------------------------

def test_group_constraints_match_pypfopt_and_skfolio(returns, cov_a):
    """min_variance with sector min/max equals pypfopt add_sector_constraints and skfolio groups."""
    from pypfopt import EfficientFrontier
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    gmin = {"InformationTechnology": 0.15, "Energy": 0.20}
    gmax = {"ConsumerStaples": 0.30, "HealthCare": 0.25}
    cons = qpo.Constraints(groups=SECTORS, group_min=gmin, group_max=gmax)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    result = qpo.optimize(problem, "min_variance", confidence_level=None)

    ef = EfficientFrontier(None, cov_a)
    ef.add_sector_constraints(SECTORS, gmin, gmax)
    _close(result, ef.min_volatility())

    linear = [f"{g} >= {v}" for g, v in gmin.items()] + [f"{g} <= {v}" for g, v in gmax.items()]
    sk = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK,
                  groups={t: [s] for t, s in SECTORS.items()}, linear_constraints=linear).fit(returns)
    _close(result, sk.weights_)

    totals = result.weights.groupby(SECTORS).sum()
    # unconstrained min-variance holds 53 % Staples, 42 % Health Care, 5 % Energy and no IT: all four bind
    for g, v in {**gmin, **gmax}.items():
        assert totals[g] == pytest.approx(v, abs=1e-7), g
    _feasible_basics(result.weights)
    assert result.volatility == pytest.approx(np.sqrt(sk.weights_ @ cov_a.to_numpy() @ sk.weights_), rel=1e-6)


# -- 5: CVaR -------------------------------------------------------------------------------------

def test_min_cvar_matches_skfolio_and_pypfopt(returns):
    """min_cvar(0.95) has skfolio's and pypfopt's weights, CVaR (per period) and VaR."""
    from pypfopt import EfficientCVaR
    from skfolio import RiskMeasure
    from skfolio.measures import cvar as sk_cvar
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    problem = qpo.PortfolioProblem.from_returns(returns)
    result = qpo.optimize(problem, "min_cvar", confidence=0.95, confidence_level=None)
    w = result.weights.to_numpy()

    sk = MeanRisk(risk_measure=RiskMeasure.CVAR, objective_function=ObjectiveFunction.MINIMIZE_RISK,
                  cvar_beta=0.95).fit(returns)
    # min_cvar ignores the expected returns; they name the tickers and feed portfolio_performance
    ec = EfficientCVaR(returns.mean() * P, returns, beta=0.95)
    ec.min_cvar()
    # three solvers (HiGHS for qpo, Clarabel for skfolio and pypfopt) agree to 1e-9, so this LP's
    # optimum is unique here and the weights are compared, not only the CVaR
    _close(result, sk.weights_)
    _close(result, dict(zip(returns.columns, ec.weights)))
    _feasible_basics(result.weights)

    cvar = result.diagnostics["cvar"]
    assert cvar == pytest.approx(sk_cvar(returns.to_numpy() @ sk.weights_, beta=0.95), rel=1e-6)
    assert cvar == pytest.approx(sk_cvar(returns.to_numpy() @ w, beta=0.95), rel=1e-10)
    assert cvar == pytest.approx(ec.portfolio_performance()[1], rel=1e-6)
    # 5 % of 1256 days is 62.8: the Rockafellar-Uryasev minimizer alpha is the 63rd-largest loss
    losses = np.sort(-(returns.to_numpy() @ w))[::-1]
    assert result.diagnostics["var"] == pytest.approx(losses[62], abs=1e-12)
    assert result.diagnostics["var"] == pytest.approx(float(ec._alpha.value), abs=1e-6)
    # CVaR is not variance: the minimum-variance portfolio has a higher CVaR
    mv = qpo.optimize(problem, "min_variance", confidence_level=None).weights.to_numpy()
    assert sk_cvar(returns.to_numpy() @ mv, beta=0.95) > cvar + 1e-4


# -- 6: risk parity ------------------------------------------------------------------------------

def _exact_risk_budget(cov: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Newton's method on Spinu's system cov y = b / y (y > 0): the risk-budgeting weights to ~1e-16."""
    y = b / np.sqrt(np.diag(cov))
    y /= np.sqrt(y @ cov @ y)
    for _ in range(100):
        g = cov @ y - b / y
        step = np.linalg.solve(cov + np.diag(b / y ** 2), g)
        t = 1.0
        while (y - t * step <= 0).any():
            t /= 2
        y = y - t * step
        if np.abs(g).max() < 1e-15:
            break
    return y / y.sum()


@pytest.mark.parametrize("budgets", ["equal", "sectors"])
def test_risk_parity_matches_skfolio(returns, cov_a, budgets):
    """risk_parity has skfolio RiskBudgeting's weights and risk contributions equal to the budgets."""
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    tickers = list(returns.columns)
    given = None if budgets == "equal" else {
        t: 2.0 if SECTORS[t] in ("InformationTechnology", "Energy") else 1.0 for t in tickers}
    problem = qpo.PortfolioProblem.from_returns(returns)
    result = qpo.optimize(problem, "risk_parity", risk_budgets=given, confidence_level=None)
    sk = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, risk_budget=given).fit(returns)
    _close(result, sk.weights_)
    b = np.ones(len(tickers)) if given is None else np.array([given[t] for t in tickers])
    b = b / b.sum()
    exact = _exact_risk_budget(cov_a.to_numpy(), b)
    _close(result, exact)
    _feasible_basics(result.weights)
    assert result.weights.min() > 0.01  # risk parity holds every asset
    rc = np.array([result.diagnostics["risk_contributions"][t] for t in tickers])
    assert rc.sum() == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(rc, b, atol=1e-6, rtol=0)


# -- 7: HRP ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("linkage", ["single", "ward", "average"])
def test_hrp_matches_pypfopt(returns, linkage):
    """hrp equals pypfopt HRPOpt to 1e-8 for several linkages (same tree, same bisection)."""
    from pypfopt import HRPOpt

    problem = qpo.PortfolioProblem.from_returns(returns)
    result = qpo.optimize(problem, "hrp", linkage=linkage, confidence_level=None)
    ref = HRPOpt(returns).optimize(linkage_method=linkage)
    _close(result, ref, atol=1e-8)
    _feasible_basics(result.weights)
    assert result.weights.min() > 0
    # HRP is not inverse variance: the recursive bisection moves weight
    iv = 1 / np.diag(returns.cov().to_numpy())
    assert np.abs(result.weights.to_numpy() - iv / iv.sum()).max() > 1e-3


# -- 8: maximum diversification ------------------------------------------------------------------

def test_max_diversification_matches_skfolio(returns, cov_a):
    """max_diversification has skfolio MaximumDiversification's weights and ratio."""
    from skfolio.optimization import MaximumDiversification

    problem = qpo.PortfolioProblem.from_returns(returns)
    result = qpo.optimize(problem, "max_diversification", confidence_level=None)
    sk = MaximumDiversification().fit(returns)
    _close(result, sk.weights_)
    _feasible_basics(result.weights)
    C = cov_a.to_numpy()
    sd = np.sqrt(np.diag(C))

    def ratio(w):
        return float(w @ sd / np.sqrt(w @ C @ w))

    w = result.weights.to_numpy()
    assert result.diagnostics["diversification_ratio"] == pytest.approx(ratio(w), rel=1e-12)
    assert ratio(w) == pytest.approx(ratio(sk.weights_), rel=1e-8)
    assert ratio(w) >= ratio(np.full(len(w), 1 / len(w)))


# -- 9: shorting -----------------------------------------------------------------------------------

def test_shorting_min_variance_and_max_sharpe_match_pypfopt(returns, mu_a, cov_a):
    """With bounds [-0.3, 0.5], min_variance and max_sharpe equal pypfopt's (weights, Sharpe)."""
    from pypfopt import EfficientFrontier

    rf = 0.02
    cons = qpo.Constraints(long_only=False, min_weight=-0.3, max_weight=0.5)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons, risk_free_rate=rf)

    mv = qpo.optimize(problem, "min_variance", confidence_level=None)
    ef = EfficientFrontier(None, cov_a, weight_bounds=(-0.3, 0.5))
    _close(mv, ef.min_volatility())
    assert mv.volatility == pytest.approx(ef.portfolio_performance()[1], rel=1e-7)
    assert (mv.weights < -1e-3).sum() >= 3  # it does short

    ms = qpo.optimize(problem, "max_sharpe", confidence_level=None)
    ef = EfficientFrontier(mu_a, cov_a, weight_bounds=(-0.3, 0.5))
    _close(ms, ef.max_sharpe(risk_free_rate=rf))
    assert ms.sharpe == pytest.approx(ef.portfolio_performance(risk_free_rate=rf)[2], rel=1e-7)
    _feasible_basics(ms.weights, lo=-0.3, hi=0.5)
    assert ms.weights.min() == pytest.approx(-0.3, abs=1e-6)  # the short bound binds


# -- 10: leverage ------------------------------------------------------------------------------------

def test_leverage_matches_independent_cvxpy(returns, cov_a):
    """min_variance with gross exposure <= 1.6 equals an independent split (w = p - q) cvxpy model."""
    C = cov_a.to_numpy()
    n = len(C)
    cons = qpo.Constraints(long_only=False, min_weight=-1, max_weight=1, leverage=1.6)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    result = qpo.optimize(problem, "min_variance", confidence_level=None)

    p, q = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
    w = p - q
    ref = cp.Problem(cp.Minimize(cp.quad_form(w, cp.psd_wrap(C))),
                     [cp.sum(w) == 1, w >= -1, w <= 1, cp.sum(p + q) <= 1.6])
    ref.solve(solver="CLARABEL")
    _close(result, w.value)
    assert result.volatility ** 2 == pytest.approx(ref.value, rel=1e-6)
    # without the limit the gross exposure is 1.72, so the limit binds
    free = qpo.optimize(problem.with_constraints(qpo.Constraints(long_only=False, min_weight=-1, max_weight=1)),
                        "min_variance", confidence_level=None)
    assert free.weights.abs().sum() > 1.7
    assert result.weights.abs().sum() == pytest.approx(1.6, abs=1e-5)
    assert result.weights.abs().sum() <= 1.6 + 1e-7
    assert result.volatility > free.volatility


# -- 11: transaction costs and turnover ------------------------------------------------------------

@pytest.mark.parametrize("cost", [0.002, 0.02])
def test_transaction_costs_match_independent_cvxpy(returns, mu_a, cov_a, cost):
    """max_utility with linear costs from equal weights equals mu'w - d/2 w'Sw - c |w - w0|_1 solved directly."""
    tickers = list(returns.columns)
    n, delta = len(tickers), 3.0
    w0 = np.full(n, 1 / n)
    cons = qpo.Constraints(max_weight=0.3, current_weights=dict(zip(tickers, w0)), transaction_costs=cost)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    result = qpo.optimize(problem, "max_utility", risk_aversion=delta, confidence_level=None)

    C, m = cov_a.to_numpy(), mu_a.to_numpy()
    w = cp.Variable(n)
    ref = cp.Problem(cp.Maximize(m @ w - delta / 2 * cp.quad_form(w, cp.psd_wrap(C)) - cost * cp.norm1(w - w0)),
                     [cp.sum(w) == 1, w >= 0, w <= 0.3])
    ref.solve(solver="CLARABEL")
    _close(result, w.value)
    wq = result.weights.to_numpy()
    assert result.diagnostics["turnover"] == pytest.approx(np.abs(wq - w0).sum(), abs=1e-12)
    assert result.diagnostics["transaction_cost"] == pytest.approx(cost * np.abs(wq - w0).sum(), abs=1e-12)
    net = m @ wq - delta / 2 * wq @ C @ wq - cost * np.abs(wq - w0).sum()
    assert net == pytest.approx(ref.value, abs=1e-7)
    assert result.expected_return == pytest.approx(m @ wq, abs=1e-12)  # reported gross
    # the costs matter: the answer is not the cost-free one
    free = qpo.optimize(problem.with_constraints(qpo.Constraints(max_weight=0.3)), "max_utility",
                        risk_aversion=delta, confidence_level=None)
    assert np.abs(free.weights.to_numpy() - wq).max() > 0.02
    if cost == 0.02:  # large costs pin some weights at the current ones (the kink of |w - w0|)
        assert (np.abs(wq - w0) < 1e-6).sum() >= 3


def test_market_impact_matches_independent_cvxpy(returns, mu_a, cov_a):
    """max_utility with linear costs and a k |w - w0|^1.5 impact equals a direct model (SOC form)."""
    tickers = list(returns.columns)
    n, delta, c, k = len(tickers), 3.0, 0.001, 0.05
    w0 = np.full(n, 1 / n)
    cons = qpo.Constraints(max_weight=0.3, current_weights=dict(zip(tickers, w0)), transaction_costs=c,
                           market_impact=k)
    result = qpo.optimize(qpo.PortfolioProblem.from_returns(returns, constraints=cons), "max_utility",
                          risk_aversion=delta, confidence_level=None)
    C, m = cov_a.to_numpy(), mu_a.to_numpy()
    w = cp.Variable(n)
    trade = cp.abs(w - w0)
    ref = cp.Problem(cp.Maximize(m @ w - delta / 2 * cp.quad_form(w, cp.psd_wrap(C)) - c * cp.sum(trade)
                                 - k * cp.sum(cp.power(trade, 1.5))), [cp.sum(w) == 1, w >= 0, w <= 0.3])
    ref.solve(solver="CLARABEL")
    assert result.solver == "CLARABEL"
    _close(result, w.value)
    wq = result.weights.to_numpy()
    assert result.diagnostics["market_impact_cost"] == pytest.approx(k * (np.abs(wq - w0) ** 1.5).sum(), abs=1e-12)
    net = m @ wq - delta / 2 * wq @ C @ wq - c * np.abs(wq - w0).sum() - k * (np.abs(wq - w0) ** 1.5).sum()
    assert net == pytest.approx(ref.value, abs=1e-7)


@pytest.mark.parametrize("max_turnover", [0.3, 0.6])
def test_turnover_limit_matches_pypfopt(returns, cov_a, max_turnover):
    """min_variance with sum |w - w0| <= T from equal weights equals pypfopt with the same constraint."""
    from pypfopt import EfficientFrontier

    tickers = list(returns.columns)
    w0 = np.full(len(tickers), 1 / len(tickers))
    cons = qpo.Constraints(current_weights=dict(zip(tickers, w0)), max_turnover=max_turnover)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    result = qpo.optimize(problem, "min_variance", confidence_level=None)
    ef = EfficientFrontier(None, cov_a)
    ef.add_constraint(lambda w: cp.norm(w - w0, 1) <= max_turnover)
    _close(result, ef.min_volatility())
    assert result.volatility == pytest.approx(ef.portfolio_performance()[1], rel=1e-7)
    # unconstrained min-variance is 1.5 away from equal weights: the limit binds
    assert result.diagnostics["turnover"] == pytest.approx(max_turnover, abs=1e-6)
    assert np.abs(result.weights.to_numpy() - w0).sum() <= max_turnover + 1e-6


# -- 12: tracking error ------------------------------------------------------------------------------

@pytest.mark.parametrize("objective,options", [("max_utility", {"risk_aversion": 1.0}),
                                               ("efficient_risk", {"target_volatility": 0.25})])
def test_tracking_error_matches_independent_cvxpy(returns, mu_a, cov_a, objective, options):
    """A 3 % tracking-error limit to equal weights gives the independent cvxpy model's weights."""
    tickers = list(returns.columns)
    n = len(tickers)
    bench = np.full(n, 1 / n)
    cons = qpo.Constraints(max_weight=0.3, benchmark_weights=dict(zip(tickers, bench)), max_tracking_error=0.03)
    problem = qpo.PortfolioProblem.from_returns(returns, constraints=cons)
    result = qpo.optimize(problem, objective, confidence_level=None, **options)

    C, m = cov_a.to_numpy(), mu_a.to_numpy()
    Cw = cp.psd_wrap(C)
    w = cp.Variable(n)
    ref_cons = [cp.sum(w) == 1, w >= 0, w <= 0.3, cp.quad_form(w - bench, Cw) <= 0.03 ** 2]
    if objective == "max_utility":
        goal = cp.Maximize(m @ w - options["risk_aversion"] / 2 * cp.quad_form(w, Cw))
    else:
        goal = cp.Maximize(m @ w)
        ref_cons.append(cp.quad_form(w, Cw) <= options["target_volatility"] ** 2)
    cp.Problem(goal, ref_cons).solve(solver="CLARABEL")
    _close(result, w.value)
    assert result.expected_return == pytest.approx(m @ w.value, abs=1e-6)

    wq = result.weights.to_numpy()
    te = result.diagnostics["tracking_error"]
    assert te == pytest.approx(np.sqrt((wq - bench) @ C @ (wq - bench)), rel=1e-9)
    assert te <= 0.03 + 1e-6
    assert te >= 0.03 - 1e-5  # it binds: without it the portfolio strays much further
    free = qpo.optimize(problem.with_constraints(qpo.Constraints(max_weight=0.3)), objective,
                        confidence_level=None, **options).weights.to_numpy()
    assert np.sqrt((free - bench) @ C @ (free - bench)) > 0.1


# -- 13: cardinality ------------------------------------------------------------------------------------

def _brute_force_min_variance(C: np.ndarray, sizes, min_position: float):
    """The least-variance long-only portfolio over every subset of the given sizes, each subset's
    weights in [min_position, 1] (one DPP-compiled Clarabel model, re-solved per subset)."""
    n = len(C)
    held, lo = cp.Parameter(n, nonneg=True), cp.Parameter(n, nonneg=True)
    w = cp.Variable(n)
    prob = cp.Problem(cp.Minimize(cp.quad_form(w, cp.psd_wrap(C))), [cp.sum(w) == 1, w >= lo, w <= held])
    best = (np.inf, None, None)
    for k in sizes:
        for subset in itertools.combinations(range(n), k):
            mask = np.zeros(n)
            mask[list(subset)] = 1.0
            held.value, lo.value = mask, min_position * mask
            prob.solve(solver="CLARABEL")
            if prob.status == cp.OPTIMAL and prob.value < best[0]:
                best = (float(prob.value), np.where(mask > 0, w.value, 0.0), subset)
    return best


@pytest.mark.parametrize("max_assets,min_position", [(3, None), (4, 0.1)])
def test_cardinality_matches_brute_force(returns, max_assets, min_position):
    """min_variance with max_assets (and min_position) on 12 assets equals brute force over all subsets."""
    r12 = returns.iloc[:, :12]
    C = r12.cov().to_numpy() * P
    cons = qpo.Constraints(max_assets=max_assets, min_position=min_position)
    problem = qpo.PortfolioProblem.from_returns(r12, constraints=cons)
    result = qpo.optimize(problem, "min_variance", confidence_level=None)

    # without min_position zero weights are allowed, so the size-K subsets cover the smaller ones;
    # with it, a smaller subset is a different problem and is enumerated too
    sizes = [max_assets] if min_position is None else range(1, max_assets + 1)
    best_var, best_w, best_subset = _brute_force_min_variance(C, sizes, min_position or 0.0)

    w = result.weights.to_numpy()
    held = np.flatnonzero(w != 0)
    assert result.diagnostics["proven_optimal"] is True
    assert tuple(held) == best_subset
    assert result.diagnostics["n_holdings"] == len(held) <= max_assets
    _feasible_basics(result.weights)
    if min_position is not None:
        assert (w[held] >= min_position - 1e-7).all()
        assert w[held].min() == pytest.approx(min_position, abs=1e-6)  # it binds (HD)
    # the cardinality limit binds: unconstrained min-variance holds 7 of the 12
    assert (qpo.optimize(problem.with_constraints(qpo.Constraints()), "min_variance",
                         confidence_level=None).weights > 1e-6).sum() > max_assets
    assert result.volatility ** 2 == pytest.approx(best_var, rel=1e-7)
    np.testing.assert_allclose(w, best_w, atol=1e-4, rtol=0)
    # "proven optimal" should rest on the solver's reported gap, not on its absence
    assert result.diagnostics["mip_gap"] == pytest.approx(0.0, abs=1e-9)

"""Building the binary models from a portfolio problem: :func:`selection_model` (choose ``k`` assets)
and :func:`lots_model` (whole lots under a cash budget), with the default penalty rule.

The problem is taken duck-typed (anything with ``tickers``, ``n_assets``, ``constraints``,
``annual_mu()``, ``annual_cov()`` and ``periods_per_year``, as :class:`qpo.PortfolioProblem` has):
qpo.quantum sits below qpo.optimization and does not import it."""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from qpo._checks import positive
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError
from qpo.quantum.formulation._model import CARDINALITIES, BinaryModel, LinearConstraint
from qpo.quantum.formulation._qubo import bounded_coefficients

if TYPE_CHECKING:  # pragma: no cover - annotations only: qpo.optimization sits above qpo.quantum
    from qpo.optimization.problem import PortfolioProblem

#: what selection_model / lots_model read of the problem
_PROBLEM_ATTRIBUTES = ("tickers", "n_assets", "constraints", "annual_mu", "annual_cov", "periods_per_year")


def _check_problem(problem: object) -> None:
    if not all(hasattr(problem, a) for a in _PROBLEM_ATTRIBUTES):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")


def selection_model(problem: PortfolioProblem, k: int | None = None, *, cardinality: str = "exact", risk_aversion: float = 1.0,
                    penalty: float | None = None) -> BinaryModel:
    """Choose ``k`` assets of ``problem`` (exactly, or at most with ``cardinality="at_most"``), each
    weighing ``1/k``, to minimize ``risk_aversion/2 w'Sigma w - mu'w`` (annual moments).

    ``k`` defaults to the problem's ``Constraints(max_assets=...)`` (then ``at_most``). The
    problem's other constraints are not binary: they are refused rather than silently ignored.
    """
    _check_problem(problem)
    if cardinality not in CARDINALITIES:
        raise UnknownOptionError("cardinality", cardinality, CARDINALITIES)
    extra = dict(problem.constraints.describe())
    max_assets = extra.pop("max_assets", None)
    if k is None and max_assets is not None:
        k, cardinality = max_assets, "at_most"  # Constraints(max_assets=K) is "at most K"
    elif max_assets is not None and isinstance(k, numbers.Integral) and k > max_assets:
        raise ProblemError(f"k={k} assets breaks the problem's max_assets={max_assets}; choose k <= {max_assets} "
                           "or drop max_assets")
    _refuse_constraints("asset selection", extra)
    n = problem.n_assets
    if k is None:
        raise ProblemError(f"asset selection needs k, the number of assets to choose (1..{n}), e.g. k={max(1, n // 2)}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise InvalidValueError(f"k must be a whole number of assets in 1..{n}, got {k!r}")
    k = int(k)
    if not 1 <= k <= n:
        raise InvalidValueError(f"k must be between 1 and the number of assets ({n}), got {k}"
                                + ("; choosing no asset is not a portfolio" if k == 0 else ""))
    lam = positive("risk_aversion", risk_aversion)
    W = np.eye(n) / k
    Q, c = _utility(problem, W, lam)
    ones = np.ones(n)
    if cardinality == "exact":
        cons = (LinearConstraint("cardinality", ones, "==", float(k)),)
        slack, slack_unit = (), ()
    else:
        cons = (LinearConstraint("cardinality", ones, "<=", float(k)),)
        slack, slack_unit = (("cardinality", 0, bounded_coefficients(k)),), (1.0,)
    P, rule = _penalty(Q, c, penalty)
    return BinaryModel(kind="selection", tickers=tuple(problem.tickers), variables=tuple(problem.tickers), Q=Q, c=c,
                       offset=0.0, weights_map=W, constraints=cons, penalty=P, penalty_rule=rule, risk_aversion=lam,
                       k=k, cardinality=cardinality, slack=slack, slack_unit=slack_unit,
                       encoding={"weight_per_asset": 1.0 / k}, periods_per_year=problem.periods_per_year)


def lots_model(problem: PortfolioProblem, prices, cash: float, *, lot_size=1, max_lots=None, risk_aversion: float = 1.0,
               penalty: float | None = None, slack_resolution: float = 0.25) -> BinaryModel:
    """Whole lots under a cash budget: ``n_i`` lots of ``lot_size_i`` shares at ``prices_i``, with
    ``sum_i prices_i lot_size_i n_i <= cash``; the weights are the cash each asset takes over ``cash``.

    ``prices`` and ``lot_size`` / ``max_lots`` are one number or a mapping ticker -> value.
    ``max_lots`` defaults to what the cash buys of each asset alone. The penalized form's slack
    counts unspent cash in steps of ``slack_resolution`` cheapest lots (0.25: a quarter lot).
    """
    _check_problem(problem)
    _refuse_constraints("integer lots", problem.constraints.describe())
    tickers = problem.tickers
    px = _per_ticker("prices", prices, tickers)
    if not np.isfinite(px).all() or (px <= 0).any():
        bad = [t for t, p in zip(tickers, px) if not (np.isfinite(p) and p > 0)]
        raise InvalidValueError(f"prices must be positive finite numbers; bad for {bad[:10]}")
    cash = positive("cash", cash)
    lots = _per_ticker("lot_size", lot_size, tickers)
    if not np.isfinite(lots).all() or (lots < 1).any() or (lots != np.round(lots)).any():
        bad = [f"{t}={v:g}" for t, v in zip(tickers, lots) if not (np.isfinite(v) and v >= 1 and v == round(v))]
        raise InvalidValueError(f"lot_size must be a whole number of shares >= 1 (lots are integer); got {bad[:10]}")
    lots = lots.astype(int)
    cost = px * lots
    cheapest = float(cost.min())
    if cheapest > cash:
        t = tickers[int(cost.argmin())]
        raise InvalidValueError(f"cash {cash:,.2f} is below the cheapest lot ({t}: {lots[int(cost.argmin())]} shares "
                                f"at {px[int(cost.argmin())]:,.2f} = {cheapest:,.2f}); nothing can be bought")
    afford = np.floor(cash / cost + 1e-12).astype(int)
    if max_lots is None:
        maxl = afford
    else:
        ml = _per_ticker("max_lots", max_lots, tickers)
        if not np.isfinite(ml).all() or (ml < 0).any() or (ml != np.round(ml)).any():
            raise InvalidValueError(f"max_lots must be whole numbers >= 0, got {ml.tolist()[:10]}")
        maxl = np.minimum(ml.astype(int), afford)
    if maxl.sum() == 0:
        raise InvalidValueError("max_lots allows no lot of any asset within the cash")
    resolution = positive("slack_resolution", slack_resolution)
    variables: list[str] = []
    bits: dict[str, list[tuple[int, int]]] = {}
    cols: list[tuple[int, int]] = []
    for i, t in enumerate(tickers):
        bits[t] = []
        for b, coef in enumerate(bounded_coefficients(int(maxl[i]))):
            bits[t].append((len(variables), int(coef)))
            variables.append(f"{t}[{b}]")
            cols.append((i, int(coef)))
    m = len(variables)
    W = np.zeros((len(tickers), m))
    budget = np.zeros(m)
    for j, (i, coef) in enumerate(cols):
        W[i, j] = cost[i] * coef / cash
        budget[j] = cost[i] * coef
    lam = positive("risk_aversion", risk_aversion)
    Q, c = _utility(problem, W, lam)
    slack_step = cheapest * resolution
    slack_steps = int(np.floor(cash / slack_step + 1e-12))
    cons = (LinearConstraint("budget", budget, "<=", cash, unit=cheapest),)
    P, rule = _penalty(Q, c, penalty, unit_note="one cheapest lot")
    encoding = {"cash": cash, "price": dict(zip(tickers, px.tolist())), "lot_size": dict(zip(tickers, lots.tolist())),
                "lot_cost": dict(zip(tickers, cost.tolist())), "max_lots": dict(zip(tickers, maxl.tolist())),
                "bits": bits, "coefficients": {t: [coef for _, coef in bits[t]] for t in tickers},
                "slack_step": slack_step, "slack_steps": slack_steps,
                "note": ("lots n_i = sum_b coef_b x_(i,b), bounded binary encoding with integer coefficients; "
                         f"slack = unspent cash in steps of {slack_step:.6g} ({resolution:g} cheapest lot), "
                         f"0..{slack_steps} steps")}
    return BinaryModel(kind="lots", tickers=tuple(tickers), variables=tuple(variables), Q=Q, c=c, offset=0.0,
                       weights_map=W, constraints=cons, penalty=P, penalty_rule=rule, risk_aversion=lam,
                       slack=(("budget", 0, bounded_coefficients(slack_steps)),), slack_unit=(slack_step,),
                       encoding=encoding, periods_per_year=problem.periods_per_year)


def _utility(problem, W: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    S = problem.annual_cov()
    mu = problem.annual_mu()
    Q = lam / 2.0 * W.T @ S @ W
    Q = (Q + Q.T) / 2
    return Q, -(W.T @ mu)


def _penalty(Q: np.ndarray, c: np.ndarray, penalty, unit_note: str = "one asset") -> tuple[float, str]:
    if penalty is not None:
        p = positive("penalty", penalty)
        return p, f"given: {p:.6g}"
    off = np.abs(Q - np.diag(np.diag(Q))).sum(axis=1)
    D = float(np.max(np.abs(np.diag(Q) + c) + 2.0 * off)) if len(c) else 1.0
    D = D if D > 0 else 1.0
    return 2.0 * D, (f"default 2 x D = {2.0 * D:.6g}, D = {D:.6g} the largest change of the objective one bit flip "
                     f"can make; residuals in units of {unit_note}")



def _per_ticker(name: str, v, tickers: list[str]) -> np.ndarray:
    if isinstance(v, (Mapping, pd.Series)):
        d = dict(v)
        missing = [t for t in tickers if t not in d]
        if missing:
            raise ProblemError(f"{name} has no value for {missing[:10]}; give one for every asset")
        vals = [d[t] for t in tickers]
    elif isinstance(v, numbers.Real) and not isinstance(v, bool):
        vals = [v] * len(tickers)
    else:
        arr = np.asarray(v, dtype=object).ravel()
        if arr.size != len(tickers):
            raise ProblemError(f"{name} has {arr.size} values for {len(tickers)} assets")
        vals = list(arr)
    out = []
    for t, x in zip(tickers, vals):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise InvalidValueError(f"{name}[{t!r}] must be a number, got {x!r}")
        out.append(float(x))
    return np.array(out)


def _refuse_constraints(what: str, extra: dict) -> None:
    if extra:
        raise ProblemError(f"{what} encodes only its own binary constraints; the problem also sets "
                           f"{sorted(extra)}, which it cannot honour. Drop them (use Constraints()) or solve "
                           "the continuous problem with method='classical'")

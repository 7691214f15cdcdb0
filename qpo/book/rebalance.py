"""Rebalance proposals: the trades that take a portfolio from what it holds to its strategy's target.

:func:`plan_rebalance` works on explicit inputs (shares held, cash, a price panel, a strategy) and
touches no store; the service functions that read and write the store build on it.

Conventions
-----------
* **Weights** are fractions of the portfolio's total value *including cash*: before the trade of
  ``value_before`` (the held shares at the last close on or before ``as_of``, plus cash), after it
  of ``value_after`` (= ``value_before`` - the trades' costs). Cash is not a ticker row of
  :attr:`RebalanceProposal.weights`; its weight is ``comparison.loc["cash_weight"]``.
* **Universe**: the names held, plus every name the strategy's constraints name one by one (keys
  of ``min_weight``, ``max_weight``, ``transaction_costs``, ``market_impact``,
  ``benchmark_weights``, ``groups``), plus the names given as ``universe=``. A strategy that names
  a ticker thereby lets the target buy it; a name outside the universe is never bought.
* **Target**: ``qpo.optimize`` of the strategy's problem (:meth:`Strategy.problem
  <qpo.book.strategy.Strategy.problem>`) over the universe's returns of the last ``lookback``
  periods up to ``as_of`` (the periods where every name has a price), with the weights held now as
  ``current_weights`` (so ``max_turnover`` and ``transaction_costs`` act on the real trade;
  ``transaction_costs`` is ``spread_bps / 1e4`` unless the strategy sets its own). The target's
  budget is the strategy's (1: fully invested), moved toward the invested weight held now when
  ``max_turnover`` could not otherwise hold (cash of 30 % under a 10 % turnover cap invests 10 %).
* **Trades** are whole shares by default (``fractional``: steps of 1e-6 share), priced at the last
  close on or before ``as_of``; each costs ``commission`` plus ``spread_bps`` of its notional. The
  rounding (:func:`round_trades`) keeps every constraint of the target: each trade is rounded toward
  the holding (a full exit sells every share), sells are rounded up where a name or a group must come
  down to its cap, buys are cut until cash (after costs) is >= 0 and the turnover cap holds, and the
  cash left is spent, a share at a time, on the names furthest below their target while every
  constraint still holds. The budget holds as an upper bound (the cash left over is reported). What
  whole shares cannot reach (a ``min_weight`` below one share's weight that cash cannot buy) is
  listed in :attr:`RebalanceProposal.violations`, never hidden.
* **Before / after** numbers use the same returns as the target: volatility and historical VaR/CVaR
  of the portfolio's returns (cash earns 0) by :mod:`qpo.risk`, annualized with the returns'
  frequency; expected return by the problem's mean; tracking error to the target; turnover
  ``sum |after - before|`` (the definition of ``Constraints.max_turnover``).
"""
from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import check_amount, quote
from qpo.book.rounding import TRADE_COLUMNS, round_trades
from qpo.book.strategy import Strategy
from qpo.data.calendar import check_as_of
from qpo.errors import DataError, InfeasibleError, InvalidValueError
from qpo.optimization import Constraints, OptimizationResult, PortfolioProblem, optimize

#: the fewest return periods a target is estimated from
MIN_PERIODS = 20

COMPARISON_METRICS = ["expected_return", "volatility", "var", "cvar", "tracking_error", "n_names", "cash_weight"]
COMPLIANCE_COLUMNS = ["check", "limit", "before", "after", "passed_before", "passed_after"]


# -- inputs -----------------------------------------------------------------------------------------
def _holdings(shares) -> pd.Series:
    """Shares held, ticker -> shares > 0 (zeros dropped), sorted by ticker."""
    if isinstance(shares, Mapping):
        shares = pd.Series(dict(shares), dtype=object)
    if not isinstance(shares, pd.Series):
        raise InvalidValueError(f"shares must be a pandas Series (or a dict) ticker -> shares held, got {type(shares).__name__}")
    if shares.index.has_duplicates:
        raise InvalidValueError(f"shares names {quote(shares.index[shares.index.duplicated()][0])} twice; "
                                "give each ticker once")
    out = {}
    for k, v in shares.items():
        if not isinstance(k, str) or not k.strip():
            raise InvalidValueError(f"shares are indexed by ticker (text), got {quote(k)}")
        x = check_amount(v, f"shares[{quote(k, 20)}]", "nonnegative")
        if x > 0:
            out[k] = x
    return pd.Series(dict(sorted(out.items())), dtype=float, name="shares")


def _price_panel(prices) -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame):
        raise DataError(f"prices must be a DataFrame of dates x tickers (qpo.load_prices), got {type(prices).__name__}")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError("prices must be indexed by date (a DatetimeIndex), as qpo.load_prices returns them")
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        prices = prices[~prices.index.duplicated(keep="last")].sort_index()
    return prices


def universe_of(held: pd.Series, constraints: Constraints) -> list[str]:
    """The names a proposal may trade: those held plus those the constraints name one by one
    (keys of ``min_weight``, ``max_weight``, ``transaction_costs``, ``market_impact``,
    ``benchmark_weights`` and ``groups``), sorted."""
    names = set(held.index)
    for f in ("min_weight", "max_weight", "transaction_costs", "market_impact", "benchmark_weights", "groups"):
        value = getattr(constraints, f)
        if isinstance(value, (Mapping, pd.Series)):
            names |= set(map(str, dict(value)))
    return sorted(names)


def _strategy(strategy) -> Strategy:
    if strategy is None:
        return Strategy.default()
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, (Mapping, str, bytes)):
        return Strategy.from_json(strategy)
    raise InvalidValueError(f"strategy must be a qpo.book.strategy.Strategy or its JSON, got {type(strategy).__name__}")


def _window(prices: pd.DataFrame, universe: list[str], when: pd.Timestamp, lookback: int) -> tuple[pd.DataFrame, pd.Series]:
    """The last ``lookback`` returns up to ``when`` of the universe (the periods where every name has
    a price), and each name's last close on or before ``when``."""
    missing = [t for t in universe if t not in prices.columns]
    if missing:
        raise DataError(f"no prices for {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}: the portfolio "
                        "holds (or its strategy names) them; load prices that cover every holding")
    upto = prices.loc[:when, universe]
    values = upto.to_numpy(dtype=float)
    seen = ~np.isnan(values)
    rows = len(values) - 1 - np.argmax(seen[::-1], axis=0)
    last = pd.Series(np.where(seen.any(axis=0), values[rows, np.arange(values.shape[1])], np.nan), index=universe)
    unpriced = last.index[~(last > 0)].tolist()
    if unpriced:
        raise DataError(f"no positive price on or before {when.date()} for {', '.join(unpriced[:10])}: the holdings "
                        "cannot be valued")
    px = upto.iloc[-(lookback + 1):]
    returns = px.pct_change(fill_method=None).iloc[1:]
    complete = returns.dropna(how="any")
    if len(complete) < MIN_PERIODS:
        gaps = returns.isna().sum().sort_values(ascending=False)
        worst = ", ".join(f"{t} ({int(k)} missing)" for t, k in gaps[gaps > 0].head(5).items())
        raise DataError(f"only {len(complete)} of the last {len(returns)} periods up to {when.date()} have a return for "
                        f"every name (at least {MIN_PERIODS} are needed)" + (f"; short histories: {worst}" if worst else ""))
    return complete, last


def returns_window(prices: pd.DataFrame, universe: list[str], when, lookback: int) -> tuple[pd.DataFrame, pd.Series]:
    """The returns a proposal's target is estimated from: the last ``lookback`` periods up to ``when``
    of ``universe`` where every name has a return, and each name's last close on or before ``when``
    (what :func:`plan_rebalance` uses; a frontier of the same names can use it too)."""
    return _window(_price_panel(prices), list(universe), pd.Timestamp(when), int(lookback))


# -- before and after -------------------------------------------------------------------------------
def _metrics(w: pd.Series, target: pd.Series, returns: pd.DataFrame, problem: PortfolioProblem,
             confidence: float) -> dict[str, float]:
    from qpo.risk import annualized_volatility, portfolio_returns, var_cvar
    from qpo.risk.compliance import HOLDING_TOLERANCE

    ppy = problem.periods_per_year
    r = portfolio_returns(w, returns)
    var, cvar = var_cvar(r, confidence)
    te = annualized_volatility(portfolio_returns(w - target, returns), ppy)
    return {"expected_return": float(problem.mu.to_numpy() @ w.to_numpy()) * ppy,
            "volatility": annualized_volatility(r, ppy), "var": var, "cvar": cvar, "tracking_error": te,
            "n_names": float((w.abs() > HOLDING_TOLERANCE).sum()), "cash_weight": float(1.0 - w.sum())}


def _var_values(w: pd.Series, returns: pd.DataFrame, limits, confidence: float) -> dict[str, float]:
    from qpo.risk import monte_carlo_var, portfolio_returns, var_cvar
    from qpo.risk.var import PARAMETRIC

    if limits.var_limit is None:
        return {}
    method = limits.var_method
    if method in PARAMETRIC:
        return {method: var_cvar(portfolio_returns(w, returns), confidence, method=method)[0]}
    mc = monte_carlo_var(w, returns, confidence=confidence, n_scenarios=200_000,
                         method=method.removeprefix("monte_carlo_"), seed=0)
    return {method: float(mc.var)}


def _compliance(before: pd.Series, after: pd.Series, returns: pd.DataFrame, limits, sectors: Mapping | None,
                confidence: float) -> pd.DataFrame:
    from qpo.risk import ComplianceStatus, check_compliance

    if limits is None:
        return pd.DataFrame(columns=COMPLIANCE_COLUMNS)
    if limits.sector_max is not None and sectors is None:
        from qpo.data import load_sectors

        sectors = load_sectors()
    groups = dict(sectors) if sectors is not None else None
    frames = [check_compliance(w, limits, groups=groups, var_values=_var_values(w, returns, limits, confidence),
                               var_label=label) for w, label in ((before, "before:"), (after, "after:"))]
    b, a = (f.set_index("check") for f in frames)
    checks = b.index.append(a.index[~a.index.isin(b.index)])  # a check of the trades' new names too

    def passed(frame: pd.DataFrame) -> list:
        """True pass (or nothing there to check), False breach, None not checked (names without a sector)."""
        status = frame["status"].reindex(checks)
        return [False if s == ComplianceStatus.BREACH else None if s == ComplianceStatus.NOT_CHECKED else True
                for s in status]

    limit = b["limit"].combine_first(a["limit"]).reindex(checks)
    out = pd.DataFrame({"check": checks, "limit": limit.to_numpy(dtype=float),
                        "before": b["value"].reindex(checks).to_numpy(dtype=float),
                        "after": a["value"].reindex(checks).to_numpy(dtype=float),
                        "passed_before": pd.Series(passed(b), dtype=object).to_numpy(),
                        "passed_after": pd.Series(passed(a), dtype=object).to_numpy()},
                       columns=COMPLIANCE_COLUMNS)
    return out.reset_index(drop=True)


# -- the proposal -----------------------------------------------------------------------------------
def _jsonable(x):
    """Plain JSON data: numpy numbers as Python ones, NaN/inf as None, dates as ISO text."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, (pd.Timestamp, dt.date)):
        return x.date().isoformat() if isinstance(x, pd.Timestamp) else x.isoformat()
    return x


def _num(v) -> float:
    return float("nan") if v is None else float(v)


@dataclass(eq=False)
class RebalanceProposal:
    """The trades that take a portfolio to its strategy's target, and the numbers before and after
    (see the module's conventions). ``status`` is ``"draft"`` until saved (then ``"open"``,
    ``"accepted"`` or ``"rejected"``) and ``id`` is set once saved."""

    portfolio: str
    as_of: pd.Timestamp
    prices_as_of: pd.Timestamp
    strategy: Strategy
    result: OptimizationResult
    trades: pd.DataFrame
    weights: pd.DataFrame
    cash_before: float
    cash_after: float
    value_before: float
    value_after: float
    total_cost: float
    turnover: float
    distance_to_target: dict[str, float]
    comparison: pd.DataFrame
    compliance: pd.DataFrame
    account: str
    id: int | None = None
    status: str = "draft"
    ledger_version: int = 0
    violations: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> pd.Series:
        return self.weights["target"]

    def breaches_after(self) -> list[str]:
        """The compliance checks the portfolio fails after the trades, each with its value and limit
        (``"sector Energy 41.20% > 40.00%"``; counts as whole numbers)."""
        out = []
        for row in self.compliance.itertuples(index=False):
            if row.passed_after is False and math.isfinite(float(row.after)):
                count = str(row.check).startswith("min names")
                fmt = (lambda v: f"{v:.0f}") if count else (lambda v: f"{100 * v:.2f}%")
                sign = "<" if count else ">"
                out.append(f"{row.check} {fmt(row.after)} {sign} {fmt(row.limit)}")
        return out

    def summary(self) -> dict[str, Any]:
        """The proposal's numbers as JSON data (what the store keeps as ``summary``)."""
        return _jsonable({
            "portfolio": self.portfolio, "account": self.account,
            "cash_before": self.cash_before, "cash_after": self.cash_after,
            "value_before": self.value_before, "value_after": self.value_after,
            "total_cost": self.total_cost, "turnover": self.turnover, "n_trades": len(self.trades),
            "distance_to_target": self.distance_to_target, "violations": list(self.violations),
            "weights": {c: self.weights[c].to_dict() for c in ("before", "target", "after")},
            "comparison": {m: self.comparison.loc[m].to_dict() for m in self.comparison.index},
            "compliance": self.compliance.to_dict(orient="records"),
            "breaches_after": self.breaches_after(),
        })

    def _result_record(self) -> dict[str, Any]:
        r = self.result
        return _jsonable({"objective": r.objective, "method": r.method, "solver": r.solver, "status": r.status,
                          "expected_return": r.expected_return, "volatility": r.volatility, "sharpe": r.sharpe,
                          "weights": {k: float(v) for k, v in r.weights.items()}, "fallback_reason": r.fallback_reason,
                          "periods_per_year": r.periods_per_year, "risk_free_rate": r.risk_free_rate})

    def to_record(self) -> dict[str, Any]:
        """What :func:`qpo.store.save_proposal` takes."""
        return {"as_of": self.as_of.date(), "prices_as_of": self.prices_as_of.date(),
                "strategy": self.strategy.to_json(),
                "trades": _jsonable(self.trades.to_dict(orient="records")),
                "target": _jsonable(self.target.to_dict()), "summary": self.summary(),
                "result": self._result_record(), "parameters": _jsonable(self.parameters),
                "ledger_version": int(self.ledger_version)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``--json`` output): the record with the id, status and portfolio."""
        rec = self.to_record()
        return _jsonable({"id": self.id, "status": self.status, "portfolio": self.portfolio, "account": self.account,
                          **rec, "as_of": rec["as_of"].isoformat(), "prices_as_of": rec["prices_as_of"].isoformat()})

    @classmethod
    def from_record(cls, row) -> RebalanceProposal:
        """A stored proposal (a :class:`qpo.store.Proposal` row, or a dict of :meth:`to_record`'s keys
        with optional ``id``, ``status`` and ``portfolio``) as a :class:`RebalanceProposal`."""
        if isinstance(row, Mapping):
            get = row.get
            name = row.get("portfolio")
        else:
            def get(k, default=None):
                return getattr(row, k, default)
            owner = getattr(row, "portfolio", None)
            name = getattr(owner, "name", owner)
        summary = get("summary") or {}
        res = get("result") or {}
        weights = pd.DataFrame({c: pd.Series(summary.get("weights", {}).get(c, {}), dtype=float)
                                for c in ("before", "target", "after")})
        weights.index.name = "ticker"
        comp = summary.get("comparison", {})
        comparison = pd.DataFrame({c: [_num(comp.get(m, {}).get(c)) for m in COMPARISON_METRICS]
                                   for c in ("before", "after", "target")}, index=COMPARISON_METRICS)
        comparison.index.name = "metric"
        compliance = pd.DataFrame(summary.get("compliance", []), columns=COMPLIANCE_COLUMNS)
        for c in ("limit", "before", "after"):
            compliance[c] = compliance[c].map(_num).astype(float)
        result = OptimizationResult(
            weights=pd.Series(res.get("weights", {}), dtype=float, name="weight"),
            expected_return=_num(res.get("expected_return")), volatility=_num(res.get("volatility")),
            sharpe=_num(res.get("sharpe")), objective=res.get("objective", ""), method=res.get("method", ""),
            solver=res.get("solver", ""), status=res.get("status", ""),
            periods_per_year=int(res.get("periods_per_year") or 252), risk_free_rate=float(res.get("risk_free_rate") or 0.0),
            fallback_reason=res.get("fallback_reason"))
        trades = pd.DataFrame(list(get("trades") or []), columns=TRADE_COLUMNS)
        for c in ("shares", "price", "notional", "cost"):
            trades[c] = trades[c].astype(float)
        dist = summary.get("distance_to_target") or {}
        return cls(portfolio=str(name or summary.get("portfolio") or ""), as_of=pd.Timestamp(get("as_of")),
                   prices_as_of=pd.Timestamp(get("prices_as_of")), strategy=Strategy.from_json(get("strategy"), check_builds=False),
                   result=result, trades=trades, weights=weights,
                   cash_before=_num(summary.get("cash_before")), cash_after=_num(summary.get("cash_after")),
                   value_before=_num(summary.get("value_before")), value_after=_num(summary.get("value_after")),
                   total_cost=_num(summary.get("total_cost")), turnover=_num(summary.get("turnover")),
                   distance_to_target={k: _num(v) for k, v in dist.items()}, comparison=comparison,
                   compliance=compliance, account=str(summary.get("account") or name or ""),
                   id=get("id"), status=get("status") or "open", ledger_version=int(get("ledger_version") or 0),
                   violations=list(summary.get("violations") or []), parameters=dict(get("parameters") or {}))

    def __repr__(self) -> str:
        n_buy = int((self.trades["side"] == "buy").sum())
        return (f"RebalanceProposal({self.portfolio!r}, {self.status}{f' #{self.id}' if self.id else ''}, prices of "
                f"{self.prices_as_of.date()}: {len(self.trades) - n_buy} sells, {n_buy} buys, turnover {self.turnover:.1%}, "
                f"cost {self.total_cost:,.2f}, cash {self.cash_before:,.2f} -> {self.cash_after:,.2f}"
                + (f"; {len(self.violations)} constraint(s) not met" if self.violations else "") + ")")


# -- planning ---------------------------------------------------------------------------------------
def plan_rebalance(shares, cash: float, prices: pd.DataFrame, strategy=None, *, as_of=None, portfolio: str = "",
                   account: str | None = None, sectors: Mapping[str, str] | None = None, universe=None,
                   ledger_version: int = 0, closes: pd.DataFrame | None = None) -> RebalanceProposal:
    """A rebalance proposal for a portfolio holding ``shares`` (ticker -> shares) and ``cash``, on
    the close ``prices`` (dates x tickers) up to ``as_of`` (default: their last date), to the target
    of ``strategy`` (a :class:`qpo.book.strategy.Strategy`; default ``Strategy.default()``).

    ``sectors`` (ticker -> sector; default :func:`qpo.load_sectors`) turns the strategy's
    ``sector_max`` into group caps and feeds the sector compliance checks. ``universe`` adds names
    the target may buy besides those held and those the strategy names (needed for a portfolio of
    cash only). ``ledger_version`` is the ledger's last transaction id the holdings come from (the
    store refuses to accept the proposal once the ledger moved on). ``closes``: the closes shares
    trade at where they differ from the adjusted ``prices`` (a vendor's actual closes: before a
    later dividend or split the adjusted close is not what a share cost that day); each name's last
    one on or before the price date values the holdings and prices the trades (default: ``prices``'
    own; a name without one keeps its adjusted close). Touches no store.

    Raises
    ------
    DataError
        a name without prices, too short a common history, ``as_of`` outside the prices.
    InfeasibleError, ProblemError
        the strategy's target cannot be built (the message says which constraints conflict).
    """
    strategy = _strategy(strategy)
    held = _holdings(shares)
    cash = check_amount(cash, "cash", "nonnegative")
    prices = _price_panel(prices)
    when = check_as_of(prices.index, as_of)
    prices_as_of = prices.index[prices.index <= when][-1]
    extra = [] if universe is None else [universe] if isinstance(universe, str) else list(universe)
    for t in extra:
        if not isinstance(t, str) or not t.strip():
            raise InvalidValueError(f"universe names tickers (text), got {quote(t)}")
    names = sorted(set(universe_of(held, strategy.constraints)) | set(extra))
    if not names:
        raise InvalidValueError("the portfolio holds only cash and its strategy names no ticker: say what it may buy "
                                "(universe=[...], or tickers in the strategy's constraints)")
    returns, last = _window(prices, names, prices_as_of, int(strategy.lookback))
    if closes is not None:  # what a share cost that day, where the data has it
        traded = closes.reindex(columns=names).loc[:prices_as_of].ffill()
        if len(traded):
            paid = traded.iloc[-1]
            last = paid.where(paid > 0, last)
    px = last.reindex(names).astype(float)
    held_u = held.reindex(names).fillna(0.0)
    value = float(cash + held_u @ px)
    if value <= 0:
        raise InvalidValueError("the portfolio is worth nothing (no shares of value, no cash): deposit cash first")
    before = (held_u * px / value).rename("before")
    problem = strategy.problem(returns, current_weights=before.to_dict(), sectors=sectors)
    loose = strategy.constraints_for(list(returns.columns), sectors, before.to_dict(), within_limits=False)
    limits_as_caps = repr((problem.constraints.max_weight, problem.constraints.group_max)) != repr(
        (loose.max_weight, loose.group_max))
    try:  # the portfolio's limits as caps too; where they cannot hold (a turnover cap too tight to get
        # there), the strategy's own constraints, and the compliance table shows what is breached
        result = optimize(problem, **strategy.optimize_kwargs())
    except InfeasibleError:
        if not limits_as_caps:
            raise
        problem = strategy.problem(returns, current_weights=before.to_dict(), sectors=sectors, within_limits=False)
        result = optimize(problem, **strategy.optimize_kwargs())
        limits_as_caps = False
    constraints = problem.constraints
    target = result.weights.reindex(names).fillna(0.0).clip(lower=0.0).rename("target")
    rounded = round_trades(held_u.to_numpy(), px.to_numpy(), cash, target.to_numpy(), problem.resolved,
                           commission=float(strategy.commission), spread_bps=float(strategy.spread_bps),
                           fractional=bool(strategy.fractional))
    after = pd.Series(rounded.weights_after, index=names, name="after")
    weights = pd.DataFrame({"before": before, "target": target, "after": after})
    weights.index.name = "ticker"
    trades = rounded.trades()
    confidence = float(strategy.confidence)
    rows = {label: _metrics(w, target, returns, problem, confidence)
            for label, w in (("before", before), ("after", after), ("target", target))}
    comparison = pd.DataFrame(rows).reindex(COMPARISON_METRICS)[["before", "after", "target"]]
    comparison.index.name = "metric"
    compliance = _compliance(before, after, returns, strategy.limits, sectors, confidence)
    gap = (after - target).abs()
    parameters = {"universe": names, "lookback": int(strategy.lookback), "periods": len(returns),
                  "window": [returns.index[0].date().isoformat(), returns.index[-1].date().isoformat()],
                  "budget": float(constraints.budget), "fractional": bool(strategy.fractional),
                  "limits_as_caps": limits_as_caps, "closes": {t: float(v) for t, v in px.items()},
                  "commission": float(strategy.commission), "spread_bps": float(strategy.spread_bps),
                  "transaction_costs": constraints.transaction_costs if not isinstance(constraints.transaction_costs, Mapping)
                  else dict(constraints.transaction_costs)}
    return RebalanceProposal(
        portfolio=str(portfolio), as_of=pd.Timestamp(when), prices_as_of=pd.Timestamp(prices_as_of), strategy=strategy,
        result=result, trades=trades, weights=weights, cash_before=float(cash), cash_after=float(rounded.cash_after),
        value_before=value, value_after=float(rounded.value_after), total_cost=float(trades["cost"].sum()),
        turnover=float((after - before).abs().sum()),
        distance_to_target={"max_abs": float(gap.max()), "l1": float(gap.sum())},
        comparison=comparison, compliance=compliance, account=str(account) if account else str(portfolio),
        ledger_version=int(ledger_version), violations=list(rounded.violations), parameters=parameters)

"""A client portfolio's stored strategy: what its rebalance proposals optimize, under which
constraints, checked against which compliance limits, at which trading costs.

:class:`Strategy` is stored as JSON (:meth:`Strategy.to_json`, ``schema_version`` 1) and read back
with :meth:`Strategy.from_json`, which refuses anything the optimizer would not take: an unknown
key, a wrong type, an unknown objective or estimator, options the objective does not take,
:class:`~qpo.optimization.Constraints` or :class:`~qpo.risk.Limits` that do not construct, a
non-finite number. Every :class:`Strategy` that constructs builds a problem: construction runs
:meth:`Strategy.check_builds` on a small synthetic sample (the engine's own checks of the objective,
its options and the constraints it supports), so a stored strategy never fails at proposal time for
a reason it could have been refused for when stored.

JSON form (every key but ``schema_version`` optional; a missing key takes its default)::

    {"schema_version": 1, "objective": "max_utility", "objective_options": {"risk_aversion": 3},
     "mean": "historical", "covariance": "ledoit_wolf", "lookback": 756, "risk_free_rate": 0.0,
     "constraints": {"max_weight": 0.2, "max_turnover": 0.3}, "sector_max": 0.4,
     "limits": {"max_weight": 0.3, "sector_max": 0.4, "min_names": 5, "var_limit": 0.03},
     "benchmark": null, "rebalance_band": 0.05, "fractional": false, "commission": 0.0,
     "spread_bps": 5.0, "confidence": 0.95}

``constraints`` are the fields of :class:`qpo.Constraints` but ``current_weights`` (a proposal sets
them: the weights held then); ``sector_max`` (one cap for every sector, or ``{sector: cap}``) becomes
``groups``/``group_max`` over a proposal's tickers by their sectors (:func:`qpo.load_sectors` unless
given). ``limits`` are the compliance limits (:class:`qpo.Limits`): a missing key means the house
limits of :data:`DEFAULT_LIMITS`, ``{}`` means none is checked.

A client portfolio holds no short positions and no cash below zero: the constraints must be
long-only with a budget in (0, 1] (and a leverage, if any, of at least the budget).

``benchmark`` is a default only: the portfolio's own ``benchmark`` field (``qpo portfolio
create/update --benchmark``) is the source of truth, and the strategy's is used when that is empty.
Read a portfolio's benchmark with :func:`qpo.store.portfolios.portfolio_benchmark`.
"""
from __future__ import annotations

import contextvars
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import quote
from qpo.book._strategy_fields import (
    _REAL_SECTORS,
    CONSTRAINT_FIELDS,
    COVARIANCES,
    DEFAULT_LIMITS,
    LIMIT_FIELDS,
    MAX_LOOKBACK,
    MEANS,
    MIN_LOOKBACK,
    NO_COST_OBJECTIVES,
    OBJECTIVES,
    SCHEMA_VERSION,
    StrategyError,
    _check_capacity,
    _choice,
    _constraints,
    _constraints_json,
    _fail,
    _known_sectors,
    _limits,
    _name,
    _named_tickers,
    _number,
    _number_map,
    _options,
    _sector_max,
    _tickers,
    _whole,
)
from qpo.data.sectors import UNCLASSIFIED
from qpo.errors import InfeasibleError, QpoError
from qpo.optimization import Constraints, PortfolioProblem
from qpo.optimization.engine import OBJECTIVE_OPTIONS
from qpo.risk.compliance import Limits
from qpo.store.portfolios import register_strategy_check

#: whether a Strategy being made builds its problem on a sample (False only for stored strategies)
_CHECK_BUILDS: contextvars.ContextVar[bool] = contextvars.ContextVar("qpo_strategy_check_builds", default=True)


# -- the strategy -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Strategy:
    """A client portfolio's strategy: the objective and estimators of its target, the constraints
    the target keeps, the compliance limits it is checked against, and the trading costs and band
    of its rebalance proposals. See the module for the JSON form; every field is checked when the
    strategy is made (a :class:`StrategyError` names the field and what is valid)."""

    objective: str = "min_variance"
    objective_options: dict = field(default_factory=dict)
    mean: str = "historical"
    covariance: str = "ledoit_wolf"
    lookback: int = 756
    risk_free_rate: float = 0.0
    constraints: Constraints = field(default_factory=Constraints)
    sector_max: float | dict | None = None
    limits: Limits = DEFAULT_LIMITS
    benchmark: str | None = None
    rebalance_band: float = 0.05
    fractional: bool = False
    commission: float = 0.0
    spread_bps: float = 5.0
    confidence: float = 0.95

    def __post_init__(self):
        def put(k, v):
            object.__setattr__(self, k, v)

        if self.objective == "hrp":
            raise _fail("objective", "'hrp' takes no constraints, and a proposal always has current weights and costs; "
                                     f"use risk_parity (valid: {', '.join(OBJECTIVES)})")
        put("objective", _choice("objective", self.objective, OBJECTIVES))
        put("objective_options", _options(self.objective, self.objective_options if self.objective_options is not None else {}))
        put("mean", _choice("mean", self.mean, MEANS))
        put("covariance", _choice("covariance", self.covariance, COVARIANCES))
        put("lookback", _whole("lookback", self.lookback, MIN_LOOKBACK, MAX_LOOKBACK))
        put("risk_free_rate", _number("risk_free_rate", self.risk_free_rate, -1.0, 1.0, valid="annualized, 0.02 = 2 %"))
        put("constraints", _constraints(self.constraints if self.constraints is not None else {}))
        put("sector_max", _sector_max(self.sector_max))
        if self.sector_max is not None and self.constraints.groups is not None:
            raise _fail("sector_max", "and constraints.groups are both set; give sector caps one way")
        if self.limits is None:
            raise _fail("limits", "cannot be null: {} checks no limit (leave the key out for the house limits)")
        put("limits", _limits(self.limits))
        if _CHECK_BUILDS.get():  # when a strategy is made or stored, not when one stored before is read back
            _known_sectors("sector_max", self.sector_max)  # a near miss ("Information technology") caps nothing
            _known_sectors("limits.sector_max", self.limits.sector_max)
        put("benchmark", None if self.benchmark is None else _name("benchmark", self.benchmark, 40))
        put("rebalance_band", _number("rebalance_band", self.rebalance_band, 0.0, 1.0, lo_open=True,
                                      valid="the largest |weight - target| before a proposal is due, 0.05 = 5 %"))
        if not isinstance(self.fractional, (bool, np.bool_)):
            raise _fail("fractional", f"must be true or false, got {quote(self.fractional, 30)}")
        put("fractional", bool(self.fractional))
        put("commission", _number("commission", self.commission, 0.0, 1e9, valid="currency per trade"))
        put("spread_bps", _number("spread_bps", self.spread_bps, 0.0, 10_000.0, hi_open=True, valid="5 = 0.05 %"))
        put("confidence", _number("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True, valid="e.g. 0.95"))
        if _CHECK_BUILDS.get():
            self.check_builds()

    # -- JSON ---------------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Strategy:
        """Minimum variance (Ledoit-Wolf covariance, three years of daily returns), long-only and
        fully invested, the house limits, a 5 % band, whole shares, 5 bp spread, no commission."""
        return cls()

    def to_json(self) -> dict:
        """Plain JSON data (a new dict each call) that :meth:`from_json` reads back to an equal strategy."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "constraints":
                v = _constraints_json(v)
            elif f.name == "limits":
                v = asdict(v)
            out[f.name] = json.loads(json.dumps(v, allow_nan=False))  # a deep copy of plain data
        return out

    @classmethod
    def from_json(cls, obj, *, check_builds: bool = True) -> Strategy:
        """The strategy of a JSON object (a dict, or its JSON text). Refuses an unknown key, a wrong
        type or value, a missing or unsupported ``schema_version`` (:class:`StrategyError`).
        ``check_builds=False`` skips building its problem on a sample (:meth:`check_builds`), for a
        strategy read back from the store, which was checked whole when it was stored; every field is
        still checked."""
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
                raise StrategyError(f"a strategy is a JSON object; this text is not JSON{where}") from None
        if not isinstance(obj, Mapping):
            raise StrategyError(f"a strategy is a JSON object (schema_version, objective, ...), got {quote(obj, 30)}")
        keys = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in obj if k not in keys and k != "schema_version")
        if unknown:
            raise StrategyError(f"strategy: unknown key {quote(unknown[0], 30)}; valid: schema_version, {', '.join(keys)}")
        if "schema_version" not in obj:
            raise StrategyError(f"strategy: schema_version is missing; this qpo reads schema_version {SCHEMA_VERSION}")
        version = obj["schema_version"]
        if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version != SCHEMA_VERSION:
            raise StrategyError(f"strategy: schema_version {quote(version, 20)} is not supported; this qpo reads "
                                f"schema_version {SCHEMA_VERSION}")
        token = _CHECK_BUILDS.set(bool(check_builds))
        try:
            return cls(**{k: v for k, v in obj.items() if k != "schema_version"})
        finally:
            _CHECK_BUILDS.reset(token)

    def __eq__(self, other) -> bool:
        return isinstance(other, Strategy) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        default = Strategy.default().to_json()
        diff = {k: v for k, v in self.to_json().items() if v != default.get(k)}
        return f"Strategy({', '.join(f'{k}={v!r}' for k, v in diff.items())})"

    # -- changes ------------------------------------------------------------------------------------
    def with_overrides(self, **changes) -> Strategy:
        """A new strategy with ``changes``: any field (``objective``, ``spread_bps``, ...; a dict
        ``constraints`` or ``limits`` changes only the fields it names, a :class:`Constraints` or
        :class:`Limits` replaces them), a :class:`Constraints` field (``max_weight``,
        ``max_turnover``, ...), a :class:`Limits` field it does not share with Constraints
        (``min_names``, ``var_limit``, ``var_method``; the limits' ``max_weight`` and
        ``sector_max`` change through ``limits={...}``), or an option of the objective
        (``target_return``, ``risk_aversion``). A new objective keeps only the options it takes.
        Checked whole, as a stored strategy is."""
        own = {f.name for f in fields(self)}
        limit_only = set(LIMIT_FIELDS) - set(CONSTRAINT_FIELDS) - own
        option_names = {k for opts in OBJECTIVE_OPTIONS.values() for k in opts} - own
        unknown = sorted(set(changes) - own - set(CONSTRAINT_FIELDS) - limit_only - option_names)
        if unknown:
            raise StrategyError(f"strategy: cannot change {quote(unknown[0], 30)}; valid: the fields "
                                f"{', '.join(sorted(own))}, the constraints' and min_names, var_limit, var_method")
        top = {k: v for k, v in changes.items() if k in own}
        constraint_changes = {k: v for k, v in changes.items() if k in CONSTRAINT_FIELDS and k not in own}
        limit_changes = {k: v for k, v in changes.items() if k in limit_only}
        option_changes = {k: v for k, v in changes.items() if k in option_names}
        if isinstance(top.get("constraints"), Mapping):
            top["constraints"] = {**_constraints_json(self.constraints), **top["constraints"]}
        if constraint_changes:
            base = top.get("constraints", self.constraints)
            base = _constraints_json(base) if isinstance(base, Constraints) else dict(base)
            top["constraints"] = {**base, **constraint_changes}
        if isinstance(top.get("limits"), Mapping):
            top["limits"] = {**asdict(self.limits), **top["limits"]}
        if limit_changes:
            base = top.get("limits", self.limits)
            top["limits"] = {**(asdict(base) if isinstance(base, Limits) else dict(base)), **limit_changes}
        objective = top.get("objective", self.objective)
        if "objective_options" not in top:
            takes = OBJECTIVE_OPTIONS.get(objective, {}) if isinstance(objective, str) else {}
            kept = {k: v for k, v in self.objective_options.items() if k in takes}
            if kept != self.objective_options or option_changes:
                top["objective_options"] = {**kept, **option_changes}
        elif option_changes:
            top["objective_options"] = {**dict(top["objective_options"]), **option_changes}
        return replace(self, **top)

    # -- building -----------------------------------------------------------------------------------
    def optimize_kwargs(self) -> dict:
        """What :func:`qpo.optimize` takes besides the problem: ``objective`` and its options
        (``qpo.optimize(strategy.problem(returns), **strategy.optimize_kwargs())``)."""
        return {"objective": self.objective, **dict(self.objective_options)}

    def charges_costs(self) -> bool:
        """Whether the objective charges transaction costs (risk parity and maximum
        diversification do not: their scale-free forms cannot)."""
        return self.objective not in NO_COST_OBJECTIVES

    def constraints_for(self, tickers, sectors: Mapping[str, str] | None = None,
                        current_weights: Mapping[str, float] | None = None, *, within_limits: bool = True) -> Constraints:
        """The :class:`qpo.Constraints` of a problem over ``tickers``:

        * ``sector_max`` as ``groups``/``group_max`` by ``sectors`` (ticker -> sector; default
          :func:`qpo.load_sectors`; a ticker without one is "Unclassified"); caps of sectors no
          ticker belongs to are dropped;
        * ``current_weights`` (ticker -> weight held now, of the value incl. cash) as given; without
          them there is nothing to turn over, and ``max_turnover`` is dropped. With them the budget
          moves toward the weight invested now where ``max_turnover`` needs it (30 % cash under a
          10 % cap invests 10 %);
        * ``transaction_costs`` ``spread_bps / 1e4`` unless the constraints set their own (and the
          objective charges costs);
        * the compliance limits' ``max_weight`` and ``sector_max`` as caps too (the tighter wins), so
          that the target complies with the portfolio's own limits, wherever the names can hold them
          fully invested (else the strategy's own caps stand and the proposal's compliance table
          shows the breach).

        Raises :class:`~qpo.errors.InfeasibleError` when the bounds cannot hold the budget over these
        tickers (a 10 % cap on 5 names cannot be fully invested: it is refused, never loosened), and
        :class:`StrategyError` when the constraints name tickers outside ``tickers``.
        """
        return self._constraints_over(_tickers(tickers), sectors, current_weights, capacity=True,
                                      within_limits=within_limits)

    def _constraints_over(self, names: list[str], sectors, current_weights, *, capacity: bool,
                          within_limits: bool = False) -> Constraints:
        c = self.constraints
        outside = sorted(_named_tickers(c) - set(names))
        if outside:
            raise _fail("constraints", f"name {', '.join(outside[:5])}{' ...' if len(outside) > 5 else ''}, which "
                                       f"{'is' if len(outside) == 1 else 'are'} not among the {len(names)} tickers given; "
                                       "add them to the universe or drop them from the strategy")
        changes: dict[str, Any] = {}
        budget = float(c.budget)
        if current_weights is None:
            changes["max_turnover"] = None
        else:
            cw = _number_map("current_weights", current_weights, None)
            changes["current_weights"] = cw
            if c.max_turnover is not None:
                invested = float(sum(cw.values()))
                budget = min(max(budget, invested - c.max_turnover), invested + c.max_turnover)
                changes["budget"] = budget
        if self.sector_max is not None:
            if sectors is None:
                from qpo.data import load_sectors

                sectors = load_sectors()
            _known_sectors("sector_max", self.sector_max, sectors)
            groups = {t: str(sectors.get(t, UNCLASSIFIED)) for t in names}
            present = set(groups.values())
            # a cap on every sector caps the sectors; names without one are no sector (not one capped group)
            caps = ({s: v for s, v in self.sector_max.items() if s in present} if isinstance(self.sector_max, dict)
                    else {s: float(self.sector_max) for s in present if s != UNCLASSIFIED})
            if caps:
                changes.update(groups=groups, group_max=caps, group_min=None)
        if c.transaction_costs is None and self.charges_costs():
            changes["transaction_costs"] = float(self.spread_bps) / 1e4
        out = replace(c, **changes) if changes else c
        if capacity:
            _check_capacity(out, names, budget)
        if capacity and within_limits:
            tight = self._within_limits(out, names, sectors)
            if tight is not out:
                try:  # the limits as caps too, where the names can hold them; else the compliance table says
                    _check_capacity(tight, names, budget)
                    return tight
                except InfeasibleError:
                    return out
        return out

    def _within_limits(self, c: Constraints, names: list[str], sectors) -> Constraints:
        """``c`` with the compliance limits' single-name and sector caps added (the tighter of the
        two wins), so that the target a proposal builds complies with the portfolio's own limits.
        Long-only only; sector caps only where the groups are the sectors (or there are none)."""
        lim = self.limits
        if not c.long_only or lim is None:
            return c
        changes: dict[str, Any] = {}
        if lim.max_weight is not None:
            cap = float(lim.max_weight)
            cur = c.max_weight
            new = ({t: min(float(dict(cur).get(t, 1.0)), cap) for t in names} if isinstance(cur, Mapping)
                   else min(float(cur), cap))
            floors = _number_map("min_weight", c.min_weight, None) if isinstance(c.min_weight, Mapping) else (
                {t: float(c.min_weight) for t in names} if c.min_weight is not None else {})
            if all(v <= (new[t] if isinstance(new, dict) else new) + 1e-12 for t, v in floors.items() if t in names):
                changes["max_weight"] = new
        if lim.sector_max is not None and (c.groups is None or self.sector_max is not None):
            if c.groups is not None:
                groups = {t: str(g) for t, g in dict(c.groups).items()}
            else:
                if sectors is None:
                    from qpo.data import load_sectors

                    sectors = load_sectors()
                _known_sectors("limits.sector_max", lim.sector_max, sectors)
                groups = {t: str(sectors.get(t, UNCLASSIFIED)) for t in names}
            present = set(groups.values())
            mine = dict(c.group_max) if c.group_max is not None else {}
            theirs = ({s: float(v) for s, v in lim.sector_max.items() if s in present}
                      if isinstance(lim.sector_max, dict) else
                      {s: float(lim.sector_max) for s in present if s != UNCLASSIFIED})
            caps = {s: min(float(mine[s]), theirs[s]) if s in mine else theirs[s] for s in theirs}
            caps |= {s: float(v) for s, v in mine.items() if s not in caps}
            if caps and caps != mine:
                changes.update(groups=groups, group_max=caps)
                if c.group_min is None:
                    changes["group_min"] = None
        return replace(c, **changes) if changes else c

    def problem(self, returns: pd.DataFrame, current_weights: Mapping[str, float] | None = None,
                sectors: Mapping[str, str] | None = None, *, within_limits: bool = True) -> PortfolioProblem:
        """The :class:`qpo.PortfolioProblem` of the last ``lookback`` periods of ``returns``
        (periods x tickers, no gaps), by the strategy's estimators, constraints
        (:meth:`constraints_for` its columns; ``within_limits``: with the limits' caps) and
        risk-free rate."""
        return self._problem(returns, current_weights, sectors, capacity=True, within_limits=within_limits)

    def _problem(self, returns, current_weights, sectors, *, capacity: bool,
                 within_limits: bool = False) -> PortfolioProblem:
        from qpo.errors import DataError

        if not isinstance(returns, pd.DataFrame):
            raise DataError(f"returns must be a DataFrame of periods x tickers, got {type(returns).__name__}")
        window = returns.iloc[-self.lookback:]
        if len(window) < MIN_LOOKBACK:
            raise DataError(f"{len(window)} periods of returns; a strategy estimates from at least {MIN_LOOKBACK}")
        constraints = self._constraints_over(_tickers(returns.columns), sectors, current_weights, capacity=capacity,
                                             within_limits=within_limits)
        return PortfolioProblem.from_returns(window, self.mean, self.covariance, constraints,
                                             risk_free_rate=self.risk_free_rate)

    def check_builds(self, returns_sample: pd.DataFrame | None = None) -> PortfolioProblem:
        """Build the problem of ``returns_sample`` (default: a small synthetic sample over the
        tickers the constraints name plus enough others to hold the budget) and run the engine's
        own checks of the objective, its options and the constraints it supports; returns the
        problem. Raises :class:`StrategyError` (or what :meth:`constraints_for` raises) when it
        cannot build: a strategy that constructs has passed this on the synthetic sample."""
        from qpo.optimization.classical import check_supported
        from qpo.optimization.engine import resolve_options

        synthetic = returns_sample is None
        if synthetic:
            _refuse_impossible(self)
        sample = _sample(self) if returns_sample is None else returns_sample
        current = None
        if self.constraints.max_turnover is not None:
            current = {t: 1.0 / sample.shape[1] * self.constraints.budget for t in sample.columns}
        try:
            sectors = {t: f"_sector{i}" for i, t in enumerate(sample.columns)} if synthetic else None
            # the synthetic sample checks structure: whether the bounds can hold the budget depends
            # on the names of each proposal (constraints_for refuses then)
            token = _REAL_SECTORS.set(not synthetic)
            try:
                problem = self._problem(sample, current, sectors, capacity=not synthetic)
            finally:
                _REAL_SECTORS.reset(token)
            check_supported(problem, self.objective)
            resolve_options(problem, self.objective, dict(self.objective_options))
        except InfeasibleError as exc:
            if synthetic:
                raise _fail("constraints", str(exc)) from None
            raise
        except QpoError as exc:
            if isinstance(exc, StrategyError):
                raise
            raise _fail("objective", f"{self.objective} cannot be built with these constraints: {exc}") from None
        return problem


def _refuse_impossible(strategy: Strategy) -> None:
    """Refuse bounds that no universe can hold (every proposal of them would fail): floors the
    constraints name one by one (``min_weight`` by ticker, ``group_min``) summing above the budget, a
    scalar ``min_weight`` that the names the constraints name (each must hold it) cannot all hold
    within the budget (a floor above its own cap is refused by the constraints). Caps too small for
    the budget depend on the number of names a proposal has and are refused then (or by the command
    line, over the book's prices)."""
    c = strategy.constraints
    budget = float(c.budget)
    valid = f"the floors must sum to at most the budget {budget:.1%}"
    if isinstance(c.min_weight, Mapping):
        floors = {str(t): float(v) for t, v in c.min_weight.items()}
        total = sum(max(v, 0.0) for v in floors.values())
        if total > budget + 1e-9:
            shown = ", ".join(f"{t} {v:.1%}" for t, v in list(floors.items())[:4]) + (" ..." if len(floors) > 4 else "")
            raise _fail("constraints", f"min_weight asks for {total:.1%} ({shown}), above the budget {budget:.1%}: no "
                                       f"proposal could hold it; {valid}")
    elif isinstance(c.min_weight, numbers.Real) and float(c.min_weight) > 0:
        lo = float(c.min_weight)
        named = sorted(_named_tickers(c))
        must = max(1, len(named))
        if lo * must > budget + 1e-9:
            which = f"each of the {must} tickers the constraints name" if named else "one name"
            raise _fail("constraints", f"min_weight {lo:.1%} for {which} asks for {lo * must:.1%}, above the budget "
                                       f"{budget:.1%} (every name a proposal holds must hold min_weight): min_weight "
                                       f"times the number of names must be at most the budget")
    group_min = dict(c.group_min) if c.group_min is not None else {}
    if group_min:
        total = sum(max(float(v), 0.0) for v in group_min.values())
        if total > budget + 1e-9:
            raise _fail("constraints", f"group_min asks for {total:.1%} over {len(group_min)} group(s), above the "
                                       f"budget {budget:.1%}: no proposal could hold it; {valid}")


def _sample(strategy: Strategy) -> pd.DataFrame:
    """Synthetic daily returns over the tickers the constraints name and a few others
    (deterministic: the same strategy, the same sample); refuses scalar bounds that no number of
    names can hold the budget between."""
    c = strategy.constraints
    named = sorted(_named_tickers(c))
    hi = float(c.max_weight) if isinstance(c.max_weight, numbers.Real) else 1.0
    if isinstance(strategy.sector_max, numbers.Real):  # each synthetic name is its own sector
        hi = min(hi, float(strategy.sector_max))
    lo = float(c.min_weight) if isinstance(c.min_weight, numbers.Real) else 0.0
    n = len(named) + 8
    if lo > 0:
        most = math.floor(min(c.budget / lo, 1e9) + 1e-9)
        if most < math.ceil(c.budget / hi - 1e-9):
            raise _fail("constraints", f"min_weight {lo:g} and max_weight {hi:g}: no number of names holds the budget "
                                       f"{c.budget:g} between them")
        n = max(min(n, most), len(named))
    names = named + [f"_S{i}" for i in range(n - len(named))]
    rng = np.random.default_rng(len(names))
    periods = max(MIN_LOOKBACK + 10, 30)
    data = rng.normal(0.0005, 0.01, size=(periods, len(names)))
    return pd.DataFrame(data, index=pd.bdate_range("2020-01-01", periods=periods), columns=names)


def _check_stored(obj) -> None:
    """What the store runs on a strategy before storing it: the whole :class:`Strategy` check."""
    Strategy.from_json(obj)


register_strategy_check(_check_stored)

__all__ = ["COVARIANCES", "DEFAULT_LIMITS", "MEANS", "OBJECTIVES", "SCHEMA_VERSION", "Strategy", "StrategyError"]

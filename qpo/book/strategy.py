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
"""
from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import REQUIRED, check_label, is_number, quote
from qpo.errors import InfeasibleError, InvalidValueError, QpoError
from qpo.optimization import Constraints, PortfolioProblem
from qpo.optimization.engine import OBJECTIVE_OPTIONS
from qpo.risk.compliance import Limits

#: the JSON schema version :meth:`Strategy.to_json` writes and :meth:`Strategy.from_json` reads
SCHEMA_VERSION = 1
#: the longest message a strategy error has
MAX_MESSAGE = 300
#: the fewest return periods a strategy estimates from (as a rebalance proposal does)
MIN_LOOKBACK = 20
MAX_LOOKBACK = 100_000
#: the house compliance limits of :meth:`Strategy.default` (those the daily report checked before
#: portfolios kept their own)
DEFAULT_LIMITS = Limits(max_weight=0.30, sector_max=0.40, min_names=5, var_limit=0.03)

MEANS = ("historical", "ewma")
COVARIANCES = ("sample", "ewma", "ledoit_wolf", "oas", "factor")
#: the objectives a stored strategy may name: qpo.optimize's continuous ones but ``hrp``, which
#: takes no constraints (a proposal always has current weights and costs)
OBJECTIVES = tuple(o for o in OBJECTIVE_OPTIONS if o != "hrp")
#: objectives whose scale-free form charges no transaction costs (qpo.optimization.model.HOMOGENIZED
#: but max_sharpe): a proposal adds none for them
NO_COST_OBJECTIVES = ("risk_parity", "max_diversification")
#: the Constraints fields a strategy stores (current_weights is the proposal's)
CONSTRAINT_FIELDS = tuple(f.name for f in fields(Constraints) if f.name != "current_weights")
LIMIT_FIELDS = tuple(f.name for f in fields(Limits))
_MAPPING_FIELDS = {"min_weight", "max_weight", "transaction_costs", "market_impact"}  # a number or ticker -> number
_FLOAT_FIELDS = {"budget", "leverage", "max_turnover", "max_tracking_error", "min_position"}
_WEIGHT_MAPS = {"group_min", "group_max", "benchmark_weights"}  # name -> number


class StrategyError(InvalidValueError):
    """A strategy that cannot be stored or built: the message names the key and what is valid."""

    def __init__(self, message: str):
        super().__init__(message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "...")


def _fail(key: str, what: str) -> StrategyError:
    return StrategyError(f"strategy {key}: {what}")


# -- value checks -----------------------------------------------------------------------------------
def _number(key: str, v, lo: float | None = None, hi: float | None = None, *, lo_open=False, hi_open=False,
            valid: str = "") -> float:
    ok = is_number(v)
    if ok:
        x = float(v)
        ok = not ((lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and (x >= hi if hi_open else x > hi)))
    if not ok:
        bound = " and ".join(([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else [])
                             + ([f"{'<' if hi_open else '<='} {hi:g}"] if hi is not None else []))
        raise _fail(key, f"must be a finite number{' ' + bound if bound else ''}{f' ({valid})' if valid else ''}, "
                         f"got {quote(v, 30)}")
    return float(v)


def _whole(key: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
        raise _fail(key, f"must be a whole number from {lo} to {hi}, got {quote(v, 30)}")
    return int(v)


def _choice(key: str, v, valid) -> str:
    if not isinstance(v, str) or v not in valid:
        raise _fail(key, f"unknown {quote(v, 30)}; valid: {', '.join(valid)}")
    return v


def _name(key: str, v, max_len: int = 100) -> str:
    try:
        return check_label(v, key, max_len, error=StrategyError)
    except StrategyError as exc:
        raise _fail(key, str(exc).removeprefix(key + " ")) from None


def _mapping(key: str, v) -> dict:
    if not isinstance(v, (Mapping, pd.Series)):
        raise _fail(key, f"must be an object (name -> value), got {quote(v, 30)} (a {type(v).__name__})")
    out = {}
    for k in dict(v):
        _name(f"{key} key", k)
    for k, x in dict(v).items():
        out[str(k).strip()] = x
    return out


def _number_map(key: str, v, lo: float | None = 0.0) -> dict[str, float]:
    return {k: _number(f"{key}[{k!r}]", x, lo) for k, x in _mapping(key, v).items()}


# -- objective options ------------------------------------------------------------------------------
def _options(objective: str, given) -> dict:
    valid = OBJECTIVE_OPTIONS[objective]
    opts = _mapping("objective_options", given)
    unknown = sorted(set(opts) - set(valid))
    if unknown:
        takes = f"it takes {', '.join(valid)}" if valid else "it takes none"
        raise _fail("objective_options", f"{objective} does not take {', '.join(map(repr, unknown[:4]))}; {takes}")
    missing = [k for k, v in valid.items() if v is REQUIRED and k not in opts]
    if missing:
        raise _fail("objective_options", f"{objective} needs {', '.join(missing)} (annualized), e.g. "
                                         f'{{"{missing[0]}": 0.15}}')
    out: dict[str, Any] = {}
    for k, v in opts.items():
        where = f"objective_options.{k}"
        if k == "target_return":
            out[k] = _number(where, v, -1.0, 10.0, valid="annualized, 0.1 = 10 %")
        elif k == "target_volatility":
            out[k] = _number(where, v, 0.0, 10.0, lo_open=True, valid="annualized, 0.15 = 15 %")
        elif k == "risk_aversion":
            out[k] = _number(where, v, 0.0, 1e6, lo_open=True)
        elif k == "confidence":
            out[k] = _number(where, v, 0.0, 1.0, lo_open=True, hi_open=True, valid="e.g. 0.95")
        elif k == "risk_budgets":
            if v is not None:
                raise _fail(where, "is not stored with a strategy (it must name every ticker of each proposal "
                                   "exactly); null gives every name an equal share of risk")
            out[k] = None
        elif isinstance(v, (str, bool, type(None))) or is_number(v):  # an option qpo grows later: plain JSON
            out[k] = float(v) if is_number(v) and not isinstance(v, numbers.Integral) else v
        else:
            raise _fail(where, f"must be a number, text, true/false or null, got {quote(v, 30)}")
    return out


# -- constraints and limits -------------------------------------------------------------------------
def _constraints(given) -> Constraints:
    """A Constraints of plain data (floats, dicts of floats) from a Constraints or a dict of its
    fields, checked as a client portfolio's (long-only, budget in (0, 1])."""
    if isinstance(given, Constraints):
        if given.current_weights is not None:
            raise _fail("constraints", "current_weights is set by each proposal (the weights held then); "
                                       "a strategy does not store it")
        raw = {f: getattr(given, f) for f in CONSTRAINT_FIELDS}
    else:
        raw = _mapping("constraints", given)
        if "current_weights" in raw:
            raise _fail("constraints", "current_weights is set by each proposal (the weights held then); "
                                       "a strategy does not store it")
        unknown = sorted(set(raw) - set(CONSTRAINT_FIELDS))
        if unknown:
            raise _fail("constraints", f"unknown field {quote(unknown[0], 30)}; valid: {', '.join(CONSTRAINT_FIELDS)}")
    default = Constraints()
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        where = f"constraints.{k}"
        if v is None:
            if k in ("max_weight", "budget", "long_only"):
                raise _fail(where, f"cannot be null (leave it out for the default {getattr(default, k)!r})")
            kw[k] = None
        elif k == "long_only":
            if not isinstance(v, (bool, np.bool_)):
                raise _fail(where, f"must be true or false, got {quote(v, 30)}")
            kw[k] = bool(v)
        elif k in _MAPPING_FIELDS:
            lo = 0.0 if k in ("transaction_costs", "market_impact") else None
            kw[k] = _number(where, v, lo) if not isinstance(v, (Mapping, pd.Series)) else _number_map(where, v, lo)
        elif k in _FLOAT_FIELDS:
            kw[k] = _number(where, v)
        elif k in _WEIGHT_MAPS:
            kw[k] = _number_map(where, v, None)
        elif k == "groups":
            kw[k] = {t: _name(f"{where}[{t!r}]", g) for t, g in _mapping(where, v).items()}
        elif k == "max_assets":
            kw[k] = _whole(where, v, 1, 100_000)
    # current_weights={} only lets a max_turnover construct: the stored object keeps None (each
    # proposal sets the weights held then)
    placeholder = {"current_weights": {}} if kw.get("max_turnover") is not None else {}
    try:
        c = Constraints(**kw, **placeholder)
        named = sorted(_named_tickers(c))
        if named:
            c.resolve(named)  # per-ticker bounds against each other, group bounds against the groups
    except (QpoError, ValueError, TypeError) as exc:
        raise _fail("constraints", str(exc)) from None
    if placeholder:
        object.__setattr__(c, "current_weights", None)
    if not c.long_only:
        raise _fail("constraints.long_only", "must be true: a client portfolio holds no short positions")
    if not 0 < c.budget <= 1:
        raise _fail("constraints.budget", f"must lie in (0, 1] (1: fully invested; cash cannot go negative), got {c.budget:g}")
    if c.leverage is not None and c.leverage < c.budget:
        raise _fail("constraints.leverage", f"{c.leverage:g} is below the budget {c.budget:g}: no long-only portfolio meets both")
    return c


def _named_tickers(c: Constraints) -> set[str]:
    """The tickers the constraints name one by one."""
    out: set[str] = set()
    for f in ("min_weight", "max_weight", "transaction_costs", "market_impact", "benchmark_weights", "groups"):
        v = getattr(c, f)
        if isinstance(v, Mapping):
            out |= {str(k) for k in v}
    return out


def _constraints_json(c: Constraints) -> dict:
    default = Constraints()
    out = {}
    for f in CONSTRAINT_FIELDS:
        v = getattr(c, f)
        d = getattr(default, f)
        if isinstance(v, Mapping):
            out[f] = dict(v)
        elif v is not d and not (is_number(v) and is_number(d) and v == d) and not (isinstance(v, bool) and v == d):
            out[f] = v
    return out


def _limits(given) -> Limits:
    if isinstance(given, Limits):
        raw = asdict(given)
    else:
        raw = _mapping("limits", given)
        unknown = sorted(set(raw) - set(LIMIT_FIELDS))
        if unknown:
            raise _fail("limits", f"unknown field {quote(unknown[0], 30)}; valid: {', '.join(LIMIT_FIELDS)}")
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        where = f"limits.{k}"
        if v is None:
            if k == "var_method":
                raise _fail(where, "cannot be null (leave it out for 'historical')")
            kw[k] = None
        elif k in ("max_weight", "var_limit"):
            kw[k] = _number(where, v, 0.0, lo_open=True, valid="0.25 = 25 %")
        elif k == "sector_max":
            kw[k] = _number_map(where, v) if isinstance(v, Mapping) else _number(where, v, 0.0)
        elif k == "min_names":
            kw[k] = _whole(where, v, 1, 100_000)
        else:
            kw[k] = v
    try:
        return Limits(**kw)
    except (QpoError, ValueError, TypeError) as exc:
        raise _fail("limits", str(exc)) from None


def _sector_max(v):
    if v is None:
        return None
    if isinstance(v, (Mapping, pd.Series)):
        caps = _number_map("sector_max", v)
        bad = {s: x for s, x in caps.items() if x > 1}
        if bad:
            s = next(iter(bad))
            raise _fail(f"sector_max[{s!r}]", f"must lie in [0, 1] (a fraction of the portfolio), got {bad[s]:g}")
        return caps
    return _number("sector_max", v, 0.0, 1.0, lo_open=True, valid="one cap for every sector, 0.4 = 40 %")


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
        put("benchmark", None if self.benchmark is None else _name("benchmark", self.benchmark, 40))
        put("rebalance_band", _number("rebalance_band", self.rebalance_band, 0.0, 1.0, lo_open=True,
                                      valid="the largest |weight - target| before a proposal is due, 0.05 = 5 %"))
        if not isinstance(self.fractional, (bool, np.bool_)):
            raise _fail("fractional", f"must be true or false, got {quote(self.fractional, 30)}")
        put("fractional", bool(self.fractional))
        put("commission", _number("commission", self.commission, 0.0, 1e9, valid="currency per trade"))
        put("spread_bps", _number("spread_bps", self.spread_bps, 0.0, 10_000.0, hi_open=True, valid="5 = 0.05 %"))
        put("confidence", _number("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True, valid="e.g. 0.95"))
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
    def from_json(cls, obj) -> Strategy:
        """The strategy of a JSON object (a dict, or its JSON text). Refuses an unknown key, a wrong
        type or value, a missing or unsupported ``schema_version`` (:class:`StrategyError`)."""
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
        return cls(**{k: v for k, v in obj.items() if k != "schema_version"})

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
                        current_weights: Mapping[str, float] | None = None) -> Constraints:
        """The :class:`qpo.Constraints` of a problem over ``tickers``:

        * ``sector_max`` as ``groups``/``group_max`` by ``sectors`` (ticker -> sector; default
          :func:`qpo.load_sectors`; a ticker without one is "Unclassified"); caps of sectors no
          ticker belongs to are dropped;
        * ``current_weights`` (ticker -> weight held now, of the value incl. cash) as given; without
          them there is nothing to turn over, and ``max_turnover`` is dropped. With them the budget
          moves toward the weight invested now where ``max_turnover`` needs it (30 % cash under a
          10 % cap invests 10 %);
        * ``transaction_costs`` ``spread_bps / 1e4`` unless the constraints set their own (and the
          objective charges costs).

        Raises :class:`~qpo.errors.InfeasibleError` when the bounds cannot hold the budget over these
        tickers (a 10 % cap on 5 names cannot be fully invested: it is refused, never loosened), and
        :class:`StrategyError` when the constraints name tickers outside ``tickers``.
        """
        return self._constraints_over(_tickers(tickers), sectors, current_weights, capacity=True)

    def _constraints_over(self, names: list[str], sectors, current_weights, *, capacity: bool) -> Constraints:
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
            groups = {t: str(sectors.get(t, "Unclassified")) for t in names}
            present = set(groups.values())
            caps = ({s: v for s, v in self.sector_max.items() if s in present} if isinstance(self.sector_max, dict)
                    else {s: float(self.sector_max) for s in present})
            if caps:
                changes.update(groups=groups, group_max=caps, group_min=None)
        if c.transaction_costs is None and self.charges_costs():
            changes["transaction_costs"] = float(self.spread_bps) / 1e4
        out = replace(c, **changes) if changes else c
        if capacity:
            _check_capacity(out, names, budget)
        return out

    def problem(self, returns: pd.DataFrame, current_weights: Mapping[str, float] | None = None,
                sectors: Mapping[str, str] | None = None) -> PortfolioProblem:
        """The :class:`qpo.PortfolioProblem` of the last ``lookback`` periods of ``returns``
        (periods x tickers, no gaps), by the strategy's estimators, constraints
        (:meth:`constraints_for` its columns) and risk-free rate."""
        return self._problem(returns, current_weights, sectors, capacity=True)

    def _problem(self, returns, current_weights, sectors, *, capacity: bool) -> PortfolioProblem:
        from qpo.errors import DataError

        if not isinstance(returns, pd.DataFrame):
            raise DataError(f"returns must be a DataFrame of periods x tickers, got {type(returns).__name__}")
        window = returns.iloc[-self.lookback:]
        if len(window) < MIN_LOOKBACK:
            raise DataError(f"{len(window)} periods of returns; a strategy estimates from at least {MIN_LOOKBACK}")
        constraints = self._constraints_over(_tickers(returns.columns), sectors, current_weights, capacity=capacity)
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
            returns_sample = _sample(self)
        current = None
        if self.constraints.max_turnover is not None:
            current = {t: 1.0 / returns_sample.shape[1] * self.constraints.budget for t in returns_sample.columns}
        try:
            sectors = {t: f"_sector{i}" for i, t in enumerate(returns_sample.columns)} if synthetic else None
            # the synthetic sample checks structure: whether the bounds can hold the budget depends
            # on the names of each proposal (constraints_for refuses then)
            problem = self._problem(returns_sample, current, sectors, capacity=not synthetic)
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


def _tickers(tickers) -> list[str]:
    if isinstance(tickers, str) or not hasattr(tickers, "__iter__"):
        raise InvalidValueError(f"tickers must be a list of ticker names, got {quote(tickers, 30)}")
    names = [str(t) for t in tickers]
    if not names:
        raise InvalidValueError("tickers is empty: a problem needs at least one ticker")
    if len(set(names)) != len(names):
        raise InvalidValueError(f"tickers names {sorted({t for t in names if names.count(t) > 1})[:5]} twice")
    return names


def _check_capacity(c: Constraints, names: list[str], budget: float) -> None:
    """Refuse bounds that cannot hold ``budget`` over ``names`` (long-only): the per-name caps, cut
    by the group caps, sum below it; or the per-name floors sum above it."""
    rc_lo = _per_name(c.min_weight, names, 0.0)
    rc_hi = _per_name(c.max_weight, names, 1.0)
    floor = float(rc_lo.sum())
    if floor > budget + 1e-9:
        raise InfeasibleError(f"min_weight asks for {floor:.1%} over the {len(names)} tickers, above the budget "
                              f"{budget:.1%}: lower min_weight or hold fewer names")
    cap = rc_hi.copy()
    if c.groups is not None and c.group_max is not None:
        groups = np.array([str(dict(c.groups).get(t, "")) for t in names])
        total = 0.0
        for g in set(groups):
            room = float(cap[groups == g].sum())
            limit = dict(c.group_max).get(g) if g else None
            total += room if limit is None else min(room, float(limit))
    else:
        total = float(cap.sum())
    if total < budget - 1e-9:
        what = "max_weight" if c.group_max is None else "max_weight and the sector caps"
        raise InfeasibleError(f"{what} allow at most {total:.1%} in the {len(names)} tickers given, below the budget "
                              f"{budget:.1%}: they cannot be fully invested; raise the caps or hold more names")


def _per_name(v, names: list[str], default: float) -> np.ndarray:
    if v is None:
        return np.full(len(names), default)
    if isinstance(v, Mapping):
        return np.array([float(v.get(t, default)) for t in names])
    return np.full(len(names), float(v))


def _sample(strategy: Strategy) -> pd.DataFrame:
    """Synthetic daily returns over the tickers the constraints name and a few others
    (deterministic: the same strategy, the same sample); refuses scalar bounds that no number of
    names can hold the budget between."""
    c = strategy.constraints
    named = sorted(_named_tickers(c))
    hi = float(c.max_weight) if is_number(c.max_weight) else 1.0
    if is_number(strategy.sector_max):  # each synthetic name is its own sector
        hi = min(hi, float(strategy.sector_max))
    lo = float(c.min_weight) if is_number(c.min_weight) else 0.0
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


__all__ = ["COVARIANCES", "DEFAULT_LIMITS", "MEANS", "OBJECTIVES", "SCHEMA_VERSION", "Strategy", "StrategyError"]

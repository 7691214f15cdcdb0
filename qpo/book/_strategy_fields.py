"""The fields of a stored :class:`qpo.book.strategy.Strategy`: their checks (each refusal a
:class:`StrategyError` naming the key and what is valid), the client-portfolio rules of its
constraints and limits, and the capacity check of bounds over a proposal's tickers."""
from __future__ import annotations

import contextvars
import numbers
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import REQUIRED, check_label, is_number, number, quote, whole
from qpo.errors import InfeasibleError, InvalidValueError, QpoError
from qpo.optimization import Constraints
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
    return number(f"strategy {key}:", v, lo, hi, lo_open=lo_open, hi_open=hi_open, hint=valid, error=StrategyError)


def _whole(key: str, v, lo: int, hi: int) -> int:
    return whole(f"strategy {key}:", v, lo, hi, error=StrategyError)


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


def _number_map(key: str, v, lo: float | None = 0.0, hi: float | None = None) -> dict[str, float]:
    return {k: _number(f"{key}[{k!r}]", x, lo, hi, valid="a fraction: 0.2 = 20 %" if hi == 1.0 else "")
            for k, x in _mapping(key, v).items()}


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
            # a long-only cap above 1 caps nothing: 20 meant as 20 % would pass every weight
            hi = 1.0 if k == "max_weight" else None  # (a client portfolio is long-only)
            kw[k] = (_number(where, v, lo, hi, valid="a fraction: 0.2 = 20 %" if hi else "")
                     if not isinstance(v, (Mapping, pd.Series)) else _number_map(where, v, lo, hi))
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
    placeholder: dict[str, Any] = {"current_weights": {}} if kw.get("max_turnover") is not None else {}
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
        elif k in ("max_weight", "var_limit"):  # fractions: a limit of 20 (meant as 20 %) would never breach
            kw[k] = _number(where, v, 0.0, 1.0, lo_open=True,
                            valid="a fraction: 0.25 = 25 %" if k == "max_weight" else "a fraction: 0.03 = 3 % a day")
        elif k == "sector_max":
            kw[k] = (_number_map(where, v, 0.0, 1.0) if isinstance(v, Mapping)
                     else _number(where, v, 0.0, 1.0, valid="a fraction: 0.4 = 40 %"))
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


#: False while :meth:`Strategy.check_builds` builds on its synthetic sample, whose sectors are made up
_REAL_SECTORS: contextvars.ContextVar[bool] = contextvars.ContextVar("qpo_strategy_real_sectors", default=True)


def _known_sectors(where: str, caps, sectors: Mapping[str, str] | None = None) -> None:
    """Refuse caps on sectors that are none: near misses of a known sector always, and with the
    sector map in use, any name no ticker of it has (see :func:`qpo.data.sectors.unknown_sectors`)."""
    from qpo.data.sectors import sector_names_error, unknown_sectors

    if not isinstance(caps, Mapping) or (sectors is not None and not _REAL_SECTORS.get()):
        return
    found = unknown_sectors(list(caps), dict(sectors) if sectors is not None else None)
    if found:
        raise StrategyError(f"strategy {sector_names_error(where, found, dict(sectors) if sectors is not None else None)}")

"""Portfolio constraints: what a user states (:class:`Constraints`) and what a solver takes
(:class:`ResolvedConstraints`, numpy arrays in the universe's ticker order).

Conventions: weights are fractions of the portfolio's value; ``budget`` is their sum (1 = fully
invested); turnover is ``sum |w - w0|`` against ``current_weights`` (tickers absent there are
held at 0); the tracking error is annualized, ``sqrt(P (w - b)' Sigma (w - b))``.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from qpo._checks import is_number, number
from qpo.errors import InfeasibleError, ProblemError

_TOL = 1e-9


def _check_number(name: str, v, *, low: float | None = None, strict: bool = False, optional: bool = True):
    if v is None and optional:
        return
    number(name, v, lo=low, lo_open=strict, error=ProblemError)


def _check_mapping_or_number(name: str, v, *, low: float | None = None):
    if v is None or is_number(v) or (isinstance(v, numbers.Real) and not isinstance(v, bool)):
        _check_number(name, v, low=low)  # inf and NaN too: "must be a finite number"
        return
    if not isinstance(v, (Mapping, pd.Series)):
        raise ProblemError(f"{name} must be a number or a mapping ticker -> number "
                           f"(dict or pandas Series), got {type(v).__name__}")
    for k, x in dict(v).items():
        _check_number(f"{name}[{k!r}]", x, low=low, optional=False)


@dataclass(frozen=True, eq=False)
class Constraints:
    """What the portfolio must satisfy. Every field is optional; the defaults give a long-only,
    fully invested portfolio.

    Parameters
    ----------
    long_only
        No negative weights. With ``long_only=False`` the default ``min_weight`` is -1.
    min_weight, max_weight
        Bounds on each weight: one number for every asset, or a mapping ticker -> bound (tickers
        it leaves out keep the default bound: 0, or -1 when shorting, and 1).
    budget
        Sum of the weights (1 = fully invested; 0 = dollar neutral, with shorting).
    leverage
        Upper limit on the gross exposure ``sum |w|`` (e.g. 1.6 for 130/30).
    groups, group_min, group_max
        ``groups`` maps tickers to a group (e.g. their GICS sector); ``group_min`` and
        ``group_max`` map group names to bounds on the group's total weight.
    current_weights
        The weights held now (ticker -> weight), against which turnover and costs are measured.
    max_turnover
        Upper limit on ``sum |w - current_weights|`` (one-way turnover x 2).
    transaction_costs
        Linear cost per unit of weight traded (0.001 = 10 bp), one number or per ticker; charged in
        the objective.
    market_impact
        Coefficient ``k`` of the market-impact cost ``k |w - w0|^1.5`` (the square-root impact law),
        one number or per ticker; charged in the objective.
    benchmark_weights, max_tracking_error
        Annualized tracking-error limit against the benchmark's weights (ticker -> weight).
    max_assets
        At most this many non-zero weights (cardinality; solved exactly as a mixed-integer program).
    min_position
        A held asset weighs at least this much (in absolute value); with ``max_assets`` or alone.
    """

    long_only: bool = True
    min_weight: float | Mapping[str, float] | None = None
    max_weight: float | Mapping[str, float] = 1.0
    budget: float = 1.0
    leverage: float | None = None
    groups: Mapping[str, str] | None = None
    group_min: Mapping[str, float] | None = None
    group_max: Mapping[str, float] | None = None
    current_weights: Mapping[str, float] | None = None
    max_turnover: float | None = None
    transaction_costs: float | Mapping[str, float] | None = None
    market_impact: float | Mapping[str, float] | None = None
    benchmark_weights: Mapping[str, float] | None = None
    max_tracking_error: float | None = None
    max_assets: int | None = None
    min_position: float | None = None

    def __post_init__(self):
        if not isinstance(self.long_only, (bool, np.bool_)):
            raise ProblemError(f"long_only must be True or False, got {self.long_only!r}")
        _check_mapping_or_number("min_weight", self.min_weight)
        _check_mapping_or_number("max_weight", self.max_weight)
        _check_number("budget", self.budget, optional=False)
        _check_number("leverage", self.leverage, low=0, strict=True)
        _check_number("max_turnover", self.max_turnover, low=0)
        _check_number("max_tracking_error", self.max_tracking_error, low=0, strict=True)
        _check_number("min_position", self.min_position, low=0, strict=True)
        _check_mapping_or_number("transaction_costs", self.transaction_costs, low=0)
        _check_mapping_or_number("market_impact", self.market_impact, low=0)
        if self.max_assets is not None and (isinstance(self.max_assets, bool) or not isinstance(
                self.max_assets, numbers.Integral) or self.max_assets < 1):
            raise ProblemError(f"max_assets must be a whole number >= 1, got {self.max_assets!r}")
        if is_number(self.min_weight) and is_number(self.max_weight) and self.min_weight > self.max_weight:
            raise InfeasibleError(f"min_weight {self.min_weight} > max_weight {self.max_weight}: "
                                  "no weight can satisfy both")
        if self.long_only and is_number(self.min_weight) and self.min_weight < 0:
            raise ProblemError(f"long_only=True but min_weight is {self.min_weight} < 0; "
                               "set long_only=False to allow short positions")
        if self.long_only and is_number(self.max_weight) and self.max_weight <= 0:
            raise ProblemError(f"max_weight must be > 0 for a long-only portfolio, got {self.max_weight}")
        if (self.group_min or self.group_max) and not self.groups:
            raise ProblemError("group_min/group_max need groups={ticker: group} to say which assets "
                               "belong to which group")
        if self.max_turnover is not None and self.current_weights is None:
            raise ProblemError("max_turnover needs current_weights (the portfolio held now)")
        if self.max_tracking_error is not None and self.benchmark_weights is None:
            raise ProblemError("max_tracking_error needs benchmark_weights")

    # -- what is set ---------------------------------------------------------------------------
    @property
    def has_costs(self) -> bool:
        return self.transaction_costs is not None or self.market_impact is not None

    @property
    def is_mixed_integer(self) -> bool:
        return self.max_assets is not None or self.min_position is not None

    def describe(self) -> dict:
        """The fields that differ from the defaults (for logs and MLflow params)."""
        default = Constraints()
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not getattr(default, f.name) and not (is_number(v) and v == getattr(default, f.name)):
                out[f.name] = dict(v) if isinstance(v, (Mapping, pd.Series)) else v
        return out

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" if not isinstance(v, dict) else f"{k}=<{len(v)} entries>"
                 for k, v in self.describe().items()]
        return f"Constraints({', '.join(parts)})"

    # -- resolution ----------------------------------------------------------------------------
    def resolve(self, tickers: list[str]) -> ResolvedConstraints:
        """Arrays in ``tickers``' order; a ticker the constraints name outside the universe is an
        error (it would silently constrain nothing)."""
        n = len(tickers)
        default_lo = 0.0 if self.long_only else -1.0
        lo = _per_asset("min_weight", self.min_weight, tickers, default_lo)
        hi = _per_asset("max_weight", self.max_weight, tickers, 1.0)
        if self.long_only and (lo < 0).any():
            bad = [t for t, v in zip(tickers, lo) if v < 0]
            raise ProblemError(f"long_only=True but min_weight is negative for {bad}; set long_only=False "
                               "to allow short positions")
        if (lo > hi + _TOL).any():
            bad = [f"{t} ({a:g} > {b:g})" for t, a, b in zip(tickers, lo, hi) if a > b + _TOL]
            raise InfeasibleError(f"min_weight > max_weight for {', '.join(bad)}: no weight can satisfy both")
        group_names: list[str] = []
        G = np.zeros((0, n))
        glo = np.zeros(0)
        ghi = np.zeros(0)
        if self.groups is not None:
            groups = dict(self.groups)
            unknown = sorted(set(groups) - set(tickers))
            if unknown:
                raise ProblemError(f"groups names tickers outside the universe: {unknown[:10]}"
                                   f"{' ...' if len(unknown) > 10 else ''}")
            group_names = sorted({str(g) for g in groups.values()})
            for name, bounds in (("group_min", self.group_min), ("group_max", self.group_max)):
                extra = sorted(set(map(str, dict(bounds or {}))) - set(group_names))
                if extra:
                    raise ProblemError(f"{name} names groups {extra} that no ticker belongs to; "
                                       f"groups are: {group_names}")
                for g, v in dict(bounds or {}).items():
                    _check_number(f"{name}[{g!r}]", v, optional=False)
            G = np.array([[1.0 if str(groups.get(t)) == g and t in groups else 0.0 for t in tickers]
                          for g in group_names]).reshape(len(group_names), n)
            gmin = {str(k): float(v) for k, v in dict(self.group_min or {}).items()}
            gmax = {str(k): float(v) for k, v in dict(self.group_max or {}).items()}
            glo = np.array([gmin.get(g, -np.inf) for g in group_names])
            ghi = np.array([gmax.get(g, np.inf) for g in group_names])
            for g, a, b in zip(group_names, glo, ghi):
                if a > b + _TOL:
                    raise InfeasibleError(f"group {g!r}: group_min {a:g} > group_max {b:g}")
        w0 = _weights_vector("current_weights", self.current_weights, tickers)
        bench = _weights_vector("benchmark_weights", self.benchmark_weights, tickers)
        costs = _per_asset("transaction_costs", self.transaction_costs, tickers, 0.0)
        impact = _per_asset("market_impact", self.market_impact, tickers, 0.0)
        return ResolvedConstraints(
            tickers=list(tickers), lower=lo, upper=hi, budget=float(self.budget), long_only=bool(self.long_only),
            leverage=self.leverage, group_names=group_names, group_matrix=G, group_lower=glo, group_upper=ghi,
            current=w0, max_turnover=self.max_turnover, costs=costs, impact=impact,
            has_costs=self.transaction_costs is not None, has_impact=self.market_impact is not None,
            benchmark=bench, max_tracking_error=self.max_tracking_error,
            max_assets=self.max_assets, min_position=self.min_position, source=self)


def _per_asset(name: str, value, tickers: list[str], default: float) -> np.ndarray:
    n = len(tickers)
    if value is None:
        return np.full(n, default)
    if is_number(value):
        return np.full(n, float(value))
    d = dict(value)
    unknown = sorted(map(str, set(d) - set(tickers)))
    if unknown:
        raise ProblemError(f"{name} names tickers outside the universe: {unknown[:10]}"
                           f"{' ...' if len(unknown) > 10 else ''}; the universe is {len(tickers)} tickers "
                           f"({', '.join(tickers[:5])}{', ...' if n > 5 else ''})")
    return np.array([float(d.get(t, default)) for t in tickers])


def _weights_vector(name: str, value, tickers: list[str]) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, (Mapping, pd.Series)):
        raise ProblemError(f"{name} must be a mapping ticker -> weight (dict or pandas Series), "
                           f"got {type(value).__name__}")
    d = dict(value)
    for k, v in d.items():
        _check_number(f"{name}[{k!r}]", v, optional=False)
    unknown = sorted(str(k) for k, v in d.items() if k not in set(tickers) and abs(v) > 0)
    if unknown:
        raise ProblemError(f"{name} holds tickers outside the universe: {unknown[:10]}; add them to the "
                           "universe or drop them (their weight cannot be traded or measured here)")
    return np.array([float(d.get(t, 0.0)) for t in tickers])


@dataclass(eq=False)
class ResolvedConstraints:
    """Constraints as arrays in the universe's order (built by :meth:`Constraints.resolve`)."""

    tickers: list[str]
    lower: np.ndarray
    upper: np.ndarray
    budget: float
    long_only: bool
    leverage: float | None
    group_names: list[str]
    group_matrix: np.ndarray
    group_lower: np.ndarray
    group_upper: np.ndarray
    current: np.ndarray | None
    max_turnover: float | None
    costs: np.ndarray
    impact: np.ndarray
    has_costs: bool
    has_impact: bool
    benchmark: np.ndarray | None
    max_tracking_error: float | None
    max_assets: int | None
    min_position: float | None
    source: Constraints

    @property
    def n(self) -> int:
        return len(self.tickers)

    @property
    def is_mixed_integer(self) -> bool:
        return self.max_assets is not None or self.min_position is not None

    @property
    def reference(self) -> np.ndarray:
        """The weights costs and turnover are measured from (zeros when none are held)."""
        return self.current if self.current is not None else np.zeros(self.n)

    @property
    def group_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the groups with a finite lower / upper bound."""
        return np.flatnonzero(np.isfinite(self.group_lower)), np.flatnonzero(np.isfinite(self.group_upper))

    def structure(self) -> tuple:
        """What shapes the compiled problem (values enter as parameters)."""
        lo_rows, hi_rows = self.group_rows
        return (self.n, self.long_only, self.leverage is not None, len(lo_rows), len(hi_rows),
                self.max_turnover is not None, self.has_costs, self.has_impact,
                self.max_tracking_error is not None, self.max_assets is not None, self.min_position is not None)

    def violations(self, w: np.ndarray, cov_annual: np.ndarray | None = None, tol: float = 1e-6) -> list[str]:
        """The constraints ``w`` breaks beyond ``tol`` (empty when all hold)."""
        out = []
        if abs(w.sum() - self.budget) > tol:
            out.append(f"weights sum to {w.sum():.6g}, budget is {self.budget:g}")
        i = int(np.argmin(w - self.lower))
        if w[i] < self.lower[i] - tol:
            out.append(f"{self.tickers[i]} weight {w[i]:.6g} below its min_weight {self.lower[i]:g}")
        i = int(np.argmax(w - self.upper))
        if w[i] > self.upper[i] + tol:
            out.append(f"{self.tickers[i]} weight {w[i]:.6g} above its max_weight {self.upper[i]:g}")
        if len(self.group_names):
            tot = self.group_matrix @ w
            for g, t, a, b in zip(self.group_names, tot, self.group_lower, self.group_upper):
                if t < a - tol or t > b + tol:
                    out.append(f"group {g!r} weighs {t:.6g}, outside [{a:g}, {b:g}]")
        if self.leverage is not None and np.abs(w).sum() > self.leverage + tol:
            out.append(f"gross exposure {np.abs(w).sum():.6g} above leverage {self.leverage:g}")
        if self.max_turnover is not None and np.abs(w - self.reference).sum() > self.max_turnover + tol:
            out.append(f"turnover {np.abs(w - self.reference).sum():.6g} above max_turnover {self.max_turnover:g}")
        if self.max_tracking_error is not None and cov_annual is not None:
            d = w - self.benchmark
            te = float(np.sqrt(max(d @ cov_annual @ d, 0.0)))
            if te > self.max_tracking_error * (1 + tol):  # relative: TE is in the returns' units
                out.append(f"tracking error {te:.6g} above max_tracking_error {self.max_tracking_error:g}")
        held = np.abs(w) > tol
        if self.max_assets is not None and held.sum() > self.max_assets:
            out.append(f"{int(held.sum())} assets held, max_assets is {self.max_assets}")
        if self.min_position is not None and (np.abs(w[held]) < self.min_position - tol).any():
            out.append(f"a held weight {np.abs(w[held]).min():.6g} is below min_position {self.min_position:g}")
        return out

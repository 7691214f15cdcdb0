"""What a backtest rebalances to: :class:`Strategy` (an objective of :func:`qpo.optimize`, or a
baseline), its estimators, constraints and options."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qpo._checks import REQUIRED
from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError

if TYPE_CHECKING:  # the real imports are deferred to the first Strategy: importing qpo stays quick
    from qpo.estimation import CovarianceEstimator, MeanEstimator
    from qpo.optimization import Constraints

#: strategies that need no optimizer: 1/n at every rebalance, and 1/n once then drift only
BASELINES = ("equal_weight", "buy_and_hold")
#: objectives whose optimizer charges transaction costs (``cost_aware=True``)
COST_AWARE_OBJECTIVES = ("min_variance", "max_sharpe", "efficient_return", "efficient_risk", "max_utility",
                         "min_cvar")


def strategy_names() -> tuple[str, ...]:
    """Every valid strategy objective: qpo's optimizer objectives and the baselines."""
    from qpo.optimization.engine import OBJECTIVES

    return (*OBJECTIVES, *BASELINES)


@dataclass(frozen=True, eq=False, init=False)
class Strategy:
    """A rebalancing rule for :func:`qpo.backtest`.

    Parameters
    ----------
    objective
        One of :data:`qpo.OBJECTIVES` (the optimizer's answer on each rebalance's estimation
        window), or a baseline: ``"equal_weight"`` (1/n of the eligible tickers at every
        rebalance) or ``"buy_and_hold"`` (1/n once, at the first rebalance, then drift only).
    name
        The strategy's label in results and comparisons (default: the objective).
    mean, covariance
        Estimators of the window's moments (names or objects of :mod:`qpo.estimation`), as for
        :meth:`qpo.PortfolioProblem.from_returns`.
    constraints
        A :class:`qpo.Constraints`. Per-ticker entries (bounds, groups, costs) for tickers outside
        a rebalance's universe are left out at that rebalance. ``current_weights``, when set (as
        ``max_turnover`` requires), are replaced by the drifted weights held at each rebalance;
        ``max_turnover`` does not bind the first trade from cash.
    options
        The objective's options (``{"target_return": 0.15}``, ``{"risk_aversion": 3}``, ...).
    cost_aware
        Hand the optimizer the drifted weights and the backtest's cost rate
        (``Constraints(current_weights=..., transaction_costs=costs)``), so that it weighs the
        cost of trading against its objective. Only for objectives that charge costs:
        :data:`COST_AWARE_OBJECTIVES`.
    """

    objective: str
    name: str
    mean: str | MeanEstimator
    covariance: str | CovarianceEstimator
    constraints: Constraints | None
    options: Mapping[str, Any] | None
    cost_aware: bool
    _mean_est: MeanEstimator | None = field(default=None, init=False, repr=False)
    _cov_est: CovarianceEstimator | None = field(default=None, init=False, repr=False)

    def __init__(self, objective: str, *, name: str | None = None, mean: str | MeanEstimator = "historical",
                 covariance: str | CovarianceEstimator = "sample", constraints: Constraints | None = None,
                 options: Mapping[str, Any] | None = None, cost_aware: bool = False) -> None:
        # written out, not generated, so that ``name`` is always a str: None means the objective's name
        for k, v in (("objective", objective), ("name", objective if name is None else name), ("mean", mean), ("covariance", covariance),
                     ("constraints", constraints), ("options", options), ("cost_aware", cost_aware),
                     ("_mean_est", None), ("_cov_est", None)):
            object.__setattr__(self, k, v)
        self._check()

    def _check(self) -> None:
        from qpo.estimation import covariance_estimator, mean_estimator
        from qpo.optimization import Constraints
        from qpo.optimization.engine import OBJECTIVE_OPTIONS

        valid = strategy_names()
        if not isinstance(self.objective, str) or self.objective not in valid:
            raise UnknownOptionError("strategy", self.objective, valid)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidValueError(f"a strategy's name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.cost_aware, bool):
            raise InvalidValueError(f"cost_aware must be True or False, got {self.cost_aware!r}")
        if self.constraints is not None and not isinstance(self.constraints, Constraints):
            raise InvalidValueError(f"constraints must be a qpo.Constraints or None, got "
                                    f"{type(self.constraints).__name__}")
        if self.options is not None and not isinstance(self.options, Mapping):
            raise InvalidValueError(f"options must be a mapping (dict) of the objective's options, got "
                                    f"{type(self.options).__name__}")
        if self.is_baseline:
            given = [k for k, bad in (("constraints", self.constraints is not None), ("options", bool(self.options)),
                                      ("cost_aware", self.cost_aware),
                                      ("mean", not (isinstance(self.mean, str) and self.mean == "historical")),
                                      ("covariance", not (isinstance(self.covariance, str)
                                                          and self.covariance == "sample"))) if bad]
            if given:
                raise InvalidValueError(f"the baseline {self.objective!r} estimates nothing and takes no "
                                        f"{', '.join(given)}; use an optimizer objective "
                                        f"({', '.join(OBJECTIVE_OPTIONS)}) for those")
            return
        object.__setattr__(self, "_mean_est", mean_estimator(self.mean))
        object.__setattr__(self, "_cov_est", covariance_estimator(self.covariance))
        allowed = OBJECTIVE_OPTIONS[self.objective]
        opts = dict(self.options or {})
        for k in opts:
            if k not in allowed:
                raise UnknownOptionError(f"option for {self.objective}", k,
                                         list(allowed) or ["(none: this objective takes no options)"])
        missing = [k for k, v in allowed.items() if v is REQUIRED and k not in opts]
        if missing:
            raise ProblemError(f"{self.objective} needs {', '.join(missing)} (annualized): "
                               f"Strategy({self.objective!r}, options={{{missing[0]!r}: 0.15}})")
        object.__setattr__(self, "options", opts)
        if self.cost_aware and self.objective not in COST_AWARE_OBJECTIVES:
            raise InvalidValueError(f"cost_aware=True needs an objective that charges transaction costs "
                                    f"({', '.join(COST_AWARE_OBJECTIVES)}); {self.objective} does not")
        if self.objective == "hrp" and self.constraints is not None and self.constraints.describe():
            raise ProblemError(f"hrp takes no constraints beyond long-only and fully invested; got "
                               f"{self.constraints!r}")

    @property
    def is_baseline(self) -> bool:
        return self.objective in BASELINES

    def describe(self) -> dict[str, object]:
        """The strategy's settings, flat (for parameters and logs)."""
        out: dict[str, object] = {"name": self.name, "objective": self.objective}
        if not self.is_baseline:
            out["mean"] = getattr(self._mean_est, "name", str(self.mean))
            out["covariance"] = getattr(self._cov_est, "name", str(self.covariance))
            out["cost_aware"] = self.cost_aware
            if self.options:
                out["options"] = dict(self.options)
            if self.constraints is not None and self.constraints.describe():
                out["constraints"] = repr(self.constraints)
        return out


def as_strategy(spec: object) -> Strategy:
    """A :class:`Strategy` from itself or from an objective's name."""
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, str):
        return Strategy(spec)
    raise InvalidValueError(f"a strategy is a qpo.Strategy or an objective name ({', '.join(strategy_names())}), "
                            f"got {type(spec).__name__}")

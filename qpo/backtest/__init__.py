"""Walk-forward backtests: rebalance a :class:`Strategy` over a price panel with transaction costs,
no look-ahead, drifting weights between rebalances; compare strategies against a benchmark.

``qpo.backtest(prices, "min_variance", rebalance="M", window=252, costs=0.001, benchmark=index)``;
conventions and policies (timing, drift, costs, failures, gaps) are in :func:`backtest`'s docstring.
"""
import sys as _sys
import types as _types

from qpo.backtest.engine import FREQUENCIES, GAP_POLICIES, backtest, compare_strategies
from qpo.backtest.result import BacktestComparison, BacktestResult
from qpo.backtest.strategy import (
    BASELINES,
    COST_AWARE_OBJECTIVES,
    Strategy,
    strategy_names,
)

__all__ = [
    "BASELINES",
    "COST_AWARE_OBJECTIVES",
    "FREQUENCIES",
    "GAP_POLICIES",
    "BacktestComparison",
    "BacktestResult",
    "Strategy",
    "backtest",
    "compare_strategies",
    "strategy_names",
]


class _CallableModule(_types.ModuleType):
    """``qpo.backtest`` is both this package and the function: once the package is imported,
    Python binds ``qpo.backtest`` to it, so the package itself runs :func:`backtest` when called."""

    def __call__(self, *args, **kwargs):
        return backtest(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule

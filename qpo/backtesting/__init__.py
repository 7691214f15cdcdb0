"""Walk-forward backtests: rebalance a :class:`Strategy` over a price panel with transaction costs,
no look-ahead, drifting weights between rebalances; compare strategies against a benchmark.

The package is ``qpo.backtesting``; its functions are also ``qpo.backtest`` and
``qpo.compare_strategies``:
``qpo.backtest(prices, "min_variance", rebalance="M", costs=0.001, benchmark=index)``;
conventions and policies (timing, drift, costs, failures, gaps) are in :func:`backtest`'s docstring.
"""
from qpo.backtesting.engine import (
    FREQUENCIES,
    GAP_POLICIES,
    backtest,
    compare_strategies,
)
from qpo.backtesting.result import BacktestComparison, BacktestResult, FailedRebalance
from qpo.backtesting.strategy import (
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
    "FailedRebalance",
    "Strategy",
    "backtest",
    "compare_strategies",
    "strategy_names",
]


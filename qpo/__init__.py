"""qpo: the quantum portfolio optimizer research workbench.

The path through the package follows the data::

    load (qpo.data) -> validate (qpo.validation) -> estimate/optimize (qpo.optimization)
    -> assess risk (qpo.risk) -> store (qpo.store) -> track (qpo.tracking)
    -> publish (qpo.reporting, qpo.workbench)

``import qpo`` is light: the public names below are imported on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "load_prices": "qpo.data",
    "load_price_file": "qpo.data",
    "load_ohlcv": "qpo.data",
    "ohlcv_to_prices": "qpo.data",
    "prices_to_returns": "qpo.data",
    "load_sectors": "qpo.data",
    "data_hash": "qpo.data",
    "PRICE_SOURCES": "qpo.data",
    # validation
    "validate_prices": "qpo.validation",
    "validate_ohlcv": "qpo.validation",
    "validate_file": "qpo.validation",
    "validate_source": "qpo.validation",
    "ValidationReport": "qpo.validation",
    # estimation
    "EWMAMean": "qpo.estimation",
    "EWMACovariance": "qpo.estimation",
    "HistoricalMean": "qpo.estimation",
    "SampleCovariance": "qpo.estimation",
    "LedoitWolf": "qpo.estimation",
    "OAS": "qpo.estimation",
    "FactorModelCovariance": "qpo.estimation",
    "BlackLitterman": "qpo.estimation",
    "ForecastMean": "qpo.estimation",
    "ForecastBlackLitterman": "qpo.estimation",
    # forecasting
    "FeatureSpec": "qpo.forecasting",
    "ForecasterConfig": "qpo.forecasting",
    "compute_features": "qpo.forecasting",
    "train_forecaster": "qpo.forecasting",
    "walk_forward": "qpo.forecasting",
    # optimization
    "PortfolioProblem": "qpo.optimization",
    "Constraints": "qpo.optimization",
    "OptimizationResult": "qpo.optimization",
    "optimize": "qpo.optimization",
    "efficient_frontier": "qpo.optimization",
    "OBJECTIVES": "qpo.optimization",
    "BINARY_OBJECTIVES": "qpo.optimization",
    "METHODS": "qpo.optimization",
    # quantum
    "selection_model": "qpo.quantum",
    "lots_model": "qpo.quantum",
    "BinaryModel": "qpo.quantum",
    # risk
    "RiskReport": "qpo.risk",
    "risk_report": "qpo.risk",
    "portfolio_returns": "qpo.risk",
    "historical_var": "qpo.risk",
    "historical_cvar": "qpo.risk",
    "max_drawdown": "qpo.risk",
    "Limits": "qpo.risk",
    "value_at_risk": "qpo.risk",
    "conditional_value_at_risk": "qpo.risk",
    "monte_carlo_var": "qpo.risk",
    "brinson_fachler": "qpo.risk",
    # backtesting
    "backtest": "qpo.backtesting",
    "Strategy": "qpo.backtesting",
    "BacktestResult": "qpo.backtesting",
    "compare_strategies": "qpo.backtesting",
    # the client book
    "propose_rebalance": "qpo.book",
    "accept_rebalance": "qpo.book",
    "reject_rebalance": "qpo.book",
    "check_rebalance": "qpo.book",
    "RebalanceProposal": "qpo.book",
    # reporting, tracking, workbench
    "daily_report": "qpo.reporting",
    "frontier_study": "qpo.reporting",
    "quantum_study": "qpo.reporting",
    "risk_figures": "qpo.reporting",
    "risk_html": "qpo.reporting",
    "tracked_run": "qpo.tracking",
    "train_and_register": "qpo.tracking",
    "load_forecaster": "qpo.tracking",
    "forecast_mean": "qpo.tracking",
    "run_pipeline": "qpo.workbench.pipelines",
    "run_sweep": "qpo.workbench.sweep",
    # errors
    "QpoError": "qpo.errors",
    "DataError": "qpo.errors",
    "DataValidationError": "qpo.errors",
    "ProblemError": "qpo.errors",
    "InfeasibleError": "qpo.errors",
    "SolverError": "qpo.errors",
    "UnknownOptionError": "qpo.errors",
    "InvalidValueError": "qpo.errors",
    "PipelineError": "qpo.errors",
    "StoreError": "qpo.errors",
    "AccessDenied": "qpo.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from qpo.data import load_prices, prices_to_returns  # noqa: F401
    from qpo.optimization import (  # noqa: F401
        Constraints,
        OptimizationResult,
        PortfolioProblem,
        optimize,
    )
    from qpo.risk import RiskReport, risk_report  # noqa: F401
    from qpo.validation import ValidationReport, validate_prices  # noqa: F401

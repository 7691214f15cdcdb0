"""Risk analytics for a weight vector or a return series."""
from qpo.risk.metrics import (
    RiskReport,
    annualized_volatility,
    cagr,
    drawdown_series,
    historical_cvar,
    historical_var,
    max_drawdown,
    portfolio_returns,
    risk_report,
    sharpe_ratio,
)

__all__ = [
    "RiskReport",
    "annualized_volatility",
    "cagr",
    "drawdown_series",
    "historical_cvar",
    "historical_var",
    "max_drawdown",
    "portfolio_returns",
    "risk_report",
    "sharpe_ratio",
]

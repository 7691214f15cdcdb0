"""Risk analytics for a weight vector or a return series: metrics, VaR/CVaR by method, risk
decomposition, stress tests, compliance checks and attribution, gathered by :func:`risk_report`."""
from qpo.risk.attribution import brinson_fachler
from qpo.risk.book import BookRiskResult, book_risk
from qpo.risk.compliance import ComplianceStatus, Limits, check_compliance
from qpo.risk.decomposition import (
    cvar_contributions,
    group_contributions,
    volatility_contributions,
)
from qpo.risk.metrics import (
    DrawdownInfo,
    annualized_volatility,
    benchmark_statistics,
    cagr,
    calmar_ratio,
    drawdown_info,
    drawdown_series,
    excess_kurtosis,
    frequency_of,
    historical_cvar,
    historical_var,
    hit_rate,
    max_drawdown,
    period_adjective,
    period_name,
    portfolio_returns,
    sharpe_ratio,
    skewness,
    sortino_ratio,
)
from qpo.risk.report import RiskReport, risk_report
from qpo.risk.stress import HISTORICAL_SCENARIOS, historical_stress, hypothetical_stress
from qpo.risk.var import (
    VAR_METHODS,
    MonteCarloVaR,
    conditional_value_at_risk,
    monte_carlo_var,
    parametric_var,
    value_at_risk,
    var_cvar,
)

__all__ = [
    "BookRiskResult", "book_risk",
    "HISTORICAL_SCENARIOS",
    "VAR_METHODS",
    "ComplianceStatus",
    "DrawdownInfo",
    "Limits",
    "MonteCarloVaR",
    "RiskReport",
    "annualized_volatility",
    "benchmark_statistics",
    "brinson_fachler",
    "cagr",
    "calmar_ratio",
    "check_compliance",
    "conditional_value_at_risk",
    "cvar_contributions",
    "drawdown_info",
    "drawdown_series",
    "excess_kurtosis",
    "frequency_of",
    "group_contributions",
    "historical_cvar",
    "historical_stress",
    "historical_var",
    "hit_rate",
    "hypothetical_stress",
    "max_drawdown",
    "monte_carlo_var",
    "parametric_var",
    "period_adjective",
    "period_name",
    "portfolio_returns",
    "risk_report",
    "sharpe_ratio",
    "skewness",
    "sortino_ratio",
    "value_at_risk",
    "var_cvar",
    "volatility_contributions",
]

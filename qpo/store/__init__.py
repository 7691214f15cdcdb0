"""The store: SQLAlchemy 2 models, Alembic migrations, transactional writes."""
from qpo.store.db import connect, session_scope, store_exists, upgrade
from qpo.store.models import (
    Advisor,
    Base,
    ClientPortfolio,
    Holding,
    OptimizationRun,
    RiskMetric,
    Transaction,
)
from qpo.store.repository import (
    create_portfolio,
    get_or_create_advisor,
    get_portfolio,
    list_portfolios,
    portfolio_holdings,
    portfolio_weights,
    record_optimization_run,
    record_risk_metrics,
    risk_history,
)

__all__ = [
    "Advisor",
    "Base",
    "ClientPortfolio",
    "Holding",
    "OptimizationRun",
    "RiskMetric",
    "Transaction",
    "connect",
    "create_portfolio",
    "get_or_create_advisor",
    "get_portfolio",
    "list_portfolios",
    "portfolio_holdings",
    "portfolio_weights",
    "record_optimization_run",
    "record_risk_metrics",
    "risk_history",
    "session_scope",
    "store_exists",
    "upgrade",
]

"""The store: the client book (portfolios, their ledgers, strategies, rebalance proposals, people,
the audit trail) and the risk numbers and optimization runs recorded for it. SQLAlchemy 2 models,
Alembic migrations, transactional writes; every read and write names its actor
(:mod:`qpo.store.access`)."""
from qpo.store.access import USER_ENV, Actor, actor_for
from qpo.store.db import connect, session_scope, store_exists, upgrade
from qpo.store.ledger import LedgerError, Position
from qpo.store.models import (
    Advisor,
    Alert,
    AuditEntry,
    Base,
    BookRisk,
    ClientPortfolio,
    MarketBar,
    OpsRun,
    OptimizationRun,
    Proposal,
    RiskMetric,
    Transaction,
    User,
    Valuation,
)
from qpo.store.people import update_user
from qpo.store.portfolios import portfolio_benchmark, register_strategy_check
from qpo.store.repository import (
    accept_proposal,
    add_transaction,
    add_user,
    audit_trail,
    authenticate,
    create_portfolio,
    delete_portfolio,
    get_or_create_user,
    get_portfolio,
    get_proposal,
    import_transactions,
    last_accepted_target,
    list_portfolios,
    list_proposals,
    list_transactions,
    list_users,
    portfolio_cash,
    portfolio_holdings,
    portfolio_weights,
    position,
    positions,
    record_optimization_run,
    record_risk_metrics,
    reject_proposal,
    risk_history,
    save_proposal,
    set_password,
    store_tickers,
    update_portfolio,
)

__all__ = [
    "USER_ENV", "Actor", "Advisor", "Alert", "AuditEntry", "Base", "BookRisk", "ClientPortfolio", "LedgerError",
    "MarketBar", "OpsRun", "OptimizationRun", "Valuation",
    "Position", "Proposal", "RiskMetric", "Transaction", "User", "accept_proposal", "actor_for", "add_transaction",
    "add_user", "audit_trail", "authenticate", "connect", "create_portfolio", "delete_portfolio",
    "get_or_create_user", "get_portfolio", "get_proposal", "import_transactions", "last_accepted_target",
    "list_portfolios", "list_proposals", "list_transactions", "list_users", "portfolio_cash", "portfolio_holdings",
    "portfolio_weights", "position", "positions", "record_optimization_run", "record_risk_metrics", "reject_proposal",
    "risk_history", "save_proposal", "session_scope", "set_password", "store_exists", "store_tickers",
    "portfolio_benchmark", "register_strategy_check", "update_portfolio", "update_user", "upgrade",
]

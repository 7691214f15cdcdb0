"""Reads and writes of the book (the repository: :mod:`qpo.store.people`, :mod:`qpo.store.portfolios`
and :mod:`qpo.store.proposals`, gathered here). Every function takes the session (one transaction:
:func:`qpo.store.session_scope`) and the **actor** the request is made for (an
:class:`~qpo.store.access.Actor` or a user's e-mail; the rules are in :mod:`qpo.store.access`).
Every write is checked before it is sent (the rules of :mod:`qpo.store._inputs`, which the models'
``@validates`` apply too), appends its row to the audit trail in the same transaction, and is
rolled back whole when anything fails: a refusal is a :class:`~qpo.errors.StoreError` (an
:class:`~qpo.errors.AccessDenied` for a request its actor may not make) under 300 characters that
names the field and says what is valid.

Holdings and cash are never stored apart: they are derived from the ledger
(:mod:`qpo.store.ledger`), and every new entry is replayed against it first.
"""
from __future__ import annotations

from qpo.store.people import (  # noqa: F401
    add_user,
    authenticate,
    get_or_create_user,
    list_users,
    set_password,
)
from qpo.store.portfolios import (  # noqa: F401
    add_transaction,
    create_portfolio,
    delete_portfolio,
    get_portfolio,
    import_transactions,
    list_portfolios,
    list_transactions,
    portfolio_cash,
    portfolio_holdings,
    portfolio_weights,
    position,
    positions,
    store_tickers,
    update_portfolio,
)
from qpo.store.proposals import (  # noqa: F401
    MAX_ID,  # noqa: F401
    accept_proposal,
    audit_trail,
    get_proposal,
    last_accepted_target,
    list_proposals,
    record_optimization_run,
    record_risk_metrics,
    reject_proposal,
    risk_history,
    save_proposal,
)

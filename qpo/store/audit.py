"""The audit trail: every write of the book appends one row (when, who, what, the entity, before
and after as JSON). The repository only ever INSERTs here; on PostgreSQL a trigger (migration
0002) refuses UPDATE and DELETE on ``audit_log``, whoever asks."""
from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from qpo.store import _inputs as check
from qpo.store.access import Actor
from qpo.store.models import AuditEntry, ClientPortfolio

#: the actions the trail records
ACTIONS = ("create", "update", "delete", "transaction", "import", "propose", "accept", "reject", "user_add",
           "user_update", "password", "seed", "acknowledge", "record")


def snapshot(portfolio: ClientPortfolio) -> dict:
    """A portfolio's own fields as the trail keeps them (holdings and cash are the ledger's)."""
    return {"name": portfolio.name, "client": portfolio.client_name,
            "advisor": portfolio.advisor.email if portfolio.advisor is not None else None,
            "benchmark": portfolio.benchmark, "description": portfolio.description, "account": portfolio.account,
            "base_currency": portfolio.base_currency, "strategy": portfolio.strategy}


def record(session: Session, actor: Actor, action: str, entity: str, *, entity_id: object = None,
           portfolio: ClientPortfolio | None = None, before: dict | None = None,
           after: dict | None = None) -> AuditEntry:
    """Append one row to the trail, in the caller's transaction (it commits or rolls back with the
    write it describes)."""
    if action not in ACTIONS:
        raise check.fail(f"audit action must be one of {', '.join(ACTIONS)}, got {check.quote(action)}")
    entry = AuditEntry(actor=actor.email, role=actor.role, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id),
                       portfolio_id=portfolio.id if portfolio is not None else None,
                       portfolio=portfolio.name if portfolio is not None else None,
                       before=None if before is None else check.parameters(before, "audit before"),
                       after=None if after is None else check.parameters(after, "audit after"))
    session.add(entry)
    session.flush()
    return entry


COLUMNS = ["id", "at", "actor", "role", "action", "entity", "entity_id", "portfolio", "before", "after"]


def trail(session: Session, actor: Actor, *, portfolio: ClientPortfolio | str | None = None,
          since: dt.date | None = None, limit: int | None = None) -> pd.DataFrame:
    """The rows ``actor`` may read, oldest first: an advisor sees the rows of their own clients'
    portfolios and their own actions; a researcher every portfolio's rows and their own; an admin
    (or a system actor) everything, people's changes included."""
    q = select(AuditEntry)
    if isinstance(portfolio, ClientPortfolio):
        q = q.where(AuditEntry.portfolio_id == portfolio.id)
    elif isinstance(portfolio, str):  # a portfolio deleted since: its rows keep its name
        q = q.where(AuditEntry.portfolio == portfolio)
    if since is not None:
        start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
        bind = session.get_bind()
        if bind.dialect.name == "sqlite":  # stored as text: compare as SQLite's own UTC datetime text
            q = q.where(func.datetime(AuditEntry.at) >= start.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            q = q.where(AuditEntry.at >= start)
    if actor.role == "advisor":
        own = select(ClientPortfolio.id).where(ClientPortfolio.advisor_id == actor.user_id)
        q = q.where(or_(AuditEntry.portfolio_id.in_(own), AuditEntry.actor == actor.email))
    elif actor.role == "researcher":
        q = q.where(or_(AuditEntry.portfolio_id.is_not(None), AuditEntry.actor == actor.email))
    q = q.order_by(AuditEntry.id)
    if limit is not None:
        q = q.limit(limit)
    rows = session.scalars(q).all()
    return pd.DataFrame([{"id": r.id, "at": r.at, "actor": r.actor, "role": r.role, "action": r.action,
                          "entity": r.entity, "entity_id": r.entity_id, "portfolio": r.portfolio,
                          "before": r.before, "after": r.after} for r in rows], columns=COLUMNS)

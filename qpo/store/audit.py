"""The audit trail: every write of the book appends one row (when, who, what, the entity, before
and after as JSON). The repository only ever INSERTs here; on PostgreSQL a trigger (migration
0002) refuses UPDATE and DELETE on ``audit_log``, whoever asks."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import and_, func, not_, or_, select
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
    deleted = _deletions(session)
    q = select(AuditEntry)
    if isinstance(portfolio, ClientPortfolio):  # its rows, and those of deleted portfolios that had its name
        gone = sorted({d.portfolio_id for d in deleted if d.portfolio_id != portfolio.id})
        q = q.where(or_(AuditEntry.portfolio_id == portfolio.id,  # not a live one renamed from the name
                        and_(AuditEntry.portfolio == portfolio.name, AuditEntry.portfolio_id.in_(gone))))
    elif isinstance(portfolio, str):  # a portfolio deleted since: its rows keep its name
        if session.scalar(select(AuditEntry.id).where(AuditEntry.portfolio == portfolio).limit(1)) is None:
            raise check.fail(f"no portfolio named {check.quote(portfolio)}, now or deleted; "
                             + _names_hint(session, actor, deleted))
        live_id = session.scalar(select(ClientPortfolio.id).where(ClientPortfolio.name == portfolio))
        q = q.where(AuditEntry.portfolio == portfolio)
        if live_id is not None:  # another advisor's live portfolio of that name: only the deleted ones' rows
            q = q.where(AuditEntry.portfolio_id.in_(sorted({d.portfolio_id for d in deleted if d.portfolio_id != live_id})))
    if since is not None:
        start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
        bind = session.get_bind()
        if bind.dialect.name == "sqlite":  # stored as text: compare as SQLite's own UTC datetime text
            q = q.where(func.datetime(AuditEntry.at) >= start.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            q = q.where(AuditEntry.at >= start)
    if actor.role == "advisor":
        # a live portfolio's rows (not those of a deleted one that had its id), a deleted one's
        # rows when the actor managed it when it was deleted, and the actor's own rows
        own = select(ClientPortfolio.id).where(ClientPortfolio.advisor_id == actor.user_id)
        before_delete = [and_(AuditEntry.portfolio_id == d.portfolio_id, AuditEntry.id <= d.id) for d in deleted]
        live = and_(AuditEntry.portfolio_id.in_(own), not_(or_(*before_delete))) if before_delete else \
            AuditEntry.portfolio_id.in_(own)
        managed = [c for d, c in zip(deleted, before_delete, strict=True) if d.advisor == actor.email]
        q = q.where(or_(live, *managed, AuditEntry.actor == actor.email))
    elif actor.role == "researcher":
        q = q.where(or_(AuditEntry.portfolio_id.is_not(None), AuditEntry.actor == actor.email))
    q = q.order_by(AuditEntry.id)
    if limit is not None:
        q = q.limit(limit)
    rows = session.scalars(q).all()
    return pd.DataFrame([{"id": r.id, "at": r.at, "actor": r.actor, "role": r.role, "action": r.action,
                          "entity": r.entity, "entity_id": r.entity_id, "portfolio": r.portfolio,
                          "before": r.before, "after": r.after} for r in rows], columns=COLUMNS)


@dataclass(frozen=True)
class _Deletion:
    id: int  # the delete row's
    portfolio_id: int
    name: str | None
    advisor: str | None  # who managed it when it was deleted


def _deletions(session: Session) -> list[_Deletion]:
    """The deletions of portfolios the trail records, each with who managed the portfolio then
    (the delete row's ``before.advisor``): that advisor keeps reading the deleted portfolio's rows."""
    rows = session.execute(select(AuditEntry.id, AuditEntry.portfolio_id, AuditEntry.portfolio, AuditEntry.before)
                           .where(AuditEntry.action == "delete", AuditEntry.entity == "portfolio",
                                  AuditEntry.portfolio_id.is_not(None)).order_by(AuditEntry.id)).all()
    return [_Deletion(r.id, r.portfolio_id, r.portfolio,
                      r.before.get("advisor") if isinstance(r.before, dict) else None) for r in rows]


def _names_hint(session: Session, actor: Actor, deleted: list[_Deletion]) -> str:
    """The portfolios whose trail ``actor`` may read, for a message naming an unknown one."""
    q = select(ClientPortfolio.name).order_by(ClientPortfolio.name)
    if actor.role == "advisor":
        q = q.where(ClientPortfolio.advisor_id == actor.user_id)
    live = list(session.scalars(q).all())
    gone = sorted({d.name for d in deleted if d.name is not None and d.name not in live
                   and (actor.role != "advisor" or d.advisor == actor.email)})
    text = f"the portfolios you may see: {check.names_list(live)}" if live else "you may see no portfolio"
    return text + (f"; deleted: {check.names_list(gone)}" if gone else "")

"""The alerts a risk run raises (:mod:`qpo.store.operations` creates, updates and resolves them),
read and acknowledged by people.

- :func:`list_alerts`: what ``actor`` may see: an advisor their own clients' alerts; a researcher,
  an admin or a system actor every alert;
- :func:`acknowledge_alert`: a person says they have seen a ``new`` alert; the advisor of the
  client, an admin or a system actor may (a researcher reads and changes nothing); the audit trail
  records who, in the same transaction;
- :func:`mark_delivered` / :func:`undelivered_alerts`: what delivery
  (:mod:`qpo.operations.delivery`) has really sent, and what it still has to.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from qpo._checks import quote
from qpo.errors import AccessDenied
from qpo.store import _inputs as check
from qpo.store import audit
from qpo.store.access import Actor, actor_for
from qpo.store.models import Alert, ClientPortfolio
from qpo.store.operations import ALERT_KEYS, alert_dicts, alert_query

#: the states of an alert; ``open`` is new or acknowledged
ALERT_STATES = ("new", "acknowledged", "resolved")
STATE_FILTERS = (*ALERT_STATES, "open")


def _state(state: str | None) -> tuple[str, ...] | None:
    if state is None:
        return None
    if state not in STATE_FILTERS:
        raise check.fail(f"alert state must be one of {', '.join(STATE_FILTERS)}, got {quote(state)}")
    return ("new", "acknowledged") if state == "open" else (state,)


def list_alerts(engine: Engine, *, actor: Actor | str | None, state: str | None = None,
                portfolio_id: int | None = None) -> list[dict]:
    """The alerts ``actor`` may see (of ``state``: new, acknowledged, resolved or open; None: all),
    newest first, each a dict of :data:`qpo.store.operations.ALERT_KEYS` (id, portfolio_id,
    portfolio, advisor_email, check, value, limit, severity, state, message, first_seen,
    last_seen, resolved_on, acknowledged_by, acknowledged_at, delivered_at, created_at)."""
    states = _state(state)
    with Session(engine) as s:
        who = actor_for(s, actor)
        q = alert_query().order_by(Alert.id.desc())
        if states is not None:
            q = q.where(Alert.state.in_(states))
        if portfolio_id is not None:
            q = q.where(Alert.portfolio_id == int(portfolio_id))
        if who.role == "advisor":
            q = q.where(ClientPortfolio.advisor_id == who.user_id)
        return [dict(zip(ALERT_KEYS, r, strict=True)) for r in s.execute(q).all()]


def _alert_id(alert_id: object) -> int:
    if isinstance(alert_id, bool):
        raise check.fail(f"an alert id is a whole number (`qpo alerts` lists them), got {quote(alert_id)}")
    try:
        value = int(str(alert_id).strip()) if isinstance(alert_id, str) else int(alert_id)  # type: ignore[arg-type, call-overload]
        whole = isinstance(alert_id, str) or float(alert_id) == value  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:  # 1.9 is not alert 1
        raise check.fail(f"an alert id is a whole number (`qpo alerts` lists them), got {quote(alert_id)}")
    if not 1 <= value < 2 ** 31:
        raise check.fail(f"no alert {value}: alert ids are whole numbers from 1 (`qpo alerts` lists them)")
    return value


def acknowledge_alert(engine: Engine, alert_id: int, *, actor: Actor | str | None) -> dict:
    """Mark a new alert acknowledged by ``actor`` (recorded in the audit trail, in the same
    transaction) and return it. An alert already acknowledged is returned as it is (nothing
    written); a resolved one, an unknown id, or one of another advisor's clients is refused."""
    aid = _alert_id(alert_id)
    with Session(engine) as s, s.begin():
        who = actor_for(s, actor)
        alert = s.get(Alert, aid)
        if alert is None:
            raise check.fail(f"no alert {aid}; `qpo alerts` lists the alerts you may see")
        portfolio = s.get(ClientPortfolio, alert.portfolio_id)
        assert portfolio is not None  # a foreign key with ON DELETE CASCADE
        if not who.may_read(portfolio):
            raise AccessDenied(f"{who} may not acknowledge alert {aid}: it belongs to another advisor's client")
        if who.role == "researcher":
            raise AccessDenied(f"{who} may not acknowledge alert {aid}: a researcher reads alerts and changes none")
        if alert.state == "resolved":
            raise check.fail(f"alert {aid} ({alert.check_name} of {quote(portfolio.name)}) was resolved on "
                             f"{alert.resolved_on}: the check passes again, there is nothing to acknowledge")
        if alert.state == "new":
            before = {"state": alert.state}
            alert.state = "acknowledged"
            alert.acknowledged_by = who.email
            alert.acknowledged_at = dt.datetime.now(dt.UTC)
            s.flush()
            audit.record(s, who, "acknowledge", "alert", entity_id=aid, portfolio=portfolio, before=before,
                         after={"state": "acknowledged", "check": alert.check_name, "acknowledged_by": who.email})
        return alert_dicts(s.connection(), [aid])[0]


def mark_delivered(engine: Engine, ids: Iterable[int], *, at: dt.datetime | None = None,
                   severities: Mapping[int, str] | None = None) -> int:
    """Set ``delivered_at`` (default: now) of the alerts ``ids``; returns how many rows changed.
    Only for alerts really sent (:func:`qpo.operations.delivery.deliver_alerts`). ``severities``
    (id -> the severity sent): an alert whose severity changed since (a run escalated it to
    critical while this delivery was under way) is left undelivered, for the next delivery."""
    id_list = sorted({int(i) for i in ids})
    when = at or dt.datetime.now(dt.UTC)
    changed = 0
    with engine.begin() as conn:
        if severities is not None:
            for i in id_list:
                changed += conn.execute(update(Alert).where(Alert.id == i, Alert.severity == severities[i])
                                        .values(delivered_at=when)).rowcount or 0
            return changed
        for start in range(0, len(id_list), 1000):
            changed += conn.execute(update(Alert).where(Alert.id.in_(id_list[start:start + 1000]))
                                    .values(delivered_at=when)).rowcount or 0
    return changed


def undelivered_alerts(engine: Engine) -> list[dict]:
    """New alerts never delivered (a delivery that failed, or none configured then), oldest first:
    what the next delivery retries. One acknowledged meanwhile is not: someone has it already
    (before: it was e-mailed later as new)."""
    with engine.connect() as conn:
        rows = conn.execute(alert_query().where(Alert.state == "new",
                                                Alert.delivered_at.is_(None)).order_by(Alert.id)).all()
    return [dict(zip(ALERT_KEYS, r, strict=True)) for r in rows]


def get_alerts(engine: Engine, ids: Iterable[int]) -> list[dict]:
    """The alerts with these ids (a system read: delivery), in id order."""
    with engine.connect() as conn:
        return alert_dicts(conn, [int(i) for i in ids])


__all__ = ["ALERT_STATES", "acknowledge_alert", "get_alerts", "list_alerts", "mark_delivered", "undelivered_alerts"]

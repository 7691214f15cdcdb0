"""The alerts of :mod:`qpo.store.operations`: a risk run's breaches synced with the stored alerts
(:func:`sync_alerts`, in the caller's transaction; the rules and the :func:`severity` of a
breach are in :mod:`qpo.store.operations`'s docstring), and the alerts read back as dicts."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store._ops_common import num as _num
from qpo.store.models import Alert, ClientPortfolio, User

#: a breach at least this far past its limit (a fraction of the limit) is critical
CRITICAL_GAP = 0.25
#: the open states of an alert
OPEN_STATES = ("new", "acknowledged")


@dataclass
class AlertSync:
    """What a risk run did to the alerts: each a list of alert dicts (id, portfolio_id, portfolio,
    advisor_email, check, value, limit, severity, state, message, first_seen, last_seen)."""

    new: list[dict] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)
    persisting: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"new": self.new, "resolved": self.resolved, "persisting": self.persisting}


def severity(value: float | None, limit: float | None) -> str:
    """``critical`` when the value is past its limit by :data:`CRITICAL_GAP` (25 %) of the limit or
    more, when the value is undefined or the limit is 0; ``warning`` otherwise (the docstring of
    :mod:`qpo.store.operations` has the rule)."""
    if value is None or limit is None or not math.isfinite(value) or not math.isfinite(limit) or limit == 0:
        return "critical"
    return "critical" if abs(value - limit) >= CRITICAL_GAP * abs(limit) - 1e-12 else "warning"


def breach_list(breaches: Sequence[Mapping] | None, ids: set[int]) -> dict[tuple[int, str], dict]:
    out: dict[tuple[int, str], dict] = {}
    for b in breaches or []:
        if not isinstance(b, Mapping) or "portfolio_id" not in b or "check" not in b:
            raise check.fail(f"each breach must be a dict with portfolio_id, check, value, limit, message; got "
                             f"{quote(b)}")
        pid = int(b["portfolio_id"])
        if pid not in ids:
            raise check.fail(f"a breach of portfolio {pid}, which is not in the risk table")
        name = check.label(str(b["check"]), "check name", 128)
        value, limit = _num(b.get("value")), _num(b.get("limit"))
        message = b.get("message")
        out[(pid, name)] = {"value": value, "limit": limit, "severity": severity(value, limit),
                            "message": None if message is None else str(message)[:2000]}
    return out


ALERT_COLUMNS = (Alert.id, Alert.portfolio_id, ClientPortfolio.name, User.email, Alert.check_name, Alert.value,
                 Alert.limit_value, Alert.severity, Alert.state, Alert.message, Alert.first_seen, Alert.last_seen,
                 Alert.resolved_on, Alert.acknowledged_by, Alert.acknowledged_at, Alert.delivered_at, Alert.created_at)
ALERT_KEYS = ("id", "portfolio_id", "portfolio", "advisor_email", "check", "value", "limit", "severity", "state",
              "message", "first_seen", "last_seen", "resolved_on", "acknowledged_by", "acknowledged_at",
              "delivered_at", "created_at")


def alert_query():
    """SELECT of alerts with their portfolio's name and advisor's e-mail (:data:`ALERT_KEYS`)."""
    return (select(*ALERT_COLUMNS).join(ClientPortfolio, ClientPortfolio.id == Alert.portfolio_id)
            .join(User, User.id == ClientPortfolio.advisor_id))


def alert_dicts(conn, ids: Sequence[int]) -> list[dict]:
    """The alerts with these ids, as dicts, in id order."""
    out: list[dict] = []
    ids = sorted(set(ids))
    for start in range(0, len(ids), 1000):
        rows = conn.execute(alert_query().where(Alert.id.in_(ids[start:start + 1000])).order_by(Alert.id)).all()
        out.extend(dict(zip(ALERT_KEYS, r, strict=True)) for r in rows)
    return out


def sync_alerts(conn, as_of: dt.date, ids: Sequence[int], evaluated: set[int],
                breaches: Sequence[Mapping] | None) -> AlertSync:
    """Bring the alerts in line with a risk run of ``as_of`` over portfolios ``ids`` (in the
    caller's transaction; the rules are in :mod:`qpo.store.operations`'s docstring)."""
    found = breach_list(breaches, set(ids))
    id_set = set(ids)
    known: list[Any] = []
    id_list = sorted(id_set)
    for start in range(0, len(id_list), 1000):
        known.extend(conn.execute(select(Alert.id, Alert.portfolio_id, Alert.check_name, Alert.state, Alert.first_seen,
                                         Alert.last_seen, Alert.resolved_on, Alert.acknowledged_by, Alert.severity)
                                  .where(Alert.portfolio_id.in_(id_list[start:start + 1000]))
                                  .order_by(Alert.id)).all())
    open_by_key = {(a.portfolio_id, a.check_name): a for a in known if a.state in OPEN_STATES}
    older = [a.id for key, a in open_by_key.items() if key in found and as_of < a.last_seen]
    latest: dict[int, dict] = {}
    for start in range(0, len(older), 1000):
        latest.update({r.id: {"value": r.value, "limit": r.limit_value, "severity": r.severity, "message": r.message}
                       for r in conn.execute(select(Alert.id, Alert.value, Alert.limit_value, Alert.severity,
                                                    Alert.message).where(Alert.id.in_(older[start:start + 1000])))})
    closed_by_key: dict[tuple[int, str], list] = {}
    for a in known:
        if a.state == "resolved":
            closed_by_key.setdefault((a.portfolio_id, a.check_name), []).append(a)
    new_rows, persisting_updates, resolved_ids = [], [], []
    for key, b in found.items():
        alert = open_by_key.get(key)
        if alert is None:
            closed = closed_by_key.get(key, [])
            reopen = next((a for a in closed if a.resolved_on == as_of), None)
            covered = any(a.first_seen <= as_of < a.resolved_on for a in closed if a.resolved_on is not None)
            if reopen is not None:  # the rerun of the date that resolved it finds the breach after all
                alert = reopen
                b = {**b, "state": "acknowledged" if reopen.acknowledged_by else "new", "resolved_on": None}
            elif covered:  # an older date inside a resolved alert's span: nothing new to say
                continue
            else:
                new_rows.append({"portfolio_id": key[0], "check_name": key[1], "value": b["value"],
                                 "limit_value": b["limit"], "severity": b["severity"], "state": "new",
                                 "message": b["message"], "first_seen": as_of, "last_seen": as_of})
                continue
        if as_of < alert.last_seen and "state" not in b:
            # a rerun of an older date: the alert shows its latest date's value and severity; only its span grows
            b = {**b, **latest.get(alert.id, {})}
        elif b["severity"] == "critical" and alert.severity != "critical" and alert.state in OPEN_STATES:
            # a warning grown critical is news: new again (an acknowledgement was of the warning), delivered again
            b = {**b, "state": "new", "resolved_on": None, "delivered_at": None, "acknowledged_by": None,
                 "acknowledged_at": None}
        persisting_updates.append({"id": alert.id, "value": b["value"], "limit_value": b["limit"],
                                   "severity": b["severity"], "message": b["message"],
                                   "first_seen": min(alert.first_seen, as_of), "last_seen": max(alert.last_seen, as_of),
                                   **({"state": b["state"], "resolved_on": None} if "state" in b else {}),
                                   **{k: None for k in ("delivered_at", "acknowledged_by", "acknowledged_at") if k in b}})
    for key, alert in open_by_key.items():
        if key not in found and key[0] in evaluated and alert.last_seen <= as_of:
            resolved_ids.append(alert.id)
    new_ids: list[int] = []
    if new_rows:
        new_ids = list(conn.execute(insert(Alert).returning(Alert.id, sort_by_parameter_order=True), new_rows)
                       .scalars().all())
    plain = [u for u in persisting_updates if "state" not in u]
    if plain:  # one executemany for the persisting breaches
        table = Alert.__table__
        conn.execute(update(table).where(table.c.id == bindparam("_id")).values(  # type: ignore[arg-type]
            **{k: bindparam(f"_{k}") for k in ("value", "limit_value", "severity", "message", "first_seen",
                                                 "last_seen")}),
            [{f"_{k}": v for k, v in u.items()} for u in plain])
    for u in persisting_updates:  # reopened by a rerun, or escalated to critical: rare
        if "state" in u:
            conn.execute(update(Alert).where(Alert.id == u["id"]).values(**{k: v for k, v in u.items() if k != "id"}))
    for start in range(0, len(resolved_ids), 1000):
        conn.execute(update(Alert).where(Alert.id.in_(resolved_ids[start:start + 1000]))
                     .values(state="resolved", resolved_on=as_of))
    return AlertSync(new=alert_dicts(conn, new_ids), resolved=alert_dicts(conn, resolved_ids),
                     persisting=alert_dicts(conn, [u["id"] for u in persisting_updates]))

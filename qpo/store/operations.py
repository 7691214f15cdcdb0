"""The nightly book's records: operations runs, valuations and risk per portfolio and date, and
the alerts a risk run raises.

- :func:`recorded_run` keeps one ``ops_runs`` row per run: RUNNING while it runs, FINISHED when
  its block ends, FAILED (with the error) when the block raises; the error is re-raised.
- :func:`write_valuations` and :func:`write_book_risk` write a date's results in ONE transaction
  that first deletes that date's rows: a rerun replaces them and never duplicates, and a failure
  anywhere in the write (a refused row, the database going away) rolls everything back, so the
  date keeps its previous results whole and nothing is half-written. Rows go in as one Core
  ``executemany`` (10,000 rows in a fraction of a second on SQLite and PostgreSQL).
- :func:`write_book_risk` also syncs the alerts in that transaction (:func:`sync_alerts`): one
  alert per (portfolio, check) while the breach lasts.

**Alerts.** A breach with no open alert (state ``new`` or ``acknowledged``) of its portfolio and
check is a **new** alert (``first_seen`` = ``last_seen`` = the date); a breach whose alert is open
**persists**: the same alert's ``value``, ``limit``, ``message``, ``severity`` and ``last_seen``
are updated (one alert, not one a day); an open alert whose check the run evaluated and found
passing is **resolved** (``resolved_on`` = the date). A breach that comes back after its alert
was resolved is a new alert. Reruns: rerunning a date finds the alert it raised open (persisting,
not duplicated); rerunning the date that resolved an alert, when the breach is there after all,
reopens it; rerunning an older date inside a resolved alert's span raises nothing new. A
portfolio whose checks were not evaluated (``compliant`` missing: no prices, no limits) keeps
its alerts as they are.

**Severity** (:func:`severity`): how far the value is past the limit, relative to the limit,
``gap = |value - limit| / |limit|`` (for a ceiling such as VaR, max single name or a sector cap
the excess, for a floor such as min names the shortfall): **critical** when the gap is 25 % of
the limit or more (a VaR of 2.5 % or more against a 2 % limit; 3 names against a minimum of 4),
when the value is undefined, or when the limit is 0; **warning** otherwise.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store._ops_common import ERROR_MAX
from qpo.store._ops_common import HOST as _HOST
from qpo.store._ops_common import day as _day
from qpo.store._ops_common import json_fast as _json_fast
from qpo.store._ops_common import jsonable as _jsonable
from qpo.store._ops_common import names as _names
from qpo.store._ops_common import now as _now
from qpo.store._ops_common import num as _num
from qpo.store._ops_common import pid_alive as _pid_alive
from qpo.store._ops_common import portfolio_ids as _portfolio_ids
from qpo.store._ops_common import store_failure as _store_failure
from qpo.store._ops_common import utc as _utc
from qpo.store.access import Actor, actor_for
from qpo.store.models import Alert, BookRisk, ClientPortfolio, OpsRun, User, Valuation

#: the run states of ``ops_runs``
RUN_STATES = ("RUNNING", "FINISHED", "FAILED")
#: the columns of a valuation row (what qpo.book.valuation.value_book gives)
VALUATION_COLUMNS = ("portfolio_id", "market_value", "cash", "holdings_value", "daily_return", "mtd_return",
                     "ytd_return", "inception_return", "status", "unpriced", "stale")
VALUATION_STATES = ("valued", "unpriced", "empty")
#: the float columns of a book-risk row (qpo.risk.book.BookRiskResult.table), then compliant, breaches
RISK_COLUMNS = ("volatility", "var_historical", "cvar_historical", "var_parametric", "cvar_parametric", "beta",
                "max_drawdown", "worst_stress")
#: a breach at least this far past its limit (a fraction of the limit) is critical
CRITICAL_GAP = 0.25
#: the open states of an alert
OPEN_STATES = ("new", "acknowledged")
#: a RUNNING run whose process cannot be checked is taken as gone after this long (fail_abandoned_runs)
ABANDONED_AFTER = dt.timedelta(hours=6)


@dataclass
class OpsRunHandle:
    """The run being recorded: set ``portfolios`` and ``details`` before the block ends."""

    id: int
    kind: str
    as_of: dt.date
    started_at: dt.datetime
    portfolios: int | None = None
    details: dict | None = field(default=None)


@contextlib.contextmanager
def recorded_run(engine: Engine, kind: str, as_of) -> Iterator[OpsRunHandle]:
    """Record one operations run (``kind`` e.g. ``valuation`` or ``risk``, of date ``as_of``): a
    RUNNING row is committed at once; when the block ends it becomes FINISHED (with the handle's
    ``portfolios`` and ``details``); when the block raises, FAILED with the error's text, and the
    error is re-raised. The row is written in its own transactions, so it survives a rolled-back
    write of the results. While RUNNING, its ``details`` hold the process id and host that run it
    (``{"pid": ..., "host": ...}``), so that :func:`fail_abandoned_runs` can tell a run whose
    process disappeared (SIGKILL, a crash, the database gone when it ended) from one still going."""
    kind = check.label(kind, "run kind", 32)
    day = _day(as_of)
    started = _now()
    with engine.begin() as conn:
        run_id = conn.execute(insert(OpsRun).values(kind=kind, as_of=day, status="RUNNING", started_at=started,
                                                    details={"pid": os.getpid(), "host": _HOST})
                              .returning(OpsRun.id)).scalar_one()
    handle = OpsRunHandle(id=run_id, kind=kind, as_of=day, started_at=started)
    try:
        yield handle
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}".strip()
        if len(text) > ERROR_MAX:
            text = text[:ERROR_MAX - 6] + " [...]"
        try:
            with engine.begin() as conn:
                conn.execute(update(OpsRun).where(OpsRun.id == run_id).values(
                    status="FAILED", finished_at=_now(), error=text, portfolios=handle.portfolios,
                    details=_jsonable(handle.details) if handle.details is not None else None))
        except SQLAlchemyError:  # the database itself went away: the run stays RUNNING; the error counts
            pass
        raise
    with engine.begin() as conn:
        conn.execute(update(OpsRun).where(OpsRun.id == run_id).values(
            status="FINISHED", finished_at=_now(), portfolios=handle.portfolios,
            details=_jsonable(handle.details) if handle.details is not None else None))


def fail_abandoned_runs(engine: Engine, *, kinds: Sequence[str] | None = None,
                        older_than: dt.timedelta = ABANDONED_AFTER) -> list[dict]:
    """Mark FAILED ("process disappeared: ...") the RUNNING runs (of ``kinds``, default all) whose
    process is gone, and return them (as :func:`last_runs` gives them). A run is gone when it
    recorded a process of this host that no longer exists, or, when that cannot be told (no
    process recorded, or another host's), when it has been RUNNING for longer than
    ``older_than`` (default :data:`ABANDONED_AFTER`, 6 hours: a nightly run of 10,000 portfolios
    takes about a minute). A run still going is left alone. Called at the start of each nightly run."""
    q = select(OpsRun).where(OpsRun.status == "RUNNING").order_by(OpsRun.id)
    if kinds is not None:
        q = q.where(OpsRun.kind.in_([check.label(k, "run kind", 32) for k in kinds]))
    from sqlalchemy.orm import Session

    stamp = _now()
    gone: list[tuple[int, str]] = []
    with Session(engine) as s:
        for r in s.scalars(q).all():
            d = r.details if isinstance(r.details, dict) else {}
            pid, host = d.get("pid"), d.get("host")
            alive = _pid_alive(pid, host)
            age = stamp - _utc(r.started_at) if r.started_at is not None else older_than
            if alive is False:
                gone.append((r.id, f"process disappeared: process {pid} on {host} that ran it is gone and the run "
                                   f"never ended (killed, crashed, or the database went away when it ended); marked "
                                   f"FAILED at {stamp:%Y-%m-%d %H:%M:%S} UTC"))
            elif alive is None and age >= older_than:
                who = f"process {pid} on {host}" if pid else "a process not recorded"
                gone.append((r.id, f"process disappeared: RUNNING for {age.total_seconds() / 3600:.1f} h, longer "
                                   f"than any nightly run ({older_than.total_seconds() / 3600:g} h), by {who} this "
                                   f"host cannot check; marked FAILED at {stamp:%Y-%m-%d %H:%M:%S} UTC"))
    if not gone:
        return []
    with engine.begin() as conn:
        for run_id, text in gone:
            conn.execute(update(OpsRun).where(OpsRun.id == run_id, OpsRun.status == "RUNNING")
                         .values(status="FAILED", finished_at=stamp, error=text))
    return [get_run(engine, run_id) for run_id, _ in gone]


def last_finished_date(engine: Engine, kind: str) -> dt.date | None:
    """The latest ``as_of`` of a FINISHED run of ``kind`` (None when none finished)."""
    kind = check.label(kind, "run kind", 32)
    with engine.connect() as conn:
        return conn.execute(select(func.max(OpsRun.as_of)).where(OpsRun.kind == kind,
                                                                  OpsRun.status == "FINISHED")).scalar()


def _run_dict(r: OpsRun) -> dict:
    seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else None
    return {"id": r.id, "kind": r.kind, "as_of": r.as_of, "status": r.status, "started_at": r.started_at,
            "finished_at": r.finished_at, "seconds": seconds, "portfolios": r.portfolios, "error": r.error,
            "details": r.details}


def last_runs(engine: Engine, kind: str | None = None, n: int = 20) -> list[dict]:
    """The newest ``n`` runs (of ``kind`` when given), newest first: id, kind, as_of, status,
    started_at, finished_at, seconds, portfolios, error, details."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise check.fail(f"n must be a whole number >= 1, got {quote(n)}")
    q = select(OpsRun).order_by(OpsRun.id.desc()).limit(n)
    if kind is not None:
        q = q.where(OpsRun.kind == check.label(kind, "run kind", 32))
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return [_run_dict(r) for r in s.scalars(q).all()]


def get_run(engine: Engine, run_id: int) -> dict:
    """One run as :func:`last_runs` gives it."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        r = s.get(OpsRun, int(run_id))
        if r is None:
            raise check.fail(f"no operations run {quote(run_id)}")
        return _run_dict(r)


# -- valuations -----------------------------------------------------------------------------------
def _valuation_rows(as_of: dt.date, rows: pd.DataFrame, run_id: int | None) -> list[dict]:
    if not isinstance(rows, pd.DataFrame):
        raise check.fail(f"valuations must be a DataFrame (qpo.book.valuation.value_book's), got {quote(rows)}")
    frame = rows if "portfolio_id" in rows.columns else rows.rename_axis("portfolio_id").reset_index()
    missing = [c for c in VALUATION_COLUMNS if c not in frame.columns and c not in ("unpriced", "stale")]
    if missing:
        raise check.fail(f"valuations of {as_of} not written: missing column(s) {missing} (the columns are "
                         f"{', '.join(VALUATION_COLUMNS)})")
    ids = _portfolio_ids(frame)
    bad = sorted({str(s) for s in frame["status"] if s not in VALUATION_STATES})
    if bad:
        raise check.fail(f"valuations of {as_of} not written: status {bad[:3]} is not one of "
                         f"{', '.join(VALUATION_STATES)}")
    cols = {c: frame[c].tolist() for c in VALUATION_COLUMNS if c in frame.columns}
    out = []
    for i, pid in enumerate(ids):
        cash = _num(cols["cash"][i])
        out.append({"portfolio_id": pid, "as_of": as_of,
                    "market_value": _num(cols["market_value"][i]), "cash": cash if cash is not None else 0.0,
                    "holdings_value": _num(cols["holdings_value"][i]),
                    "daily_return": _num(cols["daily_return"][i]), "mtd_return": _num(cols["mtd_return"][i]),
                    "ytd_return": _num(cols["ytd_return"][i]), "inception_return": _num(cols["inception_return"][i]),
                    "status": str(cols["status"][i]),
                    "unpriced": _names(cols["unpriced"][i]) if "unpriced" in cols else None,
                    "stale": _names(cols["stale"][i]) if "stale" in cols else None,
                    "run_id": run_id})
    return out


def write_valuations(engine: Engine, as_of, rows: pd.DataFrame, *, run_id: int | None) -> int:
    """Store the valuations of ``as_of`` (one row per portfolio, the columns of
    :func:`qpo.book.valuation.value_book`; a ``market_value`` of None/NaN stays NULL, never zero),
    replacing that date's rows, in ONE transaction; returns the rows written. Refused input, or a
    database failure mid-write, leaves the date's previous rows as they were (a StoreError)."""
    day = _day(as_of)
    values = _valuation_rows(day, rows, run_id)
    try:
        with engine.begin() as conn:
            conn.execute(delete(Valuation).where(Valuation.as_of == day))
            if values:
                conn.execute(insert(Valuation), values)
    except SQLAlchemyError as exc:
        raise _store_failure("the valuations", day, exc) from exc
    return len(values)


def has_valuations(engine: Engine, as_of) -> bool:
    """Whether the store holds valuations of ``as_of``."""
    day = _day(as_of)
    with engine.connect() as conn:
        return conn.execute(select(Valuation.id).where(Valuation.as_of == day).limit(1)).first() is not None


_VALUATION_OUT = ["portfolio_id", "portfolio", "advisor_email", "as_of", *VALUATION_COLUMNS[1:], "run_id"]


def _scope(q, who: Actor | None):
    """Restrict a query joined with portfolios to what ``who`` may read (an advisor: their clients)."""
    if who is not None and who.role == "advisor":
        q = q.where(ClientPortfolio.advisor_id == who.user_id)
    return q


def _who(engine: Engine, actor) -> Actor | None:
    if actor is None:
        return None
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return actor_for(s, actor)


def valuations_on(engine: Engine, as_of, *, actor: Actor | str | None = None) -> pd.DataFrame:
    """The valuations of ``as_of``, one row per portfolio (with its name and advisor's e-mail),
    ordered by portfolio id; an advisor ``actor`` gets only their clients' rows (None: a system
    read, everything)."""
    day = _day(as_of)
    who = _who(engine, actor)
    v = Valuation
    q = (select(v.portfolio_id, ClientPortfolio.name, User.email, v.as_of, v.market_value, v.cash, v.holdings_value,
                v.daily_return, v.mtd_return, v.ytd_return, v.inception_return, v.status, v.unpriced, v.stale, v.run_id)
         .join(ClientPortfolio, ClientPortfolio.id == v.portfolio_id).join(User, User.id == ClientPortfolio.advisor_id)
         .where(v.as_of == day).order_by(v.portfolio_id))
    with engine.connect() as conn:
        rows = conn.execute(_scope(q, who)).all()
    return _frame(rows, _VALUATION_OUT)


def _frame(rows, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for c in columns:
        if c in RISK_COLUMNS or c in ("market_value", "cash", "holdings_value", "daily_return", "mtd_return",
                                      "ytd_return", "inception_return"):
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame


def valuation_history(engine: Engine, portfolio_id: int, *, actor: Actor | str) -> pd.DataFrame:
    """Every stored valuation of one portfolio, oldest first, if ``actor`` may read it."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        who = actor_for(s, actor)
        portfolio = s.get(ClientPortfolio, int(portfolio_id))
        if portfolio is None:
            raise check.fail(f"no portfolio with id {quote(portfolio_id)}")
        who.require_read(portfolio)
    v = Valuation
    q = (select(v.portfolio_id, ClientPortfolio.name, User.email, v.as_of, v.market_value, v.cash, v.holdings_value,
                v.daily_return, v.mtd_return, v.ytd_return, v.inception_return, v.status, v.unpriced, v.stale, v.run_id)
         .join(ClientPortfolio, ClientPortfolio.id == v.portfolio_id).join(User, User.id == ClientPortfolio.advisor_id)
         .where(v.portfolio_id == int(portfolio_id)).order_by(v.as_of))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return _frame(rows, _VALUATION_OUT)


# -- book risk ------------------------------------------------------------------------------------
def _risk_rows(as_of: dt.date, table: pd.DataFrame, details: Mapping | None, run_id: int | None
               ) -> tuple[list[dict], list[int], set[int]]:
    """The rows to insert, the portfolio ids, and the ids whose checks were evaluated."""
    if not isinstance(table, pd.DataFrame):
        raise check.fail(f"the risk table must be a DataFrame (qpo.risk.book.BookRiskResult.table), got {quote(table)}")
    missing = [c for c in RISK_COLUMNS if c not in table.columns]
    if missing:
        raise check.fail(f"book risk of {as_of} not written: missing column(s) {missing} (the columns are "
                         f"{', '.join(RISK_COLUMNS)}, compliant, breaches)")
    ids = _portfolio_ids(table)
    details = details or {}
    cols = {c: table[c].tolist() for c in (*RISK_COLUMNS, "compliant", "breaches") if c in table.columns}
    rows, evaluated = [], set()
    for i, pid in enumerate(ids):
        compliant = cols["compliant"][i] if "compliant" in cols else True
        compliant = None if compliant is None or (isinstance(compliant, float) and math.isnan(compliant)) \
            or compliant is pd.NA else bool(compliant)
        if compliant is not None:
            evaluated.add(pid)
        n_breaches = _num(cols["breaches"][i]) if "breaches" in cols else None
        detail = details.get(pid, details.get(str(pid)))
        rows.append({"portfolio_id": pid, "as_of": as_of, **{c: _num(cols[c][i]) for c in RISK_COLUMNS},
                     "compliant": compliant, "breaches": int(n_breaches) if n_breaches is not None else 0,
                     "details": _json_fast(detail) if detail is not None else None, "run_id": run_id})
    return rows, ids, evaluated


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
    more, when the value is undefined or the limit is 0; ``warning`` otherwise (the module's
    docstring has the rule)."""
    if value is None or limit is None or not math.isfinite(value) or not math.isfinite(limit) or limit == 0:
        return "critical"
    return "critical" if abs(value - limit) >= CRITICAL_GAP * abs(limit) - 1e-12 else "warning"


def _breach_list(breaches: Sequence[Mapping] | None, ids: set[int]) -> dict[tuple[int, str], dict]:
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
    caller's transaction; the rules are in the module's docstring)."""
    found = _breach_list(breaches, set(ids))
    id_set = set(ids)
    known: list[Any] = []
    id_list = sorted(id_set)
    for start in range(0, len(id_list), 1000):
        known.extend(conn.execute(select(Alert.id, Alert.portfolio_id, Alert.check_name, Alert.state, Alert.first_seen,
                                         Alert.last_seen, Alert.resolved_on, Alert.acknowledged_by)
                                  .where(Alert.portfolio_id.in_(id_list[start:start + 1000]))
                                  .order_by(Alert.id)).all())
    open_by_key = {(a.portfolio_id, a.check_name): a for a in known if a.state in OPEN_STATES}
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
        persisting_updates.append({"id": alert.id, "value": b["value"], "limit_value": b["limit"],
                                   "severity": b["severity"], "message": b["message"],
                                   "first_seen": min(alert.first_seen, as_of), "last_seen": max(alert.last_seen, as_of),
                                   **({"state": b["state"], "resolved_on": None} if "state" in b else {})})
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
    for u in persisting_updates:  # reopened by a rerun: rare
        if "state" in u:
            conn.execute(update(Alert).where(Alert.id == u["id"]).values(**{k: v for k, v in u.items() if k != "id"}))
    for start in range(0, len(resolved_ids), 1000):
        conn.execute(update(Alert).where(Alert.id.in_(resolved_ids[start:start + 1000]))
                     .values(state="resolved", resolved_on=as_of))
    return AlertSync(new=alert_dicts(conn, new_ids), resolved=alert_dicts(conn, resolved_ids),
                     persisting=alert_dicts(conn, [u["id"] for u in persisting_updates]))


def write_book_risk(engine: Engine, as_of, table: pd.DataFrame, details: Mapping | None,
                    breaches: Sequence[Mapping] | None, *, run_id: int | None) -> AlertSync:
    """Store the risk of ``as_of`` (one row per portfolio: ``table`` indexed by portfolio id with
    the columns of :class:`qpo.risk.book.BookRiskResult`, ``details`` per portfolio id) and sync
    the alerts with ``breaches`` (dicts of portfolio_id, check, value, limit, message), in ONE
    transaction that replaces the date's rows. A failure anywhere rolls all of it back: the date
    keeps its previous risk rows and alerts."""
    day = _day(as_of)
    rows, ids, evaluated = _risk_rows(day, table, details, run_id)
    _breach_list(breaches, set(ids))  # refused before the transaction starts
    try:
        with engine.begin() as conn:
            conn.execute(delete(BookRisk).where(BookRisk.as_of == day))
            if rows:
                conn.execute(insert(BookRisk), rows)
            return sync_alerts(conn, day, ids, evaluated, breaches)
    except SQLAlchemyError as exc:
        raise _store_failure("the book risk", day, exc) from exc


_RISK_OUT = ["portfolio_id", "portfolio", "advisor_email", "as_of", *RISK_COLUMNS, "compliant", "breaches", "details",
             "run_id"]


def book_risk_on(engine: Engine, as_of, *, actor: Actor | str | None = None) -> pd.DataFrame:
    """The risk rows of ``as_of``, one per portfolio (with its name and advisor's e-mail), ordered
    by portfolio id; an advisor ``actor`` gets only their clients' rows (None: a system read)."""
    day = _day(as_of)
    who = _who(engine, actor)
    r = BookRisk
    q = (select(r.portfolio_id, ClientPortfolio.name, User.email, r.as_of, *[getattr(r, c) for c in RISK_COLUMNS],
                r.compliant, r.breaches, r.details, r.run_id)
         .join(ClientPortfolio, ClientPortfolio.id == r.portfolio_id).join(User, User.id == ClientPortfolio.advisor_id)
         .where(r.as_of == day).order_by(r.portfolio_id))
    with engine.connect() as conn:
        rows = conn.execute(_scope(q, who)).all()
    return _frame(rows, _RISK_OUT)


def previous_risk_date(engine: Engine, as_of) -> dt.date | None:
    """The latest date before ``as_of`` with stored risk rows (for "changes since yesterday")."""
    day = _day(as_of)
    with engine.connect() as conn:
        return conn.execute(select(func.max(BookRisk.as_of)).where(BookRisk.as_of < day)).scalar()


def previous_valuation_date(engine: Engine, as_of) -> dt.date | None:
    """The latest date before ``as_of`` with stored valuations."""
    day = _day(as_of)
    with engine.connect() as conn:
        return conn.execute(select(func.max(Valuation.as_of)).where(Valuation.as_of < day)).scalar()

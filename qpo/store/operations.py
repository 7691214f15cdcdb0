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

The runs' records are kept by ``_ops_runs``, the alerts' sync by ``_ops_alerts`` (their names are
imported here, where callers find them).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import pandas as pd
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from qpo._checks import quote
from qpo.store import _inputs as check
from qpo.store._ops_alerts import (
    ALERT_COLUMNS,
    ALERT_KEYS,
    CRITICAL_GAP,
    OPEN_STATES,
    AlertSync,
    alert_dicts,
    alert_query,
    severity,
    sync_alerts,
)
from qpo.store._ops_alerts import breach_list as _breach_list
from qpo.store._ops_common import ERROR_MAX
from qpo.store._ops_common import day as _day
from qpo.store._ops_common import json_fast as _json_fast
from qpo.store._ops_common import names as _names
from qpo.store._ops_common import num as _num
from qpo.store._ops_common import portfolio_ids as _portfolio_ids
from qpo.store._ops_common import store_failure as _store_failure
from qpo.store._ops_runs import (
    ABANDONED_AFTER,
    RUN_STATES,
    OpsRunHandle,
    fail_abandoned_runs,
    finished_run,
    get_run,
    last_finished_date,
    last_runs,
    recorded_run,
)
from qpo.store.access import Actor, actor_for
from qpo.store.db import PG_BOOK_RISK_LOCK, PG_VALUATIONS_LOCK, one_writer
from qpo.store.models import BookRisk, ClientPortfolio, User, Valuation

#: the columns of a valuation row (what qpo.book.valuation.value_book gives)
VALUATION_COLUMNS = ("portfolio_id", "market_value", "cash", "holdings_value", "daily_return", "mtd_return",
                     "ytd_return", "inception_return", "status", "unpriced", "stale")
VALUATION_STATES = ("valued", "unpriced", "empty")
#: the float columns of a book-risk row (qpo.risk.book.BookRiskResult.table), then compliant, breaches
RISK_COLUMNS = ("volatility", "var_historical", "cvar_historical", "var_parametric", "cvar_parametric", "beta",
                "max_drawdown", "worst_stress")


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
            one_writer(conn, PG_VALUATIONS_LOCK)  # a second run of the date waits, then replaces
            conn.execute(delete(Valuation).where(Valuation.as_of == day))
            if values:
                conn.execute(insert(Valuation), values)
    except SQLAlchemyError as exc:
        raise _store_failure("the valuations", day, exc) from exc
    return len(values)


def has_valuations(engine: Engine, as_of) -> bool:
    """Whether the store holds valuations of ``as_of`` (rows: an empty book's finished valuation
    has none, :func:`finished_run` tells that one)."""
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
            one_writer(conn, PG_BOOK_RISK_LOCK)
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


__all__ = ["ABANDONED_AFTER", "ALERT_COLUMNS", "ALERT_KEYS", "CRITICAL_GAP", "ERROR_MAX", "OPEN_STATES", "RISK_COLUMNS",
           "RUN_STATES", "VALUATION_COLUMNS", "VALUATION_STATES", "AlertSync", "OpsRunHandle", "alert_dicts",
           "alert_query", "book_risk_on", "fail_abandoned_runs", "finished_run", "get_run", "has_valuations", "last_finished_date",
           "last_runs", "previous_risk_date", "previous_valuation_date", "recorded_run", "severity", "sync_alerts",
           "valuation_history", "valuations_on", "write_book_risk", "write_valuations"]
